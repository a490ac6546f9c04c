"""The service metrics the Grafana dashboards and alert rules in deploy/ read: cost by user,
GenAI call latency by feature, and user feedback counts, through a real service and its
``/metrics`` endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.running_service import (
    EMAIL,
    grpc_call,
    metric_value,
    metrics_text,
    running_service,
    simple_spans,
    span_request,
)

CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 200,
    "llmtap.cost.total": 0.5,
    "llmtap.redaction.count": 0,  # already processed upstream: the wire path
    "llmtap.feature": "support",
}


def _calls(n: int, seed: int, **extra: object) -> list[dict]:
    return simple_spans(n, seed, **{**CALL, **extra})


def _timed(spans: list[dict], seconds: float) -> list[dict]:
    for span in spans:
        span["end_time_unix_nano"] = span["start_time_unix_nano"] + int(seconds * 1e9)
    return spans


def test_cost_by_user_and_feature(tmp_path: Path) -> None:
    spans = [
        *_calls(2, 1, **{"user.id": "u-1"}),
        *_calls(1, 2, **{"user.id": "u-2", "llmtap.feature": "search"}),
        *_calls(1, 3),  # no user
    ]
    with running_service(tmp_path) as app:
        grpc_call(app, span_request(spans).SerializeToString())
        text = metrics_text(app)
    name = "llmtap_user_cost_usd_total"
    assert metric_value(text, name, user="u-1", feature="support") == pytest.approx(1.0)
    assert metric_value(text, name, user="u-2", feature="search") == pytest.approx(0.5)
    assert metric_value(text, name, user="", feature="support") == pytest.approx(0.5)
    # the model x feature counter is unchanged by the user split
    cost = metric_value(
        text, "llmtap_cost_usd_total", model="gpt-4o-mini", feature="support", prompt_version=""
    )
    assert cost == pytest.approx(1.5)


def test_user_label_is_taken_after_redaction(tmp_path: Path) -> None:
    spans = _calls(1, 4, **{"user.id": EMAIL})
    del spans[0]["attributes"]["llmtap.redaction.count"]  # the stages run on this one
    with running_service(tmp_path) as app:
        grpc_call(app, span_request(spans).SerializeToString())
        text = metrics_text(app)
    assert EMAIL not in text
    users = [line for line in text.splitlines() if line.startswith("llmtap_user_cost_usd_total{")]
    assert len(users) == 1 and 'feature="support"' in users[0]


def test_user_series_are_bounded(tmp_path: Path) -> None:
    spans = [span for i in range(1005) for span in _calls(1, 100 + i, **{"user.id": f"user-{i}"})]
    with running_service(tmp_path) as app:
        grpc_call(app, span_request(spans).SerializeToString())
        text = metrics_text(app)
    series = [line for line in text.splitlines() if line.startswith("llmtap_user_cost_usd_total{")]
    assert len(series) == 1001  # 1000 users plus the folded one
    assert metric_value(
        text, "llmtap_user_cost_usd_total", user="other", feature="other"
    ) == pytest.approx(5 * 0.5)


def test_call_duration_by_model_and_feature(tmp_path: Path) -> None:
    spans = [
        *_timed(_calls(3, 5), 0.3),
        *_timed(_calls(1, 6), 12.0),
        *_timed(simple_spans(2, seed=7, name="no usage"), 50.0),  # not a model call
    ]
    with running_service(tmp_path) as app:
        grpc_call(app, span_request(spans).SerializeToString())
        text = metrics_text(app)
    name = "llmtap_genai_duration_seconds"
    labels = {"model": "gpt-4o-mini", "feature": "support", "prompt_version": ""}
    assert metric_value(text, f"{name}_count", **labels) == 4
    assert metric_value(text, f"{name}_sum", **labels) == pytest.approx(12.9)
    assert metric_value(text, f"{name}_bucket", **labels, le="0.32") == 3
    assert metric_value(text, f"{name}_bucket", **labels, le="10.24") == 3
    assert metric_value(text, f"{name}_bucket", **labels, le="20.48") == 4
    assert f'{name}_count{{model="",feature="",prompt_version=""}}' not in text


def test_feedback_by_label_and_feature(tmp_path: Path) -> None:
    feedback = {"llmtap.feature": "support"}
    spans = [
        *simple_spans(2, seed=8, **feedback, **{"llmtap.feedback.label": "negative"}),
        *simple_spans(1, seed=9, **feedback, **{"llmtap.feedback.label": "positive"}),
        *_calls(1, 10),
    ]
    with running_service(tmp_path, usage_metrics=False) as app:
        grpc_call(app, span_request(spans).SerializeToString())
        text = metrics_text(app)
    name = "llmtap_feedback_total"
    assert metric_value(text, name, label="negative", feature="support") == 2
    assert metric_value(text, name, label="positive", feature="support") == 1
    assert "llmtap_user_cost_usd_total{" not in text  # usage metrics off
