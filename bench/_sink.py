"""The telemetry sink every benchmark row exports to: SDK providers whose exporters drop data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

# content capture off in llmtap and every peer, for rows that compare the same work
CONTENT_OFF_ENV = {
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT",
    "TRACELOOP_TRACE_CONTENT": "false",
    "OPENINFERENCE_HIDE_INPUTS": "true",
    "OPENINFERENCE_HIDE_OUTPUTS": "true",
}


class DropSpans(SpanExporter):
    """Counts and drops spans; keeps them only while ``keep`` is set (inspection)."""

    def __init__(self) -> None:
        self.count = 0
        self.keep = False
        self.kept: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        if self.keep:
            self.kept.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class DropLogs(LogRecordExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.count += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class Sink:
    """Tracer, meter and logger providers, installed globally and passed to instrumentors."""

    def __init__(self, batch: bool = False) -> None:
        self.spans = DropSpans()
        self.logs = DropLogs()
        self.tracer_provider = TracerProvider()
        span_proc = BatchSpanProcessor(self.spans) if batch else SimpleSpanProcessor(self.spans)
        self.tracer_provider.add_span_processor(span_proc)
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.logger_provider = LoggerProvider()
        log_proc = (
            BatchLogRecordProcessor(self.logs) if batch else SimpleLogRecordProcessor(self.logs)
        )
        self.logger_provider.add_log_record_processor(log_proc)
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)
        try:
            from opentelemetry._logs import set_logger_provider

            set_logger_provider(self.logger_provider)
        except ImportError:  # pragma: no cover
            pass

    def providers(self) -> dict[str, Any]:
        return {
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            "logger_provider": self.logger_provider,
        }

    def metric_totals(self) -> dict[tuple[str, str], float]:
        """(scope, metric) -> measurements recorded so far (histogram counts, counter sums)."""
        out: dict[tuple[str, str], float] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    total = 0.0
                    for point in m.data.data_points:
                        total += getattr(point, "count", None) or getattr(point, "value", 0) or 0
                    out[(sm.scope.name, m.name)] = total
        return out

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()
