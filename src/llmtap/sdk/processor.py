"""The app-side span pipeline: one SpanProcessor that runs the stages on a copy of each
finished span and hands that copy to every destination's own queue.

Shutdown and ``force_flush`` run on the workers that already exist (no thread is started,
which Python 3.12+ refuses at interpreter exit) within one total budget taken from the
OpenTelemetry settings (see ``export_budget``), and shutdown says in one log line what it
had to drop. The pipeline survives ``os.fork()``: every queue starts over empty in the child
with its own worker (see ``llmtap.export.queue``), exporters open their own connections
there, and children of ``multiprocessing``/``billiard`` pools, which leave through
``os._exit()`` without running atexit hooks, drain their pipeline in their exit finalizers.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llmtap.export.queue import DestinationQueue
from llmtap.export.readable import to_span_data, with_data
from llmtap.instrumentation._invocation import log_once
from llmtap.pipeline.span import Stage

_log = logging.getLogger("llmtap")


# the OTLP exporters' own default per-batch timeout (OTEL_EXPORTER_OTLP_TIMEOUT)
DEFAULT_EXPORT_TIMEOUT_S = 10.0
_EXPORTER_TIMEOUT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")


def export_timeout_s(exporter: Any) -> float | None:
    """The timeout an OTLP exporter gives each batch (from its ``timeout`` argument, else
    ``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT``, else ``OTEL_EXPORTER_OTLP_TIMEOUT``, else 10 s, as
    the exporter resolved it); None for exporters without one (file, console)."""
    for holder in (exporter, getattr(exporter, "_client", None)):
        value = getattr(holder, "_timeout", None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def _env_seconds(name: str, scale: float = 1.0) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw) * scale
    except ValueError:
        _log.warning("llmtap: %s=%r is not a number; ignored", name, raw)
        return None
    return value if value >= 0 else None


def export_budget(destinations: Sequence[Any] = ()) -> tuple[float, str]:
    """(seconds, where they come from): the most shutdown or force_flush may take in all.

    ``OTEL_BSP_EXPORT_TIMEOUT`` (milliseconds, the batch processor's bound on exporting) when
    set; otherwise the longest per-batch timeout of the destinations' exporters, which
    reflects ``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`` / ``OTEL_EXPORTER_OTLP_TIMEOUT`` (seconds);
    otherwise those variables, or the exporters' default of 10 s. Destinations drain in
    parallel, so one destination's timeout is the budget of them all.
    """
    bsp = _env_seconds("OTEL_BSP_EXPORT_TIMEOUT", 1e-3)
    if bsp is not None:
        return bsp, "OTEL_BSP_EXPORT_TIMEOUT"
    timeouts = [t for t in (getattr(q, "timeout_s", None) for q in destinations) if t]
    env = {name: _env_seconds(name) for name in _EXPORTER_TIMEOUT_VARS}
    if timeouts:
        budget = max(timeouts)
        named = [name for name, value in env.items() if value is not None and value == budget]
        return budget, named[0] if named else "the exporters' timeout"
    for name, value in env.items():
        if value is not None:
            return value, name
    return DEFAULT_EXPORT_TIMEOUT_S, "default export timeout"


def _reset_connections(exporter: Any) -> None:
    """In a forked child: give the exporter connections of its own (the parent's pooled
    sockets and gRPC channel are the parent's)."""
    reinit = getattr(exporter, "_initialize_channel_and_stub", None)  # OTLP/gRPC
    if callable(reinit):
        reinit()
        return
    transport = getattr(getattr(exporter, "_client", None), "_transport", None)  # OTLP/HTTP
    for pool in (
        getattr(exporter, "_session", None),
        getattr(transport, "_session", None),
        getattr(transport, "_pool", None),
    ):
        # requests.Session.close() / urllib3.PoolManager.clear() close the child's copies of
        # the pooled sockets (the parent's connections stay open) and stay usable
        close = getattr(pool, "clear", None) or getattr(pool, "close", None)
        if callable(close):
            close()


class _Sender:
    """Sends a destination's batches with its exporter, translated first when the
    destination has translations (on copies: the other destinations' spans stay as they
    are; a failed translation sends the batch as it is)."""

    def __init__(
        self,
        exporter: SpanExporter,
        translate: Callable[[Sequence[ReadableSpan]], Sequence[ReadableSpan]] | None = None,
    ) -> None:
        self.exporter = exporter
        self.translate = translate
        self._forked = False
        # the last batch and its translation: a batch retried is not translated again
        # (the translations' trace memory has moved on by then)
        self._translated: tuple[Sequence[ReadableSpan], Sequence[ReadableSpan]] | None = None

    def __call__(self, batch: Sequence[ReadableSpan]) -> bool:
        if self._forked:  # first export in a forked child (never in one that sends nothing)
            self._forked = False
            _reset_connections(self.exporter)
        if self.translate is None:
            return self.exporter.export(batch) is SpanExportResult.SUCCESS
        sent = self.exporter.export(self._translate(batch)) is SpanExportResult.SUCCESS
        if sent:
            self._translated = None
        return sent

    def _translate(self, batch: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        last = self._translated
        if last is not None and last[0] is batch:
            return last[1]
        out = self.translate(batch)  # type: ignore[misc]
        self._translated = (batch, out)
        return out

    def after_fork(self) -> None:
        self._forked = True

    def shutdown(self) -> None:
        if self._forked:  # a child that never exported leaves the parent's channel alone
            return
        try:
            self.exporter.shutdown()
        except Exception as exc:
            _log.debug("llmtap: shutting down %r failed: %s", self.exporter, exc)


def exporter_queue(
    name: str,
    exporter: SpanExporter,
    *,
    max_items: int = 2048,
    batch_size: int = 512,
    translate: Callable[[Sequence[ReadableSpan]], Sequence[ReadableSpan]] | None = None,
    **kw: Any,
) -> DestinationQueue[ReadableSpan]:
    sender = _Sender(exporter, translate)
    queue = DestinationQueue(
        name, sender, max_items=max_items, batch_size=batch_size, on_fork=sender.after_fork, **kw
    )
    queue.exporter = exporter  # type: ignore[attr-defined]
    queue.sender = sender  # type: ignore[attr-defined]
    queue.timeout_s = export_timeout_s(exporter)  # type: ignore[attr-defined]
    queue.target = getattr(exporter, "_endpoint", None)  # type: ignore[attr-defined]
    return queue


# every pipeline of this process, held weakly (see _arm_exit_flush)
_pipelines: weakref.WeakSet[PipelineProcessor] = weakref.WeakSet()


class PipelineProcessor(SpanProcessor):
    """Stages (cost, redaction, ...) then fan-out to independent destination queues.

    ``on_end`` only enqueues: the stages run on a worker thread of their own, so the
    application's thread never pays for them, and no destination sees a span before they ran.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        destinations: Sequence[DestinationQueue[ReadableSpan]],
        *,
        fail_closed: bool = True,
        max_items: int = 8192,
    ) -> None:
        self.stages = list(stages)
        self.destinations = list(destinations)
        self._fail_closed = fail_closed
        self._staging: DestinationQueue[ReadableSpan] = DestinationQueue(
            "pipeline", self._process, max_items=max_items, batch_size=256, delay_s=0.2
        )
        self._is_shut_down = False
        self._exit_deadline: float | None = None
        self._exit_flush_armed: set[str] = set()
        _pipelines.add(self)

    def add_destination(self, queue: DestinationQueue[ReadableSpan]) -> None:
        self.destinations.append(queue)

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        self._staging.offer((span,))

    def _process(self, batch: Sequence[ReadableSpan]) -> bool:
        out = [t for t in (self.transform(span) for span in batch) if t is not None]
        if out:
            for queue in self.destinations:
                queue.offer(out)
        return True

    def transform(self, span: ReadableSpan) -> ReadableSpan | None:
        if not self.stages:
            return span
        try:
            data = to_span_data(span)
            for stage in self.stages:
                stage.apply(data)
            return with_data(span, data)
        except Exception as exc:
            log_once("span pipeline", exc)
            # A stage that failed may have left content unredacted: send nothing.
            return None if self._fail_closed else span

    @property
    def dropped(self) -> int:
        return self._staging.dropped

    def export_budget(self) -> tuple[float, str]:
        return export_budget(self.destinations)

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Send what is queued within one budget (``export_budget``, or ``timeout_s``), all
        destinations in parallel on their own workers; what is left is dropped and logged."""
        if self._is_shut_down:
            return
        self._is_shut_down = True
        budget, source = self.export_budget()
        if timeout_s is not None:
            budget, source = min(budget, max(timeout_s, 0.0)), "the caller's timeout"
        started = time.monotonic()
        deadline = self._deadline(started, budget)
        queues = [self._staging, *self.destinations]
        before = [q.dropped_stopping for q in queues]
        # kept for exporters still busy at the end: shutting them down ends their retries
        interrupt_at = deadline - min(0.5, (deadline - started) * 0.2)
        self._staging.stop()  # the stages run on what ended, and hand it on
        self._staging.wait_stopped(interrupt_at)
        for queue in self.destinations:
            queue.stop()
        for queue in self.destinations:
            queue.wait_stopped(interrupt_at)
        for queue in self.destinations:
            sender = getattr(queue, "sender", None)
            if sender is not None:
                sender.shutdown()
        for queue in self.destinations:
            queue.wait_stopped(deadline)
        self._staging.abandon()
        for queue in self.destinations:
            queue.abandon()
        lost = [q.dropped_stopping - n for q, n in zip(queues, before, strict=True)]
        self._report("shutdown dropped", time.monotonic() - started, budget, source, lost)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Send every span ended so far, within ``timeout_millis`` and the export budget."""
        budget, source = self.export_budget()
        if timeout_millis / 1000 < budget:
            budget, source = timeout_millis / 1000, "the caller's timeout"
        started = time.monotonic()
        deadline = self._deadline(started, max(budget, 0.0))
        flushed = self._staging.flush_until(deadline)
        flushed = all([q.flush_until(deadline) for q in self.destinations]) and flushed
        if not flushed and self._exit_deadline is None:  # at exit, shutdown reports
            left = [q.depth() for q in (self._staging, *self.destinations)]
            self._report("force_flush left", time.monotonic() - started, budget, source, left)
        return flushed

    def _deadline(self, now: float, budget: float) -> float:
        """``now + budget``; but while the interpreter runs its exit hooks (the main thread
        has finished), every flush and the shutdown share one budget: an exit hook that
        flushes before the providers shut down must not double the time a dead backend
        holds the process."""
        if threading.main_thread().is_alive():
            return now + budget
        if self._exit_deadline is None:
            self._exit_deadline = now + budget
        return min(now + budget, self._exit_deadline)

    def _report(
        self, what: str, elapsed: float, budget: float, source: str, counts: list[int]
    ) -> None:
        """One log line: how many spans (``counts``: staging, then each destination), for
        which destinations, and why."""
        final = what.startswith("shutdown")
        parts, total = [], 0
        staging, *per_destination = counts
        if staging:
            total += staging
            parts.append(f"{staging} not yet through the stages (for every destination)")
        for queue, count in zip(self.destinations, per_destination, strict=True):
            if not count:
                continue
            total += count
            parts.append(f"{count} for {queue.name!r} ({_why(queue)})")
        if not total:
            return
        _log.warning(
            "llmtap: %s %d span(s) after %.2f s (budget %.2f s from %s): %s%s",
            what,
            total,
            elapsed,
            budget,
            source,
            "; ".join(parts),
            "" if final else " (still queued, not dropped)",
        )

    # children of multiprocessing / billiard pools leave through os._exit(): no atexit hook
    # runs there, only multiprocessing's own finalizers

    def _arm_exit_flush(self, util: Any) -> None:
        name = util.__name__
        if name in self._exit_flush_armed:
            return
        self._exit_flush_armed.add(name)
        util.register_after_fork(self, _flush_at_process_exit)


def _why(queue: Any) -> str:
    """Why a destination still had spans: its exports fail, hang, or were not done yet."""
    target = getattr(queue, "target", None) or queue.name
    sending_since = getattr(queue, "sending_since", None)
    failures = getattr(queue, "consecutive_failures", 0)
    if failures:
        return f"export to {target} failing: {failures} failed attempt(s)"
    if sending_since is not None:
        waited = time.monotonic() - sending_since
        return f"export to {target} unanswered after {waited:.1f} s"
    return "not sent yet when the budget ran out"


def _flush_at_process_exit(pipeline: PipelineProcessor) -> None:
    """In a multiprocessing child (after its finalizers were reset): drain at its exit."""
    import multiprocessing.util

    ref = weakref.ref(pipeline)

    def drain() -> None:
        live = ref()
        if live is not None:
            live.shutdown()

    multiprocessing.util.Finalize(None, drain, exitpriority=10)


def _before_fork() -> None:
    util = sys.modules.get("multiprocessing.util")  # billiard uses the same registries
    if util is None:
        return
    for pipeline in list(_pipelines):
        pipeline._arm_exit_flush(util)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)
