"""The Together AI HTTP API as the devserver speaks it, under ``/together/v1``: chat
completions and completions (JSON and SSE), embeddings and rerank.

Together's real paths (``/v1/chat/completions`` ...) are OpenAI's, so the devserver serves
them under ``/together``: the SDK's base URL is ``<devserver>/together`` for together 3.x
(``Together(base_url="http://127.0.0.1:PORT/together")``; it adds ``/v1/...``) and
``<devserver>/together/v1`` for 2.x (whose base URL ends with ``/v1``).
Replies are the OpenAI emulation's in Together's shapes: a plain stop is ``eos``, every
choice has a ``seed``, responses carry ``prompt: []``, usage is prompt/completion/total
tokens only, a stream's last chunk (the one with the finish reason) carries the usage (no
``stream_options`` needed), completion chunks have a ``token`` and the finish reason at the
top level, embeddings have no usage. Errors are ``{"id", "error": {"message", "type",
"param", "code"}}``.
"""

from __future__ import annotations

import re
from typing import Any

from . import content as c
from .openai_chat import chat_completions as openai_chat
from .openai_completions import completions as openai_completions
from .openai_embeddings import embeddings as openai_embeddings
from .protocol import WireProtocol
from .reply import Reply, SSEEvent, json_reply
from .scenarios import Context, openai_error, openai_error_body

PREFIX = "/together/v1"
SEED = 14231456
_EMBEDDING_DIMENSIONS = 768
_WORD_RE = re.compile(r"\w+")


def together_error_body(
    message: str, type_: str, request_id: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"id": request_id, **openai_error_body(message, type_, param, code)}


def _together_error(reply: Reply, ctx: Context) -> Reply:
    if isinstance(reply.body, dict) and isinstance(reply.body.get("error"), dict):
        reply.body = {"id": ctx.request_id, **reply.body}
    return reply


def _finish(reason: Any) -> Any:
    return "eos" if reason == "stop" else reason


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _chunk(event: SSEEvent) -> dict[str, Any] | None:
    if event.data == "[DONE]":
        return None
    value = event.json()
    return value if isinstance(value, dict) else None


def _streamed(reply: Reply, usage: dict[str, Any], rewrite: Any) -> Reply:
    """Each JSON chunk through ``rewrite(chunk, is_last)``; the usage on the last chunk with a
    finish reason; errors in Together's shape; ``[DONE]`` kept."""
    events = reply.events or []
    chunks = [_chunk(event) for event in events]
    last = max(
        (i for i, chunk in enumerate(chunks) if chunk and _finished(chunk)),
        default=None,
    )
    out = []
    for index, (event, chunk) in enumerate(zip(events, chunks, strict=True)):
        if chunk is None:
            out.append(event)
        elif "error" in chunk:
            out.append(SSEEvent.of({"error": chunk["error"]}))
        else:
            chunk = rewrite(chunk)
            chunk["usage"] = usage if index == last else None
            out.append(SSEEvent.of(chunk))
    reply.events = out
    return reply


def _finished(chunk: dict[str, Any]) -> bool:
    return bool(chunk.get("finish_reason")) or any(
        choice.get("finish_reason") for choice in chunk.get("choices") or ()
    )


# chat ---------------------------------------------------------------------------------------


def _chat_message(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [{**call, "index": i} for i, call in enumerate(calls)]
    return out


def chat(body: dict[str, Any], ctx: Context) -> Reply:
    body = {key: value for key, value in body.items() if key != "stream_options"}
    reply = openai_chat(body, ctx)
    if reply.status != 200:
        return _together_error(reply, ctx)
    if not reply.is_stream:
        data = reply.body
        reply.body = {
            "id": data["id"],
            "object": "chat.completion",
            "created": data["created"],
            "model": data["model"],
            "prompt": [],
            "choices": [
                {
                    "index": choice["index"],
                    "finish_reason": _finish(choice["finish_reason"]),
                    "logprobs": None,
                    "seed": SEED,
                    "message": _chat_message(choice.get("message") or {}),
                }
                for choice in data["choices"]
            ],
            "usage": _usage(data["usage"]),
        }
        return reply
    usage = _usage(openai_chat({**body, "stream": False}, ctx).body["usage"])
    return _streamed(reply, usage, _chat_chunk)


def _chat_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    choices = []
    for choice in chunk.get("choices") or ():
        delta = dict(choice.get("delta") or {})
        delta.pop("refusal", None)
        delta["role"] = "assistant"
        finish = _finish(choice.get("finish_reason"))
        choices.append(
            {
                "index": choice["index"],
                "text": delta.get("content") or "",
                "logprobs": None,
                "finish_reason": finish,
                "seed": SEED if finish else None,
                "delta": delta,
            }
        )
    return {
        "id": chunk["id"],
        "object": "chat.completion.chunk",
        "created": chunk["created"],
        "model": chunk["model"],
        "choices": choices,
    }


# completions --------------------------------------------------------------------------------


def completions(body: dict[str, Any], ctx: Context) -> Reply:
    body = {key: value for key, value in body.items() if key != "stream_options"}
    reply = openai_completions(body, ctx)
    if reply.status != 200:
        return _together_error(reply, ctx)
    if not reply.is_stream:
        data = reply.body
        reply.body = {
            "id": data["id"],
            "object": "text.completion",
            "created": data["created"],
            "model": data["model"],
            "prompt": [],
            "choices": [
                {
                    "text": choice["text"],
                    "finish_reason": _finish(choice["finish_reason"]),
                    "logprobs": None,
                    "seed": SEED,
                }
                for choice in data["choices"]
            ],
            "usage": _usage(data["usage"]),
        }
        return reply
    usage = _usage(openai_completions({**body, "stream": False}, ctx).body["usage"])
    return _streamed(reply, usage, _completion_chunk)


def _completion_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    choices = chunk.get("choices") or [{}]
    text = choices[0].get("text") or ""
    finish = _finish(choices[0].get("finish_reason"))
    return {
        "id": chunk["id"],
        "object": "completion.chunk",
        "created": chunk["created"],
        "model": chunk["model"],
        "token": {
            "id": 2 if finish else c.count_tokens(text) + 1000,
            "text": text,
            "logprob": 0.0 if finish else -0.25,
            "special": bool(finish),
        },
        "choices": [
            {"index": choice.get("index", 0), "text": choice.get("text") or ""}
            for choice in choices
        ],
        "finish_reason": finish,
        "seed": SEED if finish else None,
    }


# embeddings and rerank ----------------------------------------------------------------------


def embeddings(body: dict[str, Any], ctx: Context) -> Reply:
    if "dimensions" not in body:
        body = {**body, "dimensions": _EMBEDDING_DIMENSIONS}
    reply = openai_embeddings(body, ctx)
    if reply.status != 200:
        return _together_error(reply, ctx)
    reply.body.pop("usage", None)
    return reply


def rerank(body: dict[str, Any], ctx: Context) -> Reply:
    """Scores: the share of the query's words found in the document (ties keep their order)."""
    model, query, documents = body.get("model"), body.get("query"), body.get("documents")
    if not isinstance(model, str) or not model:
        return _invalid("you must provide a model parameter", "model", ctx)
    if not isinstance(query, str) or not isinstance(documents, list) or not documents:
        return _invalid("'query' and a non-empty 'documents' array are required", "query", ctx)
    texts = [_document_text(doc, body.get("rank_fields")) for doc in documents]
    words = {w.lower() for w in _WORD_RE.findall(query)}
    scores = [
        round(len(words & {w.lower() for w in _WORD_RE.findall(text)}) / (len(words) or 1), 4)
        for text in texts
    ]
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    top_n = body.get("top_n")
    if isinstance(top_n, int) and top_n > 0:
        order = order[:top_n]
    results = []
    for index in order:
        item: dict[str, Any] = {"index": index, "relevance_score": scores[index]}
        item["document"] = {"text": texts[index]} if body.get("return_documents") else {}
        results.append(item)
    tokens = c.count_tokens(query) + sum(c.count_tokens(text) for text in texts)
    return json_reply(
        {
            "object": "rerank",
            "id": c.stable_id("rerank-", body),
            "model": model,
            "results": results,
            "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        }
    )


def _document_text(doc: Any, fields: Any) -> str:
    if isinstance(doc, dict):
        keys = fields if isinstance(fields, list) and fields else list(doc)
        return " ".join(str(doc[k]) for k in keys if k in doc)
    return str(doc)


def _invalid(message: str, param: str, ctx: Context) -> Reply:
    body = together_error_body(message, "invalid_request_error", ctx.request_id, param)
    return json_reply(body, 400)


# protocol -----------------------------------------------------------------------------------


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    return _together_error(openai_error(kind, model, ctx.scenario), ctx)


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    return json_reply(together_error_body(message, "invalid_request_error", ctx.request_id), status)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "x-api-call-start": "2026-01-01T00:00:00.000Z",
        "x-inference-version": "v2",
        "x-ratelimit-limit": "100",
        "x-ratelimit-remaining": "99",
        "x-ratelimit-reset": "1",
        "x-total-time-ms": str(int(delay_ms) + 1),
    }


PROTOCOL = WireProtocol(
    name="together",
    routes={
        f"{PREFIX}/chat/completions": chat,
        f"{PREFIX}/completions": completions,
        f"{PREFIX}/embeddings": embeddings,
        f"{PREFIX}/rerank": rerank,
    },
    models=(
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "meta-llama/Llama-2-70b-hf",
        "BAAI/bge-base-en-v1.5",
        "Salesforce/Llama-Rank-V1",
    ),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
)
