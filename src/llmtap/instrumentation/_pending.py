"""Spans that end once their token estimate is done, off the application's thread.

A stream that reported no usage ends for the application at once (last chunk, ``close()``,
``break``); its span keeps that moment as its end time and is ended by the token worker
(``llmtap.pipeline.tokens``) once the estimate is in. Nothing is lost on the way out:

- at interpreter exit the worker is drained before any ``atexit`` handler (the tracer
  provider's shutdown among them) runs;
- ``TracerProvider.force_flush()`` and ``shutdown()`` wait for pending estimates too: a
  small processor placed first in the provider's chain drains the worker before the
  exporting processors behind it flush or shut down.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from llmtap.pipeline import tokens
from llmtap.runtime import prepend_span_processor

_log = logging.getLogger("llmtap")
_claims = threading.Lock()


class PendingEnd:
    """The end of one invocation, waiting for ``estimate()`` (attributes to add)."""

    __slots__ = ("_done", "estimate", "finish")

    def __init__(
        self,
        estimate: Callable[[], dict[str, Any]],
        finish: Callable[[dict[str, Any] | None], None],
    ) -> None:
        self.estimate = estimate
        self.finish = finish
        self._done = False

    def _claim(self) -> bool:
        with _claims:
            if self._done:
                return False
            self._done = True
            return True

    def run(self) -> None:
        try:
            extra = self.estimate()
        except Exception as exc:
            _log.warning("llmtap: token estimate failed (%s); span ended without it", exc)
            extra = None
        if self._claim():
            self.finish(extra)

    def abandon(self) -> None:
        if self._claim():
            self.finish(None)


class _DrainFirst(SpanProcessor):
    """First in a tracer provider's chain: flush/shutdown wait for pending estimates, so the
    spans they end reach the processors behind it before those flush or shut down."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: Any) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return tokens.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        tokens.drain(tokens.DRAIN_TIMEOUT_S)


_DRAIN_FIRST = _DrainFirst()
_providers: weakref.WeakSet[Any] = weakref.WeakSet()
_providers_lock = threading.Lock()


def watch_provider(provider: Any) -> None:
    """Put the drain processor first in ``provider``'s chain (once per provider).

    Order matters here (see ``runtime.prepend_span_processor``); a provider that cannot
    take it first gets it appended (its flush then still ends the pending spans, and
    exporters that export on end, like ``SimpleSpanProcessor``'s, still get them)."""
    if provider is None:
        return
    try:
        with _providers_lock:
            if provider in _providers:
                return
            _providers.add(provider)
        prepend_span_processor(provider, _DRAIN_FIRST)
    except TypeError:  # not weak-referenceable: not an SDK provider we can hook into
        return


def _after_fork_in_child() -> None:
    global _claims, _providers_lock
    _claims = threading.Lock()
    _providers_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
