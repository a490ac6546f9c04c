"""OTLP JSON lines: one ``ExportTraceServiceRequest`` per line, as the OTLP specification
encodes it (the Collector's ``otlpjsonfile`` receiver and ``file`` exporter use the same).

The specification's JSON Protobuf Encoding is protobuf's JSON mapping with deviations, which
:func:`otlp_json` applies:

- ``traceId``, ``spanId`` and ``parentSpanId`` (in spans, links, log records, exemplars)
  are lowercase hex, not base64;
- enum values (``kind``, ``status.code``, ...) are integers, not names;
- keys are lowerCamelCase field names; 64-bit integers are decimal strings, as protobuf's
  mapping writes them.

:func:`parse_otlp_json` reads such a line back, and also the lines earlier versions wrote
with protobuf's default mapping (base64 ids, enum names), so old files keep working.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = [
    "JsonLinesSpanExporter",
    "OtlpJsonError",
    "otlp_json",
    "parse_otlp_json",
    "read_otlp_json_lines",
]

#: id fields and their sizes in bytes
_ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}
_SNAKE_IDS = {"trace_id": "traceId", "span_id": "spanId", "parent_span_id": "parentSpanId"}
_HEX = frozenset("0123456789abcdefABCDEF")


class OtlpJsonError(ValueError):
    """A line that is not an OTLP/JSON ``ExportTraceServiceRequest``."""


def otlp_json(message: Message) -> str:
    """``message`` (an OTLP export request) as one line of OTLP/JSON."""
    doc = MessageToDict(message, use_integers_for_enums=True)
    _ids_to_hex(doc)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _ids_to_hex(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _ids_to_hex(item)


def parse_otlp_json(
    line: str | bytes, message: Message | None = None
) -> ExportTraceServiceRequest | Any:
    """One OTLP/JSON line as a protobuf message (an ``ExportTraceServiceRequest`` unless
    ``message`` is given); hex ids as the specification writes them, or base64 ids as
    protobuf's mapping does. Unknown fields are ignored, as the specification requires.
    Raises :class:`OtlpJsonError`."""
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OtlpJsonError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise OtlpJsonError("expected a JSON object (an OTLP export request)")
    _ids_for_protobuf(doc)
    target = message if message is not None else ExportTraceServiceRequest()
    try:
        ParseDict(doc, target, ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError) as exc:
        raise OtlpJsonError(f"not an OTLP export request: {exc}") from None
    return target


def _ids_for_protobuf(node: Any) -> None:
    """Hex ids to the base64 protobuf's JSON parser wants; base64 ids stay as they are."""
    if isinstance(node, dict):
        for key in list(node):
            value = node[key]
            name = _SNAKE_IDS.get(key, key)
            if name in _ID_FIELDS and isinstance(value, str):
                node[key] = _id_as_base64(value, _ID_FIELDS[name], key)
            else:
                _ids_for_protobuf(value)
    elif isinstance(node, list):
        for item in node:
            _ids_for_protobuf(item)


def _id_as_base64(value: str, size: int, key: str) -> str:
    if not value:
        return value
    if len(value) == 2 * size and _HEX.issuperset(value):
        return base64.b64encode(bytes.fromhex(value)).decode()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise OtlpJsonError(
            f"{key}: expected {2 * size} hex digits (or the base64 of {size} bytes), "
            f"got {value[:40]!r}"
        )
    return value


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
