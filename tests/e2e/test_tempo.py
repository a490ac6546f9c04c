"""Grafana Tempo, run for real (its single binary, built by tools/build-otel-binaries.sh from
Tempo's source): it accepts deploy/tempo/tempo.yaml, and the TraceQL of
docs/backends/tempo.md finds what the llmtap service sends it.

An instrumented app (real ``openai`` SDK against the dev server) → Collector
(collector-config/single.yaml) → ``llmtap serve`` (collector-config/llmtap-service.yaml, whose
``tempo`` destination sends OTLP/gRPC) → Tempo, started with deploy/tempo/tempo.yaml on free
loopback ports (``support.binaries.tempo_test_config``). The verdicts are the default
``judge.verdicts: linked``: a rule evaluator fails on every request (``cost_budget`` with a
budget below any cost), the LLM judge (a loopback judge server) gives one request a low score
and has no verdict for the other (HTTP 400). The queries go through Tempo's HTTP API:
``/api/search?q=<TraceQL>`` and ``/api/v2/traces/<id>``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.binaries import (
    CONFIG_DIR,
    TEMPO_CONFIG,
    Proc,
    Processes,
    http_get,
    http_json,
    require_tempo,
    start_collector,
    start_llmtap_serve,
    start_tempo,
    tempo_major,
    wait_until,
)
from support.judge_server import JudgeServer, Reply
from support.otlp_receiver import OtlpReceiver

from .test_end_to_end import EVALUATIONS, SERVICE_CONFIG, evaluation_trace, run_app

pytestmark = pytest.mark.e2e

ROOT = "invoke_workflow answer_question"
CHAT = "chat gpt-4o-mini"
REQUEST_SPANS = {ROOT, "retrieval kb", CHAT}
# the queries of docs/backends/tempo.md, with this pipeline's evaluator names
FAILING = "{ span.llmtap.evaluation.passed = false }"
ONE_EVALUATOR = '{{ span.gen_ai.evaluation.name = "{}" && span.llmtap.evaluation.passed = false }}'
LOW_SCORES = (
    '{ span.gen_ai.evaluation.name = "answer_relevance"'
    " && span.gen_ai.evaluation.score.value < 0.5 }"
)
FEATURE = '{ span.llmtap.feature = "support" && span.llmtap.evaluation.passed = false }'
NO_VERDICT = '{ name =~ "evaluate .*" && status = error }'
OF_REQUEST = '{{ span.llmtap.evaluation.target.trace_id = "{}" }}'
UNDER_CHAT = '{ span.gen_ai.operation.name = "chat" } > { span.llmtap.evaluation.passed = false }'
TARGET_TRACE = "llmtap.evaluation.target.trace_id"
TARGET_SPAN = "llmtap.evaluation.target.span_id"


@pytest.fixture
def judge() -> Iterator[JudgeServer]:
    with JudgeServer() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[OtlpReceiver]:
    """Stands in for the service's other destinations (Jaeger, Datadog) and for Prometheus."""
    with OtlpReceiver() as receiver:
        yield receiver


# Tempo's HTTP API -------------------------------------------------------------------------------


def hex_id(value: str, size: int) -> str:
    """A trace (16 bytes) or span (8 bytes) id as lower-case hex: Tempo's search answers hex
    without leading zeros, its trace API base64 (protobuf JSON of bytes)."""
    if len(value) <= 2 * size and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower().rjust(2 * size, "0")
    return base64.b64decode(value).hex()


def search_traces(tempo: Proc, query: str) -> dict[str, dict[str, Any]]:
    """The traces ``GET /api/search?q=<query>`` finds over the last hour, as it describes
    them (``rootTraceName``, ``durationMs``, ``spanSets``), by trace id."""
    now = int(time.time())
    params = {"q": query, "start": now - 3600, "end": now + 60, "limit": 50, "spss": 50}
    found = http_json(tempo.url("http", "/api/search?" + urllib.parse.urlencode(params)), 15)
    return {hex_id(t["traceID"], 16): t for t in found.get("traces") or []}


def search(tempo: Proc, query: str) -> dict[str, list[dict[str, Any]]]:
    """The spans ``query`` matched, by trace id (:func:`search_traces`)."""
    return {
        trace_id: [span for spanset in t.get("spanSets", []) for span in spanset["spans"]]
        for trace_id, t in search_traces(tempo, query).items()
    }


def value_of(attr: dict[str, Any]) -> Any:
    (kind, value), *_ = attr["value"].items()
    return int(value) if kind == "intValue" else value


def otlp_span(span: dict[str, Any]) -> dict[str, Any]:
    """A span of Tempo's OTLP JSON with its ids in hex (``parentSpanId`` None for a root),
    its attributes as a dict and its links as (trace id, span id)."""
    parent = span.get("parentSpanId")
    return {
        **span,
        "traceId": hex_id(span["traceId"], 16),
        "spanId": hex_id(span["spanId"], 8),
        "parentSpanId": hex_id(parent, 8) if parent else None,
        "attributes": {a["key"]: value_of(a) for a in span.get("attributes", [])},
        "links": [
            (hex_id(x["traceId"], 16), hex_id(x["spanId"], 8)) for x in span.get("links", [])
        ],
    }


def trace_spans(tempo: Proc, trace_id: str) -> list[dict[str, Any]]:
    """The spans of ``GET /api/v2/traces/<id>`` (:func:`otlp_span`); none when Tempo does
    not have the trace (yet)."""
    status, body = http_get(tempo.url("http", f"/api/v2/traces/{trace_id}"), 15)
    if status != 200:
        return []
    resource_spans = json.loads(body).get("trace", {}).get("resourceSpans", [])
    return [
        otlp_span(span)
        for rs in resource_spans
        for scope in rs.get("scopeSpans", [])
        for span in scope.get("spans", [])
    ]


def wait_for_spans(tempo: Proc, trace_id: str, count: int) -> list[dict[str, Any]]:
    def complete() -> list[dict[str, Any]] | None:
        spans = trace_spans(tempo, trace_id)
        return spans if len(spans) >= count else None

    return wait_until(complete, 60, f"{count} spans of trace {trace_id} in Tempo", 0.5)


def names(spans: list[dict[str, Any]]) -> set[str]:
    return {span["name"] for span in spans}


# tests ------------------------------------------------------------------------------------------


def verify(binary: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), f"-config.file={config}", "-config.verify=true"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tempo_accepts_the_deploy_config(tmp_path: Path) -> None:
    """``tempo -config.verify`` reads deploy/tempo/tempo.yaml as it is (strictly: an unknown
    key is an error, as the second file shows) and finds nothing to warn about."""
    binary = require_tempo()
    done = verify(binary, TEMPO_CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CONFIGURATION WARNINGS" not in done.stdout + done.stderr
    unknown = tmp_path / "tempo.yaml"
    unknown.write_text(TEMPO_CONFIG.read_text() + "\nnot_a_tempo_key: 1\n")
    done = verify(binary, unknown)
    assert done.returncode != 0 and "not_a_tempo_key" in done.stderr


def start_pipeline(
    procs: Processes, tempo: Proc, sink: OtlpReceiver, judge: JudgeServer, **extra: str
) -> Proc:
    """``llmtap serve`` (llmtap-service.yaml: its ``tempo`` destination to ``tempo``, ``extra``
    on top of its environment) behind a collector; the collector."""
    env = {
        "JAEGER_OTLP_ENDPOINT": sink.grpc_endpoint,
        "TEMPO_OTLP_ENDPOINT": f"http://{tempo.endpoint('otlp_grpc')}",
        "DD_API_KEY": "dd-test-key",
        "DD_LLMOBS_OTLP_ENDPOINT": sink.http_url("traces"),
        "JUDGE_BASE_URL": judge.openai_base_url,
        "OPENAI_API_KEY": "judge-test-key",
        "LLMTAP_JUDGE_SAMPLE": "1",
        "LLMTAP_TRACE_IDLE_S": "1",
        "LLMTAP_COST_BUDGET_USD": "0.000000001",  # below any request's cost: cost_budget fails
        **extra,
    }
    service = start_llmtap_serve(procs, SERVICE_CONFIG, env=env)
    return start_collector(
        procs,
        CONFIG_DIR / "single.yaml",
        env={
            "LLMTAP_SERVICE_ENDPOINT": service.endpoint("grpc"),
            "PROMETHEUS_OTLP_METRICS_URL": sink.http_url("metrics"),
        },
    )


def test_the_documented_traceql_finds_the_failing_verdicts(
    procs: Processes, devserver: Any, judge: JudgeServer, sink: OtlpReceiver, tmp_path: Path
) -> None:
    tempo = start_tempo(procs)
    judge.push_verdict(score=0.2, label="irrelevant", explanation="does not answer")
    judge.default = Reply(status=400)  # the other request's judge call: no verdict
    collector = start_pipeline(procs, tempo, sink, judge)
    requests = run_app(collector, devserver, tmp_path, 2)
    traces = [r["trace_id"] for r in requests]
    evaluations = {t: evaluation_trace(t) for t in traces}

    # every span arrived: the requests' traces and their evaluation traces
    verdicts = {t: wait_for_spans(tempo, e, len(EVALUATIONS)) for t, e in evaluations.items()}
    spans = {t: wait_for_spans(tempo, t, len(REQUEST_SPANS)) for t in traces}
    for trace_id in traces:
        assert names(spans[trace_id]) == REQUEST_SPANS  # no verdict in the request's trace
        assert names(verdicts[trace_id]) == {f"evaluate {n}" for n in EVALUATIONS}
    judged = {
        t: next(s for s in v if s["name"] == "evaluate answer_relevance")
        for t, v in verdicts.items()
    }
    (low,) = [
        t for t, s in judged.items() if s["attributes"].get("llmtap.evaluation.passed") is False
    ]
    (errored,) = [t for t in traces if t != low]
    assert judged[errored]["status"].get("code") == "STATUS_CODE_ERROR"

    # every failing verdict: cost_budget on both requests, answer_relevance on one
    found = wait_until(
        lambda: (f := search(tempo, FAILING)) and len(f) == 2 and f,
        60,
        "the failing verdicts in Tempo's search",
        0.5,
    )
    assert set(found) == set(evaluations.values())
    matched = {t: {s["spanID"] for s in found[evaluations[t]]} for t in traces}
    failing = {
        t: {
            hex_id(s["spanId"], 8)
            for s in verdicts[t]
            if s["attributes"].get("llmtap.evaluation.passed") is False
        }
        for t in traces
    }
    assert {t: {hex_id(i, 8) for i in ids} for t, ids in matched.items()} == failing
    failed = {t: {s["name"] for s in v if s["spanId"] in failing[t]} for t, v in verdicts.items()}
    assert failed[low] - failed[errored] == {"evaluate answer_relevance"}, failed
    assert "evaluate cost_budget" in failed[errored], failed

    # one evaluator's failing verdicts, low scores, one feature's failing verdicts
    assert set(search(tempo, ONE_EVALUATOR.format("cost_budget"))) == set(evaluations.values())
    assert set(search(tempo, ONE_EVALUATOR.format("answer_relevance"))) == {evaluations[low]}
    assert set(search(tempo, LOW_SCORES)) == {evaluations[low]}
    assert set(search(tempo, FEATURE)) == set(evaluations.values())
    # evaluations without a verdict: the judge call that got HTTP 400
    (no_verdict,) = search(tempo, NO_VERDICT).items()
    assert no_verdict[0] == evaluations[errored]
    assert [hex_id(s["spanID"], 8) for s in no_verdict[1]] == [judged[errored]["spanId"]]

    # from a verdict to the request it judged: its target ids, and its link, name the chat span
    for trace_id in traces:
        chat = next(s for s in spans[trace_id] if s["name"] == CHAT)
        for verdict in verdicts[trace_id]:
            assert verdict["parentSpanId"] is None
            assert verdict["attributes"][TARGET_TRACE] == trace_id
            assert verdict["attributes"][TARGET_SPAN] == chat["spanId"]
            assert verdict["links"] == [(trace_id, chat["spanId"])]
        # and back: the request's verdicts, found by its trace id
        assert set(search(tempo, OF_REQUEST.format(trace_id))) == {evaluations[trace_id]}
    # the structural query needs the verdicts under the chat span (judge.verdicts: child)
    assert search(tempo, UNDER_CHAT) == {}

    # the request's trace is as long as its root span, in Tempo's search too
    for trace_id in traces:
        root = next(s for s in spans[trace_id] if s["name"] == ROOT)
        start, end = int(root["startTimeUnixNano"]), int(root["endTimeUnixNano"])
        assert min(int(s["startTimeUnixNano"]) for s in spans[trace_id]) == start
        assert max(int(s["endTimeUnixNano"]) for s in spans[trace_id]) == end
        first_verdict = min(int(s["startTimeUnixNano"]) for s in verdicts[trace_id])
        assert first_verdict > end  # judged after the request ended
        described = search_traces(tempo, f'{{ name = "{ROOT}" }}')[trace_id]
        assert described["rootTraceName"] == ROOT
        assert int(described.get("durationMs", 0)) == (end - start) // 1_000_000


@pytest.mark.parametrize(
    "idle",
    ["15s", "1s"],
    ids=["verdicts-within-idle-period", "verdicts-after-idle-period"],
)
def test_child_verdicts_under_the_chat_span(
    procs: Processes,
    devserver: Any,
    judge: JudgeServer,
    sink: OtlpReceiver,
    tmp_path: Path,
    idle: str,
) -> None:
    """``judge.verdicts: child``: the verdicts are in the request's trace under the chat span,
    and the documented structural query finds the failing ones there when they reach Tempo
    within its trace idle period of the request's spans (one live trace). When Tempo 2 has
    already cut the request's spans (1 s here; the verdicts come 1 s + judging after the
    request) it stores the trace in two parts and the query finds nothing, though each
    verdict is found by its attributes; Tempo 3 finds them in both cases."""
    found = idle == "15s" or tempo_major(require_tempo()) >= 3
    tempo = start_tempo(procs, trace_idle=idle)
    collector = start_pipeline(procs, tempo, sink, judge, LLMTAP_JUDGE_VERDICTS="child")
    (request,) = run_app(collector, devserver, tmp_path, 1)
    trace_id = request["trace_id"]
    spans = wait_for_spans(tempo, trace_id, len(REQUEST_SPANS) + len(EVALUATIONS))
    chat = next(s for s in spans if s["name"] == CHAT)
    failing = {
        s["spanId"]
        for s in spans
        if s["parentSpanId"] == chat["spanId"]
        and s["attributes"].get("llmtap.evaluation.passed") is False
    }
    assert failing  # cost_budget at least
    assert trace_spans(tempo, evaluation_trace(trace_id)) == []  # no evaluation trace
    # the failing verdicts are searchable
    wait_until(lambda: trace_id in search(tempo, FAILING), 60, "the verdicts in the search", 0.5)
    if found:
        answer = wait_until(lambda: search(tempo, UNDER_CHAT), 30, "the structural query", 0.5)
        assert list(answer) == [trace_id]
        assert {hex_id(s["spanID"], 8) for s in answer[trace_id]} == failing
    else:
        assert search(tempo, UNDER_CHAT) == {}
