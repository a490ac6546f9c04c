"""Qdrant queries: the collection, the limit and the query text in; scored points out."""

from __future__ import annotations

from typing import Any

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._retrieval import (
    RetrievalAdapter,
    payload_text,
    retrieval_invocation,
)
from llmtap.instrumentation._wrap import Call


def _argument(args: tuple, kwargs: dict[str, Any], name: str, position: int) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else None


def _text(query: Any) -> str | None:
    """The text of an inference query (``models.Document(text=...)``); vectors have none."""
    text = getattr(query, "text", None)
    if isinstance(text, str) and type(query).__name__ == "Document":
        return text
    return None


def _point(point: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": str(point.id), "score": getattr(point, "score", None) or 0.0}
    text = payload_text(getattr(point, "payload", None))
    if text is not None:
        doc["content"] = text
    return doc


class _QdrantAdapter(RetrievalAdapter):
    system = "qdrant"
    operation = ""

    def _invocation(self, args: tuple, kwargs: dict[str, Any], limit: Any) -> Invocation:
        collection = _argument(args, kwargs, "collection_name", 0)
        inv = retrieval_invocation(
            self.system, collection if isinstance(collection, str) else None, self.operation
        )
        if isinstance(limit, int):
            inv.attributes[semconv.REQUEST_TOP_K] = float(limit)
        return inv


class PointsAdapter(_QdrantAdapter):
    """``query_points(collection_name, query, ..., limit=10)`` -> ``QueryResponse.points``."""

    operation = "query_points"

    def request(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Invocation | None:
        inv = self._invocation(args, kwargs, kwargs.get("limit", 10))
        text = _text(_argument(args, kwargs, "query", 1))
        if text is not None:
            self.query_text(inv, [text])
        return inv

    def documents(self, call: Call, result: Any) -> list[dict[str, Any]] | None:
        points = getattr(result, "points", None)
        return None if points is None else [_point(p) for p in points]


class SearchAdapter(_QdrantAdapter):
    """``search(collection_name, query_vector, ..., limit=10)`` -> scored points."""

    operation = "search"

    def request(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Invocation | None:
        return self._invocation(args, kwargs, kwargs.get("limit", 10))

    def documents(self, call: Call, result: Any) -> list[dict[str, Any]] | None:
        return [_point(p) for p in result] if isinstance(result, list) else None


class BatchAdapter(_QdrantAdapter):
    """``query_batch_points(collection_name, requests)``: one span, the requests' documents
    in request order."""

    operation = "query_batch_points"

    def request(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Invocation | None:
        requests = _argument(args, kwargs, "requests", 1) or []
        first = requests[0] if requests else None
        limit = getattr(first, "limit", None)
        inv = self._invocation(args, kwargs, 10 if first is not None and limit is None else limit)
        texts = [t for t in (_text(getattr(r, "query", None)) for r in requests) if t]
        self.query_text(inv, texts)
        return inv

    def documents(self, call: Call, result: Any) -> list[dict[str, Any]] | None:
        if not isinstance(result, list):
            return None
        return [_point(p) for response in result for p in getattr(response, "points", [])]
