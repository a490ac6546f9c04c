"""``Collection.query``: the request's texts and ``n_results``, the result's documents."""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import urlsplit

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._retrieval import RetrievalAdapter, retrieval_invocation
from llmtap.instrumentation._wrap import Call

_SIGNATURES: dict[type, inspect.Signature | None] = {}


def _arguments(instance: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name (positions differ between Chroma releases)."""
    if not args:
        return kwargs
    cls = type(instance)
    if cls not in _SIGNATURES:
        try:
            _SIGNATURES[cls] = inspect.signature(cls.query)
        except (TypeError, ValueError):
            _SIGNATURES[cls] = None
    signature = _SIGNATURES[cls]
    if signature is None:
        return kwargs
    try:
        return dict(signature.bind_partial(instance, *args, **kwargs).arguments)
    except TypeError:
        return kwargs


def _rows(value: Any) -> list[Any]:
    """One row per query (Chroma answers lists of lists); a missing field is no rows."""
    return list(value) if value is not None else []


def _server(instance: Any) -> tuple[str | None, int | None]:
    """The Chroma server of an HTTP client's collection (``_api_url``); none in-process."""
    url = getattr(getattr(instance, "_client", None), "_api_url", None)
    if not isinstance(url, str):
        return None, None
    parts = urlsplit(url)
    return parts.hostname, parts.port


class QueryAdapter(RetrievalAdapter):
    system = "chroma"

    def request(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Invocation | None:
        named = _arguments(instance, args, kwargs)
        inv = retrieval_invocation(self.system, getattr(instance, "name", None), "query")
        address, port = _server(instance)
        if address:
            inv.attributes[semconv.SERVER_ADDRESS] = address
            if port:
                inv.attributes[semconv.SERVER_PORT] = port
        n_results = named.get("n_results", 10)
        if isinstance(n_results, int):
            inv.attributes[semconv.REQUEST_TOP_K] = float(n_results)
        texts = named.get("query_texts")
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(texts, list):
            self.query_text(inv, texts)
        return inv

    def documents(self, call: Call, result: Any) -> list[dict[str, Any]] | None:
        if not isinstance(result, dict) or result.get("ids") is None:
            return None
        ids = _rows(result.get("ids"))
        distances = _rows(result.get("distances"))
        texts = _rows(result.get("documents"))
        docs = []
        for q, row in enumerate(ids):
            scores = distances[q] if q < len(distances) and distances[q] is not None else []
            contents = texts[q] if q < len(texts) and texts[q] is not None else []
            for i, doc_id in enumerate(row):
                doc: dict[str, Any] = {"id": doc_id, "score": scores[i] if i < len(scores) else 0.0}
                if i < len(contents) and contents[i] is not None:
                    doc["content"] = contents[i]
                docs.append(doc)
        return docs
