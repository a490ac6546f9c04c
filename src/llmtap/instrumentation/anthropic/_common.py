"""What every Anthropic adapter needs: provider identity, server address, usage, trace headers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context

from llmtap import semconv
from llmtap.instrumentation import _client
from llmtap.instrumentation._invocation import ACTIVE_KEY, log_once

_log = logging.getLogger("llmtap")

# Platform clients of SDKs that predate ``_gen_ai_provider_name``, by class name.
_CLASS_PROVIDERS = (("Bedrock", "aws.bedrock"), ("Vertex", "gcp.vertex_ai"))


def provider_for(client: Any) -> str:
    name = getattr(client, "_gen_ai_provider_name", None)
    if isinstance(name, str) and name:
        return name
    client_class = type(client).__name__
    for marker, provider in _CLASS_PROVIDERS:
        if marker in client_class:
            return provider
    return "anthropic"


def _identify(client: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {semconv.PROVIDER: provider_for(client)}
    # The SDK's own span would carry the conversation the client was configured with.
    conversation = _otel_options(client).get("conversation_id")
    if isinstance(conversation, str) and conversation:
        attrs[semconv.CONVERSATION_ID] = conversation
    return attrs


def client_attributes(resource: Any) -> dict[str, Any]:
    """Provider name, server address and conversation of the client behind a resource."""
    return _client.client_attributes(resource, _identify, "anthropic")


def _otel_options(client: Any) -> dict[str, Any]:
    """The client's resolved ``open_telemetry`` option ({} for SDKs without one)."""
    options = getattr(client, "_open_telemetry", None)
    return options if isinstance(options, dict) else {}


def get(obj: Any, key: str) -> Any:
    """A field of an SDK model or of a plain dict."""
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


# usage -----------------------------------------------------------------------------

_USAGE_FIELDS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
)


def usage_counts(usage: Any, into: dict[str, int] | None = None) -> dict[str, int]:
    """The non-null counts of an Anthropic usage object, laid over ``into``.

    A stream reports usage twice (``message_start`` and ``message_delta``); the later
    non-null value of each field wins.
    """
    counts = {} if into is None else into
    if usage is None:
        return counts
    for name in _USAGE_FIELDS:
        value = get(usage, name)
        if isinstance(value, int) and not isinstance(value, bool):
            counts[name] = value
    thinking = get(get(usage, "output_tokens_details"), "thinking_tokens")
    if isinstance(thinking, int) and not isinstance(thinking, bool):
        counts["thinking_tokens"] = thinking
    return counts


def usage_attributes(counts: dict[str, int]) -> dict[str, int]:
    """Semconv token attributes: Anthropic's ``input_tokens`` excludes cached tokens."""
    out: dict[str, int] = {}
    fresh = counts.get("input_tokens")
    read = counts.get("cache_read_input_tokens")
    written = counts.get("cache_creation_input_tokens")
    if fresh is not None or read is not None or written is not None:
        out[semconv.USAGE_INPUT_TOKENS] = (fresh or 0) + (read or 0) + (written or 0)
    if "output_tokens" in counts:
        out[semconv.USAGE_OUTPUT_TOKENS] = counts["output_tokens"]
    if read is not None:
        out[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = read
    if written is not None:
        out[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS] = written
    if "thinking_tokens" in counts:
        out[semconv.USAGE_REASONING_OUTPUT_TOKENS] = counts["thinking_tokens"]
    return out


# the SDK's own span and trace propagation ---------------------------------------------


def no_sdk_span(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wraps the SDK's ``start_api_call_span``: no SDK span for a call llmtap handles.

    ``None`` is the SDK's own "this call has no span" answer; it then sends no trace
    headers either, which ``propagating`` makes up for.
    """
    if otel_context.get_value(ACTIVE_KEY):
        return None
    return wrapped(*args, **kwargs)


def _inject() -> dict[str, str]:
    try:
        # Imported on first use: the module loads the propagators OTEL_PROPAGATORS names.
        from opentelemetry.propagate import inject

        carrier: dict[str, str] = {}
        inject(carrier)
        return carrier
    except Exception as exc:
        log_once("anthropic trace headers", exc)
        return {}


def trace_headers(kwargs: dict[str, Any], client: Any) -> dict[str, Any]:
    """``kwargs`` with the current trace context merged into ``extra_headers``.

    Headers the application set (per call or on the client) are never replaced; nothing is
    added when the client's ``open_telemetry`` option turns propagation off.
    """
    if _otel_options(client).get("propagation", True) is False:
        return kwargs
    carrier = _inject()
    if not carrier:
        return kwargs
    extra = kwargs.get("extra_headers")
    if extra is None:
        extra = {}
    elif not isinstance(extra, Mapping):
        return kwargs
    custom = getattr(client, "_custom_headers", None)
    taken = {str(k).lower() for k in extra}
    if isinstance(custom, Mapping):
        taken.update(str(k).lower() for k in custom)
    added = {k: v for k, v in carrier.items() if k.lower() not in taken}
    if not added:
        return kwargs
    return {**kwargs, "extra_headers": {**added, **extra}}


def propagating(wrapped: Callable, instance: Any) -> Callable:
    """``wrapped``, sending the current trace context while llmtap handles the call."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if otel_context.get_value(ACTIVE_KEY):
            try:
                kwargs = trace_headers(kwargs, getattr(instance, "_client", None))
            except Exception as exc:
                log_once("anthropic trace headers", exc)
        return wrapped(*args, **kwargs)

    return call


def traced(wrapper: Callable) -> Callable:
    """A core wrapper whose SDK call carries the trace context of llmtap's span."""

    def outer(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return wrapper(propagating(wrapped, instance), instance, args, kwargs)

    return outer
