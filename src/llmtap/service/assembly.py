"""Trace assembly for the judge: group spans by trace id and decide when a trace is whole.

Spans of one trace arrive in several OTLP requests, in any order, over seconds. The judge
must not evaluate a trace before it is complete (the retrieval span that a faithfulness
rubric needs may come after the chat span), so :class:`TraceAssembler` holds spans by
trace id and hands a trace over as a :class:`ReadyTrace` when

* ``idle_s`` passed with no new span of that trace (``reason="idle"``), or
* ``max_wait_s`` passed since its first span was seen, however busy it still is
  (``reason="max_wait"``; a long agent run is judged on what arrived so far).

Memory is bounded by ``max_traces`` open traces and ``max_bytes`` of (estimated) span
memory. When a new span would break a bound, nothing is dropped: the **oldest** open traces
are decided early, as they are, and marked ``early=True`` (``reason="traces"`` or
``"bytes"``); the judge puts ``llmtap.evaluation.early=true`` on their results.
:meth:`TraceAssembler.flush` decides every open trace at shutdown (``reason="shutdown"``,
also early).

Late spans
==========

A span of a trace already decided is *late*. Late spans are judged, not ignored: they open
a new, small batch of the same trace (``late=True``) that goes through the same idle and
max-wait clock. So that a late batch can be judged in context (above all a user's
negative feedback arriving minutes after the answer, which makes ``feedback: negative``
rules select the trace's chat spans), the spans of a decided trace are **retained** for
``late_window_s`` after the decision, inside the same byte budget; a late batch carries
them in :attr:`ReadyTrace.spans` and only the late spans in :attr:`ReadyTrace.new`.
Retained spans are the first thing given up under memory pressure (before an open trace is
decided early), and a trace decided early is not retained at all. A late batch whose
context is gone has only its own spans. Re-judging is prevented downstream: the judge keeps
an LRU of (trace, span, evaluator) decisions and never judges the same span twice with the
same evaluator.

Span sizes are estimates of their Python memory (:func:`estimate_span_bytes`): attribute
and event text plus fixed per-object overheads, within a small factor of ``tracemalloc``
for typical GenAI spans. The resource is shared by the spans of a request and not counted.
Which traces were decided is remembered (id and time, ~100 bytes each) for
``late_window_s``, at most ``max_decided`` of them; those records are bounded by count,
not by the byte budget.

The assembler is a plain, single-threaded data structure with an injectable clock and no
timers: the owner calls :meth:`TraceAssembler.add` with spans and :meth:`TraceAssembler.poll`
from its own periodic tick (``llmtap.service.judging.Judging`` does both on its thread).
Every operation is O(1) per span or per decided trace (ordered dicts keyed by trace id, in
first-seen and last-seen order).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmtap.pipeline.span import SpanData

__all__ = [
    "DEFAULT_MAX_BYTES",
    "REASONS",
    "ReadyTrace",
    "TraceAssembler",
    "estimate_span_bytes",
]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024

#: why a trace was handed over: complete (idle), waited long enough, out of room, stopping
REASONS = ("idle", "max_wait", "traces", "bytes", "shutdown")
EARLY_REASONS = frozenset({"traces", "bytes", "shutdown"})

# Rough CPython sizes: a SpanData with its dicts and lists; one attribute (dict entry, key
# string of ~24 characters, value object header); an event object; a number.
_SPAN_OVERHEAD = 400
_ATTR_OVERHEAD = 130
_STR_OVERHEAD = 50
_EVENT_OVERHEAD = 200
_SCALAR = 32
_SCALARS = (int, float, bool)


def _value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return _STR_OVERHEAD + len(value)
    if isinstance(value, (bytes, bytearray)):
        return 33 + len(value)
    if isinstance(value, (list, tuple)):
        return 56 + sum(8 + _value_bytes(v) for v in value)
    if isinstance(value, Mapping):
        return _attrs_bytes(value)
    return _SCALAR


def _attrs_bytes(attrs: Mapping[str, Any]) -> int:
    # hot path (every span the judge holds): string values measured, the rest estimated
    size = 64 + len(attrs) * _ATTR_OVERHEAD
    for value in attrs.values():
        if type(value) is str:
            size += len(value)
        elif type(value) not in _SCALARS:
            size += _value_bytes(value) - _STR_OVERHEAD
    return size


def estimate_span_bytes(span: SpanData) -> int:
    """Approximate memory held by one span record (attributes, events, status text)."""
    size = _SPAN_OVERHEAD + len(span.name) + _attrs_bytes(span.attributes)
    for event in span.events:
        size += _EVENT_OVERHEAD + len(event.name) + _attrs_bytes(event.attributes)
    if span.status_message:
        size += _STR_OVERHEAD + len(span.status_message)
    return size


@dataclass
class ReadyTrace:
    """A trace handed to the judge."""

    trace_id: int
    #: every span known of the trace: retained context of earlier batches, then the new ones
    spans: list[SpanData]
    #: the spans first handed over in this batch (all of ``spans`` unless ``late``)
    new: list[SpanData]
    #: one of :data:`REASONS`
    reason: str
    #: decided before it was complete (out of room, or shutting down)
    early: bool = False
    #: a batch of spans that arrived after the trace was decided
    late: bool = False
    first_seen: float = 0.0
    decided_at: float = 0.0
    #: estimated bytes of ``spans``
    bytes: int = 0
    _by_id: dict[int, SpanData] | None = field(default=None, repr=False, compare=False)

    def span(self, span_id: int) -> SpanData | None:
        """The span with this id, or None."""
        if self._by_id is None:
            self._by_id = {s.span_id: s for s in self.spans}
        return self._by_id.get(span_id)


class _Open:
    __slots__ = ("bytes", "context", "first_seen", "last_seen", "late", "spans", "trace_id")

    def __init__(self, trace_id: int, now: float) -> None:
        self.trace_id = trace_id
        self.spans: dict[int, SpanData] = {}
        self.context: dict[int, SpanData] | None = None
        self.bytes = 0
        self.first_seen = now
        self.last_seen = now
        self.late = False


class _Decided:
    __slots__ = ("at", "bytes", "spans")

    def __init__(self, at: float, spans: dict[int, SpanData] | None, size: int) -> None:
        self.at = at
        self.spans = spans
        self.bytes = size


class TraceAssembler:
    """Spans in, whole traces out (see the module documentation). Not thread-safe."""

    def __init__(
        self,
        *,
        idle_s: float = 10.0,
        max_wait_s: float = 60.0,
        max_traces: int = 10_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        late_window_s: float = 300.0,
        max_decided: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        size_of: Callable[[SpanData], int] = estimate_span_bytes,
    ) -> None:
        if idle_s <= 0 or max_wait_s <= 0:
            raise ValueError("idle_s and max_wait_s must be positive")
        if max_traces < 1 or max_bytes < 1:
            raise ValueError("max_traces and max_bytes must be positive")
        self.idle_s = float(idle_s)
        self.max_wait_s = float(max_wait_s)
        self.max_traces = int(max_traces)
        self.max_bytes = int(max_bytes)
        self.late_window_s = float(late_window_s)
        self.max_decided = int(max_decided if max_decided is not None else 4 * max_traces)
        self._clock = clock
        self._size_of = size_of
        # open traces in first-seen order, and the same ids in last-seen order
        self._open: OrderedDict[int, _Open] = OrderedDict()
        self._idle: OrderedDict[int, None] = OrderedDict()
        # decided traces in decision order; the subset still holding spans
        self._decided: OrderedDict[int, _Decided] = OrderedDict()
        self._retained: OrderedDict[int, None] = OrderedDict()
        self._ready: list[ReadyTrace] = []
        self._open_bytes = 0
        self._retained_bytes = 0
        self._open_spans = 0
        #: spans ignored: no trace id, or a span id already held for the trace
        self.invalid_spans = 0
        self.duplicate_spans = 0
        #: retained traces given up for room (their late spans are judged without context)
        self.retention_evicted = 0

    # state -------------------------------------------------------------------------

    @property
    def open_traces(self) -> int:
        return len(self._open)

    @property
    def open_spans(self) -> int:
        return self._open_spans

    @property
    def retained_traces(self) -> int:
        return len(self._retained)

    @property
    def bytes(self) -> int:
        """Estimated bytes held: open traces plus retained spans of decided traces."""
        return self._open_bytes + self._retained_bytes

    @property
    def open_bytes(self) -> int:
        return self._open_bytes

    def is_decided(self, trace_id: int) -> bool:
        return trace_id in self._decided

    # input -------------------------------------------------------------------------

    def add(self, spans: Iterable[SpanData]) -> None:
        """Hold ``spans``; traces pushed out by the bounds are queued for :meth:`poll`."""
        now = self._clock()
        opened = self._open
        size_of = self._size_of
        for span in spans:
            tid = span.trace_id
            if not tid:
                self.invalid_spans += 1
                continue
            trace = opened.get(tid)
            if trace is None:
                trace = self._open_trace(tid, now)
            elif trace.last_seen != now:
                trace.last_seen = now
                self._idle.move_to_end(tid)
            sid = span.span_id
            if sid in trace.spans or (trace.context is not None and sid in trace.context):
                self.duplicate_spans += 1
                continue
            size = size_of(span)
            trace.spans[sid] = span
            trace.bytes += size
            self._open_bytes += size
            self._open_spans += 1
            if (
                self._open_bytes + self._retained_bytes > self.max_bytes
                or len(opened) > self.max_traces
            ):
                self._make_room(now)

    def _open_trace(self, tid: int, now: float) -> _Open:
        trace = _Open(tid, now)
        done = self._decided.pop(tid, None)
        if done is not None:
            trace.late = True
            if done.spans is not None:
                # the retained spans move into the open batch, bytes and all
                self._retained.pop(tid, None)
                self._retained_bytes -= done.bytes
                trace.context = done.spans
                trace.bytes = done.bytes
                self._open_bytes += done.bytes
        self._open[tid] = trace
        self._idle[tid] = None
        return trace

    def _make_room(self, now: float) -> None:
        while len(self._open) > self.max_traces:
            self._decide(next(iter(self._open.values())), "traces", now)
        while self._open_bytes + self._retained_bytes > self.max_bytes:
            if self._retained:
                self._forget_spans(next(iter(self._retained)))
                self.retention_evicted += 1
            elif self._open:
                self._decide(next(iter(self._open.values())), "bytes", now)
            else:  # pragma: no cover - the counters say bytes are held but nothing holds them
                self._open_bytes = self._retained_bytes = 0

    def _forget_spans(self, tid: int) -> None:
        self._retained.pop(tid, None)
        done = self._decided.get(tid)
        if done is not None and done.spans is not None:
            self._retained_bytes -= done.bytes
            done.spans = None
            done.bytes = 0

    # output ------------------------------------------------------------------------

    def _decide(self, trace: _Open, reason: str, now: float) -> None:
        tid = trace.trace_id
        del self._open[tid]
        del self._idle[tid]
        self._open_bytes -= trace.bytes
        self._open_spans -= len(trace.spans)
        early = reason in EARLY_REASONS
        new = list(trace.spans.values())
        if trace.context:
            merged = trace.context
            merged.update(trace.spans)
            spans = list(merged.values())
        else:
            merged = trace.spans
            spans = new
        self._ready.append(
            ReadyTrace(
                trace_id=tid,
                spans=spans,
                new=new,
                reason=reason,
                early=early,
                late=trace.late,
                first_seen=trace.first_seen,
                decided_at=now,
                bytes=trace.bytes,
            )
        )
        keep = not early and self.late_window_s > 0
        self._decided[tid] = _Decided(now, merged if keep else None, trace.bytes if keep else 0)
        if keep:
            self._retained[tid] = None
            self._retained_bytes += trace.bytes
        while len(self._decided) > self.max_decided:
            old_tid, old = self._decided.popitem(last=False)
            if old.spans is not None:
                self._retained.pop(old_tid, None)
                self._retained_bytes -= old.bytes

    def poll(self) -> list[ReadyTrace]:
        """The traces ready now: decided early since the last poll, idle, or waited out."""
        now = self._clock()
        # decided traces past the late window: forget them (later spans start afresh)
        window = self.late_window_s
        while self._decided:
            tid, done = next(iter(self._decided.items()))
            if done.at + window > now:
                break
            self._decided.popitem(last=False)
            if done.spans is not None:
                self._retained.pop(tid, None)
                self._retained_bytes -= done.bytes
        idle_before = now - self.idle_s
        while self._idle:
            trace = self._open[next(iter(self._idle))]
            if trace.last_seen > idle_before:
                break
            self._decide(trace, "idle", now)
        wait_before = now - self.max_wait_s
        while self._open:
            trace = next(iter(self._open.values()))
            if trace.first_seen > wait_before:
                break
            self._decide(trace, "max_wait", now)
        ready, self._ready = self._ready, []
        return ready

    def flush(self) -> list[ReadyTrace]:
        """Decide every open trace now (``reason="shutdown"``) and return all ready ones."""
        now = self._clock()
        while self._open:
            self._decide(next(iter(self._open.values())), "shutdown", now)
        ready, self._ready = self._ready, []
        return ready
