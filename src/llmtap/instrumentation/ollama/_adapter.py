"""Ollama: chat, generate and embed requests, responses and stream chunks into the invocation.

Ollama has no response id. Usage is on the response (and on a stream's last chunk, the one
with ``done: true``): ``prompt_eval_count`` is the input tokens, ``eval_count`` the output
tokens. ``done_reason`` (``stop``, ``length``, ``load``, ``unload``) is recorded as
reported; the output message's finish reason is the spec's (``tool_call`` when the message
calls tools).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._stream import is_stream
from llmtap.instrumentation._wrap import Call

PROVIDER = "ollama"

# The SDK methods' positional parameters, in order (ollama >= 0.4).
_POSITIONAL = {
    "chat": ("model", "messages"),
    "generate": ("model", "prompt", "suffix"),
    "embed": ("model", "input", "truncate", "options", "keep_alive", "dimensions"),
    "embeddings": ("model", "prompt", "options", "keep_alive"),
}
_OPERATIONS = {
    "chat": semconv.OP_CHAT,
    "generate": semconv.OP_TEXT_COMPLETION,
    "embed": semconv.OP_EMBEDDINGS,
    "embeddings": semconv.OP_EMBEDDINGS,
}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def get(obj: Any, key: str) -> Any:
    """A field of an SDK model or of a plain mapping."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _identify(client: Any) -> dict[str, Any]:
    return {semconv.PROVIDER: PROVIDER}


def client_attributes(instance: Any) -> dict[str, Any]:
    """Provider name and server address (the host the client was made with)."""
    return _client.client_attributes(instance, _identify, PROVIDER)


def bound_arguments(method: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    names = _POSITIONAL[method]
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


# request --------------------------------------------------------------------------------


def _options(value: Any) -> dict[str, Any]:
    value = parts.as_dict(value)
    return dict(value) if isinstance(value, Mapping) else {}


def request_attributes(request: dict[str, Any], attrs: dict[str, Any]) -> None:
    options = _options(request.get("options"))
    num = _client.set_number
    num(attrs, semconv.REQUEST_TEMPERATURE, options.get("temperature"), float)
    num(attrs, semconv.REQUEST_TOP_P, options.get("top_p"), float)
    num(attrs, semconv.REQUEST_TOP_K, options.get("top_k"), float)
    num(attrs, semconv.REQUEST_PRESENCE_PENALTY, options.get("presence_penalty"), float)
    num(attrs, semconv.REQUEST_FREQUENCY_PENALTY, options.get("frequency_penalty"), float)
    num(attrs, semconv.REQUEST_SEED, options.get("seed"), int)
    predict = options.get("num_predict")
    if isinstance(predict, int) and not isinstance(predict, bool) and predict >= 0:
        attrs[semconv.REQUEST_MAX_TOKENS] = predict  # -1: no limit, -2: fill the context
    stop = options.get("stop")
    if isinstance(stop, str) and stop:
        attrs[semconv.REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, list | tuple) and stop:
        attrs[semconv.REQUEST_STOP_SEQUENCES] = [str(s) for s in stop]
    fmt = request.get("format")
    if fmt == "json" or (isinstance(fmt, Mapping) and fmt):
        attrs[semconv.OUTPUT_TYPE] = "json"


def _image_part(image: Any) -> dict[str, Any]:
    value = getattr(image, "value", image)  # ollama.Image
    if isinstance(value, bytes | bytearray):
        return {"type": "blob", "modality": "image", "content": base64.b64encode(value).decode()}
    if isinstance(value, str) and not value.lower().endswith(_IMAGE_SUFFIXES):
        return {"type": "blob", "modality": "image", "content": value}
    # a file: the SDK reads it when it sends the request; llmtap records only its name
    return {"type": "uri", "modality": "image", "uri": str(value)}


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls or ():
        function = get(call, "function")
        arguments = parts.as_dict(get(function, "arguments"))
        out.append(parts.tool_call(get(call, "id"), get(function, "name"), arguments))
    return out


def input_messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for message in messages or ():
        message = parts.as_dict(message)
        if not isinstance(message, Mapping):
            continue
        role = str(message.get("role") or "user")
        content = message.get("content")
        if role == "tool":
            reply = parts.tool_response(message.get("tool_call_id"), content or "")
            out.append(parts.message("tool", [reply], message.get("tool_name")))
            continue
        body: list[dict[str, Any]] = []
        if message.get("thinking"):
            body.append({"type": "reasoning", "content": str(message["thinking"])})
        if content:
            body.append(parts.text(content))
        body += [_image_part(image) for image in message.get("images") or ()]
        body += _tool_calls(message.get("tool_calls"))
        out.append(parts.message(role, body))
    return out


def prompt_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = []
    prompt = request.get("prompt")
    if prompt:
        body.append(parts.text(prompt))
    body += [_image_part(image) for image in request.get("images") or ()]
    return [parts.message("user", body)] if body else []


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    out = []
    for tool in tools or ():
        if callable(tool) and not isinstance(tool, Mapping):
            tool = _function_tool(tool)
        elif hasattr(tool, "model_dump"):  # ollama.Tool: "$defs" is an alias
            tool = tool.model_dump(exclude_none=True, by_alias=True)
        if not isinstance(tool, Mapping):
            continue
        function = parts.as_dict(tool.get("function")) or {}
        entry: dict[str, Any] = {
            "type": str(tool.get("type") or "function"),
            "name": str(get(function, "name") or ""),
        }
        if get(function, "description"):
            entry["description"] = get(function, "description")
        parameters = parts.as_dict(get(function, "parameters"))
        if parameters:
            entry["parameters"] = parameters
        out.append(entry)
    return out or None


def _function_tool(function: Any) -> Any:
    """A Python function given as a tool, described as the SDK describes it."""
    try:
        from ollama._utils import convert_function_to_tool

        return convert_function_to_tool(function).model_dump(exclude_none=True, by_alias=True)
    except Exception:
        return {"type": "function", "function": {"name": getattr(function, "__name__", "")}}


# response -------------------------------------------------------------------------------


def usage_attributes(response: Any, embedding: bool = False) -> dict[str, int]:
    out: dict[str, int] = {}
    prompt = get(response, "prompt_eval_count")
    if isinstance(prompt, int) and not isinstance(prompt, bool):
        out[semconv.USAGE_INPUT_TOKENS] = prompt
    completion = get(response, "eval_count")
    if not embedding and isinstance(completion, int) and not isinstance(completion, bool):
        out[semconv.USAGE_OUTPUT_TOKENS] = completion
    return out


def _finish(attrs: dict[str, Any], reason: Any) -> None:
    if isinstance(reason, str) and reason:
        attrs[semconv.RESPONSE_FINISH_REASONS] = [reason]


def _model(attrs: dict[str, Any], response: Any) -> None:
    model = get(response, "model")
    if isinstance(model, str) and model:
        attrs[semconv.RESPONSE_MODEL] = model


def output_message(
    text: Any, thinking: Any, tool_calls: list[dict[str, Any]], reason: Any
) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if thinking:
        body.append({"type": "reasoning", "content": str(thinking)})
    if text:
        body.append(parts.text(text))
    body += tool_calls
    message = parts.message("assistant", body)
    if tool_calls:
        message["finish_reason"] = "tool_call"
    else:
        message["finish_reason"] = parts.finish_reason(reason if isinstance(reason, str) else None)
    return message


class OllamaAdapter:
    """One of ``chat``, ``generate``, ``embed``, ``embeddings`` (sync and async alike)."""

    def __init__(self, settings: Settings, method: str) -> None:
        self.settings = settings
        self.method = method
        self.embedding = _OPERATIONS[method] == semconv.OP_EMBEDDINGS

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        request = bound_arguments(self.method, args, kwargs)
        model = request.get("model")
        model = model if isinstance(model, str) and model else None
        client_attrs = client_attributes(instance)
        inv = Invocation(_OPERATIONS[self.method], client_attrs[semconv.PROVIDER], model)
        attrs = inv.attributes
        attrs.update(client_attrs)
        if self.embedding:
            dims = request.get("dimensions")
            if isinstance(dims, int) and not isinstance(dims, bool) and dims > 0:
                attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = dims
            return Call(inv, args, kwargs)
        attrs[semconv.REQUEST_STREAM] = request.get("stream") is True
        request_attributes(request, attrs)
        if self.settings.capture.any:
            if self.method == "chat":
                messages = request.get("messages")
                if messages is not None and not isinstance(messages, list | tuple):
                    messages = list(messages)  # a one-shot iterable: the SDK gets the list
                    if len(args) > 1:
                        args = (args[0], messages, *args[2:])
                    else:
                        kwargs = {**kwargs, "messages": messages}
                inv.input_messages = input_messages(messages)
                inv.tool_definitions = tool_definitions(request.get("tools"))
            else:
                system = request.get("system")
                if isinstance(system, str) and system:
                    inv.system_instructions = [parts.text(system)]
                inv.input_messages = prompt_messages(request)
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        attrs = call.inv.attributes
        _model(attrs, result)
        if self.embedding:
            attrs.update(usage_attributes(result, embedding=True))
            if semconv.EMBEDDINGS_DIMENSION_COUNT not in attrs:
                vectors = get(result, "embeddings")
                vector = vectors[0] if vectors else get(result, "embedding")
                if vector:
                    attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
            return result
        reason = get(result, "done_reason")
        _finish(attrs, reason)
        attrs.update(usage_attributes(result))
        if self.settings.capture.any:
            if self.method == "chat":
                message = get(result, "message")
                text, thinking = get(message, "content"), get(message, "thinking")
                calls = _tool_calls(get(message, "tool_calls"))
            else:
                text, thinking, calls = get(result, "response"), get(result, "thinking"), []
            call.inv.output_messages = [output_message(text, thinking, calls, reason)]
        return result

    def stream(self, call: Call, result: Any) -> OllamaAccumulator | None:
        if not self.embedding and is_stream(result):
            return OllamaAccumulator(self.settings, self.method)
        return None


class OllamaAccumulator:
    """Collects a chat or generate stream: text, thinking, tool calls, the final counts."""

    __slots__ = ("capture", "chat", "last", "reason", "texts", "thoughts", "tool_calls")

    def __init__(self, settings: Settings, method: str) -> None:
        self.capture = settings.capture.any
        self.chat = method == "chat"
        self.texts: list[str] = []
        self.thoughts: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.last: Any = None
        self.reason: Any = None

    def add(self, chunk: Any) -> bool:
        if self.last is None or get(chunk, "done"):
            self.last = chunk
        if get(chunk, "done_reason"):
            self.reason = get(chunk, "done_reason")
        if self.capture:
            source = get(chunk, "message") if self.chat else chunk
            text = get(source, "content" if self.chat else "response")
            if text:
                self.texts.append(text)
            thinking = get(source, "thinking")
            if thinking:
                self.thoughts.append(thinking)
            if self.chat:
                self.tool_calls += _tool_calls(get(source, "tool_calls"))
        return True

    def finish(self, inv: Invocation) -> None:
        attrs = inv.attributes
        if self.last is not None:
            _model(attrs, self.last)
            if get(self.last, "done"):
                attrs.update(usage_attributes(self.last))
        _finish(attrs, self.reason)
        if self.capture and (self.texts or self.thoughts or self.tool_calls or self.reason):
            message = output_message(
                "".join(self.texts), "".join(self.thoughts), self.tool_calls, self.reason
            )
            if not self.reason and attrs.get(semconv.LLMTAP_STREAM_END) == "error":
                message["finish_reason"] = "error"
            inv.output_messages = [message]
