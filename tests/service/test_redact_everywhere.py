"""The service's redaction of received spans (OTLP protobuf over gRPC, OTLP/JSON over HTTP)
in every place a span carries strings: the name, resource, scope (name, version,
attributes), links, event names, maps, mixed arrays, bytes, attribute keys and free text
under allow-listed keys; and the user label of the cost metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmtap.service.spans import set_attributes
from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    SEAL_KEY,
    grpc_call,
    grpc_export,
    http_post,
    http_url,
    ids,
    metric_value,
    metrics_text,
    running_service,
    seal_spans,
    simple_spans,
    span_request,
)

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
API_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5q"


def leaky_request(seed: int) -> ExportTraceServiceRequest:
    """Two spans under one resource and scope, both holding PII in every place."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    set_attributes(rs.resource.attributes, {"service.name": "shop", "deploy.owner": EMAIL})
    ss = rs.scope_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    ss.scope.name = f"tracer of {EMAIL}"
    ss.scope.version = "1.0"
    set_attributes(ss.scope.attributes, {"scope.note": f"card {CARD}"})
    (t0, s0), (t1, s1) = ids(2, seed)
    for i, (trace_id, span_id) in enumerate([(t0, s0), (t1, s1)]):
        span = ss.spans.add(
            trace_id=trace_id,
            span_id=span_id,
            name=f"lookup {EMAIL}",
            kind=3,
            start_time_unix_nano=1_000_000_000,
            end_time_unix_nano=2_000_000_000,
        )
        set_attributes(
            span.attributes,
            {
                "i": i,
                f"contact:{EMAIL}": "kept",
                "app.map": {"who": {"contact": EMAIL, "n": 3}},
                "app.mixed": (1, f"card {CARD}", True),
                "app.blob": f"key {API_KEY}".encode(),
                "app.binary": b"\xff\xfe" + EMAIL.encode(),
                "session.id": f"session of {EMAIL}",
                "server.address": "10.0.0.5",
            },
        )
        event = span.events.add(name=f"mailed {EMAIL}", time_unix_nano=1_500_000_000)
        set_attributes(event.attributes, {"n": 1})
        link = span.links.add(trace_id=t0, span_id=bytes(range(1, 9)))
        set_attributes(link.attributes, {"why": f"key {API_KEY}"})
        span.status.code = 2
        span.status.message = f"failed for {EMAIL}"
    return request


def check_redacted(rx: OtlpReceiver) -> None:
    spans = rx.wait_for_spans(2)
    for got in spans:
        assert got.name == "lookup <EMAIL>"
        assert got.resource == {"service.name": "shop", "deploy.owner": "<EMAIL>"}
        assert (got.scope_name, got.scope_version) == ("tracer of <EMAIL>", "1.0")
        a = got.attributes
        assert a["contact:<EMAIL>"] == "kept"
        assert a["app.map"] == {"who": {"contact": "<EMAIL>", "n": 3}}
        assert a["app.mixed"] == [1, "card <CREDIT_CARD>", True]
        assert a["app.blob"] == b"key <SECRET>"
        assert a["app.binary"] == b"\xff\xfe" + EMAIL.encode()  # not UTF-8: left as sent
        assert a["session.id"] == "session of <EMAIL>"
        assert a["server.address"] == "10.0.0.5"
        assert got.events[0].name == "mailed <EMAIL>"
        assert got.links[0].attributes == {"why": "key <SECRET>"}
        assert got.status_message == "failed for <EMAIL>"
        # emails: name, resource, scope name, key, map, session.id, event name, status;
        # cards: scope attribute, mixed array; secrets: bytes, link
        assert a["llmtap.redaction.count"] == 12
        assert a["llmtap.redaction.email"] == 8
        assert a["llmtap.redaction.credit_card"] == 2
        assert a["llmtap.redaction.secret"] == 2
    requests = rx.requests("traces")
    scopes = [ss for r in requests for rs in r.message.resource_spans for ss in rs.scope_spans]
    assert sum(len(ss.spans) for ss in scopes) == 2
    for r in requests:
        for rs in r.message.resource_spans:
            assert rs.schema_url == "https://opentelemetry.io/schemas/1.26.0"
            for ss in rs.scope_spans:
                assert ss.schema_url == "https://opentelemetry.io/schemas/1.26.0"
                note = {kv.key: kv.value.string_value for kv in ss.scope.attributes}
                assert note == {"scope.note": "card <CREDIT_CARD>"}
    assert len(scopes) == 1  # the two spans, redacted alike, still share one ScopeSpans


def test_protobuf_spans_are_redacted_everywhere(tmp_path: Path) -> None:
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        grpc_call(app, leaky_request(31).SerializeToString())
        check_redacted(rx)


def test_json_spans_are_redacted_everywhere(tmp_path: Path) -> None:
    body = json_format.MessageToJson(leaky_request(32)).encode()
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        status, _, _ = http_post(http_url(app), body, {"Content-Type": "application/json"})
        assert status == 200
        check_redacted(rx)


def test_a_clean_span_is_forwarded_under_its_own_resource_and_scope(tmp_path: Path) -> None:
    request = span_request(simple_spans(2, seed=33), resource={"service.name": "clean"})
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        grpc_call(app, request.SerializeToString())
        spans = rx.wait_for_spans(2)
    assert {s.resource["service.name"] for s in spans} == {"clean"}
    assert all(s.attributes["llmtap.redaction.count"] == 0 for s in spans)


CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 10,
    "llmtap.cost.total": 0.5,
    "llmtap.feature": "support",
}


@pytest.mark.parametrize(
    ("extra", "config"),
    [
        ({"llmtap.redaction.count": 0}, None),  # sealed upstream: the stages do not run
        ({}, {"redaction": {"enabled": False}}),  # redaction off
    ],
    ids=["trusted-upstream", "redaction-off"],
)
def test_an_email_user_id_is_never_a_metric_label(
    tmp_path: Path,
    extra: dict[str, Any],
    config: dict[str, Any] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMTAP_REDACTION_KEY", SEAL_KEY)
    spans = [
        *simple_spans(2, 34, **{**CALL, **extra, "user.id": EMAIL}),
        *simple_spans(1, 35, **{**CALL, **extra, "user.id": "u-42"}),
    ]
    if extra:
        seal_spans(spans)
    with running_service(tmp_path, config=config) as app:
        grpc_call(app, span_request(spans).SerializeToString())
        text = metrics_text(app)
    assert EMAIL not in text
    name = "llmtap_user_cost_usd_total"
    assert metric_value(text, name, user="u-42", feature="support") == pytest.approx(0.5)
    users = [line for line in text.splitlines() if line.startswith(name + "{")]
    hashed = [line for line in users if 'user="user:' in line]
    assert len(hashed) == 1  # both spans of the one user add up in one series
    assert hashed[0].endswith(" 1.0")


def test_spans_of_one_scope_redacted_or_not_each_keep_their_own_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMTAP_REDACTION_KEY", SEAL_KEY)
    spans = simple_spans(2, seed=36)
    spans[0]["attributes"]["llmtap.redaction.count"] = 0  # redacted upstream and sealed
    seal_spans(spans[:1])
    request = span_request(spans, resource={"service.name": "shop", "owner": EMAIL})
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        grpc_call(app, request.SerializeToString())
        got = {s.attributes["i"]: s for s in rx.wait_for_spans(2)}
    assert got[0].resource["owner"] == EMAIL  # as the sealed span was sent
    assert got[1].resource == {"service.name": "shop", "owner": "<EMAIL>"}
    assert got[1].attributes["llmtap.redaction.email"] == 1
    assert got[0].scope_name == got[1].scope_name == "raw-test"


def test_the_trace_state_of_spans_and_links_is_redacted(tmp_path: Path) -> None:
    spans = simple_spans(1, seed=37)
    spans[0]["trace_state"] = f"acme=user:{EMAIL},ot=th:8"
    request = span_request(spans)
    link = (
        request.resource_spans[0]
        .scope_spans[0]
        .spans[0]
        .links.add(trace_id=spans[0]["trace_id"], span_id=b"\x00" * 7 + b"\x05")
    )
    link.trace_state = f"acme={EMAIL}"
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        grpc_call(app, request.SerializeToString())
        (got,) = rx.wait_for_spans(1)
        (forwarded,) = rx.requests("traces")
    span = forwarded.message.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_state == "acme=user:<EMAIL>,ot=th:8"
    assert span.links[0].trace_state == "acme=<EMAIL>"
    assert got.attributes["llmtap.redaction.email"] == 2
