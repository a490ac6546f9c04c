"""MCP server requests: the SDK's SERVER span per inbound request, made by llmtap.

mcp 2.x wraps each inbound request in ``OpenTelemetryMiddleware``, which opens a SERVER span
``{mcp.method.name} {target}`` through ``otel_span`` with the MCP semconv attributes, the trace
context extracted from the request's ``params._meta`` as its parent, and the JSON-RPC error
code or ``tool_error``. llmtap opens that span itself (through its tracer, so it reaches the
tracer provider llmtap was given) instead of the SDK's tracer, and adds the tool call's
arguments and result when content capture is on. One span per request either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once
from llmtap.instrumentation.mcp._common import (
    TOOLS_CALL,
    detach,
    is_tool_error,
    mcp_invocation,
    off,
    to_json,
    tool_result,
)

# The invocation of the inbound request being handled (the middleware's span).
HANDLING_KEY = otel_context.create_key("llmtap.mcp.server_request")


def server_span_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    """``otel_span`` of ``mcp.server._otel``: llmtap's span in place of the SDK tracer's."""

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        if off(telemetry):
            return wrapped(*args, **kwargs)
        inv = _begin(telemetry, args, kwargs)
        if inv is None:
            return wrapped(*args, **kwargs)
        return _handling(telemetry, inv, kwargs.get("set_status_on_exception", True))

    return wrapper


def _begin(telemetry: Telemetry, args: tuple, kwargs: dict) -> Invocation | None:
    try:
        name = args[0] if args else kwargs["name"]
        attributes = dict(kwargs.get("attributes") or {})
        method = attributes.get(semconv.MCP_METHOD_NAME)
        if not isinstance(name, str) or not isinstance(method, str):
            return None
        target = attributes.get(semconv.TOOL_NAME, attributes.get(semconv.PROMPT_NAME))
        inv = mcp_invocation(method, target, kwargs.get("kind", SpanKind.SERVER))
        inv.name = name
        inv.attributes.update(attributes)
        return telemetry.start(inv, attach=False, parent=kwargs.get("context"))
    except Exception as exc:
        log_once("MCP server request", exc)
        return None


@contextmanager
def _handling(telemetry: Telemetry, inv: Invocation, sets_status: bool) -> Iterator[Any]:
    token = otel_context.attach(
        otel_context.set_value(HANDLING_KEY, inv, trace.set_span_in_context(inv.span))
    )
    try:
        yield inv.span
    except BaseException as exc:
        detach(token, "an MCP server request")
        if sets_status:
            telemetry.fail(inv, exc)
        else:
            telemetry.stop(inv)  # the middleware recorded the error on the span itself
        raise
    detach(token, "an MCP server request")
    telemetry.stop(inv)


def middleware_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    """``OpenTelemetryMiddleware.__call__``: the tool call's arguments and result (content)."""

    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        if len(args) != 2 or kwargs or not telemetry.settings.capture.any:
            return await wrapped(*args, **kwargs)
        ctx, call_next = args

        async def recorded(inner: Any) -> Any:
            inv = otel_context.get_value(HANDLING_KEY)
            if not isinstance(inv, Invocation) or getattr(inner, "method", None) != TOOLS_CALL:
                return await call_next(inner)
            _arguments(inv, inner)
            result = await call_next(inner)
            _result(inv, result)
            return result

        return await wrapped(ctx, recorded)

    return wrapper


def _arguments(inv: Invocation, ctx: Any) -> None:
    try:
        params = getattr(ctx, "params", None) or {}
        arguments = params.get("arguments")
        if arguments is not None:
            inv.attributes[semconv.TOOL_CALL_ARGUMENTS] = to_json(arguments)
    except Exception as exc:
        log_once("MCP server tool arguments", exc)


def _result(inv: Invocation, result: Any) -> None:
    try:
        if not is_tool_error(result):
            inv.attributes[semconv.TOOL_CALL_RESULT] = to_json(tool_result(result))
    except Exception as exc:
        log_once("MCP server tool result", exc)
