"""Cohere v2 Rerank as a ``rerank`` step, recorded as ``llmtap.rerank`` records its own.

The span is ``rerank {model}`` (operation ``rerank``, ``llmtap.step.kind=rerank``) with the
provider, model and server of the call, and the search units Cohere billed
(``llmtap.usage.search_units``, priced by the cost stage); under content capture the query is
``gen_ai.retrieval.query.text`` and the ranked documents ``gen_ai.retrieval.documents``
(``id`` is the document's index in the request, ``score`` its relevance score).
"""

from __future__ import annotations

import json
from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._documents import documents_json
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.cohere import _common as common
from llmtap.instrumentation.cohere._common import get

OP_RERANK = "rerank"


def _text(doc: Any) -> str:
    if isinstance(doc, str):
        return doc
    text = get(doc, "text")
    if isinstance(text, str):
        return text
    return json.dumps(parts.as_dict(doc), ensure_ascii=False, default=str)


class RerankAdapter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        kwargs = parts.materialize(kwargs, "documents")
        model = common.model_of(kwargs)
        inv = Invocation(OP_RERANK, common.PROVIDER, model)
        attrs = inv.attributes
        attrs[semconv.LLMTAP_STEP_KIND] = OP_RERANK
        attrs.update(common.client_attributes(instance))
        query = kwargs.get("query")
        if self.settings.capture.any and isinstance(query, str):
            attrs[semconv.RETRIEVAL_QUERY_TEXT] = query
        return Call(inv, args, kwargs, kwargs.get("documents"))

    def complete(self, call: Call, result: Any) -> Any:
        attrs = call.inv.attributes
        common.response_id(attrs, result)
        attrs.update(common.search_units(get(result, "meta")))
        if self.settings.capture.any:
            attrs[semconv.RETRIEVAL_DOCUMENTS] = documents_json(
                _ranked(get(result, "results"), call.options)
            )
        return result

    def stream(self, call: Call, result: Any) -> None:
        return None


def _ranked(results: Any, documents: Any) -> list[dict[str, Any]]:
    sent = list(documents) if isinstance(documents, list | tuple) else []
    out = []
    for item in results or ():
        index = get(item, "index")
        doc: dict[str, Any] = {"id": str(index), "score": get(item, "relevance_score") or 0.0}
        if isinstance(index, int) and 0 <= index < len(sent):
            doc["content"] = _text(sent[index])
        out.append(doc)
    return out
