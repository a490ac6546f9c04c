"""Step spans (workflow, agent, tool, retrieval, rerank) and business context."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry.instrumentation.threading import ThreadingInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmtap
from llmtap import runtime
from llmtap.config import CaptureMode, Settings
from llmtap.instrumentation._invocation import Telemetry


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime.use_telemetry(Telemetry(Settings(capture=CaptureMode.SPAN_ONLY), provider))
    yield exporter
    runtime.use_telemetry(None)


def by_name(exporter):
    return {s.name: s for s in exporter.get_finished_spans()}


def test_tool_decorator_records_arguments_and_result(spans):
    @llmtap.tool
    def lookup(city: str, units: str = "c") -> dict:
        return {"city": city, "t": 21}

    assert lookup("Paris") == {"city": "Paris", "t": 21}
    span = by_name(spans)["execute_tool lookup"]
    assert span.kind is SpanKind.INTERNAL
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert span.attributes["gen_ai.tool.name"] == "lookup"
    assert span.attributes["gen_ai.tool.type"] == "function"
    assert json.loads(span.attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert json.loads(span.attributes["gen_ai.tool.call.result"]) == {"city": "Paris", "t": 21}
    assert "gen_ai.provider.name" not in span.attributes


def test_no_content_mode_keeps_arguments_out():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime.use_telemetry(Telemetry(Settings(), provider))
    try:

        @llmtap.tool
        def secret(token: str) -> str:
            return token

        secret("sk-live-123")
        (span,) = exporter.get_finished_spans()
        assert "gen_ai.tool.call.arguments" not in span.attributes
        assert "gen_ai.tool.call.result" not in span.attributes
    finally:
        runtime.use_telemetry(None)


def test_nested_steps_form_one_tree_with_errors_marked(spans):
    @llmtap.workflow("answer")
    def flow():
        with llmtap.retrieval("kb", query="refunds?") as r:
            r.documents([{"id": "d1", "score": 0.9, "content": "5 days"}])
        with llmtap.rerank("cross-encoder"):
            pass
        with pytest.raises(KeyError), llmtap.agent("helper", id="a-1", version="2"):
            raise KeyError("x")
        return "done"

    assert flow() == "done"
    got = by_name(spans)
    root = got["invoke_workflow answer"]
    assert root.attributes["gen_ai.workflow.name"] == "answer"
    for name in ("retrieval kb", "rerank cross-encoder", "invoke_agent helper"):
        assert got[name].parent.span_id == root.context.span_id
    retrieval = got["retrieval kb"]
    assert retrieval.kind is SpanKind.CLIENT
    assert retrieval.attributes["gen_ai.data_source.id"] == "kb"
    assert retrieval.attributes["gen_ai.retrieval.query.text"] == "refunds?"
    docs = json.loads(retrieval.attributes["gen_ai.retrieval.documents"])
    assert docs == [{"id": "d1", "score": 0.9, "content": "5 days"}]
    assert got["rerank cross-encoder"].attributes["llmtap.step.kind"] == "rerank"
    agent = got["invoke_agent helper"]
    assert agent.status.status_code is StatusCode.ERROR
    assert agent.attributes["error.type"] == "KeyError"
    assert agent.attributes["gen_ai.agent.id"] == "a-1"


def test_generators_span_the_whole_iteration_without_leaking_context(spans):
    @llmtap.retrieval("stream-kb")
    def produce():
        yield 1
        yield 2

    outer_seen = []
    with llmtap.workflow("w"):
        for item in produce():
            with llmtap.step("consume", "item"):
                outer_seen.append(item)
    got = by_name(spans)
    gen_span = got["retrieval stream-kb"]
    root = got["invoke_workflow w"]
    assert gen_span.parent.span_id == root.context.span_id
    consumers = [s for s in spans.get_finished_spans() if s.name == "consume item"]
    assert len(consumers) == 2
    assert all(c.parent.span_id == root.context.span_id for c in consumers)
    assert outer_seen == [1, 2]


async def test_async_function_and_async_generator(spans):
    @llmtap.tool(name="double")
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    @llmtap.retrieval("akb")
    async def docs():
        for i in range(3):
            yield i

    assert await double(4) == 8
    assert [d async for d in docs()] == [0, 1, 2]
    got = by_name(spans)
    assert got["execute_tool double"].attributes["gen_ai.tool.call.result"] == "8"
    assert got["retrieval akb"].end_time >= got["retrieval akb"].start_time


async def test_context_reaches_gather_tasks(spans):
    @llmtap.tool
    async def work(i: int) -> int:
        return i

    with llmtap.context(user_id="u-1", session_id="s-1", feature="f", metadata={"tier": "gold"}):
        await asyncio.gather(*(work(i) for i in range(3)))
    for span in spans.get_finished_spans():
        assert span.attributes["user.id"] == "u-1"
        assert span.attributes["session.id"] == "s-1"
        assert span.attributes["gen_ai.conversation.id"] == "s-1"
        assert span.attributes["llmtap.feature"] == "f"
        assert span.attributes["llmtap.metadata.tier"] == "gold"


def test_context_reaches_thread_pool_with_threading_instrumentation(spans):
    @llmtap.tool
    def work(i: int) -> int:
        return i

    ThreadingInstrumentor().instrument()
    try:
        with llmtap.context(user_id="u-2"), ThreadPoolExecutor(2) as pool:
            assert list(pool.map(work, range(4))) == [0, 1, 2, 3]
    finally:
        ThreadingInstrumentor().uninstrument()
    got = spans.get_finished_spans()
    assert len(got) == 4
    assert {s.attributes.get("user.id") for s in got} == {"u-2"}


def test_context_nesting_overrides_and_restores(spans):
    @llmtap.tool
    def t() -> None:
        return None

    with llmtap.context(user_id="outer", feature="a"):
        with llmtap.context(feature="b"):
            t()
        t()
    inner, outer = spans.get_finished_spans()
    assert inner.attributes["user.id"] == "outer"
    assert inner.attributes["llmtap.feature"] == "b"
    assert outer.attributes["llmtap.feature"] == "a"


def test_unknown_context_field_is_a_clear_error():
    with pytest.raises(TypeError, match="unknown field 'tenant'"), llmtap.context(tenant="x"):
        pass


def test_decorated_retrieval_and_rerank_record_their_documents_and_query(spans):
    @llmtap.retrieval("kb")
    def search(question: str, k: int = 2) -> list[dict]:
        return [{"id": "a", "score": 0.9, "content": "Refunds take 5 days."}, "plain text doc"]

    @llmtap.rerank("overlap")
    def rerank(question: str, docs: list) -> list:
        return docs[:1]

    rerank("refund time?", search("refund time?"))
    got = by_name(spans)
    retrieval = got["retrieval kb"].attributes
    assert retrieval["gen_ai.retrieval.query.text"] == "refund time?"
    assert json.loads(retrieval["gen_ai.retrieval.documents"]) == [
        {"id": "a", "score": 0.9, "content": "Refunds take 5 days."},
        {"id": "", "score": 0.0, "content": "plain text doc"},
    ]
    reranked = json.loads(got["rerank overlap"].attributes["gen_ai.retrieval.documents"])
    assert [d["id"] for d in reranked] == ["a"]


def test_a_retrieval_result_that_is_not_documents_is_not_recorded(spans):
    @llmtap.retrieval("counter")
    def count(question: str) -> int:
        return 3

    assert count("how many?") == 3
    assert "gen_ai.retrieval.documents" not in by_name(spans)["retrieval counter"].attributes
