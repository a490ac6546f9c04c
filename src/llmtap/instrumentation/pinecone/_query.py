"""``Index.query``: the index (from its host), ``top_k`` and namespace in; matches out."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._retrieval import (
    DB_NAMESPACE,
    RetrievalAdapter,
    payload_text,
    retrieval_invocation,
)
from llmtap.instrumentation._wrap import Call

# an index's data-plane host: {index name}-{project id}.svc.{environment}.pinecone.io
_PINECONE_HOST = re.compile(r"^(?P<name>.+)-[a-z0-9]+\.svc\.")


def _host(instance: Any) -> str | None:
    host = getattr(instance, "_host", None)  # 10.x
    if not isinstance(host, str):
        host = getattr(getattr(instance, "_config", None), "host", None)  # 7.x - 9.x
    return host if isinstance(host, str) and host else None


def _where(host: str | None) -> tuple[str | None, str | None, int | None]:
    """(index name, server address, server port) from the index host."""
    if host is None:
        return None, None, None
    parts = urlsplit(host if "://" in host else f"https://{host}")
    address, port = parts.hostname, parts.port
    if address is None:
        return None, None, None
    found = _PINECONE_HOST.match(address)
    if found is not None:
        return found.group("name"), address, port
    return (f"{address}:{port}" if port else address), address, port


class QueryAdapter(RetrievalAdapter):
    system = "pinecone"

    def request(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Invocation | None:
        name, address, port = _where(_host(instance))
        inv = retrieval_invocation(self.system, name, "query")
        top_k = kwargs.get("top_k")
        if isinstance(top_k, int):
            inv.attributes[semconv.REQUEST_TOP_K] = float(top_k)
        namespace = kwargs.get("namespace")
        if isinstance(namespace, str) and namespace:
            inv.attributes[DB_NAMESPACE] = namespace
        if address:
            inv.attributes[semconv.SERVER_ADDRESS] = address
            if port:
                inv.attributes[semconv.SERVER_PORT] = port
        return inv

    def documents(self, call: Call, result: Any) -> list[dict[str, Any]] | None:
        matches = getattr(result, "matches", None)
        if matches is None:
            return None
        docs = []
        for match in matches:
            doc: dict[str, Any] = {"id": match.id, "score": getattr(match, "score", None) or 0.0}
            text = payload_text(getattr(match, "metadata", None))
            if text is not None:
                doc["content"] = text
            docs.append(doc)
        return docs
