"""Ollama's REST API as the devserver speaks it: `POST /api/chat`, `/api/generate`, `/api/embed`
and the legacy `/api/embeddings`.

Streams (the default, as in Ollama, unless the request says `"stream": false`) are NDJSON:
one JSON object per line, the last with `done: true`, `done_reason`, the token counts
(`prompt_eval_count`, `eval_count`) and durations in nanoseconds. Errors are Ollama's
`{"error": "..."}` with the status code; an error in the middle of a stream is such a line.
Any model name is served (a real server 404s a model it has not pulled: the `not_found`
scenario answers that way).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import content as c
from .openai_embeddings import vector_for
from .protocol import WireProtocol
from .reply import JSONLine, Reply, json_reply, ndjson_reply
from .scenarios import Context

_DIMENSIONS = 384
_NS_PER_TOKEN = 20_000_000  # 50 tokens/s, for plausible durations
_LOAD_NS = 2_000_000

_ERRORS: dict[str, tuple[int, str]] = {
    "rate_limit": (429, "too many requests"),
    "flaky": (429, "too many requests (flaky scenario)"),
    "server_error": (500, "llama runner process has terminated: exit status 2"),
    "bad_request": (400, "invalid request: rejected by the devserver"),
    "auth": (401, "unauthorized"),
    "permission": (403, "forbidden"),
    "not_found": (404, 'model "{model}" not found, try pulling it first'),
    "overloaded": (503, "server busy, please try again.  maximum pending requests exceeded"),
}


def error_body(message: str) -> dict[str, Any]:
    return {"error": message}


def _error(status: int, message: str) -> Reply:
    return json_reply(error_body(message), status)


@dataclass
class Plan:
    """What the model answers: thinking and text pieces, tool calls, why it stopped."""

    thinking: list[str]
    pieces: list[str]
    tool_calls: list[dict[str, Any]]
    done_reason: str
    prompt_tokens: int

    @property
    def output_tokens(self) -> int:
        calls = sum(
            c.count_tokens(c.json_text(t["function"]["arguments"])) for t in self.tool_calls
        )
        return len(self.thinking) + len(self.pieces) + calls


# endpoints ------------------------------------------------------------------------------


def chat(body: dict[str, Any], ctx: Context) -> Reply:
    problem = _validate(body) or _validate_messages(body.get("messages"))
    if problem:
        return _error(400, problem)
    plan = _chat_plan(body)
    return _reply(body, plan, ctx, _chat_fields)


def generate(body: dict[str, Any], ctx: Context) -> Reply:
    problem = _validate(body)
    if problem:
        return _error(400, problem)
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    prompt_tokens = c.count_tokens(str(body.get("system") or "")) + c.count_tokens(prompt) + 4
    if not prompt:  # an empty prompt loads the model and answers nothing
        return _reply(body, Plan([], [], [], "load", 0), ctx, _generate_fields)
    plan = _text_plan(body, prompt, prompt_tokens)
    return _reply(body, plan, ctx, _generate_fields)


def embed(body: dict[str, Any], ctx: Context) -> Reply:
    problem = _validate(body)
    if problem:
        return _error(400, problem)
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
        return _error(400, "invalid input type")
    dims = body.get("dimensions") or _DIMENSIONS
    if not isinstance(dims, int) or dims < 1:
        return _error(400, "dimensions must be a positive integer")
    tokens = sum(c.count_tokens(text) for text in inputs)
    return json_reply(
        {
            "model": body["model"],
            "embeddings": [vector_for(text, dims) for text in inputs],
            "total_duration": _LOAD_NS + tokens * 1_000_000,
            "load_duration": _LOAD_NS,
            "prompt_eval_count": tokens,
        }
    )


def embeddings(body: dict[str, Any], ctx: Context) -> Reply:
    problem = _validate(body)
    if problem:
        return _error(400, problem)
    prompt = body.get("prompt")
    vector = vector_for(prompt, _DIMENSIONS) if isinstance(prompt, str) and prompt else []
    return json_reply({"embedding": vector})


# plans ----------------------------------------------------------------------------------


def _validate(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    return None


def _validate_messages(messages: Any) -> str | None:
    if messages is None:
        return None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return "messages must be a list of objects"
    return None


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("options")
    return options if isinstance(options, dict) else {}


def _chat_plan(body: dict[str, Any]) -> Plan:
    messages = body.get("messages") or []
    prompt_tokens = sum(
        4 + c.count_tokens(str(m.get("content") or "")) for m in messages if isinstance(m, dict)
    )
    prompt_tokens += sum(c.count_tokens(c.json_text(t)) for t in body.get("tools") or [])
    if not messages:  # no messages: the model is loaded, nothing is said
        return Plan([], [], [], "load", 0)
    last = messages[-1]
    prompt = next(
        (str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), ""
    )
    if last.get("role") == "tool":
        text = c.tool_result_answer(str(last.get("content") or ""))
        return Plan(_thinking(body, prompt), c.split_pieces(text), [], "stop", prompt_tokens)
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("function")]
    if tools and last.get("role") == "user":
        function = tools[0]["function"]
        arguments = c.fill_schema(function.get("parameters") or {}, c.topic_word(prompt))
        call = {
            "function": {
                "name": function.get("name", ""),
                "arguments": arguments if isinstance(arguments, dict) else {},
            }
        }
        return Plan(_thinking(body, prompt), [], [call], "stop", prompt_tokens)
    return _text_plan(body, prompt, prompt_tokens)


def _text_plan(body: dict[str, Any], prompt: str, prompt_tokens: int) -> Plan:
    fmt = body.get("format")
    if fmt == "json":
        text = c.json_text({"answer": c.answer_text(prompt)})
    elif isinstance(fmt, dict) and fmt:
        text = c.json_text(c.fill_schema(fmt, c.topic_word(prompt)))
    elif c.is_refusal(prompt):
        text = c.REFUSAL_TEXT
    else:
        text = c.answer_text(prompt)
    pieces, cut = c.truncate(c.split_pieces(text), _options(body).get("num_predict"))
    stops = _options(body).get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        joined = "".join(pieces)
        if isinstance(stop, str) and stop and stop in joined:
            pieces, cut = c.split_pieces(joined[: joined.index(stop)]), False
    reason = "length" if cut else "stop"
    return Plan(_thinking(body, prompt), pieces, [], reason, prompt_tokens)


def _thinking(body: dict[str, Any], prompt: str) -> list[str]:
    think = body.get("think")
    if think in (None, False, "", "none"):
        return []
    return c.split_pieces(c.thinking_text(prompt))


# replies --------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _chat_fields(
    thinking: str, text: str, tool_calls: list[dict[str, Any]] | None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"message": message}


def _generate_fields(
    thinking: str, text: str, tool_calls: list[dict[str, Any]] | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {"response": text}
    if thinking:
        fields["thinking"] = thinking
    return fields


def _final(body: dict[str, Any], plan: Plan) -> dict[str, Any]:
    output = plan.output_tokens
    prompt_ns = plan.prompt_tokens * 1_000_000
    eval_ns = output * _NS_PER_TOKEN
    final: dict[str, Any] = {
        "done": True,
        "done_reason": plan.done_reason,
        "total_duration": _LOAD_NS + prompt_ns + eval_ns,
        "load_duration": _LOAD_NS,
    }
    if plan.done_reason != "load":
        final.update(
            prompt_eval_count=plan.prompt_tokens,
            prompt_eval_duration=prompt_ns,
            eval_count=output,
            eval_duration=eval_ns,
        )
    if "prompt" in body and plan.done_reason != "load":
        final["context"] = list(range(1, plan.prompt_tokens + output + 1))[:64]
    return final


def _reply(body: dict[str, Any], plan: Plan, ctx: Context, fields: Any) -> Reply:
    head = {"model": body["model"], "created_at": _now()}
    if body.get("stream", True) is False:
        whole = fields("".join(plan.thinking), "".join(plan.pieces), plan.tool_calls)
        return json_reply({**head, **whole, **_final(body, plan)})
    lines = [JSONLine.of({**head, **fields(p, "", None), "done": False}) for p in plan.thinking]
    lines += [JSONLine.of({**head, **fields("", p, None), "done": False}) for p in plan.pieces]
    if plan.tool_calls:
        lines.append(JSONLine.of({**head, **fields("", "", plan.tool_calls), "done": False}))
    lines.append(JSONLine.of({**head, **fields("", "", None), **_final(body, plan)}))
    if ctx.is_("stream_error"):
        keep = int(ctx.scenario.number(3)) if ctx.scenario else 3
        lines = [
            *lines[:keep],
            JSONLine.of(
                error_body("an error was encountered while running the model: unexpected EOF")
            ),
        ]
    return ndjson_reply(lines)


# protocol -------------------------------------------------------------------------------


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    status, message = _ERRORS[kind]
    reply = _error(status, message.format(model=model))
    if kind in ("rate_limit", "flaky"):
        reply.headers["retry-after"] = "1"
    return reply


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    return _error(status, "404 page not found" if status == 404 else message)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {}


PROTOCOL = WireProtocol(
    name="ollama",
    routes={
        "/api/chat": chat,
        "/api/generate": generate,
        "/api/embed": embed,
        "/api/embeddings": embeddings,
    },
    models=("llama3.2", "qwen3", "nomic-embed-text"),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
)
