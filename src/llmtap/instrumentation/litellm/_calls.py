"""LiteLLM calls into the neutral invocation: chat completions, text completions, embeddings.

LiteLLM answers in the OpenAI format whatever the provider (``ModelResponse``,
``TextCompletionResponse``, ``EmbeddingResponse``, stream chunks shaped like OpenAI's), so the
OpenAI adapters' translation is reused; only the request side differs: the provider comes from
LiteLLM's own resolution, per call, and nothing is injected into the request.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once, suppressed
from llmtap.instrumentation._wrap import Call, async_wrapper, sync_wrapper
from llmtap.instrumentation.litellm import _providers as providers
from llmtap.instrumentation.openai import _chat as chat
from llmtap.instrumentation.openai import _completions as completions
from llmtap.instrumentation.openai import _embeddings as embeddings
from llmtap.pipeline import tokens

# The invocation of the LiteLLM call in progress: the calls LiteLLM makes inside it (an
# ``acompletion``'s ``completion``, a Router's attempt on one deployment, a retry or fallback)
# are no spans of their own; each tells the outer invocation which provider it reached.
_outer: contextvars.ContextVar[list[Invocation] | None] = contextvars.ContextVar(
    "llmtap_litellm_outer", default=None
)


def _fold(args: tuple, kwargs: dict[str, Any], names: tuple[str, ...]) -> tuple[tuple, dict]:
    """Positional arguments as the keywords they bind to (LiteLLM's functions take both), so
    the request is read in one place; the call goes on with the same values."""
    if not args or len(args) > len(names) or any(n in kwargs for n in names[: len(args)]):
        return args, dict(kwargs)
    return (), {**dict(zip(names, args, strict=False)), **kwargs}


def _start_attributes(router: bool, model: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Provider and server of a call. A Router's model group names no provider (LiteLLM's
    resolution would only fail, loudly): its attempt tells, through ``_amend``."""
    if router:
        return {}
    return providers.call_attributes(model, kwargs)


def _record(inv: Invocation) -> None:
    outer = _outer.get()
    if outer is not None:
        outer.append(inv)


def _amend(args: tuple, kwargs: dict[str, Any]) -> None:
    """An inner LiteLLM call (suppressed): the outer invocation takes its provider and server."""
    outer = _outer.get()
    if not outer:
        return
    inv = outer[-1]
    if inv.ended:
        return
    try:
        model = kwargs.get("model", args[0] if args else None)
        found = providers.call_attributes(model, kwargs)
        if inv.attributes.get(semconv.PROVIDER) == found[semconv.PROVIDER] and all(
            inv.attributes.get(k) == v for k, v in found.items()
        ):
            return
        # existing keys keep their place (the span already has them; set again here), new
        # keys go last and are set when the span ends
        inv.attributes.update(found)
        span = inv.span
        if span is not None and inv.own_span and span.is_recording():
            span.set_attributes(found)
    except Exception as exc:
        log_once("LiteLLM provider of an inner call", exc)


def _usage(usage: Any) -> dict[str, int]:
    """OpenAI-shaped usage, plus the cache writes LiteLLM reports for Anthropic and others."""
    from llmtap.instrumentation.openai import _common as common

    out = common.usage_attributes(usage)
    if usage is None:
        return out
    get = usage.get if isinstance(usage, dict) else lambda k, d=None: getattr(usage, k, d)
    created = get("cache_creation_input_tokens")
    if not created:
        details = get("prompt_tokens_details")
        if details is not None:
            created = (
                details.get("cache_creation_tokens")
                if isinstance(details, dict)
                else getattr(details, "cache_creation_tokens", None)
            )
    if isinstance(created, int) and not isinstance(created, bool) and created > 0:
        out[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS] = created
    return out


# chat ---------------------------------------------------------------------------------------


class ChatAccumulator(chat.ChatAccumulator):
    def finish(self, inv: Invocation) -> None:
        super().finish(inv)
        if self.usage is not None:
            inv.attributes.update(_usage(self.usage))


class ChatAdapter(chat.ChatAdapter):
    """``litellm.completion`` / ``acompletion``, and the Router's (``model`` is then the model
    group the app named; the deployment's provider comes from the attempt)."""

    openai_attributes = False  # LiteLLM fills OpenAI's fields for every provider

    def __init__(self, settings: Settings, router: bool = False) -> None:
        super().__init__(settings)
        self.router = router

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        args, kwargs = _fold(args, kwargs, ("model", "messages"))
        kwargs = parts.materialize(kwargs, "messages", "tools", "functions")
        model = kwargs.get("model")
        name = model if isinstance(model, str) else None
        inv = Invocation(semconv.OP_CHAT, providers.UNKNOWN, name)
        attrs = inv.attributes
        attrs.update(_start_attributes(self.router, model, kwargs))
        stream = kwargs.get("stream") is True
        attrs[semconv.REQUEST_STREAM] = stream
        chat.request_attributes(kwargs, attrs, False)
        if self.settings.capture.any:
            inv.input_messages = chat.input_messages(kwargs.get("messages"))
            inv.tool_definitions = chat.tool_definitions(
                kwargs.get("tools"), kwargs.get("functions")
            )
        tokenizer_model = _bare(name)
        if stream and self.settings.estimate_stream_usage and chat._wants_no_usage(kwargs):
            tokens.prepare(tokenizer_model)
        _record(inv)
        options = chat.ChatOptions(kwargs.get("messages"), tokenizer_model, False, False)
        return Call(inv, args, kwargs, options)

    def complete(self, call: Call, result: Any) -> Any:
        result = super().complete(call, result)
        call.inv.attributes.update(_usage(getattr(result, "usage", None)))
        return result

    def stream(self, call: Call, result: Any) -> ChatAccumulator | None:
        if chat.is_stream(result):
            return ChatAccumulator(self.settings, call.options)
        return None


def _bare(model: str | None) -> str | None:
    """The model without LiteLLM's ``provider/`` prefix (what a tokenizer knows it by)."""
    if model and "/" in model:
        return model.rsplit("/", 1)[1]
    return model


# text completion ----------------------------------------------------------------------------


class TextCompletionAdapter(completions.CompletionsAdapter):
    """``litellm.text_completion`` / ``atext_completion``."""

    openai_attributes = False

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        args, kwargs = _fold(args, kwargs, ("prompt", "model"))
        kwargs = parts.materialize(kwargs, "prompt")
        model = kwargs.get("model") or kwargs.get("engine")
        name = model if isinstance(model, str) else None
        inv = Invocation(semconv.OP_TEXT_COMPLETION, providers.UNKNOWN, name)
        attrs = inv.attributes
        attrs.update(providers.call_attributes(model, kwargs))
        stream = kwargs.get("stream") is True
        attrs[semconv.REQUEST_STREAM] = stream
        chat.request_attributes(kwargs, attrs, False)
        prompts = completions._prompts(kwargs.get("prompt"))
        if self.settings.capture.any:
            inv.input_messages = [
                parts.message("user", [completions._prompt_part(p)]) for p in prompts
            ]
        if stream and self.settings.estimate_stream_usage and chat._wants_no_usage(kwargs):
            tokens.prepare(_bare(name))
        _record(inv)
        options = completions.CompletionsOptions(prompts, _bare(name), False, False)
        return Call(inv, args, kwargs, options)


# embeddings ---------------------------------------------------------------------------------


class EmbeddingAdapter(embeddings.EmbeddingsAdapter):
    """``litellm.embedding`` / ``aembedding``, and the Router's."""

    def __init__(self, settings: Settings, router: bool = False) -> None:
        super().__init__(settings)
        self.router = router

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        args, kwargs = _fold(args, kwargs, ("model", "input"))
        model = kwargs.get("model")
        name = model if isinstance(model, str) else None
        inv = Invocation(semconv.OP_EMBEDDINGS, providers.UNKNOWN, name)
        attrs = inv.attributes
        attrs.update(_start_attributes(self.router, model, kwargs))
        fmt = kwargs.get("encoding_format")
        if _client.given(fmt) and fmt:
            attrs[semconv.REQUEST_ENCODING_FORMATS] = [str(fmt)]
        dims = kwargs.get("dimensions")
        if _client.given(dims) and isinstance(dims, int):
            attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = int(dims)
        _record(inv)
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        result = super().complete(call, result)
        attrs = call.inv.attributes
        data = getattr(result, "data", None)
        if data and semconv.EMBEDDINGS_DIMENSION_COUNT not in attrs:
            first = data[0]  # LiteLLM's items are plain dicts
            vector = first.get("embedding") if isinstance(first, dict) else None
            if isinstance(vector, list):
                attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
        return result


# wrappers -----------------------------------------------------------------------------------


def litellm_wrapper(telemetry: Telemetry, adapter: Any, *, is_async: bool) -> Callable[..., Any]:
    """The generic lifecycle, plus: an inner call (suppressed) amends the outer invocation, and
    an outer call makes itself the invocation inner calls amend."""
    inner = (async_wrapper if is_async else sync_wrapper)(telemetry, adapter)

    if is_async:

        async def async_call(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
            if suppressed():
                _amend(args, kwargs)
                return await wrapped(*args, **kwargs)
            token = _outer.set([])
            try:
                return await inner(wrapped, instance, args, kwargs)
            finally:
                _outer.reset(token)

        return async_call

    def sync_call(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        if suppressed():
            _amend(args, kwargs)
            return wrapped(*args, **kwargs)
        token = _outer.set([])
        try:
            return inner(wrapped, instance, args, kwargs)
        finally:
            _outer.reset(token)

    return sync_call


def adapters(settings: Settings) -> dict[str, Any]:
    return {
        "chat": ChatAdapter(settings),
        "text": TextCompletionAdapter(settings),
        "embedding": EmbeddingAdapter(settings),
        "router_chat": ChatAdapter(settings, router=True),
        "router_embedding": EmbeddingAdapter(settings, router=True),
    }
