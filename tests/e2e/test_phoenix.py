"""End to end with a real Arize Phoenix: ``llmtap demo --phoenix URL`` (the demo app against
the bundled model server, judged by the in-process service with its rules and, through
``--judge-base-url``, an LLM judge on a scripted loopback judge server; the service forwards
with the ``phoenix`` export preset and sends every verdict and the user's feedback to the
``phoenix`` evaluation sink) into ``phoenix serve`` (tools/fetch-phoenix.sh; SQLite,
loopback), then read back over Phoenix's REST API and GraphQL, and seen in its UI with
headless Chromium.

The demo's own file export (``traces.jsonl``) is what Phoenix is compared with: the same span
ids, the token counts, messages and cost llmtap recorded, each span's duration, the verdicts.
The judge's and the rules' verdict spans are in evaluation traces of their own, one per judged
request, linked to the spans they judged (``judge.verdicts: linked``, the default); the user's
feedback is a child of the answer's span, in the request's trace.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmtap.export.file import read_otlp_json_lines
from llmtap.pipeline.span import SpanData
from llmtap.service.results import evaluation_trace_id
from llmtap.service.spans import attributes_of, to_span_data
from support.binaries import Processes, http_get, wait_until
from support.judge_server import JudgeServer
from support.phoenix_server import PhoenixServer, loopback, open_page, start_phoenix

pytestmark = pytest.mark.e2e

#: the demo's span names (by prefix) and the kind Phoenix gives each from the GenAI semconv
KINDS = {
    "retrieval ": "RETRIEVER",
    "chat ": "LLM",
    "embeddings ": "EMBEDDING",
    "execute_tool ": "TOOL",
    "invoke_agent ": "AGENT",
}
#: the names of the cost total on a span: llmtap.cost.total, or gen_ai.usage.cost before it
COST_NAMES = ("llmtap.cost.total", "gen_ai.usage.cost")
PLANTED = ("jane.doe@example.com", "7946 0958", "4111 1111 1111 1111")
#: who gave a verdict (llmtap.evaluation.source) -> the annotator kind Phoenix shows
ANNOTATOR_KINDS = {"judge": "LLM", "rule": "CODE", "user": "HUMAN"}
TARGET_TRACE = "llmtap.evaluation.target.trace_id"
TARGET_SPAN = "llmtap.evaluation.target.span_id"


@dataclass
class DemoInPhoenix:
    phoenix: PhoenixServer
    #: the spans of the demo's own file export, by span id (hex)
    sent: dict[str, SpanData]
    #: project name → its spans in Phoenix (REST), for the projects that have any
    stored: dict[str, list[dict[str, Any]]]
    demo_s: float
    stored_s: float
    folder: Path
    #: (judged span id, annotation name) -> Phoenix's span annotation
    annotations: dict[tuple[str, str], dict[str, Any]]
    #: seconds after the spans were stored until every verdict was an annotation
    annotated_s: float

    def span(self, span_id: str) -> dict[str, Any]:
        return next(s for group in self.stored.values() for s in group if sid(s) == span_id)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [s for group in self.stored.values() for s in group if s["name"] == name]

    @property
    def project(self) -> str:
        """The one project the demo's spans are in."""
        (name,) = self.stored
        return name


def sid(span: dict[str, Any]) -> str:
    return span["context"]["span_id"]


def hex_id(value: int, width: int = 16) -> str:
    return f"{value:0{width}x}"


def file_spans(path: Path) -> list[SpanData]:
    out: list[SpanData] = []
    for _, request, _ in read_otlp_json_lines(path):
        for rs in request.resource_spans if request is not None else ():
            resource = attributes_of(rs.resource.attributes)
            for ss in rs.scope_spans:
                out.extend(to_span_data(span, resource) for span in ss.spans)
    return out


def judged_span(verdict: SpanData) -> str:
    """The id (hex) of the span a verdict span judged: the one it names (a judge's or a
    rule's verdict, in an evaluation trace), else its parent (the user's feedback)."""
    return str(verdict.attributes.get(TARGET_SPAN) or hex_id(verdict.parent_span_id))


def request_roots(sent: dict[str, SpanData]) -> list[SpanData]:
    """The root spans of the demo's requests (not of the evaluation traces)."""
    return [s for s in sent.values() if not s.parent_span_id and TARGET_TRACE not in s.attributes]


def evaluation_roots(sent: dict[str, SpanData]) -> list[SpanData]:
    """The verdict spans at the root of an evaluation trace (``judge.verdicts: linked``)."""
    return [s for s in sent.values() if not s.parent_span_id and TARGET_TRACE in s.attributes]


def verdicts(sent: dict[str, SpanData]) -> dict[tuple[str, str], SpanData]:
    """The demo's verdict spans that are evaluations (not evaluator errors), by (judged span
    id, evaluation name)."""
    return {
        (judged_span(s), str(s.attributes["gen_ai.evaluation.name"])): s
        for s in sent.values()
        if s.name.startswith("evaluate ") and "error.type" not in s.attributes
    }


def span_annotations(phoenix: PhoenixServer, project: str, span_ids: set[str]) -> list[dict]:
    """The annotations of ``span_ids``; none while Phoenix has none of those spans (404)."""
    query = "&".join(f"span_ids={span_id}" for span_id in sorted(span_ids))
    url = f"{phoenix.url}/v1/projects/{project}/span_annotations?{query}&limit=1000"
    status, body = http_get(url)
    if status == 404 and b"span_ids exist" in body:
        return []
    assert status == 200, f"GET {url}: HTTP {status} {body[:500]!r}"
    return json.loads(body)["data"]


def wait_annotations(
    phoenix: PhoenixServer, project: str, wanted: set[tuple[str, str]], timeout: float = 60
) -> dict[tuple[str, str], dict[str, Any]]:
    """Phoenix's annotations of the judged spans, once every one of ``wanted`` is there
    (Phoenix stores an annotation that came before its span up to 10 s later)."""
    span_ids = {span_id for span_id, _ in wanted}

    def found() -> dict[tuple[str, str], dict[str, Any]] | None:
        have = {(a["span_id"], a["name"]): a for a in span_annotations(phoenix, project, span_ids)}
        return have if wanted <= set(have) else None

    return wait_until(found, timeout, f"Phoenix to hold {len(wanted)} annotations", interval=0.5)


def run_demo(folder: Path, phoenix: PhoenixServer, judge_url: str) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith(("OTEL_", "LLMTAP_"))
    }
    env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"
    args = [sys.executable, "-m", "llmtap", "demo", "--keep", str(folder)]
    args += ["--phoenix", phoenix.traces_url, "--judge-base-url", judge_url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, f"llmtap demo:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoInPhoenix]:
    """Phoenix started once for the module, with the demo's traces in it."""
    base = tmp_path_factory.mktemp("phoenix-e2e")
    with Processes(base / "logs") as procs, JudgeServer() as judge:
        phoenix = start_phoenix(procs, base / "phoenix")
        began = time.monotonic()
        out = run_demo(base / "demo", phoenix, judge.openai_base_url)
        demo_s = time.monotonic() - began
        assert f"forwarding to Phoenix at {phoenix.traces_url}" in out
        sent = {hex_id(s.span_id): s for s in file_spans(base / "demo" / "traces.jsonl")}
        phoenix.wait_spans(sent)
        stored_s = time.monotonic() - began - demo_s
        stored = phoenix.all_spans()
        (project,) = stored
        annotations = wait_annotations(phoenix, project, set(verdicts(sent)))
        annotated_s = time.monotonic() - began - demo_s - stored_s
        yield DemoInPhoenix(
            phoenix, sent, stored, demo_s, stored_s, base / "demo", annotations, annotated_s
        )


def test_phoenix_stores_every_span_of_the_demo_in_one_project(demo, record_property):
    record_property("phoenix_start_s", round(demo.phoenix.start_s, 1))
    record_property("demo_run_s", round(demo.demo_s, 1))
    record_property("phoenix_stored_after_s", round(demo.stored_s, 2))
    record_property("phoenix_annotated_after_s", round(demo.annotated_s, 2))
    stored = demo.stored[demo.project]
    assert {sid(s) for s in stored} == set(demo.sent)
    for span in stored:
        parent = demo.sent[sid(span)].parent_span_id
        assert span["parent_id"] == (hex_id(parent) if parent else None), span["name"]
    traces = {s.trace_id for s in demo.sent.values()}
    requests = {s.trace_id for s in request_roots(demo.sent)}
    evaluations = {s.trace_id for s in evaluation_roots(demo.sent)}
    assert len(requests) == 5 and evaluations and traces == requests | evaluations
    (project,) = [p for p in demo.phoenix.projects() if p["name"] == demo.project]
    counted = demo.phoenix.graphql(
        "query($id: ID!) { node(id: $id) { ... on Project { traceCount } } }", id=project["id"]
    )
    # the 5 requests' traces and, for each request the judge judged, its evaluation trace
    assert counted["node"]["traceCount"] == len(traces) == 5 + len(evaluations)
    record_property("evaluation_traces", len(evaluations))


def test_judges_verdicts_are_in_evaluation_traces_linked_to_the_judged_spans(demo):
    """Each judge's or rule's verdict span is a root in the evaluation trace of the trace it
    judged (its id derived from that trace's), with a link to the judged span and the
    ``llmtap.evaluation.target.*`` ids naming it; Phoenix stores it there as a root. Phoenix
    keeps no OpenTelemetry links (the file export has them): the target attributes and the
    annotation on the judged span are what tie a verdict to its span there. The user's
    feedback is a child of the answer's span, in the answer's trace."""
    roots = evaluation_roots(demo.sent)
    assert {str(s.attributes["llmtap.evaluation.source"]) for s in roots} == {"judge", "rule"}
    for verdict in roots:
        judged = demo.sent[str(verdict.attributes[TARGET_SPAN])]
        assert verdict.attributes[TARGET_TRACE] == hex_id(judged.trace_id, 32)
        assert verdict.trace_id == evaluation_trace_id(judged.trace_id) != judged.trace_id
        assert [(x.trace_id, x.span_id) for x in verdict.links] == [
            (judged.trace_id, judged.span_id)
        ], verdict.name
        stored = demo.span(hex_id(verdict.span_id))
        assert stored["parent_id"] is None, verdict.name
        assert stored["context"]["trace_id"] == hex_id(verdict.trace_id, 32), verdict.name
        assert stored["attributes"][TARGET_SPAN] == hex_id(judged.span_id), verdict.name
        assert stored["attributes"][TARGET_TRACE] == hex_id(judged.trace_id, 32), verdict.name
    feedback = [
        s for s in demo.sent.values() if s.attributes.get("llmtap.evaluation.source") == "user"
    ]
    assert feedback
    for verdict in feedback:
        answer = demo.sent[hex_id(verdict.parent_span_id)]
        assert verdict.trace_id == answer.trace_id and not verdict.links


def test_span_kinds_from_the_genai_conventions(demo):
    kinds = {}
    for span in demo.stored[demo.project]:
        for prefix, kind in KINDS.items():
            if span["name"].startswith(prefix):
                assert span["span_kind"] == kind, span["name"]
                kinds[kind] = kinds.get(kind, 0) + 1
    # 4 chat calls (support, the agent's two, the stream) and Anthropic's
    assert kinds == {"RETRIEVER": 1, "LLM": 5, "EMBEDDING": 1, "TOOL": 1, "AGENT": 1}


def test_tokens_and_messages_of_the_model_calls(demo):
    llm = [s for s in demo.stored[demo.project] if s["span_kind"] == "LLM"]
    assert len(llm) == 5
    for span in llm:
        attrs, sent = span["attributes"], demo.sent[sid(span)].attributes
        assert attrs["llm.token_count.prompt"] == int(sent["gen_ai.usage.input_tokens"])
        assert attrs["llm.token_count.completion"] == int(sent["gen_ai.usage.output_tokens"])
        assert attrs["llm.model_name"] == sent["gen_ai.request.model"]
        answer = json.loads(sent["gen_ai.output.messages"])[0]["parts"][0]
        if answer["type"] == "text":
            assert attrs["llm.output_messages.0.message.content"] == answer["content"]
        first = json.loads(sent["gen_ai.input.messages"])[0]
        assert attrs["llm.input_messages.0.message.role"] == first["role"]
        assert attrs["llm.input_messages.0.message.content"] == first["parts"][0]["content"]
    # the support question: redacted in the app, so Phoenix has the placeholders only
    (support,) = [s for s in llm if s["attributes"].get("session.id") == "s-42"]
    question = support["attributes"]["llm.input_messages.1.message.content"]
    assert "<EMAIL>" in question and "<PHONE>" in question
    everything = json.dumps(demo.stored)
    assert not [p for p in PLANTED if p in everything]
    # the agent: the tool call asked for, then answered
    asked, answered = sorted(
        (s for s in llm if s["name"] == "chat gpt-4o"), key=lambda s: s["start_time"]
    )
    call = "llm.output_messages.0.message.tool_calls.0.tool_call.function.name"
    assert asked["attributes"][call] == "get_order_status"
    assert answered["attributes"]["llm.input_messages.2.message.role"] == "tool"


def test_retrieval_tool_and_embedding_details(demo):
    (retrieval,) = demo.named("retrieval knowledge-base")
    attrs = retrieval["attributes"]
    assert attrs["retrieval.documents.0.document.id"] == "kb-12"
    assert attrs["retrieval.documents.0.document.score"] == pytest.approx(0.91)
    assert attrs["input.value"].startswith("When will my refund arrive?")
    (tool,) = demo.named("execute_tool get_order_status")
    assert tool["attributes"]["tool.name"] == "get_order_status"
    assert json.loads(tool["attributes"]["output.value"])["status"] == "shipped"
    (embedding,) = demo.named("embeddings text-embedding-3-small")
    assert embedding["attributes"]["embedding.model_name"] == "text-embedding-3-small"


def test_phoenix_cost_matches_llmtaps_for_every_model_call(demo):
    """Phoenix prices the model calls itself (its own price table, from the token counts);
    both tables agree on the demo's models. It has no price for the embedding call."""
    data = demo.phoenix.graphql(
        "{ projects { edges { node { name spans(first: 1000) { edges { node {"
        " context { spanId } spanKind costSummary { total { cost } } } } } } } } }"
    )
    (project,) = [e["node"] for e in data["projects"]["edges"] if e["node"]["name"] == demo.project]
    priced = 0
    for edge in project["spans"]["edges"]:
        node = edge["node"]
        sent = demo.sent[node["context"]["spanId"]].attributes
        ours = next((float(sent[n]) for n in COST_NAMES if n in sent), None)
        if node["spanKind"] != "llm":
            continue
        assert ours is not None and node["costSummary"] is not None
        assert node["costSummary"]["total"]["cost"] == pytest.approx(ours, rel=1e-6)
        priced += 1
    assert priced == 5


TRACE_LATENCY = """
query($id: ID!, $trace: ID!) { node(id: $id) { ... on Project { trace(traceId: $trace) {
  latencyMs rootSpan { name latencyMs } } } } }
"""


def trace_latency(demo: DemoInPhoenix, project_id: str, trace_id: int) -> dict[str, Any]:
    """Phoenix's ``latencyMs`` of a trace and the name and latency of its root span."""
    found = demo.phoenix.graphql(TRACE_LATENCY, id=project_id, trace=hex_id(trace_id, 32))
    return found["node"]["trace"]


def extent_ms(spans: list[SpanData]) -> float:
    """From the first span's start to the last span's end."""
    return (max(s.end_ns for s in spans) - min(s.start_ns for s in spans)) / 1e6


def test_trace_latency_phoenix_reports_against_the_requests_own_duration(demo, record_property):
    """Phoenix's trace latency runs from the first span's start to the last span's end of the
    trace; its root span latency is the request's duration. The judge's and the rules'
    verdicts are in evaluation traces of their own, so a request's trace is the request: its
    latency is the request's own, except where the user gave feedback. The feedback verdict
    stays a child of the answer's span in the answer's trace, and the demo records it after
    the request ended and was judged (the user's thumbs down on the support answer), so that
    trace lasts until the feedback."""
    (project,) = [p for p in demo.phoenix.projects() if p["name"] == demo.project]
    by_trace: dict[int, list[SpanData]] = {}
    for span in demo.sent.values():
        by_trace.setdefault(span.trace_id, []).append(span)
    feedback = {
        s.trace_id
        for s in demo.sent.values()
        if s.attributes.get("llmtap.evaluation.source") == "user"
    }
    # the demo's one thumbs down, on the support answer
    assert feedback == {support_root(demo).trace_id}
    rows = []
    for root in request_roots(demo.sent):
        trace = trace_latency(demo, project["id"], root.trace_id)
        request_ms = (root.end_ns - root.start_ns) / 1e6
        assert trace["rootSpan"]["name"] == root.name
        assert trace["rootSpan"]["latencyMs"] == pytest.approx(request_ms, abs=0.01)
        assert trace["latencyMs"] == pytest.approx(extent_ms(by_trace[root.trace_id]), abs=0.01)
        if root.trace_id in feedback:  # lasts until the user's feedback, after the request
            assert trace["latencyMs"] > request_ms + 500, root.name
        else:  # the request's own duration: no verdict span in its trace
            assert trace["latencyMs"] == pytest.approx(request_ms, abs=0.01), root.name
        rows.append((root.name, round(request_ms, 1), round(trace["latencyMs"], 1)))
    evaluations = []
    for verdict in evaluation_roots(demo.sent):
        if verdict.trace_id in evaluations:
            continue
        evaluations.append(verdict.trace_id)
        trace = trace_latency(demo, project["id"], verdict.trace_id)
        assert trace["latencyMs"] == pytest.approx(extent_ms(by_trace[verdict.trace_id]), abs=0.01)
        (judged,) = [
            r.name
            for r in request_roots(demo.sent)
            if hex_id(r.trace_id, 32) == verdict.attributes[TARGET_TRACE]
        ]
        rows.append((f"evaluation trace of {judged}", None, round(trace["latencyMs"], 1)))
    record_property("request_ms_vs_phoenix_trace_latency_ms", rows)
    for name, request, phoenix in rows:
        own = f"request {request} ms, " if request is not None else ""
        sys.stdout.write(f"\n{name}: {own}Phoenix trace {phoenix} ms")
    assert len(rows) == 5 + len(evaluations) and evaluations


# what the phoenix preset's OpenInference translation and evaluation sink add ----------------


def test_evaluate_spans_are_evaluator_spans(demo):
    evaluations = [s for s in demo.stored[demo.project] if s["name"].startswith("evaluate ")]
    assert len(evaluations) == sum(s.name.startswith("evaluate ") for s in demo.sent.values())
    assert {s["span_kind"] for s in evaluations} == {"EVALUATOR"}


def test_workflow_spans_are_chain_spans(demo):
    (workflow,) = demo.named("invoke_workflow support-answer")
    assert workflow["span_kind"] == "CHAIN"


def messages(span: SpanData, key: str) -> str:
    return str(span.attributes[f"gen_ai.{key}.messages"])


def test_root_spans_show_input_and_output(demo):
    """A root that records its own input and output (a model call) shows them; a workflow
    or agent root shows its trace's first input (by start) and last output (by end). The
    embedding call records no content, so there is nothing to show and nothing is made up."""
    roots = {
        s["name"]: s["attributes"]
        for s in demo.stored[demo.project]
        if not s["parent_id"] and TARGET_TRACE not in s["attributes"]
    }
    assert len(roots) == 5  # the requests' (the evaluation traces' roots are verdicts)
    sent = sorted(demo.sent.values(), key=lambda s: s.start_ns)
    # the support workflow: the question the retrieval was asked, the model call's answer
    workflow = roots["invoke_workflow support-answer"]
    (retrieval,) = [s for s in sent if s.name == "retrieval knowledge-base"]
    assert workflow["input.value"] == retrieval.attributes["gen_ai.retrieval.query.text"]
    assert workflow["input.value"].startswith("When will my refund arrive? Reach me at <EMAIL>")
    assert workflow["output.value"] == messages(support_chat(demo), "output")
    # the agent: its first model call's messages in, its last one's answer out
    first, last = [s for s in sent if s.name == "chat gpt-4o"]
    agent = roots["invoke_agent order-agent"]
    assert agent["input.value"] == messages(first, "input")
    assert agent["output.value"] == messages(last, "output")
    for name in ("chat gpt-4o-mini", "chat claude-sonnet-4-5"):
        (own,) = [s for s in sent if s.name == name and not s.parent_span_id]
        assert roots[name]["input.value"] == messages(own, "input"), name
        assert roots[name]["output.value"] == messages(own, "output"), name
    (embedding,) = [s for s in sent if s.name.startswith("embeddings ")]
    assert not [k for k in embedding.attributes if k.endswith((".messages", "query.text"))]
    assert "input.value" not in roots[embedding.name]


def test_project_is_named_after_the_demos_service(demo):
    assert demo.project == "llmtap-demo"


def test_verdicts_are_span_annotations_of_the_judged_spans(demo, record_property):
    """Every verdict (the LLM judge's, the rules', the user's feedback) is an annotation of
    the span it judged, with its label and score, and the annotator kind of who gave it."""
    kinds: dict[str, int] = {}
    for key, verdict in verdicts(demo.sent).items():
        annotation = demo.annotations[key]
        attrs = verdict.attributes
        source = str(attrs["llmtap.evaluation.source"])
        kind = ANNOTATOR_KINDS[source]
        assert annotation["annotator_kind"] == kind, key
        kinds[kind] = kinds.get(kind, 0) + 1
        result = annotation["result"] or {}
        if "gen_ai.evaluation.score.label" in attrs:
            assert result["label"] == attrs["gen_ai.evaluation.score.label"], key
        if "gen_ai.evaluation.score.value" in attrs:
            assert result["score"] == pytest.approx(attrs["gen_ai.evaluation.score.value"]), key
        assert annotation["identifier"].startswith(f"llmtap:{source}"), key
        assert annotation["metadata"]["source"] == source, key
    record_property("annotations_by_kind", kinds)
    assert set(kinds) == {"LLM", "CODE", "HUMAN"}, kinds
    # the support answer: the LLM judge's faithfulness, a rule's PII check, the thumbs down
    chat = hex_id(support_chat(demo).span_id)
    assert demo.annotations[(chat, "faithfulness")]["annotator_kind"] == "LLM"
    assert demo.annotations[(chat, "no_pii_in_answer")]["annotator_kind"] == "CODE"
    feedback = demo.annotations[(chat, "user_feedback")]
    assert feedback["annotator_kind"] == "HUMAN"
    assert feedback["metadata"]["feedback_label"] == "negative"


def test_an_annotation_sent_before_its_span_is_attached_when_the_span_arrives(
    demo, record_property
):
    """The sink posts without ``?sync=true``: Phoenix queues the annotation and, while its
    span is not there, tries again every 10 s (for 10 minutes). An annotation that overtakes
    its span (the judge's verdict before the forwarder's request) is attached all the same."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from llmtap.service.sinks.phoenix import PhoenixSink
    from llmtap.service.sinks.record import Evaluation

    resource = Resource({"service.name": "late-span", "openinference.project.name": demo.project})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(demo.phoenix.traces_url)))
    span = provider.get_tracer("test").start_span("chat late")
    context = span.get_span_context()
    sink = PhoenixSink(demo.phoenix.url, api_key=None, headers={}, timeout_s=10)
    verdict = Evaluation("early_bird", context.trace_id, context.span_id, "rule", 1, score=1.0)
    try:
        result = sink.send([verdict])
    finally:
        sink.close()
    assert (result.done, result.rejected, result.retry) == (1, 0, False)  # taken, no span yet
    time.sleep(1.0)  # Phoenix has looked for the span once and put the annotation aside
    began = time.monotonic()
    span.end()  # now the span is exported
    provider.shutdown()
    key = (hex_id(context.span_id), "early_bird")
    found = wait_annotations(demo.phoenix, demo.project, {key}, timeout=45)
    record_property("early_annotation_attached_after_s", round(time.monotonic() - began, 1))
    assert found[key]["annotator_kind"] == "CODE"
    assert found[key]["result"]["score"] == 1.0


# finding failing verdicts with Phoenix's span filters (docs/backends/phoenix.md) ----------

DOC = Path(__file__).resolve().parents[2] / "docs" / "backends" / "phoenix.md"
FILTERED_SPANS = """
query($id: ID!, $filter: String!) { node(id: $id) { ... on Project {
  spans(first: 1000, filterCondition: $filter) { edges { node { context { spanId } } } } } } }
"""


def failing_verdicts(demo: DemoInPhoenix) -> list[SpanData]:
    return [s for s in demo.sent.values() if s.attributes.get("llmtap.evaluation.passed") is False]


def judged_by(demo: DemoInPhoenix, name: str, label: str) -> set[str]:
    return {
        span_id
        for (span_id, evaluation), verdict in verdicts(demo.sent).items()
        if evaluation == name and verdict.attributes.get("gen_ai.evaluation.score.label") == label
    }


def test_the_documented_filters_find_the_failing_verdicts(demo):
    """Each filter of the Phoenix page, in Phoenix's span filter (the Spans tab's search
    bar; GraphQL's filterCondition), finds exactly the spans llmtap says it should."""
    (project,) = [p for p in demo.phoenix.projects() if p["name"] == demo.project]
    expected = {
        "span_kind == 'EVALUATOR' and llmtap.evaluation.passed == False": {
            hex_id(s.span_id) for s in failing_verdicts(demo)
        },
        "annotations['grounded'].label == 'ungrounded'": judged_by(demo, "grounded", "ungrounded"),
        "annotations['user_feedback'].label == 'negative'": judged_by(
            demo, "user_feedback", "negative"
        ),
    }
    assert {"grounded", "gives_a_time_frame"} <= {
        str(s.attributes["gen_ai.evaluation.name"]) for s in failing_verdicts(demo)
    }
    documented = DOC.read_text(encoding="utf-8")
    for condition, spans in expected.items():
        assert condition in documented, condition
        found = demo.phoenix.graphql(FILTERED_SPANS, id=project["id"], filter=condition)
        edges = found["node"]["spans"]["edges"]
        assert spans and {e["node"]["context"]["spanId"] for e in edges} == spans, condition


# Phoenix's UI in a browser -------------------------------------------------------------------

#: the support request's trace: the request and the user's feedback (a child of the answer)
SUPPORT_TRACE_SPANS = (
    "invoke_workflow support-answer",
    "retrieval knowledge-base",
    "chat gpt-4o-mini",
    "evaluate user_feedback",
)


def support_root(demo: DemoInPhoenix) -> SpanData:
    return next(
        s
        for s in demo.sent.values()
        if not s.parent_span_id and s.name == "invoke_workflow support-answer"
    )


def test_ui_renders_the_support_trace_tree(demo, tmp_path):
    trace_id = hex_id(support_root(demo).trace_id, 32)
    shot = tmp_path / "phoenix-support-trace.png"
    page = open_page(f"{demo.phoenix.url}/redirects/traces/{trace_id}", shot, SUPPORT_TRACE_SPANS)
    seen = f"screenshot: {shot}; page {page.url}"
    assert not page.missing, f"not rendered: {page.missing}; {seen}"
    assert trace_id in page.text, seen
    assert shot.stat().st_size > 10_000, seen
    assert [h for h in page.hosts if not loopback(h)] == [], f"requests off loopback; {seen}"


def test_ui_renders_the_support_requests_evaluation_trace(demo, tmp_path):
    """The judge's and the rules' verdicts on the support request, in its evaluation trace."""
    trace_id = evaluation_trace_id(support_root(demo).trace_id)
    names = sorted({s.name for s in evaluation_roots(demo.sent) if s.trace_id == trace_id})
    assert {"evaluate faithfulness", "evaluate no_pii_in_answer"} <= set(names)
    shot = tmp_path / "phoenix-support-evaluation-trace.png"
    page = open_page(f"{demo.phoenix.url}/redirects/traces/{hex_id(trace_id, 32)}", shot, names)
    seen = f"screenshot: {shot}; page {page.url}"
    assert not page.missing, f"not rendered: {page.missing}; {seen}"
    assert hex_id(trace_id, 32) in page.text, seen
    assert shot.stat().st_size > 10_000, seen


def support_chat(demo: DemoInPhoenix) -> SpanData:
    root = support_root(demo)
    return next(
        s
        for s in demo.sent.values()
        if s.parent_span_id == root.span_id and s.name == "chat gpt-4o-mini"
    )


def test_ui_shows_the_messages_of_a_model_call(demo, tmp_path):
    shot = tmp_path / "phoenix-support-chat.png"
    url = f"{demo.phoenix.url}/redirects/spans/{hex_id(support_chat(demo).span_id)}"
    expect = ("When will my refund arrive? Reach me at <EMAIL>", "Hello from the llmtap devserver")
    page = open_page(url, shot, ("chat gpt-4o-mini", *expect))
    assert not page.missing, f"not rendered: {page.missing}; screenshot: {shot}"


def test_ui_shows_the_verdicts_as_annotations_of_the_judged_span(demo, tmp_path):
    shot = tmp_path / "phoenix-support-chat-annotations.png"
    url = f"{demo.phoenix.url}/redirects/spans/{hex_id(support_chat(demo).span_id)}"
    names = ("faithfulness", "no_pii_in_answer", "user_feedback")
    page = open_page(url, shot, ("chat gpt-4o-mini", "Annotations", *names))
    seen = f"screenshot: {shot}; page {page.url}"
    assert not page.missing, f"not rendered: {page.missing}; {seen}"
    chat = hex_id(support_chat(demo).span_id)
    count = sum(1 for span_id, _ in demo.annotations if span_id == chat)
    counts = [int(n) for n in re.findall(r"Annotations\s+(\d+)", page.text)]
    assert count in counts, f"annotation counts {counts}, {count} sent; {seen}"
    assert shot.stat().st_size > 10_000, seen
