"""MCP messages besides the client's requests (mcp 2.x): notifications either way, and the
requests a server sends its client (``sampling/createMessage``, ``elicitation/create``,
``roots/list``, ``ping``), as the MCP semantic conventions name them: the sender's CLIENT
span ``{mcp.method.name} {target}``, the receiver's SERVER span continuing it.

- Sending: a request the client's ``ClientSession.send_request`` does not carry (a server's
  request to its client) is sent through the dispatcher's ``otel_span``, which llmtap makes
  (``send_span_wrapper``) as it makes the middleware's on the server; a notification
  (``JSONRPCDispatcher.notify``, the JSON-RPC transports' send) gets a CLIENT span of
  llmtap's, current while it is sent, and the W3C trace context in its ``params._meta``, as
  the SDK puts it in a request's.
- Receiving, on the server: the SDK's ``OpenTelemetryMiddleware`` wraps notifications as well
  as requests (``_server``). On the client there is no middleware: ``ClientSession._on_request``
  and ``_on_notify``, the session's handlers of what the server sends, get a SERVER span
  parented on the trace context in ``params._meta``.
- The in-process path (``Client(server)``'s ``DirectDispatcher``, no JSON-RPC framing) and
  mcp 1.x are not covered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import SpanKind

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once
from llmtap.instrumentation.mcp._common import detach, fail, mcp_invocation, off

_SDK_SEND = "MCP send "  # the SDK's name of its send span: "MCP send {method} {target}"


def sent_request_span(telemetry: Telemetry, kwargs: dict, name: Any) -> Any:
    """The send span of a request no llmtap client span holds: llmtap's, current (the SDK
    injects its trace context into the request's ``_meta`` inside), else None."""
    if off(telemetry):
        return None
    try:
        attributes = dict(kwargs.get("attributes") or {})
        method = attributes.get(semconv.MCP_METHOD_NAME)
        if not isinstance(method, str):
            return None
        target = None
        prefix = f"{_SDK_SEND}{method} "
        if isinstance(name, str) and name.startswith(prefix):
            target = name[len(prefix) :]
        inv = mcp_invocation(method, target, SpanKind.CLIENT)
        inv.attributes.update(attributes)
        telemetry.start(inv, attach=False)
    except Exception as exc:
        log_once("MCP request sent", exc)
        return None
    return current(telemetry, inv)


@contextmanager
def current(telemetry: Telemetry, inv: Invocation) -> Iterator[Any]:
    """``inv``'s span current while the message is sent or handled; ended after."""
    token = otel_context.attach(trace.set_span_in_context(inv.span))
    try:
        yield inv.span
    except BaseException as exc:
        detach(token, "an MCP message")
        fail(telemetry, inv, exc)
        raise
    detach(token, "an MCP message")
    telemetry.stop(inv)


def notify_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    """``JSONRPCDispatcher.notify(method, params, opts=None, *, _related_request_id=None)``."""

    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        inv = None if off(telemetry) or not args else _notification(telemetry, args[0])
        if inv is None:
            return await wrapped(*args, **kwargs)
        with current(telemetry, inv):
            args = _with_context(args, kwargs)
            return await wrapped(*args, **kwargs)

    return wrapper


def _notification(telemetry: Telemetry, method: Any) -> Invocation | None:
    if not isinstance(method, str):
        return None
    try:
        return telemetry.start(mcp_invocation(method, None, SpanKind.CLIENT), attach=False)
    except Exception as exc:
        log_once("MCP notification sent", exc)
        return None


def _with_context(args: tuple, kwargs: dict) -> tuple:
    """The notification's params with the current trace context in their ``_meta`` (a copy;
    params passed by keyword or of another shape are left alone)."""
    try:
        if len(args) < 2 or "params" in kwargs:
            return args
        params = args[1]
        if params is not None and not isinstance(params, Mapping):
            return args
        out = dict(params or {})
        meta = out.get("_meta")
        meta = dict(meta) if isinstance(meta, Mapping) else {}
        inject(meta)
        if not meta:
            return args
        out["_meta"] = meta
        return (args[0], out, *args[2:])
    except Exception as exc:
        log_once("MCP notification trace context", exc)
        return args


def received_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    """``ClientSession._on_request`` / ``_on_notify(dctx, method, params)``: what the server
    sent, handled under a SERVER span continuing the server's."""

    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        inv = None if off(telemetry) or len(args) != 3 else _received(telemetry, instance, args)
        if inv is None:
            return await wrapped(*args, **kwargs)
        with current(telemetry, inv):
            return await wrapped(*args, **kwargs)

    return wrapper


def _received(telemetry: Telemetry, session: Any, args: tuple) -> Invocation | None:
    dctx, method, params = args
    if not isinstance(method, str):
        return None
    try:
        inv = mcp_invocation(method, None, SpanKind.SERVER)
        request_id = getattr(dctx, "request_id", None)
        if request_id is not None:
            inv.attributes[semconv.JSONRPC_REQUEST_ID] = str(request_id)
        version = getattr(session, "protocol_version", None)
        if isinstance(version, str):
            inv.attributes[semconv.MCP_PROTOCOL_VERSION] = version
        return telemetry.start(inv, attach=False, parent=_sender(params))
    except Exception as exc:
        log_once("MCP message received", exc)
        return None


def _sender(params: Any) -> otel_context.Context | None:
    """The trace context the sender put in ``params._meta``, if a valid one."""
    meta = params.get("_meta") if isinstance(params, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    try:
        ctx = extract(meta)
    except (TypeError, ValueError):
        return None
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None
