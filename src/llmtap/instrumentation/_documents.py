"""Documents of a retrieval or rerank step as ``gen_ai.retrieval.documents`` JSON.

Shared by the app's own steps (``llmtap.retrieval`` / ``llmtap.rerank``) and the adapters of
provider rerank APIs, so both record the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def document(doc: Any) -> dict[str, Any]:
    """One document: ``id`` and ``score``, and ``content`` when given."""
    if not isinstance(doc, dict):
        doc = {"id": str(getattr(doc, "id", "")), "content": str(doc)}
    out = {"id": str(doc.get("id", "")), "score": float(doc.get("score", 0.0))}
    if "content" in doc:
        out["content"] = doc["content"]
    return out


def documents_json(docs: Iterable[Any]) -> str:
    """The JSON the ``gen_ai.retrieval.documents`` attribute holds."""
    return json.dumps([document(d) for d in docs], ensure_ascii=False, default=str)
