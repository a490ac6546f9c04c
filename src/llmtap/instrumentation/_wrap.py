"""Generic wrappers around SDK methods: adapters translate, these run the lifecycle.

Whatever fails inside llmtap is logged once and the application's call goes on untouched;
what the SDK raises is re-raised unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once, suppressed
from llmtap.instrumentation._raw import is_eager, is_raw, proxy_for
from llmtap.instrumentation._stream import (
    Accumulator,
    AsyncStreamProxy,
    StreamState,
    SyncStreamProxy,
)


class Call:
    """One wrapped SDK call: the invocation and the arguments to pass on."""

    __slots__ = ("args", "inv", "kwargs", "options")

    def __init__(
        self, inv: Invocation, args: tuple, kwargs: dict[str, Any], options: Any = None
    ) -> None:
        self.inv = inv
        self.args = args
        self.kwargs = kwargs
        self.options = options


class Adapter(Protocol):
    """What a provider module supplies for one SDK method."""

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call | None:
        """Translate the request; None leaves the call uninstrumented."""

    def complete(self, call: Call, result: Any) -> Any:
        """Translate a finished response into ``call.inv``; return what the app receives."""

    def stream(self, call: Call, result: Any) -> Accumulator | None:
        """An accumulator when ``result`` is a stream, else None."""


def begin_call(telemetry: Telemetry, adapter: Adapter, instance: Any, args: tuple, kwargs: dict):
    if not telemetry.enabled or suppressed():
        return None
    try:
        call = adapter.begin(instance, args, kwargs)
        if call is not None:
            telemetry.start(call.inv)
        return call
    except Exception as exc:
        log_once(f"{type(adapter).__name__} request", exc)
        return None


def _deliver(telemetry: Telemetry, adapter: Adapter, call: Call, result: Any, proxy: type) -> Any:
    inv = call.inv
    try:
        if is_raw(result):
            return _deliver_raw(telemetry, adapter, call, result, proxy)
        acc = adapter.stream(call, result)
        if acc is not None:
            return proxy(result, StreamState(telemetry, inv, acc))
        result = adapter.complete(call, result)
    except Exception as exc:
        log_once(f"{type(adapter).__name__} response", exc)
    telemetry.stop(inv)
    return result


def _deliver_raw(telemetry: Telemetry, adapter: Adapter, call: Call, raw: Any, proxy: type) -> Any:
    if is_eager(raw) and not call.inv.attributes.get(semconv.REQUEST_STREAM):
        adapter.complete(call, raw.parse())
        telemetry.stop(call.inv)
        return raw

    def on_parsed(parsed: Any) -> Any:
        return _deliver(telemetry, adapter, call, parsed, proxy)

    def on_abandoned() -> None:
        if not call.inv.ended:
            call.inv.attributes[semconv.LLMTAP_STREAM_END] = "abandoned"
            telemetry.stop(call.inv)

    return proxy_for(raw)(raw, on_parsed, on_abandoned)


def sync_wrapper(telemetry: Telemetry, adapter: Adapter) -> Callable[..., Any]:
    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = begin_call(telemetry, adapter, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*call.args, **call.kwargs)
        except BaseException as exc:
            telemetry.detach(call.inv)
            telemetry.fail(call.inv, exc)
            raise
        telemetry.detach(call.inv)
        return _deliver(telemetry, adapter, call, result, SyncStreamProxy)

    return wrapper


def async_wrapper(telemetry: Telemetry, adapter: Adapter) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = begin_call(telemetry, adapter, instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*call.args, **call.kwargs)
        except BaseException as exc:
            telemetry.detach(call.inv)
            telemetry.fail(call.inv, exc)
            raise
        telemetry.detach(call.inv)
        return _deliver(telemetry, adapter, call, result, AsyncStreamProxy)

    return wrapper
