"""Mistral's HTTP API as the devserver speaks it, under ``/mistral`` (the SDK's ``server_url``
is ``<devserver>/mistral``): Mistral's paths (``/v1/chat/completions``, ``/v1/embeddings``,
``/v1/fim/completions``) are OpenAI's too, which the devserver answers at the root.

- ``POST /mistral/v1/chat/completions``: a ``chat.completion`` (the assistant message with
  ``tool_calls`` and ``prefix``), or with ``stream: true`` SSE ``data:`` chunks ending with
  ``data: [DONE]``, the last chunk carrying the finish reason and ``usage``; a tool call comes
  whole in one delta, as Mistral sends it (no argument fragments);
- ``POST /mistral/v1/agents/completions``: the same for an ``agent_id`` (no ``model`` in the
  request; the reply names the agent's model, ``mistral-large-latest``);
- ``POST /mistral/v1/fim/completions``: fill-in-the-middle (``prompt`` and ``suffix``), the
  chat completion shape, streamed the same way;
- ``POST /mistral/v1/embeddings``: ``input`` (a string or a list), ``output_dimension``.

Replies follow the OpenAI chat emulation's rules (echo, tools, JSON formats, ``max_tokens``
truncation with finish reason ``length``); a user message containing "please overflow" stops
with ``model_length`` (the model's context is full). ``usage`` reports
``prompt_tokens_details.cached_tokens`` as the API does with ``prompt_cache_key``. Errors are
Mistral's bodies, ``{"object": "error", "message", "type", "param", "code"}``; a request
missing a required field gets a 422 whose ``detail`` lists the validation errors; the
``stream_error`` scenario ends the stream with a chunk whose finish reason is ``error``.
"""

from __future__ import annotations

from typing import Any

from . import content as c
from .openai_chat import _pick_tool, _prompt_tokens, _reply_text, _tool_call, last_user_text
from .openai_embeddings import _inputs, vector_for
from .protocol import Endpoint, WireProtocol
from .reply import Reply, SSEEvent, json_reply, stream_reply
from .scenarios import Context, _with_retry_headers

PREFIX = "/mistral"
OVERFLOW_TRIGGER = "please overflow"
AGENT_MODEL = "mistral-large-latest"
_EMBED_DIMENSIONS = {"mistral-embed": 1024, "codestral-embed": 1536}

_ERRORS: dict[str, tuple[int, str, str, str]] = {
    "rate_limit": (429, "rate_limited", "1300", "Requests rate limit exceeded"),
    "flaky": (429, "rate_limited", "1300", "Requests rate limit exceeded (flaky scenario)"),
    "server_error": (500, "internal_server_error", "1000", "Internal server error"),
    "bad_request": (400, "invalid_request_error", "3000", "messages: rejected by the devserver"),
    "auth": (401, "unauthorized", "1001", "Unauthorized"),
    "permission": (403, "forbidden", "1002", "Access to this resource is forbidden"),
    "not_found": (404, "invalid_model", "1500", "Invalid model: {model}"),
    "overloaded": (503, "service_unavailable", "3505", "Service tier capacity exceeded"),
}


def error_body(message: Any, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": type_, "param": None, "code": code}


def validation_error(missing: str, body: dict[str, Any]) -> Reply:
    """FastAPI's 422, as Mistral's API (and the SDK's ``HTTPValidationError``) has it."""
    detail = [{"type": "missing", "loc": ["body", missing], "msg": "Field required", "input": body}]
    return json_reply({"detail": detail}, 422)


# chat, agents, fim ------------------------------------------------------------------------


class _Plan:
    __slots__ = ("finish", "index", "pieces", "tool_call")

    def __init__(self, index: int, finish: str, pieces: list[str], tool_call: Any = None) -> None:
        self.index = index
        self.finish = finish
        self.pieces = pieces
        self.tool_call = tool_call

    @property
    def tokens(self) -> int:
        if self.tool_call is not None:
            return c.count_tokens(self.tool_call["arguments"]) + 8
        return len(self.pieces)


def _missing(body: dict[str, Any], *fields: str) -> str | None:
    for name in fields:
        value = body.get(name)
        if value is None or value == "" or value == []:
            return name
    return None


def _chat_plan(body: dict[str, Any], index: int, n: int) -> _Plan:
    messages = [m for m in body["messages"] if isinstance(m, dict)] or [{"role": "user"}]
    last = messages[-1]
    prompt = last_user_text(messages)
    body = {**body, "messages": messages}
    tool = _pick_tool(body) if last.get("role") == "user" else None
    if tool is not None:
        call = _tool_call(body, tool, prompt, index)
        call["id"] = c.stable_id("", body, index, length=9)
        return _Plan(index, "tool_calls", [], call)
    text = _reply_text(body, last, prompt)
    if n > 1 and "json" not in str((body.get("response_format") or {}).get("type")):
        text += f" (choice {index})"
    pieces, cut = c.truncate(c.split_pieces(text), body.get("max_tokens"))
    if OVERFLOW_TRIGGER in prompt.lower() and not cut:
        pieces, cut = pieces[: max(1, len(pieces) // 2)], True
        return _Plan(index, "model_length", pieces)
    return _Plan(index, "length" if cut else "stop", pieces)


def _usage(prompt: int, plans: list[_Plan], cache_key: Any) -> dict[str, Any]:
    completion = sum(plan.tokens for plan in plans)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
    }
    cached = c.cached_prompt_tokens(prompt, cache_key)
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def _tool_calls(plan: _Plan) -> list[dict[str, Any]] | None:
    call = plan.tool_call
    if call is None:
        return None
    function = {"name": call["name"], "arguments": call["arguments"]}
    return [{"id": call["id"], "type": "function", "function": function, "index": 0}]


def _completion(
    body: dict[str, Any], model: str, plans: list[_Plan], usage: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    choices = [
        {
            "index": plan.index,
            "message": {
                "role": "assistant",
                "content": "".join(plan.pieces),
                "tool_calls": _tool_calls(plan),
                "prefix": False,
            },
            "finish_reason": plan.finish,
        }
        for plan in plans
    ]
    return {
        "id": c.stable_id("", body),
        "object": "chat.completion",
        "model": model,
        "usage": usage,
        "created": ctx.created,
        "choices": choices,
    }


def _stream(
    body: dict[str, Any], model: str, plans: list[_Plan], usage: dict[str, Any], ctx: Context
) -> Reply:
    head = {
        "id": c.stable_id("", body),
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": model,
    }

    def chunk(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**head, "choices": [choice]}

    chunks = []
    for plan in plans:
        chunks.append(chunk(plan.index, {"role": "assistant", "content": ""}, None))
        if plan.tool_call is not None:
            chunks.append(chunk(plan.index, {"tool_calls": _tool_calls(plan)}, None))
        chunks.extend(chunk(plan.index, {"content": piece}, None) for piece in plan.pieces)
        chunks.append(chunk(plan.index, {"content": ""}, plan.finish))
    chunks[-1]["usage"] = usage
    if ctx.is_("stream_error"):
        keep = int(ctx.scenario.number(3)) if ctx.scenario else 3
        chunks = chunks[:keep]
        chunks.append({**chunk(plans[0].index, {"content": ""}, "error"), "usage": usage})
    return stream_reply([*(SSEEvent.of(item) for item in chunks), SSEEvent("[DONE]")])


def _answer(body: dict[str, Any], model: str, plans: list[_Plan], prompt: int, ctx: Context):
    usage = _usage(prompt, plans, body.get("prompt_cache_key"))
    if body.get("stream"):
        return _stream(body, model, plans, usage, ctx)
    return json_reply(_completion(body, model, plans, usage, ctx))


def _choices(body: dict[str, Any]) -> list[_Plan]:
    n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 0 else 1
    return [_chat_plan(body, index, n) for index in range(n)]


def chat_completions(body: dict[str, Any], ctx: Context) -> Reply:
    missing = _missing(body, "model", "messages")
    if missing or not isinstance(body["messages"], list):
        return validation_error(missing or "messages", body)
    return _answer(body, body["model"], _choices(body), _prompt_tokens(body), ctx)


def agents_completions(body: dict[str, Any], ctx: Context) -> Reply:
    missing = _missing(body, "agent_id", "messages")
    if missing or not isinstance(body["messages"], list):
        return validation_error(missing or "messages", body)
    return _answer(body, AGENT_MODEL, _choices(body), _prompt_tokens(body), ctx)


def fim_completions(body: dict[str, Any], ctx: Context) -> Reply:
    missing = _missing(body, "model", "prompt")
    if missing:
        return validation_error(missing, body)
    prompt, suffix = str(body["prompt"]), str(body.get("suffix") or "")
    text = f"pass  # llmtap devserver: between {c.first_words(prompt, 3)!r}"
    text += f" and {c.first_words(suffix, 3)!r}" if suffix else ""
    pieces, cut = c.truncate(c.split_pieces(text), body.get("max_tokens"))
    plans = [_Plan(0, "length" if cut else "stop", pieces)]
    tokens = c.count_tokens(prompt) + c.count_tokens(suffix) + 3
    return _answer(body, body["model"], plans, tokens, ctx)


# embeddings -------------------------------------------------------------------------------


def embeddings(body: dict[str, Any], ctx: Context) -> Reply:
    missing = _missing(body, "model", "input")
    inputs = _inputs(body.get("input"))
    if missing or not inputs:
        return validation_error(missing or "input", body)
    model = body["model"]
    dims = body.get("output_dimension") or _EMBED_DIMENSIONS.get(model, 1024)
    if not isinstance(dims, int) or dims < 1:
        return json_reply(error_body("output_dimension must be positive", "invalid_request"), 400)
    data = [
        {"object": "embedding", "embedding": vector_for(text, dims), "index": index}
        for index, text in enumerate(inputs)
    ]
    tokens = sum(c.count_tokens(text) for text in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0}
    return json_reply(
        {
            "id": c.stable_id("emb", body),
            "object": "list",
            "data": data,
            "model": model,
            "usage": usage,
        }
    )


# the protocol -----------------------------------------------------------------------------


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    status, type_, code, message = _ERRORS[kind]
    if kind == "auth":  # the API gateway answers, not the API
        body: dict[str, Any] = {"message": message, "request_id": ctx.request_id}
    else:
        body = error_body(message.format(model=model), type_, code)
    return _with_retry_headers(json_reply(body, status), kind, ctx.scenario)


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    type_ = "not_found" if status in (404, 405) else "invalid_request_error"
    return json_reply(error_body(message, type_), status)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {
        "mistral-correlation-id": request_id,
        "x-kong-request-id": request_id,
        "x-envoy-upstream-service-time": str(int(delay_ms) + 1),
    }


_ROUTES: dict[str, Endpoint] = {
    f"{PREFIX}/v1/chat/completions": chat_completions,
    f"{PREFIX}/v1/agents/completions": agents_completions,
    f"{PREFIX}/v1/fim/completions": fim_completions,
    f"{PREFIX}/v1/embeddings": embeddings,
}


def _not_found(body: dict[str, Any], ctx: Context) -> Reply:
    return _request_error(404, "Not Found", ctx)


def _match(route: str) -> tuple[Endpoint, dict[str, Any]] | None:
    """Everything under ``/mistral`` is Mistral's (unknown paths get its 404)."""
    if route == PREFIX or route.startswith(PREFIX + "/"):
        return _ROUTES.get(route, _not_found), {}
    return None


PROTOCOL = WireProtocol(
    name="mistral",
    routes=_ROUTES,
    models=("mistral-small-latest", "mistral-large-latest", "codestral-latest", "mistral-embed"),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
    match=_match,
)
