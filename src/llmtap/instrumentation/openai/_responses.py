"""OpenAI Responses API: requests, responses and stream events into the neutral invocation."""

from __future__ import annotations

from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._stream import is_stream
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.openai import _common as common

_TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
_CLIENT_TOOL_CALLS = ("function_call", "custom_tool_call")


def _request_attributes(kwargs: dict[str, Any], attrs: dict[str, Any]) -> None:
    num = _client.set_number
    num(attrs, semconv.REQUEST_TEMPERATURE, kwargs.get("temperature"), float)
    num(attrs, semconv.REQUEST_TOP_P, kwargs.get("top_p"), float)
    num(attrs, semconv.REQUEST_MAX_TOKENS, kwargs.get("max_output_tokens"), int)
    text = kwargs.get("text")
    fmt = text.get("format") if _client.given(text) and isinstance(text, dict) else None
    if fmt or _client.given(kwargs.get("text_format")):
        kind = fmt.get("type") if isinstance(fmt, dict) else "json_schema"
        attrs[semconv.OUTPUT_TYPE] = "text" if kind == "text" else "json"
    tier = kwargs.get("service_tier")
    if _client.given(tier) and tier != "auto":
        attrs[semconv.OPENAI_REQUEST_SERVICE_TIER] = tier
    conversation = kwargs.get("conversation")
    if _client.given(conversation):
        conv_id = conversation if isinstance(conversation, str) else conversation.get("id")
        if conv_id:
            attrs[semconv.CONVERSATION_ID] = conv_id


# content ---------------------------------------------------------------------------


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [parts.text(content)]
    out = []
    for item in content or ():
        item = parts.as_dict(item)
        kind = item.get("type")
        if kind in ("input_text", "output_text", "text"):
            out.append(parts.text(item.get("text", "")))
        elif kind == "refusal":
            out.append(parts.text(item.get("refusal", "")))
        elif kind == "input_image":
            if item.get("file_id"):
                out.append({"type": "file", "modality": "image", "file_id": item["file_id"]})
            else:
                out.append(parts.media_from_url(str(item.get("image_url", "")), "image"))
        elif kind == "input_file":
            out.append(_file_part(item))
        elif kind == "input_audio":
            audio = item.get("input_audio") or {}
            out.append({"type": "blob", "modality": "audio", "content": audio.get("data", "")})
        else:
            out.append({"type": str(kind or "unknown")})
    return out


def _file_part(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("file_id"):
        return {"type": "file", "modality": "document", "file_id": item["file_id"]}
    if item.get("file_url"):
        return {"type": "uri", "modality": "document", "uri": item["file_url"]}
    return parts.media_from_url(str(item.get("file_data", "")), "document")


def _reasoning_text(item: dict[str, Any]) -> str:
    texts = [s.get("text", "") for s in parts.as_dict(item).get("summary") or ()]
    texts += [c.get("text", "") for c in parts.as_dict(item).get("content") or ()]
    return "\n".join(t for t in texts if t)


def _item_part(item: dict[str, Any]) -> dict[str, Any] | None:
    """A non-message item (tool call, reasoning, hosted tool) as one message part."""
    kind = item.get("type")
    if kind == "function_call":
        return parts.tool_call(item.get("call_id"), item.get("name"), item.get("arguments"))
    if kind == "custom_tool_call":
        return parts.tool_call(item.get("call_id"), item.get("name"), item.get("input"))
    if kind == "reasoning":
        return {"type": "reasoning", "content": _reasoning_text(item)}
    if kind and kind.endswith("_call"):
        call = {"type": kind}
        part = {"type": "server_tool_call", "name": kind[:-5], "server_tool_call": call}
        return {**part, "id": item["id"]} if item.get("id") else part
    return None


def input_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [parts.message("user", [parts.text(value)])]
    out: list[dict[str, Any]] = []
    for item in value or ():
        item = parts.as_dict(item)
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" or "role" in item:
            role = item.get("role") or "user"
            role = "system" if role == "developer" else role
            out.append(parts.message(role, _content_parts(item.get("content"))))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            reply = parts.tool_response(item.get("call_id"), item.get("output"))
            out.append(parts.message("tool", [reply]))
        else:
            part = _item_part(item)
            if part is not None:
                out.append(parts.message("assistant", [part]))
    return out


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not _client.given(tools) or not tools:
        return None
    out = []
    for tool in tools:
        tool = parts.as_dict(tool)
        entry = {"type": tool.get("type", "function"), "name": tool.get("name") or tool["type"]}
        if tool.get("description"):
            entry["description"] = tool["description"]
        if tool.get("parameters"):
            entry["parameters"] = tool["parameters"]
        out.append(entry)
    return out


def _output_parts(items: list[Any]) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = []
    for item in items:
        item = parts.as_dict(item)
        if item.get("type") == "message":
            body += _content_parts(item.get("content"))
        else:
            part = _item_part(item)
            if part is not None:
                body.append(part)
    return body


def _finish(status: str | None, incomplete: Any, items: list[Any]) -> str:
    if status == "incomplete":
        reason = parts.as_dict(incomplete or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    if status == "failed":
        return "error"
    if any(parts.as_dict(i).get("type") in _CLIENT_TOOL_CALLS for i in items):
        return "tool_call"
    return "stop"


def _refused(items: list[Any]) -> bool:
    for item in items:
        for c in parts.as_dict(item).get("content") or ():
            if parts.as_dict(c).get("type") == "refusal":
                return True
    return False


# the adapter -----------------------------------------------------------------------


class ResponsesAdapter:
    """``responses.create`` / ``parse`` (sync and async); ``responses.stream`` goes via create."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        kwargs = parts.materialize(kwargs, "input", "tools")
        model = kwargs.get("model")
        inv = Invocation(semconv.OP_CHAT, "openai", model if isinstance(model, str) else None)
        attrs = inv.attributes
        attrs.update(common.client_attributes(instance))
        attrs[semconv.OPENAI_API_TYPE] = "responses"
        attrs[semconv.REQUEST_STREAM] = kwargs.get("stream") is True
        _request_attributes(kwargs, attrs)
        if self.settings.capture.any:
            inv.input_messages = input_messages(kwargs.get("input"))
            instructions = kwargs.get("instructions")
            if _client.given(instructions) and instructions:
                inv.system_instructions = [parts.text(instructions)]
            inv.tool_definitions = tool_definitions(kwargs.get("tools"))
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        record_response(call.inv, result, list(getattr(result, "output", None) or ()), self)
        return result

    def stream(self, call: Call, result: Any) -> ResponsesAccumulator | None:
        return ResponsesAccumulator(self) if is_stream(result) else None


class RetrieveAdapter:
    """``responses.retrieve(response_id, stream=True)`` (sync and async; also behind
    ``responses.stream(response_id=...)``): the event stream of an existing (background)
    response, resumed. Its request names no model and no input: the span has the response id
    from the start, and the model, usage, output and finish reason from the events. A plain
    ``retrieve`` (no stream) is a lookup, not a model call, and is not traced."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call | None:
        if kwargs.get("stream") is not True:
            return None
        inv = Invocation(semconv.OP_CHAT, "openai")
        attrs = inv.attributes
        attrs.update(common.client_attributes(instance))
        attrs[semconv.OPENAI_API_TYPE] = "responses"
        attrs[semconv.REQUEST_STREAM] = True
        response_id = args[0] if args else kwargs.get("response_id")
        if isinstance(response_id, str) and response_id:
            attrs[semconv.RESPONSE_ID] = response_id
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        record_response(call.inv, result, list(getattr(result, "output", None) or ()), self)
        return result

    def stream(self, call: Call, result: Any) -> ResponsesAccumulator | None:
        return ResponsesAccumulator(self) if is_stream(result) else None


_UNFINISHED = ("in_progress", "queued")


def record_response(inv: Invocation, response: Any, items: list[Any], adapter: Any) -> None:
    attrs = inv.attributes
    if response is not None:
        for key, name in (
            (semconv.RESPONSE_ID, "id"),
            (semconv.RESPONSE_MODEL, "model"),
            (semconv.OPENAI_RESPONSE_SERVICE_TIER, "service_tier"),
        ):
            value = getattr(response, name, None)
            if isinstance(value, str) and value:
                attrs[key] = value
        attrs.update(common.usage_attributes(getattr(response, "usage", None)))
        conversation = parts.as_dict(getattr(response, "conversation", None))
        if isinstance(conversation, dict) and conversation.get("id"):
            attrs.setdefault(semconv.CONVERSATION_ID, conversation["id"])
        error = getattr(response, "error", None)
        if error is not None:
            attrs[semconv.ERROR_TYPE] = str(getattr(error, "code", None) or "response_failed")
    status = getattr(response, "status", None)
    finish = _finish(status, getattr(response, "incomplete_details", None), items)
    if status in _UNFINISHED:
        if not attrs.get(semconv.LLMTAP_STREAM_END):
            return  # a background response, queued: nothing has finished, nothing to show yet
        finish = "error" if attrs[semconv.LLMTAP_STREAM_END] == "error" else "stop"
    else:
        attrs[semconv.RESPONSE_FINISH_REASONS] = [finish]
    if _refused(items):
        attrs[semconv.LLMTAP_RESPONSE_REFUSAL] = True
    if adapter.settings.capture.any:
        message = parts.message("assistant", _output_parts(items))
        message["finish_reason"] = finish
        inv.output_messages = [message]


class ResponsesAccumulator:
    """Keeps the stream's first and terminal ``Response`` and the finished output items."""

    __slots__ = ("adapter", "error", "final", "head", "items")

    def __init__(self, adapter: ResponsesAdapter) -> None:
        self.adapter = adapter
        self.head: Any = None
        self.final: Any = None
        self.items: list[Any] = []
        self.error: str | None = None

    def add(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "response.output_item.done":
            self.items.append(event.item)
        elif kind == "response.created":
            self.head = event.response
        elif kind in _TERMINAL_EVENTS:
            self.final = event.response
        elif kind == "error":
            self.error = str(getattr(event, "code", None) or "stream_error")
        return True

    def finish(self, inv: Invocation) -> None:
        response = self.final or self.head
        # the terminal event's output is the whole response's; a resumed stream
        # (``starting_after``) may have missed some of the items' own events
        items = list(getattr(self.final, "output", None) or ()) or self.items
        record_response(inv, response, items, self.adapter)
        if self.error:
            inv.attributes[semconv.ERROR_TYPE] = self.error
