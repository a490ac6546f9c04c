"""The sinks at work: one bounded queue and worker per sink, fed by the judge and by feedback.

:class:`EvaluationSinks` is what the service holds. The judge calls :meth:`on_verdict` with
each verdict's attributes and the evaluated span (a verdict that failed, ``error.type``, is
not an evaluation and is not sent); the service's ``on_spans`` hook calls :meth:`on_spans`,
which takes the user feedback spans among them (``llmtap.evaluation.source`` = ``user``,
children of the answer's span; unresolved feedback is taken once the feedback resolver has
moved it under its answer). Both only append to each sink's queue and return: a sink that is
down never slows the judge.

Each :class:`SinkRunner` queues at most ``queue_size`` evaluations on a
:class:`~llmtap.export.queue.DestinationQueue` (its worker sends batches, backing off while
a send fails); what does not fit is dropped (``queue_full``). A send that is to be retried
(a transport error, 429/502/503/504) is retried, after the server's ``Retry-After`` (up to
:data:`MAX_RETRY_WAIT_S`) and the queue's backoff; a refused one is dropped
(``rejected``); what is still queued when the service stops is dropped (``shutdown``).
Every drop is counted in ``llmtap_service_evaluations_dropped_total{sink,reason}`` and
logged (at most once per 10 s per sink and reason).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from llmtap.export.queue import DestinationQueue
from llmtap.pipeline.span import SpanData
from llmtap.service.metrics import MetricsRegistry
from llmtap.service.sinks.http import SinkResult
from llmtap.service.sinks.record import Evaluation, from_attributes, from_feedback_span

__all__ = ["MAX_RETRY_WAIT_S", "EvaluationSinks", "SinkClient", "SinkMetrics", "SinkRunner"]

_log = logging.getLogger("llmtap.service")

MAX_RETRY_WAIT_S = 30.0


class SinkClient(Protocol):
    kind: str
    target: str

    def send(self, batch: Sequence[Evaluation]) -> SinkResult: ...

    def close(self) -> None: ...


class SinkMetrics:
    """The sinks' counters on the service's registry."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.sent = registry.counter(
            "llmtap_service_evaluations_sent_total",
            "Evaluations (verdicts, user feedback) delivered to an evaluation sink",
            ("sink",),
        )
        self.dropped = registry.counter(
            "llmtap_service_evaluations_dropped_total",
            "Evaluations lost for an evaluation sink: queue_full (its queue was full), "
            "rejected (refused by the backend, or with no value it takes), shutdown (not sent "
            "within the shutdown timeout)",
            ("sink", "reason"),
        )
        self.failures = registry.counter(
            "llmtap_service_evaluation_sink_failures_total",
            "Failed sends to an evaluation sink that will be retried",
            ("sink",),
        )
        self._lock = threading.Lock()
        self._last_log: dict[tuple[str, str], float] = {}

    def drop(self, sink: str, reason: str, count: int, error: str = "") -> None:
        if count <= 0:
            return
        self.dropped.inc(count, sink=sink, reason=reason)
        now = time.monotonic()
        with self._lock:
            if now - self._last_log.get((sink, reason), -1e9) < 10.0:
                return
            self._last_log[(sink, reason)] = now
        _log.warning(
            "dropped %d evaluation(s) for sink %s (%s)%s",
            count,
            sink,
            reason,
            f": {error}" if error else "",
            extra={"fields": {"sink": sink, "reason": reason, "evaluations": count}},
        )


class SinkRunner:
    """One sink behind its own bounded queue and worker."""

    def __init__(
        self,
        name: str,
        client: SinkClient,
        metrics: SinkMetrics,
        *,
        capacity: int = 10000,
        batch_size: int = 100,
        sources: Sequence[str] = ("judge", "rule", "user"),
        max_backoff_s: float = 5.0,
    ) -> None:
        self.name = name
        self.client = client
        self.capacity = max(1, capacity)
        self.sources = frozenset(sources)
        self._m = metrics
        self._held = 0
        self._held_lock = threading.Lock()
        self._closing = threading.Event()
        self._pending: Sequence[Evaluation] | None = None
        self._progress = 0
        self._last_error_log = 0.0
        self.queue: DestinationQueue[Evaluation] = DestinationQueue(
            f"evaluations-{name}",
            self._send,
            max_items=1 << 62,
            batch_size=max(1, batch_size),
            delay_s=0.1,
            max_backoff_s=max_backoff_s,
            on_drop=self._on_drop,
        )

    def depth(self) -> int:
        return self._held

    def offer(self, evaluations: Sequence[Evaluation]) -> int:
        """Queue those of the sink's sources that fit; returns how many were dropped."""
        wanted = [e for e in evaluations if e.source in self.sources]
        if not wanted:
            return 0
        with self._held_lock:
            room = max(0, self.capacity - self._held)
            taken = wanted[:room]
            self._held += len(taken)
        if taken:
            self.queue.offer(taken)
        dropped = len(wanted) - len(taken)
        self._m.drop(self.name, "queue_full", dropped)
        return dropped

    def _release(self, count: int) -> None:
        with self._held_lock:
            self._held = max(0, self._held - count)

    def _on_drop(self, _: str, count: int) -> None:
        # the queue drops only while stopping: what was queued and not sent; of a batch
        # being retried, the part delivered already (Langfuse: one request each) is not lost
        if self._pending is not None:
            count -= min(self._progress, count)
            self._pending, self._progress = None, 0
        self._m.drop(self.name, "shutdown", count)

    def _send(self, batch: Sequence[Evaluation]) -> bool:
        start = self._progress if self._pending is batch else 0
        try:
            result = self.client.send(batch[start:])
        except Exception as exc:  # a sink bug must not kill the worker
            _log.debug("sending evaluations to %s failed", self.name, exc_info=True)
            result = SinkResult(0, retry=True, error=f"{type(exc).__name__}: {exc}")
        left = len(batch) - start
        done = min(max(result.done, 0), left) if result.retry else left
        self._account(done, result)
        if result.retry:
            self._pending, self._progress = batch, start + done
            self._retry_later(result)
            return False
        self._pending, self._progress = None, 0
        return True

    def _account(self, done: int, result: SinkResult) -> None:
        rejected = min(result.rejected, done)
        if done > rejected:
            self._m.sent.inc(done - rejected, sink=self.name)
        self._m.drop(self.name, "rejected", rejected, result.error)
        self._release(done)

    def _retry_later(self, result: SinkResult) -> None:
        self._m.failures.inc(sink=self.name)
        now = time.monotonic()
        if now - self._last_error_log >= 10.0:
            self._last_error_log = now
            _log.warning(
                "evaluation sink %s (%s %s): retrying: %s",
                self.name,
                self.client.kind,
                self.client.target,
                result.error,
                extra={"fields": {"sink": self.name}},
            )
        if result.retry_after_s and not self._closing.is_set():
            self._closing.wait(min(result.retry_after_s, MAX_RETRY_WAIT_S))

    def flush(self, timeout_s: float) -> bool:
        return self.queue.flush(timeout_s)

    def close(self, timeout_s: float) -> None:
        """Send what is queued within ``timeout_s``; the rest is dropped and counted."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        self.queue.flush(max(timeout_s, 0.0))
        self._closing.set()
        self.queue.close(max(0.05, min(1.0, deadline - time.monotonic())))
        with self._held_lock:
            self._held = 0
        try:
            self.client.close()
        except Exception:
            _log.debug("closing evaluation sink %s failed", self.name, exc_info=True)


class EvaluationSinks:
    """Every configured sink; see the module documentation."""

    def __init__(
        self,
        runners: Sequence[SinkRunner],
        registry: MetricsRegistry,
        prepare: Callable[[SpanData], Any] | None = None,
    ) -> None:
        self.runners = list(runners)
        self._prepare = prepare
        registry.gauge_callback(
            "llmtap_service_evaluation_sink_queue_depth",
            "Evaluations waiting per evaluation sink",
            lambda: {(r.name,): r.depth() for r in self.runners},
            ("sink",),
        )

    @classmethod
    def from_config(
        cls,
        entries: Sequence[Any],
        registry: MetricsRegistry,
        prepare: Callable[[SpanData], Any] | None = None,
    ) -> EvaluationSinks | None:
        """The sinks of ``service.evaluation_sinks`` (None without any); raises ``ValueError``.
        ``prepare`` runs the service's stages on a verdict's attributes (see :meth:`on_verdict`)."""
        if not entries:
            return None
        from llmtap.service.sinks.config import build_sinks

        metrics = SinkMetrics(registry)
        runners = [
            SinkRunner(
                options.label,
                client,
                metrics,
                capacity=options.queue_size,
                batch_size=options.batch_size,
                sources=options.sources,
            )
            for options, client in build_sinks(entries)
        ]
        return cls(runners, registry, prepare)

    def describe(self) -> dict[str, str]:
        return {r.name: f"{r.client.kind} {r.client.target}" for r in self.runners}

    def offer(self, evaluations: Sequence[Evaluation]) -> None:
        for runner in self.runners:
            runner.offer(evaluations)

    def on_verdict(self, attributes: Mapping[str, Any], evaluated: Any, timestamp_ns: int) -> None:
        """A verdict of the judge on ``evaluated`` (a span); never blocks, never raises.

        The attributes first go through ``prepare`` (the service's stages, redaction among
        them) as the verdict's result span does before it is forwarded: an explanation may
        quote the content it judged."""
        try:
            if self._prepare is not None:
                carrier = SpanData(
                    name="evaluate", attributes=dict(attributes), resource=evaluated.resource
                )
                self._prepare(carrier)
                attributes = carrier.attributes
            evaluation = from_attributes(
                attributes,
                trace_id=evaluated.trace_id,
                span_id=evaluated.span_id,
                timestamp_ns=timestamp_ns,
                resource=evaluated.resource,
            )
            if evaluation is not None:
                self.offer([evaluation])
        except Exception:
            _log.warning("evaluation sinks: cannot take a verdict", exc_info=True)

    def on_spans(self, spans: Sequence[Any]) -> None:
        """The service's ``on_spans`` hook: the user feedback among received spans."""
        found = [e for e in map(from_feedback_span, spans) if e is not None]
        if found:
            self.offer(found)

    def flush(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(r.flush(max(0.0, deadline - time.monotonic())) for r in self.runners)

    def close(self, timeout_s: float) -> None:
        """Close every sink within ``timeout_s`` (in parallel)."""
        threads = [
            threading.Thread(target=r.close, args=(timeout_s,), daemon=True) for r in self.runners
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout_s + 2.0)
