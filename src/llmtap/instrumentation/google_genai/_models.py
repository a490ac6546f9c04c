"""``Models`` / ``AsyncModels``: generate_content (one span per HTTP call), streams, embeddings."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import json
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation._invocation import (
    Invocation,
    Telemetry,
    log_once,
    status_code_name,
)
from llmtap.instrumentation._stream import AsyncStreamProxy, StreamState, is_stream
from llmtap.instrumentation._wrap import Call, async_wrapper, begin_call
from llmtap.instrumentation.google_genai import _content as gc
from llmtap.instrumentation.google_genai._content import get

GEMINI = "gcp.gemini"
VERTEX_AI = "gcp.vertex_ai"

# While an embed_content call runs: the usage its raw response carries (SDKs that parse the
# response into an EmbedContentResponse without usage_metadata drop it)
_raw_usage: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "llmtap_genai_embed_usage", default=None
)

_clients: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()

_NUMBERS = (
    (semconv.REQUEST_TEMPERATURE, "temperature", float),
    (semconv.REQUEST_TOP_P, "top_p", float),
    (semconv.REQUEST_TOP_K, "top_k", float),
    (semconv.REQUEST_MAX_TOKENS, "max_output_tokens", int),
    (semconv.REQUEST_SEED, "seed", int),
    (semconv.REQUEST_PRESENCE_PENALTY, "presence_penalty", float),
    (semconv.REQUEST_FREQUENCY_PENALTY, "frequency_penalty", float),
)


def client_attributes(models: Any) -> dict[str, Any]:
    """Provider (Gemini Developer API or Vertex AI) and server address, once per API client."""
    api = getattr(models, "_api_client", None)
    if api is None:
        return {semconv.PROVIDER: GEMINI}
    with contextlib.suppress(KeyError, TypeError):
        return _clients[api]
    attrs: dict[str, Any] = {
        semconv.PROVIDER: VERTEX_AI if getattr(api, "vertexai", False) else GEMINI
    }
    options = getattr(api, "_http_options", None)
    url = urlsplit(str(get(options, "base_url") or ""))
    if url.hostname:
        attrs[semconv.SERVER_ADDRESS] = url.hostname
        attrs[semconv.SERVER_PORT] = url.port or (443 if url.scheme == "https" else 80)
    with contextlib.suppress(TypeError):
        _clients[api] = attrs
    return attrs


def _begin(operation: str, instance: Any, kwargs: dict[str, Any]) -> Invocation:
    model = gc.model_id(kwargs.get("model"))
    attrs = client_attributes(instance)
    inv = Invocation(operation, attrs[semconv.PROVIDER], model)
    inv.attributes.update(attrs)
    inv.error_namer = error_type
    return inv


def error_type(error: BaseException) -> str | None:
    """The HTTP status code of the SDK's ``APIError`` (``ClientError`` covers every 4xx,
    ``ServerError`` every 5xx); None for anything else (a transport error keeps its class)."""
    if not type(error).__module__.startswith("google.genai"):
        return None
    return status_code_name(error, "code")


def request_attributes(config: Any, attrs: dict[str, Any]) -> None:
    if config is None:
        return
    for key, name, kind in _NUMBERS:
        _client.set_number(attrs, key, get(config, name), kind)
    count = get(config, "candidate_count")
    if isinstance(count, int) and not isinstance(count, bool) and count != 1:
        attrs[semconv.REQUEST_CHOICE_COUNT] = count
    stops = get(config, "stop_sequences")
    if stops and not isinstance(stops, str):
        attrs[semconv.REQUEST_STOP_SEQUENCES] = [str(s) for s in stops]
    mime = str(get(config, "response_mime_type") or "")
    schema = get(config, "response_schema") or get(config, "response_json_schema")
    if mime.startswith("application/json") or (schema is not None and not mime):
        attrs[semconv.OUTPUT_TYPE] = "json"
    elif mime.startswith("text/"):
        attrs[semconv.OUTPUT_TYPE] = "text"


def usage_attributes(usage: Any) -> dict[str, int]:
    """Gemini usage: the prompt count includes cached tokens; output counts thoughts too
    (as OpenAI's completion tokens include reasoning), which are also given apart."""
    out: dict[str, int] = {}
    if usage is None:
        return out

    def count(name: str) -> int | None:
        value = get(usage, name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        return None

    prompt, tool_prompt = count("prompt_token_count"), count("tool_use_prompt_token_count")
    if prompt is not None or tool_prompt is not None:
        out[semconv.USAGE_INPUT_TOKENS] = (prompt or 0) + (tool_prompt or 0)
    candidates, thoughts = count("candidates_token_count"), count("thoughts_token_count")
    if candidates is not None or thoughts is not None:
        out[semconv.USAGE_OUTPUT_TOKENS] = (candidates or 0) + (thoughts or 0)
    if thoughts is not None:
        out[semconv.USAGE_REASONING_OUTPUT_TOKENS] = thoughts
    cached = count("cached_content_token_count")
    if cached is not None:
        out[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = cached
    return out


def _response_fields(attrs: dict[str, Any], response: Any) -> None:
    for key, name in (
        (semconv.RESPONSE_ID, "response_id"),
        (semconv.RESPONSE_MODEL, "model_version"),
    ):
        value = get(response, name)
        if isinstance(value, str) and value:
            attrs[key] = value


def _has_calls(candidate: Any) -> bool:
    content = get(candidate, "content")
    return any(get(p, "function_call") is not None for p in get(content, "parts") or ())


def _blocked(response: Any) -> bool:
    return get(get(response, "prompt_feedback"), "block_reason") is not None


class GenerateContentAdapter:
    """``_generate_content`` / ``_generate_content_stream``: one request to the API each (the
    public methods loop over them for automatic function calling and continuation)."""

    def __init__(self, settings: Settings, *, streaming: bool = False) -> None:
        self.settings = settings
        self.streaming = streaming

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        inv = _begin(semconv.OP_GENERATE_CONTENT, instance, kwargs)
        attrs = inv.attributes
        attrs[semconv.REQUEST_STREAM] = self.streaming
        config = kwargs.get("config")
        request_attributes(config, attrs)
        if self.settings.capture.any:
            inv.input_messages = gc.input_messages(kwargs.get("contents"))
            inv.system_instructions = gc.system_instructions(get(config, "system_instruction"))
            inv.tool_definitions = gc.tool_definitions(get(config, "tools"))
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        inv = call.inv
        attrs = inv.attributes
        _response_fields(attrs, result)
        candidates = get(result, "candidates") or []
        reasons = [gc.finish_reason(get(c, "finish_reason"), _has_calls(c)) for c in candidates]
        reasons = [r for r in reasons if r]
        if not candidates and _blocked(result):
            reasons = ["content_filter"]
        if reasons:
            attrs[semconv.RESPONSE_FINISH_REASONS] = reasons
        attrs.update(usage_attributes(get(result, "usage_metadata")))
        if self.settings.capture.any:
            inv.output_messages = [gc.output_message(c) for c in candidates]
        return result

    def stream(self, call: Call, result: Any) -> StreamAccumulator | None:
        if self.streaming and is_stream(result):
            return StreamAccumulator(self.settings)
        return None


class _Candidate:
    __slots__ = ("calls", "finish", "parts")

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self.finish: Any = None
        self.calls = False

    def add(self, candidate: Any, capture: bool) -> None:
        reason = get(candidate, "finish_reason")
        if reason is not None:
            self.finish = reason
        self.calls = self.calls or _has_calls(candidate)
        if not capture:
            return
        for value in get(get(candidate, "content"), "parts") or ():
            p = gc.part(value)
            if p is None:
                continue
            last = self.parts[-1] if self.parts else None
            if (
                last is not None
                and p["type"] in ("text", "reasoning")
                and last["type"] == p["type"]
            ):
                last["content"] += p["content"]
            else:
                self.parts.append(dict(p))

    def reason(self) -> str | None:
        return gc.finish_reason(self.finish, self.calls)


class StreamAccumulator:
    """Chunks of ``GenerateContentResponse``: ids, running usage (the last one wins), text."""

    __slots__ = ("blocked", "candidates", "capture", "ids", "usage")

    def __init__(self, settings: Settings) -> None:
        self.capture = settings.capture.any
        self.ids: dict[str, Any] = {}
        self.usage: Any = None
        self.candidates: dict[int, _Candidate] = {}
        self.blocked = False

    def add(self, chunk: Any) -> bool:
        _response_fields(self.ids, chunk)
        usage = get(chunk, "usage_metadata")
        if usage is not None:
            self.usage = usage
        if _blocked(chunk):
            self.blocked = True
        for position, candidate in enumerate(get(chunk, "candidates") or ()):
            index = get(candidate, "index")
            index = index if isinstance(index, int) else position
            self.candidates.setdefault(index, _Candidate()).add(candidate, self.capture)
        return True

    def finish(self, inv: Invocation) -> None:
        attrs = inv.attributes
        attrs.update(self.ids)
        ordered = [self.candidates[i] for i in sorted(self.candidates)]
        reasons = [r for r in (c.reason() for c in ordered) if r]
        if not ordered and self.blocked:
            reasons = ["content_filter"]
        if reasons:
            attrs[semconv.RESPONSE_FINISH_REASONS] = reasons
        attrs.update(usage_attributes(self.usage))
        if self.capture and ordered:
            failed = attrs.get(semconv.LLMTAP_STREAM_END) == "error"
            messages = []
            for candidate in ordered:
                msg = {"role": "assistant", "parts": candidate.parts}
                reason = candidate.reason()
                msg["finish_reason"] = (
                    "error" if failed and not reason else gc.message_finish(reason)
                )
                messages.append(msg)
            inv.output_messages = messages


class EmbedContentAdapter:
    """``embed_content``: one ``embeddings`` span (the SDK sends one batch request)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        inv = _begin(semconv.OP_EMBEDDINGS, instance, kwargs)
        dims = get(kwargs.get("config"), "output_dimensionality")
        if isinstance(dims, int) and not isinstance(dims, bool):
            inv.attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = dims
        holder: list[Any] = []
        return Call(inv, args, kwargs, (holder, _raw_usage.set(holder)))

    def complete(self, call: Call, result: Any) -> Any:
        attrs = call.inv.attributes
        embeddings = get(result, "embeddings") or []
        holder, token = call.options
        with contextlib.suppress(ValueError):  # another context: nothing to undo there
            _raw_usage.reset(token)
        tokens = get(get(result, "usage_metadata"), "prompt_token_count")
        if not isinstance(tokens, int) and holder:
            tokens = get(holder[-1], "promptTokenCount")
        if not isinstance(tokens, int):
            counts = [get(get(e, "statistics"), "token_count") for e in embeddings]
            counts = [c for c in counts if isinstance(c, int | float)]
            tokens = int(sum(counts)) if counts else None
        if tokens is not None:
            attrs[semconv.USAGE_INPUT_TOKENS] = tokens
        if embeddings and semconv.EMBEDDINGS_DIMENSION_COUNT not in attrs:
            values = get(embeddings[0], "values")
            if values:
                attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(values)
        return result

    def stream(self, call: Call, result: Any) -> None:
        return None


def async_stream_wrapper(telemetry: Telemetry, adapter: GenerateContentAdapter) -> Callable:
    """``AsyncModels._generate_content_stream``: a coroutine giving an async iterator in recent
    SDKs, an async generator function in older ones (called without ``await``)."""
    awaited = async_wrapper(telemetry, adapter)

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        if not inspect.isasyncgenfunction(wrapped):
            return awaited(wrapped, instance, args, kwargs)
        call = begin_call(telemetry, adapter, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*call.args, **call.kwargs)
        except BaseException as exc:
            telemetry.detach(call.inv)
            telemetry.fail(call.inv, exc)
            raise
        telemetry.detach(call.inv)
        try:
            acc = adapter.stream(call, result)
            if acc is not None:
                return AsyncStreamProxy(result, StreamState(telemetry, call.inv, acc))
        except Exception as exc:
            log_once("google-genai async stream", exc)
        telemetry.stop(call.inv)
        return result

    return wrapper


def _note_usage(response: Any) -> None:
    holder = _raw_usage.get()
    if holder is None:
        return
    try:
        usage = None
        if isinstance(response, dict):  # older SDKs: the decoded JSON body
            usage = response.get("usageMetadata")
        else:  # an SdkHttpResponse: the raw body
            body = getattr(response, "body", None)
            if isinstance(body, str) and '"usageMetadata"' in body:
                usage = json.loads(body).get("usageMetadata")
        if isinstance(usage, dict):
            holder.append(usage)
    except Exception as exc:
        log_once("google-genai embedding usage", exc)


def raw_usage_wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``BaseApiClient.request``: notes the raw usage of an embed_content call."""
    response = wrapped(*args, **kwargs)
    if _raw_usage.get() is not None:
        _note_usage(response)
    return response


def async_raw_usage_wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    if _raw_usage.get() is None:
        return wrapped(*args, **kwargs)

    async def run() -> Any:
        response = await wrapped(*args, **kwargs)
        _note_usage(response)
        return response

    return run()
