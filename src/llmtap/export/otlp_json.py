"""OTLP/JSON: the OTLP specification's JSON encoding of export requests (the Collector's
``otlpjsonfile`` receiver and ``file`` exporter, and OTLP/HTTP with JSON bodies, use it).

The specification's JSON Protobuf Encoding is protobuf's JSON mapping with deviations, which
:func:`otlp_json` applies:

- ``traceId``, ``spanId`` and ``parentSpanId`` (in spans, links, log records, exemplars)
  are lowercase hex, not base64;
- enum values (``kind``, ``status.code``, ...) are integers, not names;
- keys are lowerCamelCase field names; 64-bit integers are decimal strings, as protobuf's
  mapping writes them.

:func:`parse_otlp_json` reads such a document back, and also what protobuf's default mapping
writes (base64 ids, enum names, snake_case keys), as earlier llmtap versions and some
senders do. A document nested deeper than :data:`MAX_JSON_DEPTH` arrays and objects is
refused before it is parsed, and one whose messages nest deeper than protobuf's limit (100)
when it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["MAX_JSON_DEPTH", "OtlpJsonError", "json_depth", "otlp_json", "parse_otlp_json"]

#: arrays and objects nested deeper than this are refused unparsed: an OTLP request within
#: protobuf's limit of 100 nested messages takes at most two JSON levels per message
MAX_JSON_DEPTH = 200

#: id fields and their sizes in bytes
_ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}
_SNAKE_IDS = {"trace_id": "traceId", "span_id": "spanId", "parent_span_id": "parentSpanId"}
_HEX = frozenset("0123456789abcdefABCDEF")
_BAD_ID = "_w=="  # one byte (0xff)
_NOT_SYNTAX = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_PARENS = bytes.maketrans(b"[]{}", b"()()")


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
    line: str | bytes, message: Message | None = None, *, strict_ids: bool = True
) -> ExportTraceServiceRequest | Any:
    """One OTLP/JSON line as a protobuf message (an ``ExportTraceServiceRequest`` unless
    ``message`` is given); hex ids as the specification writes them, or base64 ids as
    protobuf's mapping does. Unknown fields are ignored, as the specification requires.
    With ``strict_ids=False`` an id of the wrong size or form does not fail the whole
    request: it comes out as an id of the wrong size, which a receiver refuses for that
    span alone (OTLP's partial success). Raises :class:`OtlpJsonError`."""
    depth = json_depth(line, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        raise OtlpJsonError(f"nested deeper than {MAX_JSON_DEPTH} arrays and objects")
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OtlpJsonError(f"not JSON: {exc}") from None
    except RecursionError:
        raise OtlpJsonError("nested too deeply to parse") from None
    if not isinstance(doc, dict):
        raise OtlpJsonError("expected a JSON object (an OTLP export request)")
    _ids_for_protobuf(doc, strict_ids)
    target = message if message is not None else ExportTraceServiceRequest()
    try:
        ParseDict(doc, target, ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError) as exc:
        if "too deep" in str(exc):
            raise OtlpJsonError(
                "messages nested deeper than protobuf's limit of 100 (arrayValue or "
                "kvlistValue inside one another?)"
            ) from None
        raise OtlpJsonError(f"not an OTLP export request: {exc}") from None
    return target


def json_depth(text: str | bytes, limit: int) -> int:
    """How deeply the JSON text ``text`` nests arrays and objects (brackets in strings do not
    count), without parsing it; any count above ``limit`` comes out as ``limit + 1``. For
    text that is not JSON it is at least the depth a parser would reach before failing."""
    if isinstance(text, str):
        data = text.encode("utf-8", "surrogatepass")
    elif json.detect_encoding(text).startswith("utf-8"):
        data = text
    else:  # UTF-16 or UTF-32, which json.loads reads too
        try:
            data = text.decode(json.detect_encoding(text)).encode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return 0  # not JSON: json.loads says so without going deep
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # only quotes and brackets are left; an empty string, or the quotes between two
    # strings with no bracket in between, are a pair of quotes that can go
    data = data.translate(None, _NOT_SYNTAX).replace(b'""', b"")
    if b'"' in data:
        data = b"".join(data.split(b'"')[::2])
    data = data.translate(_PARENS)
    for level in range(limit + 1):
        if not data:
            return level
        inner = data.replace(b"()", b"")
        if inner == data:  # unbalanced: what is left is ")))(((" , opens count in full
            return min(level + data.count(b"("), limit + 1)
        data = inner
    return limit + 1


def _ids_for_protobuf(node: Any, strict: bool) -> None:
    """Hex ids to the base64 protobuf's JSON parser wants; base64 ids stay as they are."""
    if isinstance(node, dict):
        for key in list(node):
            value = node[key]
            name = _SNAKE_IDS.get(key, key)
            if name in _ID_FIELDS and isinstance(value, str):
                node[key] = (_id_as_base64 if strict else _any_id_as_base64)(
                    value, _ID_FIELDS[name], key
                )
            else:
                _ids_for_protobuf(value, strict)
    elif isinstance(node, list):
        for item in node:
            _ids_for_protobuf(item, strict)


def _any_id_as_base64(value: str, size: int, key: str) -> str:
    """Hex or base64 of any size, else one byte: an id of the wrong size, for the receiver
    to refuse that span alone."""
    if not value:
        return value
    if len(value) % 2 == 0 and _HEX.issuperset(value):
        return base64.b64encode(bytes.fromhex(value)).decode()
    try:
        base64.b64decode(value, validate=True)
        return value
    except (binascii.Error, ValueError):
        return _BAD_ID


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
