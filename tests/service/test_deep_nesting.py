"""Deeply nested requests: refused with a clear 400 / INVALID_ARGUMENT, never a dead
connection; the deepest value protobuf takes goes through every stage and is forwarded."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import grpc
import pytest
from google.rpc import status_pb2

from llmtap.export.otlp_json import MAX_JSON_DEPTH, json_depth, otlp_json, parse_otlp_json
from llmtap.pipeline.redact import Redactor
from llmtap.service.spans import WireRequest
from support.nested_otlp import json_request, json_value, wire_request, wire_value
from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    EMAIL,
    grpc_call,
    grpc_export,
    http_post,
    http_url,
    running_service,
    simple_spans,
    span_request,
)

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _runtime_names_depth() -> bool:
    """Whether this protobuf runtime says that nesting was the problem (protobuf 7's upb
    does; protobuf 6.33, the oldest release llmtap supports, only says it could not parse):
    the service can name the nesting only when the runtime does."""
    try:
        WireRequest.FromString(wire_request(wire_value(3000, "array")))
    except Exception as exc:
        return "depth" in str(exc).lower()
    return False


DEEP_PROTOBUF = (
    "nested deeper than protobuf's limit of 100" if _runtime_names_depth() else "malformed"
)
JSON = {"Content-Type": "application/json"}


# helpers ---------------------------------------------------------------------------------------


def _deepest(kind: str) -> int:
    """The deepest value protobuf's parser takes (its limit is 100 nested messages)."""
    depth = 1
    while True:
        try:
            WireRequest.FromString(wire_request(wire_value(depth + 1, kind)))
        except Exception:
            return depth
        depth += 1


def _nested(depth: int, kind: str, leaf: object) -> object:
    for _ in range(depth):
        leaf = [leaf] if kind == "array" else {"k": leaf}
    return leaf


# refused ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, body",
    [
        ("brackets", b"[" * 100_000),
        ("arrayValue", json_request(json_value(3000, "array"))),
        ("kvlistValue", json_request(json_value(3000, "kvlist"))),
    ],
)
def test_deep_json_is_a_400_naming_the_nesting(tmp_path: Path, name: str, body: bytes) -> None:
    with running_service(tmp_path) as app:
        conn = http.client.HTTPConnection("127.0.0.1", app.http.port, timeout=10)  # type: ignore[union-attr]
        started = time.perf_counter()
        conn.request("POST", "/v1/traces", body, JSON)
        response = conn.getresponse()
        answer = json.loads(response.read())
        took = time.perf_counter() - started
        assert response.status == 400, name
        assert answer["code"] == 3  # google.rpc.Code.INVALID_ARGUMENT
        assert f"nested deeper than {MAX_JSON_DEPTH} arrays and objects" in answer["message"]
        assert took < 1.0
        # the same connection goes on serving
        conn.request("POST", "/v1/traces", otlp_json(span_request(simple_spans(1))), JSON)
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read()) == {}
        conn.close()


@pytest.mark.parametrize("kind", ["array", "kvlist"])
def test_deep_json_within_the_json_limit_is_refused_by_the_message_limit(
    tmp_path: Path, kind: str
) -> None:
    depth = _deepest(kind) + 1
    body = json_request(json_value(depth, kind))
    assert json_depth(body, MAX_JSON_DEPTH) <= MAX_JSON_DEPTH
    with running_service(tmp_path) as app:
        status, _, data = http_post(http_url(app), body, JSON)
    assert status == 400
    assert "nested deeper than protobuf's limit of 100" in json.loads(data)["message"]


@pytest.mark.parametrize("kind", ["array", "kvlist"])
def test_deep_protobuf_is_invalid_on_http_and_grpc(tmp_path: Path, kind: str) -> None:
    body = wire_request(wire_value(3000, kind))
    expected = DEEP_PROTOBUF
    with running_service(tmp_path) as app:
        started = time.perf_counter()
        status, headers, data = http_post(http_url(app), body, PROTOBUF)
        http_took = time.perf_counter() - started
        assert status == 400 and headers["content-type"] == "application/x-protobuf"
        answer = status_pb2.Status.FromString(data)
        assert answer.code == 3 and expected in answer.message

        started = time.perf_counter()
        with pytest.raises(grpc.RpcError) as err:
            grpc_call(app, body)
        grpc_took = time.perf_counter() - started
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert expected in err.value.details()
        assert http_took < 1.0 and grpc_took < 1.0
        # both still serve
        assert grpc_call(app, span_request(simple_spans(1)).SerializeToString()) is not None
        ok = span_request(simple_spans(1)).SerializeToString()
        assert http_post(http_url(app), ok, PROTOBUF)[0] == 200


# accepted ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["array", "kvlist"])
def test_the_deepest_value_protobuf_takes_is_redacted_and_forwarded(
    tmp_path: Path, kind: str
) -> None:
    depth = _deepest(kind)
    assert depth >= 30  # protobuf's limit, not a smaller one of ours
    wire = wire_request(wire_value(depth, kind))
    as_json = otlp_json(parse_otlp_json(json_request(json_value(depth, kind))))
    hooked: list[object] = []
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        app.on_spans(lambda spans: hooked.extend(s.attributes["deep"] for s in spans))
        assert grpc_call(app, wire) is not None
        assert http_post(http_url(app), wire, PROTOBUF)[0] == 200
        assert http_post(http_url(app), as_json.encode(), JSON)[0] == 200
        spans = rx.wait_for_spans(3)
    redacted = _nested(depth, kind, "<EMAIL>")
    for span in spans:
        assert span.attributes["deep"] == redacted
        assert "llmtap.redaction.failed" not in span.attributes
        assert span.attributes["llmtap.redaction.email"] == 1
    assert len(hooked) == 3


def test_deep_json_text_in_an_attribute_is_redacted_as_text(tmp_path: Path) -> None:
    deep = "[" * 5000 + json.dumps(f"write to {EMAIL}") + "]" * 5000
    assert Redactor().redact_json(deep, {})[0] == deep.replace(EMAIL, "<EMAIL>")
    request = span_request(simple_spans(1, **{"gen_ai.input.messages": deep}))
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        grpc_call(app, request.SerializeToString())
        (span,) = rx.wait_for_spans(1)
    assert span.attributes["gen_ai.input.messages"] == deep.replace(EMAIL, "<EMAIL>")
    assert span.name == "op 0"  # redaction did not fail closed
    assert span.attributes["llmtap.redaction.email"] == 1


def test_json_depth_counts_brackets_outside_strings_only() -> None:
    assert json_depth('{"a": [1, {"b": "[[[{{{"}], "c\\"[": []}', 10) == 3
    assert json_depth(b"[" * 100_000, 200) == 201
    assert json_depth("[[1]", 200) == 2  # not JSON: what a parser would reach
    assert json_depth(json.dumps([[["\\\\"]]]).encode("utf-16"), 10) == 3
