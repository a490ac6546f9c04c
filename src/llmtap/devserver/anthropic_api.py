"""The Anthropic API as the devserver speaks it: `POST /v1/messages` (+ `/count_tokens`)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

from . import content as c
from .protocol import WireProtocol
from .reply import Reply, SSEEvent, dumps, json_reply, stream_reply
from .scenarios import Context, anthropic_error, anthropic_error_body


@dataclass
class Block:
    final: dict[str, Any]
    pieces: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        if self.final["type"] == "tool_use":
            return c.count_tokens(dumps(self.final["input"])) + 8
        if self.final["type"] == "thinking":
            return c.count_tokens(self.final["thinking"]) or 1
        return len(self.pieces)


@dataclass
class Plan:
    blocks: list[Block]
    stop_reason: str
    usage: dict[str, Any]


def messages(body: dict[str, Any], ctx: Context) -> Reply:
    problem = _validate(body)
    if problem:
        return json_reply(
            anthropic_error_body("invalid_request_error", problem, ctx.request_id), 400
        )
    plan = _plan(body, ctx)
    if body.get("stream"):
        return stream_reply(_stream_events(body, plan, ctx))
    return json_reply(_message(body, plan, plan.usage))


def count_tokens(body: dict[str, Any], ctx: Context) -> Reply:
    if not isinstance(body.get("messages"), list):
        return json_reply(
            anthropic_error_body(
                "invalid_request_error", "messages: Field required", ctx.request_id
            ),
            400,
        )
    return json_reply({"input_tokens": sum(tokens for tokens, _ in _segments(body))})


def _validate(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
        return "messages: at least one message is required"
    return None


def _blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _prompt(msgs: list[dict[str, Any]]) -> str:
    for message in reversed(msgs):
        texts = [b.get("text", "") for b in _blocks_of(message) if b.get("type") == "text"]
        if message.get("role") == "user" and texts:
            return " ".join(texts)
    return ""


def _plan(body: dict[str, Any], ctx: Context) -> Plan:
    last = body["messages"][-1]
    prompt = _prompt(body["messages"])
    results = (
        [b for b in _blocks_of(last) if b.get("type") == "tool_result"]
        if last.get("role") == "user"
        else []
    )
    blocks = [_thinking_block(body, prompt)] if _thinking_enabled(body) else []
    tool = None if results or last.get("role") != "user" else _pick_tool(body)
    stop = "end_turn"
    if last.get("role") == "user" and c.is_refusal(prompt):
        blocks.append(_text_block(c.REFUSAL_TEXT))
        stop = "refusal"
    elif results:
        blocks.append(_text_block(c.tool_result_answer(c.text_of(results[-1].get("content")))))
    elif tool is not None:
        blocks += [
            _text_block(f"I'll use the {tool['name']} tool."),
            _tool_block(body, tool, prompt),
        ]
        stop = "tool_use"
    else:
        pieces, cut = c.truncate(c.split_pieces(c.answer_text(prompt)), body["max_tokens"])
        blocks.append(Block({"type": "text", "text": "".join(pieces)}, pieces))
        stop = "max_tokens" if cut else stop
    return Plan(blocks, stop, _usage(body, ctx, blocks))


def _thinking_enabled(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled")


def _thinking_block(body: dict[str, Any], prompt: str) -> Block:
    text = "" if body["thinking"].get("display") == "omitted" else c.thinking_text(prompt)
    digest = hashlib.sha256(dumps([body["messages"], text]).encode()).digest()
    signature = base64.b64encode(b"llmtap-devserver:" + digest * 2).decode()
    return Block(
        {"type": "thinking", "thinking": text, "signature": signature}, c.split_pieces(text)
    )


def _text_block(text: str) -> Block:
    return Block({"type": "text", "text": text}, c.split_pieces(text))


def _pick_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "input_schema" in t]
    choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), tools[0])
    return tools[0]


def _tool_block(body: dict[str, Any], tool: dict[str, Any], prompt: str) -> Block:
    tool_input = c.fill_schema(tool.get("input_schema") or {"type": "object"}, c.topic_word(prompt))
    final = {"type": "tool_use", "id": c.stable_id("toolu_", body, length=24), "name": tool["name"]}
    final["input"] = tool_input if isinstance(tool_input, dict) else {}
    return Block(final, ["", *c.split_fragments(dumps(final["input"]))])


def _segments(body: dict[str, Any]) -> list[tuple[int, bool]]:
    """(tokens, carries cache_control) for tools, system and message blocks, in prompt order."""
    segs = [
        (c.count_tokens(dumps(t)), "cache_control" in t)
        for t in body.get("tools") or []
        if isinstance(t, dict)
    ]
    system = body.get("system")
    system_blocks = [{"text": system}] if isinstance(system, str) else system or []
    segs += [(c.count_tokens(c.text_of(b)), bool(b.get("cache_control"))) for b in system_blocks]
    for message in body.get("messages") or []:
        segs.append((3, False))
        segs += [
            (c.count_tokens(c.text_of(b)), bool(b.get("cache_control")))
            for b in _blocks_of(message)
        ]
    return segs


def _usage(body: dict[str, Any], ctx: Context, blocks: list[Block]) -> dict[str, Any]:
    segs = _segments(body)
    total = sum(tokens for tokens, _ in segs)
    prefix, running = (total if body.get("cache_control") else 0), 0
    for tokens, cached in segs:
        running += tokens
        prefix = running if cached else prefix
    written = prefix if ctx.is_("cache_write") else 0
    usage: dict[str, Any] = {
        "input_tokens": total - prefix,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": prefix - written,
        "cache_creation": {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0},
        "output_tokens": sum(block.tokens for block in blocks),
        "service_tier": "standard",
    }
    thinking = sum(b.tokens for b in blocks if b.final["type"] == "thinking")
    if thinking:
        usage["output_tokens_details"] = {"thinking_tokens": thinking}
    return usage


def _message(body: dict[str, Any], plan: Plan, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": c.stable_id("msg_", body, length=24),
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [block.final for block in plan.blocks],
        "stop_reason": plan.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _event(payload: dict[str, Any]) -> SSEEvent:
    return SSEEvent.of(payload, payload["type"])


def _stream_events(body: dict[str, Any], plan: Plan, ctx: Context) -> list[SSEEvent]:
    start = {**_message(body, plan, {**plan.usage, "output_tokens": 1}), "content": []}
    start.update(stop_reason=None)
    events = [_event({"type": "message_start", "message": start})]
    for index, block in enumerate(plan.blocks):
        events += _block_events(index, block)
    keys = (
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    )
    final_usage = {key: plan.usage[key] for key in keys}
    delta = {"stop_reason": plan.stop_reason, "stop_sequence": None}
    events.append(_event({"type": "message_delta", "delta": delta, "usage": final_usage}))
    events.append(_event({"type": "message_stop"}))
    if ctx.is_("stream_error"):
        keep = int(ctx.scenario.number(3)) if ctx.scenario else 3
        error = anthropic_error_body("overloaded_error", "Overloaded", ctx.request_id)
        return [*events[:keep], SSEEvent.of(error, "error")]
    return events


_START_FORMS = {
    "text": lambda final: {"type": "text", "text": ""},
    "thinking": lambda final: {"type": "thinking", "thinking": "", "signature": ""},
    "tool_use": lambda final: {**final, "input": {}},
}


def _block_events(index: int, block: Block) -> list[SSEEvent]:
    kind = block.final["type"]
    events = [
        _event(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": _START_FORMS[kind](block.final),
            }
        )
    ]
    if index == 0:
        events.append(SSEEvent.of({"type": "ping"}, "ping"))
    for delta in _deltas(block):
        events.append(_event({"type": "content_block_delta", "index": index, "delta": delta}))
    events.append(_event({"type": "content_block_stop", "index": index}))
    return events


def _deltas(block: Block) -> list[dict[str, Any]]:
    kind = block.final["type"]
    if kind == "tool_use":
        return [{"type": "input_json_delta", "partial_json": piece} for piece in block.pieces]
    if kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in block.pieces]
        return [*deltas, {"type": "signature_delta", "signature": block.final["signature"]}]
    return [{"type": "text_delta", "text": piece} for piece in block.pieces]


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    return anthropic_error(kind, model, ctx)


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    type_ = "not_found_error" if status == 404 else "invalid_request_error"
    return json_reply(anthropic_error_body(type_, message, ctx.request_id), status)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {"request-id": request_id, "anthropic-organization-id": "llmtap-devserver"}


PROTOCOL = WireProtocol(
    name="anthropic",
    routes={"/messages": messages, "/messages/count_tokens": count_tokens},
    models=("claude-sonnet-4-6", "claude-haiku-4-5"),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
)
