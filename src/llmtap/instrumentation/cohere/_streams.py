"""``chat_stream``: generator methods (sync and async) whose request runs on first iteration.

The span opens when ``chat_stream()`` is called; the generator the app gets is the core's
stream proxy around the SDK's generator, which runs each step in the span's context (so
the HTTP request made on the first step is the span's child).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once
from llmtap.instrumentation._stream import AsyncStreamProxy, StreamState, SyncStreamProxy
from llmtap.instrumentation._wrap import Adapter, begin_call


def _in_span(telemetry: Telemetry, inv: Invocation, inner: Iterator[Any]) -> Iterator[Any]:
    try:
        while True:
            telemetry.attach(inv)
            try:
                item = next(inner)
            except StopIteration:
                return
            finally:
                telemetry.detach(inv)
            yield item
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            close()


async def _in_span_async(
    telemetry: Telemetry, inv: Invocation, inner: AsyncIterator[Any]
) -> AsyncIterator[Any]:
    try:
        while True:
            telemetry.attach(inv)
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                return
            finally:
                telemetry.detach(inv)
            yield item
    finally:
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()


def stream_wrapper(telemetry: Telemetry, adapter: Adapter, *, is_async: bool) -> Callable:
    """``V2Client.chat_stream`` (a generator function) / ``AsyncV2Client.chat_stream`` (an
    async generator function): both return their iterator without doing any I/O."""

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = begin_call(telemetry, adapter, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        inv = call.inv
        try:
            result = wrapped(*call.args, **call.kwargs)
        except BaseException as exc:
            telemetry.detach(inv)
            telemetry.fail(inv, exc)
            raise
        telemetry.detach(inv)
        try:
            acc = adapter.stream(call, result)
            if acc is not None:
                state = StreamState(telemetry, inv, acc)
                if is_async:
                    return AsyncStreamProxy(_in_span_async(telemetry, inv, result), state)
                return SyncStreamProxy(_in_span(telemetry, inv, result), state)
        except Exception as exc:
            log_once("cohere chat_stream", exc)
        telemetry.stop(inv)
        return result

    return wrapper
