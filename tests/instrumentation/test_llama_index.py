"""LlamaIndex instrumentation against the real llama-index-core (its dispatcher, query engines,
workflow agents), with ``MockLLM``/``MockEmbedding`` alone and with
llama-index-llms-anthropic and llama-index-embeddings-ollama talking to the devserver under
llmtap's Anthropic and Ollama instrumentations (nothing mocked on the wire).

The integrations are imported here, before any test instruments ``anthropic``: importing
llama-index-llms-anthropic imports ``anthropic.lib.vertex``/``bedrock``, whose beta
``Messages`` classes copy ``create`` from the first-party class as they are defined, so an
import while ``anthropic`` is instrumented would copy llmtap's wrapper.

llama-index-llms-anthropic 0.12.3 (the newest) is not compatible with anthropic 2.x: it
builds messages with ``MessageParam(...)``, a ``Union`` alias since anthropic 2, and sends
``temperature``, which anthropic 2's ``messages.create`` no longer takes. ``anthropic_llm``
puts a ``dict`` in place of ``MessageParam`` (what the TypedDict built) and names a model
LlamaIndex sends no temperature for.
"""

import asyncio
import json
import typing
from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import CustomLLM, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import StartEvent, StopEvent, Workflow, step
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv
from llmtap.evals.extract import extract_input
from llmtap.export.readable import to_span_data

try:  # the workflow agents came in a later llama-index-core than the oldest supported
    from llama_index.core.agent.workflow import FunctionAgent
except ImportError:
    FunctionAgent = None
try:  # the integrations that resolve beside the oldest llama-index-core predate anthropic 2
    from llama_index.embeddings.ollama import OllamaEmbedding
    from llama_index.llms.anthropic import Anthropic
    from llama_index.llms.anthropic import utils as anthropic_utils
except ImportError:
    Anthropic = OllamaEmbedding = anthropic_utils = None

needs_integrations = pytest.mark.skipif(
    Anthropic is None,
    reason="llama-index-llms-anthropic / -embeddings-ollama do not import here (anthropic 2)",
)
needs_agents = pytest.mark.skipif(
    FunctionAgent is None, reason="this llama-index-core has no workflow agents"
)

TARGET = "llmtap.instrumentation.llama_index:LlamaIndexInstrumentor"
OLLAMA_TARGET = "llmtap.instrumentation.ollama:OllamaInstrumentor"
CLAUDE = "claude-opus-4-7"  # LlamaIndex sends no temperature for it (see the docstring)
EMBED = "nomic-embed-text"
QUESTION = "What is the capital of France?"
TEXTS = ("Paris is the capital of France.", "Berlin is the capital of Germany.")
MOCK_ANSWER = "text text text text"


# helpers ------------------------------------------------------------------------------------


def tree(spans: Sequence[Any]) -> list[tuple[str, Any]]:
    """``[(name, [children...]), ...]`` by start time: the exact shape of a trace."""
    ids = {s.context.span_id for s in spans}
    kids: dict[int | None, list[Any]] = {}
    for s in spans:
        parent = s.parent.span_id if s.parent is not None and s.parent.span_id in ids else None
        kids.setdefault(parent, []).append(s)

    def build(parent: int | None) -> list[tuple[str, Any]]:
        ordered = sorted(kids.get(parent, []), key=lambda s: s.start_time)
        return [(s.name, build(s.context.span_id)) for s in ordered]

    return build(None)


def named(spans: Sequence[Any], name: str) -> Any:
    (found,) = [s for s in spans if s.name == name]
    return found


def documents(span: Any) -> list[dict[str, Any]]:
    return json.loads(span.attributes[semconv.RETRIEVAL_DOCUMENTS])


def text_of(span: Any, key: str) -> str:
    (message,) = json.loads(span.attributes[key])
    return "".join(p["content"] for p in message["parts"] if p["type"] == "text")


def finish_reason_of(span: Any) -> str:
    (message,) = json.loads(span.attributes[semconv.OUTPUT_MESSAGES])
    return message["finish_reason"]


def build_index(embed_model: Any) -> VectorStoreIndex:
    docs = [Document(text=t, id_=f"doc-{i}") for i, t in enumerate(TEXTS)]
    return VectorStoreIndex.from_documents(docs, embed_model=embed_model)


def mock_index() -> VectorStoreIndex:
    return build_index(MockEmbedding(embed_dim=8))


def node_texts(nodes: Sequence[Any]) -> list[tuple[str, float | None, str]]:
    return [(n.node.ref_doc_id, n.score, n.node.get_content()) for n in nodes]


def run_workflow(workflow: Workflow, **kwargs: Any) -> Any:
    """``workflow.run`` in a fresh event loop (it starts its tasks in the running one)."""

    async def go() -> Any:
        return await workflow.run(**kwargs)

    return asyncio.run(go())


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


class UsageLLM(CustomLLM):
    """A model no llmtap instrumentation sees, answering with usage in ``raw``."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="house-model", is_chat_model=False)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        if "explode" in prompt:
            raise RuntimeError("model down")
        raw = {"model": "house-model-2", "id": "r-1", "usage": {"input_tokens": 7}}
        raw["usage"]["output_tokens"] = 2
        return CompletionResponse(text="an answer", raw=raw)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text="an", delta="an")
            yield CompletionResponse(text="an answer", delta=" answer")

        return gen()


class AsyncUsageLLM(UsageLLM):
    """``UsageLLM`` with a stream of its own for ``astream_complete`` (``CustomLLM``'s runs
    ``stream_complete`` inside once read: a second model call LlamaIndex starts outside the
    first's dispatcher span)."""

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        async def gen() -> CompletionResponseAsyncGen:
            yield CompletionResponse(text="an", delta="an")
            yield CompletionResponse(text="an answer", delta=" answer")

        return gen()


class Pipeline(Workflow):
    """A workflow of one step that asks a model (annotations evaluated: no ``from __future__
    import annotations`` here, older LlamaIndex workflows read them as they are)."""

    @step
    async def ask(self, ev: StartEvent) -> StopEvent:
        answer = await UsageLLM().acomplete(ev.question)
        return StopEvent(result=answer.text)


# fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def instrumented(instrument: Any) -> Any:
    return instrument(TARGET, capture="span_only")


@pytest.fixture
def providers(instrument: Any, instrument_anthropic: Any) -> Any:
    """llmtap's Anthropic and Ollama instrumentations, then LlamaIndex's."""
    instrument_anthropic(capture="span_only")
    instrument(OLLAMA_TARGET, capture="span_only")
    return instrument(TARGET, capture="span_only")


def claude(devserver: Any) -> Any:
    return Anthropic(
        model=CLAUDE, base_url=devserver.anthropic_base_url, api_key="test-key", max_retries=0
    )


@pytest.fixture
def anthropic_llm(devserver: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    if typing.get_origin(anthropic_utils.MessageParam) is typing.Union:
        monkeypatch.setattr(anthropic_utils, "MessageParam", dict)
    return claude(devserver)


@pytest.fixture
def ollama_embed(devserver: Any) -> Any:
    return OllamaEmbedding(model_name=EMBED, base_url=devserver.base_url)


# RAG with LlamaIndex's mock models ----------------------------------------------------------

RAG_MOCK = [
    (
        "invoke_workflow RetrieverQueryEngine",
        [
            ("retrieval VectorIndexRetriever", [("embeddings unknown", [])]),
            ("text_completion unknown", []),
        ],
    )
]


def test_query_engine_tree_with_mock_models(instrumented, span_exporter):
    index = mock_index()
    span_exporter.clear()

    response = index.as_query_engine(llm=MockLLM(max_tokens=4), similarity_top_k=2).query(QUESTION)

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == RAG_MOCK
    query = named(spans, "invoke_workflow RetrieverQueryEngine")
    assert query.kind is SpanKind.INTERNAL
    assert query.attributes[semconv.OPERATION] == "invoke_workflow"
    assert query.attributes[semconv.WORKFLOW_NAME] == "RetrieverQueryEngine"
    assert semconv.PROVIDER not in query.attributes
    assert text_of(query, semconv.INPUT_MESSAGES) == QUESTION
    assert text_of(query, semconv.OUTPUT_MESSAGES) == str(response) == MOCK_ANSWER

    retrieval = named(spans, "retrieval VectorIndexRetriever")
    assert retrieval.kind is SpanKind.CLIENT
    assert retrieval.attributes[semconv.OPERATION] == "retrieval"
    assert retrieval.attributes[semconv.RETRIEVAL_QUERY_TEXT] == QUESTION
    expected = [
        {"id": n.node.node_id, "score": n.score, "content": n.node.get_content()}
        for n in response.source_nodes
    ]
    assert documents(retrieval) == expected and len(expected) == 2

    llm = named(spans, "text_completion unknown")
    assert llm.kind is SpanKind.CLIENT
    assert llm.attributes[semconv.PROVIDER] == "_OTHER"
    assert llm.attributes[semconv.REQUEST_MODEL] == "unknown"
    assert llm.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert finish_reason_of(llm) == finish_reason_of(query) == "stop"
    assert text_of(llm, semconv.OUTPUT_MESSAGES) == MOCK_ANSWER
    assert "Paris is the capital" in text_of(llm, semconv.INPUT_MESSAGES)

    embedding = named(spans, "embeddings unknown")
    assert embedding.attributes[semconv.OPERATION] == "embeddings"
    assert embedding.attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] == 8


def test_no_content_without_capture(instrument, span_exporter):
    instrument(TARGET, capture="no_content")
    index = mock_index()
    span_exporter.clear()

    index.as_query_engine(llm=MockLLM(max_tokens=4)).query(QUESTION)

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == RAG_MOCK
    content_keys = {
        semconv.INPUT_MESSAGES,
        semconv.OUTPUT_MESSAGES,
        semconv.RETRIEVAL_QUERY_TEXT,
        semconv.RETRIEVAL_DOCUMENTS,
    }
    assert all(not content_keys & set(s.attributes) for s in spans)


def test_index_build_embeds_in_one_span_per_batch(instrumented, span_exporter):
    mock_index()
    spans = span_exporter.get_finished_spans()
    # splitters and LlamaIndex's other internal spans make none
    assert tree(spans) == [("embeddings unknown", [])]


def test_framework_llm_records_model_usage_and_output(instrumented, span_exporter):
    index = mock_index()
    span_exporter.clear()

    index.as_query_engine(llm=UsageLLM()).query(QUESTION)

    llm = named(span_exporter.get_finished_spans(), "text_completion house-model")
    attrs = llm.attributes
    assert attrs[semconv.REQUEST_MODEL] == "house-model"
    assert attrs[semconv.RESPONSE_MODEL] == "house-model-2"
    assert attrs[semconv.RESPONSE_ID] == "r-1"
    assert (attrs[semconv.USAGE_INPUT_TOKENS], attrs[semconv.USAGE_OUTPUT_TOKENS]) == (7, 2)
    assert text_of(llm, semconv.OUTPUT_MESSAGES) == "an answer"


def test_llm_error_fails_its_span_and_the_query(instrumented, span_exporter):
    index = mock_index()
    span_exporter.clear()

    with pytest.raises(RuntimeError, match="model down"):
        index.as_query_engine(llm=UsageLLM()).query("explode")

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [
        (
            "invoke_workflow RetrieverQueryEngine",
            [
                ("retrieval VectorIndexRetriever", [("embeddings unknown", [])]),
                ("text_completion house-model", []),
            ],
        )
    ]
    for name in ("invoke_workflow RetrieverQueryEngine", "text_completion house-model"):
        span = named(spans, name)
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "RuntimeError"


def test_postprocessor_is_a_rerank_step(instrumented, span_exporter):
    index = mock_index()
    span_exporter.clear()
    engine = index.as_query_engine(
        llm=MockLLM(max_tokens=4),
        node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=0.0)],
    )

    response = engine.query(QUESTION)

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [
        (
            "invoke_workflow RetrieverQueryEngine",
            [
                ("retrieval VectorIndexRetriever", [("embeddings unknown", [])]),
                ("rerank SimilarityPostprocessor", []),
                ("text_completion unknown", []),
            ],
        )
    ]
    rerank = named(spans, "rerank SimilarityPostprocessor")
    assert rerank.attributes[semconv.LLMTAP_STEP_KIND] == "rerank"
    assert rerank.attributes[semconv.RETRIEVAL_QUERY_TEXT] == QUESTION
    assert [d["id"] for d in documents(rerank)] == [n.node.node_id for n in response.source_nodes]


def test_streaming_query_keeps_the_llm_under_the_query(instrumented, span_exporter):
    index = mock_index()
    span_exporter.clear()

    response = index.as_query_engine(llm=UsageLLM(), streaming=True).query(QUESTION)
    assert span_exporter.get_finished_spans()[-1].name != "invoke_workflow RetrieverQueryEngine"
    tokens = list(response.response_gen)  # LlamaIndex calls the model only now

    spans = span_exporter.get_finished_spans()
    assert "".join(tokens) == "an answer"
    assert tree(spans) == [
        (
            "invoke_workflow RetrieverQueryEngine",
            [
                ("retrieval VectorIndexRetriever", [("embeddings unknown", [])]),
                ("text_completion house-model", []),
            ],
        )
    ]
    query = named(spans, "invoke_workflow RetrieverQueryEngine")
    assert text_of(query, semconv.OUTPUT_MESSAGES) == "an answer"
    llm = named(spans, "text_completion house-model")
    assert llm.end_time <= query.end_time
    assert text_of(llm, semconv.OUTPUT_MESSAGES) == "an answer"
    for span in (query, llm):
        assert span.attributes[semconv.LLMTAP_STREAM_END] == "completed"


def stream_ends(spans: Sequence[Any]) -> dict[str, tuple[Any, StatusCode]]:
    """How each span's stream ended (``llmtap.stream.end``) and its status."""
    return {
        s.name: (s.attributes.get(semconv.LLMTAP_STREAM_END), s.status.status_code)
        for s in spans
        if s.name.startswith(("text_completion", "invoke_workflow"))
    }


def test_a_model_stream_the_app_drops_ends_its_span_as_abandoned(instrumented, span_exporter):
    llm = UsageLLM()
    half_read = llm.stream_complete("hi")
    assert next(half_read).delta == "an"
    del half_read  # collected at once (reference counting): no gc.collect() needed
    never_read = llm.stream_complete("hi")
    del never_read

    spans = span_exporter.get_finished_spans()
    assert [stream_ends([s]) for s in spans] == [
        {"text_completion house-model": ("abandoned", StatusCode.UNSET)}
    ] * 2
    assert len(instrumented._runs.spans) == 0  # nothing left open


def test_a_streamed_answer_the_app_drops_ends_the_query_and_the_model_call(
    instrumented, span_exporter
):
    engine = mock_index().as_query_engine(llm=UsageLLM(), streaming=True)
    span_exporter.clear()

    half_read = engine.query(QUESTION)
    assert next(half_read.response_gen) == "an"
    del half_read
    spans = span_exporter.get_finished_spans()
    assert stream_ends(spans) == {
        "invoke_workflow RetrieverQueryEngine": ("abandoned", StatusCode.UNSET),
        "text_completion house-model": ("abandoned", StatusCode.UNSET),
    }
    llm = named(spans, "text_completion house-model")
    assert llm.end_time <= named(spans, "invoke_workflow RetrieverQueryEngine").end_time

    span_exporter.clear()
    never_read = engine.query(QUESTION)  # newer releases never call the model
    del never_read
    ends = stream_ends(span_exporter.get_finished_spans())
    # llama-index-core 0.12 starts the model's stream at query(): its span ends as abandoned too
    assert ends.pop("text_completion house-model", None) in (
        None,
        ("abandoned", StatusCode.UNSET),
    )
    assert ends == {"invoke_workflow RetrieverQueryEngine": ("abandoned", StatusCode.UNSET)}
    assert len(instrumented._runs.spans) == 0


def test_a_streamed_answer_the_app_closes_ends_as_closed(instrumented, span_exporter):
    engine = mock_index().as_query_engine(llm=UsageLLM(), streaming=True)
    span_exporter.clear()

    response = engine.query(QUESTION)
    assert next(response.response_gen) == "an"
    response.response_gen.close()

    assert stream_ends(span_exporter.get_finished_spans()) == {
        "invoke_workflow RetrieverQueryEngine": ("closed", StatusCode.UNSET),
        "text_completion house-model": ("closed", StatusCode.UNSET),
    }
    assert len(instrumented._runs.spans) == 0


def test_an_async_model_stream_the_app_drops_ends_as_abandoned(instrumented, span_exporter):
    async def go() -> None:
        stream = await AsyncUsageLLM().astream_complete("hi")
        assert (await stream.__anext__()).delta == "an"
        await stream.aclose()  # what asyncio does to a dropped async generator
        dropped = await AsyncUsageLLM().astream_complete("hi")
        del dropped

    asyncio.run(go())
    assert [stream_ends([s]) for s in span_exporter.get_finished_spans()] == [
        {"text_completion house-model": ("closed", StatusCode.UNSET)},
        {"text_completion house-model": ("abandoned", StatusCode.UNSET)},
    ]


CHAT_ENGINE = [
    (
        "invoke_workflow ContextChatEngine",
        [
            ("retrieval VectorIndexRetriever", [("embeddings unknown", [])]),
            ("text_completion unknown", []),
        ],
    )
]


def test_chat_engine_is_invoke_workflow(instrumented, span_exporter):
    engine = mock_index().as_chat_engine(chat_mode="context", llm=MockLLM(max_tokens=4))
    span_exporter.clear()

    answer = engine.chat("capital?")
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == CHAT_ENGINE
    chat = named(spans, "invoke_workflow ContextChatEngine")
    assert text_of(chat, semconv.INPUT_MESSAGES) == "capital?"
    assert text_of(chat, semconv.OUTPUT_MESSAGES) == str(answer) == MOCK_ANSWER

    span_exporter.clear()
    streamed = engine.stream_chat("again?")
    assert "".join(streamed.response_gen).strip() == MOCK_ANSWER  # 0.12.0 adds a space
    assert tree(span_exporter.get_finished_spans()) == CHAT_ENGINE


def test_framework_spans_compose_with_the_apps_spans(instrumented, tracer_provider, span_exporter):
    tracer = tracer_provider.get_tracer("app")
    index = mock_index()

    def lookup(city: str) -> str:
        """Look a city up."""
        with tracer.start_as_current_span("inside the tool"):
            return city.upper()

    span_exporter.clear()
    with tracer.start_as_current_span("app request"):
        index.as_query_engine(llm=MockLLM(max_tokens=4)).query(QUESTION)
    output = FunctionTool.from_defaults(lookup).call(city="paris")

    assert output.content == "PARIS"
    assert tree(span_exporter.get_finished_spans()) == [
        ("app request", RAG_MOCK),
        ("execute_tool lookup", [("inside the tool", [])]),
    ]


def test_custom_workflow_is_invoke_workflow(instrumented, span_exporter):
    result = run_workflow(Pipeline(timeout=10), question=QUESTION)

    spans = span_exporter.get_finished_spans()
    assert result == "an answer"
    # the workflow's steps are no spans: the model call goes under the workflow
    assert tree(spans) == [("invoke_workflow Pipeline", [("text_completion house-model", [])])]
    flow = named(spans, "invoke_workflow Pipeline")
    assert flow.attributes[semconv.WORKFLOW_NAME] == "Pipeline"
    assert text_of(flow, semconv.OUTPUT_MESSAGES) == "an answer"


def test_judge_finds_question_answer_and_documents(instrumented, span_exporter):
    index = mock_index()
    span_exporter.clear()
    response = index.as_query_engine(llm=MockLLM(max_tokens=4)).query(QUESTION)

    trace = [to_span_data(s) for s in span_exporter.get_finished_spans()]
    (query,) = [s for s in trace if s.name == "invoke_workflow RetrieverQueryEngine"]
    found = extract_input(query, trace)
    assert found.input_text == QUESTION
    assert found.output_text == str(response)
    assert found.documents == [n.node.get_content() for n in response.source_nodes]
    # on the model's span, the retrieved documents are the evidence too
    (llm,) = [s for s in trace if s.name == "text_completion unknown"]
    assert extract_input(llm, trace).documents == found.documents


# with llmtap's provider instrumentations underneath ----------------------------------------

RAG_PROVIDERS = [
    (
        "invoke_workflow RetrieverQueryEngine",
        [
            ("retrieval VectorIndexRetriever", [(f"embeddings {EMBED}", [])]),
            (f"chat {CLAUDE}", []),
        ],
    )
]


def _one_call_each(spans: Sequence[Any]) -> tuple[Any, Any]:
    chats = [s for s in spans if s.attributes.get(semconv.OPERATION) == "chat"]
    embeds = [s for s in spans if s.attributes.get(semconv.OPERATION) == "embeddings"]
    assert len(chats) == 1 and len(embeds) == 1  # exactly one span per model call
    return chats[0], embeds[0]


@needs_integrations
def test_provider_spans_merge_into_the_framework_spans(
    providers, anthropic_llm, ollama_embed, span_exporter
):
    index = build_index(ollama_embed)
    assert tree(span_exporter.get_finished_spans()) == [(f"embeddings {EMBED}", [])]
    span_exporter.clear()

    response = index.as_query_engine(llm=anthropic_llm, similarity_top_k=2).query(QUESTION)

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == RAG_PROVIDERS
    chat, embed = _one_call_each(spans)
    # the provider adapters recorded the request and response on the framework's spans
    assert chat.kind is SpanKind.CLIENT
    assert chat.attributes[semconv.PROVIDER] == "anthropic"
    assert chat.attributes[semconv.RESPONSE_MODEL] == CLAUDE
    assert chat.attributes[semconv.RESPONSE_ID].startswith("msg_")
    assert chat.attributes[semconv.USAGE_INPUT_TOKENS] > 0
    assert chat.attributes["gen_ai.request.stream"] is False
    assert text_of(chat, semconv.OUTPUT_MESSAGES) == str(response)
    assert embed.attributes[semconv.PROVIDER] == "ollama"
    assert embed.attributes[semconv.USAGE_INPUT_TOKENS] > 0
    assert embed.attributes[semconv.RESPONSE_MODEL] == EMBED


@needs_integrations
def test_provider_merge_survives_aquery(providers, anthropic_llm, ollama_embed, span_exporter):
    index = build_index(ollama_embed)
    span_exporter.clear()

    response = asyncio.run(index.as_query_engine(llm=anthropic_llm).aquery(QUESTION))

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == RAG_PROVIDERS
    chat, _ = _one_call_each(spans)
    assert text_of(chat, semconv.OUTPUT_MESSAGES) == str(response)


@needs_integrations
def test_provider_merge_survives_streaming(providers, anthropic_llm, ollama_embed, span_exporter):
    index = build_index(ollama_embed)
    span_exporter.clear()

    response = index.as_query_engine(llm=anthropic_llm, streaming=True).query(QUESTION)
    text = "".join(response.response_gen)

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == RAG_PROVIDERS
    chat, _ = _one_call_each(spans)
    assert chat.attributes["gen_ai.request.stream"] is True
    assert chat.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
    assert text_of(chat, semconv.OUTPUT_MESSAGES) == text
    query = named(spans, "invoke_workflow RetrieverQueryEngine")
    assert text_of(query, semconv.OUTPUT_MESSAGES) == text


@needs_agents
@needs_integrations
def test_agent_with_a_tool(providers, anthropic_llm, span_exporter):
    agent = FunctionAgent(
        name="weather",
        description="Tells the weather.",
        tools=[FunctionTool.from_defaults(get_weather)],
        llm=anthropic_llm,
        system_prompt="Answer with the tool.",
    )

    result = run_workflow(agent, user_msg="Weather in Paris?")

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [
        (
            "invoke_agent weather",
            [(f"chat {CLAUDE}", []), ("execute_tool get_weather", []), (f"chat {CLAUDE}", [])],
        )
    ]
    run = named(spans, "invoke_agent weather")
    assert run.attributes[semconv.AGENT_NAME] == "weather"
    assert run.attributes[semconv.AGENT_DESCRIPTION] == "Tells the weather."
    assert text_of(run, semconv.INPUT_MESSAGES) == "Weather in Paris?"
    assert text_of(run, semconv.OUTPUT_MESSAGES) == str(result.response.content)
    tool = named(spans, "execute_tool get_weather")
    assert tool.attributes[semconv.TOOL_TYPE] == "function"
    (call,) = result.tool_calls
    assert tool.attributes[semconv.TOOL_CALL_ID] == call.tool_id
    assert call.tool_id.startswith("toolu_")
    arguments = json.loads(tool.attributes[semconv.TOOL_CALL_ARGUMENTS])
    assert tool.attributes[semconv.TOOL_CALL_RESULT] == json.dumps(get_weather(arguments["city"]))
    assert finish_reason_of(run) == "stop"
    chats = [s for s in spans if s.name == f"chat {CLAUDE}"]
    assert [c.attributes[semconv.PROVIDER] for c in chats] == ["anthropic", "anthropic"]
    assert [finish_reason_of(c) for c in chats] == ["tool_call", "stop"]
    assert all(c.attributes[semconv.RESPONSE_ID].startswith("msg_") for c in chats)


@needs_agents
@needs_integrations
def test_agent_chat_spans_record_the_finish_reason_llama_index_passes_on(
    instrumented, anthropic_llm, span_exporter
):
    agent = FunctionAgent(
        name="weather",
        tools=[FunctionTool.from_defaults(get_weather)],
        llm=anthropic_llm,
        system_prompt="Answer with the tool.",
    )
    run_workflow(agent, user_msg="Weather in Paris?")
    spans = span_exporter.get_finished_spans()
    chats = [s for s in spans if s.name == f"chat {CLAUDE}"]
    # Anthropic's stop_reason (tool_use, end_turn) in the chunks LlamaIndex passes on
    reasons = [c.attributes[semconv.RESPONSE_FINISH_REASONS] for c in chats]
    assert reasons == [("tool_call",), ("stop",)]
    assert [finish_reason_of(c) for c in chats] == ["tool_call", "stop"]


# llmtap changes nothing -------------------------------------------------------------------


def _run_rag(index: VectorStoreIndex) -> list[Any]:
    engine = index.as_query_engine(llm=MockLLM(max_tokens=4), similarity_top_k=2)
    answer = engine.query(QUESTION)
    streamed = index.as_query_engine(llm=UsageLLM(), streaming=True).query(QUESTION)
    tokens = list(streamed.response_gen)
    asynced = asyncio.run(engine.aquery(QUESTION))
    chatted = index.as_chat_engine(chat_mode="context", llm=MockLLM(max_tokens=4)).chat("hi")
    return [
        str(answer),
        node_texts(answer.source_nodes),
        tokens,
        node_texts(streamed.source_nodes),
        str(asynced),
        str(chatted),
        run_workflow(Pipeline(timeout=10), question=QUESTION),
    ]


def _run_agent(devserver: Any) -> list[Any]:
    agent = FunctionAgent(
        name="weather", tools=[FunctionTool.from_defaults(get_weather)], llm=claude(devserver)
    )
    agent_result = run_workflow(agent, user_msg="Weather in Paris?")
    chat = claude(devserver).chat([ChatMessage(role="user", content="hello")])
    return [
        str(agent_result.response.content),
        [(t.tool_name, t.tool_kwargs, str(t.tool_output)) for t in agent_result.tool_calls],
        chat.message.content,
    ]


def test_results_identical_with_llmtap_on_and_off(instrument, span_exporter):
    index = mock_index()  # one index: MockEmbedding ties every score, LlamaIndex orders ties
    off = _run_rag(index)
    instrument(TARGET, capture="span_and_event")
    on = _run_rag(index)
    assert len(span_exporter.get_finished_spans()) == 4 * 4 + 2  # four RAG trees, a workflow
    assert on == off


@needs_agents
@needs_integrations
def test_agent_results_identical_with_llmtap_on_and_off(
    instrument, instrument_anthropic, anthropic_llm, devserver, span_exporter
):
    off = _run_agent(devserver)
    instrument_anthropic(capture="span_and_event")
    instrument(TARGET, capture="span_and_event")
    on = _run_agent(devserver)
    assert len(span_exporter.get_finished_spans()) == 5  # agent, chat, tool, chat; chat
    assert on == off


def test_uninstrument_removes_the_handlers(instrument, span_exporter):
    instrumentor = instrument(TARGET)
    root = get_dispatcher()
    ours = [type(h).__name__ for h in (*root.span_handlers, *root.event_handlers)]
    assert ours.count("LlmtapSpanHandler") == ours.count("LlmtapEventHandler") == 1

    instrumentor.uninstrument()
    mock_index().as_query_engine(llm=MockLLM(max_tokens=4)).query(QUESTION)

    assert span_exporter.get_finished_spans() == ()
    left = [type(h).__name__ for h in (*root.span_handlers, *root.event_handlers)]
    assert not [n for n in left if n.startswith("Llmtap")]
