"""``messages.stream()``: stream managers, whose request runs when they are entered.

``stream()`` opens the span (its request is built there, carrying the trace headers) and
swaps the manager's pending request for one that runs in the span's context and hands the
raw ``anthropic.Stream`` to the core's stream proxy. ``MessageStream`` then reads events
through that proxy, so the span ends when the stream is exhausted, fails, is closed (the
``with`` block's exit) or is dropped; a manager that is never entered ends it when dropped.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once
from llmtap.instrumentation._stream import AsyncStreamProxy, StreamState, SyncStreamProxy
from llmtap.instrumentation._wrap import Adapter, Call, begin_call
from llmtap.instrumentation.anthropic._common import propagating

_REQUEST_SUFFIX = "__api_request"  # MessageStreamManager.__api_request, name-mangled


def _request_attribute(manager: Any) -> str | None:
    for name in getattr(manager, "__dict__", ()):
        if name.endswith(_REQUEST_SUFFIX):
            return name
    return None


def _abandon(telemetry: Telemetry, inv: Invocation) -> None:
    if not inv.ended:
        inv.attributes[semconv.LLMTAP_STREAM_END] = "abandoned"
        telemetry.stop(inv)


class _Pending:
    """The invocation of a stream manager, waiting for the manager to be entered."""

    __slots__ = ("adapter", "call", "finalizer", "ran", "telemetry")

    def __init__(self, telemetry: Telemetry, adapter: Adapter, call: Call, manager: Any) -> None:
        self.telemetry = telemetry
        self.adapter = adapter
        self.call = call
        self.ran = False
        self.finalizer = weakref.finalize(manager, _abandon, telemetry, call.inv)

    def _enter(self) -> bool:
        """True the first time the request runs (the sync manager makes one per ``__enter__``)."""
        if self.ran or self.call.inv.ended:
            return False
        self.ran = True
        self.finalizer.detach()
        return True

    def run(self, request: Callable[[], Any]) -> Any:
        if not self._enter():
            return request()
        inv = self.call.inv
        self.telemetry.attach(inv)
        try:
            raw = request()
        except BaseException as exc:
            self.telemetry.detach(inv)
            self.telemetry.fail(inv, exc)
            raise
        self.telemetry.detach(inv)
        return self._deliver(raw, SyncStreamProxy)

    async def run_async(self, request: Awaitable[Any]) -> Any:
        if not self._enter():
            return await request
        inv = self.call.inv
        self.telemetry.attach(inv)
        try:
            raw = await request
        except BaseException as exc:
            self.telemetry.detach(inv)
            self.telemetry.fail(inv, exc)
            raise
        self.telemetry.detach(inv)
        return self._deliver(raw, AsyncStreamProxy)

    def _deliver(self, raw: Any, proxy: type) -> Any:
        inv = self.call.inv
        try:
            acc = self.adapter.stream(self.call, raw)
            if acc is not None:
                return proxy(raw, StreamState(self.telemetry, inv, acc))
            self.adapter.complete(self.call, raw)
        except Exception as exc:
            log_once("anthropic stream manager response", exc)
        self.telemetry.stop(inv)
        return raw


class _Deferred:
    """Awaitable in place of the async manager's request coroutine.

    Makes its own coroutine only when awaited, so a manager that is never entered warns
    about its one unawaited request, as without llmtap, and not about a second.
    """

    __slots__ = ("pending", "request")

    def __init__(self, pending: _Pending, request: Awaitable[Any]) -> None:
        self.pending = pending
        self.request = request

    def __await__(self) -> Generator[Any, None, Any]:
        return self.pending.run_async(self.request).__await__()


def _hook(telemetry: Telemetry, adapter: Adapter, call: Call, manager: Any, is_async: bool):
    try:
        name = _request_attribute(manager)
        if name is None:
            raise AttributeError(f"{type(manager).__name__} has no pending request")
        request = manager.__dict__[name]
        pending = _Pending(telemetry, adapter, call, manager)
        if is_async:
            setattr(manager, name, _Deferred(pending, request))
        else:
            setattr(manager, name, functools.partial(pending.run, request))
    except Exception as exc:
        log_once("anthropic stream manager", exc)
        telemetry.stop(call.inv)  # the request cannot be followed: close what we opened


def _opened(telemetry: Telemetry, call: Call, wrapped: Callable, instance: Any) -> Any:
    try:
        manager = propagating(wrapped, instance)(*call.args, **call.kwargs)
    except BaseException as exc:
        telemetry.detach(call.inv)
        telemetry.fail(call.inv, exc)
        raise
    telemetry.detach(call.inv)
    return manager


def manager_wrapper(telemetry: Telemetry, adapter: Adapter, *, is_async: bool) -> Callable:
    """``Messages.stream`` / ``AsyncMessages.stream`` (both plain methods returning a manager).

    The sync manager calls its request on ``__enter__``; the async one awaits the request
    coroutine ``stream()`` made on ``__aenter__``.
    """

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = begin_call(telemetry, adapter, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        manager = _opened(telemetry, call, wrapped, instance)
        _hook(telemetry, adapter, call, manager, is_async)
        return manager

    return wrapper
