"""Retrieval spans of the vector-store adapters (Chroma, Qdrant, Pinecone).

A query to a vector store is one ``retrieval {collection}`` CLIENT span (GenAI semconv
v1.41): ``gen_ai.operation.name=retrieval``, ``gen_ai.data_source.id`` the collection or
index, ``gen_ai.request.top_k``, and the database conventions' ``db.system.name`` (a vector
store is a database, not a GenAI provider, so ``gen_ai.provider.name`` is left out, as for
the app's own retrieval steps), ``db.collection.name`` and ``db.operation.name``.

Documents are recorded in the shape of the app's own ``llmtap.retrieval`` steps, by the same
code (``_documents.documents_json``): ``{"id", "score"[, "content"]}``. With content capture
on (any mode, as for steps), the query text and the documents' text are recorded; with it
off, the vector-store spans keep the ids and scores only (no text, no query).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from opentelemetry import trace

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation._documents import documents_json
from llmtap.instrumentation._invocation import Invocation, log_once
from llmtap.instrumentation._wrap import Call

# database conventions (not GenAI ones): the vector store behind a retrieval span
DB_SYSTEM_NAME = "db.system.name"
DB_COLLECTION_NAME = "db.collection.name"
DB_NAMESPACE = "db.namespace"
DB_OPERATION_NAME = "db.operation.name"


def retrieval_invocation(system: str, source: str | None, operation: str) -> Invocation:
    """A vector-store query's invocation: ``retrieval {source}``, no GenAI provider."""
    name = f"{semconv.OP_RETRIEVAL} {source}" if source else semconv.OP_RETRIEVAL
    inv = Invocation(semconv.OP_RETRIEVAL, "", name=name)
    del inv.attributes[semconv.PROVIDER]
    inv.attributes[DB_SYSTEM_NAME] = system
    inv.attributes[DB_OPERATION_NAME] = operation
    if source:
        inv.attributes[semconv.DATA_SOURCE_ID] = source
        inv.attributes[DB_COLLECTION_NAME] = source
    return inv


def inside_own_query(system: str) -> bool:
    """True while a query of ``system`` is already traced (a wrapped method calling another)."""
    attrs = getattr(trace.get_current_span(), "attributes", None)
    return bool(
        attrs
        and attrs.get(semconv.OPERATION) == semconv.OP_RETRIEVAL
        and attrs.get(DB_SYSTEM_NAME) == system
    )


class RetrievalAdapter(ABC):
    """The ``_wrap`` Adapter shape for one vector-store query method.

    Subclasses set ``system`` and implement ``request`` (fill the invocation, return the
    query texts, if any) and ``documents`` (the result's documents as ``{"id", "score",
    "content"?}`` dicts). The result the app receives is always the SDK's own object."""

    system = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def capture(self) -> bool:
        return self.settings.capture.any

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call | None:
        if inside_own_query(self.system):
            return None
        inv = self.request(instance, args, kwargs)
        if inv is None:
            return None
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        try:
            docs = self.documents(call, result)
            if docs is not None:
                record_documents(call.inv, docs, self.capture)
        except Exception as exc:
            log_once(f"{type(self).__name__} documents", exc)
        return result

    def stream(self, call: Call, result: Any) -> None:
        return None

    @abstractmethod
    def request(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Invocation | None:
        """The store's query as a ``retrieval`` invocation; None leaves it untraced."""

    @abstractmethod
    def documents(self, call: Call, result: Any) -> list[dict[str, Any]] | None:
        """The returned records as ``{"id", "score", "content"?}`` dicts, best first."""

    def query_text(self, inv: Invocation, texts: list[str]) -> None:
        """The query text (several queries: a JSON list of them), under content capture."""
        texts = [t for t in texts if isinstance(t, str)]
        if not texts or not self.capture:
            return
        value = texts[0] if len(texts) == 1 else json.dumps(texts, ensure_ascii=False)
        inv.attributes[semconv.RETRIEVAL_QUERY_TEXT] = value


def record_documents(inv: Invocation, docs: list[dict[str, Any]], capture: bool) -> None:
    """Documents on the span: with their text under content capture, else ids and scores."""
    if not capture:
        docs = [{k: v for k, v in d.items() if k != "content"} for d in docs]
    inv.attributes[semconv.RETRIEVAL_DOCUMENTS] = documents_json(docs)


# where RAG apps keep a record's text in its payload / metadata (LangChain: page_content)
TEXT_FIELDS = ("text", "content", "document", "page_content", "chunk")


def payload_text(payload: Any) -> str | None:
    """A stored record's text: the first string among ``TEXT_FIELDS`` of its payload."""
    if not isinstance(payload, dict):
        return None
    for key in TEXT_FIELDS:
        value = payload.get(key)
        if isinstance(value, str):
            return value
    return None
