"""Components built by name: a registry maps a type name to its options type and factory.

The model is the OpenTelemetry Collector's: each receiver, processor and exporter there
has a factory that names its type, owns its config type (with defaults) and builds the
component from a validated config. Here a :class:`Registry` holds, for one kind of
component (evaluators, export destinations, pipeline stages), a :class:`Factory` per type
name: the options dataclass (built from the config entry by the one builder,
:mod:`llmtap.configuration.builder`), the function that makes the component from those
options, and a one-line description (for listings and the generated config reference).

Adding a component is one ``registry.register(...)`` next to its options. This module is
a leaf (it imports nothing of llmtap's but :mod:`llmtap.diagnostics`), so every layer may
hold a registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from llmtap.diagnostics import did_you_mean

__all__ = ["Factory", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Factory(Generic[T]):
    """How to make one type of component: ``create(options, **context)``."""

    name: str
    options: type
    create: Callable[..., T]
    description: str = ""


class Registry(Generic[T]):
    """The factories of one kind of component (``kind``: "evaluator", "export preset"),
    by type name, in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Factory[T]] = {}

    def register(
        self, name: str, options: type, create: Callable[..., T], description: str = ""
    ) -> Factory[T]:
        """Add the factory of type ``name``; a name is registered once."""
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        factory = Factory(name, options, create, description)
        self._factories[name] = factory
        return factory

    def get(self, name: Any) -> Factory[T] | None:
        return self._factories.get(name) if isinstance(name, str) else None

    def __getitem__(self, name: str) -> Factory[T]:
        return self._factories[name]

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)

    def names(self) -> list[str]:
        """The type names, sorted."""
        return sorted(self._factories)

    def unknown(self, name: Any, *, quoted: bool = True) -> str:
        """``unknown <kind> 'x' (did you mean 'y'?); one of a, b, c``."""
        hint = did_you_mean(str(name), self._factories, quoted=quoted)
        return f"unknown {self.kind} {name!r}{hint}; one of {', '.join(self.names())}"
