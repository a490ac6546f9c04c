"""Raw-response modes (``with_raw_response``, ``with_streaming_response``) of Stainless SDKs.

The app gets the SDK's own response object back, behind a thin proxy whose ``parse()``
hands the parsed value to the normal path (stream proxy or completed span) once.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

import wrapt

# type -> whether its class looks like a raw response (asked once per class: a miss on a
# pydantic model costs an exception); bounded, for classes made at run time
_PARSING_TYPES: dict[type, bool] = {}
_KNOWN_TYPES_MAX = 256


def is_raw(result: Any) -> bool:
    # Class-level checks first: a miss on a pydantic model's instance costs an exception.
    kind = type(result)
    parsing = _PARSING_TYPES.get(kind)
    if parsing is None:
        parsing = not hasattr(kind, "model_fields") and callable(getattr(kind, "parse", None))
        if len(_PARSING_TYPES) >= _KNOWN_TYPES_MAX:
            _PARSING_TYPES.clear()
        _PARSING_TYPES[kind] = parsing
    return parsing and hasattr(result, "http_response")


def is_eager(result: Any) -> bool:
    """A legacy raw response to a non-streaming call: its body is already read."""
    return type(result).__name__.startswith("Legacy")


class _Once:
    __slots__ = ("done", "hook", "value")

    def __init__(self, hook: Callable[[Any], Any]) -> None:
        self.hook = hook
        self.done = False
        self.value: Any = None

    def __call__(self, parsed: Any, to: Any) -> Any:
        if to is not None:
            return parsed
        if not self.done:
            self.done = True
            self.value = self.hook(parsed)
        return self.value


def _unless_parsed(once: _Once, abandon: Callable[[], None]) -> None:
    if not once.done:
        abandon()


class RawResponseProxy(wrapt.ObjectProxy):
    def __init__(self, wrapped: Any, hook: Callable[[Any], Any], abandon: Callable[[], None]):
        super().__init__(wrapped)
        self._self_once = _Once(hook)
        weakref.finalize(self, _unless_parsed, self._self_once, abandon)

    def parse(self, *, to: Any = None) -> Any:
        parsed = self.__wrapped__.parse(to=to) if to is not None else self.__wrapped__.parse()
        return self._self_once(parsed, to)


class AsyncRawResponseProxy(RawResponseProxy):
    async def parse(self, *, to: Any = None) -> Any:  # type: ignore[override]
        call = self.__wrapped__.parse(to=to) if to is not None else self.__wrapped__.parse()
        parsed = await call if inspect.isawaitable(call) else call
        return self._self_once(parsed, to)


def proxy_for(result: Any) -> type[RawResponseProxy]:
    parse = getattr(type(result), "parse", None)
    return AsyncRawResponseProxy if inspect.iscoroutinefunction(parse) else RawResponseProxy
