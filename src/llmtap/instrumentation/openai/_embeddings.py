"""OpenAI Embeddings: request and response into the neutral invocation."""

from __future__ import annotations

from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.openai import _common as common


class EmbeddingsAdapter:
    provider: str | None = None  # set by another provider's SDK on this wire format

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        model = kwargs.get("model")
        model = model if isinstance(model, str) else None
        inv = Invocation(semconv.OP_EMBEDDINGS, self.provider or "openai", model)
        attrs = inv.attributes
        attrs.update(common.client_attributes(instance, self.provider))
        fmt = kwargs.get("encoding_format")
        if _client.given(fmt):
            attrs[semconv.REQUEST_ENCODING_FORMATS] = [str(fmt)]
        dims = kwargs.get("dimensions")
        if _client.given(dims):
            attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = int(dims)
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        attrs = call.inv.attributes
        model = getattr(result, "model", None)
        if isinstance(model, str) and model:
            attrs[semconv.RESPONSE_MODEL] = model
        usage = common.usage_attributes(getattr(result, "usage", None))
        usage.pop(semconv.USAGE_OUTPUT_TOKENS, None)
        attrs.update(usage)
        data = getattr(result, "data", None)
        if data and semconv.EMBEDDINGS_DIMENSION_COUNT not in attrs:
            vector = getattr(data[0], "embedding", None)
            if isinstance(vector, list):
                attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
        return result

    def stream(self, call: Call, result: Any) -> None:
        return None
