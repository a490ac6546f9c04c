"""Verdicts written out: result spans and ``gen_ai.evaluation.result`` events.

For every verdict the judge builds

* a **result span** ``evaluate {name}``: a new span id, kind INTERNAL, start and end = when
  the judging ran, and the evaluated span's resource (so it shows under the same
  ``service.name`` in Jaeger/Tempo). It is not a GenAI operation, so it has no
  ``gen_ai.operation.name`` (and no ``gen_ai.usage.*``: the judge's tokens and cost are
  ``llmtap.evaluation.*`` so that they are never added to the application's own usage and
  cost). Where it goes is ``judge.verdicts`` (:data:`PLACEMENTS`):

  - ``linked`` (the default): the root of its own span tree in the **evaluation trace** of
    the judged trace, whose id is derived from the judged trace's id
    (:func:`evaluation_trace_id`), so every verdict on one request (several evaluators, a
    late batch, a restarted service) shares one evaluation trace, and the request's trace
    keeps its own duration. The span carries an OpenTelemetry **link** to the evaluated
    span (Jaeger shows it as a ``FOLLOWS_FROM`` reference);
  - ``child``: a child of the evaluated span, in its trace (the trace then lasts until its
    last verdict, seconds after the request ended);
  - ``events_only``: no span at all, only the log record below and the metrics.

  In both span placements it carries ``llmtap.evaluation.target.trace_id`` and
  ``llmtap.evaluation.target.span_id`` (lower-case hex, as backends print ids), so a tag
  search or TraceQL finds the verdicts of a request from the request's trace id. (A sampler
  behind the service that decides by trace id decides an evaluation trace apart from its
  request's trace.);
* a **log record** with event name ``gen_ai.evaluation.result``, the same attributes (not
  the two above: the record carries the ids itself), and the trace and span ids of the
  *evaluated* span, as GenAI semconv v1.41 asks, whatever the placement; it is emitted
  where a logs exporter is configured.

Attributes (semconv first, ``llmtap.*`` for the rest):

=====================================  =========================================================
``gen_ai.evaluation.name``             the evaluator's name (``faithfulness``, ``regex``, ...)
``gen_ai.evaluation.score.value``      the score, a double; only when the evaluation succeeded
``gen_ai.evaluation.score.label``      low-cardinality label (``pass``/``fail``, ``grounded``...)
``gen_ai.evaluation.explanation``      the evaluator's reason (capped at 4,096 characters)
``gen_ai.response.id``                 the evaluated response, when the span has one
``error.type``                         why the evaluation failed (then status ERROR, no score)
``llmtap.evaluation.passed``           boolean verdict, when the evaluator gives one
``llmtap.evaluation.judge_model``      the model that judged (LLM judges only)
``llmtap.evaluation.usage.input_tokens``   judge tokens in (LLM judges only)
``llmtap.evaluation.usage.output_tokens``  judge tokens out
``llmtap.evaluation.cost``             the judge call's cost in USD
``llmtap.evaluation.source``           ``judge`` (LLM) or ``rule`` (no model); user feedback
                                       uses ``user``
``llmtap.evaluation.rule``             the judge rule that selected the span
``llmtap.evaluation.early``            ``true`` when the trace was judged before it was complete
``llmtap.evaluation.late``             ``true`` when the span was judged in a batch of late spans
``llmtap.feature``                     copied from the evaluated span (slice verdicts by feature)
``llmtap.evaluation.target.trace_id``  the evaluated span's trace id, 32 hex digits (spans only)
``llmtap.evaluation.target.span_id``   the evaluated span's id, 16 hex digits (spans only)
=====================================  =========================================================

``error.type`` values come from the evaluators (``timeout``, ``rate_limited``,
``server_error``, ``connection_error``, ``client_error``, ``invalid_response``,
``circuit_open``, ...) plus, from the scheduler, ``timeout`` (the evaluation outlived
``judge.eval_timeout_s``), ``input_error`` (the span's input could not be read) and the
exception class name when an evaluator broke its promise not to raise.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry._logs import LogRecord, SeverityNumber

from llmtap import semconv
from llmtap.evals.base import Verdict
from llmtap.evals.judge_config import VERDICT_PLACEMENTS
from llmtap.pipeline.span import LinkData, SpanData

__all__ = [
    "ATTR_COST",
    "ATTR_EARLY",
    "ATTR_INPUT_TOKENS",
    "ATTR_JUDGE_MODEL",
    "ATTR_LATE",
    "ATTR_OUTPUT_TOKENS",
    "ATTR_PASSED",
    "ATTR_RULE",
    "ATTR_SOURCE",
    "ATTR_TARGET_SPAN_ID",
    "ATTR_TARGET_TRACE_ID",
    "CHILD",
    "EVENTS_ONLY",
    "LINKED",
    "PLACEMENTS",
    "SPAN_NAME_PREFIX",
    "build_log_record",
    "build_result_span",
    "evaluation_attributes",
    "evaluation_trace_id",
    "new_span_id",
]

SPAN_NAME_PREFIX = "evaluate "
ATTR_PASSED = semconv.LLMTAP_EVALUATION_PASSED
ATTR_JUDGE_MODEL = "llmtap.evaluation.judge_model"
ATTR_INPUT_TOKENS = "llmtap.evaluation.usage.input_tokens"
ATTR_OUTPUT_TOKENS = "llmtap.evaluation.usage.output_tokens"
ATTR_COST = "llmtap.evaluation.cost"
ATTR_SOURCE = semconv.LLMTAP_EVALUATION_SOURCE
ATTR_RULE = "llmtap.evaluation.rule"
ATTR_EARLY = "llmtap.evaluation.early"
ATTR_LATE = "llmtap.evaluation.late"
ATTR_TARGET_TRACE_ID = semconv.LLMTAP_EVALUATION_TARGET_TRACE_ID
ATTR_TARGET_SPAN_ID = semconv.LLMTAP_EVALUATION_TARGET_SPAN_ID

#: ``judge.verdicts``: where the result spans go (see the module documentation)
PLACEMENTS = VERDICT_PLACEMENTS
LINKED, CHILD, EVENTS_ONLY = PLACEMENTS

MAX_EXPLANATION_CHARS = 4096
MAX_LABEL_CHARS = 128

_random = random.Random()


def new_span_id() -> int:
    """A random, non-zero 64-bit span id (as the OpenTelemetry SDK makes them)."""
    while True:
        span_id = _random.getrandbits(64)
        if span_id:
            return span_id


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def evaluation_attributes(
    verdict: Verdict,
    evaluated: SpanData,
    *,
    source: str | None = None,
    rule: str | None = None,
    early: bool = False,
    late: bool = False,
) -> dict[str, Any]:
    """The attributes of the result span and of the log event for one verdict."""
    attrs: dict[str, Any] = {semconv.EVALUATION_NAME: verdict.name}
    failed = bool(verdict.error_type)
    if failed:
        attrs[semconv.ERROR_TYPE] = str(verdict.error_type)
    else:
        score = _finite(verdict.score)
        if score is not None:
            attrs[semconv.EVALUATION_SCORE_VALUE] = score
        if verdict.label:
            attrs[semconv.EVALUATION_SCORE_LABEL] = _cap(str(verdict.label), MAX_LABEL_CHARS)
        if verdict.passed is not None:
            attrs[ATTR_PASSED] = bool(verdict.passed)
    if verdict.explanation:
        attrs[semconv.EVALUATION_EXPLANATION] = _cap(
            str(verdict.explanation), MAX_EXPLANATION_CHARS
        )
    response_id = evaluated.attributes.get(semconv.RESPONSE_ID)
    if response_id:
        attrs[semconv.RESPONSE_ID] = str(response_id)
    if verdict.judge_model:
        attrs[ATTR_JUDGE_MODEL] = str(verdict.judge_model)
    if verdict.input_tokens is not None:
        attrs[ATTR_INPUT_TOKENS] = int(verdict.input_tokens)
    if verdict.output_tokens is not None:
        attrs[ATTR_OUTPUT_TOKENS] = int(verdict.output_tokens)
    cost = _finite(verdict.cost_usd)
    if cost is not None:
        attrs[ATTR_COST] = cost
    if source:
        attrs[ATTR_SOURCE] = source
    if rule:
        attrs[ATTR_RULE] = rule
    if early:
        attrs[ATTR_EARLY] = True
    if late:
        attrs[ATTR_LATE] = True
    feature = evaluated.attributes.get(semconv.LLMTAP_FEATURE)
    if feature is not None:
        attrs[semconv.LLMTAP_FEATURE] = feature
    return attrs


def evaluation_trace_id(trace_id: int) -> int:
    """The id of the evaluation trace of trace ``trace_id`` (``linked`` placement): derived
    from it, the same in every service replica and after a restart, never zero."""
    digest = hashlib.blake2b(
        int(trace_id).to_bytes(16, "big"), digest_size=16, person=b"llmtap-verdicts"
    ).digest()
    return int.from_bytes(digest, "big") or 1


def build_result_span(
    verdict: Verdict,
    evaluated: SpanData,
    attributes: Mapping[str, Any],
    *,
    start_ns: int,
    end_ns: int,
    span_id: int | None = None,
    placement: str = LINKED,
) -> SpanData:
    """The ``evaluate {name}`` span of ``verdict`` on ``evaluated``: in the evaluation trace
    with a link to ``evaluated`` (``linked``), or its child (``child``)."""
    if placement not in (LINKED, CHILD):
        raise ValueError(f"no result span for placement {placement!r}")
    end_ns = max(end_ns, start_ns)
    failed = bool(verdict.error_type)
    message = None
    if failed:
        message = _cap(str(verdict.explanation or verdict.error_type), 1024)
    attrs = dict(attributes)
    attrs[ATTR_TARGET_TRACE_ID] = f"{evaluated.trace_id:032x}"
    attrs[ATTR_TARGET_SPAN_ID] = f"{evaluated.span_id:016x}"
    linked = placement == LINKED
    return SpanData(
        name=SPAN_NAME_PREFIX + verdict.name,
        attributes=attrs,
        status_message=message,
        is_error=failed,
        duration_s=(end_ns - start_ns) / 1e9,
        resource=dict(evaluated.resource),
        trace_id=evaluation_trace_id(evaluated.trace_id) if linked else evaluated.trace_id,
        span_id=span_id if span_id is not None else new_span_id(),
        parent_span_id=0 if linked else evaluated.span_id,
        kind="INTERNAL",
        start_ns=start_ns,
        end_ns=end_ns,
        links=[LinkData(trace_id=evaluated.trace_id, span_id=evaluated.span_id)] if linked else [],
    )


def build_log_record(
    verdict: Verdict, evaluated: SpanData, attributes: Mapping[str, Any], *, timestamp_ns: int
) -> LogRecord:
    """The ``gen_ai.evaluation.result`` event, tied to the evaluated span's trace and span."""
    span_context = trace_api.SpanContext(
        trace_id=evaluated.trace_id,
        span_id=evaluated.span_id,
        is_remote=True,
        trace_flags=trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED),
    )
    context = trace_api.set_span_in_context(trace_api.NonRecordingSpan(span_context))
    failed = bool(verdict.error_type)
    return LogRecord(
        timestamp=timestamp_ns,
        observed_timestamp=timestamp_ns,
        context=context,
        severity_number=SeverityNumber.WARN if failed else SeverityNumber.INFO,
        severity_text="WARN" if failed else "INFO",
        attributes=dict(attributes),
        event_name=semconv.EVENT_EVALUATION_RESULT,
    )
