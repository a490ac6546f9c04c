"""Cohere v2 Embed: request and response into the neutral invocation."""

from __future__ import annotations

from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.cohere import _common as common
from llmtap.instrumentation.cohere._common import get

# (field, values per dimension): binary embeddings pack 8 dimensions into each value;
# base64 strings are left out (their length depends on the type they encode)
_VECTOR_FIELDS = (("float_", 1), ("float", 1), ("int8", 1), ("uint8", 1), ("binary", 8))
_PACKED = (("ubinary", 8),)


class EmbedAdapter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        inv = Invocation(semconv.OP_EMBEDDINGS, common.PROVIDER, common.model_of(kwargs))
        attrs = inv.attributes
        attrs.update(common.client_attributes(instance))
        types = kwargs.get("embedding_types")
        if common.given(types) and types and not isinstance(types, str):
            types = list(types)
            kwargs = {**kwargs, "embedding_types": types}
            attrs[semconv.REQUEST_ENCODING_FORMATS] = [str(t) for t in types]
        _client.set_number(
            attrs, semconv.EMBEDDINGS_DIMENSION_COUNT, kwargs.get("output_dimension"), int
        )
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        attrs = call.inv.attributes
        common.response_id(attrs, result)
        attrs.update(common.usage_attributes(get(result, "meta"), output=False))
        if semconv.EMBEDDINGS_DIMENSION_COUNT not in attrs:
            dims = dimension_count(get(result, "embeddings"))
            if dims:
                attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = dims
        return result

    def stream(self, call: Call, result: Any) -> None:
        return None


def dimension_count(embeddings: Any) -> int | None:
    """The length of the first vector, whatever the response's shape (by type or floats)."""
    if isinstance(embeddings, list):  # embeddings_floats: a list of vectors
        first = embeddings[0] if embeddings else None
        return len(first) if isinstance(first, list) else None
    for name, per_value in (*_VECTOR_FIELDS, *_PACKED):
        vectors = get(embeddings, name)
        if isinstance(vectors, list) and vectors and isinstance(vectors[0], list):
            return len(vectors[0]) * per_value
    return None
