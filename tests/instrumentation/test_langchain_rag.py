"""LangChain RAG chains, business context and the app's results with llmtap on and off."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from llmtap import semconv
from llmtap.evals.extract import extract_input
from llmtap.pipeline.span import EventData, SpanData

from .langchain_support import MODEL, TARGET, named, one_trace, openai_chat, tree, weather_tool

WARRANTY = "The X200 router comes with a two-year limited warranty."
RETURNS = "Returns are accepted within 30 days of delivery."
QUESTION = "How long is the X200 warranty?"


def shelf() -> Any:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    class Shelf(BaseRetriever):
        """A retriever of two fixed documents with scores."""

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            return [
                Document(page_content=WARRANTY, id="doc-1", metadata={"score": 0.92}),
                Document(page_content=RETURNS, id="doc-2", metadata={"score": 0.41}),
            ]

    return Shelf()


def rag_chain(model: Any) -> Any:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from these documents:\n{context}"), ("human", "{question}")]
    )

    def joined(docs: list[Any]) -> str:
        return "\n".join(d.page_content for d in docs)

    inputs = {"context": shelf() | joined, "question": RunnablePassthrough()}
    return (inputs | prompt | model | StrOutputParser()).with_config(run_name="answer-question")


def to_data(span: Any) -> SpanData:
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
def steps(tracer_provider: Any) -> Any:
    from llmtap import runtime
    from llmtap.config import CaptureMode, Settings
    from llmtap.instrumentation._invocation import Telemetry

    runtime.use_telemetry(Telemetry(Settings(capture=CaptureMode.SPAN_ONLY), tracer_provider))
    yield
    runtime.use_telemetry(None)


def test_rag_chain_retrieval_span_and_judge_input(
    instrument, instrument_openai, devserver, span_exporter
):
    instrument_openai(capture="span_only")
    instrument(TARGET, capture="span_only")
    answer = rag_chain(openai_chat(devserver)).invoke(QUESTION)

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [
        "invoke_workflow answer-question",
        "  retrieval Shelf",
        f"  chat {MODEL}",
    ]
    assert one_trace(spans)
    retrieval = named(spans, "retrieval Shelf")[0]
    assert retrieval.kind is SpanKind.CLIENT
    assert retrieval.attributes[semconv.OPERATION] == "retrieval"
    assert retrieval.attributes[semconv.DATA_SOURCE_ID] == "Shelf"
    assert retrieval.attributes[semconv.RETRIEVAL_QUERY_TEXT] == QUESTION
    assert json.loads(retrieval.attributes[semconv.RETRIEVAL_DOCUMENTS]) == [
        {"id": "doc-1", "score": 0.92, "content": WARRANTY},
        {"id": "doc-2", "score": 0.41, "content": RETURNS},
    ]

    trace = [to_data(s) for s in spans]
    chat = next(s for s in trace if s.name == f"chat {MODEL}")
    judged = extract_input(chat, trace)
    assert judged.input_text == QUESTION
    assert judged.output_text == answer
    assert judged.documents[:2] == [WARRANTY, RETURNS]


def test_retrieval_without_capture_keeps_ids_and_scores(instrument, devserver, span_exporter):
    instrument(TARGET, capture="no_content")
    rag_chain(openai_chat(devserver)).invoke(QUESTION)

    retrieval = named(span_exporter.get_finished_spans(), "retrieval Shelf")[0]
    assert semconv.RETRIEVAL_QUERY_TEXT not in retrieval.attributes
    assert json.loads(retrieval.attributes[semconv.RETRIEVAL_DOCUMENTS]) == [
        {"id": "doc-1", "score": 0.92},
        {"id": "doc-2", "score": 0.41},
    ]


def test_workflow_and_tool_steps_compose_with_a_graph_run(
    instrument, instrument_openai, steps, devserver, openai_client, span_exporter
):
    """``llmtap.workflow`` around a graph run, ``llmtap.context`` on its spans, and a tool that
    calls the OpenAI SDK itself: its chat span goes under the tool's span."""
    import warnings

    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    import llmtap

    instrument_openai(capture="span_only")
    instrument(TARGET, capture="span_only")

    @tool
    def summarize(text: str) -> str:
        """Summarize a text."""
        with llmtap.retrieval("notes") as step:
            step.documents([{"id": "n1", "score": 1.0, "content": "a note"}])
        reply = openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}]
        )
        return reply.choices[0].message.content

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(openai_chat(devserver), [summarize], name="summarizer")
    with llmtap.context(user_id="u-7", feature="summaries"), llmtap.workflow("support"):
        agent.invoke({"messages": [("user", "Summarize: otters hold hands")]})

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [
        "invoke_workflow support",
        "  invoke_agent summarizer",
        f"    chat {MODEL}",
        "    execute_tool summarize",
        "      retrieval notes",
        f"      chat {MODEL}",
        f"    chat {MODEL}",
    ]
    assert one_trace(spans)
    for span in spans:
        assert span.attributes[semconv.LLMTAP_FEATURE] == "summaries"
        assert span.attributes[semconv.USER_ID] == "u-7"


def _agent_transcript(devserver: Any) -> list[tuple[Any, ...]]:
    import warnings

    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(openai_chat(devserver), [weather_tool()], name="weather-agent")
    out = agent.invoke({"messages": [("user", "Weather in Paris?")]}, {"configurable": {}})
    return [
        (
            m.type,
            m.content,
            [(c["name"], c["args"], c["id"]) for c in getattr(m, "tool_calls", [])],
            m.response_metadata.get("finish_reason"),
            (m.usage_metadata or {}).get("total_tokens") if m.type == "ai" else None,
        )
        for m in out["messages"]
    ]


def _rag_answers(devserver: Any) -> list[str]:
    chain = rag_chain(openai_chat(devserver))
    return [chain.invoke(QUESTION), *chain.batch([QUESTION, "And returns?"])]


def test_results_are_identical_with_llmtap_on_and_off(
    instrument, instrument_openai, devserver, span_exporter
):
    off = (_agent_transcript(devserver), _rag_answers(devserver))
    instrument_openai(capture="span_and_event")
    instrument(TARGET, capture="span_and_event", framework_internal_spans=True)
    on = (_agent_transcript(devserver), _rag_answers(devserver))

    assert on == off
    assert len(span_exporter.get_finished_spans()) > 10  # traced while the results matched


def _store(devserver: Any) -> Any:
    import openai
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=devserver.openai_base_url,
        api_key="test-key",
        check_embedding_ctx_length=False,  # no tiktoken download
        http_async_client=openai.DefaultAsyncHttpxClient(),
    )
    return InMemoryVectorStore.from_texts([WARRANTY, RETURNS], embeddings)


VECTOR_TREE = ["retrieval VectorStoreRetriever", "  embeddings text-embedding-3-small"]


def test_vector_store_embeddings_go_under_the_retrieval_span(
    instrument, instrument_openai, devserver, span_exporter
):
    instrument_openai(capture="span_only")
    instrument(TARGET, capture="span_only")
    store = _store(devserver)
    span_exporter.clear()

    docs = store.as_retriever(search_kwargs={"k": 1}).invoke(QUESTION)

    assert len(docs) == 1
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == VECTOR_TREE
    assert one_trace(spans)


async def test_async_retriever_keeps_the_callers_context(
    instrument, instrument_openai, steps, devserver, span_exporter
):
    from opentelemetry import trace

    import llmtap

    instrument_openai(capture="span_only")
    instrument(TARGET, capture="span_only")
    store = _store(devserver)
    span_exporter.clear()

    with llmtap.workflow("lookup"):
        outer = trace.get_current_span()
        await store.as_retriever(search_kwargs={"k": 1}).ainvoke(QUESTION)
        assert trace.get_current_span() is outer

    assert tree(span_exporter.get_finished_spans()) == [
        "invoke_workflow lookup",
        *("  " + line for line in VECTOR_TREE),
    ]
