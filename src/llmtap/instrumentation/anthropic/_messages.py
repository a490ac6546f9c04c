"""Anthropic Messages: requests, responses and stream events into the neutral invocation."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._stream import is_stream
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.anthropic import _common as common

# Tool calls the API runs itself; their results come back as ``*_tool_result`` blocks.
_SERVER_TOOL_CALLS = ("server_tool_use", "mcp_tool_use")
_TOOL_CALLS = ("tool_use", *_SERVER_TOOL_CALLS)


def request_attributes(kwargs: dict[str, Any], attrs: dict[str, Any]) -> None:
    num = _client.set_number
    num(attrs, semconv.REQUEST_MAX_TOKENS, kwargs.get("max_tokens"), int)
    # SDK 2.x has no sampling parameters: they travel in ``extra_body`` (which wins, as there).
    extra = kwargs.get("extra_body")
    sampling = {**kwargs, **extra} if isinstance(extra, Mapping) else kwargs
    num(attrs, semconv.REQUEST_TEMPERATURE, sampling.get("temperature"), float)
    num(attrs, semconv.REQUEST_TOP_P, sampling.get("top_p"), float)
    num(attrs, semconv.REQUEST_TOP_K, sampling.get("top_k"), float)
    stops = kwargs.get("stop_sequences")
    if _client.given(stops) and stops and not isinstance(stops, str):
        attrs[semconv.REQUEST_STOP_SEQUENCES] = [str(s) for s in stops]
    if _wants_json(kwargs):
        attrs[semconv.OUTPUT_TYPE] = "json"


def _wants_json(kwargs: dict[str, Any]) -> bool:
    # ``output_format`` is a type for parse()/stream(), a format dict in older (beta) create().
    fmt = kwargs.get("output_format")
    if _client.given(fmt) and not isinstance(fmt, Mapping):
        return True
    config = kwargs.get("output_config")
    config_fmt = (
        config.get("format") if _client.given(config) and isinstance(config, Mapping) else None
    )
    return any(isinstance(f, Mapping) and f.get("type") == "json_schema" for f in (fmt, config_fmt))


# content ---------------------------------------------------------------------------


def _source_part(source: Any, modality: str) -> dict[str, Any]:
    source = parts.as_dict(source) if source is not None else {}
    if not isinstance(source, dict):
        return {"type": modality}
    kind = source.get("type")
    if kind == "base64":
        data = source.get("data")
        # A file object or path is encoded by the SDK; reading it here would consume it.
        blob = {
            "type": "blob",
            "modality": modality,
            "content": data if isinstance(data, str) else "",
        }
        mime = source.get("media_type")
        return {**blob, "mime_type": mime} if mime else blob
    if kind == "url":
        return {"type": "uri", "modality": modality, "uri": str(source.get("url", ""))}
    if kind == "file":
        return {"type": "file", "modality": modality, "file_id": str(source.get("file_id", ""))}
    if kind == "text":
        return parts.text(source.get("data", ""))
    if kind == "content":
        content = source.get("content")
        return parts.text(content if isinstance(content, str) else _joined_text(content))
    return {"type": str(kind or modality)}


def _joined_text(blocks: Any) -> str:
    texts = []
    for block in blocks or ():
        block = parts.as_dict(block)
        if isinstance(block, dict) and block.get("type") == "text":
            texts.append(str(block.get("text", "")))
    return "".join(texts)


def block_part(block: Any) -> dict[str, Any] | None:
    """One content block (request or response, dict or model) as a semconv part."""
    block = parts.as_dict(block)
    if isinstance(block, str):
        return parts.text(block)
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "text":
        return parts.text(block.get("text", ""))
    if kind == "thinking":
        return {"type": "reasoning", "content": str(block.get("thinking") or "")}
    if kind == "redacted_thinking":
        return {"type": "reasoning", "content": "[redacted]"}
    if kind == "tool_use":
        return parts.tool_call(block.get("id"), block.get("name"), block.get("input"))
    if kind in _SERVER_TOOL_CALLS:
        name = str(block.get("name") or "")
        call = {"type": name or str(kind), "input": block.get("input")}
        part = {"type": "server_tool_call", "name": name, "server_tool_call": call}
        return {**part, "id": block["id"]} if block.get("id") else part
    if isinstance(kind, str) and kind.endswith("_tool_result") and kind != "tool_result":
        reply = {"type": kind, "content": block.get("content")}
        part = {"type": "server_tool_call_response", "server_tool_call_response": reply}
        call_id = block.get("tool_use_id")
        return {**part, "id": call_id} if call_id else part
    if kind == "image":
        return _source_part(block.get("source"), "image")
    if kind == "document":
        return _source_part(block.get("source"), "document")
    return {"type": str(kind or "unknown")}


def _tool_result(block: dict[str, Any]) -> dict[str, Any]:
    content = block.get("content")
    if content is None or isinstance(content, str):
        response: Any = content if content is not None else ""
    else:
        body = [p for p in (block_part(b) for b in content) if p is not None]
        if all(p.get("type") == "text" for p in body):
            response = "".join(p["content"] for p in body)
        else:
            response = body
    return parts.tool_response(block.get("tool_use_id"), response)


def _message_runs(role: str, content: Any) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A message's parts, with ``tool_result`` blocks split off into ``tool`` messages."""
    if isinstance(content, str):
        yield role, [parts.text(content)]
        return
    run_role, run = role, []
    for block in content or ():
        block = parts.as_dict(block)
        is_result = isinstance(block, dict) and block.get("type") == "tool_result"
        part = _tool_result(block) if is_result else block_part(block)
        if part is None:
            continue
        part_role = "tool" if is_result else role
        if part_role != run_role and run:
            yield run_role, run
            run = []
        run_role = part_role
        run.append(part)
    if run or run_role == role:
        yield run_role, run


def input_messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for msg in messages or ():
        msg = parts.as_dict(msg)
        if not isinstance(msg, dict):
            continue
        for role, body in _message_runs(str(msg.get("role") or "user"), msg.get("content")):
            out.append(parts.message(role, body))
    return out


def system_instructions(system: Any) -> list[dict[str, Any]] | None:
    if not _client.given(system) or not system:
        return None
    if isinstance(system, str):
        return [parts.text(system)]
    found = (block_part(block) for block in system)
    return [p for p in found if p is not None] or None


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not _client.given(tools) or not tools:
        return None
    out = []
    for tool in tools:
        tool = _tool_dict(tool)
        if not isinstance(tool, dict):
            continue
        name = str(tool.get("name", ""))
        if "input_schema" in tool:
            entry: dict[str, Any] = {"type": "function", "name": name}
            if tool.get("description"):
                entry["description"] = tool["description"]
            entry["parameters"] = tool["input_schema"]
        else:  # a server tool: web_search_20250305, bash_20250124, ...
            entry = {"type": str(tool.get("type") or "custom"), "name": name}
        out.append(entry)
    return out or None


def _tool_dict(tool: Any) -> Any:
    if isinstance(tool, dict):
        return tool
    to_dict = getattr(tool, "to_dict", None)  # the beta tool runner's function tools
    if callable(to_dict):
        try:
            return to_dict()
        except Exception:
            return None
    return parts.as_dict(tool)


def _materialized(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with one-shot iterables turned into lists, so reading them consumes nothing."""
    changed = None
    for key in ("messages", "system", "tools"):
        value = kwargs.get(key)
        if isinstance(value, Iterator):
            changed = changed or dict(kwargs)
            changed[key] = list(value)
    return changed or kwargs


# the adapter -----------------------------------------------------------------------


class MessagesAdapter:
    """``messages.create`` / ``parse`` / ``stream`` (and beta, and async twins)."""

    def __init__(self, settings: Settings, *, streaming: bool = False) -> None:
        self.settings = settings
        self.streaming = streaming  # stream(): always a stream, whatever ``stream=`` says

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        model = kwargs.get("model")
        model = model if isinstance(model, str) else None
        client_attrs = common.client_attributes(instance)
        inv = Invocation(semconv.OP_CHAT, client_attrs[semconv.PROVIDER], model)
        attrs = inv.attributes
        attrs.update(client_attrs)
        attrs[semconv.REQUEST_STREAM] = self.streaming or kwargs.get("stream") is True
        request_attributes(kwargs, attrs)
        if self.settings.capture.any:
            kwargs = _materialized(kwargs)
            inv.system_instructions = system_instructions(kwargs.get("system"))
            inv.input_messages = input_messages(kwargs.get("messages"))
            inv.tool_definitions = tool_definitions(kwargs.get("tools"))
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        inv = call.inv
        response_attributes(inv.attributes, result)
        stop = getattr(result, "stop_reason", None)
        _finish_attributes(inv.attributes, stop)
        counts = common.usage_counts(getattr(result, "usage", None))
        inv.attributes.update(common.usage_attributes(counts))
        if self.settings.capture.any:
            inv.output_messages = [output_message(getattr(result, "content", None), stop)]
        return result

    def stream(self, call: Call, result: Any) -> MessagesAccumulator | None:
        if is_stream(result):
            return MessagesAccumulator(self.settings)
        return None


def response_attributes(attrs: dict[str, Any], message: Any) -> None:
    for key, name in ((semconv.RESPONSE_ID, "id"), (semconv.RESPONSE_MODEL, "model")):
        value = common.get(message, name)
        if isinstance(value, str) and value:
            attrs[key] = value


def _finish_attributes(attrs: dict[str, Any], stop: Any) -> None:
    if isinstance(stop, str) and stop:
        attrs[semconv.RESPONSE_FINISH_REASONS] = [stop]
        if stop == "refusal":
            attrs[semconv.LLMTAP_RESPONSE_REFUSAL] = True


def output_message(content: Any, stop: Any) -> dict[str, Any]:
    body = [p for p in (block_part(b) for b in content or ()) if p is not None]
    out = parts.message("assistant", body)
    out["finish_reason"] = parts.finish_reason(stop if isinstance(stop, str) else None)
    return out


class _Block:
    """One content block of a stream, as its start event gave it plus the deltas since."""

    __slots__ = ("pieces", "start")

    def __init__(self, start: dict[str, Any]) -> None:
        self.start = start
        self.pieces: list[str] = []

    def final(self) -> dict[str, Any]:
        kind = self.start.get("type")
        joined = "".join(self.pieces)
        if kind == "text":
            return {**self.start, "text": str(self.start.get("text") or "") + joined}
        if kind == "thinking":
            return {**self.start, "thinking": str(self.start.get("thinking") or "") + joined}
        if kind in _TOOL_CALLS and self.pieces:
            try:
                arguments: Any = json.loads(joined) if joined.strip() else {}
            except ValueError:
                arguments = joined
            return {**self.start, "input": arguments}
        return self.start


_DELTA_FIELDS = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
}


class MessagesAccumulator:
    """Collects a Messages event stream: response fields, usage, stop reason, content blocks."""

    __slots__ = ("blocks", "capture", "message", "stop", "usage")

    def __init__(self, settings: Settings) -> None:
        self.capture = settings.capture.any
        self.message: Any = None
        self.usage: dict[str, int] = {}
        self.stop: str | None = None
        self.blocks: dict[int, _Block] = {}

    def add(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            if self.capture:
                self._add_delta(event)
        elif kind == "content_block_start":
            if self.capture:
                start = parts.as_dict(event.content_block)
                if isinstance(start, dict):
                    self.blocks[event.index] = _Block(dict(start))
        elif kind == "message_start":
            self.message = event.message
            common.usage_counts(getattr(event.message, "usage", None), self.usage)
        elif kind == "message_delta":
            stop = getattr(event.delta, "stop_reason", None)
            if stop:
                self.stop = stop
            common.usage_counts(getattr(event, "usage", None), self.usage)
        return True

    def _add_delta(self, event: Any) -> None:
        block = self.blocks.get(event.index)
        delta = event.delta
        field = _DELTA_FIELDS.get(getattr(delta, "type", None) or "")
        if block is not None and field is not None:
            piece = getattr(delta, field, None)
            if piece:
                block.pieces.append(piece)

    def finish(self, inv: Invocation) -> None:
        attrs = inv.attributes
        if self.message is not None:
            response_attributes(attrs, self.message)
        _finish_attributes(attrs, self.stop)
        attrs.update(common.usage_attributes(self.usage))
        if self.capture and (self.blocks or self.stop):
            content = [self.blocks[i].final() for i in sorted(self.blocks)]
            message = output_message(content, self.stop)
            if not self.stop and attrs.get(semconv.LLMTAP_STREAM_END) == "error":
                message["finish_reason"] = "error"
            inv.output_messages = [message]
