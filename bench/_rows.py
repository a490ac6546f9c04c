"""The benchmark rows: no instrumentation, the hand-written floor, llmtap and its peers.

A row is switched on (instrument) and off (uninstrument) around each measured block; only one
row is ever active. ``PatchGuard`` checks that switching off really restored the SDK.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import pkgutil
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

# ---------------------------------------------------------------------------------------------
# The floor: the least a GenAI instrumentation must do, written by hand around the call.
# ---------------------------------------------------------------------------------------------

_DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
_TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
_CHUNK_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)


class Floor:
    """A bare OTel span with the same gen_ai attributes, plus the same metric points.

    Non-streaming: span (13 request + 5 response attributes, made current during the call),
    one duration point and two token points. Streaming: one span per stream, a per-chunk
    interval point for every chunk after the first, then time-to-first-chunk, duration and
    the two token points when the stream ends.
    """

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        self.tracer = trace.get_tracer("bench.floor", "0", tracer_provider)
        meter = meter_provider.get_meter("bench.floor", "0")
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.ttfc = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.per_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk",
            unit="s",
            explicit_bucket_boundaries_advisory=_CHUNK_BUCKETS,
        )
        self._servers: dict[int, tuple[str, int]] = {}

    def _server(self, client: Any) -> tuple[str, int]:
        server = self._servers.get(id(client))
        if server is None:
            url = urlsplit(str(client.base_url))
            server = (url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
            self._servers[id(client)] = server
        return server

    def _start(
        self, client: Any, kw: dict[str, Any], stream: bool
    ) -> tuple[Any, dict[str, Any], Any]:
        model = kw["model"]
        host, port = self._server(client)
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "server.address": host,
            "server.port": port,
            "gen_ai.request.stream": stream,
            "gen_ai.request.temperature": kw["temperature"],
            "gen_ai.request.top_p": kw["top_p"],
            "gen_ai.request.max_tokens": kw["max_tokens"],
            "gen_ai.request.seed": kw["seed"],
            "gen_ai.request.frequency_penalty": kw["frequency_penalty"],
            "gen_ai.request.presence_penalty": kw["presence_penalty"],
            "gen_ai.request.stop_sequences": kw["stop"],
        }
        span = self.tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attrs)
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, attrs, token

    def _metric_attrs(self, attrs: dict[str, Any], response_model: str | None) -> dict[str, Any]:
        m = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": attrs["gen_ai.request.model"],
            "server.address": attrs["server.address"],
            "server.port": attrs["server.port"],
        }
        if response_model:
            m["gen_ai.response.model"] = response_model
        return m

    def _fail(self, span: Any, exc: BaseException) -> None:
        span.set_attribute("error.type", type(exc).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(exc)))
        span.end()

    def create(self, client: Any, **kw: Any) -> Any:
        span, attrs, token = self._start(client, kw, False)
        t0 = time.perf_counter()
        try:
            resp = client.chat.completions.create(**kw)
        except BaseException as exc:
            otel_context.detach(token)
            self._fail(span, exc)
            raise
        otel_context.detach(token)
        usage = resp.usage
        span.set_attributes(
            {
                "gen_ai.response.id": resp.id,
                "gen_ai.response.model": resp.model,
                "gen_ai.response.finish_reasons": [c.finish_reason for c in resp.choices],
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
            }
        )
        span.end()
        m = self._metric_attrs(attrs, resp.model)
        self.duration.record(time.perf_counter() - t0, m)
        self.tokens.record(usage.prompt_tokens, {**m, "gen_ai.token.type": "input"})
        self.tokens.record(usage.completion_tokens, {**m, "gen_ai.token.type": "output"})
        return resp

    def stream(self, client: Any, **kw: Any) -> Iterator[Any]:
        span, attrs, token = self._start(client, kw, True)
        t0 = time.perf_counter()
        try:
            stream = client.chat.completions.create(**kw)
        except BaseException as exc:
            otel_context.detach(token)
            self._fail(span, exc)
            raise
        otel_context.detach(token)
        return self._iterate(stream, span, attrs, t0)

    def _iterate(self, stream: Any, span: Any, attrs: dict[str, Any], t0: float) -> Iterator[Any]:
        m = self._metric_attrs(attrs, None)  # per-chunk points: the response model is not known yet
        record = self.per_chunk.record
        first = last = 0.0
        n = 0
        head = usage = None
        finish: list[str] = []
        error: BaseException | None = None
        try:
            for chunk in stream:
                now = time.perf_counter()
                if n:
                    record(now - last, m)
                else:
                    first = now
                    head = chunk
                last = now
                n += 1
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if choice.finish_reason:
                        finish.append(choice.finish_reason)
                yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            out = {"gen_ai.response.finish_reasons": finish}
            if head is not None:
                out["gen_ai.response.id"] = head.id
                out["gen_ai.response.model"] = head.model
            if usage is not None:
                out["gen_ai.usage.input_tokens"] = usage.prompt_tokens
                out["gen_ai.usage.output_tokens"] = usage.completion_tokens
            span.set_attributes(out)
            if error is not None and not isinstance(error, GeneratorExit):
                self._fail(span, error)
            else:
                span.end()
            m = self._metric_attrs(attrs, head.model if head is not None else None)
            self.duration.record(time.perf_counter() - t0, m)
            if n:
                self.ttfc.record(first - t0, m)
            if usage is not None:
                self.tokens.record(usage.prompt_tokens, {**m, "gen_ai.token.type": "input"})
                self.tokens.record(usage.completion_tokens, {**m, "gen_ai.token.type": "output"})


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


class Row:
    """One configuration: how to switch it on and off, and what it is."""

    def __init__(
        self,
        key: str,
        label: str,
        *,
        module: str | None = None,
        cls: str = "OpenAIInstrumentor",
        dist: str | None = None,
        env: dict[str, str] | None = None,
        kwargs: Callable[[], dict[str, Any]] | None = None,
        floor: bool = False,
        content: str = "off",
        note: str = "",
    ) -> None:
        self.key = key
        self.label = label
        self.module = module
        self.cls = cls
        self.dist = dist
        self.env = env or {}
        self.kwargs = kwargs or dict
        self.floor = floor
        self.content = content
        self.note = note
        self.error: str | None = None
        self.version: str | None = None
        self.instrumentor: Any = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def is_instrumentor(self) -> bool:
        return self.module is not None

    def load(self) -> bool:
        if self.dist:
            try:
                self.version = md.version(self.dist)
            except md.PackageNotFoundError:
                self.error = f"{self.dist} is not installed"
                return False
        if not self.module:
            return True
        try:
            mod = importlib.import_module(self.module)
            self.instrumentor = getattr(mod, self.cls)()
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{os.path.basename(last.filename)}:{last.lineno}"
            self.error = f"import {self.module} failed: {type(exc).__name__}: {exc} (at {where})"
            return False
        return True

    def on(self, providers: dict[str, Any]) -> None:
        for name, value in self.env.items():
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = value
        if self.instrumentor is not None:
            self.instrumentor.instrument(**providers, **self.kwargs())

    def off(self) -> None:
        if self.instrumentor is not None:
            self.instrumentor.uninstrument()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()


def _llmtap_settings(mode: str) -> Callable[[], dict[str, Any]]:
    def kwargs() -> dict[str, Any]:
        from llmtap.config import CaptureMode, Settings

        return {"settings": Settings(capture=CaptureMode(mode))}

    return kwargs


def _openinference_hidden() -> dict[str, Any]:
    from openinference.instrumentation import TraceConfig

    return {"config": TraceConfig(hide_inputs=True, hide_outputs=True)}


CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def all_rows() -> list[Row]:
    return [
        Row("baseline", "no instrumentation (baseline)", note="plain SDK call"),
        Row("floor", "floor: bare OTel span + metrics (hand-written)", floor=True),
        Row(
            "llmtap",
            "**llmtap** (content off)",
            module="llmtap.instrumentation.openai",
            dist="llmtap",
            kwargs=_llmtap_settings("no_content"),
        ),
        Row(
            "llmtap_span",
            "**llmtap** (content SPAN_ONLY)",
            module="llmtap.instrumentation.openai",
            dist="llmtap",
            kwargs=_llmtap_settings("span_only"),
            content="span",
        ),
        Row(
            "openllmetry",
            "OpenLLMetry `opentelemetry-instrumentation-openai` (content off)",
            module="opentelemetry.instrumentation.openai",
            dist="opentelemetry-instrumentation-openai",
            env={"TRACELOOP_TRACE_CONTENT": "false"},
        ),
        Row(
            "openllmetry_default",
            "OpenLLMetry (defaults: content on)",
            module="opentelemetry.instrumentation.openai",
            dist="opentelemetry-instrumentation-openai",
            env={"TRACELOOP_TRACE_CONTENT": "true"},
            content="span",
        ),
        Row(
            "otel_v2",
            "OTel contrib `opentelemetry-instrumentation-openai-v2` (content off)",
            module="opentelemetry.instrumentation.openai_v2",
            dist="opentelemetry-instrumentation-openai-v2",
        ),
        Row(
            "otel_genai",
            "OTel `opentelemetry-instrumentation-genai-openai` (content off)",
            module="opentelemetry.instrumentation.genai.openai",
            dist="opentelemetry-instrumentation-genai-openai",
        ),
        Row(
            "otel_genai_span",
            "OTel `genai-openai` (content SPAN_ONLY)",
            module="opentelemetry.instrumentation.genai.openai",
            dist="opentelemetry-instrumentation-genai-openai",
            env={CAPTURE_ENV: "SPAN_ONLY"},
            content="span",
        ),
        Row(
            "openinference",
            "OpenInference `openinference-instrumentation-openai` (inputs/outputs hidden)",
            module="openinference.instrumentation.openai",
            dist="openinference-instrumentation-openai",
            kwargs=_openinference_hidden,
        ),
        Row(
            "openinference_default",
            "OpenInference (defaults: content on)",
            module="openinference.instrumentation.openai",
            dist="openinference-instrumentation-openai",
            content="span",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Uninstrument check
# ---------------------------------------------------------------------------------------------

_WATCHED = ("openai", "openai._client", "openai._base_client", "openai.resources")
_CLASS_MODULES = ("openai.resources.", "openai._client", "openai._base_client")


def _import_resources() -> None:
    """Import every ``openai.resources`` module: the SDK imports them lazily, instrumentors eagerly."""
    import openai.resources

    for info in pkgutil.walk_packages(openai.resources.__path__, "openai.resources."):
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional extra the SDK cannot import here
            pass


def _watched_modules() -> list[Any]:
    _import_resources()
    mods = []
    for name, mod in list(sys.modules.items()):
        if mod is None:
            continue
        if name in _WATCHED[:3] or name.startswith("openai.resources."):
            mods.append(mod)
    return mods


def _own_classes(mod: Any) -> list[type]:
    out = []
    for value in list(vars(mod).values()):
        # type(value), not inspect.isclass: openai's module-level lazy proxies load on __class__
        if issubclass(type(value), type) and getattr(value, "__module__", "").startswith(
            _CLASS_MODULES
        ):
            out.append(value)
    return out


_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType, type)


class PatchGuard:
    """Snapshot of the SDK's callables; after uninstrument, lists and undoes what is left."""

    def __init__(self) -> None:
        self.modules: dict[Any, dict[str, Any]] = {}
        self.classes: dict[type, dict[str, Any]] = {}
        for mod in _watched_modules():
            self.modules[mod] = dict(vars(mod))
            for cls in _own_classes(mod):
                if cls not in self.classes:
                    self.classes[cls] = dict(vars(cls))

    @staticmethod
    def _effective(owner_dicts: list[dict[str, Any]], name: str) -> Any:
        for d in owner_dicts:
            if name in d:
                return d[name]
        return None

    def leftovers(self, restore: bool = True, only: set[str] | None = None) -> list[str]:
        """Patched SDK attributes that differ from the pristine snapshot (restored unless told not).

        ``only`` limits the check to names a full check reported before (fast enough per block).
        """
        found = []
        for mod, saved in self.modules.items():
            current = vars(mod)
            for name, value in saved.items():
                label = f"{mod.__name__}.{name}"
                if only is not None and label not in only:
                    continue
                if current.get(name) is not value and isinstance(value, _FUNCTION_TYPES):
                    found.append(label)
                    if restore:
                        setattr(mod, name, value)
        for cls, saved in self.classes.items():
            prefix = f"{cls.__module__}.{cls.__qualname__}."
            if only is not None and not any(o.startswith(prefix) for o in only):
                continue
            current = dict(vars(cls))
            mro_saved = [self.classes.get(k, dict(vars(k))) for k in cls.__mro__]
            for name in set(current) | set(saved):
                if name.startswith("__") and name not in (
                    "__init__",
                    "__call__",
                    "__iter__",
                    "__next__",
                ):
                    continue
                now = current.get(name)
                was = saved.get(name, None)
                if now is was:
                    continue
                if name not in saved and now is self._effective(mro_saved[1:], name):
                    continue  # re-set to the very object it inherited: harmless
                found.append(prefix + name)
                if restore:
                    if name in saved:
                        setattr(cls, name, was)
                    else:
                        delattr(cls, name)
        return sorted(set(found))
