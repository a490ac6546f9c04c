"""OpenAI Agents SDK instrumentation against the real SDK talking to the dev server.

The agents' models are the SDK's own ``OpenAIResponsesModel`` / ``OpenAIChatCompletionsModel``
on an ``openai.AsyncOpenAI`` client pointed at the dev server, with llmtap's OpenAI
instrumentation on as well (the model calls merge into the agents' ``chat`` spans). The dev
server calls the first function tool it is offered unless the last input item is a tool's
output: an agent with a tool makes a tool call and then a second model call, and an agent
whose only tool is a handoff hands off.

The SDK's default trace processor exports to api.openai.com. Tests must stay offline without
turning the SDK's tracing off (``set_tracing_disabled`` / ``OPENAI_AGENTS_DISABLE_TRACING``
stop every processor, llmtap's too, and a tracing API key would make it post), so each test
does what an app does to send the SDK's traces elsewhere: ``set_trace_processors`` with a
processor of the app's own (``AppProcessor``, in memory) in place of the default one. That
also shows that llmtap adds its processor next to the app's and keeps it there.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import INVALID_SPAN, SpanKind, StatusCode

from llmtap import semconv

agents = pytest.importorskip("agents", reason="openai-agents is not installed")

from agents import (  # noqa: E402
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
    input_guardrail,
    set_trace_processors,
    trace,
)

from .test_openai_support import finished  # noqa: E402

TARGET = "llmtap.instrumentation.openai_agents:OpenAIAgentsInstrumentor"
OPENAI_TARGET = "llmtap.instrumentation.openai:OpenAIInstrumentor"
MODEL = "gpt-4o-mini"
QUESTION = "What is the weather in Paris?"


class AppProcessor:
    """The app's own trace processor (a ``TracingProcessor`` by its methods)."""

    def __init__(self) -> None:
        self.traces: list[str] = []
        self.spans: list[str] = []

    def on_trace_start(self, t: Any) -> None:
        self.traces.append(t.name)

    def on_trace_end(self, t: Any) -> None:
        pass

    def on_span_start(self, span: Any) -> None:
        pass

    def on_span_end(self, span: Any) -> None:
        self.spans.append(span.span_data.type)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


@pytest.fixture(autouse=True)
def app_processor(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppProcessor]:
    monkeypatch.delenv("OPENAI_AGENTS_DISABLE_TRACING", raising=False)
    processor = AppProcessor()
    set_trace_processors([processor])  # the default (api.openai.com) processor is dropped
    yield processor
    set_trace_processors([])


@pytest.fixture
def aclient(devserver: Any) -> Iterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        base_url=devserver.openai_base_url, api_key="test-key", max_retries=0
    )
    yield client


@pytest.fixture
def both(instrument: Any) -> Any:
    """llmtap's OpenAI and Agents SDK instrumentations, content on span."""
    instrument(OPENAI_TARGET, capture="span_only")
    return instrument(TARGET, capture="span_only")


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _responses(client: openai.AsyncOpenAI) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model=MODEL, openai_client=client)


def weather_agent(client: openai.AsyncOpenAI | None, **kwargs: Any) -> Agent:
    if "model" not in kwargs:
        kwargs["model"] = _responses(client)
    return Agent(
        name="Weather", instructions="Answer with the tool.", tools=[get_weather], **kwargs
    )


def outline(spans: tuple[ReadableSpan, ...]) -> list[str]:
    """The span tree, one indented name per line, children in start order."""
    ids = {s.context.span_id for s in spans}
    children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None else None
        children[parent if parent in ids else None].append(span)
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        lines.append("  " * depth + span.name)
        for child in children[span.context.span_id]:
            walk(child, depth + 1)

    for root in children[None]:
        walk(root, 0)
    return lines


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def is_child(child: ReadableSpan, parent: ReadableSpan) -> bool:
    return child.parent is not None and child.parent.span_id == parent.context.span_id


TOOL_TREE = [
    "invoke_workflow Agent workflow",
    "  invoke_agent Weather",
    "    chat gpt-4o-mini",
    "    execute_tool get_weather",
    "    chat gpt-4o-mini",
]


def model_call_ids(chat: ReadableSpan) -> list[str]:
    """The ids of the tool calls in a chat span's output messages."""
    (message,) = json.loads(chat.attributes[semconv.OUTPUT_MESSAGES])
    return [p["id"] for p in message["parts"] if p["type"] == "tool_call"]


def app_call_id(result: Any) -> str:
    """The call id the app sees in the run's items."""
    (call,) = [i.raw_item for i in result.new_items if i.type == "tool_call_item"]
    return call.call_id if hasattr(call, "call_id") else call["call_id"]


async def test_tool_run_is_one_tree_under_the_apps_span(
    both: Any, aclient: Any, span_exporter: Any, tracer_provider: Any
) -> None:
    app_tracer = tracer_provider.get_tracer("app")
    with app_tracer.start_as_current_span("handle request") as app_span:
        result = await Runner.run(weather_agent(aclient), QUESTION)
        assert otel_trace.get_current_span() is app_span  # nothing of llmtap's left current
    spans = finished(span_exporter)

    assert outline(spans) == ["handle request"] + ["  " + line for line in TOOL_TREE]
    assert {s.context.trace_id for s in spans} == {app_span.get_span_context().trace_id}
    assert "sunny in Paris" in result.final_output

    workflow = one(spans, "invoke_workflow Agent workflow")
    assert workflow.kind is SpanKind.INTERNAL
    assert workflow.attributes[semconv.OPERATION] == "invoke_workflow"
    assert workflow.attributes[semconv.WORKFLOW_NAME] == "Agent workflow"
    assert semconv.CONVERSATION_ID not in workflow.attributes  # no group id given

    first, second = named(spans, "chat gpt-4o-mini")
    agent = one(spans, "invoke_agent Weather")
    assert agent.kind is SpanKind.INTERNAL
    assert dict(agent.attributes) == {
        semconv.OPERATION: "invoke_agent",
        semconv.AGENT_NAME: "Weather",
        # its model calls': where they went, the tokens of both, how the last one ended
        semconv.PROVIDER: "openai",
        semconv.USAGE_INPUT_TOKENS: sum(
            c.attributes[semconv.USAGE_INPUT_TOKENS] for c in (first, second)
        ),
        semconv.USAGE_OUTPUT_TOKENS: sum(
            c.attributes[semconv.USAGE_OUTPUT_TOKENS] for c in (first, second)
        ),
        semconv.RESPONSE_FINISH_REASONS: ("stop",),
    }

    tool = one(spans, "execute_tool get_weather")
    assert tool.kind is SpanKind.INTERNAL
    assert tool.attributes[semconv.OPERATION] == "execute_tool"
    assert tool.attributes[semconv.TOOL_NAME] == "get_weather"
    assert tool.attributes[semconv.TOOL_TYPE] == "function"
    assert tool.attributes[semconv.TOOL_CALL_ARGUMENTS] == '{"city":"Paris"}'
    assert tool.attributes[semconv.TOOL_CALL_RESULT] == '"sunny in Paris"'
    # the model's call id, from the response the SDK's response span keeps
    assert [tool.attributes[semconv.TOOL_CALL_ID]] == model_call_ids(first)
    assert tool.attributes[semconv.TOOL_CALL_ID] == app_call_id(result)

    for chat in (first, second):
        # the OpenAI adapter merged into the agent's chat span: its request and response
        assert chat.kind is SpanKind.CLIENT
        assert chat.attributes[semconv.PROVIDER] == "openai"
        assert chat.attributes[semconv.REQUEST_MODEL] == MODEL
        assert chat.attributes[semconv.OPENAI_API_TYPE] == "responses"
        assert chat.attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
        assert chat.attributes[semconv.RESPONSE_ID].startswith("resp_")
        assert chat.attributes[semconv.USAGE_INPUT_TOKENS] > 0
        assert chat.status.status_code is StatusCode.UNSET
    assert first.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert second.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert "sunny in Paris" in second.attributes[semconv.INPUT_MESSAGES]


async def test_exactly_one_chat_span_per_model_call(
    both: Any, aclient: Any, span_exporter: Any, app_processor: AppProcessor
) -> None:
    await Runner.run(weather_agent(aclient), QUESTION)
    spans = finished(span_exporter)
    chats = [s for s in spans if s.attributes.get(semconv.OPERATION) == "chat"]
    # the SDK made two model calls (two response spans): two chat spans, no more
    assert app_processor.spans.count("response") == 2
    assert len(chats) == 2
    assert len({s.attributes[semconv.RESPONSE_ID] for s in chats}) == 2


async def test_conversation_id_from_the_traces_group_id(
    both: Any, aclient: Any, span_exporter: Any
) -> None:
    config = RunConfig(workflow_name="Weather desk", group_id="thread-42")
    await Runner.run(weather_agent(aclient), QUESTION, run_config=config)
    spans = finished(span_exporter)
    assert outline(spans)[0] == "invoke_workflow Weather desk"
    for name in ("invoke_workflow Weather desk", "invoke_agent Weather"):
        assert one(spans, name).attributes[semconv.CONVERSATION_ID] == "thread-42"
    for chat in named(spans, "chat gpt-4o-mini"):
        assert chat.attributes[semconv.CONVERSATION_ID] == "thread-42"
    tool = one(spans, "execute_tool get_weather")
    assert semconv.CONVERSATION_ID not in tool.attributes


async def test_handoff_between_two_agents(both: Any, aclient: Any, span_exporter: Any) -> None:
    billing = Agent(
        name="Billing", instructions="Answer billing questions.", model=_responses(aclient)
    )
    triage = Agent(
        name="Triage", instructions="Route the user.", handoffs=[billing], model=_responses(aclient)
    )
    result = await Runner.run(triage, "I was charged twice")
    spans = finished(span_exporter)

    assert result.last_agent.name == "Billing"
    assert outline(spans) == [
        "invoke_workflow Agent workflow",
        "  invoke_agent Triage",
        "    chat gpt-4o-mini",
        "    handoff Triage -> Billing",
        "  invoke_agent Billing",
        "    chat gpt-4o-mini",
    ]
    for name in ("invoke_agent Triage", "invoke_agent Billing"):
        assert one(spans, name).attributes[semconv.PROVIDER] == "openai"
    handoff = one(spans, "handoff Triage -> Billing")
    assert handoff.kind is SpanKind.INTERNAL
    assert handoff.attributes[semconv.OPERATION] == "handoff"
    assert handoff.attributes[semconv.LLMTAP_STEP_KIND] == "handoff"
    assert handoff.status.status_code is StatusCode.UNSET
    first = named(spans, "chat gpt-4o-mini")[0]
    assert "transfer_to_billing" in first.attributes[semconv.OUTPUT_MESSAGES]


def _guardrail(trip: bool) -> Any:
    @input_guardrail(name="no_secrets", run_in_parallel=False)
    async def no_secrets(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info={"checked": True}, tripwire_triggered=trip)

    return no_secrets


async def test_input_guardrail_that_passes(both: Any, aclient: Any, span_exporter: Any) -> None:
    agent = weather_agent(aclient, input_guardrails=[_guardrail(False)])
    await Runner.run(agent, QUESTION)
    spans = finished(span_exporter)
    assert outline(spans) == [
        "invoke_workflow Agent workflow",
        "  invoke_agent Weather",
        "    guardrail no_secrets",
        "    chat gpt-4o-mini",
        "    execute_tool get_weather",
        "    chat gpt-4o-mini",
    ]
    guardrail = one(spans, "guardrail no_secrets")
    assert guardrail.attributes[semconv.OPERATION] == "guardrail"
    assert guardrail.attributes[semconv.LLMTAP_STEP_KIND] == "guardrail"
    assert guardrail.attributes["llmtap.guardrail.triggered"] is False
    assert guardrail.status.status_code is StatusCode.UNSET


async def test_input_guardrail_that_trips(both: Any, aclient: Any, span_exporter: Any) -> None:
    agent = weather_agent(aclient, input_guardrails=[_guardrail(True)])
    with pytest.raises(InputGuardrailTripwireTriggered):
        await Runner.run(agent, QUESTION)
    spans = finished(span_exporter)
    assert outline(spans) == [
        "invoke_workflow Agent workflow",
        "  invoke_agent Weather",
        "    guardrail no_secrets",
    ]
    guardrail = one(spans, "guardrail no_secrets")
    assert guardrail.attributes["llmtap.guardrail.triggered"] is True
    agent_span = one(spans, "invoke_agent Weather")
    assert agent_span.status.status_code is StatusCode.ERROR
    assert agent_span.attributes[semconv.ERROR_TYPE] == "Guardrail tripwire triggered"


async def test_run_streamed(
    both: Any, aclient: Any, span_exporter: Any, tracer_provider: Any
) -> None:
    with tracer_provider.get_tracer("app").start_as_current_span("handle request") as app_span:
        result = Runner.run_streamed(weather_agent(aclient), QUESTION)
        events = [event.type async for event in result.stream_events()]
        assert otel_trace.get_current_span() is app_span
    spans = finished(span_exporter)

    assert "raw_response_event" in events
    assert "sunny in Paris" in result.final_output
    assert outline(spans) == ["handle request"] + ["  " + line for line in TOOL_TREE]
    chats = named(spans, "chat gpt-4o-mini")
    assert len(chats) == 2
    for chat in chats:
        assert chat.attributes[semconv.REQUEST_STREAM] is True
        assert chat.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
    agent = one(spans, "invoke_agent Weather")
    assert agent.attributes[semconv.USAGE_INPUT_TOKENS] == sum(
        c.attributes[semconv.USAGE_INPUT_TOKENS] for c in chats
    )
    assert len({s.context.trace_id for s in spans}) == 1
    tool = one(spans, "execute_tool get_weather")
    assert tool.attributes[semconv.TOOL_CALL_ID] == app_call_id(result)


def test_run_sync(both: Any, devserver: Any, span_exporter: Any, tracer_provider: Any) -> None:
    client = openai.AsyncOpenAI(base_url=devserver.openai_base_url, api_key="k", max_retries=0)
    with tracer_provider.get_tracer("app").start_as_current_span("handle request") as app_span:
        result = Runner.run_sync(weather_agent(client), QUESTION)
        assert otel_trace.get_current_span() is app_span
    spans = finished(span_exporter)
    assert "sunny in Paris" in result.final_output
    assert outline(spans) == ["handle request"] + ["  " + line for line in TOOL_TREE]


async def test_chat_completions_model(both: Any, aclient: Any, span_exporter: Any) -> None:
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=aclient)
    result = await Runner.run(weather_agent(aclient, model=model), QUESTION)
    spans = finished(span_exporter)
    assert outline(spans) == TOOL_TREE
    for chat in named(spans, "chat gpt-4o-mini"):
        assert chat.attributes[semconv.OPENAI_API_TYPE] == "chat_completions"
        assert chat.attributes[semconv.RESPONSE_ID].startswith("chatcmpl")
    # the call id from the generation span's assistant message
    tool = one(spans, "execute_tool get_weather")
    assert tool.attributes[semconv.TOOL_CALL_ID] == app_call_id(result)


async def test_no_tool_call_id_when_the_sdk_keeps_no_data(
    both: Any, aclient: Any, span_exporter: Any
) -> None:
    # the SDK's span data then has no model output: nothing holds the call id
    config = RunConfig(trace_include_sensitive_data=False)
    await Runner.run(weather_agent(aclient), QUESTION, run_config=config)
    tool = one(finished(span_exporter), "execute_tool get_weather")
    assert semconv.TOOL_CALL_ID not in tool.attributes


def test_a_function_span_takes_the_call_its_arguments_match() -> None:
    from llmtap.instrumentation.openai_agents._calls import PendingCalls

    pending = PendingCalls()
    pending.add("agent", [("c1", "f", '{"a":1}'), ("c2", "g", "{}"), ("c3", "f", '{"a":2}')])
    first = pending.take("agent", "f")
    assert first == ("c1", "f", '{"a":1}')  # in the order the model made them
    # ...unless it turns out to run the other call of that name (the SDK skipped c1)
    assert pending.settle("agent", first, '{"a":2}')[0] == "c3"
    assert pending.take("agent", "f") == first  # c1 is pending again
    assert pending.take("agent", "f") is None
    assert pending.take("other agent", "g") is None
    pending.forget("agent")
    assert pending.take("agent", "g") is None


async def test_several_runs_in_one_app_trace(both: Any, aclient: Any, span_exporter: Any) -> None:
    with trace("Two questions", group_id="conv-7"):
        await Runner.run(weather_agent(aclient), QUESTION)
        await Runner.run(weather_agent(aclient), "And in Rome?")
    spans = finished(span_exporter)
    assert outline(spans) == ["invoke_workflow Two questions", *TOOL_TREE[1:], *TOOL_TREE[1:]]
    for agent in named(spans, "invoke_agent Weather"):
        assert agent.attributes[semconv.CONVERSATION_ID] == "conv-7"


async def test_model_call_recorded_from_span_data_without_openai_instrumentation(
    instrument: Any, aclient: Any, span_exporter: Any
) -> None:
    instrument(TARGET, capture="span_only")
    await Runner.run(weather_agent(aclient), QUESTION)
    spans = finished(span_exporter)
    assert outline(spans) == TOOL_TREE
    first, second = named(spans, "chat gpt-4o-mini")
    for chat in (first, second):
        assert chat.kind is SpanKind.CLIENT
        assert chat.attributes[semconv.PROVIDER] == "openai"
        assert chat.attributes[semconv.RESPONSE_MODEL] == MODEL
        assert chat.attributes[semconv.RESPONSE_ID].startswith("resp_")
        assert chat.attributes[semconv.USAGE_INPUT_TOKENS] > 0
        assert chat.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
        assert chat.attributes[semconv.SYSTEM_INSTRUCTIONS] == (
            '[{"type":"text","content":"Answer with the tool."}]'
        )
    assert first.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)
    agent = one(spans, "invoke_agent Weather")
    assert agent.attributes[semconv.USAGE_OUTPUT_TOKENS] == sum(
        c.attributes[semconv.USAGE_OUTPUT_TOKENS] for c in (first, second)
    )
    assert '"name":"get_weather"' in first.attributes[semconv.OUTPUT_MESSAGES]
    assert QUESTION in first.attributes[semconv.INPUT_MESSAGES]
    assert "sunny in Paris" in second.attributes[semconv.INPUT_MESSAGES]


async def test_chat_completions_recorded_from_span_data_without_openai_instrumentation(
    instrument: Any, aclient: Any, span_exporter: Any
) -> None:
    instrument(TARGET, capture="span_only")
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=aclient)
    await Runner.run(weather_agent(aclient, model=model), QUESTION)
    spans = finished(span_exporter)
    assert outline(spans) == TOOL_TREE
    first, second = named(spans, "chat gpt-4o-mini")
    for chat in (first, second):
        assert chat.attributes[semconv.REQUEST_MODEL] == MODEL
        assert chat.attributes[semconv.USAGE_INPUT_TOKENS] > 0
        # the span data holds the message only: no response id, model or finish reasons
        assert not {
            semconv.RESPONSE_ID,
            semconv.RESPONSE_MODEL,
            semconv.RESPONSE_FINISH_REASONS,
        } & set(chat.attributes)
    assert QUESTION in first.attributes[semconv.INPUT_MESSAGES]
    assert "sunny in Paris" in second.attributes[semconv.OUTPUT_MESSAGES]
    reasons = [json.loads(c.attributes[semconv.OUTPUT_MESSAGES])[0] for c in (first, second)]
    assert [m["finish_reason"] for m in reasons] == ["tool_call", "stop"]


async def test_streamed_chat_completions_recorded_from_span_data(
    instrument: Any, aclient: Any, span_exporter: Any
) -> None:
    instrument(TARGET, capture="span_only")
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=aclient)
    result = Runner.run_streamed(weather_agent(aclient, model=model), QUESTION)
    async for _ in result.stream_events():
        pass
    spans = finished(span_exporter)
    assert outline(spans) == TOOL_TREE
    first, second = named(spans, "chat gpt-4o-mini")
    # streamed, the span data holds the Response the SDK built of the chunks: the chunks' id
    # on its items, no response model nor finish reason
    for chat in (first, second):
        assert chat.attributes[semconv.RESPONSE_ID].startswith("chatcmpl-")
        assert semconv.RESPONSE_MODEL not in chat.attributes
        assert semconv.RESPONSE_FINISH_REASONS not in chat.attributes
    ids = {c.attributes[semconv.RESPONSE_ID] for c in (first, second)}
    assert len(ids) == 2
    messages = [json.loads(c.attributes[semconv.OUTPUT_MESSAGES])[0] for c in (first, second)]
    assert [m["finish_reason"] for m in messages] == ["tool_call", "stop"]
    assert "sunny in Paris" in second.attributes[semconv.OUTPUT_MESSAGES]


async def test_no_content_without_capture(
    instrument: Any, aclient: Any, span_exporter: Any
) -> None:
    instrument(OPENAI_TARGET, capture="no_content")
    instrument(TARGET, capture="no_content")
    await Runner.run(weather_agent(aclient), QUESTION)
    spans = finished(span_exporter)
    assert outline(spans) == TOOL_TREE
    content = (
        semconv.TOOL_CALL_ARGUMENTS,
        semconv.TOOL_CALL_RESULT,
        semconv.INPUT_MESSAGES,
        semconv.OUTPUT_MESSAGES,
        semconv.SYSTEM_INSTRUCTIONS,
    )
    for span in spans:
        assert not set(content) & set(span.attributes), span.name


async def test_the_apps_processors_keep_working(
    both: Any, aclient: Any, span_exporter: Any, app_processor: AppProcessor
) -> None:
    await Runner.run(weather_agent(aclient), QUESTION)
    assert app_processor.traces == ["Agent workflow"]
    assert sorted(app_processor.spans) == [
        "agent",
        "function",
        "response",
        "response",
        "task",
        "turn",
        "turn",
    ]

    # the app replaces its processors: llmtap's stays, after the app's new one
    replacement = AppProcessor()
    set_trace_processors([replacement])
    span_exporter.clear()
    await Runner.run(weather_agent(aclient), QUESTION)
    assert replacement.traces == ["Agent workflow"]
    assert outline(finished(span_exporter)) == TOOL_TREE


async def test_tracing_disabled_by_the_app_makes_no_spans(
    both: Any, aclient: Any, span_exporter: Any, app_processor: AppProcessor
) -> None:
    await Runner.run(weather_agent(aclient), QUESTION, run_config=RunConfig(tracing_disabled=True))
    spans = finished(span_exporter)
    # the SDK reports nothing to any processor: the OpenAI calls alone are left
    assert [s.name for s in spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert app_processor.traces == []


async def test_uninstrument_stops_the_spans_and_reinstrument_adds_no_second_processor(
    instrument: Any, aclient: Any, span_exporter: Any
) -> None:
    first = instrument(TARGET, capture="no_content")
    first.uninstrument()
    provider = agents.tracing.provider.DefaultTraceProvider
    for method in ("create_trace", "set_processors"):
        assert not hasattr(getattr(provider, method), "__wrapped__"), method
    await Runner.run(weather_agent(aclient), QUESTION)
    assert finished(span_exporter) == ()

    instrument(TARGET, capture="no_content")
    await Runner.run(weather_agent(aclient), QUESTION)
    assert outline(finished(span_exporter)) == TOOL_TREE


def _run_all(devserver: Any) -> list[Any]:
    async def go() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=devserver.openai_base_url, api_key="k", max_retries=0)
        billing = Agent(name="Billing", instructions="Billing.", model=_responses(client))
        triage = Agent(
            name="Triage", instructions="Route.", handoffs=[billing], model=_responses(client)
        )
        handed = await Runner.run(triage, "I was charged twice")
        tooled = await Runner.run(weather_agent(client), QUESTION)
        streamed = Runner.run_streamed(weather_agent(client), QUESTION)
        async for _ in streamed.stream_events():
            pass
        return [
            (r.final_output, r.last_agent.name, [type(i).__name__ for i in r.new_items])
            for r in (handed, tooled, streamed)
        ]

    return asyncio.run(go())


def test_results_are_the_same_with_llmtap_on(
    instrument: Any, devserver: Any, span_exporter: Any
) -> None:
    without = _run_all(devserver)
    assert finished(span_exporter) == ()
    instrument(OPENAI_TARGET, capture="span_and_event")
    instrument(TARGET, capture="span_and_event")
    with_llmtap = _run_all(devserver)
    assert len(finished(span_exporter)) > 10
    assert with_llmtap == without


@function_tool
def broken_lookup(city: str) -> str:
    """A lookup that fails."""
    raise LookupError(f"no data for {city}")


async def test_failing_tool(both: Any, aclient: Any, span_exporter: Any) -> None:
    agent = Agent(name="Weather", tools=[broken_lookup], model=_responses(aclient))
    result = await Runner.run(agent, QUESTION)  # the SDK tells the model the tool failed
    spans = finished(span_exporter)
    assert result.final_output
    assert outline(spans) == [
        "invoke_workflow Agent workflow",
        "  invoke_agent Weather",
        "    chat gpt-4o-mini",
        "    execute_tool broken_lookup",
        "    chat gpt-4o-mini",
    ]
    tool = one(spans, "execute_tool broken_lookup")
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes[semconv.ERROR_TYPE] == "Error running tool (non-fatal)"
    assert "error occurred" in tool.attributes[semconv.TOOL_CALL_RESULT]


async def test_failing_model_call(both: Any, aclient: Any, span_exporter: Any) -> None:
    model = OpenAIResponsesModel(model="devserver-server_error", openai_client=aclient)
    with pytest.raises(openai.InternalServerError):
        await Runner.run(Agent(name="Weather", model=model), QUESTION)
    spans = finished(span_exporter)
    assert outline(spans) == [
        "invoke_workflow Agent workflow",
        "  invoke_agent Weather",
        "    chat devserver-server_error",
    ]
    chat = one(spans, "chat devserver-server_error")
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes[semconv.ERROR_TYPE] == "InternalServerError"  # the OpenAI adapter
    assert otel_trace.get_current_span() is INVALID_SPAN


async def test_streamed_run_cancelled_early(both: Any, aclient: Any, span_exporter: Any) -> None:
    result = Runner.run_streamed(weather_agent(aclient), QUESTION)
    async for event in result.stream_events():
        if event.type == "raw_response_event":
            result.cancel()
    await asyncio.sleep(0.05)
    spans = finished(span_exporter)
    assert otel_trace.get_current_span() is INVALID_SPAN
    names = [s.name for s in spans]
    assert names.count("invoke_workflow Agent workflow") == 1
    assert len({s.context.trace_id for s in spans}) == 1


async def test_attributes_are_registered(both: Any, aclient: Any, span_exporter: Any) -> None:
    from test_semconv_registry import attribute_problems

    billing = Agent(name="Billing", instructions="Billing.", model=_responses(aclient))
    triage = Agent(
        name="Triage",
        instructions="Route.",
        handoffs=[billing],
        model=_responses(aclient),
        input_guardrails=[_guardrail(False)],
    )
    await Runner.run(triage, "I was charged twice", run_config=RunConfig(group_id="g-1"))
    await Runner.run(weather_agent(aclient), QUESTION)
    problems = []
    for span in finished(span_exporter):
        problems += attribute_problems(dict(span.attributes), span.name)
    # llmtap.guardrail.triggered waits for its entry in llmtap's registry
    unregistered = "guardrail no_secrets: llmtap.guardrail.triggered=False: not an llmtap"
    assert [p for p in problems if not p.startswith(unregistered)] == []


async def test_litellm_model_merges_into_the_agents_chat_span(
    instrument: Any, devserver: Any, span_exporter: Any
) -> None:
    """The SDK's LiteLLM model (LiteLLM calls the OpenAI SDK): llmtap's LiteLLM span is the
    agents' chat span, and the OpenAI call inside stands aside: one chat span per call."""
    pytest.importorskip("litellm", reason="litellm is not installed")
    from agents.extensions.models.litellm_model import LitellmModel

    instrument(OPENAI_TARGET, capture="span_only")
    instrument("llmtap.instrumentation.litellm:LiteLLMInstrumentor", capture="span_only")
    instrument(TARGET, capture="span_only")
    model = LitellmModel(f"openai/{MODEL}", base_url=devserver.openai_base_url, api_key="k")
    await Runner.run(weather_agent(None, model=model), QUESTION)
    spans = finished(span_exporter)
    chat = f"chat openai/{MODEL}"
    assert outline(spans) == [
        "invoke_workflow Agent workflow",
        "  invoke_agent Weather",
        f"    {chat}",
        "    execute_tool get_weather",
        f"    {chat}",
    ]
    for span in named(spans, chat):
        assert span.attributes[semconv.PROVIDER] == "openai"  # as LiteLLM resolved it
        assert span.attributes[semconv.USAGE_INPUT_TOKENS] > 0


async def test_spans_made_inside_a_tool_nest_under_its_span(
    both: Any, aclient: Any, span_exporter: Any, tracer_provider: Any
) -> None:
    tracer = tracer_provider.get_tracer("app")

    @function_tool
    def lookup(city: str) -> str:
        """Look a city up."""
        with tracer.start_as_current_span("app lookup"):
            return f"found {city}"

    @function_tool
    async def alookup(city: str) -> str:
        """Look a city up (async)."""
        with tracer.start_as_current_span("app async lookup"):
            return f"found {city}"

    for tool in (lookup, alookup):
        agent = Agent(name="Finder", tools=[tool], model=_responses(aclient))
        await Runner.run(agent, QUESTION)
    spans = finished(span_exporter)
    assert outline(spans)[:5] == [
        "invoke_workflow Agent workflow",
        "  invoke_agent Finder",
        "    chat gpt-4o-mini",
        "    execute_tool lookup",
        "      app lookup",
    ]
    assert is_child(one(spans, "app async lookup"), one(spans, "execute_tool alookup"))
