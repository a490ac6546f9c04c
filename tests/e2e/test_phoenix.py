"""End to end with a real Arize Phoenix: ``llmtap demo --phoenix URL`` (the demo app against
the bundled model server, judged by the in-process service with its rules and, through
``--judge-base-url``, an LLM judge on a scripted loopback judge server; the service forwards
with the ``phoenix`` export preset and sends every verdict and the user's feedback to the
``phoenix`` evaluation sink) into ``phoenix serve`` (tools/fetch-phoenix.sh; SQLite,
loopback), then read back over Phoenix's REST API and GraphQL, and seen in its UI with
headless Chromium.

The demo's own file export (``traces.jsonl``) is what Phoenix is compared with: the same span
ids, the token counts, messages and cost llmtap recorded, each span's duration, the verdicts.
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


def verdicts(sent: dict[str, SpanData]) -> dict[tuple[str, str], SpanData]:
    """The demo's verdict spans that are evaluations (not evaluator errors), by (judged span
    id, evaluation name)."""
    return {
        (hex_id(s.parent_span_id), str(s.attributes["gen_ai.evaluation.name"])): s
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
    (project,) = [p for p in demo.phoenix.projects() if p["name"] == demo.project]
    counted = demo.phoenix.graphql(
        "query($id: ID!) { node(id: $id) { ... on Project { traceCount } } }", id=project["id"]
    )
    assert counted["node"]["traceCount"] == len(traces) == 5


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


def test_trace_latency_phoenix_reports_against_the_requests_own_duration(demo, record_property):
    """Phoenix's root span latency is the request's duration; its trace latency runs from the
    first span's start to the last span's end of the trace. Verdict spans in the request's
    own trace (the judge's ``evaluate`` spans, the user's feedback seconds later) stretch it;
    verdicts in a trace of their own do not."""
    (project,) = [p for p in demo.phoenix.projects() if p["name"] == demo.project]
    roots = [s for s in demo.sent.values() if not s.parent_span_id]
    rows = []
    for root in roots:
        trace_id = hex_id(root.trace_id, 32)
        found = demo.phoenix.graphql(TRACE_LATENCY, id=project["id"], trace=trace_id)
        trace = found["node"]["trace"]
        request_ms = (root.end_ns - root.start_ns) / 1e6
        spans = [s for s in demo.sent.values() if s.trace_id == root.trace_id]
        extent_ms = (max(s.end_ns for s in spans) - min(s.start_ns for s in spans)) / 1e6
        assert trace["rootSpan"]["name"] == root.name
        assert trace["rootSpan"]["latencyMs"] == pytest.approx(request_ms, abs=0.01)
        assert trace["latencyMs"] == pytest.approx(extent_ms, abs=0.01)
        rows.append((root.name, round(request_ms, 1), round(trace["latencyMs"], 1)))
    record_property("request_ms_vs_phoenix_trace_latency_ms", rows)
    sys.stdout.write("".join(f"\n{n}: request {r} ms, Phoenix trace {t} ms" for n, r, t in rows))
    root = support_root(demo)
    support = next(r for r in rows if r[0] == root.name)
    feedback_in_trace = any(
        s.trace_id == root.trace_id and s.attributes.get("llmtap.evaluation.source") == "user"
        for s in demo.sent.values()
    )
    if feedback_in_trace:  # the feedback verdict came a while later, in the same trace
        assert support[2] > support[1] + 500, rows
    else:  # verdicts in traces of their own: the trace is the request
        assert support[2] == pytest.approx(support[1], abs=0.1), rows


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
    roots = {s["name"]: s["attributes"] for s in demo.stored[demo.project] if not s["parent_id"]}
    assert len(roots) == 5
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

SUPPORT_TRACE_SPANS = (
    "invoke_workflow support-answer",
    "retrieval knowledge-base",
    "chat gpt-4o-mini",
    "evaluate no_pii_in_answer",
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
