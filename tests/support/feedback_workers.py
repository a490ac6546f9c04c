"""A WSGI app for the cross-process feedback test, served by gunicorn with several workers:
``GET /pid`` names the worker, ``POST /chat`` asks the model (the loopback dev server, from
``OPENAI_BASE_URL``) and returns the response id, ``POST /feedback`` records a thumbs down
for a response id with ``llmtap.record_feedback``. Each worker configures llmtap when it
imports this module (after the fork) and exports its spans over OTLP/gRPC to
``FEEDBACK_WORKERS_OTLP`` (the llmtap service under test)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import openai
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

import llmtap

_telemetry = llmtap.configure(
    service_name="feedback-workers",
    span_exporters=[OTLPSpanExporter(endpoint=os.environ["FEEDBACK_WORKERS_OTLP"], insecure=True)],
)
_client = openai.OpenAI(max_retries=0)


def _chat(_: dict[str, Any]) -> dict[str, Any]:
    reply = _client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is my parcel?"}]
    )
    return {"response_id": reply.id}


def _feedback(body: dict[str, Any]) -> dict[str, Any]:
    record = llmtap.record_feedback(
        response_id=body["response_id"], score="down", comment="not my parcel"
    )
    return {"resolved": record.resolved, "recorded": record.span_context is not None}


_ROUTES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "/pid": lambda _: {},
    "/chat": _chat,
    "/feedback": _feedback,
}


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    route = _ROUTES.get(environ.get("PATH_INFO", ""))
    if route is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(size) or b"{}") if size else {}
    answer = json.dumps({**route(body), "pid": os.getpid()}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))]
    )
    return [answer]
