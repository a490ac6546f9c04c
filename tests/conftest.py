"""Shared fixtures: in-memory OpenTelemetry SDK providers, the dev model server, an OTLP
receiver, and instrumentors wired to those providers (never to the global ones).

    def test_x(instrument_openai, openai_client, span_exporter):
        instrument_openai(capture="span_only")
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        (span,) = span_exporter.get_finished_spans()
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmtap.config import CaptureMode, Settings

# LiteLLM fetches its model cost map over the network at import unless told not to; whichever
# test imports it first, it stays offline
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:  # `from support.otlp_receiver import OtlpReceiver` in any test dir
    sys.path.insert(0, _TESTS)

from support.binaries import BUILD_COMMAND, NOT_BUILT  # noqa: E402
from support.otlp_receiver import OtlpReceiver  # noqa: E402

TEST_RESOURCE = Resource.create({"service.name": "llmtap-tests"})


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One closing line when tests skipped for want of the Collector, Jaeger or promtool."""
    missing = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if NOT_BUILT in str(getattr(report, "longrepr", ""))
    ]
    if missing:
        terminalreporter.write_line(
            f"{len(missing)} end-to-end tests skipped: the Collector, Jaeger and promtool "
            f"binaries are not built; build them with: {BUILD_COMMAND}",
            yellow=True,
            bold=True,
        )


# OpenTelemetry SDK, in memory -------------------------------------------------------------


class FinishedSpans(InMemorySpanExporter):
    """An in-memory exporter whose reads first wait for the spans still ending on llmtap's
    token worker (a stream without usage ends its span there, once the estimate is in)."""

    def get_finished_spans(self) -> tuple[Any, ...]:
        from llmtap.pipeline import tokens

        tokens.flush()
        return super().get_finished_spans()


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    """Finished spans of `tracer_provider` (SimpleSpanProcessor: available as soon as ended)."""
    return FinishedSpans()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider(resource=TEST_RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    """``metric_reader.get_metrics_data()`` collects what `meter_provider` recorded."""
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(metric_reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(resource=TEST_RESOURCE, metric_readers=[metric_reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def log_exporter() -> InMemoryLogRecordExporter:
    """Log records (GenAI content events) emitted through `logger_provider`."""
    return InMemoryLogRecordExporter()


@pytest.fixture
def logger_provider(log_exporter: InMemoryLogRecordExporter) -> Iterator[LoggerProvider]:
    provider = LoggerProvider(resource=TEST_RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    yield provider
    provider.shutdown()


# servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def devserver() -> Iterator[Any]:
    """The loopback OpenAI/Anthropic model server (`llmtap.devserver.DevServer`), one per session.

    ``devserver.openai_base_url`` / ``devserver.anthropic_base_url``; error scenarios through
    the model name ``devserver-<scenario>`` or the ``x-devserver-scenario`` header.
    """
    from llmtap.devserver import DevServer

    with DevServer() as server:
        yield server


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A fresh OTLP gRPC + HTTP receiver on loopback (see `support.otlp_receiver`)."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def openai_client(devserver: Any) -> Iterator[Any]:
    """A real ``openai.OpenAI`` client talking to the dev server over the socket (no retries)."""
    import openai

    client = openai.OpenAI(base_url=devserver.openai_base_url, api_key="test-key", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def anthropic_client(devserver: Any) -> Iterator[Any]:
    """A real ``anthropic.Anthropic`` client talking to the dev server over the socket."""
    import anthropic

    client = anthropic.Anthropic(
        base_url=devserver.anthropic_base_url, api_key="test-key", max_retries=0
    )
    yield client
    client.close()


# instrumentation ----------------------------------------------------------------------------

InstrumentFn = Callable[..., BaseInstrumentor]


def _settings(
    settings: Settings | None, capture: CaptureMode | str | None, **fields: Any
) -> Settings:
    if settings is None:
        settings = Settings(**fields)
    elif fields:
        raise TypeError("pass either settings= or Settings fields, not both")
    if capture is not None:
        settings.capture = (
            capture if isinstance(capture, CaptureMode) else CaptureMode.parse(capture)
        )
    return settings


# wrapt 2 keeps ObjectProxy as a subclass of the base its FunctionWrapper derives from
_PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def _leftover_wrappers(package: str) -> list[str]:
    """SDK methods of `package` still wrapped by wrapt (an uninstrument that missed some)."""
    found = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == package or name.startswith(package + ".")):
            continue
        for key, cls in list(vars(module).items()):
            # type(), not isinstance(): the SDKs keep lazy proxies that import on __class__
            if issubclass(type(cls), _PROXY):  # a patched module-level function
                found.append(f"{name}.{key}")
                continue
            if not issubclass(type(cls), type) or cls.__module__ != name:
                continue
            for attr, value in list(vars(cls).items()):
                if issubclass(type(value), _PROXY):
                    found.append(f"{name}.{cls.__qualname__}.{attr}")
    return found


class _Instrumentation:
    """Instruments llmtap instrumentors with the test providers; undoes it at teardown."""

    def __init__(self, tracer_provider: Any, meter_provider: Any, logger_provider: Any) -> None:
        self.providers = {
            "tracer_provider": tracer_provider,
            "meter_provider": meter_provider,
            "logger_provider": logger_provider,
        }
        self.active: list[tuple[BaseInstrumentor, str]] = []

    def __call__(
        self,
        target: str,
        settings: Settings | None = None,
        *,
        capture: CaptureMode | str | None = CaptureMode.SPAN_ONLY,
        **fields: Any,
    ) -> BaseInstrumentor:
        """`target` is ``"module:Class"``; returns the instrumented instrumentor."""
        module_name, _, class_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # the module is there but broken: that is a failure
                raise
            pytest.skip(f"{target} is not available yet: {exc}")
        cls = getattr(module, class_name, None)
        if cls is None:
            pytest.skip(f"{target} is not available yet ({module_name} has no {class_name})")
        instrumentor = cls()
        if instrumentor.is_instrumented_by_opentelemetry:
            raise RuntimeError(f"{target} is already instrumented: a previous test leaked it")
        requirement = next(iter(instrumentor.instrumentation_dependencies()))
        sdk = re.match(r"[A-Za-z0-9_.-]+", requirement).group()  # "openai >= 2.0" -> openai
        stale = _leftover_wrappers(sdk)
        if stale:
            raise RuntimeError(f"{sdk} is still patched by an earlier test: {stale}")
        instrumentor.instrument(settings=_settings(settings, capture, **fields), **self.providers)
        if not instrumentor.is_instrumented_by_opentelemetry:
            raise RuntimeError(f"{target}.instrument() did not instrument (dependency conflict?)")
        self.active.append((instrumentor, sdk))
        return instrumentor

    def close(self) -> None:
        problems = []
        while self.active:
            instrumentor, sdk = self.active.pop()
            instrumentor.uninstrument()
            leftovers = _leftover_wrappers(sdk)
            if leftovers:
                problems.append(f"{type(instrumentor).__name__}.uninstrument() left {leftovers}")
        if problems:
            raise AssertionError("; ".join(problems))


@pytest.fixture
def instrument(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    logger_provider: LoggerProvider,
) -> Iterator[_Instrumentation]:
    """``instrument("llmtap.instrumentation.openai:OpenAIInstrumentor", capture=..., **Settings
    fields)`` with the in-memory providers; uninstrumented (and checked for leftover wrappers)
    at teardown. Skips the test when the instrumentor does not exist yet."""
    helper = _Instrumentation(tracer_provider, meter_provider, logger_provider)
    yield helper
    helper.close()


@pytest.fixture
def instrument_openai(instrument: _Instrumentation) -> InstrumentFn:
    """``instrument_openai(settings=None, *, capture="span_only", **Settings fields)``."""

    def go(settings: Settings | None = None, **kwargs: Any) -> BaseInstrumentor:
        return instrument("llmtap.instrumentation.openai:OpenAIInstrumentor", settings, **kwargs)

    return go


@pytest.fixture
def instrument_anthropic(instrument: _Instrumentation) -> InstrumentFn:
    """Like `instrument_openai`; skips the test while the Anthropic instrumentor is missing."""

    def go(settings: Settings | None = None, **kwargs: Any) -> BaseInstrumentor:
        return instrument(
            "llmtap.instrumentation.anthropic:AnthropicInstrumentor", settings, **kwargs
        )

    return go
