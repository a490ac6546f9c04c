"""``llmtap.configure()``: tracing, metrics, the span pipeline and the SDK instrumentors."""

from __future__ import annotations

import atexit
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from llmtap import runtime
from llmtap.config import Settings, use_settings
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation.registry import INSTRUMENTATIONS, import_target, installed
from llmtap.pipeline.stages import build_stages
from llmtap.sdk.build import build_destinations, build_sampler
from llmtap.sdk.processor import PipelineProcessor, export_budget, exporter_queue

_log = logging.getLogger("llmtap")


@dataclass
class Configured:
    """What ``configure()`` set up; ``shutdown()`` flushes and restores the SDKs."""

    tracer_provider: Any
    meter_provider: Any
    pipeline: PipelineProcessor | None = None
    instrumentors: list[Any] = field(default_factory=list)
    owns_providers: bool = True
    _providers_shut_down: bool = field(default=False, repr=False)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every ended span now (through the pipeline, to every destination)."""
        return bool(self.tracer_provider.force_flush(timeout_millis))

    def shutdown(self) -> None:
        for instrumentor in self.instrumentors:
            instrumentor.uninstrument()
        runtime.use_telemetry(None)
        use_settings(None)
        if self.owns_providers:
            self.shutdown_providers()

    def shutdown_providers(self) -> None:
        """Traces, then metrics, within one budget (``PipelineProcessor.export_budget``: the
        ``OTEL_BSP_EXPORT_TIMEOUT`` / ``OTEL_EXPORTER_OTLP_*TIMEOUT`` settings); also what
        runs at interpreter exit. Starts no thread."""
        if self._providers_shut_down:
            return
        self._providers_shut_down = True
        atexit.unregister(self.shutdown_providers)
        budget = (self.pipeline.export_budget() if self.pipeline else export_budget())[0]
        deadline = time.monotonic() + budget
        self.tracer_provider.shutdown()
        # metrics get what is left (1 ms at least: enough to stop their reader and exporter)
        left_ms = max((deadline - time.monotonic()) * 1000, 1.0)
        try:
            self.meter_provider.shutdown(timeout_millis=left_ms)
        except Exception as exc:  # the SDK raises when a reader failed to shut down
            _log.debug("llmtap: meter provider shutdown: %s", exc)


def load(config: Any) -> Any:
    """An ``LlmtapConfig`` from an object, a path, or ``LLMTAP_CONFIG`` (None)."""
    from llmtap.config_file import LlmtapConfig, load_config

    if isinstance(config, LlmtapConfig):
        return config
    return load_config(config)


def _otlp_env_destination(otlp_endpoint: str | None) -> list[Any]:
    endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return []
    if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint)
    return [exporter_queue("otlp-env", exporter)]


def _metric_readers(readers: Sequence[MetricReader], otlp_endpoint: str | None) -> list[Any]:
    out = list(readers)
    endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint and not os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").startswith("http"):
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        out.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint)))
    return out


def configure(
    config: Any = None,
    *,
    service_name: str | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    span_exporters: Sequence[Any] = (),
    metric_readers: Sequence[MetricReader] = (),
    otlp_endpoint: str | None = None,
    settings: Settings | None = None,
    set_global: bool = True,
) -> Configured:
    """Trace every OpenAI and Anthropic call of this process through the span pipeline.

    ``config`` is an ``llmtap.yaml`` path or a loaded ``LlmtapConfig`` (default: the file
    named by ``LLMTAP_CONFIG``, else built-in defaults). When a tracer provider is already
    installed (``opentelemetry-instrument``), it is kept and only the instrumentors are added.
    """
    from llmtap.config_file import settings_from

    cfg = load(config)
    settings = settings or settings_from(cfg, os.environ)
    use_settings(settings)
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider) and not (span_processors or span_exporters):
        done = Configured(existing, metrics.get_meter_provider(), owns_providers=False)
    else:
        done = _providers(cfg, service_name, span_processors, span_exporters, metric_readers,
                          otlp_endpoint)  # fmt: skip
        if set_global:
            trace.set_tracer_provider(done.tracer_provider)
            metrics.set_meter_provider(done.meter_provider)
    logger_provider = _logs.get_logger_provider()
    telemetry = Telemetry(settings, done.tracer_provider, done.meter_provider, logger_provider)
    runtime.use_telemetry(telemetry)
    done.instrumentors = _instrument(settings, done, logger_provider)
    return done


def _providers(
    cfg: Any,
    service_name: str | None,
    span_processors: Sequence[SpanProcessor],
    span_exporters: Sequence[Any],
    metric_readers: Sequence[MetricReader],
    otlp_endpoint: str | None,
) -> Configured:
    from llmtap.config_file import effective_service_name

    named = service_name or effective_service_name(cfg, os.environ)
    name = named or "llmtap-app"
    resource = Resource.create({"service.name": name})
    # one exit hook for both (below), so that their shutdown shares one budget
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=_metric_readers(metric_readers, otlp_endpoint),
        shutdown_on_exit=False,
    )
    tracer_provider = TracerProvider(
        resource=resource, sampler=build_sampler(cfg), shutdown_on_exit=False
    )
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    destinations = build_destinations(cfg, named) + _otlp_env_destination(otlp_endpoint)
    destinations += [exporter_queue(f"exporter#{i}", e) for i, e in enumerate(span_exporters)]
    pipeline = PipelineProcessor(build_stages(cfg, meter_provider), destinations)
    tracer_provider.add_span_processor(pipeline)
    runtime.use_pipeline(tracer_provider, pipeline)
    done = Configured(tracer_provider, meter_provider, pipeline)
    atexit.register(done.shutdown_providers)
    return done


# context follows spans into thread pools
_THREADING = "opentelemetry.instrumentation.threading:ThreadingInstrumentor"


def _instrument(settings: Settings, done: Configured, logger_provider: Any) -> list[Any]:
    found = []
    # an SDK that is not installed is never imported: its adapters are not loaded either
    targets = [i.target for i in INSTRUMENTATIONS if installed(i)]
    for target in (*targets, _THREADING):
        try:
            instrumentor = import_target(target)()
        except (ImportError, AttributeError) as exc:
            _log.debug("llmtap: %s not available: %s", target.partition(":")[0], exc)
            continue
        if instrumentor.is_instrumented_by_opentelemetry:
            continue
        instrumentor.instrument(
            settings=settings,
            tracer_provider=done.tracer_provider,
            meter_provider=done.meter_provider,
            logger_provider=logger_provider,
        )
        found.append(instrumentor)
    return found
