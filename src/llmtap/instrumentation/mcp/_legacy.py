"""mcp 1.x (1.10 and later): what mcp 2.x does itself, done by llmtap.

mcp 1.x has no tracing of its own. On the client, ``BaseSession.send_request`` of a
``ClientSession`` is the request span (as in ``_client``), and the W3C trace context of that
span is put into a copy of the request's ``params._meta`` through the global propagator. On
the server, the low-level ``Server._handle_request`` (which FastMCP's handlers run under) is
a SERVER span whose parent is the context extracted from that ``_meta``; the response
``RequestResponder.respond`` sends for it gives the JSON-RPC error code, ``tool_error`` and
the tool's result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once
from llmtap.instrumentation.mcp._client import send_request_wrapper
from llmtap.instrumentation.mcp._common import (
    TOOL_ERROR,
    TOOLS_CALL,
    detach,
    is_tool_error,
    mcp_invocation,
    off,
    to_json,
    tool_result,
)
from llmtap.instrumentation.mcp._server import HANDLING_KEY


def client_send_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    """``BaseSession.send_request``: the request span of a client session, with its trace
    context in the request's ``params._meta``."""
    traced = send_request_wrapper(telemetry, prepare=_prepare)

    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        if not _is_client(instance):
            return await wrapped(*args, **kwargs)
        return await traced(wrapped, instance, args, kwargs)

    return wrapper


def _is_client(session: Any) -> bool:
    return any(cls.__name__ == "ClientSession" for cls in type(session).__mro__)


def _prepare(inv: Invocation, session: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Runs with the request's span current: its id and the request with the trace context."""
    request_id = getattr(session, "_request_id", None)
    if isinstance(request_id, int):
        inv.attributes[semconv.JSONRPC_REQUEST_ID] = str(request_id)
    if args:
        return (_with_trace_context(args[0]), *args[1:]), kwargs
    if "request" in kwargs:
        return args, {**kwargs, "request": _with_trace_context(kwargs["request"])}
    return args, kwargs


def _with_trace_context(request: Any) -> Any:
    from mcp import types

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    inner = getattr(request, "root", None)
    if not carrier or inner is None or not hasattr(inner, "params"):
        return request
    params = inner.params
    if params is None:
        params_type = _params_type(type(inner))
        if params_type is None:
            return request
        params = params_type()
    meta = params.meta.model_dump() if params.meta is not None else {}
    params = params.model_copy(update={"meta": types.RequestParams.Meta(**meta, **carrier)})
    return type(request)(inner.model_copy(update={"params": params}))


def _params_type(request_type: type) -> type | None:
    """The params model of a request whose params are optional (``tools/list``)."""
    field = getattr(request_type, "model_fields", {}).get("params")
    for candidate in getattr(field.annotation, "__args__", ()) if field else ():
        if isinstance(candidate, type) and "meta" in getattr(candidate, "model_fields", {}):
            return candidate
    return None


def handle_request_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    """``Server._handle_request(message, req, session, lifespan_context, raise_exceptions)``."""

    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        inv = None if off(telemetry) or len(args) < 2 else _begin(telemetry, *args[:2])
        if inv is None:
            return await wrapped(*args, **kwargs)
        token = otel_context.attach(
            otel_context.set_value(HANDLING_KEY, inv, trace.set_span_in_context(inv.span))
        )
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            detach(token, "an MCP server request")
            telemetry.fail(inv, exc)
            raise
        detach(token, "an MCP server request")
        telemetry.stop(inv)
        return result

    return wrapper


def _begin(telemetry: Telemetry, message: Any, req: Any) -> Invocation | None:
    try:
        method = getattr(req, "method", None)
        if not isinstance(method, str):
            return None
        params = getattr(req, "params", None)
        inv = mcp_invocation(method, getattr(params, "name", None), SpanKind.SERVER)
        request_id = getattr(message, "request_id", None)
        if request_id is not None:
            inv.attributes[semconv.JSONRPC_REQUEST_ID] = str(request_id)
        uri = getattr(params, "uri", None)
        if uri is not None:
            inv.attributes[semconv.MCP_RESOURCE_URI] = str(uri)
        if method == TOOLS_CALL and telemetry.settings.capture.any:
            arguments = getattr(params, "arguments", None)
            if arguments is not None:
                inv.attributes[semconv.TOOL_CALL_ARGUMENTS] = to_json(arguments)
        return telemetry.start(inv, attach=False, parent=_remote_parent(message))
    except Exception as exc:
        log_once("MCP server request", exc)
        return None


def _remote_parent(message: Any) -> otel_context.Context | None:
    """The context the client put in ``params._meta``; None (the current one) without it."""
    meta = getattr(message, "request_meta", None)
    carrier = meta.model_dump() if meta is not None else {}
    if not isinstance(carrier.get("traceparent"), str):
        return None
    ctx = propagate.extract(carrier)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def respond_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    """``RequestResponder.respond``: what the server answers the request being handled."""

    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        inv = otel_context.get_value(HANDLING_KEY)
        if isinstance(inv, Invocation) and not inv.ended and args:
            _response(telemetry, inv, instance, args[0])
        return await wrapped(*args, **kwargs)

    return wrapper


def _response(telemetry: Telemetry, inv: Invocation, responder: Any, response: Any) -> None:
    try:
        attrs = inv.attributes
        if attrs.get(semconv.JSONRPC_REQUEST_ID) != str(getattr(responder, "request_id", "")):
            return
        code = getattr(response, "code", None)
        if isinstance(code, int) and hasattr(response, "message"):  # ErrorData
            attrs[semconv.ERROR_TYPE] = attrs[semconv.RPC_RESPONSE_STATUS_CODE] = str(code)
            return
        if attrs.get(semconv.MCP_METHOD_NAME) != TOOLS_CALL:
            return
        result = getattr(response, "root", response)
        if is_tool_error(result):
            attrs[semconv.ERROR_TYPE] = TOOL_ERROR
        elif telemetry.settings.capture.any:
            attrs[semconv.TOOL_CALL_RESULT] = to_json(tool_result(result))
    except Exception as exc:
        log_once("MCP server response", exc)
