"""Chroma: ``Collection.query`` as one ``retrieval {collection}`` span, against a real
in-process ``chromadb.EphemeralClient`` with an embedding function of the test's own (Chroma's
default one would download an ONNX model: it never runs here)."""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import llmtap
from llmtap.instrumentation.chromadb._query import QueryAdapter

from .vectorstore_support import (
    attrs,
    documents,
    only_retrieval,
    retrieval_spans,
    step_telemetry,  # noqa: F401 (a fixture)
)

TARGET = "llmtap.instrumentation.chromadb:ChromaInstrumentor"
DOCS = {
    "d1": "Refunds take five days.",
    "d2": "Shipping is free over fifty euros.",
    "d3": "Support answers within a day.",
}


class LetterEmbedding(EmbeddingFunction[Documents]):
    """Deterministic, offline: counts of a few letters, normalised."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        out = []
        for text in input:
            vec = [float(text.lower().count(c)) + 0.01 for c in "aeiosrtnd"]
            norm = sum(v * v for v in vec) ** 0.5
            out.append([v / norm for v in vec])
        return out

    @staticmethod
    def name() -> str:
        return "llmtap-test-letters"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LetterEmbedding:
        return LetterEmbedding()


@pytest.fixture(scope="module")
def chroma() -> Any:
    return chromadb.EphemeralClient(chromadb.Settings(anonymized_telemetry=False))


@pytest.fixture
def collection(chroma: Any) -> Any:
    made = chroma.create_collection(
        f"kb-{uuid.uuid4().hex[:8]}", embedding_function=LetterEmbedding()
    )
    made.add(ids=list(DOCS), documents=list(DOCS.values()), metadatas=[{"n": i} for i in range(3)])
    return made


@pytest.fixture
def instrument_chroma(instrument: Any) -> Any:
    def go(**kwargs: Any) -> Any:
        return instrument(TARGET, **kwargs)

    return go


def test_query_texts_is_one_retrieval_span(instrument_chroma, collection, span_exporter) -> None:
    instrument_chroma()
    result = collection.query(query_texts=["how long do refunds take?"], n_results=2)
    span = only_retrieval(span_exporter)
    a = attrs(span)
    assert span.name == f"retrieval {collection.name}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "retrieval"
    assert a["gen_ai.data_source.id"] == collection.name == a["db.collection.name"]
    assert a["db.system.name"] == "chroma"
    assert a["db.operation.name"] == "query"
    assert "gen_ai.provider.name" not in a
    assert a["gen_ai.request.top_k"] == 2.0
    assert a["gen_ai.retrieval.query.text"] == "how long do refunds take?"
    expected = [
        {"id": i, "score": pytest.approx(d), "content": text}
        for i, d, text in zip(
            result["ids"][0], result["distances"][0], result["documents"][0], strict=True
        )
    ]
    assert len(expected) == 2
    assert documents(span) == expected


def test_several_query_texts_one_span_documents_in_query_order(
    instrument_chroma, collection, span_exporter
) -> None:
    instrument_chroma()
    result = collection.query(query_texts=["refunds", "shipping cost"], n_results=1)
    span = only_retrieval(span_exporter)
    assert span.attributes["gen_ai.retrieval.query.text"] == '["refunds", "shipping cost"]'
    assert [d["id"] for d in documents(span)] == [result["ids"][0][0], result["ids"][1][0]]


def test_query_embeddings_has_no_query_text(instrument_chroma, collection, span_exporter) -> None:
    instrument_chroma()
    vector = LetterEmbedding()(["free shipping"])[0]
    result = collection.query(query_embeddings=[vector], n_results=3, include=["distances"])
    span = only_retrieval(span_exporter)
    assert "gen_ai.retrieval.query.text" not in span.attributes
    # no documents included: ids and scores only
    assert documents(span) == [
        {"id": i, "score": pytest.approx(d)}
        for i, d in zip(result["ids"][0], result["distances"][0], strict=True)
    ]


def test_capture_off_keeps_ids_and_scores_only(
    instrument_chroma, collection, span_exporter
) -> None:
    instrument_chroma(capture="no_content")
    result = collection.query(query_texts="refunds", n_results=2)
    span = only_retrieval(span_exporter)
    assert "gen_ai.retrieval.query.text" not in span.attributes
    docs = documents(span)
    assert [d["id"] for d in docs] == result["ids"][0]
    assert all(set(d) == {"id", "score"} for d in docs)
    assert "Refunds" not in str(span.attributes)


def test_get_is_not_a_retrieval(instrument_chroma, collection, span_exporter) -> None:
    instrument_chroma()
    assert collection.get(ids=["d1"])["documents"] == [DOCS["d1"]]
    assert span_exporter.get_finished_spans() == ()


def test_error_is_recorded_and_raised_unchanged(
    instrument_chroma, collection, span_exporter
) -> None:
    with pytest.raises(Exception) as bare:
        collection.query(query_embeddings=[[0.1, 0.2]], n_results=1)  # wrong dimension
    instrument_chroma()
    with pytest.raises(type(bare.value)) as traced:
        collection.query(query_embeddings=[[0.1, 0.2]], n_results=1)
    assert str(traced.value) == str(bare.value)
    span = only_retrieval(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(bare.value).__qualname__
    assert "gen_ai.retrieval.documents" not in span.attributes


def test_differential_same_result_with_and_without_llmtap(instrument_chroma, collection) -> None:
    kwargs = {"query_texts": ["support", "refund"], "n_results": 3}
    bare = copy.deepcopy(collection.query(**kwargs))
    instrument_chroma()
    traced = collection.query(**kwargs)
    assert type(traced) is type(bare)
    assert traced == bare


def test_positional_arguments(instrument_chroma, collection, span_exporter) -> None:
    instrument_chroma()
    # the positions after query_texts differ between Chroma releases
    collection.query(None, ["refund"], n_results=1)
    span = only_retrieval(span_exporter)
    assert span.attributes["gen_ai.request.top_k"] == 1.0
    assert span.attributes["gen_ai.retrieval.query.text"] == "refund"


def test_failure_inside_llmtap_never_breaks_the_query(
    instrument_chroma, collection, span_exporter, monkeypatch
) -> None:
    # nothing real makes the adapter fail: its translation steps are made to raise
    def boom(*args: Any) -> Any:
        raise RuntimeError("adapter bug")

    bare = collection.query(query_texts=["refund"], n_results=2)
    instrument_chroma()
    monkeypatch.setattr(QueryAdapter, "documents", boom)
    assert collection.query(query_texts=["refund"], n_results=2) == bare
    span = only_retrieval(span_exporter)  # the span still ends, without documents
    assert "gen_ai.retrieval.documents" not in span.attributes
    monkeypatch.setattr(QueryAdapter, "request", boom)
    assert collection.query(query_texts=["refund"], n_results=2) == bare
    assert len(retrieval_spans(span_exporter)) == 1  # the request failed: no span, same result


@pytest.mark.usefixtures("step_telemetry")
def test_nests_under_an_app_span_and_a_rag_step(
    instrument_chroma, collection, span_exporter, tracer_provider
) -> None:
    instrument_chroma()
    tracer = trace.get_tracer("app", tracer_provider=tracer_provider)

    @llmtap.retrieval("kb")
    def retrieve(question: str) -> list[dict[str, Any]]:
        found = collection.query(query_texts=[question], n_results=1)
        return [{"id": found["ids"][0][0], "score": found["distances"][0][0]}]

    with tracer.start_as_current_span("app") as app, llmtap.context(user_id="u-1"):
        retrieve("refund")
    by_name = {s.name: s for s in span_exporter.get_finished_spans()}
    inner = by_name[f"retrieval {collection.name}"]
    step = by_name["retrieval kb"]
    assert inner.parent.span_id == step.context.span_id
    assert step.parent.span_id == app.get_span_context().span_id
    assert inner.context.trace_id == app.get_span_context().trace_id
    assert step.attributes["gen_ai.retrieval.query.text"] == "refund"
    assert "db.system.name" not in step.attributes
    assert documents(step)[0]["id"] == documents(inner)[0]["id"]
    assert inner.attributes["user.id"] == "u-1"


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real Chroma server (``chroma run``, shipped with chromadb) for the HTTP clients."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        pytest.skip(f"no chroma executable next to {sys.executable}")
    path = tmp_path_factory.mktemp("chroma")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("chroma run did not start listening within 30 s")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_async_http_client(instrument_chroma, chroma_server, span_exporter) -> None:
    settings = chromadb.Settings(anonymized_telemetry=False)

    async def run() -> tuple[Any, Any, str]:
        client = await chromadb.AsyncHttpClient(
            host="127.0.0.1", port=chroma_server, settings=settings
        )
        name = f"akb-{uuid.uuid4().hex[:8]}"
        # the collection is made without an embedding function and opened with ours
        # (chromadb 1.0.0's client sends an embedding-function config its server rejects)
        await client.create_collection(name, embedding_function=None)
        made = await client.get_collection(name, embedding_function=LetterEmbedding())
        await made.add(ids=list(DOCS), documents=list(DOCS.values()))
        bare = await made.query(query_texts=["refunds"], n_results=2)
        instrument_chroma()
        traced = await made.query(query_texts=["refunds"], n_results=2)
        return bare, traced, name

    bare, traced, name = asyncio.run(run())
    assert traced == bare
    span = only_retrieval(span_exporter)
    assert span.name == f"retrieval {name}"
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["server.port"] == chroma_server
    assert span.attributes["gen_ai.retrieval.query.text"] == "refunds"
    assert [d["id"] for d in documents(span)] == traced["ids"][0]
    assert documents(span)[0]["content"] == traced["documents"][0][0]


def test_http_client(instrument_chroma, chroma_server, span_exporter) -> None:
    client = chromadb.HttpClient(
        host="127.0.0.1", port=chroma_server, settings=chromadb.Settings(anonymized_telemetry=False)
    )
    made = client.create_collection(
        f"hkb-{uuid.uuid4().hex[:8]}", embedding_function=LetterEmbedding()
    )
    made.add(ids=list(DOCS), documents=list(DOCS.values()))
    instrument_chroma(capture="no_content")
    result = made.query(query_texts=["shipping"], n_results=1)
    span = only_retrieval(span_exporter)
    assert span.attributes["server.port"] == chroma_server
    assert documents(span) == [
        {"id": result["ids"][0][0], "score": pytest.approx(result["distances"][0][0])}
    ]
