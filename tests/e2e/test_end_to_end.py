"""End to end with real processes: an instrumented app (real ``openai`` SDK against the dev
server) → OpenTelemetry Collector (``otelcol-llmtap`` with collector-config/) → ``llmtap
serve`` (collector-config/llmtap-service.yaml: rule evaluators and the LLM judge against a
loopback judge) → Jaeger v2 with memory storage, queried over its HTTP API.

The app runs with redaction off (its own ``llmtap.yaml``) and content capture on, so the
planted PII leaves the app and it is the service's redaction stage that keeps it out of
every backend and out of the judge's prompts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmtap.service.results import evaluation_trace_id
from support.binaries import (
    CONFIG_DIR,
    Proc,
    Processes,
    http_get,
    require_binary,
    start_collector,
    start_jaeger,
    start_llmtap_serve,
    wait_until,
)
from support.judge_server import JudgeServer
from support.otlp_receiver import OtlpReceiver

from .app import PLANTED_PII

APP = Path(__file__).resolve().parent / "app.py"

pytestmark = pytest.mark.e2e

SERVICE_CONFIG = CONFIG_DIR / "llmtap-service.yaml"
APP_SPANS = {"invoke_workflow answer_question", "retrieval kb", "chat gpt-4o-mini"}
# the judge rules of llmtap-service.yaml, each run once on every chat span
EVALUATIONS = {
    "pii_in_output",
    "refusal",
    "truncation",
    "latency_budget",
    "cost_budget",
    "answer_relevance",
}


@pytest.fixture(autouse=True)
def _binaries() -> None:
    require_binary("otelcol-llmtap")
    require_binary("jaeger")


@pytest.fixture
def judge() -> Iterator[JudgeServer]:
    with JudgeServer() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[OtlpReceiver]:
    """Stands in for Tempo and Datadog (the service's other destinations) and for
    Prometheus's OTLP receiver (the collector's metrics pipeline)."""
    with OtlpReceiver() as receiver:
        yield receiver


# helpers -----------------------------------------------------------------------------------


def service_env(jaeger: Proc, sink: OtlpReceiver, judge: JudgeServer) -> dict[str, str]:
    return {
        "JAEGER_OTLP_ENDPOINT": f"http://{jaeger.endpoint('grpc')}",
        "TEMPO_OTLP_ENDPOINT": sink.grpc_endpoint,
        "DD_API_KEY": "dd-test-key",
        "DD_LLMOBS_OTLP_ENDPOINT": sink.http_url("traces"),
        "JUDGE_BASE_URL": judge.openai_base_url,
        "OPENAI_API_KEY": "judge-test-key",
        "LLMTAP_JUDGE_SAMPLE": "1",
        "LLMTAP_TRACE_IDLE_S": "1",
    }


def run_app(
    collector: Proc, devserver: Any, tmp_path: Path, requests: int, *extra: str
) -> list[dict[str, str]]:
    config = tmp_path / "app-llmtap.yaml"
    config.write_text("redaction: {enabled: false}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTAP_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{collector.endpoint('grpc')}",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_only",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        LLMTAP_CONFIG=str(config),
    )
    args = ["--base-url", devserver.openai_base_url, "--requests", str(requests), *extra]
    done = subprocess.run(
        [sys.executable, str(APP), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@dataclass
class JaegerSpan:
    span_id: str
    name: str
    parent: str | None
    tags: dict[str, Any]
    #: (trace id, span id) of its FOLLOWS_FROM references: the OTLP links, as Jaeger shows them
    links: list[tuple[str, str]]
    start_us: int
    duration_us: int


def _span(span: dict[str, Any]) -> JaegerSpan:
    refs = span.get("references") or []
    parents = [r["spanID"] for r in refs if r["refType"] == "CHILD_OF"]
    links = [
        (r["traceID"].rjust(32, "0"), r["spanID"]) for r in refs if r["refType"] == "FOLLOWS_FROM"
    ]
    tags = {t["key"]: t["value"] for t in span.get("tags", [])}
    return JaegerSpan(
        span["spanID"],
        span["operationName"],
        next(iter(parents), None),
        tags,
        links,
        span["startTime"],
        span["duration"],
    )


def jaeger_trace(jaeger: Proc, trace_id: str) -> tuple[Any, list[JaegerSpan]]:
    """(raw JSON, spans) of ``GET /api/traces/{id}``; no spans when it is not there yet."""
    status, body = http_get(jaeger.url("query", f"/api/traces/{trace_id}"))
    if status != 200:
        return None, []
    raw = json.loads(body)
    spans = [_span(span) for trace in raw.get("data") or [] for span in trace["spans"]]
    return raw, spans


def jaeger_search(jaeger: Proc, tags: dict[str, str], service: str = "e2e-app") -> set[str]:
    """Trace ids Jaeger's search finds for ``tags`` (``GET /api/traces?service=&tags=``)."""
    query = {"service": service, "tags": json.dumps(tags), "lookback": "1h", "limit": "20"}
    status, body = http_get(jaeger.url("query", "/api/traces?" + urllib.parse.urlencode(query)))
    assert status == 200, body
    return {trace["traceID"].rjust(32, "0") for trace in json.loads(body)["data"] or ()}


def extent_us(spans: list[JaegerSpan]) -> int:
    """The trace's duration as Jaeger draws it: first start to last end, in microseconds."""
    return max(s.start_us + s.duration_us for s in spans) - min(s.start_us for s in spans)


def evaluation_trace(trace_id: str) -> str:
    """The id of the evaluation trace of ``trace_id`` (judge.verdicts: linked)."""
    return f"{evaluation_trace_id(int(trace_id, 16)):032x}"


def wait_for_trace(
    jaeger: Proc, trace_id: str, count: int, timeout: float = 45.0
) -> tuple[Any, list[JaegerSpan]]:
    def complete() -> tuple[Any, list[JaegerSpan]] | None:
        raw, spans = jaeger_trace(jaeger, trace_id)
        return (raw, spans) if len(spans) >= count else None

    return wait_until(complete, timeout, f"{count} spans of trace {trace_id} in Jaeger", 0.5)


def metric_sum(body: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric over its label sets that carry ``labels``."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? ([0-9.eE+-]+)$", re.M)
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    return sum(
        float(value) for found, value in pattern.findall(body) if wanted <= set(found.split(","))
    )


def metrics_text(proc: Proc) -> str:
    status, body = http_get(proc.url("metrics", "/metrics"))
    assert status == 200
    return body.decode()


def by_name(spans: list[JaegerSpan]) -> dict[str, JaegerSpan]:
    return {span.name: span for span in spans}


# tests ------------------------------------------------------------------------------------------


def test_app_to_collector_to_service_to_jaeger(
    procs: Processes, devserver: Any, judge: JudgeServer, sink: OtlpReceiver, tmp_path: Path
) -> None:
    jaeger = start_jaeger(procs)
    service = start_llmtap_serve(procs, SERVICE_CONFIG, env=service_env(jaeger, sink, judge))
    collector = start_collector(
        procs,
        CONFIG_DIR / "single.yaml",
        env={
            "LLMTAP_SERVICE_ENDPOINT": service.endpoint("grpc"),
            "PROMETHEUS_OTLP_METRICS_URL": sink.http_url("metrics"),
        },
    )

    (request,) = run_app(collector, devserver, tmp_path, 1)
    trace_id = request["trace_id"]
    # judge.verdicts: linked (the default): the verdicts are in the evaluation trace
    _, evaluations = wait_for_trace(jaeger, evaluation_trace(trace_id), len(EVALUATIONS))
    raw, spans = wait_for_trace(jaeger, trace_id, len(APP_SPANS))

    # the whole trace, once: the app's spans
    assert len(spans) == len(APP_SPANS), [s.name for s in spans]
    app = by_name(spans)
    assert set(app) == APP_SPANS
    workflow, retrieval, chat = (
        app[n] for n in ("invoke_workflow answer_question", "retrieval kb", "chat gpt-4o-mini")
    )
    assert workflow.parent is None
    assert retrieval.parent == workflow.span_id and chat.parent == workflow.span_id

    # GenAI semantic conventions, cost computed in the app, business context
    assert chat.tags["gen_ai.provider.name"] == "openai"
    assert chat.tags["gen_ai.request.model"] == "gpt-4o-mini"
    assert chat.tags["gen_ai.response.id"] == request["response_id"]
    assert (
        chat.tags["gen_ai.usage.input_tokens"] > 0 and chat.tags["gen_ai.usage.output_tokens"] > 0
    )
    assert chat.tags["llmtap.cost.total"] > 0
    assert chat.tags["llmtap.feature"] == "support"
    assert "gen_ai.input.messages" in chat.tags and "gen_ai.output.messages" in chat.tags

    # the service redacted what the app sent in the clear
    text = json.dumps(raw)
    for planted in PLANTED_PII:
        assert planted not in text
    assert "<EMAIL>" in chat.tags["gen_ai.input.messages"]
    assert chat.tags["llmtap.redaction.credit_card"] >= 1

    # evaluations: one per rule, each linked to the evaluated chat span
    assert len(evaluations) == len(EVALUATIONS), [s.name for s in evaluations]
    assert Counter(s.tags["gen_ai.evaluation.name"] for s in evaluations) == Counter(EVALUATIONS)
    assert {s.name for s in evaluations} == {f"evaluate {n}" for n in EVALUATIONS}
    assert all(s.parent is None and s.links == [(trace_id, chat.span_id)] for s in evaluations)
    relevance = next(
        s for s in evaluations if s.tags["gen_ai.evaluation.name"] == "answer_relevance"
    )
    assert relevance.tags["llmtap.evaluation.source"] == "judge"

    # the LLM judge saw the redacted conversation only
    assert judge.requests, "the LLM judge was not called"
    prompts = json.dumps([r.body for r in judge.requests])
    assert "<EMAIL>" in prompts
    for planted in PLANTED_PII:
        assert planted not in prompts

    # the other destinations got the same spans; Datadog LLM Observability its headers
    jaeger_ids = {s.span_id for s in spans + evaluations}
    wait_until(lambda: {s.span_id for s in sink.spans()} >= jaeger_ids, 15, "Tempo/Datadog copies")
    tempo = [s for s in sink.spans() if s.transport == "grpc"]  # the tempo destination's copy
    assert {s.span_id for s in tempo} >= jaeger_ids
    tempo_verdicts = [s for s in tempo if s.name.startswith("evaluate ")]
    assert len(tempo_verdicts) == len(EVALUATIONS)
    for verdict in tempo_verdicts:
        assert [(link.trace_id, link.span_id) for link in verdict.links] == [
            (trace_id, chat.span_id)
        ]
        assert verdict.trace_id == evaluation_trace(trace_id)
    datadog = [r for r in sink.requests("traces") if r.transport == "http"]
    assert datadog and datadog[0].headers["dd-otlp-source"] == "llmobs"
    assert datadog[0].headers["dd-api-key"] == "dd-test-key"
    assert datadog[0].headers["dd-ml-app"] == "llmtap"

    # the app's gen_ai.client.* metrics went through the collector's metrics pipeline
    sink.wait_for_metrics(
        "gen_ai.client.token.usage", "gen_ai.client.operation.duration", timeout=20
    )
    body = metrics_text(service)
    assert metric_sum(body, "llmtap_judge_evaluations_run_total") == len(EVALUATIONS)


def test_scaled_router_samplers_replicas_judge_each_trace_once(
    procs: Processes, devserver: Any, judge: JudgeServer, sink: OtlpReceiver, tmp_path: Path
) -> None:
    """router (load_balancing by trace ID, static resolver) → two tail-sampling collectors →
    two service replicas → Jaeger: every trace is assembled and judged by one replica."""
    jaeger = start_jaeger(procs)
    env = service_env(jaeger, sink, judge)
    replicas = [start_llmtap_serve(procs, SERVICE_CONFIG, f"llmtap-{i}", env) for i in range(2)]
    samplers = [
        start_collector(
            procs,
            CONFIG_DIR / "sampler.yaml",
            f"sampler-{i}",
            {"LLMTAP_SERVICE_ENDPOINT": replica.endpoint("grpc"), "SAMPLER_DECISION_WAIT": "1s"},
        )
        for i, replica in enumerate(replicas)
    ]
    endpoints = ", ".join(s.endpoint("grpc") for s in samplers)
    router = start_collector(
        procs,
        CONFIG_DIR / "router.yaml",
        "router",
        {
            "SAMPLER_ENDPOINTS": f"[{endpoints}]",
            "PROMETHEUS_OTLP_METRICS_URL": sink.http_url("metrics"),
        },
    )

    count = 16
    requests = run_app(router, devserver, tmp_path, count)
    assert len({r["trace_id"] for r in requests}) == count
    for request in requests:
        trace_id = request["trace_id"]
        _, verdicts = wait_for_trace(jaeger, evaluation_trace(trace_id), len(EVALUATIONS))
        _, spans = wait_for_trace(jaeger, trace_id, len(APP_SPANS))
        chat = by_name(spans)["chat gpt-4o-mini"]
        evaluations = Counter(s.tags["gen_ai.evaluation.name"] for s in verdicts)
        assert evaluations == Counter(EVALUATIONS), trace_id
        assert all(s.links == [(trace_id, chat.span_id)] for s in verdicts)
        assert len(spans) == len(APP_SPANS)

    bodies = [metrics_text(replica) for replica in replicas]
    assembled = [
        metric_sum(b, "llmtap_judge_traces_assembled_total", llmtap_evaluation_late="false")
        for b in bodies
    ]
    runs = [metric_sum(b, "llmtap_judge_evaluations_run_total") for b in bodies]
    # both replicas took part, and no trace was split between them (each assembled once)
    assert all(n > 0 for n in assembled), assembled
    assert sum(assembled) == count
    assert sum(runs) == count * len(EVALUATIONS)
    accepted = [metric_sum(b, "llmtap_service_spans_accepted_total") for b in bodies]
    assert sum(accepted) == count * len(APP_SPANS)


def test_late_negative_feedback_is_kept_and_judged(
    procs: Processes, devserver: Any, judge: JudgeServer, sink: OtlpReceiver, tmp_path: Path
) -> None:
    """The user's thumbs-down comes after the trace was judged: it lands in the same trace in
    Jaeger under the answer, and the ``when: {feedback: negative}`` rule judges the answer
    then (the LLM judge runs only for it: LLMTAP_JUDGE_SAMPLE=0); that verdict joins the
    others in the evaluation trace, linked to the answer."""
    jaeger = start_jaeger(procs)
    env = {**service_env(jaeger, sink, judge), "LLMTAP_JUDGE_SAMPLE": "0"}
    env["LLMTAP_JUDGE_FEEDBACK_SAMPLE"] = "1"
    judge.push_verdict(score=0.2, label="irrelevant", explanation="does not answer the question")
    service = start_llmtap_serve(procs, SERVICE_CONFIG, env=env)
    collector = start_collector(
        procs,
        CONFIG_DIR / "single.yaml",
        env={
            "LLMTAP_SERVICE_ENDPOINT": service.endpoint("grpc"),
            "PROMETHEUS_OTLP_METRICS_URL": sink.http_url("metrics"),
        },
    )
    (request,) = run_app(collector, devserver, tmp_path, 1, "--feedback", "down",
                         "--feedback-delay", "3")  # fmt: skip
    rules = EVALUATIONS - {"answer_relevance"}
    trace_id = request["trace_id"]
    expected = len(rules) + 1  # + the judge the feedback triggered
    _, verdicts = wait_for_trace(jaeger, evaluation_trace(trace_id), expected)
    assert len(verdicts) == expected, [s.name for s in verdicts]
    _, spans = wait_for_trace(jaeger, trace_id, len(APP_SPANS) + 1)  # + the feedback
    assert len(spans) == len(APP_SPANS) + 1, [s.name for s in spans]
    chat = by_name(spans)["chat gpt-4o-mini"]
    feedback = by_name(spans)["evaluate user_feedback"]
    assert feedback.parent == chat.span_id
    assert feedback.tags["llmtap.feedback.label"] == "negative"
    assert feedback.tags["llmtap.evaluation.source"] == "user"
    assert feedback.tags["gen_ai.response.id"] == request["response_id"]
    judged = by_name(verdicts)["evaluate answer_relevance"]
    assert judged.links == [(trace_id, chat.span_id)]
    assert judged.tags["llmtap.evaluation.source"] == "judge"
    assert judged.tags["llmtap.evaluation.late"] is True
    assert judged.tags["gen_ai.evaluation.score.label"] == "irrelevant"
    assert len(judge.requests) == 1
    body = metrics_text(service)
    assert metric_sum(body, "llmtap_feedback_total", label="negative") == 1


def start_pipeline(
    procs: Processes, jaeger: Proc, sink: OtlpReceiver, judge: JudgeServer, **env: str
) -> Proc:
    """``llmtap serve`` (llmtap-service.yaml, ``env`` on top) behind a collector; the collector."""
    service = start_llmtap_serve(
        procs, SERVICE_CONFIG, env={**service_env(jaeger, sink, judge), **env}
    )
    return start_collector(
        procs,
        CONFIG_DIR / "single.yaml",
        env={
            "LLMTAP_SERVICE_ENDPOINT": service.endpoint("grpc"),
            "PROMETHEUS_OTLP_METRICS_URL": sink.http_url("metrics"),
        },
    )


def test_linked_verdicts_leave_the_request_trace_its_own_duration(
    procs: Processes, devserver: Any, judge: JudgeServer, sink: OtlpReceiver, tmp_path: Path
) -> None:
    """``judge.verdicts: linked`` (the default): in Jaeger the request's trace lasts exactly as
    long as the request's root span, though its verdicts were written a second later; the
    searches of docs/backends/jaeger.md find the verdicts from the request's trace id, and
    each verdict leads back to the judged span by its link (a FOLLOWS_FROM reference) and
    its ``llmtap.evaluation.target.*`` tags."""
    jaeger = start_jaeger(procs)
    collector = start_pipeline(procs, jaeger, sink, judge)
    (request,) = run_app(collector, devserver, tmp_path, 1)
    trace_id = request["trace_id"]

    # request -> its verdicts: one evaluation trace, found by the judged trace's id
    target = {"llmtap.evaluation.target.trace_id": trace_id}
    found = wait_until(lambda: jaeger_search(jaeger, target), 45, "the request's verdicts")
    assert found == {evaluation_trace(trace_id)}
    (evaluation_id,) = found
    _, verdicts = wait_for_trace(jaeger, evaluation_id, len(EVALUATIONS))
    _, spans = wait_for_trace(jaeger, trace_id, len(APP_SPANS))
    assert {s.name for s in spans} == APP_SPANS and len(spans) == len(APP_SPANS)

    # the request's trace is as long as its root span: not stretched by the verdicts
    root = by_name(spans)["invoke_workflow answer_question"]
    chat = by_name(spans)["chat gpt-4o-mini"]
    assert extent_us(spans) == root.duration_us
    request_end = root.start_us + root.duration_us

    # verdict -> the judged span: the link, and the tags naming it
    assert Counter(s.tags["gen_ai.evaluation.name"] for s in verdicts) == Counter(EVALUATIONS)
    for verdict in verdicts:
        assert verdict.parent is None
        assert verdict.links == [(trace_id, chat.span_id)]
        assert verdict.tags["llmtap.evaluation.target.trace_id"] == trace_id
        assert verdict.tags["llmtap.evaluation.target.span_id"] == chat.span_id
        assert verdict.start_us > request_end  # judged after the request ended
    # the verdict searches find the evaluation trace
    passed = {"gen_ai.evaluation.name": "truncation", "llmtap.evaluation.passed": "true"}
    assert jaeger_search(jaeger, passed) == {evaluation_id}


def test_child_verdicts_are_in_the_request_trace(
    procs: Processes, devserver: Any, judge: JudgeServer, sink: OtlpReceiver, tmp_path: Path
) -> None:
    """``judge.verdicts: child``: the verdicts are children of the judged span in the
    request's trace, which then lasts until the last verdict; no evaluation trace."""
    jaeger = start_jaeger(procs)
    collector = start_pipeline(procs, jaeger, sink, judge, LLMTAP_JUDGE_VERDICTS="child")
    (request,) = run_app(collector, devserver, tmp_path, 1)
    trace_id = request["trace_id"]
    _, spans = wait_for_trace(jaeger, trace_id, len(APP_SPANS) + len(EVALUATIONS))
    assert len(spans) == len(APP_SPANS) + len(EVALUATIONS), [s.name for s in spans]
    chat = by_name(spans)["chat gpt-4o-mini"]
    root = by_name(spans)["invoke_workflow answer_question"]
    verdicts = [s for s in spans if s.name.startswith("evaluate ")]
    assert Counter(s.tags["gen_ai.evaluation.name"] for s in verdicts) == Counter(EVALUATIONS)
    assert all(s.parent == chat.span_id and s.links == [] for s in verdicts)
    # the trace is stretched to its last verdict, past the request's own end
    last_end = max(s.start_us + s.duration_us for s in verdicts)
    assert extent_us(spans) == last_end - root.start_us > root.duration_us
    target = {"llmtap.evaluation.target.trace_id": trace_id}
    assert jaeger_search(jaeger, target) == {trace_id}
    assert jaeger_trace(jaeger, evaluation_trace(trace_id))[1] == []
