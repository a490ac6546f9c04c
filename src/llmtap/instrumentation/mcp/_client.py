"""MCP client requests: one ``{mcp.method.name} {target}`` CLIENT span per request.

``ClientSession.send_request`` carries every request (``call_tool``, ``list_tools``,
``read_resource``, ``get_prompt`` and the high-level ``Client``'s calls go through it). Its
span is current while the request is sent, so the SDK's own send span
(``jsonrpc_dispatcher.otel_span``) is merged into it: the SDK adds ``jsonrpc.request.id`` and
a JSON-RPC error code to llmtap's span, and the W3C trace context it injects into the
request's ``params._meta`` (through the global propagator) names llmtap's span, which the
server's span then continues.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once
from llmtap.instrumentation.mcp._common import (
    TOOL_ERROR,
    TOOLS_CALL,
    detach,
    fail,
    is_tool_error,
    mcp_invocation,
    off,
    to_json,
    tool_result,
)
from llmtap.instrumentation.mcp._peer import sent_request_span

# The invocation of the request being sent (its span is current): the SDK's send span merges.
REQUEST_KEY = otel_context.create_key("llmtap.mcp.client_request")


# (invocation, session, args, kwargs) -> (args, kwargs): run with the request's span current
Prepare = Callable[[Invocation, Any, tuple, dict], tuple[tuple, dict]]


def send_request_wrapper(
    telemetry: Telemetry, prepare: Prepare | None = None
) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        inv = None if off(telemetry) else _begin(telemetry, instance, args, kwargs)
        if inv is None:
            return await wrapped(*args, **kwargs)
        token = otel_context.attach(
            otel_context.set_value(REQUEST_KEY, inv, trace.set_span_in_context(inv.span))
        )
        if prepare is not None:
            try:
                args, kwargs = prepare(inv, instance, args, kwargs)
            except Exception as exc:
                log_once("MCP client request context", exc)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            detach(token, "an MCP request")
            fail(telemetry, inv, exc)
            raise
        detach(token, "an MCP request")
        _finish(telemetry, inv, result)
        return result

    return wrapper


def _begin(telemetry: Telemetry, session: Any, args: tuple, kwargs: dict) -> Invocation | None:
    try:
        request = args[0] if args else kwargs["request"]
        request = getattr(request, "root", request)  # a ClientRequest union wrapper
        method = request.method
        if not isinstance(method, str):
            return None
        params = getattr(request, "params", None)
        inv = mcp_invocation(method, getattr(params, "name", None), SpanKind.CLIENT)
        uri = getattr(params, "uri", None)
        if uri is not None:
            inv.attributes[semconv.MCP_RESOURCE_URI] = str(uri)
        version = getattr(session, "protocol_version", None)
        if isinstance(version, str):
            inv.attributes[semconv.MCP_PROTOCOL_VERSION] = version
        outer = _outer_tool_span(inv)
        if outer is not None:
            # the tool call is traced already (an agent framework's execute_tool span): the
            # MCP attributes go on that span (MCP semconv), its content stays the framework's
            inv.span, inv.own_span = outer, False
            inv.start = time.perf_counter()
            return inv
        if method == TOOLS_CALL and telemetry.settings.capture.any:
            arguments = getattr(params, "arguments", None)
            if arguments is not None:
                inv.attributes[semconv.TOOL_CALL_ARGUMENTS] = to_json(arguments)
        return telemetry.start(inv, attach=False)
    except Exception as exc:
        log_once("MCP client request", exc)
        return None


def _outer_tool_span(inv: Invocation) -> trace.Span | None:
    """The current span when it is a recording ``execute_tool`` span of the same tool."""
    name = inv.attributes.get(semconv.TOOL_NAME)
    if name is None:
        return None
    span = trace.get_current_span()
    attributes = getattr(span, "attributes", None)
    if not attributes or not span.is_recording():
        return None
    if attributes.get(semconv.OPERATION) != semconv.OP_EXECUTE_TOOL:
        return None
    return span if attributes.get(semconv.TOOL_NAME) == name else None


def _finish(telemetry: Telemetry, inv: Invocation, result: Any) -> None:
    try:
        if inv.attributes.get(semconv.MCP_METHOD_NAME) == TOOLS_CALL:
            if is_tool_error(result):
                inv.attributes[semconv.ERROR_TYPE] = TOOL_ERROR
            elif telemetry.settings.capture.any and inv.own_span:
                inv.attributes[semconv.TOOL_CALL_RESULT] = to_json(tool_result(result))
    except Exception as exc:
        log_once("MCP client result", exc)
    telemetry.stop(inv)


def send_span_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    """The SDK's send span (``otel_span`` in ``jsonrpc_dispatcher``): inside llmtap's request
    span it is that span; a request sent otherwise (a server's to its client) gets a CLIENT
    span of llmtap's (``_peer``); with llmtap off, the SDK's own."""

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        inv = otel_context.get_value(REQUEST_KEY)
        if isinstance(inv, Invocation) and not inv.ended and trace.get_current_span() is inv.span:
            return _merged(inv, kwargs.get("attributes"))
        name = args[0] if args else kwargs.get("name")
        own = sent_request_span(telemetry, kwargs, name)
        return own if own is not None else wrapped(*args, **kwargs)

    return wrapper


@contextmanager
def _merged(inv: Invocation, attributes: Any) -> Iterator[Any]:
    try:
        if isinstance(attributes, dict):
            for key, value in attributes.items():
                inv.attributes.setdefault(key, value)
    except Exception as exc:
        log_once("MCP send span", exc)
    yield inv.span
