"""What one provider's wire protocol declares to the devserver, and how the router finds it.

Every module of this package named ``<provider>_api`` declares ``PROTOCOL``: the paths it
answers, the models it lists, how its errors and response headers look. The router reads
them all; adding a provider is one such module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .reply import Reply
from .scenarios import Context

Endpoint = Callable[[dict[str, Any], Context], Reply]
# A route carrying parameters in its path (``/v1beta/models/{model}:generateContent``): the
# endpoint and the parameters, which the router merges into the request body; None: not ours.
RouteMatch = Callable[[str], "tuple[Endpoint, dict[str, Any]] | None"]


@dataclass(frozen=True)
class WireProtocol:
    name: str
    routes: Mapping[str, Endpoint]
    models: tuple[str, ...]
    scenario_error: Callable[[str, Any, Context], Reply]
    request_error: Callable[[int, str, Context], Reply]
    headers: Callable[[str, float], dict[str, str]]
    # GET /<collection>/<id>: the endpoint gets {"<key>": id, **query parameters}
    get_routes: Mapping[str, tuple[str, Endpoint]] = field(default_factory=dict)
    fallback: bool = False  # answers the paths no protocol owns
    match: RouteMatch | None = None  # POST routes with parameters in the path

    def owns(self, route: str) -> bool:
        if self.match is not None and self.match(route) is not None:
            return True
        return any(route == path or route.startswith(path + "/") for path in self._paths())

    def _paths(self) -> tuple[str, ...]:
        return (*self.routes, *self.get_routes)


def discover() -> tuple[WireProtocol, ...]:
    """The ``PROTOCOL`` of every ``*_api`` module here: the fallback first, then by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(_package_path()), key=lambda info: info.name):
        if info.name.endswith("_api"):
            module = importlib.import_module(f"{__package__}.{info.name}")
            found.append(module.PROTOCOL)
    return tuple(sorted(found, key=lambda protocol: not protocol.fallback))


def _package_path() -> list[str]:
    return list(importlib.import_module(__package__).__path__)
