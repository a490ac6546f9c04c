"""Patching SDK methods with wrapt, and restoring them.

An SDK module is patched when the application imports it, never imported by llmtap: a patch
for a module that is not loaded yet waits in a post-import hook (``wrapt``'s, the mechanism
OpenTelemetry contrib uses too). An app that only uses ``openai`` never loads ``anthropic``,
and SDK modules the app never touches (the OpenAI SDK loads its resources lazily) stay
unloaded. ``unpatch`` restores what was patched and disarms what is still waiting.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import wrapt

_log = logging.getLogger("llmtap")

# One wrapt hook per module name, dispatching to the patches armed for it right now: wrapt
# cannot unregister a hook, so disarming only removes entries here (and instrument() /
# uninstrument() cycles do not pile up hooks).
_lock = threading.RLock()
_armed: dict[str, list[_Armed]] = {}
_hooked: set[str] = set()


class _Armed:
    __slots__ = ("patcher", "path", "wrapper")

    def __init__(self, patcher: Patcher, path: str, wrapper: Callable[..., Any]) -> None:
        self.patcher = patcher
        self.path = path
        self.wrapper = wrapper


def _imported(module: ModuleType) -> None:
    """wrapt's post-import hook: apply what is armed for ``module`` (never raises: an error
    in a post-import hook would fail the application's import)."""
    name = getattr(module, "__name__", "")
    with _lock:
        _hooked.discard(name)
        waiting = _armed.pop(name, [])
        for entry in waiting:
            try:
                entry.patcher._fire(entry, module)
            except Exception as exc:
                _log.debug("llmtap: patching %s.%s failed: %s", name, entry.path, exc)


class Patcher:
    """Remembers what it wrapped so ``unpatch`` restores the original methods.

    ``supported`` is asked once, before the first patch is applied (the SDK is being imported
    then): False leaves the SDK unpatched."""

    def __init__(self, supported: Callable[[], bool] | None = None) -> None:
        self._done: list[tuple[Any, str]] = []
        self._waiting: list[tuple[str, _Armed]] = []
        self._supported = supported
        self._verdict: bool | None = None

    def wrap(self, module: str, path: str, wrapper: Callable[..., Any]) -> bool:
        """Wrap ``module.path`` now if ``module`` is loaded, else when the app imports it.

        False when the loaded module has no such attribute (or it is wrapped already)."""
        loaded = sys.modules.get(module)
        if loaded is not None:
            with _lock:
                return self._apply(loaded, module, path, wrapper)
        entry = _Armed(self, path, wrapper)
        with _lock:
            _armed.setdefault(module, []).append(entry)
            self._waiting.append((module, entry))
            register = module not in _hooked
            _hooked.add(module)
        if register:
            # calls _imported at once if another thread imported the module meanwhile
            wrapt.register_post_import_hook(_imported, module)
        return True

    @property
    def waiting(self) -> list[str]:
        """``module:path`` of the patches still waiting for their module's import."""
        with _lock:
            return [f"{module}:{entry.path}" for module, entry in self._waiting]

    def _fire(self, entry: _Armed, module: ModuleType) -> None:
        # under _lock (from _imported): unpatch cannot run between this check and the patch
        for i, (_, waiting) in enumerate(self._waiting):
            if waiting is entry:
                del self._waiting[i]
                self._apply(module, module.__name__, entry.path, entry.wrapper)
                return

    def _allowed(self) -> bool:
        if self._verdict is None:
            try:
                self._verdict = self._supported is None or bool(self._supported())
            except Exception as exc:
                _log.debug("llmtap: SDK version check failed (%s); instrumenting", exc)
                self._verdict = True
        return self._verdict

    def _apply(self, owner: Any, module: str, path: str, wrapper: Callable[..., Any]) -> bool:
        if not self._allowed():
            return False
        try:
            *parents, attr = path.split(".")
            for name in parents:
                owner = getattr(owner, name)
            original = owner.__dict__[attr]
        except (AttributeError, KeyError):
            _log.debug("llmtap: %s.%s not found; not instrumented", module, path)
            return False
        if isinstance(original, wrapt.FunctionWrapper):
            return False
        setattr(owner, attr, wrapt.FunctionWrapper(original, wrapper))
        self._done.append((owner, attr))
        return True

    def unpatch(self) -> None:
        with _lock:
            for module, entry in self._waiting:
                waiting = _armed.get(module)
                if waiting is not None:
                    waiting[:] = [e for e in waiting if e is not entry]
            self._waiting.clear()
            while self._done:
                owner, attr = self._done.pop()
                current = owner.__dict__.get(attr)
                if isinstance(current, wrapt.FunctionWrapper):
                    setattr(owner, attr, current.__wrapped__)


def _after_fork_in_child() -> None:
    global _lock  # another thread may have held it at fork time
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
