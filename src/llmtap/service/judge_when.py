"""How feedback is found in a trace, for a judge rule's ``when: {feedback: ...}`` (the rule's
``when`` itself is compiled by :func:`llmtap.evals.judge_config.compile_rule_when`).

``feedback`` is allowed only at the top level of ``when`` and AND-ed with the rest:
``negative``, ``positive`` or ``any``. A trace has negative (positive) feedback when any of
its spans, or any event of its spans, carries

* ``llmtap.feedback.label`` = ``negative`` (``positive``), or
* ``llmtap.evaluation.source`` = ``user`` together with ``gen_ai.evaluation.name`` (or the
  event is named ``gen_ai.evaluation.result``) and a ``gen_ai.evaluation.score.value``
  below 0 (above 0) - or ``gen_ai.evaluation.score.label`` = ``negative``/``positive``.
  Feedback senders with another scale (1-5 stars) set ``llmtap.feedback.label``
  (``neutral`` marks feedback with no polarity, whatever its score).

Feedback usually arrives long after the answer. It then comes as a late span: the late
batch carries the retained spans of the trace, so ``feedback: negative`` rules select the
trace's inference spans then (those not yet judged by that evaluator).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmtap import semconv
from llmtap.evals.judge_config import FEEDBACK_VALUES as FEEDBACK_VALUES
from llmtap.evals.judge_config import compile_rule_when as compile_rule_when
from llmtap.evals.judge_config import expected_one_of as expected_one_of
from llmtap.pipeline.span import SpanData
from llmtap.service.results import ATTR_SOURCE

__all__ = [
    "FEEDBACK_LABEL",
    "FEEDBACK_VALUES",
    "compile_rule_when",
    "expected_one_of",
    "trace_feedback",
]

FEEDBACK_LABEL = semconv.LLMTAP_FEEDBACK_LABEL

_NEGATIVE_LABELS = frozenset({"negative", "thumbs_down", "bad"})
_POSITIVE_LABELS = frozenset({"positive", "thumbs_up", "good"})


def _feedback_in(attrs: Mapping[str, Any], is_result_event: bool, out: set[str]) -> None:
    label = attrs.get(FEEDBACK_LABEL)
    if isinstance(label, str):
        text = label.strip().lower()
        if text in ("negative", "positive"):
            out.add(text)
            return
        if text == "neutral":  # e.g. 3 of 5 stars: a score above 0, but no polarity
            return
    source = attrs.get(ATTR_SOURCE)
    if not (isinstance(source, str) and source.lower() == "user"):
        return
    if not (is_result_event or semconv.EVALUATION_NAME in attrs):
        return
    score = attrs.get(semconv.EVALUATION_SCORE_VALUE)
    if isinstance(score, (int, float)) and not isinstance(score, bool) and score != 0:
        out.add("negative" if score < 0 else "positive")
        return
    text = str(attrs.get(semconv.EVALUATION_SCORE_LABEL, "")).strip().lower()
    if text in _NEGATIVE_LABELS:
        out.add("negative")
    elif text in _POSITIVE_LABELS:
        out.add("positive")


def trace_feedback(spans: Iterable[SpanData]) -> frozenset[str]:
    """The user feedback found in a trace: a subset of ``{"negative", "positive"}``."""
    found: set[str] = set()
    for span in spans:
        _feedback_in(span.attributes, False, found)
        for event in span.events:
            if event.attributes:
                _feedback_in(event.attributes, event.name == semconv.EVENT_EVALUATION_RESULT, found)
    return frozenset(found)
