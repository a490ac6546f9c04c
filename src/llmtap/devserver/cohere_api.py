"""The Cohere v2 API as the devserver speaks it: `POST /v2/chat`, `/v2/embed`, `/v2/rerank`.

Chat streams are Cohere's typed SSE events (`event: <type>` plus `data:` JSON carrying the
same `type`): message-start, content-start/delta/end, tool-plan-delta,
tool-call-start/delta/end, message-end (finish reason and usage). Usage has both
`billed_units` and `tokens`; `tokens` also counts the prompt template Cohere adds (a few
tokens per message here), so the two differ. The stream error scenario ends the stream with
a message-end whose finish reason is `ERROR`, as Cohere reports a failed generation.
"""

from __future__ import annotations

import base64
import random
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from . import content as c
from .protocol import WireProtocol
from .reply import Reply, SSEEvent, dumps, json_reply, stream_reply
from .scenarios import Context

TEMPLATE_TOKENS = 4  # per message: the chat template's tokens Cohere counts in `tokens`
DEFAULT_DIMENSIONS = 1024
_WORD = re.compile(r"\w+")


# errors --------------------------------------------------------------------------------------

_ERRORS: dict[str, tuple[int, str]] = {
    "rate_limit": (
        429,
        "You are using a Trial key, which is limited to 10 API calls / minute. You can continue"
        " to use the Trial key for free or upgrade to a Production key with higher rate limits.",
    ),
    "flaky": (429, "Too many requests (flaky scenario)."),
    "server_error": (500, "internal server error, this has been reported to our developers"),
    "bad_request": (400, "invalid request: rejected by the devserver"),
    "auth": (401, "invalid api token"),
    "permission": (403, "You do not have access to this resource."),
    "not_found": (
        404,
        "model '{model}' not found, make sure the correct model ID was used and that you have"
        " access to the model.",
    ),
    "overloaded": (503, "service unavailable"),
}


def error_body(message: str, request_id: str) -> dict[str, Any]:
    """Cohere's error body: an id and a message."""
    return {"id": request_id, "message": message}


def _fail(status: int, message: str, ctx: Context) -> Reply:
    return json_reply(error_body(message, ctx.request_id), status)


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    status, message = _ERRORS[kind]
    reply = _fail(status, message.format(model=model), ctx)
    if kind in ("rate_limit", "flaky"):
        reply.headers["retry-after"] = "1"
    return reply


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    return _fail(status, message, ctx)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {"x-debug-trace-id": request_id, "x-endpoint-monthly-call-limit": "1000"}


# chat ----------------------------------------------------------------------------------------


@dataclass
class Item:
    """One content item (text or thinking) with its stream pieces."""

    kind: str
    pieces: list[str]

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    tool_plan: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    finish: str = "COMPLETE"


def _text(content: Any) -> str:
    if isinstance(content, list):
        texts = [_text(item.get("document", item)) for item in content if isinstance(item, dict)]
        return " ".join(t for t in texts if t)
    if isinstance(content, dict) and "data" in content:
        return _text(content["data"])
    if isinstance(content, dict) and "text" not in content and "content" not in content:
        return dumps(content)
    return c.text_of(content)


def _prompt(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _validate(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "invalid request: model must be a string"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
        return "invalid request: messages must contain at least one message"
    return None


def _function_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools") or []
    return [
        t["function"] for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]


def _plan(body: dict[str, Any]) -> Plan:
    messages = body["messages"]
    last = messages[-1]
    prompt = _prompt(messages)
    plan = Plan()
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        plan.items.append(Item("thinking", c.split_pieces(c.thinking_text(prompt))))
    tools = _function_tools(body)
    if last.get("role") == "tool":
        answer = c.tool_result_answer(_text(last.get("content")))
        plan.items.append(Item("text", c.split_pieces(answer)))
    elif tools and last.get("role") == "user" and body.get("tool_choice") != "NONE":
        tool = tools[0]
        plan.tool_plan = c.split_pieces(f"I will use the {tool.get('name', '')} tool.")
        arguments = c.fill_schema(
            tool.get("parameters") or {"type": "object"}, c.topic_word(prompt)
        )
        plan.calls.append(
            {
                "id": c.stable_id(f"{tool.get('name', 'tool')}_", body, length=12),
                "type": "function",
                "function": {"name": tool.get("name", ""), "arguments": dumps(arguments or {})},
            }
        )
        plan.finish = "TOOL_CALL"
    else:
        plan.items.append(_answer(body, prompt, plan))
    return plan


def _answer(body: dict[str, Any], prompt: str, plan: Plan) -> Item:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        schema = fmt.get("json_schema") or {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
        }
        text = c.json_text(c.fill_schema(schema, c.first_words(prompt, 3) or "hello"))
    else:
        text = c.answer_text(prompt)
        docs = body.get("documents") or []
        if docs:
            text += f" I read {len(docs)} document{'s' if len(docs) != 1 else ''}."
    for stop in body.get("stop_sequences") or []:
        if isinstance(stop, str) and stop and stop in text:
            text = text[: text.index(stop)]
            plan.finish = "STOP_SEQUENCE"
    pieces, cut = c.truncate(c.split_pieces(text), body.get("max_tokens"))
    if cut:
        plan.finish = "MAX_TOKENS"
    return Item("text", pieces)


def _input_tokens(body: dict[str, Any]) -> int:
    total = sum(c.count_tokens(_text(m.get("content"))) for m in body["messages"])
    total += sum(c.count_tokens(dumps(t)) for t in body.get("tools") or [])
    total += sum(c.count_tokens(_text(d)) for d in body.get("documents") or [])
    return total


def _usage(body: dict[str, Any], plan: Plan) -> dict[str, Any]:
    billed_in = _input_tokens(body)
    billed_out = sum(len(item.pieces) for item in plan.items if item.kind == "text")
    billed_out += len(plan.tool_plan) + sum(
        c.count_tokens(call["function"]["arguments"]) + 4 for call in plan.calls
    )
    thinking = sum(len(item.pieces) for item in plan.items if item.kind == "thinking")
    return {
        "billed_units": {"input_tokens": billed_in, "output_tokens": billed_out},
        "tokens": {
            "input_tokens": billed_in + TEMPLATE_TOKENS * len(body["messages"]),
            "output_tokens": billed_out + thinking + 1,
        },
        "cached_tokens": 0,
    }


def _message(plan: Plan) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    if plan.calls:
        message["tool_plan"] = "".join(plan.tool_plan)
        message["tool_calls"] = plan.calls
    if plan.items:
        message["content"] = [
            {"type": "thinking", "thinking": item.text}
            if item.kind == "thinking"
            else {"type": "text", "text": item.text}
            for item in plan.items
        ]
    return message


def chat(body: dict[str, Any], ctx: Context) -> Reply:
    problem = _validate(body)
    if problem:
        return _fail(400, problem, ctx)
    plan = _plan(body)
    response_id = c.stable_id("", body, length=32)
    response_id = "-".join(
        (
            response_id[:8],
            response_id[8:12],
            response_id[12:16],
            response_id[16:20],
            response_id[20:],
        )
    )
    usage = _usage(body, plan)
    if body.get("stream"):
        return stream_reply(_stream_events(response_id, plan, usage, ctx))
    return json_reply(
        {"id": response_id, "finish_reason": plan.finish, "message": _message(plan), "usage": usage}
    )


def _event(payload: dict[str, Any]) -> SSEEvent:
    return SSEEvent.of(payload, payload["type"])


def _stream_events(
    response_id: str, plan: Plan, usage: dict[str, Any], ctx: Context
) -> list[SSEEvent]:
    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    events = [_event({"id": response_id, "type": "message-start", "delta": {"message": start}})]
    for index, item in enumerate(plan.items):
        events += _item_events(index, item)
    for piece in plan.tool_plan:
        events.append(
            _event({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": piece}}})
        )
    for index, call in enumerate(plan.calls):
        events += _call_events(index, call)
    end = {"finish_reason": plan.finish, "usage": usage}
    events.append(_event({"type": "message-end", "delta": end}))
    if ctx.is_("stream_error"):
        keep = int(ctx.scenario.number(3)) if ctx.scenario else 3
        failed = {"error": "internal server error: generation failed", "finish_reason": "ERROR"}
        return [*events[:keep], _event({"type": "message-end", "delta": failed})]
    return events


def _item_events(index: int, item: Item) -> list[SSEEvent]:
    key = item.kind  # "text" or "thinking": also the field that carries the text
    events = [
        _event(
            {
                "type": "content-start",
                "index": index,
                "delta": {"message": {"content": {"type": item.kind, key: ""}}},
            }
        )
    ]
    for piece in item.pieces:
        delta = {"message": {"content": {key: piece}}}
        events.append(_event({"type": "content-delta", "index": index, "delta": delta}))
    events.append(_event({"type": "content-end", "index": index}))
    return events


def _call_events(index: int, call: dict[str, Any]) -> list[SSEEvent]:
    head = {**call, "function": {**call["function"], "arguments": ""}}
    events = [
        _event(
            {"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": head}}}
        )
    ]
    for piece in c.split_fragments(call["function"]["arguments"]):
        delta = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
        events.append(_event({"type": "tool-call-delta", "index": index, "delta": delta}))
    events.append(_event({"type": "tool-call-end", "index": index}))
    return events


# embed ---------------------------------------------------------------------------------------

_EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")


def _vector(text: str, dims: int) -> list[float]:
    rng = random.Random(text)
    return [round(rng.uniform(-1.0, 1.0), 6) for _ in range(dims)]


def _typed(vector: list[float], kind: str) -> Any:
    if kind == "float":
        return vector
    if kind == "int8":
        return [max(-128, min(127, round(v * 127))) for v in vector]
    if kind == "uint8":
        return [max(0, min(255, round((v + 1) * 127.5))) for v in vector]
    if kind == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    packed = []  # binary / ubinary: one bit per dimension, 8 per value
    for start in range(0, len(vector), 8):
        byte = 0
        for v in vector[start : start + 8]:
            byte = (byte << 1) | (1 if v > 0 else 0)
        packed.append(byte - 128 if kind == "binary" else byte)
    return packed


def embed(body: dict[str, Any], ctx: Context) -> Reply:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _fail(400, "invalid request: model must be a string", ctx)
    if not isinstance(body.get("input_type"), str):
        return _fail(400, "invalid request: input_type is required", ctx)
    texts = body.get("texts")
    inputs = [*(texts or []), *(body.get("images") or []), *(body.get("inputs") or [])]
    if not inputs:
        return _fail(400, "invalid request: texts, images or inputs must be given", ctx)
    types = body.get("embedding_types") or ["float"]
    unknown = [t for t in types if t not in _EMBEDDING_TYPES]
    if unknown:
        return _fail(400, f"invalid request: unknown embedding type {unknown[0]!r}", ctx)
    dims = body.get("output_dimension") or DEFAULT_DIMENSIONS
    vectors = [_vector(_text(item) if not isinstance(item, str) else item, dims) for item in inputs]
    embeddings = {kind: [_typed(v, kind) for v in vectors] for kind in types}
    tokens = sum(c.count_tokens(_text(item)) for item in inputs)
    response: dict[str, Any] = {
        "id": c.stable_id("", body, length=32),
        "embeddings": embeddings,
        "texts": list(texts or []),
        "meta": {
            "api_version": {"version": "2"},
            "billed_units": {"input_tokens": tokens},
            "tokens": {"input_tokens": tokens},
        },
        "response_type": "embeddings_by_type",
    }
    return json_reply(response)


# rerank --------------------------------------------------------------------------------------


def relevance(query: str, document: str) -> float:
    """The share of the query's words found in the document, slightly discounted by length."""
    asked = {w.lower() for w in _WORD.findall(query)}
    words = [w.lower() for w in _WORD.findall(document)]
    if not asked or not words:
        return 0.0
    overlap = len(asked & set(words)) / len(asked)
    return round(overlap * 0.99 + 0.01 / (1 + len(words)), 6)


def rerank(body: dict[str, Any], ctx: Context) -> Reply:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _fail(400, "invalid request: model must be a string", ctx)
    query, docs = body.get("query"), body.get("documents")
    if not isinstance(query, str) or not isinstance(docs, list) or not docs:
        return _fail(400, "invalid request: query and documents are required", ctx)
    texts = [d if isinstance(d, str) else _text(d) for d in docs]
    scored = sorted(
        ((relevance(query, text), index) for index, text in enumerate(texts)),
        key=lambda pair: (-pair[0], pair[1]),
    )
    top_n = body.get("top_n")
    if isinstance(top_n, int) and top_n > 0:
        scored = scored[:top_n]
    return json_reply(
        {
            "id": c.stable_id("", body, length=32),
            "results": [{"index": index, "relevance_score": score} for score, index in scored],
            "meta": {
                "api_version": {"version": "2"},
                "billed_units": {"search_units": -(-len(docs) // 100)},
            },
        }
    )


PROTOCOL = WireProtocol(
    name="cohere",
    routes={"/v2/chat": chat, "/v2/embed": embed, "/v2/rerank": rerank},
    models=("command-a-03-2025", "command-r-plus-08-2024", "embed-v4.0", "rerank-v3.5"),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
)
