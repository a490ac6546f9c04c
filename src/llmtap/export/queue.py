"""A bounded queue with its own worker per destination.

A slow or dead destination fills only its own queue: ``offer`` never blocks the caller, and
what does not fit is counted as dropped (and logged, at most once a minute per
destination). The worker sends batches, retrying a failed batch with backoff while the
queue has room for new items, so a backend that comes back within the queue bound loses
nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

_log = logging.getLogger("llmtap")
T = TypeVar("T")


class DestinationQueue(Generic[T]):
    def __init__(
        self,
        name: str,
        send: Callable[[Sequence[T]], bool],
        *,
        max_items: int = 2048,
        batch_size: int = 512,
        delay_s: float = 0.5,
        max_backoff_s: float = 5.0,
        on_drop: Callable[[str, int], Any] | None = None,
    ) -> None:
        self.name = name
        self._send = send
        self._max = max_items
        self._batch = batch_size
        self._delay = delay_s
        self._max_backoff = max_backoff_s
        self._on_drop = on_drop
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._idle = threading.Event()
        self._idle.set()
        self.sent = 0
        self.dropped = 0
        self.failures = 0
        self._last_drop_log = 0.0
        self._worker = threading.Thread(target=self._run, name=f"llmtap-export-{name}", daemon=True)
        self._worker.start()

    # producer side -------------------------------------------------------------------

    def offer(self, items: Sequence[T]) -> int:
        """Enqueue what fits; returns how many were dropped."""
        with self._cond:
            if self._stopping:
                return self._drop(len(items))
            room = self._max - len(self._items)
            taken = items if len(items) <= room else items[: max(room, 0)]
            self._items.extend(taken)
            self._idle.clear()
            if len(self._items) >= self._batch:
                self._cond.notify()
            return self._drop(len(items) - len(taken))

    def depth(self) -> int:
        return len(self._items)

    def _drop(self, count: int) -> int:
        if count <= 0:
            return 0
        self.dropped += count
        if self._on_drop is not None:
            self._on_drop(self.name, count)
        now = time.monotonic()
        if now - self._last_drop_log > 60:
            self._last_drop_log = now
            _log.warning(
                "llmtap: export queue %r is full; dropped %d span(s) so far",
                self.name,
                self.dropped,
            )
        return count

    # worker side ---------------------------------------------------------------------

    def _take(self) -> list[T]:
        with self._cond:
            if not self._items and not self._stopping:
                self._cond.wait(self._delay)
            n = min(self._batch, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def _run(self) -> None:
        backoff = 0.1
        batch: list[T] = []
        while True:
            if not batch:
                batch = self._take()
            if not batch:
                self._idle.set()
                if self._stopping:
                    return
                continue
            if self._deliver(batch):
                self.sent += len(batch)
                batch, backoff = [], 0.1
                continue
            self.failures += 1
            if self._stopping:
                self._drop(len(batch) + self._drain_rest())
                self._idle.set()
                return
            with self._cond:
                self._cond.wait(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _deliver(self, batch: list[T]) -> bool:
        try:
            return bool(self._send(batch))
        except Exception as exc:
            _log.debug("llmtap: export to %r failed: %s", self.name, exc)
            return False

    def _drain_rest(self) -> int:
        with self._cond:
            n = len(self._items)
            self._items.clear()
            return n

    # lifecycle -----------------------------------------------------------------------

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far was sent (or the timeout)."""
        with self._cond:
            self._cond.notify()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._items and self._idle.wait(0.05) and not self._items:
                return True
            with self._cond:
                self._cond.notify()
        return not self._items

    def close(self, timeout_s: float = 10.0) -> None:
        """Drain within ``timeout_s``; what is still queued after that is dropped and counted."""
        self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._worker.join(timeout_s)
        left = self._drain_rest()
        if left:
            self._drop(left)
