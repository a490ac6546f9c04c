"""``extract_input`` on span records of real llmtap spans (the OpenAI instrumentation and
the step helpers against the dev server) and on hand-made ones (event-only content, tool
results, malformed content), and ``resolve_field``."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import llmtap
from llmtap import runtime
from llmtap.config import CaptureMode, Settings
from llmtap.evals.base import EvalInput
from llmtap.evals.extract import check_field, resolve_field
from llmtap.evals.registry import build_evaluator, extract_input
from llmtap.instrumentation._invocation import Telemetry
from llmtap.pipeline.span import EventData, SpanData

WARRANTY = "The X200 router comes with a two-year limited warranty."
LATE = "A document retrieved after the model call."


def to_data(span: Any) -> SpanData:
    """A finished SDK span as the record the service assembles."""
    return SpanData(
        name=span.name,
        attributes=dict(span.attributes or {}),
        events=[EventData(e.name, dict(e.attributes or {}), e.timestamp) for e in span.events],
        duration_s=(span.end_time - span.start_time) / 1e9,
        trace_id=span.context.trace_id,
        span_id=span.context.span_id,
        parent_span_id=span.parent.span_id if span.parent else 0,
        kind=span.kind.name,
        start_ns=span.start_time,
        end_ns=span.end_time,
    )


@pytest.fixture
def rag_trace(instrument_openai, tracer_provider, span_exporter, devserver) -> list[SpanData]:
    instrument_openai(capture="span_only")
    runtime.use_telemetry(Telemetry(Settings(capture=CaptureMode.SPAN_ONLY), tracer_provider))
    client = openai.OpenAI(base_url=devserver.openai_base_url, api_key="k", max_retries=0)

    @llmtap.tool
    def order_status(order_id: str) -> dict:
        return {"order": order_id, "status": "shipped"}

    try:
        with (
            llmtap.context(
                user_id="u-42", feature="support", metadata={"tier": "gold", "region": "eu"}
            ),
            llmtap.workflow("answer"),
        ):
            with llmtap.retrieval("kb", query="warranty X200") as r:
                r.documents(
                    [
                        {"id": "d1", "score": 0.9, "content": WARRANTY},
                        {"id": "d2", "score": 0.4},  # no content recorded
                        {"id": "d3", "score": 0.3, "content": WARRANTY},  # duplicate
                    ]
                )
            order_status("A-1")
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[
                    {"role": "system", "content": "Answer from the documents only."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello! How can I help?"},
                    {"role": "user", "content": "How long is the X200 warranty?"},
                ],
            )
            with llmtap.retrieval("kb-late") as r:
                r.documents([{"id": "d9", "score": 0.1, "content": LATE}])
    finally:
        runtime.use_telemetry(None)
        client.close()
    return [to_data(s) for s in span_exporter.get_finished_spans()]


def chat_span(trace: list[SpanData]) -> SpanData:
    (span,) = [s for s in trace if s.attributes.get("gen_ai.operation.name") == "chat"]
    return span


def test_extract_from_real_llmtap_spans(rag_trace: list[SpanData]) -> None:
    chat = chat_span(rag_trace)
    item = extract_input(chat, rag_trace)
    assert item.span is chat and list(item.trace) == rag_trace
    assert item.input_text == "How long is the X200 warranty?"
    output = json.loads(chat.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"]
    assert item.output_text == output and output
    # retrieval documents (deduplicated, contentless ones left out), then the tool result;
    # not the retrieval that happened after the model call
    assert list(item.documents) == [WARRANTY, '{"order": "A-1", "status": "shipped"}']
    assert item.metadata["tier"] == "gold" and item.metadata["region"] == "eu"
    assert item.metadata["feature"] == "support"
    assert item.metadata["user_id"] == "u-42"
    assert resolve_field(item, "system") == "Answer from the documents only."
    assert resolve_field(item, "conversation") == (
        "user: Hi\n\nassistant: Hello! How can I help?\n\nuser: How long is the X200 warranty?"
    )
    assert resolve_field(item, "span.gen_ai.request.model") == "gpt-4o-mini"
    assert resolve_field(item, "metadata.tier") == "gold"


async def test_rules_on_real_spans(rag_trace: list[SpanData]) -> None:
    chat = chat_span(rag_trace)
    item = extract_input(chat, rag_trace)
    truncation = await build_evaluator({"evaluator": "truncation"}).evaluate(item)
    assert truncation.passed is True and truncation.label == "complete"
    latency = await build_evaluator({"evaluator": "latency_budget", "max_s": 30}).evaluate(item)
    assert latency.passed is True and 0 < latency.score < 30
    refusal = await build_evaluator({"evaluator": "refusal"}).evaluate(item)
    assert refusal.label == "answer"


def test_content_from_the_details_event() -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": "question?"}]}]
    out = [{"role": "assistant", "parts": [{"type": "text", "content": "answer."}]}]
    span = SpanData(
        name="chat m",
        attributes={"gen_ai.operation.name": "chat"},
        events=[
            EventData(
                "gen_ai.client.inference.operation.details",
                {
                    "gen_ai.input.messages": json.dumps(messages),
                    "gen_ai.output.messages": json.dumps(out),
                    "gen_ai.system_instructions": json.dumps(
                        [{"type": "text", "content": "be brief"}]
                    ),
                },
            )
        ],
    )
    item = extract_input(span, [span])
    assert (item.input_text, item.output_text) == ("question?", "answer.")
    assert resolve_field(item, "system") == "be brief"


def test_tool_results_in_the_input_messages_are_documents() -> None:
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": "weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "weather", "arguments": {}}],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "c1", "response": {"temp_c": 21}}],
        },
    ]
    span = SpanData(name="chat", attributes={"gen_ai.input.messages": json.dumps(messages)})
    item = extract_input(span)
    assert item.input_text == "weather in Paris?"
    assert list(item.documents) == ['{"temp_c": 21}']
    assert "[tool call weather: {}]" in resolve_field(item, "conversation")


def test_malformed_content_is_left_out() -> None:
    span = SpanData(
        name="chat",
        attributes={
            "gen_ai.input.messages": "[{not json",
            "gen_ai.output.messages": json.dumps({"unexpected": True}),
        },
    )
    retrieval = SpanData(
        name="retrieval",
        attributes={"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.documents": "{oops"},
    )
    item = extract_input(span, [retrieval, span])
    assert item.output_text == ""
    assert item.input_text == "[{not json"  # a bare string counts as the user's text
    assert list(item.documents) == []


def test_golden_case_fields_without_a_span() -> None:
    item = EvalInput(
        input_text="q", output_text="a", documents=["d1", "d2"], metadata={"system": "rules"}
    )
    assert resolve_field(item, "system") == "rules"
    assert resolve_field(item, "conversation") == "user: q"
    assert resolve_field(item, "documents") == ["d1", "d2"]
    assert resolve_field(item, "span.anything") is None
    assert resolve_field(item, "metadata.missing") is None


def test_check_field() -> None:
    for ok in ("input", "output", "documents", "system", "conversation", "metadata.x", "span.y"):
        assert check_field(ok) is None
    assert "unknown field" in check_field("answer")
    assert check_field("metadata.") is not None


def test_an_agent_span_sees_its_own_retrievals_only() -> None:
    t0 = 1_700_000_000_000_000_000

    def retrieval(span_id: int, parent: int, start: int, end: int, text: str) -> SpanData:
        return SpanData(
            name="retrieval kb",
            attributes={
                "gen_ai.operation.name": "retrieval",
                "gen_ai.retrieval.documents": json.dumps([{"id": "d", "content": text}]),
            },
            span_id=span_id,
            parent_span_id=parent,
            start_ns=t0 + start,
            end_ns=t0 + end,
        )

    agent = SpanData(
        name="invoke_agent helper",
        attributes={"gen_ai.operation.name": "invoke_agent"},
        span_id=10,
        parent_span_id=1,
        start_ns=t0 + 100,
        end_ns=t0 + 1000,
    )
    step = SpanData(name="step", attributes={}, span_id=11, parent_span_id=10)
    trace = [
        retrieval(2, 1, 0, 50, "before the agent"),
        agent,
        step,
        retrieval(12, 11, 200, 300, "inside the agent"),
        retrieval(3, 1, 200, 300, "beside the agent"),
    ]
    item = extract_input(agent, trace)
    assert list(item.documents) == ["before the agent", "inside the agent"]
