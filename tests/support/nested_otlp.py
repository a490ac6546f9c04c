"""OTLP export requests nested as deep as asked, built by hand (protobuf's own encoder would
refuse to build the deepest ones): an attribute whose AnyValue is arrays or kvlists inside
one another around a string, as protobuf wire bytes or as OTLP/JSON."""

from __future__ import annotations

import json

from support.running_service import EMAIL, ids

(TRACE, SPAN), *_ = ids(1, seed=7)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def wire_value(depth: int, kind: str, leaf: str = EMAIL) -> bytes:
    """An AnyValue ``depth`` arrays (``kind="array"``) or kvlists deep around ``leaf``."""
    value = _field(1, leaf.encode())  # AnyValue.string_value
    for _ in range(depth):
        if kind == "array":  # AnyValue.array_value(5) -> ArrayValue.values(1)
            value = _field(5, _field(1, value))
        else:  # AnyValue.kvlist_value(6) -> KeyValueList.values(1) -> KeyValue{key, value}
            value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))
    return value


def wire_request(value: bytes) -> bytes:
    """A request of one span whose attribute ``deep`` is ``value`` (an AnyValue's bytes)."""
    attribute = _field(1, b"deep") + _field(2, value)
    span = _field(1, TRACE) + _field(2, SPAN) + _field(5, b"deep span") + _field(9, attribute)
    return _field(1, _field(2, _field(2, span)))  # resource_spans.scope_spans.spans


def json_value(depth: int, kind: str, leaf: str = EMAIL) -> str:
    value = json.dumps({"stringValue": leaf})
    for _ in range(depth):
        if kind == "array":
            value = '{"arrayValue":{"values":[' + value + "]}}"
        else:
            value = '{"kvlistValue":{"values":[{"key":"k","value":' + value + "}]}}"
    return value


def json_request(value: str) -> bytes:
    span = (
        f'{{"traceId":"{TRACE.hex()}","spanId":"{SPAN.hex()}","name":"deep span",'
        f'"attributes":[{{"key":"deep","value":{value}}}]}}'
    )
    return ('{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + "]}]}]}").encode()
