"""Pinecone's data plane (REST, as the ``pinecone`` SDK's HTTP ``Index`` calls it) on the
devserver: ``POST /vectors/upsert``, ``POST /query``, ``POST /describe_index_stats``,
``POST /vectors/delete``, over a tiny in-memory vector store with cosine scores.

Point ``Pinecone(api_key=...).Index(host=devserver.base_url)`` (or ``pinecone.Index(host=...)``)
at it. Records live per namespace for the devserver's lifetime (tests use their own
namespace). Requests carry no model, so a scenario is chosen by the ``x-devserver-scenario``
header (the SDK's ``additional_headers``); errors have Pinecone's data-plane body
``{"code": <gRPC status code>, "message": ..., "details": []}``.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from .protocol import WireProtocol
from .reply import Reply, json_reply
from .scenarios import Context, _with_retry_headers

_lock = threading.Lock()
# namespace -> id -> {"id", "values", "metadata"?}
_STORE: dict[str, dict[str, dict[str, Any]]] = {}

# scenario -> (HTTP status, gRPC status code, message)
_ERRORS: dict[str, tuple[int, int, str]] = {
    "rate_limit": (429, 8, "Request failed. You've reached the max read units per second."),
    "flaky": (429, 8, "Request failed. You've reached the max read units (flaky scenario)."),
    "server_error": (500, 13, "Internal error"),
    "bad_request": (400, 3, "Invalid request: rejected by the devserver."),
    "auth": (401, 16, "Invalid API Key"),
    "permission": (403, 7, "Access denied."),
    "not_found": (404, 5, "Namespace not found"),
    "overloaded": (503, 14, "Service unavailable, try again later."),
}
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 409: 6, 429: 8, 500: 13, 503: 14}


def _error_body(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": []}


def _bad(message: str) -> Reply:
    return json_reply(_error_body(3, message), 400)


def upsert(body: dict[str, Any], ctx: Context) -> Reply:
    vectors = body.get("vectors")
    if not isinstance(vectors, list) or not vectors:
        return _bad("Invalid request: vectors must be a non-empty list.")
    records = []
    for vector in vectors:
        if not isinstance(vector, dict) or not isinstance(vector.get("id"), str):
            return _bad("Invalid request: each vector needs a string id.")
        values = vector.get("values")
        if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
            return _bad(f"Invalid request: vector {vector['id']} has no dense values.")
        record = {"id": vector["id"], "values": [float(v) for v in values]}
        if isinstance(vector.get("metadata"), dict):
            record["metadata"] = vector["metadata"]
        records.append(record)
    with _lock:
        space = _STORE.setdefault(str(body.get("namespace") or ""), {})
        for record in records:
            space[record["id"]] = record
    return json_reply({"upsertedCount": len(records)})


def delete(body: dict[str, Any], ctx: Context) -> Reply:
    namespace = str(body.get("namespace") or "")
    with _lock:
        if body.get("deleteAll"):
            _STORE.pop(namespace, None)
        else:
            space = _STORE.get(namespace, {})
            for vector_id in body.get("ids") or []:
                space.pop(vector_id, None)
    return json_reply({})


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _matches(record: dict[str, Any], flt: Any) -> bool:
    """Equality filters (``{"field": value}`` or ``{"field": {"$eq": value}}``) only."""
    if not isinstance(flt, dict):
        return True
    metadata = record.get("metadata") or {}
    for key, want in flt.items():
        if isinstance(want, dict):
            want = want.get("$eq", want)
        if metadata.get(key) != want:
            return False
    return True


def query(body: dict[str, Any], ctx: Context) -> Reply:
    top_k = body.get("topK")
    if not isinstance(top_k, int) or not 1 <= top_k <= 10000:
        return _bad("Invalid request: topK must be between 1 and 10000.")
    namespace = str(body.get("namespace") or "")
    with _lock:
        space = dict(_STORE.get(namespace, {}))
    vector = body.get("vector")
    if vector is None and isinstance(body.get("id"), str):
        stored = space.get(body["id"])
        vector = stored["values"] if stored else None
    if not isinstance(vector, list) or not vector:
        return _bad("Invalid request: a dense vector or a stored id is required.")
    scored = sorted(
        (
            (_cosine(vector, record["values"]), record)
            for record in space.values()
            if _matches(record, body.get("filter"))
        ),
        key=lambda pair: -pair[0],
    )[:top_k]
    matches = []
    for score, record in scored:
        match: dict[str, Any] = {"id": record["id"], "score": round(score, 6), "values": []}
        if body.get("includeValues"):
            match["values"] = record["values"]
        if body.get("includeMetadata") and "metadata" in record:
            match["metadata"] = record["metadata"]
        matches.append(match)
    return json_reply({"matches": matches, "namespace": namespace, "usage": {"readUnits": 5}})


def describe_index_stats(body: dict[str, Any], ctx: Context) -> Reply:
    with _lock:
        spaces = {name: len(records) for name, records in _STORE.items() if records}
        dims = {len(r["values"]) for records in _STORE.values() for r in records.values()}
    return json_reply(
        {
            "namespaces": {name: {"vectorCount": count} for name, count in spaces.items()},
            "dimension": min(dims) if dims else 0,
            "indexFullness": 0.0,
            "totalVectorCount": sum(spaces.values()),
            "metric": "cosine",
            "vectorType": "dense",
        }
    )


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    status, code, message = _ERRORS[kind]
    return _with_retry_headers(json_reply(_error_body(code, message), status), kind, ctx.scenario)


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    return json_reply(_error_body(_GRPC_CODES.get(status, 2), message), status)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {
        "x-pinecone-request-id": request_id,
        "x-envoy-upstream-service-time": str(int(delay_ms) + 1),
    }


PROTOCOL = WireProtocol(
    name="pinecone",
    routes={
        "/query": query,
        "/vectors/upsert": upsert,
        "/vectors/delete": delete,
        "/describe_index_stats": describe_index_stats,
    },
    models=(),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
)
