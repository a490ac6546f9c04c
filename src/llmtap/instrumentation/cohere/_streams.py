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


# the raw client: clients made before instrument() ----------------------------------------
#
# ``cohere.Client.__init__`` (and so ``ClientV2``) binds ``chat`` and ``chat_stream`` onto
# the instance, so a client made before ``instrument()`` keeps the unwrapped methods. Their
# requests still go through the raw client (``RawV2Client``), looked up at call time, which
# is wrapped too: it makes the span when no outer llmtap span handles the call.


class RawResponses:
    """An adapter for the raw client's methods: the parsed value is ``HttpResponse.data``."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        return self.adapter.begin(instance, args, kwargs)

    def complete(self, call: Any, result: Any) -> Any:
        self.adapter.complete(call, getattr(result, "data", result))
        return result

    def stream(self, call: Any, result: Any) -> None:
        return None


class _RawStream:
    """The raw client's ``chat_stream`` context manager: the request runs on entering it;
    the ``HttpResponse`` it yields gets the stream proxy as its ``data``."""

    def __init__(self, telemetry: Telemetry, adapter: Adapter, call: Any, manager: Any) -> None:
        self.telemetry = telemetry
        self.adapter = adapter
        self.call = call
        self.manager = manager
        self.state: StreamState | None = None

    def _opened(self, response: Any, is_async: bool) -> Any:
        inv = self.call.inv
        try:
            data = response.data
            acc = self.adapter.stream(self.call, data)
            if acc is not None:
                self.state = state = StreamState(self.telemetry, inv, acc)
                if is_async:
                    response._data = AsyncStreamProxy(
                        _in_span_async(self.telemetry, inv, data), state
                    )
                else:
                    response._data = SyncStreamProxy(_in_span(self.telemetry, inv, data), state)
                return response
        except Exception as exc:
            log_once("cohere raw chat_stream", exc)
        self.telemetry.stop(inv)
        return response

    def _closed(self, error: BaseException | None) -> None:
        if self.state is not None:
            self.state.finish("closed" if error is None else "error", error)

    def __enter__(self) -> Any:
        inv = self.call.inv
        self.telemetry.attach(inv)
        try:
            response = self.manager.__enter__()
        except BaseException as exc:
            self.telemetry.detach(inv)
            self.telemetry.fail(inv, exc)
            raise
        self.telemetry.detach(inv)
        return self._opened(response, is_async=False)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.manager.__exit__(exc_type, exc, tb)
        finally:
            self._closed(exc)

    async def __aenter__(self) -> Any:
        inv = self.call.inv
        self.telemetry.attach(inv)
        try:
            response = await self.manager.__aenter__()
        except BaseException as exc:
            self.telemetry.detach(inv)
            self.telemetry.fail(inv, exc)
            raise
        self.telemetry.detach(inv)
        return self._opened(response, is_async=True)

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.manager.__aexit__(exc_type, exc, tb)
        finally:
            self._closed(exc)


def raw_stream_wrapper(telemetry: Telemetry, adapter: Adapter) -> Callable:
    """``RawV2Client.chat_stream`` / ``AsyncRawV2Client.chat_stream`` (context managers)."""

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = begin_call(telemetry, adapter, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        telemetry.detach(call.inv)  # attached again while the request runs
        try:
            manager = wrapped(*call.args, **call.kwargs)
        except BaseException as exc:
            telemetry.fail(call.inv, exc)
            raise
        return _RawStream(telemetry, adapter, call, manager)

    return wrapper
