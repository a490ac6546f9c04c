"""A bounded queue with its own worker per destination.

A slow or dead destination fills only its own queue: ``offer`` never blocks the caller, and
what does not fit is counted as dropped (and logged, at most once a minute per
destination). The worker sends batches, retrying a failed batch with backoff while the
queue has room for new items, so a backend that comes back within the queue bound loses
nothing.

Stopping never starts a thread (Python 3.12+ refuses to at interpreter exit, where atexit
hooks shut the pipeline down): ``stop()`` asks the worker that already runs to send what is
queued and exit, ``wait_stopped()`` waits for it against a deadline, and ``abandon()`` counts
whatever is still queued or being sent as dropped. While stopping, a batch that fails is not
retried: the exporters retry within their own timeout already, so a failure then means the
destination is down, and the rest of the queue is dropped with it at once.

After ``os.fork()`` every queue starts over in the child: new locks, a new worker, and an
empty queue (what was queued belongs to the parent, whose worker sends it, so nothing is
sent twice). ``on_fork`` lets the owner of the ``send`` callable drop what it must not share
with the parent (connections) first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

_log = logging.getLogger("llmtap")
T = TypeVar("T")

# Every queue of this process, held weakly: the one fork hook below must not keep dead
# queues (or their senders) alive.
_live: weakref.WeakSet[DestinationQueue[Any]] = weakref.WeakSet()
_reinit_lock = threading.Lock()


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
        on_fork: Callable[[], Any] | None = None,
    ) -> None:
        self.name = name
        self._send = send
        self._max = max_items
        self._batch = batch_size
        self._delay = delay_s
        self._max_backoff = max_backoff_s
        self._on_drop = on_drop
        self._on_fork = on_fork
        self._stopping = False
        self._start(run=True)
        _live.add(self)

    def _start(self, *, run: bool) -> None:
        """Fresh state and worker (at creation, and in a forked child)."""
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)  # the worker waits here
        self._progress = threading.Condition(self._lock)  # flush() waits here
        self._items: deque[T] = deque()
        self._accepted = 0  # items ever queued
        self._finished = 0  # of those, sent or dropped after being queued
        self._inflight = 0  # items of the batch being sent
        self.sending_since: float | None = None  # time.monotonic() the current send began
        self._abandoned = False
        self.sent = 0
        self.dropped = 0
        self.dropped_stopping = 0  # dropped because the queue was stopping (shutdown)
        self.failures = 0
        self.consecutive_failures = 0
        self._last_drop_log = 0.0
        self._pid = os.getpid()
        self._worker: threading.Thread | None = None
        if run:
            self._worker = threading.Thread(
                target=self._run, name=f"llmtap-export-{self.name}", daemon=True
            )
            self._worker.start()

    def _after_fork(self) -> None:
        if self._on_fork is not None:
            try:
                self._on_fork()
            except Exception as exc:
                _log.debug("llmtap: resetting %r after fork failed: %s", self.name, exc)
        self._start(run=not self._stopping)

    # producer side -------------------------------------------------------------------

    def offer(self, items: Sequence[T]) -> int:
        """Enqueue what fits; returns how many were dropped."""
        if self._pid != os.getpid():  # forked by something that skipped the at-fork hooks
            with _reinit_lock:
                if self._pid != os.getpid():
                    self._after_fork()
        with self._lock:
            if self._stopping:
                return self._drop(len(items), stopping=True)
            room = self._max - len(self._items)
            taken = items if len(items) <= room else items[: max(room, 0)]
            self._items.extend(taken)
            self._accepted += len(taken)
            if len(self._items) >= self._batch:
                self._has_work.notify()
            return self._drop(len(items) - len(taken))

    def depth(self) -> int:
        """Items queued and being sent."""
        return len(self._items) + self._inflight

    def _drop(self, count: int, *, stopping: bool = False) -> int:
        if count <= 0:
            return 0
        self.dropped += count
        if stopping:
            self.dropped_stopping += count  # reported once, by whoever stops the queue
        if self._on_drop is not None:
            self._on_drop(self.name, count)
        now = time.monotonic()
        if not stopping and now - self._last_drop_log > 60:
            self._last_drop_log = now
            _log.warning(
                "llmtap: export queue %r is full; dropped %d span(s) so far",
                self.name,
                self.dropped,
            )
        return count

    # worker side ---------------------------------------------------------------------

    def _take(self) -> list[T]:
        with self._lock:
            if not self._items and not self._stopping:
                self._has_work.wait(self._delay)
            n = min(self._batch, len(self._items))
            self._inflight = n
            return [self._items.popleft() for _ in range(n)]

    def _run(self) -> None:
        backoff = 0.1
        batch: list[T] = []
        while True:
            if not batch:
                batch = self._take()
            if not batch:
                if self._stopping:
                    return
                continue
            delivered = self._deliver(batch)
            with self._lock:
                if self._abandoned:  # given up at the deadline, and counted, meanwhile
                    return
                if delivered:
                    self.sent += len(batch)
                    self._finished += len(batch)
                    self._inflight = 0
                    self.consecutive_failures = 0
                    self._progress.notify_all()
                    batch, backoff = [], 0.1
                    continue
                self.failures += 1
                self.consecutive_failures += 1
                if self._stopping:
                    lost = len(batch) + len(self._items)
                    self._items.clear()
                    self._finished += lost
                    self._inflight = 0
                    self._drop(lost, stopping=True)
                    self._progress.notify_all()
                    return
                self._has_work.wait(backoff)  # stop() cuts the wait short
            backoff = min(backoff * 2, self._max_backoff)

    def _deliver(self, batch: list[T]) -> bool:
        self.sending_since = time.monotonic()
        try:
            return bool(self._send(batch))
        except Exception as exc:
            _log.debug("llmtap: export to %r failed: %s", self.name, exc)
            return False
        finally:
            self.sending_since = None

    # lifecycle -----------------------------------------------------------------------

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far was sent (or the timeout)."""
        return self.flush_until(time.monotonic() + max(timeout_s, 0.0))

    def flush_until(self, deadline: float) -> bool:
        """``flush`` against a ``time.monotonic()`` deadline; never starts a thread."""
        with self._lock:
            target = self._accepted
            self._has_work.notify()
            while self._finished < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._worker is None or not self._worker.is_alive():
                    return False
                self._progress.wait(min(left, 0.5))
            return True

    def stop(self) -> None:
        """Take no more items; the worker sends what is queued (one try per batch), then exits."""
        with self._lock:
            self._stopping = True
            self._has_work.notify_all()

    def wait_stopped(self, deadline: float) -> bool:
        """Wait (until a ``time.monotonic()`` deadline) for the worker to finish after ``stop``."""
        worker = self._worker
        if worker is not None and worker.is_alive():
            worker.join(max(deadline - time.monotonic(), 0.0))
        return worker is None or not worker.is_alive()

    def abandon(self) -> int:
        """Count what is still queued or being sent as dropped; returns how many that was."""
        with self._lock:
            self._abandoned = True
            lost = len(self._items) + self._inflight
            self._items.clear()
            self._inflight = 0
            self._finished += lost
            self._drop(lost, stopping=True)
            self._progress.notify_all()
            return lost

    def close(self, timeout_s: float = 10.0) -> None:
        """Drain within ``timeout_s``; what is still queued after that is dropped and counted."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        self.stop()
        self.wait_stopped(deadline)
        self.abandon()


def _after_fork_in_child() -> None:
    global _reinit_lock
    _reinit_lock = threading.Lock()
    for queue in list(_live):
        queue._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
