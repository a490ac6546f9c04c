"""``with_raw_response`` / ``with_streaming_response`` accessors built before ``instrument()``.

Why they miss the patch: a resource's ``with_raw_response`` is a ``cached_property``; its first
access builds ``CompletionsWithRawResponse(completions)``, whose ``__init__`` stores
``to_raw_response_wrapper(completions.create)`` as an *instance* attribute. That closure holds
the bound method as it was then; patching ``Completions.create`` on the class afterwards
changes later lookups only, so the cached accessor (or one the app kept:
``raw = client.chat.completions.with_raw_response``, or ``client.with_raw_response.chat...``,
whose cached properties build the same objects) keeps calling the original function. The
streaming variant's ``functools.partial(func, ...)`` binds that same stale method.

The fix: for every patched method, a data descriptor of the same name on the SDK's
``<Resource>With{Raw,Streaming}Response`` classes. A data descriptor on the class wins over
the instance attribute, so ``accessor.create`` reaches it; when the instance's own value is
the SDK's wrapper around the *unpatched* bound method, it answers with the same SDK wrapper
built around the method looked up again (now patched), cached per accessor. Anything else the
instance holds is returned as it is, and assignment still writes the instance attribute. The
descriptors are removed by ``uninstrument()``; the instances were never modified.
"""

from __future__ import annotations

import importlib
import sys
import types
import weakref
from collections.abc import Callable
from typing import Any

_FACTORIES = (
    ("openai._legacy_response", "to_raw_response_wrapper"),
    ("openai._legacy_response", "async_to_raw_response_wrapper"),
    ("openai._response", "to_streamed_response_wrapper"),
    ("openai._response", "async_to_streamed_response_wrapper"),
)
_WRAPPERS = (
    "to_raw_response_wrapper",
    "async_to_raw_response_wrapper",
    "to_streamed_response_wrapper",
    "async_to_streamed_response_wrapper",
)
_SUFFIXES = ("WithRawResponse", "WithStreamingResponse")


def response_factories(package: str) -> tuple[tuple[str, str], ...]:
    """The wrapper factories of another Stainless SDK that keeps all four in
    ``<package>._response`` (Groq, Together)."""
    return tuple((f"{package}._response", name) for name in _WRAPPERS)


_MISSING = object()


def _probe(*args: Any, **kwargs: Any) -> None:
    return None


def _factories(
    sources: tuple[tuple[str, str], ...] = _FACTORIES,
) -> dict[Any, Callable[[Any], Any]]:
    """The SDK's wrapper factories, by the code object of the wrappers they make."""
    found: dict[Any, Callable[[Any], Any]] = {}
    for module_name, name in sources:
        try:
            factory = getattr(importlib.import_module(module_name), name)
            found[factory(_probe).__code__] = factory
        except Exception:  # an SDK without this factory: its accessors are left alone
            continue
    return found


class RebindingAttribute:
    """Stands for one method name (``create``) on one accessor class."""

    def __init__(
        self, name: str, patched: type, original: Any, factories: dict[Any, Callable[[Any], Any]]
    ) -> None:
        self.name = name
        self.patched = patched  # the resource class whose method was patched
        self.original = original  # the resource's function as it was before patching
        self.factories = factories
        self.rebound: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__.get(self.name, _MISSING)
        if value is _MISSING:
            raise AttributeError(self.name)
        try:
            return self._rebind(instance, value)
        except Exception:
            return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.name] = value

    def __delete__(self, instance: Any) -> None:
        try:
            del instance.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def _rebind(self, instance: Any, value: Any) -> Any:
        factory = self.factories.get(getattr(value, "__code__", None))
        bound = getattr(value, "__wrapped__", None)
        if factory is None or getattr(bound, "__func__", None) is not self.original:
            return value  # not the SDK's wrapper of this method: left as it is
        # a plain bound method (built before instrument()), or a bound wrapper of an earlier
        # instrumentation (built before uninstrument() and instrument() again) is stale
        current = self.patched.__dict__.get(self.name)
        if type(bound) is not types.MethodType and getattr(bound, "_self_parent", None) is current:
            return value  # built while instrumented as now: already right
        cached = self.rebound.get(instance)
        if cached is not None and cached[0] is value:
            return cached[1]
        fresh = factory(getattr(bound.__self__, self.name))
        self.rebound[instance] = (value, fresh)
        return fresh


class AccessorPatches:
    """The descriptors installed, to take them away again."""

    def __init__(self, factories: tuple[tuple[str, str], ...] = _FACTORIES) -> None:
        self._installed: list[tuple[type, str]] = []
        self._sources = factories  # (module, name) of the SDK's wrapper factories
        self._factories: dict[Any, Callable[[Any], Any]] | None = None

    def install(self, module: str, resource_class: str, method: str) -> None:
        """Cover ``method`` of the accessors of ``module.resource_class`` (already patched).

        A module not imported yet is left alone (and not imported): no accessor of it can
        exist yet, and those made after the import find the patched methods."""
        mod = sys.modules.get(module)
        try:
            patched = getattr(mod, resource_class)
            current = patched.__dict__[method]
        except (AttributeError, KeyError):
            return
        original = getattr(current, "__wrapped__", None)
        if original is None:
            return
        if self._factories is None:
            self._factories = _factories(self._sources)
        for suffix in _SUFFIXES:
            accessor = getattr(mod, resource_class + suffix, None)
            if not isinstance(accessor, type) or method in accessor.__dict__:
                continue
            patch = RebindingAttribute(method, patched, original, self._factories)
            setattr(accessor, method, patch)
            self._installed.append((accessor, method))

    def remove(self) -> None:
        while self._installed:
            accessor, method = self._installed.pop()
            if isinstance(accessor.__dict__.get(method), RebindingAttribute):
                delattr(accessor, method)
