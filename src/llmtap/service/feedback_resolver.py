"""User feedback recorded by response id in another process, moved into the answer's trace.

``llmtap.record_feedback(response_id=...)`` in a process that did not trace the answer
(another gunicorn worker, another host, after a restart) records the feedback as the root
of a trace of its own, marked ``llmtap.feedback.resolved`` = ``false``. The service sees the
spans of every process, so :class:`FeedbackResolver` can resolve it:

* an **index** of answers: ``gen_ai.response.id`` -> (trace id, span id, ``llmtap.feature``)
  of the span that returned it, from every received span with a response id that is not an
  evaluation; the last ``max_responses`` are kept (oldest forgotten first; the last span
  with an id wins, as in the app). Keys are the 64-bit string hashes of the ids, so an entry
  costs the same whatever the id's length (about 200 bytes: 20 MB for 100 000 answers);
* **waiting feedback**: unresolved feedback whose answer is not (yet) in the index waits up
  to ``wait_s`` for it (its spans may still be on their way: batching in the app and
  collectors, a tail sampler's decision wait), at most ``max_pending`` of them (the oldest
  gives way);
* **copies**: a resolved feedback span is copied into the answer's trace as a child of the
  answer's span, ``llmtap.feedback.resolved`` = ``true`` (on the span and its result events),
  the answer's ``llmtap.feature`` when the feedback had none, and a link to the original. Its
  span id is derived from the original's ids, so a feedback span received twice (a retried
  export) gives the same copy twice, not two feedbacks.

The original unresolved span is always forwarded as received. Feedback that finds no answer
within ``wait_s`` stays as it is (counted in ``llmtap_service_feedback_unresolved_total``).
Only accepted requests are fed to the resolver, and every operation is O(1) per span under
one lock; the copies are parsed and built outside it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from llmtap import semconv
from llmtap.service.metrics import MetricsRegistry

__all__ = ["Answer", "FeedbackResolver", "Resolved", "Unresolved", "copy_into_answer"]

RESOLVED = semconv.LLMTAP_FEEDBACK_RESOLVED
_MAX_FEATURES = 1024
_PARENT_IS_REMOTE = 0x300  # OTLP span flags: "has is_remote" and "is_remote"


@dataclass(frozen=True)
class Answer:
    """A received span with a response id: ``(response_id, trace_id, span_id, feature)``."""

    response_id: str
    trace_id: bytes
    span_id: bytes
    feature: str | None = None


@dataclass(frozen=True)
class Unresolved:
    """A received feedback span with ``llmtap.feedback.resolved`` = ``false``: its response
    id, its scope group (resource and scope, kept for the copy) and its serialized form."""

    response_id: str
    group: Any
    body: bytes


@dataclass(frozen=True)
class Resolved:
    """Unresolved feedback and the answer it belongs to (the copy is built from both)."""

    feedback: Unresolved
    trace_id: bytes
    span_id: bytes
    feature: str | None


class _Waiting:
    __slots__ = ("at", "done", "feedback", "key")

    def __init__(self, key: int, feedback: Unresolved, at: float) -> None:
        self.key = key
        self.feedback = feedback
        self.at = at
        self.done = False


class FeedbackResolver:
    """The index of answers and the feedback waiting for its answer (module documentation).

    Thread-safe. ``registry`` gets the counters and gauges (a registry of its own without
    one); ``clock`` is monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        max_responses: int = 100_000,
        max_pending: int = 1000,
        wait_s: float = 60.0,
        registry: MetricsRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_responses < 1 or max_pending < 0 or wait_s < 0:
            raise ValueError(
                "FeedbackResolver: max_responses must be positive, max_pending and wait_s "
                f"0 or more (got {max_responses}, {max_pending}, {wait_s})"
            )
        self.max_responses = int(max_responses)
        self.max_pending = int(max_pending)
        self.wait_s = float(wait_s)
        self._clock = clock
        self._lock = threading.Lock()
        # response id hash -> trace id + span id (24 bytes) + feature number (1-2 bytes)
        self._answers: OrderedDict[int, bytes] = OrderedDict()
        self._features: dict[str, int] = {}
        self._feature_names: list[str] = []
        self._waiting: dict[int, list[_Waiting]] = {}
        self._arrivals: deque[_Waiting] = deque()
        self._pending = 0
        registry = registry if registry is not None else MetricsRegistry()
        self._resolved = registry.counter(
            "llmtap_service_feedback_resolved_total",
            "Unresolved feedback spans (llmtap.feedback.resolved=false) copied into their "
            "answer's trace, by when the answer was known: at_once or waited",
            ("when",),
        )
        self._unresolved = registry.counter(
            "llmtap_service_feedback_unresolved_total",
            "Unresolved feedback spans left as received: expired (no answer within "
            "feedback_wait_s), pending_full (more were waiting), shutdown",
            ("reason",),
        )
        registry.gauge_callback(
            "llmtap_service_feedback_index_entries",
            "Answers (response id -> span) the feedback resolver remembers",
            lambda: len(self._answers),
        )
        registry.gauge_callback(
            "llmtap_service_feedback_pending",
            "Unresolved feedback spans waiting for their answer",
            lambda: self._pending,
        )

    # state -----------------------------------------------------------------------------

    @property
    def answers(self) -> int:
        return len(self._answers)

    @property
    def pending(self) -> int:
        return self._pending

    def counts(self) -> dict[str, float]:
        """Counters for tests and logs: resolved, and unresolved by reason."""
        return {
            "resolved": self._resolved.total(),
            **{
                f"unresolved_{r}": self._unresolved.value(reason=r)
                for r in ("expired", "pending_full", "shutdown")
            },
        }

    # input -----------------------------------------------------------------------------

    def observe(self, answers: Sequence[Answer], feedback: Sequence[Unresolved]) -> list[Resolved]:
        """Take the answers and unresolved feedback of one accepted request; return the
        feedback resolved now (this request's, and earlier feedback waiting for these
        answers)."""
        now = self._clock()
        out: list[Resolved] = []
        with self._lock:
            self._expire(now)
            for answer in answers:
                entry = self._remember(answer)
                waiting = self._waiting.pop(hash(answer.response_id), None)
                for item in waiting or ():
                    item.done = True
                    self._pending -= 1
                    out.append(self._resolution(item.feedback, entry))
                    self._resolved.inc(when="waited")
            for item in feedback:
                key = hash(item.response_id)
                entry = self._answers.get(key)
                if entry is not None:
                    out.append(self._resolution(item, entry))
                    self._resolved.inc(when="at_once")
                else:
                    self._wait(key, item, now)
        return out

    def lookup(self, response_id: str) -> tuple[bytes, bytes, str | None] | None:
        """The (trace id, span id, feature) remembered for ``response_id``, or None."""
        with self._lock:
            entry = self._answers.get(hash(response_id))
        return self._unpack(entry) if entry is not None else None

    def expire(self) -> None:
        """Give up the waiting feedback older than ``wait_s`` (also done on each observe)."""
        with self._lock:
            self._expire(self._clock())

    def close(self) -> int:
        """Give up all waiting feedback (counted as ``shutdown``); returns how many."""
        with self._lock:
            left = self._pending
            if left:
                self._unresolved.inc(left, reason="shutdown")
            self._waiting.clear()
            self._arrivals.clear()
            self._pending = 0
        return left

    # internals ------------------------------------------------------------------------

    def _feature_number(self, feature: str | None) -> bytes:
        if not feature:
            return b""
        number = self._features.get(feature)
        if number is None:
            if len(self._feature_names) >= _MAX_FEATURES:
                return b""
            number = len(self._feature_names) + 1
            self._features[feature] = number
            self._feature_names.append(feature)
        return number.to_bytes(2, "big")

    def _remember(self, answer: Answer) -> bytes:
        key = hash(answer.response_id)
        entry = answer.trace_id + answer.span_id + self._feature_number(answer.feature)
        answers = self._answers
        answers[key] = entry
        answers.move_to_end(key)
        while len(answers) > self.max_responses:
            answers.popitem(last=False)
        return entry

    def _unpack(self, entry: bytes) -> tuple[bytes, bytes, str | None]:
        feature = None
        if len(entry) > 24:
            feature = self._feature_names[int.from_bytes(entry[24:], "big") - 1]
        return entry[:16], entry[16:24], feature

    def _resolution(self, feedback: Unresolved, entry: bytes) -> Resolved:
        trace_id, span_id, feature = self._unpack(entry)
        return Resolved(feedback, trace_id, span_id, feature)

    def _wait(self, key: int, feedback: Unresolved, now: float) -> None:
        if self.max_pending == 0 or self.wait_s == 0:
            self._unresolved.inc(reason="expired")
            return
        while self._pending >= self.max_pending:
            oldest = self._arrivals.popleft()
            if not oldest.done:
                self._give_up(oldest, "pending_full")
        item = _Waiting(key, feedback, now)
        self._waiting.setdefault(key, []).append(item)
        self._arrivals.append(item)
        self._pending += 1

    def _expire(self, now: float) -> None:
        arrivals = self._arrivals
        before = now - self.wait_s
        while arrivals and (arrivals[0].done or arrivals[0].at <= before):
            item = arrivals.popleft()
            if not item.done:
                self._give_up(item, "expired")

    def _give_up(self, item: _Waiting, reason: str) -> None:
        item.done = True
        self._pending -= 1
        waiting = self._waiting.get(item.key)
        if waiting is not None:
            waiting.remove(item)
            if not waiting:
                del self._waiting[item.key]
        self._unresolved.inc(reason=reason)


# the copy -------------------------------------------------------------------------------------


def copy_id(trace_id: bytes, span_id: bytes) -> bytes:
    """The span id of the copy of feedback span ``(trace_id, span_id)``: the same for the
    same original, never zero."""
    digest = hashlib.blake2b(trace_id + span_id, digest_size=8, person=b"llmtap-feedback").digest()
    return digest if any(digest) else b"\x00" * 7 + b"\x01"


def _mark_resolved(pairs: Any) -> bool:
    for kv in pairs:
        if kv.key == RESOLVED:
            kv.value.Clear()
            kv.value.bool_value = True
            return True
    return False


def copy_into_answer(resolved: Resolved) -> trace_pb2.Span:
    """The feedback span as a child of the answer's span (see the module documentation)."""
    span = trace_pb2.Span.FromString(resolved.feedback.body)
    original_trace, original_span = span.trace_id, span.span_id
    span.trace_id = resolved.trace_id
    span.span_id = copy_id(original_trace, original_span)
    span.parent_span_id = resolved.span_id
    span.trace_state = ""
    span.flags = (span.flags & 0xFF) | _PARENT_IS_REMOTE
    if not _mark_resolved(span.attributes):
        kv = span.attributes.add(key=RESOLVED)
        kv.value.bool_value = True
    for event in span.events:
        _mark_resolved(event.attributes)
    feature = resolved.feature
    if feature and not any(kv.key == semconv.LLMTAP_FEATURE for kv in span.attributes):
        span.attributes.add(key=semconv.LLMTAP_FEATURE).value.string_value = feature
    span.links.add(trace_id=original_trace, span_id=original_span)
    return span
