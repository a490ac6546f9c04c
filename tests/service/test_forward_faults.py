"""Forwarding under faults: a backend slower than the timeout, one that is down for a
while, and senders that flood a service whose backend is down (memory stays bounded)."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from llmtap.service.app import ServiceApp
from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    grpc_call,
    grpc_export,
    metric_value,
    metrics_text,
    running_service,
    simple_spans,
    span_request,
    wait_until,
)


def _send(app: ServiceApp, count: int, per_request: int) -> None:
    for seed in range(1, count // per_request + 1):
        grpc_call(app, span_request(simple_spans(per_request, seed=seed)).SerializeToString())


def test_a_backend_slower_than_the_timeout_gets_longer_deadlines_and_few_duplicates(
    tmp_path: Path,
) -> None:
    with OtlpReceiver() as rx:
        rx.slow_down(0.7)  # every answer takes longer than the 0.4 s timeout
        export = {**grpc_export(rx), "timeout_s": 0.4, "batch_size": 100}
        with running_service(tmp_path, [export]) as app:
            _send(app, 1000, 100)
            wait_until(lambda: app.counters()["forwarded"]["otlp#0"] == 1000, timeout=40)
            text = metrics_text(app)
        spans = rx.spans()
    resent = metric_value(
        text, "llmtap_service_spans_resent_total", destination="otlp#0", reason="timeout"
    )
    assert len({s.span_id for s in spans}) == 1000
    assert resent >= 100  # the first requests did time out, and were counted
    assert len(spans) - 1000 <= resent  # every duplicate the backend got was counted
    assert len(spans) - 1000 <= 300  # not every batch again


def test_delivery_resumes_within_a_second_or_two_of_the_backend_coming_back(
    tmp_path: Path,
) -> None:
    rx = OtlpReceiver().start()
    port = rx.grpc_port
    export = grpc_export(rx)
    rx.stop()  # down: connections are refused
    with running_service(tmp_path, [export]) as app:
        _send(app, 200, 100)
        time.sleep(6)  # long enough for gRPC's default reconnect backoff to grow past 2 s
        with OtlpReceiver(grpc_port=port) as back:
            up = time.monotonic()
            back.wait_for_spans(200, timeout=15)
            resumed = time.monotonic() - up
    assert resumed < 2.5, f"delivery resumed {resumed:.1f} s after the backend came back"


def test_a_flood_with_the_backend_down_is_bounded_in_bytes_and_pushed_back(
    tmp_path: Path,
) -> None:
    big = "x" * 64 * 1024
    with OtlpReceiver() as rx:
        rx.fail_next(1 << 30)
        with running_service(tmp_path, [grpc_export(rx)], queue_max_bytes=2 * 1024 * 1024) as app:
            refused = 0
            for seed in range(1, 21):  # 20 requests of 8 spans of 64 KiB: 10 MiB
                body = span_request(simple_spans(8, seed=seed, content=big)).SerializeToString()
                try:
                    grpc_call(app, body)
                except grpc.RpcError as exc:
                    assert exc.code() is grpc.StatusCode.UNAVAILABLE
                    refused += 1
            (dest,) = app.destinations
            held = dest.depth_bytes()
            text = metrics_text(app)
            rx.fail_next(0)
    assert refused >= 15
    assert held <= 2 * 1024 * 1024 + 8 * 66 * 1024  # the bound plus at most one request
    assert metric_value(text, "llmtap_service_queue_bytes", destination="otlp#0") == held
    assert app.counters()["rejected"]["backpressure"] == refused * 8


@pytest.mark.parametrize(("limit_mib", "taken"), [(16, False), (1 << 20, True)])
def test_over_its_memory_limit_the_service_refuses_with_a_retryable_answer(
    tmp_path: Path, limit_mib: int, taken: bool
) -> None:
    with (
        OtlpReceiver() as rx,
        running_service(tmp_path, [grpc_export(rx)], memory_limit_mib=limit_mib) as app,
    ):
        body = span_request(simple_spans(5)).SerializeToString()
        try:
            grpc_call(app, body)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
        counters = app.counters()
        refusals = metric_value(
            metrics_text(app),
            "llmtap_service_requests_total",
            transport="grpc",
            outcome="memory_limit",
        )
    if taken:
        assert code is grpc.StatusCode.OK and counters["accepted"] == 5
        assert refusals == 0
    else:  # this test process uses far more than 16 MiB
        assert code is grpc.StatusCode.UNAVAILABLE
        assert counters["accepted"] == 0
        assert refusals == 1
