"""Forwarding: destination queues, backends that fail, backpressure to real SDK exporters,
the wire encoding of forwarded requests, and the span conversions."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace.export import SpanExportResult

from llmtap.pipeline.span import EventData, SpanData
from llmtap.service.forward import ConsoleForwarder, FileForwarder
from llmtap.service.spans import (
    RawRequest,
    Snapshot,
    WireRequest,
    encode_request,
    encode_requests,
    from_span_data,
    group_for,
    item,
    resource_group,
    scope_group,
    set_attributes,
    to_span_data,
    write_back,
)
from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    by_span_id,
    grpc_call,
    grpc_export,
    grpc_exporter,
    http_export,
    http_exporter,
    http_post,
    http_url,
    metric_value,
    metrics_text,
    running_service,
    sdk_provider,
    simple_spans,
    span_request,
    wait_until,
)


def _sdk_spans(n: int, name: str = "s") -> list:
    """Finished SDK spans (ReadableSpan) to hand to an exporter directly."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for i in range(n):
        tracer.start_span(f"{name}{i}").end()
    return list(memory.get_finished_spans())


def test_backend_down_then_back_loses_nothing(tmp_path: Path) -> None:
    with OtlpReceiver() as grpc_rx, OtlpReceiver() as http_rx:
        grpc_rx.fail_next(3)
        http_rx.fail_next(3)
        with running_service(tmp_path, [grpc_export(grpc_rx), http_export(http_rx)]) as app:
            for seed in range(5):
                grpc_call(app, span_request(simple_spans(40, seed=seed)).SerializeToString())
            for rx in (grpc_rx, http_rx):
                rx.wait_for_spans(200, timeout=15)
            wait_until(lambda: sum(app.counters()["forwarded"].values()) == 400)
            text = metrics_text(app)
            counters = app.counters()
        for rx in (grpc_rx, http_rx):
            assert len(by_span_id(rx.spans())) == 200
    assert counters["forwarded"] == {"otlp#0": 200, "otlp#1": 200}
    assert counters["dropped"] == {"otlp#0": 0, "otlp#1": 0}
    assert metric_value(text, "llmtap_service_export_failures_total", destination="otlp#0") >= 3
    assert metric_value(text, "llmtap_service_export_failures_total", destination="otlp#1") >= 3


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_full_queue_pushes_back_and_the_sdk_exporter_retry_gets_through(
    tmp_path: Path, transport: str
) -> None:
    with OtlpReceiver() as rx:
        export = {**grpc_export(rx), "queue_size": 50, "batch_size": 50}
        with running_service(tmp_path, [export], queue_size=1, retry_after_s=0.3) as app:
            rx.fail_next(10_000)  # the backend is down: the first batch fills the queue
            exporter = grpc_exporter(app) if transport == "grpc" else http_exporter(app)
            assert exporter.export(_sdk_spans(40, "first")) is SpanExportResult.SUCCESS
            result: list = []
            second = threading.Thread(
                target=lambda: result.append(exporter.export(_sdk_spans(40, "second")))
            )
            second.start()
            wait_until(
                lambda: app.counters()["rejected"]["backpressure"] >= 40,
                what="the second export refused with a retryable error",
            )
            rx.fail_next(0)  # the backend is back: the queue drains, the retry gets in
            second.join(15)
            assert result == [SpanExportResult.SUCCESS]
            spans = rx.wait_for_spans(80, timeout=10)
            text = metrics_text(app)
            exporter.shutdown()
    assert len(by_span_id(spans)) == 80
    outcome = {"transport": transport, "outcome": "backpressure"}
    assert metric_value(text, "llmtap_service_requests_total", **outcome) >= 1
    assert metric_value(text, "llmtap_service_spans_dropped_total", destination="otlp#0",
                        reason="shutdown") == 0  # fmt: skip


def test_backpressure_answers_carry_retry_info(tmp_path: Path) -> None:
    with OtlpReceiver() as rx:
        rx.fail_next(10_000)
        export = {**grpc_export(rx), "queue_size": 10, "batch_size": 10}
        with running_service(tmp_path, [export], queue_size=1, retry_after_s=2.5) as app:
            grpc_call(app, span_request(simple_spans(10)).SerializeToString())
            body = span_request(simple_spans(5, seed=2)).SerializeToString()
            with pytest.raises(grpc.RpcError) as err:
                grpc_call(app, body)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            from google.rpc import error_details_pb2, status_pb2

            trailers = dict(err.value.trailing_metadata())
            status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
            info = error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(info)
            assert (info.retry_delay.seconds, info.retry_delay.nanos) == (2, 500_000_000)
            assert "google.rpc.retryinfo-bin" in trailers
            status_code, headers, _ = http_post(
                http_url(app), body, {"Content-Type": "application/x-protobuf"}
            )
            assert status_code == 503 and headers["retry-after"] == "3"
            rx.fail_next(0)
            rx.wait_for_spans(10)


def test_best_effort_destination_drops_and_counts_instead_of_pushing_back(tmp_path: Path) -> None:
    with OtlpReceiver() as healthy, OtlpReceiver() as down:
        down.fail_next(10_000)
        exports = [
            grpc_export(healthy),
            {**grpc_export(down), "name": "archive", "queue_size": 20, "batch_size": 20},
        ]
        with running_service(
            tmp_path, exports, queue_size=1, best_effort=["archive"], stop_timeout=0.5
        ) as app:
            for seed in range(5):
                grpc_call(app, span_request(simple_spans(20, seed=seed)).SerializeToString())
            healthy.wait_for_spans(100)
            text = metrics_text(app)
    dropped = metric_value(
        text, "llmtap_service_spans_dropped_total", destination="archive", reason="queue_full"
    )
    assert dropped >= 40  # 100 offered, 20 queued and at most 20 in flight
    assert metric_value(text, "llmtap_service_requests_total", transport="grpc", outcome="ok") == 5


def test_a_backend_that_refuses_for_good_does_not_block_the_queue(tmp_path: Path) -> None:
    with OtlpReceiver() as grpc_rx, OtlpReceiver() as http_rx:
        grpc_rx.fail_next(1, grpc_code=grpc.StatusCode.INVALID_ARGUMENT)
        http_rx.fail_next(1, http_status=400)
        with running_service(tmp_path, [grpc_export(grpc_rx), http_export(http_rx)]) as app:
            grpc_call(app, span_request(simple_spans(7, seed=1)).SerializeToString())
            wait_until(lambda: sum(app.counters()["dropped"].values()) == 14)
            grpc_call(app, span_request(simple_spans(3, seed=2)).SerializeToString())
            for rx in (grpc_rx, http_rx):
                assert len(rx.wait_for_spans(3)) == 3
            text = metrics_text(app)
    for dest in ("otlp#0", "otlp#1"):
        assert (
            metric_value(
                text, "llmtap_service_spans_dropped_total", destination=dest, reason="rejected"
            )
            == 7
        )


def test_shutdown_under_load_drains_what_was_accepted(tmp_path: Path) -> None:
    accepted: list[int] = []
    refused = [0]
    stop = threading.Event()
    with OtlpReceiver() as rx:
        app_cm = running_service(tmp_path, [grpc_export(rx)], stop_timeout=10)
        app = app_cm.__enter__()

        def sender(seed: int) -> None:
            n = 0
            while not stop.is_set():
                body = span_request(simple_spans(50, seed=seed * 1000 + n)).SerializeToString()
                n += 1
                try:
                    grpc_call(app, body)
                    accepted.append(50)
                except grpc.RpcError:
                    refused[0] += 1
                    return

        threads = [threading.Thread(target=sender, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        wait_until(lambda: sum(accepted) >= 1500, what="some load")
        rx.fail_next(2)  # the backend hiccups while the service stops
        report = app.stop(10)
        stop.set()
        for t in threads:
            t.join(10)
        spans = rx.spans()
    assert report.drained and report.dropped == {"otlp#0": 0}
    assert len(by_span_id(spans)) == sum(accepted)  # every acknowledged span, once


def test_service_spans_are_forwarded_through_the_stages(tmp_path: Path) -> None:
    data = SpanData(
        name="evaluate faithfulness",
        attributes={
            "gen_ai.evaluation.name": "faithfulness",
            "gen_ai.evaluation.explanation": "mail jane.doe@example.com",
        },
        trace_id=0xABC,
        span_id=0x123,
        parent_span_id=0x77,
        start_ns=10,
        end_ns=20,
        resource={"service.name": "llmtap-judge"},
    )
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        assert app.submit([data]) == 0
        (span,) = rx.wait_for_spans(1)
    assert span.trace_id == f"{0xABC:032x}" and span.parent_span_id == f"{0x77:016x}"
    assert span.attributes["gen_ai.evaluation.explanation"] == "mail <EMAIL>"
    assert span.resource == {"service.name": "llmtap-judge"}
    assert span.scope_name == "llmtap.service"


# the wire encoding and the conversions ---------------------------------------------------------


def _two_resource_request() -> ExportTraceServiceRequest:
    request = span_request(simple_spans(3, seed=1), resource={"service.name": "a"}, scope="s1")
    rs = request.resource_spans[0]
    extra = rs.scope_spans.add()
    extra.scope.name = "s2"
    extra.scope.version = "9"
    extra.schema_url = "https://opentelemetry.io/schemas/1.30.0"
    extra.spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="in s2")
    rs.schema_url = "https://opentelemetry.io/schemas/1.29.0"
    other = span_request(simple_spans(2, seed=2), resource={"service.name": "b"}, scope="s3")
    request.resource_spans.extend(other.resource_spans)
    return request


def _items(request: ExportTraceServiceRequest) -> list:
    raw = request.SerializeToString()
    wire, raw_request = WireRequest.FromString(raw), RawRequest.FromString(raw)
    out = []
    for rs, raw_rs in zip(wire.resource_spans, raw_request.resource_spans, strict=True):
        rgroup = resource_group(rs)
        for ss, raw_ss in zip(rs.scope_spans, raw_rs.scope_spans, strict=True):
            group = scope_group(rgroup, ss)
            out.extend(item(group, body) for body in raw_ss.spans)
    return out


def test_encoded_requests_are_the_received_ones() -> None:
    request = _two_resource_request()
    items = _items(request)
    assert ExportTraceServiceRequest.FromString(encode_request(items)) == request
    pieces = encode_requests(items, max_bytes=150)
    assert len(pieces) > 1 and sum(n for _, n in pieces) == len(items)
    spans = [
        (rs.resource.attributes[0].value.string_value, ss.scope.name, span.name)
        for body, _ in pieces
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    assert spans == [
        ("a", "s1", "op 0"),
        ("a", "s1", "op 1"),
        ("a", "s1", "op 2"),
        ("a", "s2", "in s2"),
        ("b", "s3", "op 0"),
        ("b", "s3", "op 1"),
    ]


def test_conversion_keeps_every_value_and_writes_back_only_changes() -> None:
    span = trace_pb2.Span(
        trace_id=b"\x0a" * 16,
        span_id=b"\x0b" * 8,
        parent_span_id=b"\x0c" * 8,
        name="chat",
        kind=trace_pb2.Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=5,
        end_time_unix_nano=2_000_000_005,
        trace_state="k=v",
    )
    values = {
        "s": "text",
        "b": True,
        "i": -(2**40),
        "f": 0.25,
        "bytes": b"\x00\x01",
        "arr": ("a", "b"),
        "mixed": (1, "x", False),
        "kv": {"inner": "v", "n": 3},
        "empty": None,
    }
    set_attributes(span.attributes, values)
    event = span.events.add(name="e", time_unix_nano=7)
    set_attributes(event.attributes, {"secret": "jane.doe@example.com"})
    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    span.status.message = "boom"
    data = to_span_data(span, {"service.name": "x"}, "scope", "1.0")
    assert data.attributes == values
    assert (data.trace_id, data.span_id, data.parent_span_id) == (
        int.from_bytes(b"\x0a" * 16, "big"),
        int.from_bytes(b"\x0b" * 8, "big"),
        int.from_bytes(b"\x0c" * 8, "big"),
    )
    assert (data.kind, data.is_error, data.status_message, data.duration_s) == (
        "CLIENT",
        True,
        "boom",
        2.0,
    )
    assert data.events == [EventData("e", {"secret": "jane.doe@example.com"}, 7)]
    assert (data.scope_name, data.scope_version, data.trace_state) == ("scope", "1.0", "k=v")

    before = Snapshot(data)
    assert not write_back(span, data, before)  # nothing changed, nothing written
    data.attributes["s"] = "new"
    del data.attributes["b"]
    data.attributes["added"] = 1.5
    data.events[0].attributes["secret"] = "<EMAIL>"
    data.status_message = "boom <EMAIL>"
    assert write_back(span, data, before)
    again = to_span_data(span, {}, "", "")
    assert again.attributes == {
        **{k: v for k, v in values.items() if k != "b"},
        "s": "new",
        "added": 1.5,
    }
    assert again.events[0].attributes == {"secret": "<EMAIL>"}
    assert again.status_message == "boom <EMAIL>"
    rebuilt = from_span_data(again)
    assert to_span_data(rebuilt, {}, "", "").attributes == again.attributes
    assert rebuilt.trace_id == span.trace_id and rebuilt.parent_span_id == span.parent_span_id


def test_file_and_console_forwarders(tmp_path: Path) -> None:
    group = group_for({"service.name": "f"}, "scope")
    items = [item(group, from_span_data(SpanData(
        name=f"s{i}", attributes={"llmtap.cost.total": 0.001}, trace_id=1, span_id=i + 1,
        start_ns=0, end_ns=1_500_000,
    )).SerializeToString()) for i in range(2)]  # fmt: skip
    body = encode_request(items)
    path = tmp_path / "out" / "spans.jsonl"
    forwarder = FileForwarder(path)
    forwarder.send(body, 2)
    forwarder.send(body, 2)
    forwarder.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    doc = json.loads(lines[0])
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert [s["name"] for s in spans] == ["s0", "s1"]
    # OTLP/JSON: lowercase hex ids, as the Collector's otlpjsonfile receiver reads them
    assert spans[0]["traceId"] == f"{1:032x}" and spans[1]["spanId"] == f"{2:016x}"
    out = io.StringIO()
    ConsoleForwarder(out).send(body, 2)
    text = out.getvalue().splitlines()
    assert len(text) == 2 and "[f] s0 1.5 ms $0.001000" in text[0]


def test_file_destination_from_config(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    with running_service(tmp_path, [{"preset": "file", "path": str(path)}]) as app:
        grpc_call(app, span_request(simple_spans(4)).SerializeToString())
        wait_until(lambda: path.exists() and path.read_text().count("\n") >= 1)
    doc = json.loads(path.read_text().splitlines()[0])
    assert len(doc["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 4


def test_sdk_exporter_through_the_service_keeps_order_and_batches(tmp_path: Path) -> None:
    with OtlpReceiver() as rx, running_service(tmp_path, [http_export(rx)]) as app:
        provider = sdk_provider(grpc_exporter(app))
        tracer = provider.get_tracer("t")
        for i in range(1200):
            tracer.start_span(f"s{i}").end()
        provider.shutdown()
        spans = rx.wait_for_spans(1200, timeout=15)
        time.sleep(0.1)
    assert len(by_span_id(rx.spans())) == 1200
    assert len(spans) == 1200
