"""OTLP JSON lines: one ``ExportTraceServiceRequest`` per line, in the OTLP specification's
JSON encoding (:mod:`llmtap.export.otlp_json`): the Collector's ``otlpjsonfile`` receiver
and ``file`` exporter use the same files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llmtap.export.otlp_json import OtlpJsonError, otlp_json, parse_otlp_json

__all__ = ["JsonLinesSpanExporter", "read_otlp_json_lines"]


def read_otlp_json_lines(
    path: str | os.PathLike,
) -> Iterator[tuple[int, ExportTraceServiceRequest | None, str | None]]:
    """``(line number, request, None)`` for each request of an OTLP JSON-lines file, or
    ``(line number, None, reason)`` for a line that is not one; blank lines are skipped.
    Raises OSError when the file cannot be read."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield number, parse_otlp_json(line), None
            except OtlpJsonError as exc:
                yield number, None, str(exc)


class JsonLinesSpanExporter(SpanExporter):
    """Appends each batch of spans to ``path`` as one OTLP/JSON line."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = otlp_json(encode_spans(spans))
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None
