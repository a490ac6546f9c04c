"""What every Mistral adapter needs: field access over SDK models and dicts, the server
address, usage, finish reasons, and standing in for the SDK's own span."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context

from llmtap import semconv
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import ACTIVE_KEY, log_once, status_code_name

PROVIDER = "mistral_ai"
# Mistral's finish reasons the shared table does not know: the model's context is full.
_FINISH = {"model_length": "length"}


def unset(value: Any) -> bool:
    """None, or the Speakeasy SDK's ``UNSET`` sentinel (a field the request or reply left out)."""
    return value is None or type(value).__name__ == "Unset"


def get(obj: Any, key: str) -> Any:
    """A field of an SDK model or of a plain dict; None when absent or unset."""
    if obj is None:
        return None
    value = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
    return None if unset(value) else value


def server_attributes(resource: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``server.address`` / ``server.port`` of the URL this call goes to (the per-call
    ``server_url`` first, else the client's)."""
    url = kwargs.get("server_url")
    if not isinstance(url, str) or not url:
        config = getattr(resource, "sdk_configuration", None)
        details = getattr(config, "get_server_details", None)
        url = details()[0] if callable(details) else None
    if not isinstance(url, str) or not url:
        return {}
    split = urlsplit(url)
    if not split.hostname:
        return {}
    port = split.port or (443 if split.scheme == "https" else 80)
    return {semconv.SERVER_ADDRESS: split.hostname, semconv.SERVER_PORT: port}


def error_type(error: BaseException) -> str | None:
    """The HTTP status code of the SDK's error for a reply (``SDKError`` stands for every
    status); None for anything else (a transport error keeps its class). The SDK raises
    ``HTTPValidationError`` for 422 answers only; before mistralai 1.5 it carries no
    response to read the status from."""
    code = status_code_name(error, "status_code") or status_code_name(
        getattr(error, "raw_response", None), "status_code"
    )
    if code is None and type(error).__name__ == "HTTPValidationError":
        return "422"
    return code


def finish_reason(raw: Any) -> str:
    """A Mistral finish reason as the semconv output message's ``finish_reason``."""
    raw = raw if isinstance(raw, str) else None
    return parts.finish_reason(_FINISH.get(raw or "", raw))


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def usage_attributes(usage: Any, *, output: bool = True) -> dict[str, int]:
    """Mistral usage (``prompt_tokens``, ``completion_tokens``, cached prompt tokens in
    ``prompt_tokens_details.cached_tokens`` or ``num_cached_tokens``) as semconv attributes."""
    if unset(usage):
        return {}
    out: dict[str, int] = {}
    prompt = _count(get(usage, "prompt_tokens"))
    if prompt is not None:
        out[semconv.USAGE_INPUT_TOKENS] = prompt
    completion = _count(get(usage, "completion_tokens"))
    if output and completion is not None:
        out[semconv.USAGE_OUTPUT_TOKENS] = completion
    cached = _count(get(get(usage, "prompt_tokens_details"), "cached_tokens"))
    if cached is None:
        cached = _count(get(usage, "num_cached_tokens"))
    if cached:
        out[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = cached
    reasoning = _count(get(get(usage, "completion_tokens_details"), "reasoning_tokens"))
    if output and reasoning:
        out[semconv.USAGE_REASONING_OUTPUT_TOKENS] = reasoning
    return out


# the SDK's own span ---------------------------------------------------------------------


def _inject(headers: Any) -> None:
    try:
        # Imported on first use: the module loads the propagators OTEL_PROPAGATORS names.
        from opentelemetry.propagate import inject

        inject(headers)
    except Exception as exc:
        log_once("mistralai trace headers", exc)


def no_sdk_span(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wraps the SDK's ``get_traced_request_and_span`` (its tracing hook's start of a GenAI
    span): while llmtap handles the call, no second span. The SDK would have sent its span's
    trace context; the request carries llmtap's instead."""
    if not otel_context.get_value(ACTIVE_KEY):
        return wrapped(*args, **kwargs)
    request = kwargs.get("request", args[4] if len(args) > 4 else None)
    enabled = kwargs.get("tracing_enabled", args[0] if args else False)
    if request is None:
        return wrapped(*args, **kwargs)
    if enabled:
        _inject(request.headers)
    return request, None
