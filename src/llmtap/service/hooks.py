"""The service's ``on_spans`` hooks (the judge side): called on one worker thread from a
bounded queue, so a slow hook loses spans (counted) and never holds up forwarding."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from llmtap.diagnostics import Once, warn_once
from llmtap.service.spans import ReceivedSpan

__all__ = ["SpanHooks"]

_log = logging.getLogger("llmtap.service")


class SpanHooks:
    """``on_spans`` callbacks, called on one worker thread from a bounded queue."""

    def __init__(self, max_spans: int, on_drop: Callable[[int], None]) -> None:
        self.max_spans = max_spans
        self._on_drop = on_drop
        self.hooks: list[
            tuple[Callable[[list[ReceivedSpan]], Any], Callable[[int], bool] | None]
        ] = []
        self._filters: list[Callable[[int], bool]] = []
        self._everything = False
        self._batches: deque[list[ReceivedSpan]] = deque()
        self._pending = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._failed = Once()

    @property
    def active(self) -> bool:
        return bool(self.hooks)

    def add(
        self, fn: Callable[[list[ReceivedSpan]], Any], trace_filter: Callable[[int], bool] | None
    ) -> None:
        with self._cond:
            self.hooks.append((fn, trace_filter))
            if trace_filter is None:
                self._everything = True
            else:
                self._filters.append(trace_filter)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llmtap-hooks", daemon=True)
                self._thread.start()

    def wants(self, trace_id: bytes) -> bool:
        if self._everything:
            return True
        if not self._filters:
            return False
        number = int.from_bytes(trace_id, "big")
        for keep in self._filters:
            try:
                if keep(number):
                    return True
            except Exception:
                return True
        return False

    def offer(self, spans: list[ReceivedSpan]) -> None:
        if not spans:
            return
        with self._cond:
            if self._stopping or self._pending + len(spans) > self.max_spans:
                dropped = len(spans)
            else:
                self._batches.append(spans)
                self._pending += len(spans)
                self._cond.notify()
                return
        self._on_drop(dropped)

    def depth(self) -> int:
        return self._pending

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._batches and not self._stopping:
                    self._cond.wait()
                if not self._batches:
                    return
                batch = self._batches.popleft()
                self._busy = True
            try:
                self._deliver(batch)
            finally:
                with self._cond:
                    self._pending -= len(batch)
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, batch: list[ReceivedSpan]) -> None:
        for i, (fn, keep) in enumerate(self.hooks):
            spans = batch
            if keep is not None:
                spans = [s for s in batch if _safe(keep, s.trace_id)]
                if not spans:
                    continue
            try:
                fn(spans)
            except Exception as exc:
                message = "an on_spans hook (%r) failed; it is still called"
                if not warn_once(
                    _log, i, message, fn, exc_info=exc, once=self._failed, level=logging.ERROR
                ):
                    _log.debug("an on_spans hook failed", exc_info=True)

    def stop(self, timeout_s: float) -> int:
        """Deliver what is queued within ``timeout_s``; the number of spans left over."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while (self._batches or self._busy) and time.monotonic() < deadline:
                self._cond.wait(max(0.0, min(0.1, deadline - time.monotonic())))
            self._stopping = True
            left = sum(len(b) for b in self._batches)
            self._batches.clear()
            self._pending = 0
            self._cond.notify_all()
        return left


def _safe(keep: Callable[[int], bool], trace_id: int) -> bool:
    try:
        return bool(keep(trace_id))
    except Exception:
        return True
