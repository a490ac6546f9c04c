"""The service's feedback resolver: the bounded index of answers, feedback waiting for its
answer, the copy into the answer's trace; and the same through a real service (raw OTLP
requests in, an OTLP receiver as the backend)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from llmtap.service.feedback_resolver import (
    Answer,
    FeedbackResolver,
    Unresolved,
    copy_id,
    copy_into_answer,
)
from llmtap.service.metrics import MetricsRegistry
from llmtap.service.spans import set_attributes
from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    grpc_call,
    grpc_export,
    metric_value,
    metrics_text,
    running_service,
    span_request,
    wait_until,
)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _tid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def _sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _answer(n: int, feature: str | None = None) -> Answer:
    return Answer(f"chatcmpl-{n}", _tid(1000 + n), _sid(2000 + n), feature)


FEEDBACK_ATTRS = {
    "gen_ai.evaluation.name": "user_feedback",
    "gen_ai.evaluation.score.value": -1.0,
    "gen_ai.evaluation.score.label": "negative",
    "llmtap.evaluation.source": "user",
    "llmtap.feedback.label": "negative",
    "llmtap.feedback.resolved": False,
}


def _feedback_span(n: int, response_id: str, **extra: Any) -> trace_pb2.Span:
    span = trace_pb2.Span(
        trace_id=_tid(9000 + n),
        span_id=_sid(9000 + n),
        name="evaluate user_feedback",
        kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=1_000_000_000,
        end_time_unix_nano=1_000_001_000,
    )
    attrs = {**FEEDBACK_ATTRS, "gen_ai.response.id": response_id, **extra}
    set_attributes(span.attributes, attrs)
    event = span.events.add(name="gen_ai.evaluation.result", time_unix_nano=1_000_000_500)
    set_attributes(event.attributes, attrs)
    return span


def _unresolved(n: int, response_id: str) -> Unresolved:
    return Unresolved(response_id, None, _feedback_span(n, response_id).SerializeToString())


def _attrs(pairs: Any) -> dict[str, Any]:
    out = {}
    for kv in pairs:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which)
    return out


def test_the_index_is_bounded_and_forgets_the_oldest_answers() -> None:
    registry = MetricsRegistry()
    resolver = FeedbackResolver(max_responses=3, wait_s=5, registry=registry, clock=Clock())
    assert resolver.observe([_answer(n) for n in range(5)], []) == []
    assert resolver.answers == 3
    assert resolver.lookup("chatcmpl-0") is None and resolver.lookup("chatcmpl-1") is None
    assert resolver.lookup("chatcmpl-4") == (_tid(1004), _sid(2004), None)
    # seen again: the newest, so chatcmpl-2 is the one forgotten next
    resolver.observe([_answer(2, "support")], [])
    resolver.observe([_answer(5)], [])
    assert resolver.lookup("chatcmpl-3") is None
    assert resolver.lookup("chatcmpl-2") == (_tid(1002), _sid(2002), "support")
    assert resolver.counts()["resolved"] == 0


def test_feedback_is_resolved_at_once_or_when_its_answer_arrives() -> None:
    clock = Clock()
    resolver = FeedbackResolver(wait_s=30, clock=clock)
    resolver.observe([_answer(1, "support")], [])
    (now,) = resolver.observe([], [_unresolved(1, "chatcmpl-1")])
    assert (now.trace_id, now.span_id, now.feature) == (_tid(1001), _sid(2001), "support")
    # the answer has not arrived yet: the feedback waits for it
    assert resolver.observe([], [_unresolved(2, "chatcmpl-2")]) == []
    assert resolver.pending == 1
    clock.t += 29
    (later,) = resolver.observe([_answer(2)], [])
    assert (later.trace_id, later.span_id) == (_tid(1002), _sid(2002))
    assert later.feedback.response_id == "chatcmpl-2"
    assert resolver.pending == 0
    assert resolver._resolved.value(when="at_once") == 1
    assert resolver._resolved.value(when="waited") == 1


def test_an_unknown_id_stays_unresolved_and_is_counted() -> None:
    clock = Clock()
    resolver = FeedbackResolver(wait_s=10, max_pending=2, clock=clock)
    for n in range(3):  # the third pushes the oldest out
        assert resolver.observe([], [_unresolved(n, f"nobody-{n}")]) == []
    assert resolver.pending == 2
    assert resolver.counts()["unresolved_pending_full"] == 1
    clock.t += 10
    resolver.expire()
    assert resolver.pending == 0
    assert resolver.counts()["unresolved_expired"] == 2
    # its answer after the wait: nothing is resolved any more
    assert resolver.observe([_answer(0), _answer(1), _answer(2)], []) == []
    # waiting feedback at shutdown
    resolver.observe([], [_unresolved(7, "late")])
    assert resolver.close() == 1 and resolver.counts()["unresolved_shutdown"] == 1


def test_no_waiting_when_the_wait_is_zero() -> None:
    resolver = FeedbackResolver(wait_s=0, clock=Clock())
    assert resolver.observe([], [_unresolved(1, "chatcmpl-1")]) == []
    assert resolver.pending == 0 and resolver.counts()["unresolved_expired"] == 1


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_responses must be positive"):
        FeedbackResolver(max_responses=0)


def test_the_copy_sits_under_the_answer_and_links_the_original() -> None:
    resolver = FeedbackResolver(clock=Clock())
    resolver.observe([_answer(1, "support")], [])
    (resolved,) = resolver.observe([], [_unresolved(1, "chatcmpl-1")])
    copy = copy_into_answer(resolved)
    assert (copy.trace_id, copy.parent_span_id) == (_tid(1001), _sid(2001))
    assert copy.span_id == copy_id(_tid(9001), _sid(9001)) != _sid(9001)
    assert copy_into_answer(resolved).span_id == copy.span_id  # the same copy, twice
    assert copy.flags & 0x300 == 0x300  # the parent is remote
    attrs = _attrs(copy.attributes)
    assert attrs["llmtap.feedback.resolved"] is True
    assert attrs["llmtap.feature"] == "support"
    assert attrs["llmtap.feedback.label"] == "negative"
    assert attrs["gen_ai.response.id"] == "chatcmpl-1"
    assert _attrs(copy.events[0].attributes)["llmtap.feedback.resolved"] is True
    (link,) = copy.links
    assert (link.trace_id, link.span_id) == (_tid(9001), _sid(9001))
    assert copy.name == "evaluate user_feedback"


def test_index_memory_per_answer() -> None:
    resolver = FeedbackResolver(max_responses=20_000, clock=Clock())
    answers = [_answer(n, "support") for n in range(20_000)]
    resolver.observe(answers[:10], [])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        resolver.observe(answers[10:], [])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    per_answer = held / (len(answers) - 10)
    print(f"feedback index: {per_answer:.0f} bytes per answer")
    assert per_answer < 260, per_answer  # about 200 bytes; 100 000 answers ~ 20 MB


# through the service ------------------------------------------------------------------------


def _chat_span(n: int, response_id: str | None = None) -> dict[str, Any]:
    return {
        "trace_id": _tid(1000 + n),
        "span_id": _sid(2000 + n),
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "start_time_unix_nano": 1_000_000_000,
        "end_time_unix_nano": 1_500_000_000,
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.response.id": response_id or f"chatcmpl-{n}",
            "llmtap.feature": "support",
        },
    }


def _send(app: Any, spans: list[Any]) -> None:
    request = span_request([])
    request.resource_spans[0].scope_spans[0].spans.extend(spans)
    grpc_call(app, request.SerializeToString())


def test_the_service_copies_feedback_into_the_answers_trace(tmp_path: Path) -> None:
    with OtlpReceiver() as backend:
        with running_service(
            tmp_path, [grpc_export(backend)], feedback_wait_s=30, feedback_pending=10
        ) as app:
            # feedback before its answer (it waits), then the answer
            _send(app, [_feedback_span(1, "chatcmpl-1")])
            grpc_call(app, span_request([_chat_span(1)]).SerializeToString())
            # the answer first, then its feedback (resolved at once)
            grpc_call(app, span_request([_chat_span(2)]).SerializeToString())
            _send(app, [_feedback_span(2, "chatcmpl-2")])
            # nobody's answer
            _send(app, [_feedback_span(3, "chatcmpl-nobody")])
            spans = backend.wait_for_spans(7)
            text = metrics_text(app)
        assert metric_value(text, "llmtap_service_feedback_resolved_total", when="waited") == 1
        assert metric_value(text, "llmtap_service_feedback_resolved_total", when="at_once") == 1
        assert metric_value(text, "llmtap_service_feedback_pending") == 1
        assert metric_value(text, "llmtap_service_feedback_index_entries") == 2
        # feedback counted once each, not again for its copy
        assert metric_value(text, "llmtap_feedback_total", label="negative", feature="") == 3
    originals = [s for s in spans if s.attributes.get("llmtap.feedback.resolved") is False]
    copies = [s for s in spans if s.attributes.get("llmtap.feedback.resolved") is True]
    assert len(originals) == 3 and len(copies) == 2  # forwarded as received, plus the copies
    for n in (1, 2):
        (copy,) = [c for c in copies if c.attributes["gen_ai.response.id"] == f"chatcmpl-{n}"]
        assert copy.trace_id == _tid(1000 + n).hex()
        assert copy.parent_span_id == _sid(2000 + n).hex()
        assert copy.attributes["llmtap.feature"] == "support"
        assert copy.resource == {"service.name": "raw"}  # the feedback's process
        assert [(link.trace_id, link.span_id) for link in copy.links] == [
            (_tid(9000 + n).hex(), _sid(9000 + n).hex())
        ]


def test_unresolved_feedback_expires_and_is_counted(tmp_path: Path) -> None:
    with (
        OtlpReceiver() as backend,
        running_service(tmp_path, [grpc_export(backend)], feedback_wait_s=0.2) as app,
    ):
        _send(app, [_feedback_span(1, "chatcmpl-gone")])
        backend.wait_for_spans(1)
        assert app.feedback is not None
        wait_until(lambda: app.feedback.expire() or app.feedback.pending == 0, 5, "expiry")
        # the answer after the wait: no copy
        grpc_call(app, span_request([_chat_span(0, "chatcmpl-gone")]).SerializeToString())
        backend.wait_for_spans(2)
        text = metrics_text(app)
        app.stop(5)  # drained: a copy would have been forwarded by now
        spans = backend.spans()
    assert len(spans) == 2
    assert metric_value(text, "llmtap_service_feedback_unresolved_total", reason="expired") == 1
    assert not [s for s in spans if s.attributes.get("llmtap.feedback.resolved") is True]


def test_resolution_can_be_turned_off(tmp_path: Path) -> None:
    with running_service(tmp_path, [], feedback_responses=0) as app:
        assert app.feedback is None
