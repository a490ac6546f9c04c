"""End-user feedback on a traced answer: ``llmtap.record_feedback(...)``.

The feedback becomes an ``evaluate {name}`` span in the trace of the answer, a child of the
GenAI span that produced it (a remote parent: the answer may have ended long ago, even in
another process), plus a ``gen_ai.evaluation.result`` event: a log record tied to the
answer's span when a logger provider is configured, else an event on the feedback span.
The llmtap service reads it as user feedback (``when: {feedback: negative}`` judge rules)::

    reply = client.chat.completions.create(...)
    ...                                   # later, in the feedback endpoint
    llmtap.record_feedback(response_id=reply.id, score="down", comment="wrong price")
    llmtap.record_feedback(trace_id=tid, span_id=sid, score=4, scale="stars")

Targets: ``span_context`` (a ``SpanContext`` or a span), ``trace_id`` + ``span_id`` (hex
strings or ints), or ``response_id``: the ``gen_ai.response.id`` of the answer, looked up in
a bounded map of this process (the last :data:`MAX_RESPONSES` responses) that the
instrumentation fills when a GenAI span ends.

Several processes (gunicorn or uvicorn workers, other hosts, a restart): a response id
this process has not seen is still recorded, as an *unresolved* feedback span: the root of
a trace of its own, carrying ``gen_ai.response.id`` and ``llmtap.feedback.resolved`` =
``false`` (the returned record has ``resolved=False`` and no ``target``). The llmtap
service, which sees every process's spans, resolves it: it remembers which span returned
each response id and writes a copy of the feedback into the answer's trace, under the
answer's span (``llmtap.feedback.resolved`` = ``true``, a link to the original), where its
judge rules find it; a feedback span that comes before its answer waits a bounded time.
That needs the answer's span and the feedback to reach the same service replica, and the
answer's trace to be kept by any sampler in front of it (see the README's feedback
section); the unresolved span is a root span, which a head sampler decides like any root,
and its ``gen_ai.evaluation.result`` log record (with a logger provider) stays tied to it.
The robust path is to hand the answer's trace and span ids to the client with
the answer (:func:`lookup_response` in the process that served it) and to give them back
with ``trace_id=``/``span_id=``: that works in any process and any topology.

Scores: thumbs (``True``/``False``, ``"up"``/``"down"``; recorded as 1 / -1), stars
(``scale="stars"``, 1 to 5) or a number on ``scale=(low, high)`` (default ``(0, 1)``).
``llmtap.feedback.label`` is ``positive``, ``negative`` or ``neutral``: from ``label`` when it
is one of those, else from where the score lies against the middle of its scale.

Attributes of the span (and of the event): ``gen_ai.evaluation.name`` (default
``user_feedback``), ``gen_ai.evaluation.score.value``, ``gen_ai.evaluation.score.label``
(``label``, else the feedback label), ``gen_ai.evaluation.explanation`` (the comment: user
content, so recorded only when content capture is on, and redacted like other content),
``gen_ai.response.id`` when known, ``llmtap.evaluation.source`` = ``user``,
``llmtap.feedback.label``, ``llmtap.feedback.scale`` (``thumbs``, ``stars`` or ``range``)
with ``llmtap.feedback.range.min``/``.max``, ``llmtap.feature`` of the answer when the
response was seen here, and ``llmtap.feedback.resolved`` = ``false`` when it was not.

Bad arguments raise :class:`FeedbackError` (a ``ValueError`` naming the argument). Problems
with the telemetry itself are logged once and never raised into the application.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from llmtap import runtime, semconv
from llmtap.diagnostics import Once, warn_once
from llmtap.runtime import SeenResponse
from llmtap.version import __version__

__all__ = [
    "FEEDBACK_LABEL",
    "FEEDBACK_RESOLVED",
    "FEEDBACK_SCALE",
    "MAX_RESPONSES",
    "FeedbackError",
    "FeedbackRecord",
    "lookup_response",
    "record_feedback",
    "remember_response",
]

_log = logging.getLogger("llmtap")

FEEDBACK_LABEL = semconv.LLMTAP_FEEDBACK_LABEL
FEEDBACK_RESOLVED = semconv.LLMTAP_FEEDBACK_RESOLVED
FEEDBACK_SCALE = "llmtap.feedback.scale"
FEEDBACK_RANGE_MIN = "llmtap.feedback.range.min"
FEEDBACK_RANGE_MAX = "llmtap.feedback.range.max"
SOURCE = semconv.LLMTAP_EVALUATION_SOURCE
DEFAULT_NAME = "user_feedback"
MAX_RESPONSES = runtime.MAX_RESPONSES
MAX_COMMENT_CHARS = 4096

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z")
_HEX_TRACE = re.compile(r"(0x)?[0-9a-fA-F]{1,32}\Z")
_THUMBS = {
    "up": True, "thumbs_up": True, "thumbsup": True, "+1": True, "👍": True,
    "down": False, "thumbs_down": False, "thumbsdown": False, "-1": False, "👎": False,
}  # fmt: skip
_POLARITY = {"positive": "positive", "negative": "negative", "neutral": "neutral"}


class FeedbackError(ValueError):
    """An argument of ``record_feedback`` that cannot be used; the message names it."""


@dataclass(frozen=True)
class FeedbackRecord:
    """What ``record_feedback`` recorded: the feedback span's context (None when the
    telemetry failed), the answer's span it was recorded under (None for a response id
    this process has not seen: ``resolved`` is then False and the llmtap service resolves
    it) and the attributes it carries."""

    span_context: SpanContext | None
    target: SpanContext | None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resolved: bool = True


# the response map ----------------------------------------------------------------------------


def remember_response(response_id: Any, span: Any, attributes: Mapping[str, Any]) -> None:
    """Note which span produced ``response_id`` (called when a GenAI span ends; never raises)."""
    runtime.remember_response(response_id, span, attributes, MAX_RESPONSES)


def lookup_response(response_id: str) -> SpanContext | None:
    """The span context of the call that returned ``response_id`` (None when not seen)."""
    seen = runtime.seen_response(response_id)
    return seen.context if seen is not None else None


# arguments -------------------------------------------------------------------------------------


def _as_id(value: Any, what: str, digits: int) -> int:
    if isinstance(value, bool):
        raise FeedbackError(f"record_feedback: {what}: expected a hex string or an int")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _HEX_TRACE.match(value.strip()) and len(value) <= digits + 2:
        number = int(value.strip(), 16)
    else:
        raise FeedbackError(
            f"record_feedback: {what}: expected {digits} hex digits or an int, got {value!r}"
        )
    if not 0 < number < 1 << (digits * 4):
        raise FeedbackError(f"record_feedback: {what}: {value!r} is zero or too big for an id")
    return number


def _target(
    span_context: Any, trace_id: Any, span_id: Any, response_id: str | None
) -> tuple[SpanContext | None, SeenResponse | None]:
    """The answer's span (None: a response id not seen here) and what this process noted
    of it."""
    given = [n for n, v in (("span_context", span_context), ("response_id", response_id)) if v]
    if trace_id is not None or span_id is not None:
        given.append("trace_id/span_id")
    if len(given) != 1:
        which = ", ".join(given) if given else "none"
        raise FeedbackError(
            "record_feedback: give exactly one target: span_context=, trace_id= with span_id=, "
            f"or response_id= (got {which})"
        )
    if span_context is not None:
        if hasattr(span_context, "get_span_context"):
            span_context = span_context.get_span_context()
        if not isinstance(span_context, SpanContext) or not span_context.is_valid:
            raise FeedbackError(
                f"record_feedback: span_context: expected a valid SpanContext or span, "
                f"got {span_context!r}"
            )
        return span_context, None
    if response_id is not None:
        if not isinstance(response_id, str) or not response_id.strip():
            raise FeedbackError(
                f"record_feedback: response_id: expected a non-empty string, got {response_id!r}"
            )
        seen = runtime.seen_response(response_id)
        return (seen.context, seen) if seen is not None else (None, None)
    if trace_id is None or span_id is None:
        missing = "span_id" if span_id is None else "trace_id"
        raise FeedbackError(f"record_feedback: {missing}: required with the other one")
    context = SpanContext(
        trace_id=_as_id(trace_id, "trace_id", 32),
        span_id=_as_id(span_id, "span_id", 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return context, None


@dataclass(frozen=True)
class _Score:
    value: float | None
    scale: str | None
    low: float | None
    high: float | None
    polarity: str


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FeedbackError(f"record_feedback: {what}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise FeedbackError(f"record_feedback: {what}: expected a finite number, got {value!r}")
    return number


def _polarity(value: float, low: float, high: float) -> str:
    middle = (low + high) / 2
    if math.isclose(value, middle):
        return "neutral"
    return "positive" if value > middle else "negative"


def _scale(scale: Any) -> tuple[str, float, float]:
    if scale in (None, "range"):
        return "range", 0.0, 1.0
    if scale == "stars":
        return "stars", 1.0, 5.0
    if scale == "thumbs":
        return "thumbs", -1.0, 1.0
    if isinstance(scale, (tuple, list)) and len(scale) == 2:
        low, high = (_number(v, "scale") for v in scale)
        if low < high:
            return "range", low, high
    raise FeedbackError(
        f"record_feedback: scale: expected 'thumbs', 'stars' or (low, high) with low < high, "
        f"got {scale!r}"
    )


def _score(score: Any, scale: Any) -> _Score:
    if isinstance(score, str):
        key = score.strip().lower()
        if key not in _THUMBS:
            raise FeedbackError(
                f"record_feedback: score: expected 'up' or 'down' (or True/False, a number), "
                f"got {score!r}"
            )
        score = _THUMBS[key]
    if isinstance(score, bool):
        if scale not in (None, "thumbs"):
            raise FeedbackError(f"record_feedback: scale: a thumbs score takes no scale={scale!r}")
        return _Score(1.0 if score else -1.0, "thumbs", -1.0, 1.0,
                      "positive" if score else "negative")  # fmt: skip
    value = _number(score, "score")
    kind, low, high = _scale(scale)
    if not low <= value <= high:
        hint = " (pass scale='stars' for 1-5 stars or scale=(low, high))" if kind == "range" else ""
        raise FeedbackError(
            f"record_feedback: score: {score!r} is outside the scale {low:g}..{high:g}{hint}"
        )
    if kind == "stars" and value != int(value):
        raise FeedbackError(f"record_feedback: score: stars are whole numbers, got {score!r}")
    return _Score(value, kind, low, high, _polarity(value, low, high))


def _check_text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FeedbackError(f"record_feedback: {what}: expected a string, got {value!r}")
    return value.strip() or None


# recording -------------------------------------------------------------------------------------


def record_feedback(
    *,
    score: bool | str | float | None = None,
    span_context: Any = None,
    trace_id: str | int | None = None,
    span_id: str | int | None = None,
    response_id: str | None = None,
    label: str | None = None,
    comment: str | None = None,
    name: str = DEFAULT_NAME,
    scale: str | tuple[float, float] | None = None,
    tracer_provider: Any = None,
    logger_provider: Any = None,
) -> FeedbackRecord:
    """Record an end user's feedback on a traced answer (see the module documentation).

    ``score`` may be left out when ``label`` says ``positive``/``negative``/``neutral``.
    Returns what was recorded; raises :class:`FeedbackError` for bad arguments only.
    """
    target, seen = _target(span_context, trace_id, span_id, response_id)
    label = _check_text(label, "label")
    comment = _check_text(comment, "comment")
    if not isinstance(name, str) or not _NAME.match(name):
        raise FeedbackError(
            f"record_feedback: name: expected a short identifier (letters, digits, _ . -), "
            f"got {name!r}"
        )
    polarity = _POLARITY.get(label.lower()) if label else None
    if score is None:
        if polarity is None:
            raise FeedbackError(
                "record_feedback: score: required (unless label is positive, negative or neutral)"
            )
        scored = _Score(None, None, None, None, polarity)
    else:
        scored = _score(score, scale)
    attrs = _attributes(scored, label, polarity, comment, name, response_id, seen)
    if target is None:
        attrs[FEEDBACK_RESOLVED] = False
    span = None
    try:
        tracer = _tracer(tracer_provider)
        attrs = _redacted(attrs, tracer_provider)
        span = _emit(tracer, target, name, attrs, logger_provider)
    except Exception as exc:
        _warn_once("record", "llmtap: cannot record feedback", exc)
    return FeedbackRecord(span, target, attrs, resolved=target is not None)


def _attributes(
    scored: _Score,
    label: str | None,
    polarity: str | None,
    comment: str | None,
    name: str,
    response_id: str | None,
    seen: SeenResponse | None,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {semconv.EVALUATION_NAME: name}
    if scored.value is not None:
        attrs[semconv.EVALUATION_SCORE_VALUE] = scored.value
        attrs[FEEDBACK_SCALE] = scored.scale
        attrs[FEEDBACK_RANGE_MIN] = scored.low
        attrs[FEEDBACK_RANGE_MAX] = scored.high
    attrs[semconv.EVALUATION_SCORE_LABEL] = (label or scored.polarity)[:128]
    attrs[FEEDBACK_LABEL] = polarity or scored.polarity
    if comment and _capture_content():
        attrs[semconv.EVALUATION_EXPLANATION] = comment[:MAX_COMMENT_CHARS]
    if response_id:
        attrs[semconv.RESPONSE_ID] = response_id
    attrs[SOURCE] = "user"
    if seen is not None and seen.feature is not None:
        attrs[semconv.LLMTAP_FEATURE] = seen.feature
    return attrs


def _capture_content() -> bool:
    from llmtap.config import current_settings

    return current_settings().capture.any


def _tracer(tracer_provider: Any) -> Any:
    """A tracer of ``tracer_provider``, else the one ``llmtap.configure()`` set up, else the
    global provider's."""
    if tracer_provider is not None:
        return trace.get_tracer(runtime.SCOPE, __version__, tracer_provider)
    return runtime.tracer()


def _redaction_stage(tracer_provider: Any) -> Any:
    """The redaction stage of llmtap's span pipeline in ``tracer_provider`` (None: the one
    in use); the default stage when there is no pipeline; None when the pipeline has
    redaction turned off."""
    from llmtap.pipeline.redact import RedactionStage

    pipeline = runtime.pipeline(tracer_provider)
    if pipeline is None:
        return RedactionStage()
    stages = [s for s in pipeline.stages if isinstance(s, RedactionStage)]
    return stages[0] if stages else None


def _redacted(attrs: dict[str, Any], tracer_provider: Any) -> dict[str, Any]:
    """The attributes after redaction (the comment and label are the free text); the span
    then carries ``llmtap.redaction.count`` and the pipeline leaves it as it is."""
    stage = _redaction_stage(tracer_provider)
    if stage is None:
        return attrs
    from llmtap.pipeline.span import SpanData

    data = SpanData(name="feedback", attributes=dict(attrs))
    stage.apply(data)
    return data.attributes


def _emit(
    tracer: Any,
    target: SpanContext | None,
    name: str,
    attrs: dict[str, Any],
    logger_provider: Any,
) -> SpanContext:
    """The feedback span under ``target``; without one, the root of a trace of its own
    (not under whatever span is current: the feedback request is not the answer)."""
    logger = _logger(logger_provider)
    if target is not None:
        parent = trace.set_span_in_context(NonRecordingSpan(_remote(target)))
    else:
        parent = Context()
    span = tracer.start_span(f"evaluate {name}", parent, kind=SpanKind.INTERNAL, attributes=attrs)
    try:
        if logger is not None:
            logger.emit(_log_record(target or span.get_span_context(), attrs))
        else:
            span.add_event(semconv.EVENT_EVALUATION_RESULT, attrs)
    finally:
        span.end()
    return span.get_span_context()


def _remote(context: SpanContext) -> SpanContext:
    """The answer's span as a remote parent: it has ended, maybe in another process."""
    return SpanContext(
        context.trace_id,
        context.span_id,
        is_remote=True,
        trace_flags=context.trace_flags,
        trace_state=context.trace_state,
    )


def _logger(given: Any) -> Any:
    from opentelemetry import _logs

    provider = given if given is not None else _logs.get_logger_provider()
    # an SDK provider with no processor (OTEL_LOGS_EXPORTER=none) would drop the event
    if not runtime.emits_logs(provider):
        return None
    return provider.get_logger(runtime.SCOPE, __version__)


def _log_record(target: SpanContext, attrs: Mapping[str, Any]) -> Any:
    from opentelemetry._logs import LogRecord, SeverityNumber

    now = time.time_ns()
    return LogRecord(
        timestamp=now,
        observed_timestamp=now,
        context=trace.set_span_in_context(NonRecordingSpan(target)),
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        attributes=dict(attrs),
        event_name=semconv.EVENT_EVALUATION_RESULT,
    )


_warned = Once()


def _warn_once(key: str, message: str, exc: BaseException) -> None:
    warn_once(_log, key, "%s: %s", message, exc, exc_info=exc, once=_warned)
