"""What every Cohere adapter needs: provider identity, server address, usage, finish reasons."""

from __future__ import annotations

import contextlib
import weakref
from typing import Any
from urllib.parse import urlsplit

from llmtap import semconv

PROVIDER = "cohere"

_cache: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()

# Cohere's finish reasons as the GenAI semconv values (output messages and
# ``gen_ai.response.finish_reasons`` alike); an unknown one is kept, lower-cased.
FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_call",
    "ERROR": "error",
    "ERROR_TOXIC": "content_filter",
    "ERROR_LIMIT": "length",
    "USER_CANCEL": "error",
    "TIMEOUT": "error",
}
# Finish reasons that mean the generation failed (the call itself returned).
FAILED = frozenset({"ERROR", "TIMEOUT"})


def get(obj: Any, key: str) -> Any:
    """A field of an SDK model or of a plain dict."""
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _wrapper(resource: Any) -> Any:
    """The SDK's client wrapper (base URL, headers) behind a ``V2Client`` / ``ClientV2``."""
    found = getattr(resource, "_client_wrapper", None)
    if found is None:
        # ``Client().v2`` holds it in its raw client only (``ClientV2`` in both)
        found = getattr(getattr(resource, "_raw_client", None), "_client_wrapper", None)
    return found


def client_attributes(resource: Any) -> dict[str, Any]:
    """Provider name and server address of the client behind ``resource`` (cached per client)."""
    wrapper = _wrapper(resource)
    if wrapper is None:
        return {semconv.PROVIDER: PROVIDER}
    with contextlib.suppress(KeyError, TypeError):
        return _cache[wrapper]
    attrs: dict[str, Any] = {semconv.PROVIDER: PROVIDER}
    base_url = getattr(wrapper, "get_base_url", None)
    url = urlsplit(str(base_url() if callable(base_url) else ""))
    if url.hostname:
        attrs[semconv.SERVER_ADDRESS] = url.hostname
        attrs[semconv.SERVER_PORT] = url.port or (443 if url.scheme == "https" else 80)
    with contextlib.suppress(TypeError):
        _cache[wrapper] = attrs
    return attrs


def model_of(kwargs: dict[str, Any]) -> str | None:
    model = kwargs.get("model")
    return model if isinstance(model, str) and model else None


def _count(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


def search_units(meta: Any) -> dict[str, int]:
    """``llmtap.usage.search_units`` from a rerank response's ``meta.billed_units``."""
    units = _count(get(get(meta, "billed_units"), "search_units"))
    return {semconv.LLMTAP_USAGE_SEARCH_UNITS: units} if units is not None and units >= 0 else {}


def usage_attributes(usage: Any, *, output: bool = True) -> dict[str, int]:
    """Semconv token attributes of a Cohere ``usage`` (chat) or ``meta`` (embed) object.

    ``tokens`` counts what the model read and wrote (prompt template included), which is
    what ``gen_ai.usage.*`` means; ``billed_units`` (what Cohere bills) stands in when a
    response has no ``tokens``.
    """
    if usage is None:
        return {}
    tokens, billed = get(usage, "tokens"), get(usage, "billed_units")
    out: dict[str, int] = {}
    keys = [("input_tokens", semconv.USAGE_INPUT_TOKENS)]
    if output:
        keys.append(("output_tokens", semconv.USAGE_OUTPUT_TOKENS))
    for name, key in keys:
        value = _count(get(tokens, name)) if tokens is not None else None
        if value is None and billed is not None:
            value = _count(get(billed, name))
        if value is not None:
            out[key] = value
    cached = _count(get(usage, "cached_tokens"))
    if cached:
        out[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = cached
    return out


def finish_reason(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    return FINISH_REASONS.get(raw, raw.lower())


def finish_attributes(attrs: dict[str, Any], raw: Any) -> None:
    reason = finish_reason(raw)
    if reason is None:
        return
    attrs[semconv.RESPONSE_FINISH_REASONS] = [reason]
    if raw in FAILED:
        attrs.setdefault(semconv.ERROR_TYPE, raw)


def response_id(attrs: dict[str, Any], result: Any) -> None:
    value = get(result, "id")
    if isinstance(value, str) and value:
        attrs[semconv.RESPONSE_ID] = value


def given(value: Any) -> bool:
    """False for None and ``...``, the SDK's OMIT (what the raw client receives for unset)."""
    return value is not None and value is not Ellipsis
