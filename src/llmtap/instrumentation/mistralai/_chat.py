"""Mistral chat, agents and FIM completions: requests, responses and stream events into the
neutral invocation."""

from __future__ import annotations

from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._stream import is_stream
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.mistralai import _common as common
from llmtap.instrumentation.mistralai._common import get


def request_attributes(kwargs: dict[str, Any], attrs: dict[str, Any]) -> None:
    num = _client.set_number
    num(attrs, semconv.REQUEST_TEMPERATURE, kwargs.get("temperature"), float)
    num(attrs, semconv.REQUEST_TOP_P, kwargs.get("top_p"), float)
    num(attrs, semconv.REQUEST_TOP_K, kwargs.get("top_k"), float)
    num(attrs, semconv.REQUEST_MAX_TOKENS, kwargs.get("max_tokens"), int)
    num(attrs, semconv.REQUEST_SEED, kwargs.get("random_seed"), int)
    num(attrs, semconv.REQUEST_PRESENCE_PENALTY, kwargs.get("presence_penalty"), float)
    num(attrs, semconv.REQUEST_FREQUENCY_PENALTY, kwargs.get("frequency_penalty"), float)
    n = kwargs.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:
        attrs[semconv.REQUEST_CHOICE_COUNT] = n
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attrs[semconv.REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, list | tuple) and stop:
        attrs[semconv.REQUEST_STOP_SEQUENCES] = [str(s) for s in stop]
    fmt = kwargs.get("response_format")
    kind = get(fmt, "type")
    if kind is not None:
        kind = getattr(kind, "value", kind)
        attrs[semconv.OUTPUT_TYPE] = "text" if kind == "text" else "json"


# content -------------------------------------------------------------------------------


def _url(value: Any) -> str:
    """An ``image_url`` / ``document_url``: a string, or an object with ``url``."""
    if isinstance(value, str):
        return value
    return str(get(value, "url") or "")


def _thinking(chunk: Any) -> str:
    return "".join(str(get(piece, "text") or "") for piece in get(chunk, "thinking") or ())


def chunk_part(chunk: Any) -> dict[str, Any] | None:
    """One content chunk (request or response, dict or model) as a semconv part."""
    if isinstance(chunk, str):
        return parts.text(chunk)
    kind = get(chunk, "type")
    if kind == "text":
        return parts.text(get(chunk, "text") or "")
    if kind == "thinking":
        return {"type": "reasoning", "content": _thinking(chunk)}
    if kind == "image_url":
        return parts.media_from_url(_url(get(chunk, "image_url")), "image")
    if kind == "document_url":
        return {"type": "uri", "modality": "document", "uri": _url(get(chunk, "document_url"))}
    if kind == "file":
        return {"type": "file", "modality": "document", "file_id": str(get(chunk, "file_id"))}
    if kind == "input_audio":
        audio = get(chunk, "input_audio")
        data = audio if isinstance(audio, str) else get(audio, "data")
        data = data if isinstance(data, str) else ""
        return {"type": "blob", "modality": "audio", "content": data}
    return {"type": str(kind or "unknown")} if chunk is not None else None


def content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [parts.text(content)] if content else []
    found = (chunk_part(chunk) for chunk in content)
    return [p for p in found if p is not None]


def _arguments(arguments: Any) -> Any:
    """Tool call arguments: a JSON string (parsed when it is JSON) or an object already."""
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return None
    return parts.as_dict(arguments)


def tool_call_parts(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls or ():
        fn = get(call, "function")
        call_id = get(call, "id")
        call_id = None if call_id == "null" else call_id  # the SDK's default id
        out.append(parts.tool_call(call_id, get(fn, "name"), _arguments(get(fn, "arguments"))))
    return out


def _joined(content: Any) -> Any:
    if isinstance(content, list):
        return "".join(p.get("content", "") for p in content_parts(content))
    return content if content is not None else ""


def input_messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for msg in messages or ():
        role = str(get(msg, "role") or "user")
        if role == "tool":
            reply = parts.tool_response(get(msg, "tool_call_id"), _joined(get(msg, "content")))
            out.append(parts.message("tool", [reply], get(msg, "name")))
            continue
        body = content_parts(get(msg, "content"))
        body += tool_call_parts(get(msg, "tool_calls"))
        out.append(parts.message(role, body, get(msg, "name")))
    return out


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    out = []
    for tool in tools or ():
        fn = get(tool, "function")
        entry: dict[str, Any] = {"type": str(get(tool, "type") or "function")}
        entry["name"] = str(get(fn, "name") or "")
        if get(fn, "description"):
            entry["description"] = get(fn, "description")
        params = get(fn, "parameters")
        if params:
            entry["parameters"] = parts.as_dict(params)
        out.append(entry)
    return out or None


def output_message(message: Any, finish: Any) -> dict[str, Any]:
    body = content_parts(get(message, "content"))
    body += tool_call_parts(get(message, "tool_calls"))
    out = parts.message("assistant", body)
    out["finish_reason"] = common.finish_reason(finish)
    return out


# the adapter ---------------------------------------------------------------------------


class ChatAdapter:
    """``chat.complete`` / ``stream`` (and async), ``agents.*`` as chat, ``fim.*`` as
    ``text_completion``."""

    def __init__(self, settings: Settings, *, kind: str = "chat", streaming: bool = False) -> None:
        self.settings = settings
        self.kind = kind  # "chat", "agents" or "fim"
        self.streaming = streaming

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        kwargs = parts.materialize(kwargs, "messages", "tools")
        model = kwargs.get("model")
        model = model if isinstance(model, str) and model else None
        operation = semconv.OP_TEXT_COMPLETION if self.kind == "fim" else semconv.OP_CHAT
        inv = Invocation(operation, common.PROVIDER, model)
        inv.error_namer = common.error_type
        attrs = inv.attributes
        attrs.update(common.server_attributes(instance, kwargs))
        agent = kwargs.get("agent_id")
        if self.kind == "agents" and isinstance(agent, str) and agent:
            attrs[semconv.AGENT_ID] = agent
        attrs[semconv.REQUEST_STREAM] = self.streaming or kwargs.get("stream") is True
        request_attributes(kwargs, attrs)
        if self.settings.capture.any:
            if self.kind == "fim":
                inv.input_messages = _fim_input(kwargs.get("prompt"), kwargs.get("suffix"))
            else:
                inv.input_messages = input_messages(kwargs.get("messages"))
                inv.tool_definitions = tool_definitions(kwargs.get("tools"))
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        inv, attrs = call.inv, call.inv.attributes
        response_attributes(attrs, result)
        attrs.update(common.usage_attributes(get(result, "usage")))
        choices = get(result, "choices") or []
        reasons = [str(get(c, "finish_reason") or "") for c in choices]
        attrs[semconv.RESPONSE_FINISH_REASONS] = reasons
        if self.settings.capture.any:
            inv.output_messages = [
                output_message(get(c, "message"), get(c, "finish_reason")) for c in choices
            ]
        return result

    def stream(self, call: Call, result: Any) -> ChatAccumulator | None:
        if is_stream(result):
            return ChatAccumulator(self.settings)
        return None


def _fim_input(prompt: Any, suffix: Any) -> list[dict[str, Any]]:
    body = [parts.text(prompt)] if isinstance(prompt, str) else []
    if isinstance(suffix, str) and suffix:
        body.append(parts.text(suffix))
    return [parts.message("user", body)]


def response_attributes(attrs: dict[str, Any], result: Any) -> None:
    for key, name in ((semconv.RESPONSE_ID, "id"), (semconv.RESPONSE_MODEL, "model")):
        value = get(result, name)
        if isinstance(value, str) and value:
            attrs[key] = value


class _Choice:
    __slots__ = ("calls", "finish", "pieces")

    def __init__(self) -> None:
        self.pieces: list[Any] = []  # text, or content chunks (reasoning models)
        self.calls: list[list[Any]] = []  # [id, name, arguments (str pieces or an object)]
        self.finish: str | None = None

    def add_call(self, call: Any) -> None:
        fn = get(call, "function")
        call_id = get(call, "id")
        call_id = None if call_id == "null" else call_id
        arguments = get(fn, "arguments")
        slot = self.calls[-1] if self.calls and not call_id and not get(fn, "name") else None
        if slot is None:
            slot = [call_id, get(fn, "name") or "", []]
            self.calls.append(slot)
        if isinstance(arguments, str):
            if isinstance(slot[2], list):
                slot[2].append(arguments)
        elif arguments is not None:
            slot[2] = parts.as_dict(arguments)

    def message(self, cut: str | None) -> dict[str, Any]:
        body: list[dict[str, Any]] = []
        text: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                text.append(piece)
                continue
            part = chunk_part(piece)
            if part is None:
                continue
            if part.get("type") == "text":
                text.append(part["content"])
            elif part.get("type") == "reasoning" and body and body[-1]["type"] == "reasoning":
                body[-1]["content"] += part["content"]
            else:
                body.append(part)
        if text:
            body.append(parts.text("".join(text)))
        for call_id, name, arguments in self.calls:
            if isinstance(arguments, list):
                arguments = "".join(arguments)
            body.append(parts.tool_call(call_id, name, arguments))
        out = parts.message("assistant", body)
        out["finish_reason"] = common.finish_reason(self.finish) if self.finish else cut or "stop"
        return out


class ChatAccumulator:
    """Collects a Mistral event stream: response fields, content, tool calls, finish
    reasons, and the usage of the last chunk."""

    __slots__ = ("capture", "choices", "head", "usage")

    def __init__(self, settings: Settings) -> None:
        self.capture = settings.capture.any
        self.choices: dict[int, _Choice] = {}
        self.head: Any = None
        self.usage: Any = None

    def add(self, event: Any) -> bool:
        chunk = get(event, "data") if not hasattr(event, "choices") else event
        if chunk is None:
            return True
        if self.head is None and get(chunk, "id"):
            self.head = chunk
        usage = get(chunk, "usage")
        if usage is not None:
            self.usage = usage
        for choice in get(chunk, "choices") or ():
            index = get(choice, "index") or 0
            acc = self.choices.get(index)
            if acc is None:
                acc = self.choices[index] = _Choice()
            delta = get(choice, "delta")
            if self.capture and delta is not None:
                content = get(delta, "content")
                if isinstance(content, str):
                    if content:
                        acc.pieces.append(content)
                elif content:
                    acc.pieces.extend(content)
                for call in get(delta, "tool_calls") or ():
                    acc.add_call(call)
            finish = get(choice, "finish_reason")
            if finish:
                acc.finish = str(finish)
        return True

    def finish(self, inv: Invocation) -> None:
        attrs = inv.attributes
        if self.head is not None:
            response_attributes(attrs, self.head)
        ordered = [self.choices[i] for i in sorted(self.choices)]
        reasons = [c.finish for c in ordered if c.finish]
        if reasons:
            attrs[semconv.RESPONSE_FINISH_REASONS] = reasons
        if self.usage is not None:
            attrs.update(common.usage_attributes(self.usage))
        if self.capture:
            cut = "error" if attrs.get(semconv.LLMTAP_STREAM_END) == "error" else None
            inv.output_messages = [c.message(cut) for c in ordered]
