"""Cohere v2 Chat: requests, responses and stream events into the neutral invocation.

Documents given to ``chat`` (RAG) are a ``system`` message of ``document`` parts (the
semconv's generic part: ``id`` and the document as ``content``), placed after the leading
system messages, where Cohere renders them into the prompt. ``tool_plan`` is a
``reasoning`` part before the tool calls.
"""

from __future__ import annotations

import json
from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._stream import is_stream
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.cohere import _common as common
from llmtap.instrumentation.cohere._common import get


def request_attributes(kwargs: dict[str, Any], attrs: dict[str, Any]) -> None:
    num = _client.set_number
    num(attrs, semconv.REQUEST_MAX_TOKENS, kwargs.get("max_tokens"), int)
    num(attrs, semconv.REQUEST_TEMPERATURE, kwargs.get("temperature"), float)
    num(attrs, semconv.REQUEST_TOP_P, kwargs.get("p"), float)
    num(attrs, semconv.REQUEST_TOP_K, kwargs.get("k"), float)
    num(attrs, semconv.REQUEST_SEED, kwargs.get("seed"), int)
    num(attrs, semconv.REQUEST_FREQUENCY_PENALTY, kwargs.get("frequency_penalty"), float)
    num(attrs, semconv.REQUEST_PRESENCE_PENALTY, kwargs.get("presence_penalty"), float)
    stops = kwargs.get("stop_sequences")
    if common.given(stops) and stops:
        attrs[semconv.REQUEST_STOP_SEQUENCES] = (
            [stops] if isinstance(stops, str) else [str(s) for s in stops]
        )
    fmt = kwargs.get("response_format")
    if common.given(fmt):
        kind = get(fmt, "type")
        if kind == "json_object":
            attrs[semconv.OUTPUT_TYPE] = "json"
        elif kind == "text":
            attrs[semconv.OUTPUT_TYPE] = "text"


# content ---------------------------------------------------------------------------


def _reasoning(text: Any) -> dict[str, Any]:
    return {"type": "reasoning", "content": text if isinstance(text, str) else str(text)}


def document_part(doc: Any) -> dict[str, Any]:
    """A RAG document (a string, ``{"data": ..., "id": ...}`` or ``cohere.Document``)."""
    if isinstance(doc, str):
        return {"type": "document", "content": doc}
    data = get(doc, "data")
    if data is None and isinstance(doc, dict):
        data = {k: v for k, v in doc.items() if k != "id"}
    content = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    part: dict[str, Any] = {"type": "document", "content": content}
    doc_id = get(doc, "id")
    if doc_id:
        part["id"] = str(doc_id)
    return part


def content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [parts.text(content)]
    out = []
    for item in content:
        if isinstance(item, str):
            out.append(parts.text(item))
            continue
        kind = get(item, "type")
        if kind == "text":
            out.append(parts.text(get(item, "text") or ""))
        elif kind == "thinking":
            out.append(_reasoning(get(item, "thinking") or ""))
        elif kind == "image_url":
            url = get(item, "image_url")
            url = url if isinstance(url, str) else get(url, "url")
            out.append(parts.media_from_url(str(url or ""), "image"))
        elif kind == "document":
            out.append(document_part(get(item, "document")))
        else:
            out.append({"type": str(kind or "unknown")})
    return out


def tool_call_parts(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls or ():
        fn = get(call, "function")
        out.append(parts.tool_call(get(call, "id"), get(fn, "name"), get(fn, "arguments")))
    return out


def _tool_result(content: Any) -> Any:
    if content is None or isinstance(content, str):
        return content if content is not None else ""
    body = content_parts(content)
    if all(p.get("type") == "text" for p in body):
        return "".join(p["content"] for p in body)
    return body


def input_messages(messages: Any, documents: Any = None) -> list[dict[str, Any]]:
    out = []
    for msg in messages or ():
        role = get(msg, "role") or "user"
        if role == "tool":
            reply = parts.tool_response(get(msg, "tool_call_id"), _tool_result(get(msg, "content")))
            out.append(parts.message("tool", [reply]))
            continue
        body = []
        plan = get(msg, "tool_plan")
        if plan:
            body.append(_reasoning(plan))
        body += content_parts(get(msg, "content"))
        body += tool_call_parts(get(msg, "tool_calls"))
        out.append(parts.message(str(role), body))
    if common.given(documents) and documents:
        lead = next((i for i, m in enumerate(out) if m["role"] != "system"), len(out))
        out.insert(lead, parts.message("system", [document_part(d) for d in documents]))
    return out


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not common.given(tools) or not tools:
        return None
    out = []
    for tool in tools:
        fn = get(tool, "function") or {}
        entry: dict[str, Any] = {"type": str(get(tool, "type") or "function")}
        entry["name"] = str(get(fn, "name") or "")
        if get(fn, "description"):
            entry["description"] = get(fn, "description")
        if get(fn, "parameters"):
            entry["parameters"] = get(fn, "parameters")
        out.append(entry)
    return out or None


def output_message(message: Any, finish: Any) -> dict[str, Any]:
    body = []
    plan = get(message, "tool_plan")
    if plan:
        body.append(_reasoning(plan))
    body += content_parts(get(message, "content"))
    body += tool_call_parts(get(message, "tool_calls"))
    out = parts.message("assistant", body)
    out["finish_reason"] = _output_finish(finish)
    return out


def _output_finish(raw: Any) -> str:
    reason = common.finish_reason(raw)
    return reason if reason in _OUTPUT_FINISH_REASONS else "stop"


_OUTPUT_FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_call", "error"})


# the adapter -----------------------------------------------------------------------


class ChatAdapter:
    """``chat`` and ``chat_stream`` of ``V2Client`` / ``AsyncV2Client``."""

    def __init__(self, settings: Settings, *, streaming: bool = False) -> None:
        self.settings = settings
        self.streaming = streaming

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        kwargs = parts.materialize(kwargs, "messages", "tools", "documents", "stop_sequences")
        inv = Invocation(semconv.OP_CHAT, common.PROVIDER, common.model_of(kwargs))
        attrs = inv.attributes
        attrs.update(common.client_attributes(instance))
        attrs[semconv.REQUEST_STREAM] = self.streaming
        request_attributes(kwargs, attrs)
        if self.settings.capture.any:
            inv.input_messages = input_messages(kwargs.get("messages"), kwargs.get("documents"))
            inv.tool_definitions = tool_definitions(kwargs.get("tools"))
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        inv, attrs = call.inv, call.inv.attributes
        common.response_id(attrs, result)
        finish = get(result, "finish_reason")
        common.finish_attributes(attrs, finish)
        attrs.update(common.usage_attributes(get(result, "usage")))
        if self.settings.capture.any:
            inv.output_messages = [output_message(get(result, "message"), finish)]
        return result

    def stream(self, call: Call, result: Any) -> ChatAccumulator | None:
        if is_stream(result):
            return ChatAccumulator(self.settings)
        return None


def _delta_message(event: Any) -> Any:
    return get(get(event, "delta"), "message")


class ChatAccumulator:
    """Collects a v2 chat event stream: id, content, tool plan, tool calls, finish, usage."""

    __slots__ = ("calls", "capture", "content", "id", "plan", "reason", "usage")

    def __init__(self, settings: Settings) -> None:
        self.capture = settings.capture.any
        self.id: str | None = None
        self.reason: Any = None
        self.usage: Any = None
        self.content: dict[int, tuple[str, list[str]]] = {}
        self.plan: list[str] = []
        self.calls: dict[int, tuple[Any, Any, list[str]]] = {}

    def add(self, event: Any) -> bool:
        kind = get(event, "type")
        if kind == "message-start":
            self.id = get(event, "id")
        elif kind == "message-end":
            delta = get(event, "delta")
            self.reason = get(delta, "finish_reason")
            self.usage = get(delta, "usage")
        elif self.capture:
            self._add_content(kind, event)
        return True

    def _add_content(self, kind: Any, event: Any) -> None:
        index = get(event, "index") or 0
        message = _delta_message(event)
        if kind == "content-delta":
            content = get(message, "content")
            piece = get(content, "text") or get(content, "thinking")
            if piece:
                self.content.setdefault(index, ("text", []))[1].append(piece)
        elif kind == "content-start":
            content = get(message, "content")
            block = "thinking" if get(content, "type") == "thinking" else "text"
            self.content[index] = (block, [get(content, block) or ""])
        elif kind == "tool-plan-delta":
            piece = get(message, "tool_plan")
            if piece:
                self.plan.append(piece)
        elif kind == "tool-call-start":
            call = get(message, "tool_calls")
            fn = get(call, "function")
            self.calls[index] = (get(call, "id"), get(fn, "name"), [get(fn, "arguments") or ""])
        elif kind == "tool-call-delta":
            piece = get(get(get(message, "tool_calls"), "function"), "arguments")
            if piece and index in self.calls:
                self.calls[index][2].append(piece)

    def finish(self, inv: Invocation) -> None:
        attrs = inv.attributes
        if isinstance(self.id, str) and self.id:
            attrs[semconv.RESPONSE_ID] = self.id
        common.finish_attributes(attrs, self.reason)
        attrs.update(common.usage_attributes(self.usage))
        if not self.capture or not (self.content or self.plan or self.calls or self.reason):
            return
        body = [_reasoning("".join(self.plan))] if self.plan else []
        for index in sorted(self.content):
            block, pieces = self.content[index]
            text = "".join(pieces)
            body.append(_reasoning(text) if block == "thinking" else parts.text(text))
        for index in sorted(self.calls):
            call_id, name, pieces = self.calls[index]
            body.append(parts.tool_call(call_id, name, "".join(pieces)))
        message = parts.message("assistant", body)
        if self.reason:
            message["finish_reason"] = _output_finish(self.reason)
        else:
            cut = attrs.get(semconv.LLMTAP_STREAM_END) == "error"
            message["finish_reason"] = "error" if cut else "stop"
        inv.output_messages = [message]
