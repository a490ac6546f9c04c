"""The service bounds the redaction work of a request: one 10 MB attribute full of emails
is answered in a few seconds (it took over a minute) with the value replaced, never
forwarded unscanned; a request over its time budget has what is left replaced."""

from __future__ import annotations

import time
from pathlib import Path

from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    grpc_call,
    grpc_export,
    metric_value,
    metrics_text,
    running_service,
    simple_spans,
    span_request,
)

EMAIL = "jane.doe@example.com"


def dense(chars: int) -> str:
    text = "".join(f"user{i}.name@example{i % 97}.com wrote " for i in range(chars // 20 + 1))
    return text[:chars]


def test_a_10_mb_attribute_of_emails_is_answered_in_seconds(tmp_path: Path) -> None:
    spans = simple_spans(1, 71, huge=dense(10_000_000), note=f"mail {EMAIL}")
    body = span_request(spans).SerializeToString()
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)]) as app:
        start = time.perf_counter()
        grpc_call(app, body)
        elapsed = time.perf_counter() - start
        (span,) = rx.wait_for_spans(1)
        text = metrics_text(app)
    assert elapsed < 5.0
    assert metric_value(text, "llmtap_service_redaction_over_budget_total") == 1
    assert span.attributes["huge"] == "<OVER_BUDGET>"
    assert span.attributes["note"] == "mail <EMAIL>"
    assert span.attributes["llmtap.redaction.over_budget"] == 1


def test_what_is_left_when_the_request_budget_runs_out_is_replaced(tmp_path: Path) -> None:
    spans = simple_spans(5, 72, note=f"mail {EMAIL}", text=dense(5000))
    with (
        OtlpReceiver() as rx,
        running_service(tmp_path, [grpc_export(rx)], request_budget_s=1e-9) as app,
    ):
        grpc_call(app, span_request(spans).SerializeToString())
        got = rx.wait_for_spans(5)
    for span in got:
        assert span.attributes["note"] == span.attributes["text"] == "<OVER_BUDGET>"
        assert span.attributes["llmtap.redaction.over_budget"] >= 2
    assert "@" not in repr([s.attributes for s in got])
