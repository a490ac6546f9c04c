"""Together on the OpenAI adapters (the provider's name, no ``openai.*`` attributes, the
usage its streams always end with, completion chunks' top-level finish reason), and rerank.
"""

from __future__ import annotations

import json
from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._documents import documents_json
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._stream import is_stream
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.openai import _common as common
from llmtap.instrumentation.openai._chat import ChatAdapter
from llmtap.instrumentation.openai._completions import CompletionsAccumulator, CompletionsAdapter
from llmtap.instrumentation.openai._embeddings import EmbeddingsAdapter

PROVIDER = "together_ai"
OP_RERANK = "rerank"


class TogetherChatAdapter(ChatAdapter):
    provider = PROVIDER
    openai_attributes = False
    stream_usage = "sent"


class TogetherCompletionsAdapter(CompletionsAdapter):
    provider = PROVIDER
    openai_attributes = False
    stream_usage = "sent"

    def stream(self, call: Call, result: Any) -> TogetherCompletionsAccumulator | None:
        if is_stream(result):
            return TogetherCompletionsAccumulator(self.settings, call.options)
        return None


class TogetherCompletionsAccumulator(CompletionsAccumulator):
    """A completion stream whose chunks carry the finish reason at the top level."""

    __slots__ = ()

    def add(self, chunk: Any) -> bool:
        shown = super().add(chunk)
        finish = getattr(chunk, "finish_reason", None)
        if isinstance(finish, str) and finish:
            for choice in getattr(chunk, "choices", None) or ():
                index = getattr(choice, "index", None)
                index = index if isinstance(index, int) else 0
                self.texts.setdefault(index, [])
                self.finishes.setdefault(index, finish)
            if not getattr(chunk, "choices", None):
                self.texts.setdefault(0, [])
                self.finishes.setdefault(0, finish)
        return shown


class TogetherEmbeddingsAdapter(EmbeddingsAdapter):
    provider = PROVIDER


# rerank -------------------------------------------------------------------------------------


class TogetherRerankAdapter:
    """``rerank.create`` as a ``rerank`` span, the shape ``llmtap.rerank`` records: operation
    ``rerank``, ``llmtap.step.kind=rerank``, the provider, model and server of the call;
    under content capture the query as ``gen_ai.retrieval.query.text`` and the ranked
    documents as ``gen_ai.retrieval.documents`` (``id``: the document's index in the request,
    ``score``: its relevance score, ``content``: its text)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        kwargs = parts.materialize(kwargs, "documents")
        model = kwargs.get("model")
        inv = Invocation(OP_RERANK, PROVIDER, model if isinstance(model, str) else None)
        attrs = inv.attributes
        attrs[semconv.LLMTAP_STEP_KIND] = OP_RERANK
        attrs.update(common.client_attributes(instance, PROVIDER))
        query = kwargs.get("query")
        if self.settings.capture.any and isinstance(query, str):
            attrs[semconv.RETRIEVAL_QUERY_TEXT] = query
        return Call(inv, args, kwargs, (kwargs.get("documents"), kwargs.get("rank_fields")))

    def complete(self, call: Call, result: Any) -> Any:
        attrs = call.inv.attributes
        for key, name in ((semconv.RESPONSE_ID, "id"), (semconv.RESPONSE_MODEL, "model")):
            value = getattr(result, name, None)
            if isinstance(value, str) and value:
                attrs[key] = value
        usage = common.usage_attributes(getattr(result, "usage", None))
        usage.pop(semconv.USAGE_OUTPUT_TOKENS, None)
        attrs.update(usage)
        if self.settings.capture.any:
            documents, fields = call.options
            ranked = _ranked(getattr(result, "results", None), documents, fields)
            attrs[semconv.RETRIEVAL_DOCUMENTS] = documents_json(ranked)
        return result

    def stream(self, call: Call, result: Any) -> None:
        return None


def _ranked(results: Any, documents: Any, fields: Any) -> list[dict[str, Any]]:
    sent = list(documents) if isinstance(documents, list | tuple) else []
    out = []
    for item in results or ():
        index = getattr(item, "index", None)
        doc: dict[str, Any] = {
            "id": str(index),
            "score": getattr(item, "relevance_score", None) or 0.0,
        }
        if isinstance(index, int) and 0 <= index < len(sent):
            doc["content"] = _text(sent[index], fields)
        out.append(doc)
    return out


def _text(doc: Any, fields: Any) -> str:
    if isinstance(doc, str):
        return doc
    if isinstance(doc, dict):
        keys = [k for k in fields if k in doc] if isinstance(fields, list | tuple) else []
        if keys:
            return " ".join(str(doc[k]) for k in keys)
    return json.dumps(parts.as_dict(doc), ensure_ascii=False, default=str)
