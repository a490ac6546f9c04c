"""``llmtap compare --jaeger``: the same spans sent to a real Jaeger v2 (OTLP/gRPC in) and
written by the file preset's exporter; the comparison read from Jaeger's query API
(``/api/traces``) must match the one read from the file. The verdicts are in evaluation
traces of their own, linked to the judged calls, as the judge writes them by default."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import (
    Link,
    SpanContext,
    Status,
    StatusCode,
    format_span_id,
    format_trace_id,
)

from llmtap import semconv
from llmtap.cli import main
from llmtap.export.file import JsonLinesSpanExporter
from support.binaries import Processes, http_get, start_jaeger, wait_until

pytestmark = pytest.mark.e2e

SERVICE = "compare-bot"
TRACES = 60  # the requests' traces; each has an evaluation trace too


def _send(jaeger_grpc: str, path: Path) -> None:
    """Prompt v1 then v2: v2's answers fail the verdict more often, cost twice as much, and
    get more negative feedback."""
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=jaeger_grpc, insecure=True))
    )
    tracer = provider.get_tracer("test")
    for version, cost, fail_every in (("v1", 0.001, 10), ("v2", 0.002, 2)):
        for i in range(TRACES // 2):
            failed = i % fail_every == 0
            with (
                tracer.start_as_current_span("invoke_workflow answer"),
                tracer.start_as_current_span("chat gpt-4o-mini") as chat,
            ):
                chat.set_attributes({
                    semconv.OPERATION: "chat", semconv.LLMTAP_PROMPT_VERSION: version,
                    semconv.LLMTAP_COST_TOTAL: cost + i * 1e-6, semconv.USAGE_INPUT_TOKENS: 40 + i,
                    semconv.USAGE_OUTPUT_TOKENS: 12,
                })  # fmt: skip
                if version == "v2" and i == 3:
                    chat.set_status(Status(StatusCode.ERROR, "rate limited"))
                _linked_verdict(tracer, chat.get_span_context(), passed=not failed)
                with tracer.start_as_current_span("evaluate user_feedback") as feedback:
                    feedback.set_attributes({
                        semconv.EVALUATION_NAME: "user_feedback",
                        semconv.LLMTAP_FEEDBACK_LABEL: "negative" if failed else "positive",
                    })  # fmt: skip
    provider.shutdown()


def _linked_verdict(tracer: Any, judged: SpanContext, *, passed: bool) -> None:
    """A verdict as the judge writes it by default (judge.verdicts: linked): the root of a
    trace of its own, linked to the judged span and naming it."""
    tracer.start_span(
        "evaluate truncation",
        context=Context(),
        links=[Link(judged)],
        attributes={
            semconv.EVALUATION_NAME: "truncation",
            semconv.LLMTAP_EVALUATION_PASSED: passed,
            semconv.LLMTAP_EVALUATION_TARGET_TRACE_ID: format_trace_id(judged.trace_id),
            semconv.LLMTAP_EVALUATION_TARGET_SPAN_ID: format_span_id(judged.span_id),
        },
    ).end()


def _traces_in_jaeger(url: str) -> int:
    query = urllib.parse.urlencode({"service": SERVICE, "limit": 1000, "lookback": "1h"})
    status, body = http_get(f"{url}/api/traces?{query}")
    return len(json.loads(body).get("data") or []) if status == 200 else 0


def _compare(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["compare", *argv, "--json", "--resamples", "300"]) == 0
    return json.loads(capsys.readouterr().out)


def test_compare_reads_jaegers_query_api(
    procs: Processes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jaeger = start_jaeger(procs)
    path = tmp_path / "spans.jsonl"
    _send(jaeger.endpoint("grpc"), path)
    url = jaeger.url("query")
    wait_until(lambda: _traces_in_jaeger(url) == 2 * TRACES, 30, f"{2 * TRACES} traces in Jaeger")

    fetched = _compare(capsys, "--jaeger", url, "--service", SERVICE, "--lookback", "1h")
    from_file = _compare(capsys, str(path))
    assert fetched["baseline"] == {"name": "v1", "traces": 30, "model_calls": 30}
    assert fetched["candidate"] == {"name": "v2", "traces": 30, "model_calls": 30}
    rows = {m["metric"]: m for m in fetched["metrics"]}
    assert {k: v["verdict"] for k, v in rows.items()} == {
        "pass rate truncation": "worse", "negative feedback": "worse",
        "error rate": "can't tell yet", "cost per call": "worse",
        "tokens per call": "can't tell yet", "latency p50": rows["latency p50"]["verdict"],
        "latency p95": rows["latency p95"]["verdict"],
    }  # fmt: skip
    assert rows["pass rate truncation"]["baseline"]["count"] == 27
    assert rows["pass rate truncation"]["candidate"]["count"] == 15
    assert rows["error rate"]["candidate"]["count"] == 1  # the status came through Jaeger
    file_rows = {m["metric"]: m for m in from_file["metrics"]}
    for name in ("pass rate truncation", "negative feedback", "error rate", "cost per call",
                 "tokens per call"):  # fmt: skip
        assert rows[name] == file_rows[name], name
    # Jaeger keeps durations in microseconds: latencies agree to that
    for name in ("latency p50", "latency p95"):
        assert rows[name]["baseline"]["value"] == pytest.approx(
            file_rows[name]["baseline"]["value"], abs=2e-6
        )

    assert main(["compare", "--jaeger", url, "--service", "no-such-service"]) == 2
    assert "need two groups to compare, found 0" in capsys.readouterr().err
