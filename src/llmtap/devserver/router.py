"""Pure request -> `Reply` dispatch shared by the socket server and the in-process transport."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from .protocol import Endpoint, WireProtocol, discover
from .reply import Reply, json_reply
from .scenarios import Context, error_kind, parse_scenario

PROTOCOLS: tuple[WireProtocol, ...] = discover()
ROUTES: dict[str, Endpoint] = {p: e for proto in PROTOCOLS for p, e in proto.routes.items()}
GET_ROUTES = {p: r for proto in PROTOCOLS for p, r in proto.get_routes.items()}
MODELS = tuple(name for proto in PROTOCOLS for name in proto.models)
_OWNER = {name: proto.name for proto in PROTOCOLS for name in proto.models}


def protocol_for(route: str) -> WireProtocol:
    """The protocol that owns ``route``, or the fallback one."""
    for proto in PROTOCOLS:
        if proto.owns(route):
            return proto
    return next(proto for proto in PROTOCOLS if proto.fallback)


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
    protocol = protocol_for(route)
    ctx = Context(
        request_id=f"req_{uuid.uuid4().hex}",
        created=int(time.time()) if created is None else created,
    )
    query = dict(parse_qsl(path.partition("?")[2]))
    reply = _dispatch(method.upper(), route, lowered, body, ctx, query)
    reply.delay_ms += latency_ms
    reply.chunk_delay_ms = latency_ms if chunk_latency_ms is None else chunk_latency_ms
    reply.headers.update(protocol.headers(ctx.request_id, reply.delay_ms))
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
    endpoint, params = ROUTES.get(route), None
    if endpoint is None:
        endpoint, params = _matched(route)
    if endpoint is None:
        return _error(route, 404, f"Invalid URL ({method} {route})", ctx)
    if method != "POST":
        return _error(route, 405, f"Method {method} not allowed on {route}", ctx)
    body = _decode(raw)
    if body is None:
        return _error(route, 400, "The request body is not a valid JSON object.", ctx)
    if params:
        body = {**body, **params}
    try:
        scenario = parse_scenario(headers, body.get("model"))
    except ValueError as exc:
        return _error(route, 400, str(exc), ctx)
    return _serve(endpoint, route, headers, body, Context(ctx.request_id, ctx.created, scenario))


def _matched(route: str) -> tuple[Endpoint | None, dict[str, Any] | None]:
    """A protocol's parameterized route (the model in the path), if one matches."""
    for proto in PROTOCOLS:
        found = proto.match(route) if proto.match is not None else None
        if found is not None:
            return found
    return None, None


def _serve(
    endpoint: Endpoint, route: str, headers: dict[str, str], body: dict[str, Any], ctx: Context
) -> Reply:
    kind = error_kind(ctx.scenario, headers)
    if kind is None:
        return _apply_scenario(endpoint(body, ctx), ctx)
    return protocol_for(route).scenario_error(kind, body.get("model"), ctx)


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
    return protocol_for(route).request_error(status, message, ctx)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": _OWNER[name]}
