"""OpenAI ``POST /v1/chat/completions`` emulation (JSON and SSE).

Besides ``tools``, the legacy ``functions`` / ``function_call`` request fields are answered the
way the API answers them (an assistant ``function_call``, finish reason ``function_call``), and
a ``role: function`` message last is answered like a tool result. A user message containing
"please filter" gets a choice stopped by the content filter (finish reason ``content_filter``,
an assistant message with no content and Azure's ``content_filter_results``); with "please
filter everything" the filtered choice carries no ``message`` (no ``delta`` when streamed) at
all, as some Azure deployments and gateways send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import content as c
from .reply import Reply, SSEEvent, dumps, json_reply, stream_reply
from .scenarios import Context, openai_error_body

_TIERS = {"default", "flex", "scale", "priority"}
FILTER_TRIGGER = "please filter"
FILTER_ALL_TRIGGER = "please filter everything"
_FILTER_RESULTS = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": True, "severity": "medium"},
}


@dataclass
class ChoicePlan:
    index: int
    finish_reason: str
    content: list[str] | None = None
    refusal: list[str] | None = None
    tool_call: dict[str, str] | None = None
    function_call: dict[str, str] | None = None
    no_message: bool = False

    @property
    def tokens(self) -> int:
        call = self.tool_call or self.function_call
        if call is not None:
            return c.count_tokens(call["arguments"]) + 8
        return len(self.content or self.refusal or [])


def chat_completions(body: dict[str, Any], ctx: Context) -> Reply:
    problem = _validate(body)
    if problem:
        return json_reply(openai_error_body(problem[1], "invalid_request_error", problem[0]), 400)
    n = body.get("n") if isinstance(body.get("n"), int) else 1
    plans = [_plan(body, index, n) for index in range(max(1, n))]
    if ctx.is_("reply") and ctx.scenario is not None and ctx.scenario.arg:
        scripted = c.split_pieces(ctx.scenario.arg)
        plans = [ChoicePlan(plan.index, "stop", content=scripted) for plan in plans]
    if body.get("stream"):
        return stream_reply(_stream_events(body, plans, ctx))
    return json_reply(_completion(body, plans, ctx))


def _validate(body: dict[str, Any]) -> tuple[str, str] | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model", "you must provide a model parameter"
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) for m in messages)
    ):
        return "messages", "'messages' must be a non-empty array of message objects"
    return None


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return c.text_of(message.get("content"))
    return ""


def _plan(body: dict[str, Any], index: int, n: int) -> ChoicePlan:
    messages = body["messages"]
    last = messages[-1]
    prompt = last_user_text(messages)
    if last.get("role") == "user" and c.is_refusal(prompt):
        return ChoicePlan(index, "stop", refusal=c.split_pieces(c.REFUSAL_TEXT))
    if last.get("role") == "user" and FILTER_TRIGGER in prompt.lower():
        return ChoicePlan(index, "content_filter", no_message=FILTER_ALL_TRIGGER in prompt.lower())
    tool = _pick_tool(body) if last.get("role") == "user" else None
    if tool is not None:
        return ChoicePlan(index, "tool_calls", tool_call=_tool_call(body, tool, prompt, index))
    function = _pick_function(body) if last.get("role") == "user" else None
    if function is not None:
        call = _tool_call(body, {"function": function}, prompt, index)
        del call["id"]
        return ChoicePlan(index, "function_call", function_call=call)
    text = _reply_text(body, last, prompt)
    if n > 1 and not _json_format(body):
        text += f" (choice {index})"
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    pieces, cut = c.truncate(c.split_pieces(text), limit)
    return ChoicePlan(index, "length" if cut else "stop", content=pieces)


def _json_format(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        return fmt
    return None


def _reply_text(body: dict[str, Any], last: dict[str, Any], prompt: str) -> str:
    if last.get("role") in ("tool", "function"):
        return c.tool_result_answer(c.text_of(last.get("content")))
    fmt = _json_format(body)
    if fmt is None:
        return c.answer_text(prompt)
    if fmt["type"] == "json_object":
        return c.json_text({"answer": c.answer_text(prompt)})
    schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object", "properties": {}}
    return c.json_text(c.fill_schema(schema, c.topic_word(prompt)))


def _pick_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = [
        t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        return next((t for t in tools if t.get("function", {}).get("name") == name), tools[0])
    return tools[0]


def _pick_function(body: dict[str, Any]) -> dict[str, Any] | None:
    """The legacy ``functions`` list and ``function_call`` ("auto", "none" or {"name": ...})."""
    functions = [f for f in body.get("functions") or [] if isinstance(f, dict) and f.get("name")]
    choice = body.get("function_call")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict) and choice.get("name"):
        return next((f for f in functions if f["name"] == choice["name"]), functions[0])
    return functions[0]


def _tool_call(
    body: dict[str, Any], tool: dict[str, Any], prompt: str, index: int
) -> dict[str, str]:
    function = tool.get("function") or {}
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    arguments = dumps(c.fill_schema(schema, c.topic_word(prompt)))
    call_id = c.stable_id("call_", body, index)
    return {"id": call_id, "name": str(function.get("name", "tool")), "arguments": arguments}


def _prompt_tokens(body: dict[str, Any]) -> int:
    total = 3
    for message in body["messages"]:
        total += 3 + c.count_tokens(c.text_of(message.get("content")))
        for key in ("tool_calls", "function_call"):
            if message.get(key):
                total += c.count_tokens(dumps(message[key]))
    for key in ("tools", "functions"):
        if body.get(key):
            total += c.count_tokens(dumps(body[key]))
    return total


def _usage(body: dict[str, Any], plans: list[ChoicePlan]) -> dict[str, Any]:
    prompt = _prompt_tokens(body)
    reasoning = c.reasoning_tokens(body.get("reasoning_effort"), body["model"]) * len(plans)
    completion = sum(plan.tokens for plan in plans) + reasoning
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": c.cached_prompt_tokens(prompt, body.get("prompt_cache_key")),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _envelope(body: dict[str, Any], ctx: Context, obj: str) -> dict[str, Any]:
    tier = body.get("service_tier")
    return {
        "id": c.stable_id("chatcmpl-", body, length=29),
        "object": obj,
        "created": ctx.created,
        "model": body["model"],
        "service_tier": tier if tier in _TIERS else "default",
        "system_fingerprint": c.SYSTEM_FINGERPRINT,
    }


def _message(plan: ChoicePlan) -> dict[str, Any]:
    if plan.finish_reason == "content_filter":
        return {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(plan.content) if plan.content is not None else None,
        "refusal": "".join(plan.refusal) if plan.refusal is not None else None,
        "annotations": [],
    }
    if plan.tool_call is not None:
        call = plan.tool_call
        function = {"name": call["name"], "arguments": call["arguments"]}
        message["tool_calls"] = [{"id": call["id"], "type": "function", "function": function}]
    if plan.function_call is not None:
        message["function_call"] = dict(plan.function_call)
    return message


def _choice(plan: ChoicePlan) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": plan.index}
    if not plan.no_message:
        choice["message"] = _message(plan)
    choice.update(logprobs=None, finish_reason=plan.finish_reason)
    if plan.finish_reason == "content_filter":
        choice["content_filter_results"] = _FILTER_RESULTS
    return choice


def _completion(body: dict[str, Any], plans: list[ChoicePlan], ctx: Context) -> dict[str, Any]:
    choices = [_choice(p) for p in plans]
    return {
        **_envelope(body, ctx, "chat.completion"),
        "choices": choices,
        "usage": _usage(body, plans),
    }


def _choice_deltas(plan: ChoicePlan) -> list[dict[str, Any]]:
    if plan.no_message:
        return []
    first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    rest: list[dict[str, Any]] = [{"content": piece} for piece in plan.content or []]
    if plan.refusal is not None:
        first.update(content=None, refusal="")
        rest = [{"refusal": piece} for piece in plan.refusal]
    if plan.tool_call is not None:
        call = plan.tool_call
        header = {
            "index": 0,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        first.update(content=None, tool_calls=[header])
        fragments = c.split_fragments(call["arguments"])
        rest = [
            {"tool_calls": [{"index": 0, "function": {"arguments": part}}]} for part in fragments
        ]
    if plan.function_call is not None:
        call = plan.function_call
        first.update(content=None, function_call={"name": call["name"], "arguments": ""})
        fragments = c.split_fragments(call["arguments"])
        rest = [{"function_call": {"arguments": part}} for part in fragments]
    return [first, *rest]


def _stream_events(body: dict[str, Any], plans: list[ChoicePlan], ctx: Context) -> list[SSEEvent]:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = _envelope(body, ctx, "chat.completion.chunk")
    if include_usage:
        base["usage"] = None
    chunks: list[dict[str, Any]] = []
    for plan in plans:
        for delta in _choice_deltas(plan):
            chunks.append({**base, "choices": [_chunk_choice(plan.index, delta, None)]})
        last = _chunk_choice(plan.index, None if plan.no_message else {}, plan.finish_reason)
        if plan.finish_reason == "content_filter":
            last["content_filter_results"] = _FILTER_RESULTS
        chunks.append({**base, "choices": [last]})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _usage(body, plans)})
    events = [SSEEvent.of(chunk) for chunk in chunks]
    if ctx.is_("stream_error"):
        return _with_stream_error(events, ctx)
    return [*events, SSEEvent("[DONE]")]


def _chunk_choice(
    index: int, delta: dict[str, Any] | None, finish_reason: str | None
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index}
    if delta is not None:
        choice["delta"] = delta
    choice.update(logprobs=None, finish_reason=finish_reason)
    return choice


def _with_stream_error(events: list[SSEEvent], ctx: Context) -> list[SSEEvent]:
    keep = int(ctx.scenario.number(3)) if ctx.scenario else 3
    message = "The server had an error while processing your request. Sorry about that!"
    return [*events[:keep], SSEEvent.of(openai_error_body(message, "server_error"))]
