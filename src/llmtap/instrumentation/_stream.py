"""Stream proxies: the SDK stream's whole surface, plus a span that ends exactly once.

The span ends when the stream is exhausted, fails, is closed (directly or by its context
manager), or is garbage-collected after the consumer walked away from it.
"""

from __future__ import annotations

import weakref
from time import perf_counter
from typing import Any, Protocol

import wrapt

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once


class Accumulator(Protocol):
    def add(self, chunk: Any) -> bool:
        """Take one chunk; False hides it from the application."""

    def finish(self, inv: Invocation) -> None:
        """Write what the stream carried (response fields, usage, output) into ``inv``."""


class StreamState:
    __slots__ = ("__weakref__", "acc", "finalizer", "inv", "telemetry")

    def __init__(self, telemetry: Telemetry, inv: Invocation, acc: Accumulator) -> None:
        self.telemetry = telemetry
        self.inv = inv
        self.acc = acc
        self.finalizer: weakref.finalize | None = None

    def on_chunk(self, chunk: Any) -> bool:
        try:
            # Telemetry.chunk, inlined: this runs for every chunk
            inv = self.inv
            now = perf_counter()
            if inv.chunks:
                inv.chunk_gaps.append(now - inv.last_chunk)
            else:
                inv.first_chunk = now
            inv.last_chunk = now
            inv.chunks += 1
            return self.acc.add(chunk)
        except Exception as exc:
            log_once("stream chunk", exc)
            return True

    def finish(self, end: str, error: BaseException | None = None) -> None:
        inv = self.inv
        if inv.ended:
            return
        if self.finalizer is not None:
            self.finalizer.detach()
        inv.attributes[semconv.LLMTAP_STREAM_END] = end
        try:
            self.acc.finish(inv)
        except Exception as exc:
            log_once("stream finish", exc)
        if error is None:
            self.telemetry.stop(inv)
        else:
            self.telemetry.fail(inv, error)


# type -> whether it is a stream: asked once per response class (a missing attribute on a
# pydantic model's class costs an exception each time); bounded, for classes made at run time
_STREAM_TYPES: dict[type, bool] = {}
_KNOWN_TYPES_MAX = 256


def is_stream(result: Any) -> bool:
    """An SDK stream (sync or async), as opposed to a parsed response model."""
    kind = type(result)
    known = _STREAM_TYPES.get(kind)
    if known is None:
        known = hasattr(kind, "__next__") or hasattr(kind, "__anext__")
        if len(_STREAM_TYPES) >= _KNOWN_TYPES_MAX:
            _STREAM_TYPES.clear()
        _STREAM_TYPES[kind] = known
    return known


def _watch(proxy: object, state: StreamState) -> None:
    try:
        state.finalizer = weakref.finalize(proxy, state.finish, "abandoned")
    except TypeError:
        state.finalizer = None


class _ClosingResponse(wrapt.ObjectProxy):
    """The stream's HTTP response: SDK stream helpers close it instead of the stream."""

    def __init__(self, wrapped: Any, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.finish("closed")

    async def aclose(self) -> None:
        try:
            await self.__wrapped__.aclose()
        finally:
            self._self_state.finish("closed")


class _StreamProxy(wrapt.ObjectProxy):
    def __init__(self, wrapped: Any, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_response: Any = None
        _watch(self, state)

    @property
    def response(self) -> Any:
        if self._self_response is None:
            inner = self.__wrapped__.response
            if inner is None:
                return None
            self._self_response = _ClosingResponse(inner, self._self_state)
        return self._self_response


class SyncStreamProxy(_StreamProxy):
    """Wraps an SDK stream (``openai.Stream``, ``anthropic.Stream``, stream managers' streams)."""

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        state = self._self_state
        while True:
            try:
                chunk = self.__wrapped__.__next__()
            except StopIteration:
                state.finish("completed")
                raise
            except BaseException as exc:
                state.finish("error", exc)
                raise
            if state.on_chunk(chunk):
                return chunk

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_state.finish("closed" if exc is None else "error", exc)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.finish("closed")


class AsyncStreamProxy(_StreamProxy):
    """The async twin of ``SyncStreamProxy``."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        state = self._self_state
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                state.finish("completed")
                raise
            except BaseException as exc:
                state.finish("error", exc)
                raise
            if state.on_chunk(chunk):
                return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_state.finish("closed" if exc is None else "error", exc)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_state.finish("closed")
