"""The Groq HTTP API as the devserver speaks it: ``POST /openai/v1/chat/completions`` (JSON
and SSE) and ``POST /openai/v1/embeddings``.

Groq serves OpenAI's chat-completions format under ``/openai/v1``; the replies are the OpenAI
emulation's, made Groq's: an ``x_groq`` object with the request id (in the first stream
chunk, and with the ``usage`` in the chunk that ends the stream: Groq always sends it there,
``stream_options.include_usage`` or not), Groq's usage timings, ``service_tier``
``on_demand``, and errors as ``{"error": {"message", "type", "code"}}``. The SDK's base URL
is the server's root (``Groq(base_url="http://127.0.0.1:PORT")``).
"""

from __future__ import annotations

from typing import Any

from .openai_chat import chat_completions
from .openai_embeddings import embeddings as openai_embeddings
from .protocol import WireProtocol
from .reply import Reply, SSEEvent, json_reply
from .scenarios import Context, openai_error

PREFIX = "/openai/v1"
_TIERS = {"on_demand", "flex", "performance"}
_EMBEDDING_DIMENSIONS = 768


def groq_error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type_}
    if param:
        error["param"] = param
    if code:
        error["code"] = code
    return {"error": error}


def _groq_error(reply: Reply) -> Reply:
    """An OpenAI-emulation error reply in Groq's shape."""
    if isinstance(reply.body, dict) and isinstance(reply.body.get("error"), dict):
        error = reply.body["error"]
        reply.body = groq_error_body(
            str(error.get("message", "")),
            str(error.get("type", "invalid_request_error")),
            error.get("code"),
            error.get("param"),
        )
    return reply


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    out = {
        "queue_time": 0.0125,
        "prompt_tokens": prompt,
        "prompt_time": round(prompt / 40000, 6),
        "completion_tokens": completion,
        "completion_time": round(completion / 500, 6),
        "total_tokens": prompt + completion,
    }
    out["total_time"] = round(out["prompt_time"] + out["completion_time"], 6)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def _envelope(payload: dict[str, Any], body: dict[str, Any]) -> None:
    tier = body.get("service_tier")
    payload["service_tier"] = tier if tier in _TIERS else "on_demand"
    for choice in payload.get("choices") or ():
        for key in ("message", "delta"):
            message = choice.get(key)
            if isinstance(message, dict):
                for empty in ("refusal", "annotations"):
                    if not message.get(empty):
                        message.pop(empty, None)


def chat(body: dict[str, Any], ctx: Context) -> Reply:
    reply = chat_completions(body, ctx)
    if reply.status != 200:
        return _groq_error(reply)
    x_groq = {"id": ctx.request_id}
    if not reply.is_stream:
        _envelope(reply.body, body)
        reply.body["usage"] = _usage(reply.body["usage"])
        reply.body["x_groq"] = x_groq
        return reply
    usage = _usage(chat_completions({**body, "stream": False}, ctx).body["usage"])
    events = reply.events or []
    chunks = [_chunk(event) for event in events]
    # the chunk that ends the stream: the last one with a finish reason
    last = max(
        (i for i, chunk in enumerate(chunks) if chunk and _finished(chunk)),
        default=None,
    )
    out = []
    for index, (event, chunk) in enumerate(zip(events, chunks, strict=True)):
        if chunk is None or "error" in chunk:
            out.append(_error_event(chunk) if chunk else event)
            continue
        _envelope(chunk, body)
        if chunk.get("usage"):
            chunk["usage"] = _usage(chunk["usage"])
        if index == 0:
            chunk["x_groq"] = x_groq
        if index == last:
            chunk["x_groq"] = {**x_groq, "usage": usage}
        out.append(SSEEvent.of(chunk))
    reply.events = out
    return reply


def _chunk(event: SSEEvent) -> dict[str, Any] | None:
    if event.data == "[DONE]":
        return None
    value = event.json()
    return value if isinstance(value, dict) else None


def _finished(chunk: dict[str, Any]) -> bool:
    return any(choice.get("finish_reason") for choice in chunk.get("choices") or ())


def _error_event(chunk: dict[str, Any]) -> SSEEvent:
    error = chunk["error"]
    return SSEEvent.of(
        groq_error_body(str(error.get("message", "")), str(error.get("type", "server_error")))
    )


def embeddings(body: dict[str, Any], ctx: Context) -> Reply:
    if "dimensions" not in body:
        body = {**body, "dimensions": _EMBEDDING_DIMENSIONS}
    reply = openai_embeddings(body, ctx)
    if reply.status != 200:
        return _groq_error(reply)
    return reply


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    return _groq_error(openai_error(kind, model, ctx.scenario))


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    code = "unknown_url" if status == 404 else None
    return json_reply(groq_error_body(message, "invalid_request_error", code), status)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "x-groq-region": "dev",
        "x-ratelimit-limit-requests": "14400",
        "x-ratelimit-remaining-requests": "14399",
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "5990",
        "x-ratelimit-reset-requests": "6s",
        "x-ratelimit-reset-tokens": "100ms",
        "via": "1.1 llmtap-devserver",
        "server-timing": f"dur;dur={int(delay_ms) + 1}",
    }


PROTOCOL = WireProtocol(
    name="groq",
    routes={f"{PREFIX}/chat/completions": chat, f"{PREFIX}/embeddings": embeddings},
    models=("llama-3.3-70b-versatile", "llama-3.1-8b-instant", "nomic-embed-text-v1_5"),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
)
