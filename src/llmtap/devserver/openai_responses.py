"""OpenAI ``POST /v1/responses`` emulation (JSON and the Responses SSE event sequence), and
``GET /v1/responses/{id}`` (JSON, or with ``stream=true`` the event sequence again, resumed
after ``starting_after``).

Responses are kept (the last 1000) unless ``store`` is false. ``background: true`` answers a
non-streaming create with the response ``queued`` and no output; a later retrieve finds it
completed. As on the real API, only background responses can be streamed again: retrieving any
other with ``stream=true`` is a 404.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from . import content as c
from .reply import Reply, SSEEvent, dumps, json_reply, stream_reply
from .scenarios import Context, openai_error_body

_SUMMARY_MODES = {"auto", "concise", "detailed"}
_TIERS = {"default", "flex", "scale", "priority"}
_KEPT = 1000
_kept: OrderedDict[str, tuple[dict[str, Any], int]] = OrderedDict()
_kept_lock = threading.Lock()


@dataclass
class OutputItem:
    final: dict[str, Any]
    pieces: list[str] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str(self.final["type"])


@dataclass
class Plan:
    items: list[OutputItem]
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    incomplete: bool


def responses(body: dict[str, Any], ctx: Context) -> Reply:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return json_reply(
            openai_error_body(
                "Missing required parameter: 'model'.", "invalid_request_error", "model"
            ),
            400,
        )
    plan = _plan(body)
    if body.get("store") is not False or body.get("background"):
        _keep(_response_id(body), body, ctx.created)
    if body.get("stream"):
        return stream_reply(_stream_events(body, plan, ctx))
    if body.get("background"):
        return json_reply(_response(body, ctx, plan, final=False, status="queued"))
    return json_reply(_response(body, ctx, plan, final=True))


def retrieve(query: dict[str, Any], ctx: Context) -> Reply:
    """``GET /responses/{id}``: ``query`` holds ``response_id`` and the query parameters."""
    response_id = str(query.get("response_id", ""))
    with _kept_lock:
        kept = _kept.get(response_id)
    streamed = str(query.get("stream", "")).lower() == "true"
    if kept is None or (streamed and not kept[0].get("background")):
        message = f"Response with id '{response_id}' not found."
        return json_reply(openai_error_body(message, "invalid_request_error"), 404)
    body, created = kept
    ctx = Context(ctx.request_id, created, ctx.scenario)
    plan = _plan(body)
    if not streamed:
        return json_reply(_response(body, ctx, plan, final=True))
    events = _stream_events(body, plan, ctx)
    after = _integer(query.get("starting_after"))
    if after is not None:
        events = [e for e in events if e.json().get("sequence_number", after + 1) > after]
    return stream_reply(events)


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _response_id(body: dict[str, Any]) -> str:
    return c.stable_id("resp_", body, length=48)


def _keep(response_id: str, body: dict[str, Any], created: int) -> None:
    with _kept_lock:
        _kept[response_id] = (body, created)
        _kept.move_to_end(response_id)
        while len(_kept) > _KEPT:
            _kept.popitem(last=False)


def _input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    return [item for item in raw or [] if isinstance(item, dict)]


def _prompt(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("role") == "user":
            return c.text_of(item.get("content"))
    return ""


def _plan(body: dict[str, Any]) -> Plan:
    items = _input_items(body)
    prompt = _prompt(items)
    last = items[-1] if items else {}
    reasoning = _reasoning_tokens(body)
    output: list[OutputItem] = [_reasoning_item(body, prompt)] if reasoning else []
    tool = None if last.get("type") == "function_call_output" else _pick_tool(body)
    incomplete = False
    if last.get("role") == "user" and c.is_refusal(prompt):
        output.append(_message_item(body, c.split_pieces(c.REFUSAL_TEXT), refusal=True))
    elif tool is not None:
        output.append(_function_call_item(body, tool, prompt))
    else:
        pieces, incomplete = c.truncate(
            c.split_pieces(_reply_text(body, last, prompt)), body.get("max_output_tokens")
        )
        output.append(_message_item(body, pieces, incomplete=incomplete))
    produced = sum(_item_tokens(item) for item in output)
    return Plan(output, _input_tokens(body, items), produced + reasoning, reasoning, incomplete)


def _reasoning_tokens(body: dict[str, Any]) -> int:
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    if isinstance(reasoning, dict) and effort is None:
        effort = "medium"
    return c.reasoning_tokens(effort, body["model"])


def _reasoning_item(body: dict[str, Any], prompt: str) -> OutputItem:
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    wants_summary = (
        reasoning.get("summary") in _SUMMARY_MODES
        or reasoning.get("generate_summary") in _SUMMARY_MODES
    )
    text = f"**Answering briefly**\n\n{c.thinking_text(prompt)}" if wants_summary else ""
    summary = [{"type": "summary_text", "text": text}] if wants_summary else []
    final = {
        "id": c.stable_id("rs_", body, "reasoning", length=48),
        "type": "reasoning",
        "summary": summary,
    }
    return OutputItem(final, c.split_pieces(text))


def _pick_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = [
        t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict) and choice.get("name"):
        return next((t for t in tools if t.get("name") == choice["name"]), tools[0])
    return tools[0]


def _function_call_item(body: dict[str, Any], tool: dict[str, Any], prompt: str) -> OutputItem:
    schema = tool.get("parameters") or {"type": "object", "properties": {}}
    arguments = dumps(c.fill_schema(schema, c.topic_word(prompt)))
    final = {
        "id": c.stable_id("fc_", body, "call", length=48),
        "type": "function_call",
        "status": "completed",
        "arguments": arguments,
        "call_id": c.stable_id("call_", body, length=24),
        "name": str(tool.get("name", "tool")),
    }
    return OutputItem(final, c.split_fragments(arguments))


def _text_format(body: dict[str, Any]) -> dict[str, Any]:
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    return fmt if isinstance(fmt, dict) and fmt.get("type") else {"type": "text"}


def _reply_text(body: dict[str, Any], last: dict[str, Any], prompt: str) -> str:
    if last.get("type") == "function_call_output":
        return c.tool_result_answer(c.text_of(last.get("output")))
    fmt = _text_format(body)
    if fmt["type"] == "json_object":
        return c.json_text({"answer": c.answer_text(prompt)})
    if fmt["type"] == "json_schema":
        schema = fmt.get("schema") or {"type": "object", "properties": {}}
        return c.json_text(c.fill_schema(schema, c.topic_word(prompt)))
    return c.answer_text(prompt)


def _message_item(
    body: dict[str, Any], pieces: list[str], *, refusal: bool = False, incomplete: bool = False
) -> OutputItem:
    text = "".join(pieces)
    part = (
        {"type": "refusal", "refusal": text}
        if refusal
        else {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    )
    final = {
        "id": c.stable_id("msg_", body, "message", length=48),
        "type": "message",
        "status": "incomplete" if incomplete else "completed",
        "role": "assistant",
        "content": [part],
    }
    return OutputItem(final, pieces)


def _item_tokens(item: OutputItem) -> int:
    if item.type == "function_call":
        return c.count_tokens(item.final["arguments"]) + 8
    return len(item.pieces) if item.type == "message" else 0


def _input_tokens(body: dict[str, Any], items: list[dict[str, Any]]) -> int:
    total = c.count_tokens(c.text_of(body.get("instructions")))
    total += sum(3 + c.count_tokens(c.text_of(item)) for item in items)
    if body.get("tools"):
        total += c.count_tokens(dumps(body["tools"]))
    return total


def _usage(body: dict[str, Any], plan: Plan) -> dict[str, Any]:
    cached = c.cached_prompt_tokens(plan.input_tokens, body.get("prompt_cache_key"))
    return {
        "input_tokens": plan.input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": plan.input_tokens + plan.output_tokens,
    }


def _response(
    body: dict[str, Any], ctx: Context, plan: Plan, *, final: bool, status: str | None = None
) -> dict[str, Any]:
    if status is None:
        status = ("incomplete" if plan.incomplete else "completed") if final else "in_progress"
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    tier = body.get("service_tier")
    return {
        "id": _response_id(body),
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "background": bool(body.get("background")),
        "completed_at": ctx.created if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"}
        if final and plan.incomplete
        else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": [item.final for item in plan.items] if final else [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": tier if tier in _TIERS else "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": _text_format(body), "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _usage(body, plan) if final else None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


class _Sequence:
    def __init__(self) -> None:
        self.events: list[SSEEvent] = []

    def add(self, type_: str, **fields: Any) -> None:
        payload = {"type": type_, **fields, "sequence_number": len(self.events)}
        self.events.append(SSEEvent.of(payload, type_))


def _stream_events(body: dict[str, Any], plan: Plan, ctx: Context) -> list[SSEEvent]:
    seq = _Sequence()
    pending = _response(body, ctx, plan, final=False)
    if body.get("background"):
        seq.add("response.created", response={**pending, "status": "queued"})
    else:
        seq.add("response.created", response=pending)
    seq.add("response.in_progress", response=pending)
    for index, item in enumerate(plan.items):
        _EMITTERS[item.type](seq, index, item)
    final = _response(body, ctx, plan, final=True)
    seq.add("response.incomplete" if plan.incomplete else "response.completed", response=final)
    if ctx.is_("stream_error"):
        return _with_stream_error(seq.events, pending, ctx)
    return seq.events


def _emit_reasoning(seq: _Sequence, index: int, item: OutputItem) -> None:
    final = item.final
    seq.add("response.output_item.added", output_index=index, item={**final, "summary": []})
    if final["summary"]:
        ids = {"item_id": final["id"], "output_index": index, "summary_index": 0}
        text = final["summary"][0]["text"]
        seq.add(
            "response.reasoning_summary_part.added",
            **ids,
            part={"type": "summary_text", "text": ""},
        )
        for piece in item.pieces:
            seq.add("response.reasoning_summary_text.delta", **ids, delta=piece)
        seq.add("response.reasoning_summary_text.done", **ids, text=text)
        seq.add(
            "response.reasoning_summary_part.done",
            **ids,
            part={"type": "summary_text", "text": text},
        )
    seq.add("response.output_item.done", output_index=index, item=final)


def _emit_function_call(seq: _Sequence, index: int, item: OutputItem) -> None:
    final = item.final
    started = {**final, "arguments": "", "status": "in_progress"}
    seq.add("response.output_item.added", output_index=index, item=started)
    for piece in item.pieces:
        seq.add(
            "response.function_call_arguments.delta",
            item_id=final["id"],
            output_index=index,
            delta=piece,
        )
    seq.add(
        "response.function_call_arguments.done",
        item_id=final["id"],
        output_index=index,
        arguments=final["arguments"],
    )
    seq.add("response.output_item.done", output_index=index, item=final)


def _emit_message(seq: _Sequence, index: int, item: OutputItem) -> None:
    final = item.final
    part = final["content"][0]
    seq.add(
        "response.output_item.added",
        output_index=index,
        item={**final, "status": "in_progress", "content": []},
    )
    ids = {"item_id": final["id"], "output_index": index, "content_index": 0}
    if part["type"] == "refusal":
        seq.add("response.content_part.added", **ids, part={"type": "refusal", "refusal": ""})
        for piece in item.pieces:
            seq.add("response.refusal.delta", **ids, delta=piece)
        seq.add("response.refusal.done", **ids, refusal=part["refusal"])
    else:
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        seq.add("response.content_part.added", **ids, part=empty)
        for piece in item.pieces:
            seq.add("response.output_text.delta", **ids, delta=piece, logprobs=[])
        seq.add("response.output_text.done", **ids, text=part["text"], logprobs=[])
    seq.add("response.content_part.done", **ids, part=part)
    seq.add("response.output_item.done", output_index=index, item=final)


_EMITTERS = {
    "reasoning": _emit_reasoning,
    "function_call": _emit_function_call,
    "message": _emit_message,
}


def _with_stream_error(
    events: list[SSEEvent], pending: dict[str, Any], ctx: Context
) -> list[SSEEvent]:
    keep = int(ctx.scenario.number(3)) if ctx.scenario else 3
    message = "The server had an error while processing your request. Sorry about that!"
    error = {
        "type": "error",
        "code": "server_error",
        "message": message,
        "param": None,
        "sequence_number": keep,
    }
    failed = {**pending, "status": "failed", "error": {"code": "server_error", "message": message}}
    done = {"type": "response.failed", "response": failed, "sequence_number": keep + 1}
    return [*events[:keep], SSEEvent.of(error, "error"), SSEEvent.of(done, "response.failed")]
