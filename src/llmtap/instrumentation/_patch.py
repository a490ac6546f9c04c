"""Patching SDK methods with wrapt, and restoring them."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import wrapt

_log = logging.getLogger("llmtap")


class Patcher:
    """Remembers what it wrapped so ``unpatch`` restores the original methods."""

    def __init__(self) -> None:
        self._done: list[tuple[type, str]] = []

    def wrap(self, module: str, path: str, wrapper: Callable[..., Any]) -> bool:
        try:
            owner: Any = importlib.import_module(module)
            *parents, attr = path.split(".")
            for name in parents:
                owner = getattr(owner, name)
            original = owner.__dict__[attr]
        except (ImportError, AttributeError, KeyError):
            _log.debug("llmtap: %s.%s not found; not instrumented", module, path)
            return False
        if isinstance(original, wrapt.FunctionWrapper):
            return False
        setattr(owner, attr, wrapt.FunctionWrapper(original, wrapper))
        self._done.append((owner, attr))
        return True

    def unpatch(self) -> None:
        while self._done:
            owner, attr = self._done.pop()
            current = owner.__dict__.get(attr)
            if isinstance(current, wrapt.FunctionWrapper):
                setattr(owner, attr, current.__wrapped__)
