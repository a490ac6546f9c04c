"""Pure request -> `Reply` dispatch shared by the socket server and the in-process transport."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from .anthropic_api import count_tokens, messages
from .openai_chat import chat_completions
from .openai_completions import completions
from .openai_embeddings import embeddings
from .openai_responses import responses, retrieve
from .reply import Reply, json_reply
from .scenarios import (
    Context,
    anthropic_error,
    anthropic_error_body,
    error_kind,
    openai_error,
    openai_error_body,
    parse_scenario,
)

Endpoint = Callable[[dict[str, Any], Context], Reply]

# GET /<collection>/<id>: the endpoint gets {"<collection>_id": id, **query parameters}
GET_ROUTES: dict[str, tuple[str, Endpoint]] = {"/responses": ("response_id", retrieve)}
ROUTES: dict[str, Endpoint] = {
    "/chat/completions": chat_completions,
    "/completions": completions,
    "/responses": responses,
    "/embeddings": embeddings,
    "/messages": messages,
    "/messages/count_tokens": count_tokens,
}
MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-5",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
)


def handle(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | str | Mapping[str, Any] | None = None,
    *,
    latency_ms: float = 0.0,
    chunk_latency_ms: float | None = None,
    created: int | None = None,
) -> Reply:
    """Answer one HTTP request. `body` is the raw request body or an already-decoded JSON object."""
    lowered = {key.lower(): value for key, value in headers.items()}
    route = normalize_path(path)
    provider = "anthropic" if route.startswith("/messages") else "openai"
    ctx = Context(
        request_id=f"req_{uuid.uuid4().hex}",
        created=int(time.time()) if created is None else created,
    )
    query = dict(parse_qsl(path.partition("?")[2]))
    reply = _dispatch(method.upper(), route, lowered, body, ctx, query)
    reply.delay_ms += latency_ms
    reply.chunk_delay_ms = latency_ms if chunk_latency_ms is None else chunk_latency_ms
    reply.headers.update(_provider_headers(provider, ctx.request_id, reply.delay_ms))
    return reply


def normalize_path(path: str) -> str:
    route = path.split("?", 1)[0].rstrip("/") or "/"
    if route == "/v1" or route.startswith("/v1/"):
        return route[3:] or "/"
    return route


def _dispatch(
    method: str,
    route: str,
    headers: dict[str, str],
    raw: Any,
    ctx: Context,
    query: dict[str, str] | None = None,
) -> Reply:
    if route in ("/", "/health", "/healthz"):
        return json_reply({"status": "ok"})
    if route == "/models" and method == "GET":
        return json_reply({"object": "list", "data": [_model(name) for name in MODELS]})
    collection, _, item = route.rpartition("/")
    if method == "GET" and item and collection in GET_ROUTES:
        key, getter = GET_ROUTES[collection]
        try:
            scenario = parse_scenario(headers, None)
        except ValueError as exc:
            return _error(route, 400, str(exc), ctx)
        params = {**(query or {}), key: item}
        ctx = Context(ctx.request_id, ctx.created, scenario)
        return _serve(getter, route, headers, params, ctx)
    endpoint = ROUTES.get(route)
    if endpoint is None:
        return _error(route, 404, f"Invalid URL ({method} {route})", ctx)
    if method != "POST":
        return _error(route, 405, f"Method {method} not allowed on {route}", ctx)
    body = _decode(raw)
    if body is None:
        return _error(route, 400, "The request body is not a valid JSON object.", ctx)
    try:
        scenario = parse_scenario(headers, body.get("model"))
    except ValueError as exc:
        return _error(route, 400, str(exc), ctx)
    return _serve(endpoint, route, headers, body, Context(ctx.request_id, ctx.created, scenario))


def _serve(
    endpoint: Endpoint, route: str, headers: dict[str, str], body: dict[str, Any], ctx: Context
) -> Reply:
    kind = error_kind(ctx.scenario, headers)
    if kind is None:
        return _apply_scenario(endpoint(body, ctx), ctx)
    if route.startswith("/messages"):
        return anthropic_error(kind, body.get("model"), ctx)
    return openai_error(kind, body.get("model"), ctx.scenario)


def _decode(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, TypeError):
        return None
    return body if isinstance(body, dict) else None


def _apply_scenario(reply: Reply, ctx: Context) -> Reply:
    scenario = ctx.scenario
    if scenario is None or reply.status != 200:
        return reply
    if scenario.name == "broken_stream":
        total = len(reply.events or [])
        reply.cut_after = max(0, min(int(scenario.number(3)), total - 1)) if reply.is_stream else 0
    elif scenario.name == "slow":
        reply.delay_ms += scenario.number(1000)
    elif scenario.name == "slow_first_chunk":
        if reply.is_stream:
            reply.first_event_delay_ms += scenario.number(1000)
        else:
            reply.delay_ms += scenario.number(1000)
    return reply


def _error(route: str, status: int, message: str, ctx: Context) -> Reply:
    if route.startswith("/messages"):
        type_ = "not_found_error" if status == 404 else "invalid_request_error"
        return json_reply(anthropic_error_body(type_, message, ctx.request_id), status)
    return json_reply(openai_error_body(message, "invalid_request_error"), status)


def _model(name: str) -> dict[str, Any]:
    owner = "anthropic" if name.startswith("claude") else "openai"
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": owner}


def _provider_headers(provider: str, request_id: str, delay_ms: float) -> dict[str, str]:
    if provider == "anthropic":
        return {"request-id": request_id, "anthropic-organization-id": "llmtap-devserver"}
    return {
        "x-request-id": request_id,
        "openai-processing-ms": str(int(delay_ms) + 1),
        "openai-version": "2020-10-01",
        "openai-organization": "llmtap-devserver",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-limit-tokens": "10000000",
        "x-ratelimit-remaining-tokens": "9999000",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-reset-tokens": "0s",
    }
