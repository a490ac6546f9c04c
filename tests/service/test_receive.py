"""The service's OTLP receivers, fed by the real OTLP exporters and by raw requests; real OTLP
receivers stand in for the backends."""

from __future__ import annotations

import gzip
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.trace import SpanKind, Status, StatusCode

from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    EMAIL,
    by_span_id,
    grpc_call,
    grpc_export,
    grpc_exporter,
    grpc_target,
    http_export,
    http_exporter,
    http_get,
    http_post,
    http_url,
    ids,
    json_body,
    metric_value,
    metrics_text,
    running_service,
    sdk_provider,
    simple_spans,
    span_request,
    wait_until,
)

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 200,
    "llmtap.feature": "support",
}


@pytest.fixture
def backends():
    with OtlpReceiver() as a, OtlpReceiver() as b:
        yield a, b


def _record_spans(provider, tag: str) -> None:
    tracer = provider.get_tracer("app.tracer", "1.2.3")
    with tracer.start_as_current_span(f"workflow {tag}", kind=SpanKind.SERVER) as root:
        root.set_attribute("app.note", f"call me back at {EMAIL}")
        with tracer.start_as_current_span(f"chat {tag}", kind=SpanKind.CLIENT) as chat:
            chat.set_attributes(CHAT)
            chat.set_attribute(
                "gen_ai.input.messages",
                json.dumps(
                    [
                        {
                            "role": "user",
                            "parts": [{"type": "text", "content": f"I am {EMAIL}, help"}],
                        }
                    ]
                ),
            )
            chat.add_event("gen_ai.choice", {"note": f"forwarded to {EMAIL}", "index": 0})
            chat.set_status(Status(StatusCode.ERROR, f"quota for {EMAIL}"))
        with tracer.start_as_current_span(f"costed {tag}", kind=SpanKind.CLIENT) as done:
            # processed by an llmtap app already (a trusted sender): must be left alone
            done.set_attributes(CHAT)
            done.set_attribute("gen_ai.usage.cost", 0.5)
            done.set_attribute("llmtap.redaction.count", 0)
            done.set_attribute("app.kept", "left as the app sent it")


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_real_exporters_reach_every_backend_once_costed_and_redacted(
    tmp_path: Path, backends, transport: str
) -> None:
    grpc_rx, http_rx = backends
    token = "shop-sender-token-0123456789"
    with running_service(
        tmp_path,
        [grpc_export(grpc_rx), http_export(http_rx)],
        trusted_senders=[{"name": "shop", "token": token}],
    ) as app:
        auth = {"authorization": f"Bearer {token}"}
        exporter = (
            grpc_exporter(app, headers=auth)
            if transport == "grpc"
            else http_exporter(app, headers=auth)
        )
        provider = sdk_provider(exporter, "shop")
        for tag in ("a", "b"):
            _record_spans(provider, tag)
        provider.force_flush()
        for rx in backends:
            rx.wait_for_spans(6)
        time.sleep(0.2)  # nothing more arrives
        provider.shutdown()
        counters = app.counters()
    for rx in backends:
        spans = by_span_id(rx.spans())  # asserts: each span exactly once
        assert len(spans) == 6
        names = {s.name: s for s in spans.values()}
        chat, root, done = names["chat a"], names["workflow a"], names["costed a"]
        # cost added by the service's cost stage
        assert chat.attributes["llmtap.cost.total"] == pytest.approx(1000 * 1.5e-7 + 200 * 6e-7)
        assert "gen_ai.usage.cost" not in chat.attributes  # unregistered: not by default
        assert chat.attributes["llmtap.cost.price_model"].startswith("gpt-4o-mini")
        # PII redacted: plain attribute, message JSON, event attribute, status message
        assert root.attributes["app.note"] == "call me back at <EMAIL>"
        messages = json.loads(chat.attributes["gen_ai.input.messages"])
        assert messages[0]["parts"][0]["content"] == "I am <EMAIL>, help"
        assert chat.events[0].attributes == {"note": "forwarded to <EMAIL>", "index": 0}
        assert chat.status_code == "ERROR" and chat.status_message == "quota for <EMAIL>"
        assert chat.attributes["llmtap.redaction.email"] == 3
        assert EMAIL not in json.dumps([s.attributes for s in spans.values()])
        # already costed (under the name older llmtap apps used) and redacted upstream:
        # not touched
        assert done.attributes["gen_ai.usage.cost"] == 0.5
        assert "llmtap.cost.price_model" not in done.attributes
        assert done.attributes["app.kept"] == "left as the app sent it"
        # the rest of the span as sent
        assert chat.parent_span_id == root.span_id and root.parent_span_id is None
        assert chat.trace_id == root.trace_id
        assert (chat.kind, root.kind) == ("CLIENT", "SERVER")
        assert chat.resource["service.name"] == "shop"
        assert (chat.scope_name, chat.scope_version) == ("app.tracer", "1.2.3")
        assert chat.end_time_unix_nano >= chat.start_time_unix_nano > 0
    assert counters["accepted"] == 6
    assert counters["processed"] == 4  # the two pre-processed spans were forwarded as received


def test_otlp_json_with_hex_ids_and_gzip(tmp_path: Path) -> None:
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
        doc = {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]
                    },
                    "scopeSpans": [
                        {
                            "scope": {"name": "js-sdk"},
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": span_id,
                                    "name": "chat",
                                    "kind": 3,
                                    "startTimeUnixNano": "1000000000",
                                    "endTimeUnixNano": "2000000000",
                                    "attributes": [
                                        {"key": "note", "value": {"stringValue": EMAIL}},
                                        {"key": "n", "value": {"intValue": "7"}},
                                    ],
                                    "unknownFieldFromTheFuture": True,
                                }
                            ],
                        }
                    ],
                }
            ]
        }
        status, headers, body = http_post(
            http_url(app),
            gzip.compress(json.dumps(doc).encode()),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert status == 200 and headers["content-type"] == "application/json"
        assert json_body(body) == {}
        (span,) = rx.wait_for_spans(1)
        assert (span.trace_id, span.span_id) == (trace_id, span_id)
        assert span.attributes == {
            "note": "<EMAIL>",
            "n": 7,
            "llmtap.redaction.count": 1,
            "llmtap.redaction.email": 1,
        }
        raw = span_request(simple_spans(2, seed=5)).SerializeToString()
        status, headers, body = http_post(
            http_url(app),
            gzip.compress(raw),
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        )
        assert status == 200 and headers["content-type"] == "application/x-protobuf"
        assert not ExportTraceServiceResponse.FromString(body).HasField("partial_success")
        rx.wait_for_spans(3)


def test_invalid_span_ids_are_a_partial_success(tmp_path: Path) -> None:
    (t1, s1), (t2, s2), (t3, s3) = ids(3)
    spans = [
        {"trace_id": t1, "span_id": s1, "name": "good"},
        {"trace_id": t2[:15], "span_id": s2, "name": "short trace id"},
        {"trace_id": t3, "span_id": bytes(8), "name": "zero span id"},
        {"trace_id": t3, "span_id": s3, "parent_span_id": b"\x01\x02", "name": "bad parent"},
    ]
    body = span_request(spans).SerializeToString()
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        response = grpc_call(app, body)
        assert response.partial_success.rejected_spans == 3
        assert "invalid trace_id" in response.partial_success.error_message
        status, _, data = http_post(http_url(app), body, {"Content-Type": "application/x-protobuf"})
        assert status == 200
        assert ExportTraceServiceResponse.FromString(data).partial_success.rejected_spans == 3
        got = rx.wait_for_spans(2)
        assert {s.name for s in got} == {"good"}
        text = metrics_text(app)
        assert metric_value(text, "llmtap_service_spans_rejected_total", reason="invalid") == 6
        assert (
            metric_value(text, "llmtap_service_requests_total", transport="grpc", outcome="partial")
            == 1
        )


def test_bad_input_is_answered_not_crashed_on(tmp_path: Path) -> None:
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        garbage = b"\x0a\xff\xff\xff\xff\x0f garbage that is not protobuf"
        with pytest.raises(grpc.RpcError) as err:
            grpc_call(app, garbage)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "malformed OTLP protobuf" in err.value.details()

        url = http_url(app)
        status, headers, data = http_post(url, garbage, {"Content-Type": "application/x-protobuf"})
        assert status == 400 and headers["content-type"] == "application/x-protobuf"
        assert "malformed" in status_pb2.Status.FromString(data).message

        status, headers, data = http_post(url, b"{not json", {"Content-Type": "application/json"})
        assert status == 400 and headers["content-type"] == "application/json"
        assert json_body(data)["code"] == 3 and "JSON" in json_body(data)["message"]

        status, _, data = http_post(
            url, b'{"resourceSpans": 5}', {"Content-Type": "application/json"}
        )
        assert status == 400

        status, _, _ = http_post(url, b"x", {"Content-Type": "text/plain"})
        assert status == 415
        status, _, _ = http_post(
            http_url(app, "/v1/logs"), b"", {"Content-Type": "application/json"}
        )
        assert status == 404
        status, _, _ = http_post(
            url, b"not gzip", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
        )
        assert status == 400

        # still serving
        assert grpc_call(app, span_request(simple_spans(1)).SerializeToString()) is not None
        rx.wait_for_spans(1)
        text = metrics_text(app)
    assert (
        metric_value(text, "llmtap_service_requests_total", transport="grpc", outcome="invalid")
        == 1
    )
    assert (
        metric_value(text, "llmtap_service_requests_total", transport="http", outcome="invalid")
        == 4
    )


@pytest.mark.parametrize(
    "framing, body, then_close",
    [
        ("Transfer-Encoding: chunked", b"-5\r\nabc\r\n0\r\n\r\n", False),  # once read to EOF
        ("Transfer-Encoding: chunked", b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n", False),
        ("Transfer-Encoding: chunked", b"10\r\n\x0a\x00", True),  # cut short: once taken
        ("Content-Length: +5", b"\x0a\x00\x0a\x00\x00", False),
        ("Content-Length: 1_0", b"\x0a\x00" * 5, False),
        ("Content-Length: " + "9" * 5000, b"", False),  # int() refuses over 4300 digits
    ],
)
def test_malformed_http_framing_is_a_prompt_400(
    tmp_path: Path, framing: str, body: bytes, then_close: bool
) -> None:
    with running_service(tmp_path) as app:
        assert app.http is not None
        with socket.create_connection(("127.0.0.1", app.http.port), timeout=5) as sock:
            head = f"POST /v1/traces HTTP/1.1\r\nHost: x\r\n{framing}\r\n"
            sock.sendall(head.encode() + b"Content-Type: application/x-protobuf\r\n\r\n" + body)
            if then_close:
                sock.shutdown(socket.SHUT_WR)
            response = http.client.HTTPResponse(sock)
            response.begin()
            message = status_pb2.Status.FromString(response.read()).message
        assert response.status == 400
        assert ("chunked" if "chunked" in framing else "Content-Length") in message


def test_oversized_requests(tmp_path: Path) -> None:
    limit = 64 * 1024
    big = span_request(simple_spans(1, blob="x" * (limit + 10))).SerializeToString()
    with (
        OtlpReceiver() as rx,
        running_service(tmp_path, [grpc_export(rx)], max_message_bytes=limit) as app,
    ):
        with pytest.raises(grpc.RpcError) as err:
            grpc_call(app, big)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        status, _, data = http_post(http_url(app), big, {"Content-Type": "application/x-protobuf"})
        assert status == 413
        assert "exceeds the limit" in status_pb2.Status.FromString(data).message
        # small on the wire, too large once decompressed
        bomb = gzip.compress(big)
        assert len(bomb) < limit
        status, _, _ = http_post(
            http_url(app),
            bomb,
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        )
        assert status == 413
        assert rx.spans() == []


def test_bearer_token(tmp_path: Path) -> None:
    token = "s3cret-token"
    with (
        OtlpReceiver() as rx,
        running_service(tmp_path, [grpc_export(rx)], auth_token=token) as app,
    ):
        body = span_request(simple_spans(1)).SerializeToString()
        for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", token)]):
            with pytest.raises(grpc.RpcError) as err:
                grpc_call(app, body, metadata)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        headers = {"Content-Type": "application/x-protobuf"}
        status, got, _ = http_post(http_url(app), body, headers)
        assert status == 401 and got["www-authenticate"] == "Bearer"
        status, _, _ = http_post(http_url(app), body, {**headers, "Authorization": "Bearer nope"})
        assert status == 401
        assert rx.spans() == []
        # the real exporters with the token as a header
        provider = sdk_provider(grpc_exporter(app, headers={"authorization": f"Bearer {token}"}))
        provider.get_tracer("t").start_span("via grpc").end()
        provider.shutdown()
        provider = sdk_provider(http_exporter(app, headers={"Authorization": f"Bearer {token}"}))
        provider.get_tracer("t").start_span("via http").end()
        provider.shutdown()
        assert {s.name for s in rx.wait_for_spans(2)} == {"via grpc", "via http"}
        assert http_get(http_url(app, "/health"))[0] == 200  # health needs no token
        text = metrics_text(app)
    assert (
        metric_value(
            text, "llmtap_service_requests_total", transport="grpc", outcome="unauthenticated"
        )
        == 3
    )


def test_health_and_metrics_endpoints(tmp_path: Path) -> None:
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        status, body = http_get(http_url(app, "/health"))
        assert status == 200 and json_body(body) == {"status": "ok"}
        with grpc.insecure_channel(grpc_target(app)) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            assert check(b"", timeout=5) == b"\x08\x01"  # SERVING
        judged = app.metrics.counter(
            "llmtap_evaluations_total", "Evaluations run", ("evaluator", "outcome")
        )
        judged.inc(evaluator="faithfulness", outcome="pass")
        grpc_call(app, span_request(simple_spans(3)).SerializeToString())
        rx.wait_for_spans(3)
        wait_until(lambda: app.counters()["forwarded"]["otlp#0"] == 3)
        text = metrics_text(app)
    assert "# TYPE llmtap_service_spans_received_total counter" in text
    assert metric_value(text, "llmtap_service_spans_received_total", transport="grpc") == 3
    assert metric_value(text, "llmtap_service_spans_forwarded_total", destination="otlp#0") == 3
    assert metric_value(text, "llmtap_service_queue_depth", destination="otlp#0") == 0
    assert metric_value(text, "llmtap_service_queue_capacity", destination="otlp#0") == 16384
    assert metric_value(text, "llmtap_service_requests_total", transport="grpc", outcome="ok") == 1
    assert metric_value(text, "llmtap_service_up") == 1
    assert (
        metric_value(text, "llmtap_evaluations_total", evaluator="faithfulness", outcome="pass")
        == 1
    )
    assert 'llmtap_service_request_duration_seconds_bucket{le="+Inf",transport="grpc"} 1.0' in text


def test_cost_and_token_metrics_by_model_and_feature(tmp_path: Path) -> None:
    spans = simple_spans(2, seed=9, **CHAT)
    # costed upstream under the name older llmtap apps and other SDKs use: counted as well
    spans[1]["attributes"].update({"gen_ai.usage.cost": 0.25, "llmtap.redaction.count": 0})
    with running_service(tmp_path) as app:
        grpc_call(app, span_request(spans).SerializeToString())
        text = metrics_text(app)
    labels = {"model": "gpt-4o-mini", "feature": "support", "prompt_version": ""}
    assert metric_value(text, "llmtap_cost_usd_total", **labels) == pytest.approx(
        0.25 + 1000 * 1.5e-7 + 200 * 6e-7
    )
    assert metric_value(text, "llmtap_tokens_total", **labels, type="input") == 2000
    assert metric_value(text, "llmtap_tokens_total", **labels, type="output") == 400


def test_on_spans_hooks_get_processed_spans_and_never_hold_up_forwarding(tmp_path: Path) -> None:
    release = threading.Event()
    got: list = []
    sampled: list = []

    def slow_hook(spans) -> None:
        release.wait(10)
        got.extend(spans)

    keep = ids(6, seed=3)[0][0]
    with (
        OtlpReceiver() as rx,
        running_service(tmp_path, [grpc_export(rx)], hook_queue_size=4) as app,
    ):
        app.on_spans(slow_hook)
        app.on_spans(
            sampled.extend, trace_filter=lambda trace_id: trace_id == int.from_bytes(keep, "big")
        )
        for seed in (3, 4):
            grpc_call(app, span_request(simple_spans(3, seed=seed, note=EMAIL)).SerializeToString())
        rx.wait_for_spans(6, timeout=5)  # while the hook is stuck
        assert got == []
        release.set()
        wait_until(lambda: len(got) == 3, what="the hook's spans")
        text = metrics_text(app)
    assert {s.name for s in got} == {"op 0", "op 1", "op 2"}
    assert all(s.attributes["note"] == "<EMAIL>" for s in got)  # after the stages
    assert got[0].resource == {"service.name": "raw"} and got[0].scope_name == "raw-test"
    assert [s.trace_id for s in sampled] == [int.from_bytes(keep, "big")]
    # the second batch did not fit the hook queue (4 spans) while the first was held
    assert metric_value(text, "llmtap_service_hook_spans_dropped_total") == 3


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_on_both_receivers(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with (
        OtlpReceiver() as rx,
        running_service(
            tmp_path, [grpc_export(rx)], tls_cert_file=str(cert), tls_key_file=str(key)
        ) as app,
    ):
        body = span_request(simple_spans(1)).SerializeToString()
        creds = grpc.ssl_channel_credentials(cert.read_bytes())
        with grpc.secure_channel(grpc_target(app), creds) as channel:
            channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(
                body, timeout=10
            )

        context = ssl.create_default_context(cafile=str(cert))
        assert app.http is not None
        conn = http.client.HTTPSConnection("127.0.0.1", app.http.port, context=context, timeout=10)
        conn.request(
            "POST",
            "/v1/traces",
            span_request(simple_spans(1, seed=2)).SerializeToString(),
            {"Content-Type": "application/x-protobuf"},
        )
        assert conn.getresponse().status == 200
        conn.close()
        assert app.http.url.startswith("https://")
        rx.wait_for_spans(2)


@pytest.mark.parametrize("trust", [True, False])
def test_a_spoofed_redaction_marker_is_never_trusted(tmp_path: Path, trust: bool) -> None:
    marked = simple_spans(1, seed=21, note=EMAIL, **{"llmtap.redaction.count": 2})
    marked[0]["attributes"]["llmtap.redaction.email"] = 2
    with (
        OtlpReceiver() as rx,
        running_service(tmp_path, [grpc_export(rx)], trust_upstream=trust) as app,
    ):
        grpc_call(app, span_request(marked).SerializeToString())
        (span,) = rx.wait_for_spans(1)
    assert span.attributes["note"] == "<EMAIL>"  # the mark alone proves nothing
    assert span.attributes["llmtap.redaction.count"] == 3
    assert span.attributes["llmtap.redaction.email"] == 3
