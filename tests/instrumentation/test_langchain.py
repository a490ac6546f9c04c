"""LangChain and LangGraph instrumentation against the real frameworks, with langchain-openai
and langchain-anthropic talking to the dev server (tools call back once, then the model
answers from the tool's result) and langchain-core's fake chat models (no SDK underneath).

The trees are asserted exactly: one inference span per model call, whether llmtap's provider
instrumentation merges into the framework's span or the framework records the call itself.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Annotated, Any, TypedDict

import langchain_anthropic  # noqa: F401  (see below)
import pytest
from langchain_core.runnables import RunnableConfig
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv

from .langchain_support import (
    CLAUDE,
    MODEL,
    TARGET,
    anthropic_chat,
    named,
    one_trace,
    openai_chat,
    tree,
    weather_tool,
)

# langchain-anthropic imports anthropic.lib.vertex and .bedrock, whose Messages classes copy the
# first-party methods at import: imported above, before any test instruments anthropic, so
# they copy the SDK's own methods (not llmtap's wrappers, which uninstrument could not restore)

AGENT_TREE = [
    "invoke_agent weather-agent",
    f"  chat {MODEL}",
    "  execute_tool get_weather",
    f"  chat {MODEL}",
]
QUESTION = "What is the weather in Paris?"


def react_agent(model: Any, name: str = "weather-agent") -> Any:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():  # moved to langchain.agents in LangGraph 1.0
        warnings.simplefilter("ignore")
        return create_react_agent(model, [weather_tool()], name=name)


def ask(text: str = QUESTION) -> dict[str, Any]:
    return {"messages": [("user", text)]}


def thread(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


@pytest.fixture
def steps(tracer_provider: Any) -> Any:
    """``llmtap.workflow`` and other steps on the test tracer provider."""
    from llmtap import runtime
    from llmtap.config import CaptureMode, Settings
    from llmtap.instrumentation._invocation import Telemetry

    runtime.use_telemetry(Telemetry(Settings(capture=CaptureMode.SPAN_ONLY), tracer_provider))
    yield
    runtime.use_telemetry(None)


@pytest.fixture
def lc(instrument: Any) -> Any:
    return instrument(TARGET, capture="span_only")


@pytest.fixture
def lc_openai(instrument: Any, instrument_openai: Any) -> Any:
    instrument_openai(capture="span_only")
    return instrument(TARGET, capture="span_only")


# LangGraph agent: the exact tree, merged or recorded by the framework ----------------------


def test_agent_with_openai_instrumented_has_one_chat_span_per_call(
    lc_openai, devserver, span_exporter
):
    result = react_agent(openai_chat(devserver)).invoke(ask(), config=thread("t-1"))

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == AGENT_TREE
    assert one_trace(spans)
    agent = named(spans, "invoke_agent weather-agent")[0]
    assert agent.kind is SpanKind.INTERNAL
    assert agent.attributes[semconv.AGENT_NAME] == "weather-agent"
    assert agent.attributes[semconv.CONVERSATION_ID] == "t-1"
    first, second = named(spans, f"chat {MODEL}")
    for chat in (first, second):
        assert chat.kind is SpanKind.CLIENT
        # the OpenAI adapter merged into the framework's span: its own attributes are there
        assert chat.attributes[semconv.OPENAI_API_TYPE] == "chat_completions"
        assert chat.attributes[semconv.PROVIDER] == "openai"
        assert chat.attributes[semconv.CONVERSATION_ID] == "t-1"
        assert chat.attributes[semconv.USAGE_INPUT_TOKENS] > 0
    assert first.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert second.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    tool = named(spans, "execute_tool get_weather")[0]
    assert tool.attributes[semconv.TOOL_NAME] == "get_weather"
    assert tool.attributes[semconv.TOOL_TYPE] == "function"
    assert tool.attributes[semconv.TOOL_CALL_ARGUMENTS] == '{"city": "Paris"}'
    assert tool.attributes[semconv.TOOL_CALL_RESULT] == '"sunny in Paris"'
    call_id = result["messages"][1].tool_calls[0]["id"]
    assert tool.attributes[semconv.TOOL_CALL_ID] == call_id
    assert "sunny in Paris" in result["messages"][-1].content


def test_agent_without_provider_instrumentation_records_the_call_itself(
    lc, devserver, span_exporter
):
    react_agent(openai_chat(devserver)).invoke(ask())

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == AGENT_TREE
    first, second = named(spans, f"chat {MODEL}")
    for chat in (first, second):
        attrs = chat.attributes
        assert semconv.OPENAI_API_TYPE not in attrs  # no provider adapter ran
        assert attrs[semconv.PROVIDER] == "openai"  # from LangChain's ls_provider
        assert attrs[semconv.REQUEST_MODEL] == MODEL
        assert attrs[semconv.RESPONSE_MODEL] == MODEL
        assert attrs[semconv.RESPONSE_ID].startswith("chatcmpl-")
        assert attrs[semconv.USAGE_INPUT_TOKENS] > 0 and attrs[semconv.USAGE_OUTPUT_TOKENS] > 0
    assert first.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert '"type":"tool_call"' in first.attributes[semconv.OUTPUT_MESSAGES]
    assert '"role":"tool"' in second.attributes[semconv.INPUT_MESSAGES]
    assert "sunny in Paris" in second.attributes[semconv.OUTPUT_MESSAGES]


def test_agent_on_anthropic_with_anthropic_instrumented(
    instrument, instrument_anthropic, devserver, span_exporter
):
    instrument_anthropic(capture="span_only")
    instrument(TARGET, capture="span_only")
    react_agent(anthropic_chat(devserver)).invoke(ask())

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [line.replace(MODEL, CLAUDE) for line in AGENT_TREE]
    for chat in named(spans, f"chat {CLAUDE}"):
        assert chat.attributes[semconv.PROVIDER] == "anthropic"
        assert chat.attributes[semconv.RESPONSE_ID].startswith("msg_")
        assert chat.attributes[semconv.USAGE_INPUT_TOKENS] > 0


def test_agent_on_anthropic_without_provider_instrumentation(lc, devserver, span_exporter):
    react_agent(anthropic_chat(devserver)).invoke(ask())

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [line.replace(MODEL, CLAUDE) for line in AGENT_TREE]
    first, _ = named(spans, f"chat {CLAUDE}")
    assert first.attributes[semconv.PROVIDER] == "anthropic"
    assert first.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert first.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0


async def test_async_agent_and_no_context_left_behind(lc_openai, devserver, span_exporter):
    before = trace.get_current_span()
    await react_agent(openai_chat(devserver)).ainvoke(ask(), config=thread("t-async"))
    assert trace.get_current_span() is before

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == AGENT_TREE
    assert one_trace(spans)


async def test_async_model_call_restores_the_callers_context(
    lc_openai, steps, devserver, span_exporter
):
    import llmtap

    model = openai_chat(devserver)
    with llmtap.workflow("outer"):
        outer = trace.get_current_span()
        await model.ainvoke("hello")
        assert trace.get_current_span() is outer  # the chat span did not stay current
        async for _ in model.astream("hello again"):
            pass
        assert trace.get_current_span() is outer
        model.invoke("and once more, sync")
        assert trace.get_current_span() is outer

    assert tree(span_exporter.get_finished_spans()) == [
        "invoke_workflow outer",
        f"  chat {MODEL}",
        f"  chat {MODEL}",
        f"  chat {MODEL}",
    ]


# streaming --------------------------------------------------------------------------------


def test_graph_stream_updates(lc_openai, devserver, span_exporter):
    agent = react_agent(openai_chat(devserver))
    updates = list(agent.stream(ask(), stream_mode="updates"))

    assert [next(iter(u)) for u in updates] == ["agent", "tools", "agent"]
    assert tree(span_exporter.get_finished_spans()) == AGENT_TREE


async def test_astream_events_of_an_agent(lc_openai, devserver, span_exporter):
    agent = react_agent(openai_chat(devserver))
    kinds = set()
    async for event in agent.astream_events(ask(), version="v2"):
        kinds.add(event["event"])

    assert {"on_chat_model_stream", "on_tool_end"} <= kinds
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == AGENT_TREE
    assert one_trace(spans)


def test_streamed_fake_model_records_time_to_first_chunk(lc, span_exporter):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    model = GenericFakeChatModel(messages=iter([AIMessage(content="streamed in pieces")]))
    chunks = [c.content for c in model.stream("hi")]

    assert "".join(chunks) == "streamed in pieces"
    (span,) = span_exporter.get_finished_spans()
    assert span.name == "chat"
    assert span.kind is SpanKind.CLIENT
    assert span.attributes[semconv.PROVIDER] == "_OTHER"
    assert span.attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert "streamed in pieces" in span.attributes[semconv.OUTPUT_MESSAGES]


# chains: internal runs, thread pools ------------------------------------------------------


def _fake_chain(run_name: str | None = None) -> Any:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
    chain = prompt | FakeListChatModel(responses=["fine"] * 8) | StrOutputParser()
    return chain.with_config(run_name=run_name) if run_name else chain


def test_internal_runnables_make_no_span_by_default(lc, span_exporter):
    assert _fake_chain("ask").invoke({"question": "how are you?"}) == "fine"

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == ["invoke_workflow ask", "  chat"]
    chat = named(spans, "chat")[0]
    assert chat.attributes[semconv.PROVIDER] == "_OTHER"
    assert chat.attributes[semconv.SYSTEM_INSTRUCTIONS] == '[{"type":"text","content":"Be brief."}]'
    assert "how are you?" in chat.attributes[semconv.INPUT_MESSAGES]


def test_setting_turns_internal_runnables_into_spans(instrument, span_exporter):
    instrument(TARGET, capture="span_only", framework_internal_spans=True)
    _fake_chain("ask").invoke({"question": "how are you?"})

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [
        "invoke_workflow ask",
        "  chain ChatPromptTemplate",
        "  chat",
        "  chain StrOutputParser",
    ]
    step = named(spans, "chain StrOutputParser")[0]
    assert step.attributes[semconv.LLMTAP_STEP_KIND] == "chain"


def test_parallel_branches_in_a_thread_pool(lc_openai, devserver, span_exporter):
    from langchain_core.runnables import RunnableParallel

    model = openai_chat(devserver)
    both = RunnableParallel(first=model, second=model).with_config(run_name="fan-out")
    out = both.invoke("hello")

    assert set(out) == {"first", "second"}
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == ["invoke_workflow fan-out", f"  chat {MODEL}", f"  chat {MODEL}"]
    assert one_trace(spans)


def test_batch_makes_one_trace_per_input(lc, span_exporter):
    out = _fake_chain("ask").batch([{"question": q} for q in ("a?", "b?", "c?")])

    assert out == ["fine", "fine", "fine"]
    spans = span_exporter.get_finished_spans()
    roots = named(spans, "invoke_workflow ask")
    assert len(roots) == 3 and len(named(spans, "chat")) == 3
    for chat in named(spans, "chat"):
        assert chat.parent.span_id in {r.context.span_id for r in roots}
    assert len({s.context.trace_id for s in spans}) == 3


# LangGraph workflows: nodes, parallel branches, a node calling an SDK directly ------------


def _joined(a: list[str], b: list[str]) -> list[str]:
    return a + b


class Research(TypedDict):
    topic: str
    notes: Annotated[list[str], _joined]


class Answer(TypedDict):
    answer: str


def _fan_out_graph(devserver: Any, pass_config: bool = False) -> Any:
    """Two nodes that run at once, each calling the model. ``pass_config``: the nodes hand
    their config to the model, as LangChain asks of async apps on Python 3.10 (whose asyncio
    tasks do not carry the context: a model call finds no parent run without it)."""
    from langgraph.graph import END, START, StateGraph

    State = Research
    model = openai_chat(devserver)

    def ask(text: str, config: Any) -> str:
        return model.invoke(text, config if pass_config else None).content

    def facts(state: State, config: RunnableConfig) -> dict[str, Any]:
        return {"notes": [ask(f"facts about {state['topic']}", config)]}

    def jokes(state: State, config: RunnableConfig) -> dict[str, Any]:
        return {"notes": [ask(f"a joke about {state['topic']}", config)]}

    graph = StateGraph(State)
    graph.add_node("facts", facts)
    graph.add_node("jokes", jokes)
    graph.add_edge(START, "facts")
    graph.add_edge(START, "jokes")
    graph.add_edge("facts", END)
    graph.add_edge("jokes", END)
    return graph.compile(name="research")


FAN_OUT_TREE = [
    "invoke_workflow research",
    "  node facts",
    f"    chat {MODEL}",
    "  node jokes",
    f"    chat {MODEL}",
]


def _sorted_branches(lines: list[str]) -> list[str]:
    """The two parallel branches in a fixed order (they start in either order)."""
    head, rest = lines[0], lines[1:]
    pairs = sorted(zip(rest[::2], rest[1::2], strict=True))
    return [head] + [line for pair in pairs for line in pair]


def test_graph_parallel_branches_in_threads(lc_openai, devserver, span_exporter):
    out = _fan_out_graph(devserver).invoke({"topic": "otters", "notes": []}, thread("t-9"))

    assert len(out["notes"]) == 2
    spans = span_exporter.get_finished_spans()
    assert _sorted_branches(tree(spans)) == FAN_OUT_TREE
    assert one_trace(spans)
    node = named(spans, "node facts")[0]
    assert node.attributes[semconv.LLMTAP_STEP_KIND] == "node"
    assert node.attributes[semconv.CONVERSATION_ID] == "t-9"


async def test_graph_parallel_branches_in_asyncio_tasks(lc_openai, devserver, span_exporter):
    graph = _fan_out_graph(devserver, pass_config=sys.version_info < (3, 11))
    out = await graph.ainvoke({"topic": "otters", "notes": []})

    assert len(out["notes"]) == 2
    spans = span_exporter.get_finished_spans()
    assert _sorted_branches(tree(spans)) == FAN_OUT_TREE
    assert one_trace(spans)


def test_node_calling_the_openai_sdk_directly_nests_under_the_node(
    lc_openai, devserver, openai_client, span_exporter
):
    from langgraph.graph import END, START, StateGraph

    def call(state: Answer) -> dict[str, Any]:
        reply = openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        return {"answer": reply.choices[0].message.content}

    graph = StateGraph(Answer)
    graph.add_node("call", call)
    graph.add_edge(START, "call")
    graph.add_edge("call", END)
    graph.compile(name="direct").invoke({"answer": ""})

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == ["invoke_workflow direct", "  node call", f"    chat {MODEL}"]
    assert one_trace(spans)


# errors -----------------------------------------------------------------------------------


def test_failing_tool_and_model_calls_are_errors(lc, devserver, span_exporter):
    from langchain_core.tools import tool

    @tool
    def broken(city: str) -> str:
        """Always fails."""
        raise RuntimeError("no weather today")

    with pytest.raises(RuntimeError):
        broken.invoke({"city": "Paris"})
    with pytest.raises(Exception, match="server had an error") as failed:
        openai_chat(devserver, model="devserver-server_error").invoke("hi")

    tool_span, chat = span_exporter.get_finished_spans()
    assert tool_span.name == "execute_tool broken"
    assert tool_span.status.status_code is StatusCode.ERROR
    assert tool_span.attributes[semconv.ERROR_TYPE] == "RuntimeError"
    assert chat.name == "chat devserver-server_error"
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes[semconv.ERROR_TYPE] == type(failed.value).__qualname__


def test_no_content_without_capture(instrument, devserver, span_exporter):
    instrument(TARGET, capture="no_content")
    react_agent(openai_chat(devserver)).invoke(ask())

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == AGENT_TREE
    for span in spans:
        for key in (
            semconv.INPUT_MESSAGES,
            semconv.OUTPUT_MESSAGES,
            semconv.TOOL_CALL_ARGUMENTS,
            semconv.TOOL_CALL_RESULT,
        ):
            assert key not in span.attributes


def _patched() -> list[str]:
    import wrapt
    from langchain_core.callbacks import manager
    from langchain_core.language_models import BaseChatModel, BaseLLM
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import config
    from langgraph._internal import _runnable
    from langgraph.pregel import Pregel

    owners = {
        "manager": (manager, ("_configure",)),
        "config": (config, ("_set_config_context",)),
        "langgraph": (_runnable, ("_set_config_context",)),
        "Pregel": (Pregel, ("stream", "astream")),
        "BaseChatModel": (
            BaseChatModel,
            ("agenerate", "astream", "stream", "_generate_with_cache", "_agenerate_with_cache"),
        ),
        "BaseLLM": (BaseLLM, ("agenerate", "astream", "stream")),
        "BaseRetriever": (BaseRetriever, ("ainvoke",)),
    }
    return [
        f"{label}.{name}"
        for label, (owner, names) in owners.items()
        for name in names
        if isinstance(vars(owner)[name], wrapt.FunctionWrapper)
    ]


def test_uninstrument_stops_tracing(instrument, devserver, span_exporter):
    instrumentor = instrument(TARGET)
    react_agent(openai_chat(devserver)).invoke(ask())  # the lazy patches are applied
    assert len(_patched()) == 14
    span_exporter.clear()
    instrumentor.uninstrument()  # (the fixture's own uninstrument then finds nothing to do)

    assert _patched() == []
    react_agent(openai_chat(devserver)).invoke(ask())
    assert span_exporter.get_finished_spans() == ()


def test_llm_run_is_a_text_completion_span(lc, span_exporter):
    from langchain_core.language_models.fake import FakeListLLM

    assert FakeListLLM(responses=["four"]).invoke("two plus two?") == "four"

    (span,) = span_exporter.get_finished_spans()
    assert span.name == "text_completion"
    assert span.attributes[semconv.OPERATION] == "text_completion"
    assert span.attributes[semconv.PROVIDER] == "_OTHER"
    assert "two plus two?" in span.attributes[semconv.INPUT_MESSAGES]
    assert '"content":"four"' in span.attributes[semconv.OUTPUT_MESSAGES]


@pytest.mark.parametrize(
    ("ls_provider", "class_id", "expected"),
    [
        ("openai", "langchain.chat_models.openai.ChatOpenAI", "openai"),  # well-known
        ("google_vertexai", "langchain.chat_models.vertexai.ChatVertexAI", "gcp.vertex_ai"),
        # an integration's own provider name, not a well-known one: kept
        ("fireworks", "langchain_fireworks.chat_models.ChatFireworks", "fireworks"),
        # only derived from the class name of a model no integration defines
        ("mymodel", "my_app.models.ChatMyModel", "_OTHER"),
        ("fakelist", "langchain_core.language_models.fake.FakeListLLM", "_OTHER"),
        ("fakelistchatmodel", "langchain_core.x.FakeListChatModel", "_OTHER"),
        ("mymodel", None, "mymodel"),  # no class to tell: kept
        (None, "my_app.models.ChatMyModel", "_OTHER"),  # none given
    ],
)
def test_provider_names_unknown_models_other(ls_provider, class_id, expected):
    from llmtap.instrumentation.langchain import _messages

    metadata = {"ls_provider": ls_provider} if ls_provider else {}
    serialized = {"id": class_id.split(".")} if class_id else None
    assert _messages.provider(metadata, serialized) == expected


def test_app_names_a_graph_as_an_agent_in_its_metadata(lc_openai, devserver, span_exporter):
    graph = _fan_out_graph(devserver).with_config(metadata={"gen_ai.agent.name": "researcher"})
    graph.invoke({"topic": "otters", "notes": []})

    spans = span_exporter.get_finished_spans()
    # an agent's nodes are plumbing: its model calls go straight under it
    assert tree(spans) == ["invoke_agent researcher", f"  chat {MODEL}", f"  chat {MODEL}"]
    assert named(spans, "invoke_agent researcher")[0].attributes[semconv.AGENT_NAME] == (
        "researcher"
    )


def test_setting_shows_an_agent_graphs_nodes(
    instrument, instrument_openai, devserver, span_exporter
):
    instrument_openai(capture="span_only")
    instrument(TARGET, capture="span_only", framework_internal_spans=True)
    react_agent(openai_chat(devserver)).invoke(ask())

    lines = tree(span_exporter.get_finished_spans())
    assert lines[0] == "invoke_agent weather-agent"
    assert [line for line in lines if line.startswith("  ") and not line.startswith("   ")] == [
        "  node agent",
        "  node tools",
        "  node agent",
    ]
    assert len([line for line in lines if line.strip().startswith("chat ")]) == 2


def test_a_stream_left_unfinished_leaves_no_span_current(lc_openai, devserver, span_exporter):
    before = trace.get_current_span()
    stream = openai_chat(devserver).stream("tell me a long story")
    next(stream)
    assert trace.get_current_span() is before  # not the chat span, between chunks
    stream.close()
    assert trace.get_current_span() is before

    (chat,) = span_exporter.get_finished_spans()
    assert chat.name == f"chat {MODEL}"


async def test_graph_astream_messages_mode(lc_openai, devserver, span_exporter):
    before = trace.get_current_span()
    agent = react_agent(openai_chat(devserver))
    tokens = [chunk async for chunk, _ in agent.astream(ask(), stream_mode="messages")]

    assert tokens
    assert trace.get_current_span() is before
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == AGENT_TREE
    assert one_trace(spans)


def test_an_interrupt_is_no_error(lc, span_exporter):
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    def approve(state: Answer) -> dict[str, Any]:
        return {"answer": interrupt("approve?")}  # raises GraphInterrupt through the node run

    graph = StateGraph(Answer)
    graph.add_node("approve", approve)
    graph.add_edge(START, "approve")
    graph.add_edge("approve", END)
    app = graph.compile(name="approval", checkpointer=InMemorySaver())
    out = app.invoke({"answer": ""}, thread("t-int"))

    assert "__interrupt__" in out
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == ["invoke_workflow approval", "  node approve"]
    assert [s.status.status_code for s in spans] == [StatusCode.UNSET, StatusCode.UNSET]


def test_several_message_lists_in_one_generate_call(lc_openai, devserver, span_exporter):
    from langchain_core.messages import HumanMessage

    model = openai_chat(devserver)
    result = model.generate([[HumanMessage("first")], [HumanMessage("second")]])

    assert len(result.generations) == 2
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [f"chat {MODEL}", f"chat {MODEL}"]  # each merged into its own run
    for span, word in zip(
        sorted(spans, key=lambda s: s.start_time), ("first", "second"), strict=True
    ):
        assert span.attributes[semconv.OPENAI_API_TYPE] == "chat_completions"
        assert word in span.attributes[semconv.INPUT_MESSAGES]


async def test_several_message_lists_in_one_agenerate_call(lc_openai, devserver, span_exporter):
    from langchain_core.messages import HumanMessage

    before = trace.get_current_span()
    await openai_chat(devserver).agenerate([[HumanMessage("one")], [HumanMessage("two")]])

    assert trace.get_current_span() is before
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [f"chat {MODEL}", f"chat {MODEL}"]
    assert {s.attributes[semconv.INPUT_MESSAGES] for s in spans} == {
        '[{"role":"user","parts":[{"type":"text","content":"one"}]}]',
        '[{"role":"user","parts":[{"type":"text","content":"two"}]}]',
    }


# the agent's span: create_agent's markers, its model calls summed up, its input and answer -


def _model_graph(devserver: Any) -> Any:
    """A graph with one model node and no ToolNode, as langchain's ``create_agent`` builds
    when it is given no tools."""
    from langgraph.graph import END, START, MessagesState, StateGraph

    model = openai_chat(devserver)
    graph = StateGraph(MessagesState)
    graph.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    return graph.compile()


CREATE_AGENT = {"ls_integration": "langchain_create_agent", "lc_agent_name": "helper"}


def test_create_agent_markers_make_the_graph_an_agent(lc_openai, devserver, span_exporter):
    _model_graph(devserver).invoke(ask("hi"), config={"metadata": CREATE_AGENT})

    spans = span_exporter.get_finished_spans()
    # its model node is plumbing (no "node model" step), as for any agent graph
    assert tree(spans) == ["invoke_agent helper", f"  chat {MODEL}"]
    agent = named(spans, "invoke_agent helper")[0]
    assert agent.attributes[semconv.OPERATION] == "invoke_agent"
    assert agent.attributes[semconv.AGENT_NAME] == "helper"


def test_create_agent_marker_without_a_name_names_the_agent_by_its_graph(
    lc_openai, devserver, span_exporter
):
    metadata = {"ls_integration": "langchain_create_agent"}
    _model_graph(devserver).invoke(ask("hi"), config={"metadata": metadata})

    assert tree(span_exporter.get_finished_spans()) == ["invoke_agent LangGraph", f"  chat {MODEL}"]


def test_the_same_graph_without_the_markers_is_a_workflow(lc_openai, devserver, span_exporter):
    _model_graph(devserver).invoke(ask("hi"))

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == ["invoke_workflow LangGraph", "  node model", f"    chat {MODEL}"]
    workflow = spans[-1]
    for key in (semconv.USAGE_INPUT_TOKENS, semconv.RESPONSE_FINISH_REASONS):
        assert key not in workflow.attributes  # only an agent sums up its model calls


def _agent_sums_up_its_chats(spans: Any) -> None:
    agent = named(spans, "invoke_agent weather-agent")[0]
    chats = named(spans, f"chat {MODEL}")
    assert len(chats) == 2
    for key in (semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS):
        total = sum(chat.attributes[key] for chat in chats)
        assert total > 0
        assert agent.attributes[key] == total
    assert agent.attributes[semconv.PROVIDER] == "openai"
    last = max(chats, key=lambda chat: chat.end_time)
    assert agent.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert last.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)


def test_agent_sums_up_its_model_calls_merged_with_the_provider_adapter(
    lc_openai, devserver, span_exporter
):
    react_agent(openai_chat(devserver)).invoke(ask())

    spans = span_exporter.get_finished_spans()
    assert semconv.OPENAI_API_TYPE in named(spans, f"chat {MODEL}")[0].attributes  # merged
    _agent_sums_up_its_chats(spans)


def test_agent_sums_up_its_model_calls_recorded_by_the_framework(lc, devserver, span_exporter):
    react_agent(openai_chat(devserver)).invoke(ask())

    spans = span_exporter.get_finished_spans()
    assert semconv.OPENAI_API_TYPE not in named(spans, f"chat {MODEL}")[0].attributes
    _agent_sums_up_its_chats(spans)


def test_agent_span_carries_its_input_and_answer(lc_openai, devserver, span_exporter):
    result = react_agent(openai_chat(devserver)).invoke(ask())

    agent = named(span_exporter.get_finished_spans(), "invoke_agent weather-agent")[0]
    assert json.loads(agent.attributes[semconv.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}
    ]
    answer = result["messages"][-1].content
    assert "sunny in Paris" in answer
    assert json.loads(agent.attributes[semconv.OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": answer}],
            "name": "weather-agent",  # the agent names its messages
            "finish_reason": "stop",
        }
    ]


def test_workflow_span_carries_a_text_input_and_answer(lc, span_exporter):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser

    chain = (FakeListChatModel(responses=["fine"]) | StrOutputParser()).with_config(run_name="ask")
    assert chain.invoke("how are you?") == "fine"

    workflow = named(span_exporter.get_finished_spans(), "invoke_workflow ask")[0]
    assert workflow.attributes[semconv.INPUT_MESSAGES] == (
        '[{"role":"user","parts":[{"type":"text","content":"how are you?"}]}]'
    )
    assert workflow.attributes[semconv.OUTPUT_MESSAGES] == (
        '[{"role":"assistant","parts":[{"type":"text","content":"fine"}],"finish_reason":"stop"}]'
    )


def test_workflow_state_of_the_apps_own_is_no_message(lc_openai, devserver, span_exporter):
    _fan_out_graph(devserver).invoke({"topic": "otters", "notes": []})

    workflow = named(span_exporter.get_finished_spans(), "invoke_workflow research")[0]
    assert semconv.INPUT_MESSAGES not in workflow.attributes
    assert semconv.OUTPUT_MESSAGES not in workflow.attributes


def test_a_graph_the_create_agent_runs_inherits_its_markers_but_is_no_agent(
    lc_openai, devserver, span_exporter
):
    from langgraph.graph import END, START, MessagesState, StateGraph

    inner = _model_graph(devserver)  # named "LangGraph"
    graph = StateGraph(MessagesState)
    graph.add_node("model", lambda state: inner.invoke(state))
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    outer = graph.compile(name="outer")
    outer.invoke(ask("hi"), config={"metadata": CREATE_AGENT})

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [
        "invoke_agent helper",
        "  invoke_workflow LangGraph",
        "    node model",
        f"      chat {MODEL}",
    ]
    # the agent's model call, inside the workflow it runs, is still the agent's
    agent = named(spans, "invoke_agent helper")[0]
    assert (
        agent.attributes[semconv.USAGE_INPUT_TOKENS]
        == (named(spans, f"chat {MODEL}")[0].attributes[semconv.USAGE_INPUT_TOKENS])
    )
