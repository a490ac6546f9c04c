"""Prompt versions on the service's ``/metrics``: cost, tokens, call duration, calls and errors
(``prompt_version``) and the judge's verdicts (``llmtap_prompt_version``), through a real
service with its judge, as the "Prompt versions" dashboard reads them; versions past
``service.max_prompt_versions`` are counted as ``other`` in every metric."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from llmtap.service.app import ServiceApp
from llmtap.service.judging import Judging
from llmtap.service.metrics import CappedValues, MetricsRegistry
from support.running_service import (
    grpc_call,
    metric_value,
    metrics_text,
    running_service,
    simple_spans,
    span_request,
    wait_until,
)

JUDGE = {
    "trace_idle_s": 0.2,
    "trace_max_wait_s": 2.0,
    "rules": [{"evaluator": "contains", "name": "mentions_refund", "value": "refund"}],
}
CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 20,
    "gen_ai.usage.cost": 0.01,
    "llmtap.redaction.count": 0,  # already processed upstream: the wire path
    "llmtap.feature": "support",
}
FAILED = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "error.type": "RateLimitError",
    "llmtap.redaction.count": 0,
    "llmtap.feature": "support",
}


def _output(text: str) -> str:
    return json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])


def _calls(n: int, seed: int, version: str, answer: str, seconds: float) -> list[dict]:
    spans = simple_spans(
        n,
        seed,
        **CALL,
        **{"llmtap.prompt.version": version, "gen_ai.output.messages": _output(answer)},
    )
    for span in spans:
        span["kind"] = 3  # CLIENT
        span["end_time_unix_nano"] = span["start_time_unix_nano"] + int(seconds * 1e9)
    return spans


@contextmanager
def _judged(tmp_path: Path, **service: Any) -> Iterator[tuple[ServiceApp, Judging]]:
    with running_service(tmp_path, config={"judge": JUDGE}, http_address="off", **service) as app:
        judging = Judging.from_config(app.config, emit=app.submit, metrics_registry=app.metrics)
        assert judging is not None
        app.on_spans(judging.on_spans)
        judging.start()
        app.on_stop(judging.stop)
        yield app, judging


def _verdicts(text: str, version: str, passed: str) -> float:
    return metric_value(
        text,
        "llmtap_judge_verdicts_total",
        gen_ai_evaluation_name="mentions_refund",
        llmtap_feature="support",
        llmtap_prompt_version=version,
        llmtap_evaluation_passed=passed,
    )


def _judged_count(app: ServiceApp) -> float:
    return app.metrics.get("llmtap_judge_verdicts_total").total()


def test_two_prompt_versions_side_by_side(tmp_path: Path) -> None:
    spans = [
        *_calls(3, 1, "v1", "Your refund is on its way.", 0.4),
        *_calls(1, 2, "v1", "Please wait.", 0.4),
        *_calls(2, 3, "v2", "Please wait.", 2.0),
        *simple_spans(1, 4, **FAILED, **{"llmtap.prompt.version": "v2"}),
    ]
    with _judged(tmp_path) as (app, _):
        grpc_call(app, span_request(spans).SerializeToString())
        wait_until(lambda: _judged_count(app) == 7, what="seven verdicts")
        text = metrics_text(app)
    labels = {"model": "gpt-4o-mini", "feature": "support"}
    for version, calls in (("v1", 4), ("v2", 2)):
        got = metric_value(text, "llmtap_cost_usd_total", **labels, prompt_version=version)
        assert got == pytest.approx(0.01 * calls)
        for kind, per_call in (("input", 100), ("output", 20)):
            tokens = metric_value(
                text, "llmtap_tokens_total", **labels, prompt_version=version, type=kind
            )
            assert tokens == per_call * calls
    duration = "llmtap_genai_duration_seconds"
    assert metric_value(text, f"{duration}_count", **labels, prompt_version="v1") == 4
    assert metric_value(text, f"{duration}_sum", **labels, prompt_version="v2") == pytest.approx(4)
    calls = "llmtap_genai_calls_total"
    assert metric_value(text, calls, **labels, prompt_version="v1", error_type="") == 4
    assert metric_value(text, calls, **labels, prompt_version="v2", error_type="") == 2
    failed = metric_value(text, calls, **labels, prompt_version="v2", error_type="RateLimitError")
    assert failed == 1
    # the judge: v1 passes three of four, v2 none of three (the failed call has no output)
    assert _verdicts(text, "v1", "true") == 3
    assert _verdicts(text, "v1", "false") == 1
    assert _verdicts(text, "v2", "false") == 3
    assert _verdicts(text, "v2", "true") == 0


def test_a_failed_agent_or_tool_span_is_not_a_failed_call(tmp_path: Path) -> None:
    """An agent (or tool) span that failed carries its model call's error too: only the model
    call counts."""
    spans = [
        *simple_spans(1, 10, **FAILED),
        *simple_spans(1, 11, **{**FAILED, "gen_ai.operation.name": "invoke_agent"}),
        *simple_spans(1, 12, **{**FAILED, "gen_ai.operation.name": "execute_tool"}),
    ]
    with running_service(tmp_path, http_address="off") as app:
        grpc_call(app, span_request(spans).SerializeToString())
        text = metrics_text(app)
    labels = {"model": "gpt-4o-mini", "feature": "support", "prompt_version": ""}
    calls = "llmtap_genai_calls_total"
    assert metric_value(text, calls, **labels, error_type="RateLimitError") == 1
    assert "llmtap_cost_usd_total{" not in text  # failed calls without usage: no cost series


def test_versions_past_the_cap_are_other_in_every_metric(tmp_path: Path) -> None:
    first = [*_calls(1, 5, "v1", "refund", 0.1), *_calls(1, 6, "v2", "refund", 0.1)]
    later = [*_calls(2, 7, "v3", "refund", 0.1), *_calls(1, 8, "v4", "wait", 0.1)]
    with _judged(tmp_path, max_prompt_versions=2) as (app, _):
        grpc_call(app, span_request(first).SerializeToString())
        wait_until(lambda: _judged_count(app) == 2, what="two verdicts")
        grpc_call(app, span_request(later).SerializeToString())
        wait_until(lambda: _judged_count(app) == 5, what="five verdicts")
        text = metrics_text(app)
    labels = {"model": "gpt-4o-mini", "feature": "support"}
    cost = "llmtap_cost_usd_total"
    assert metric_value(text, cost, **labels, prompt_version="v1") == pytest.approx(0.01)
    assert metric_value(text, cost, **labels, prompt_version="other") == pytest.approx(0.03)
    assert 'prompt_version="v3"' not in text and 'prompt_version="v4"' not in text
    assert metric_value(text, "llmtap_genai_calls_total", **labels, prompt_version="other",
                        error_type="") == 3  # fmt: skip
    assert _verdicts(text, "other", "true") == 2
    assert _verdicts(text, "other", "false") == 1
    assert _verdicts(text, "v2", "true") == 1


def test_the_cap_is_shared_and_set_by_the_service() -> None:
    registry = MetricsRegistry()
    judge_side = registry.capped_values("llmtap.prompt.version")  # made first, default 50
    service_side = registry.capped_values("llmtap.prompt.version", 2)
    assert judge_side is service_side and judge_side.limit == 2
    assert [judge_side(v) for v in ("a", "b", "c", "a", None, "")] == [
        "a",
        "b",
        "other",
        "a",
        "",
        "",
    ]
    assert CappedValues(0).limit == 1


def test_max_prompt_versions_must_be_positive() -> None:
    from llmtap.service import ServiceConfig

    with pytest.raises(ValueError, match="max_prompt_versions"):
        ServiceConfig(max_prompt_versions=0)
