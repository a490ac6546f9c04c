"""The Jaeger searches deploy/README.md and docs/backends/jaeger.md give for failing verdicts
find them, and lead to the judged spans: verdict spans as the service writes them by default
(``judge.verdicts: linked``: ``evaluate {name}`` spans built by ``service.results``, in one
evaluation trace per judged trace, linked to the judged span, with ``gen_ai.evaluation.name``,
the boolean ``llmtap.evaluation.passed``, ``llmtap.evaluation.target.*``, status ERROR without
a verdict) sent over OTLP/gRPC to a real Jaeger v2, then searched through its HTTP API with
the documented tags."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import format_span_id, format_trace_id

from llmtap import semconv
from llmtap.evals.base import Verdict
from llmtap.pipeline.span import SpanData
from llmtap.service.results import build_result_span, evaluation_attributes
from llmtap.service.spans import from_span_data, set_attributes
from support.binaries import Proc, Processes, http_get, start_jaeger, wait_until

pytestmark = pytest.mark.e2e

SERVICE = "verdict-search-app"
VERDICTS = {
    "failing": [("faithfulness", False), ("answer_relevance", True)],
    "other": [("faithfulness", True), ("answer_relevance", False)],
    "no_verdict": [("toxicity", None)],
}


@pytest.fixture
def jaeger(tmp_path) -> Iterator[Proc]:
    with Processes(tmp_path) as procs:
        yield start_jaeger(procs)


def send_requests(jaeger: Proc) -> dict[str, SpanData]:
    """One ``chat gpt-4o`` request trace per entry of :data:`VERDICTS` (the app's side)."""
    exporter = OTLPSpanExporter(endpoint=f"http://{jaeger.endpoint('grpc')}", insecure=True)
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    chats = {}
    for label in VERDICTS:
        with provider.get_tracer("app").start_as_current_span("chat gpt-4o") as chat:
            context = chat.get_span_context()
        chats[label] = SpanData(
            name="chat gpt-4o",
            attributes={semconv.OPERATION: "chat"},
            resource={"service.name": SERVICE},
            trace_id=context.trace_id,
            span_id=context.span_id,
        )
    provider.shutdown()
    return chats


def send_verdicts(jaeger: Proc, chats: dict[str, SpanData]) -> None:
    """The judge's result spans on the chats, encoded by the service's own code."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    set_attributes(resource_spans.resource.attributes, {"service.name": SERVICE})
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "llmtap.service"
    now = time.time_ns()
    for label, results in VERDICTS.items():
        for name, passed in results:
            if passed is None:
                verdict = Verdict(name=name, error_type="timeout", explanation="no verdict")
            else:
                verdict = Verdict(name=name, passed=passed, score=1.0 if passed else 0.0)
            attrs = evaluation_attributes(verdict, chats[label], source="judge")
            span = build_result_span(verdict, chats[label], attrs, start_ns=now, end_ns=now + 1000)
            scope_spans.spans.append(from_span_data(span))
    with grpc.insecure_channel(jaeger.endpoint("grpc")) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)


def search(jaeger: Proc, tags: dict[str, str], operation: str | None = None) -> list[Any]:
    query = {"service": SERVICE, "tags": json.dumps(tags), "lookback": "1h", "limit": "20"}
    if operation:
        query["operation"] = operation
    status, body = http_get(jaeger.url("query", "/api/traces?" + urllib.parse.urlencode(query)))
    assert status == 200, body
    return json.loads(body)["data"] or []


def trace_ids(traces: list[Any]) -> set[str]:
    return {trace["traceID"].rjust(32, "0") for trace in traces}


def judged(traces: list[Any], tags: dict[str, str]) -> tuple[set[str], set[str]]:
    """The judged spans of the verdicts in ``traces`` that carry ``tags``, twice: by their
    ``llmtap.evaluation.target.*`` tags and by their FOLLOWS_FROM references (the links)."""
    by_tags, by_links = set(), set()
    for trace in traces:
        for span in trace["spans"]:
            values = {t["key"]: t["value"] for t in span["tags"]}
            if any(str(values.get(k)).lower() != v for k, v in tags.items()):
                continue
            target = values[semconv.LLMTAP_EVALUATION_TARGET_TRACE_ID]
            by_tags.add(f"{target}/{values[semconv.LLMTAP_EVALUATION_TARGET_SPAN_ID]}")
            for ref in span["references"]:
                assert ref["refType"] == "FOLLOWS_FROM"  # a root: no CHILD_OF
                by_links.add(f"{ref['traceID'].rjust(32, '0')}/{ref['spanID']}")
    return by_tags, by_links


def test_the_documented_jaeger_searches_find_the_failing_verdicts(jaeger: Proc) -> None:
    chats = send_requests(jaeger)
    send_verdicts(jaeger, chats)
    ids = {
        label: f"{format_trace_id(c.trace_id)}/{format_span_id(c.span_id)}"
        for label, c in chats.items()
    }
    wait_until(lambda: len(search(jaeger, {})) == 6, 20, "3 requests and 3 evaluation traces")

    failing = {"llmtap.evaluation.passed": "false"}
    found = search(jaeger, failing)
    assert len(found) == 2  # the evaluation traces of "failing" and "other"
    assert judged(found, failing) == ({ids["failing"], ids["other"]},) * 2
    failing_faithfulness = {"gen_ai.evaluation.name": "faithfulness", **failing}
    found = search(jaeger, failing_faithfulness)
    assert judged(found, failing_faithfulness) == ({ids["failing"]},) * 2
    timeout = {"error.type": "timeout"}
    found = search(jaeger, timeout, "evaluate toxicity")
    assert judged(found, timeout) == ({ids["no_verdict"]},) * 2
    # Jaeger v2's memory store does not take the status as an ``error=true`` tag
    assert search(jaeger, {"error": "true"}) == []

    # from a request to its verdicts: one evaluation trace per judged trace
    request = format_trace_id(chats["failing"].trace_id)
    (evaluation,) = search(jaeger, {"llmtap.evaluation.target.trace_id": request})
    names = {span["operationName"] for span in evaluation["spans"]}
    assert names == {"evaluate faithfulness", "evaluate answer_relevance"}
    assert request not in trace_ids([evaluation])
    # and back: the request's trace holds only the request
    status, body = http_get(jaeger.url("query", f"/api/traces/{request}"))
    assert status == 200
    (trace,) = json.loads(body)["data"]
    assert [span["operationName"] for span in trace["spans"]] == ["chat gpt-4o"]
