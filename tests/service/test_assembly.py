"""Trace assembly: idle and max-wait readiness, memory bounds with the oldest decided early,
late spans with retained context, duplicates, and bounded memory under 50k spans."""

from __future__ import annotations

import json
import random
import tracemalloc

import pytest

from llmtap.pipeline.span import EventData, SpanData
from llmtap.service.assembly import ReadyTrace, TraceAssembler, estimate_span_bytes


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def span(trace_id: int, span_id: int, parent: int = 0, *, text: str = "", **attrs) -> SpanData:
    attributes = {"gen_ai.operation.name": "chat", **attrs}
    if text:
        attributes["gen_ai.output.messages"] = text
    return SpanData(
        name="chat gpt-4o",
        attributes=attributes,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
    )


def ids(traces: list[ReadyTrace]) -> list[int]:
    return [t.trace_id for t in traces]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, **kw) -> TraceAssembler:
    kw.setdefault("idle_s", 10.0)
    kw.setdefault("max_wait_s", 60.0)
    return TraceAssembler(clock=clock, **kw)


def test_ready_after_idle_period(clock):
    asm = make(clock)
    asm.add([span(1, 11)])
    clock.advance(5)
    asm.add([span(1, 12, parent=11)])
    clock.advance(9.9)
    assert asm.poll() == []  # 9.9 s since the last span
    clock.advance(0.1)
    (ready,) = asm.poll()
    assert ready.trace_id == 1
    assert ready.reason == "idle"
    assert not ready.early and not ready.late
    assert [s.span_id for s in ready.spans] == [11, 12]
    assert ready.new == ready.spans
    assert asm.open_traces == 0 and asm.open_spans == 0
    assert asm.poll() == []


def test_idle_is_per_trace(clock):
    asm = make(clock)
    asm.add([span(1, 11), span(2, 21)])
    clock.advance(6)
    asm.add([span(2, 22)])
    clock.advance(4)
    assert ids(asm.poll()) == [1]
    clock.advance(6)
    assert ids(asm.poll()) == [2]


def test_ready_at_max_wait_even_when_busy(clock):
    asm = make(clock, idle_s=10, max_wait_s=30)
    for i in range(6):  # a span every 5 s: never idle
        asm.add([span(1, 100 + i)])
        assert asm.poll() == []
        clock.advance(5)
    (ready,) = asm.poll()  # 30 s after the first span
    assert ready.reason == "max_wait"
    assert not ready.early
    assert len(ready.spans) == 6


def test_trace_count_bound_decides_oldest_early(clock):
    asm = make(clock, max_traces=3)
    for tid in range(1, 6):
        asm.add([span(tid, tid * 10)])
        clock.advance(1)
    assert asm.open_traces == 3
    ready = asm.poll()
    assert ids(ready) == [1, 2]
    assert all(t.early and t.reason == "traces" for t in ready)


def test_byte_budget_decides_oldest_early_and_loses_nothing(clock):
    one = estimate_span_bytes(span(1, 1, text="x" * 1000))
    asm = make(clock, max_bytes=one * 10)
    sent: set[tuple[int, int]] = set()
    handed: list[ReadyTrace] = []
    for i in range(60):
        tid = 1 + i % 6  # six traces, interleaved
        asm.add([span(tid, 1000 + i, text="x" * 1000)])
        sent.add((tid, 1000 + i))
        assert asm.bytes <= asm.max_bytes
        handed += asm.poll()
        clock.advance(0.01)
    handed += asm.flush()
    got = [(t.trace_id, s.span_id) for t in handed for s in t.new]
    assert sorted(got) == sorted(sent)  # every span handed over exactly once
    early = [t for t in handed if t.reason == "bytes"]
    assert early and all(t.early for t in early)
    # oldest first: the first trace decided for room was the first one seen
    assert early[0].trace_id == 1


def test_late_spans_are_a_new_batch_with_context(clock):
    asm = make(clock)
    asm.add([span(1, 11), span(1, 12, parent=11)])
    clock.advance(10)
    (first,) = asm.poll()
    assert not first.late
    clock.advance(120)  # feedback arrives two minutes later
    feedback = span(1, 13, parent=11, **{"llmtap.feedback.label": "negative"})
    asm.add([feedback])
    assert asm.poll() == []  # it waits for its own idle period
    clock.advance(10)
    (late,) = asm.poll()
    assert late.late and not late.early
    assert late.reason == "idle"
    assert [s.span_id for s in late.new] == [13]
    assert {s.span_id for s in late.spans} == {11, 12, 13}  # the retained context
    assert late.span(12) is not None


def test_late_spans_after_the_late_window_start_afresh(clock):
    asm = make(clock, late_window_s=60)
    asm.add([span(1, 11)])
    clock.advance(10)
    asm.poll()
    clock.advance(61)
    asm.poll()  # forgets the decided trace
    assert not asm.is_decided(1)
    asm.add([span(1, 12)])
    clock.advance(10)
    (again,) = asm.poll()
    assert not again.late
    assert [s.span_id for s in again.spans] == [12]


def test_early_decided_traces_are_not_retained(clock):
    asm = make(clock, max_traces=1)
    asm.add([span(1, 11)])
    asm.add([span(2, 21)])  # trace 1 decided early for room
    (early,) = asm.poll()
    assert early.trace_id == 1 and early.early
    asm.add([span(1, 12)])  # late, but no context was kept
    asm.flush()
    assert asm.retained_traces == 0


def test_retained_context_is_given_up_before_open_traces(clock):
    one = estimate_span_bytes(span(1, 1))
    asm = make(clock, max_bytes=one * 4)
    asm.add([span(1, 11), span(1, 12)])
    clock.advance(10)
    assert ids(asm.poll()) == [1]
    assert asm.retained_traces == 1
    asm.add([span(2, 21), span(2, 22), span(3, 31)])  # needs the retained room
    assert asm.retained_traces == 0
    assert asm.retention_evicted == 1
    assert asm.open_traces == 2 and asm.poll() == []  # nothing open was decided early
    asm.add([span(1, 13)])  # late, judged without context
    clock.advance(10)
    late = next(t for t in asm.poll() if t.trace_id == 1)
    assert late.late and [s.span_id for s in late.spans] == [13]


def test_duplicates_and_spans_without_trace_id_are_ignored(clock):
    asm = make(clock)
    asm.add([span(1, 11), span(1, 11), span(0, 5)])
    assert asm.open_spans == 1
    assert asm.duplicate_spans == 1 and asm.invalid_spans == 1
    clock.advance(10)
    (ready,) = asm.poll()
    assert len(ready.spans) == 1
    # a resent span of a decided trace is a duplicate of its retained context
    asm.add([span(1, 11)])
    assert asm.duplicate_spans == 2


def test_flush_decides_everything_early(clock):
    asm = make(clock)
    asm.add([span(1, 11), span(2, 21)])
    ready = asm.flush()
    assert ids(ready) == [1, 2]
    assert all(t.reason == "shutdown" and t.early for t in ready)
    assert asm.open_traces == 0 and asm.open_bytes == 0


def test_decided_records_are_bounded(clock):
    asm = make(clock, max_traces=10, max_decided=20)
    for tid in range(1, 200):
        asm.add([span(tid, tid)])
    asm.flush()
    assert len(asm._decided) <= 20


def test_bounded_memory_under_50k_spans(clock):
    """50,000 spans over 5,000 interleaved traces through a small budget: the bounds hold
    at every step, every span is handed over exactly once, early traces are marked."""
    rng = random.Random(7)
    asm = make(clock, idle_s=2.0, max_wait_s=8.0, max_traces=400, max_bytes=2 * 1024 * 1024)
    pending = {tid: 10 for tid in range(1, 5001)}
    active: list[int] = []
    next_tid = iter(range(1, 5001))
    handed = 0
    reasons: dict[str, int] = {}
    max_bytes = max_traces = 0
    sid = 0
    while pending:
        while len(active) < 600:  # more concurrent traces than max_traces
            tid = next(next_tid, None)
            if tid is None:
                break
            active.append(tid)
        batch = []
        for _ in range(50):
            if not active:
                break
            tid = rng.choice(active)
            sid += 1
            batch.append(span(tid, sid, text="y" * rng.randint(50, 800)))
            pending[tid] -= 1
            if not pending[tid]:
                del pending[tid]
                active.remove(tid)
        asm.add(batch)
        max_bytes = max(max_bytes, asm.bytes)
        max_traces = max(max_traces, asm.open_traces)
        for t in asm.poll():
            handed += len(t.new)
            reasons[t.reason] = reasons.get(t.reason, 0) + 1
            assert t.early == (t.reason in ("traces", "bytes"))
        clock.advance(0.05)
    clock.advance(100)
    for t in asm.poll() + asm.flush():
        handed += len(t.new)
        reasons[t.reason] = reasons.get(t.reason, 0) + 1
    assert sid == 50_000
    assert handed == 50_000
    assert max_bytes <= 2 * 1024 * 1024
    assert max_traces <= 400
    assert reasons.get("traces", 0) + reasons.get("bytes", 0) > 0  # the bounds did bite
    assert reasons.get("idle", 0) > 0
    assert asm.open_traces == 0 and asm.open_spans == 0
    assert len(asm._decided) <= asm.max_decided


def test_size_estimate_is_close_to_real_memory():
    def make_span(i: int) -> SpanData:
        attrs = {f"gen_ai.attr.{k}": f"value-{i}-{k}" for k in range(15)}
        attrs["gen_ai.usage.input_tokens"] = 100 + i
        attrs["gen_ai.input.messages"] = json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "x" * 500 + str(i)}]}]
        )
        return SpanData(
            name=f"chat {i}",
            attributes=attrs,
            events=[EventData("e", {"a": str(i)})],
            trace_id=i + 1,
            span_id=i + 1,
        )

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        spans = [make_span(i) for i in range(1000)]
        real = (tracemalloc.get_traced_memory()[0] - before) / 1000
    finally:
        tracemalloc.stop()
    estimate = sum(estimate_span_bytes(s) for s in spans) / 1000
    assert 0.6 < estimate / real < 1.6
