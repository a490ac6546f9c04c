"""``llmtap.configure()``: tracing, metrics and the SDK instrumentors in one call."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from llmtap import steps
from llmtap.config import Settings
from llmtap.instrumentation._invocation import Telemetry

_log = logging.getLogger("llmtap")


@dataclass
class Configured:
    """What ``configure()`` set up; ``shutdown()`` flushes and restores the SDKs."""

    tracer_provider: Any
    meter_provider: Any
    instrumentors: list[Any] = field(default_factory=list)
    owns_providers: bool = True

    def shutdown(self) -> None:
        for instrumentor in self.instrumentors:
            instrumentor.uninstrument()
        steps.use_telemetry(None)
        if self.owns_providers:
            self.tracer_provider.shutdown()
            self.meter_provider.shutdown()


def _otlp_processor(endpoint: str | None) -> SpanProcessor | None:
    if not (endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        return None
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = f"{endpoint.rstrip('/')}/v1/traces" if endpoint else None
        return BatchSpanProcessor(OTLPSpanExporter(endpoint=url))
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))


def _providers(
    service_name: str | None,
    processors: Sequence[SpanProcessor],
    metric_readers: Sequence[MetricReader],
    otlp_endpoint: str | None,
) -> tuple[TracerProvider, MeterProvider]:
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "llmtap-app"
    resource = Resource.create({"service.name": name})
    tracer_provider = TracerProvider(resource=resource)
    otlp = _otlp_processor(otlp_endpoint)
    for processor in [*processors, *([otlp] if otlp else [])]:
        tracer_provider.add_span_processor(processor)
    readers = list(metric_readers)
    if otlp is not None:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        if not os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").startswith("http"):
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(otlp_endpoint)))
    return tracer_provider, MeterProvider(resource=resource, metric_readers=readers)


def configure(
    *,
    service_name: str | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    span_exporters: Sequence[Any] = (),
    metric_readers: Sequence[MetricReader] = (),
    otlp_endpoint: str | None = None,
    settings: Settings | None = None,
    set_global: bool = True,
) -> Configured:
    """Trace every OpenAI and Anthropic call of this process.

    When a tracer provider is already installed (``opentelemetry-instrument``), it is used
    as it is and only the instrumentors are added.
    """
    settings = settings or Settings.from_env()
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider) and not (span_processors or span_exporters):
        tracer_provider, meter_provider, owns = existing, metrics.get_meter_provider(), False
    else:
        processors = [*span_processors, *(SimpleSpanProcessor(e) for e in span_exporters)]
        tracer_provider, meter_provider = _providers(
            service_name, processors, metric_readers, otlp_endpoint
        )
        owns = True
        if set_global:
            trace.set_tracer_provider(tracer_provider)
            metrics.set_meter_provider(meter_provider)
    logger_provider = _logs.get_logger_provider()
    if settings.capture.on_event and not isinstance(logger_provider, LoggerProvider):
        _log.info("llmtap: content events requested but no logger provider is configured")
    steps.use_telemetry(Telemetry(settings, tracer_provider, meter_provider, logger_provider))
    done = Configured(tracer_provider, meter_provider, owns_providers=owns)
    done.instrumentors = _instrument(settings, tracer_provider, meter_provider, logger_provider)
    return done


def _instrument(settings: Settings, tracer_provider: Any, meter_provider: Any, logger: Any):
    found = []
    for module, cls in (
        ("llmtap.instrumentation.openai", "OpenAIInstrumentor"),
        ("llmtap.instrumentation.anthropic", "AnthropicInstrumentor"),
        ("opentelemetry.instrumentation.threading", "ThreadingInstrumentor"),
    ):
        try:
            instrumentor = getattr(__import__(module, fromlist=[cls]), cls)()
        except (ImportError, AttributeError) as exc:
            _log.debug("llmtap: %s not available: %s", module, exc)
            continue
        if instrumentor.is_instrumented_by_opentelemetry:
            continue
        instrumentor.instrument(
            settings=settings,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            logger_provider=logger,
        )
        found.append(instrumentor)
    return found
