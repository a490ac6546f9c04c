"""Mistral embeddings (``embeddings.create`` / ``create_async``) into the neutral invocation."""

from __future__ import annotations

from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.mistralai import _common as common
from llmtap.instrumentation.mistralai._common import get


class EmbeddingsAdapter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        model = kwargs.get("model")
        inv = Invocation(
            semconv.OP_EMBEDDINGS, common.PROVIDER, model if isinstance(model, str) else None
        )
        inv.error_namer = common.error_type
        attrs = inv.attributes
        attrs.update(common.server_attributes(instance, kwargs))
        fmt = kwargs.get("encoding_format")
        if not common.unset(fmt):
            attrs[semconv.REQUEST_ENCODING_FORMATS] = [str(getattr(fmt, "value", fmt))]
        dims = kwargs.get("output_dimension")
        if isinstance(dims, int) and not isinstance(dims, bool):
            attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = dims
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        attrs = call.inv.attributes
        for key, name in ((semconv.RESPONSE_ID, "id"), (semconv.RESPONSE_MODEL, "model")):
            value = get(result, name)
            if isinstance(value, str) and value:
                attrs[key] = value
        attrs.update(common.usage_attributes(get(result, "usage"), output=False))
        data = get(result, "data")
        if data and semconv.EMBEDDINGS_DIMENSION_COUNT not in attrs:
            vector = get(data[0], "embedding")
            if isinstance(vector, list):
                attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
        return result

    def stream(self, call: Call, result: Any) -> None:
        return None
