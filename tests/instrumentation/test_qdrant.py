"""Qdrant: ``query_points``, ``query_batch_points`` (and ``search`` where the client has it),
sync and async, as ``retrieval {collection}`` spans, against the real client in local mode
(``QdrantClient(":memory:")``, in-process)."""

from __future__ import annotations

import asyncio
import importlib.metadata
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from qdrant_client import AsyncQdrantClient, QdrantClient, models

import llmtap
from llmtap.instrumentation.qdrant._query import PointsAdapter

from .test_openai_support import data_points
from .vectorstore_support import (  # noqa: F401 (step_telemetry: a fixture)
    attrs,
    documents,
    only_retrieval,
    retrieval_spans,
    step_telemetry,
)

TARGET = "llmtap.instrumentation.qdrant:QdrantInstrumentor"
COLLECTION = "kb"
POINTS = [
    models.PointStruct(id=1, vector=[1.0, 0.0, 0.0], payload={"text": "Refunds take five days."}),
    models.PointStruct(id=2, vector=[0.0, 1.0, 0.0], payload={"page_content": "Free shipping."}),
    models.PointStruct(id=3, vector=[0.6, 0.8, 0.0], payload={"lang": "en"}),
]
QUERY = [0.9, 0.1, 0.0]


def _fill(client: Any) -> None:
    client.create_collection(
        COLLECTION, vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE)
    )
    client.upsert(COLLECTION, points=POINTS)


@pytest.fixture
def client() -> Any:
    made = QdrantClient(":memory:")
    _fill(made)
    yield made
    made.close()


@pytest.fixture
def instrument_qdrant(instrument: Any) -> Any:
    def go(**kwargs: Any) -> Any:
        return instrument(TARGET, **kwargs)

    return go


def test_query_points_is_one_retrieval_span(instrument_qdrant, client, span_exporter) -> None:
    instrument_qdrant()
    result = client.query_points(COLLECTION, query=QUERY, limit=2)
    span = only_retrieval(span_exporter)
    a = attrs(span)
    assert span.name == "retrieval kb"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "retrieval"
    assert a["gen_ai.data_source.id"] == "kb" == a["db.collection.name"]
    assert a["db.system.name"] == "qdrant"
    assert a["db.operation.name"] == "query_points"
    assert "gen_ai.provider.name" not in a
    assert a["gen_ai.request.top_k"] == 2.0
    assert "gen_ai.retrieval.query.text" not in a  # a vector query has no text
    assert [p.id for p in result.points] == [1, 3]
    assert documents(span) == [
        {
            "id": "1",
            "score": pytest.approx(result.points[0].score),
            "content": POINTS[0].payload["text"],
        },
        {"id": "3", "score": pytest.approx(result.points[1].score)},  # no text in its payload
    ]


def test_page_content_payload_is_the_text(instrument_qdrant, client, span_exporter) -> None:
    instrument_qdrant()
    client.query_points(COLLECTION, query=[0.0, 1.0, 0.0], limit=1)
    assert documents(only_retrieval(span_exporter))[0]["content"] == "Free shipping."


def test_capture_off_keeps_ids_and_scores_only(instrument_qdrant, client, span_exporter) -> None:
    instrument_qdrant(capture="no_content")
    result = client.query_points(COLLECTION, query=QUERY, limit=3)
    docs = documents(only_retrieval(span_exporter))
    assert [d["id"] for d in docs] == [str(p.id) for p in result.points]
    assert all(set(d) == {"id", "score"} for d in docs)


def test_query_batch_points_is_one_span(instrument_qdrant, client, span_exporter) -> None:
    instrument_qdrant()
    requests = [
        models.QueryRequest(query=QUERY, limit=1, with_payload=True),
        models.QueryRequest(query=[0.0, 1.0, 0.0], limit=1, with_payload=True),
    ]
    result = client.query_batch_points(COLLECTION, requests=requests)
    span = only_retrieval(span_exporter)
    assert span.attributes["db.operation.name"] == "query_batch_points"
    assert span.attributes["gen_ai.request.top_k"] == 1.0
    assert [d["id"] for d in documents(span)] == [str(r.points[0].id) for r in result] == ["1", "2"]


def test_search_where_the_client_has_it(instrument_qdrant, client, span_exporter) -> None:
    if not hasattr(QdrantClient, "search"):
        version = importlib.metadata.version("qdrant-client")
        pytest.skip(f"qdrant-client {version} has no search (query_points replaced it)")
    instrument_qdrant()
    found = client.search(COLLECTION, query_vector=QUERY, limit=1)
    span = only_retrieval(span_exporter)
    assert span.attributes["db.operation.name"] == "search"
    assert documents(span) == [
        {"id": "1", "score": pytest.approx(found[0].score), "content": "Refunds take five days."}
    ]


def test_document_query_text_recorded_on_the_error(
    instrument_qdrant, client, span_exporter
) -> None:
    # local inference needs fastembed, which is not installed here: the client raises
    query = models.Document(text="how long do refunds take?", model="sentence-transformers/x")
    with pytest.raises(Exception) as bare:
        client.query_points(COLLECTION, query=query, limit=1)
    instrument_qdrant()
    with pytest.raises(type(bare.value)):
        client.query_points(COLLECTION, query=query, limit=1)
    span = only_retrieval(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(bare.value).__qualname__
    assert span.attributes["gen_ai.retrieval.query.text"] == "how long do refunds take?"


def test_missing_collection_error(instrument_qdrant, client, span_exporter) -> None:
    with pytest.raises(Exception) as bare:
        client.query_points("missing", query=QUERY)
    instrument_qdrant(capture="no_content")
    with pytest.raises(type(bare.value)) as traced:
        client.query_points("missing", query=QUERY)
    assert str(traced.value) == str(bare.value)
    span = only_retrieval(span_exporter)
    assert span.name == "retrieval missing"
    assert span.attributes["error.type"] == type(bare.value).__qualname__


def test_differential_same_result(instrument_qdrant, client) -> None:
    bare = client.query_points(COLLECTION, query=QUERY, limit=3)
    bare_batch = client.query_batch_points(COLLECTION, [models.QueryRequest(query=QUERY)])
    instrument_qdrant()
    traced = client.query_points(COLLECTION, query=QUERY, limit=3)
    assert type(traced) is type(bare) and traced == bare
    assert client.query_batch_points(COLLECTION, [models.QueryRequest(query=QUERY)]) == bare_batch


def test_failure_inside_llmtap_never_breaks_the_query(
    instrument_qdrant, client, span_exporter, monkeypatch
) -> None:
    # nothing real makes the adapter fail: its translation steps are made to raise
    def boom(*args: Any) -> Any:
        raise RuntimeError("adapter bug")

    bare = client.query_points(COLLECTION, query=QUERY, limit=2)
    instrument_qdrant()
    monkeypatch.setattr(PointsAdapter, "documents", boom)
    assert client.query_points(COLLECTION, query=QUERY, limit=2) == bare
    assert "gen_ai.retrieval.documents" not in only_retrieval(span_exporter).attributes
    monkeypatch.setattr(PointsAdapter, "request", boom)
    assert client.query_points(COLLECTION, query=QUERY, limit=2) == bare
    assert len(retrieval_spans(span_exporter)) == 1


def test_async_client(instrument_qdrant, span_exporter) -> None:
    async def run() -> Any:
        aclient = AsyncQdrantClient(":memory:")
        await aclient.create_collection(
            COLLECTION, vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE)
        )
        await aclient.upsert(COLLECTION, points=POINTS)
        bare = await aclient.query_points(COLLECTION, query=QUERY, limit=1)
        instrument_qdrant()
        traced = await aclient.query_points(COLLECTION, query=QUERY, limit=1)
        batch = await aclient.query_batch_points(COLLECTION, [models.QueryRequest(query=QUERY)])
        await aclient.close()
        return bare, traced, batch

    bare, traced, batch = asyncio.run(run())
    assert traced == bare
    spans = retrieval_spans(span_exporter)
    assert [s.attributes["db.operation.name"] for s in spans] == [
        "query_points",
        "query_batch_points",
    ]
    assert documents(spans[0])[0] == {
        "id": "1",
        "score": pytest.approx(traced.points[0].score),
        "content": "Refunds take five days.",
    }
    assert len(batch) == 1


@pytest.mark.usefixtures("step_telemetry")
def test_nests_under_an_app_span_and_a_rag_step(
    instrument_qdrant, client, span_exporter, tracer_provider
) -> None:
    instrument_qdrant()
    tracer = trace.get_tracer("app", tracer_provider=tracer_provider)
    with tracer.start_as_current_span("app") as app, llmtap.retrieval("rag", query="refunds?") as r:
        found = client.query_points(COLLECTION, query=QUERY, limit=1)
        r.documents([{"id": str(found.points[0].id), "score": found.points[0].score}])
    by_name = {s.name: s for s in span_exporter.get_finished_spans()}
    inner, step = by_name["retrieval kb"], by_name["retrieval rag"]
    assert inner.parent.span_id == step.context.span_id
    assert step.parent.span_id == app.get_span_context().span_id
    assert documents(step)[0]["id"] == documents(inner)[0]["id"] == "1"


def test_no_genai_metrics(instrument_qdrant, client, metric_reader) -> None:
    """The GenAI client metrics require gen_ai.provider.name, which a vector store has not."""
    instrument_qdrant()
    client.query_points(COLLECTION, query=QUERY, limit=1)
    assert data_points(metric_reader, "gen_ai.client.operation.duration") == []
    assert data_points(metric_reader, "gen_ai.client.token.usage") == []


def test_no_second_span_inside_a_query_of_the_same_store(
    instrument_qdrant, client, span_exporter, tracer_provider
) -> None:
    # a wrapped method reached from inside another traced Qdrant query (as when one client
    # method calls another) stands aside; the outer span is made here by the test's tracer
    instrument_qdrant()
    tracer = trace.get_tracer("outer", tracer_provider=tracer_provider)
    outer = {"gen_ai.operation.name": "retrieval", "db.system.name": "qdrant"}
    with tracer.start_as_current_span("retrieval kb", attributes=outer):
        assert client.query_points(COLLECTION, query=QUERY, limit=1).points[0].id == 1
    assert [s.name for s in span_exporter.get_finished_spans()] == ["retrieval kb"]
    other = {"gen_ai.operation.name": "retrieval", "db.system.name": "chroma"}
    with tracer.start_as_current_span("retrieval other", attributes=other):
        client.query_points(COLLECTION, query=QUERY, limit=1)
    assert len(retrieval_spans(span_exporter)) == 3  # another store's span: a child span
