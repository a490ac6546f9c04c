"""Request helpers every SDK adapter shares: client identity (cached per client), SDK sentinels."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from llmtap import semconv

_cache: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def client_attributes(
    resource: Any, identify: Callable[[Any], dict[str, Any]], default_provider: str
) -> dict[str, Any]:
    """Attributes of the client behind an SDK resource: ``identify(client)`` plus its server
    address, computed once per client."""
    client = getattr(resource, "_client", None)
    if client is None:
        return {semconv.PROVIDER: default_provider}
    try:
        return _cache[client]
    except (KeyError, TypeError):
        pass
    url = urlsplit(str(getattr(client, "base_url", "")))
    attrs = identify(client)
    if url.hostname:
        attrs[semconv.SERVER_ADDRESS] = url.hostname
        attrs[semconv.SERVER_PORT] = url.port or (443 if url.scheme == "https" else 80)
    with contextlib.suppress(TypeError):
        _cache[client] = attrs
    return attrs


def given(value: Any) -> bool:
    """False for None and the SDKs' NOT_GIVEN / Omit sentinels."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def set_number(attrs: dict[str, Any], key: str, value: Any, kind: type) -> None:
    # plain ints and floats first (the SDKs' sentinels and bools are neither)
    t = type(value)
    if t is int or t is float or (isinstance(value, int | float) and t is not bool):
        attrs[key] = kind(value)
