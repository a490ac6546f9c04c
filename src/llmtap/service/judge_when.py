"""A judge rule's ``when``: the span matcher of :mod:`llmtap.pipeline.sampling` plus
``feedback``, a condition on the whole trace, and how feedback is found in a trace.

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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmtap import semconv
from llmtap.pipeline.sampling import Matcher, compile_when
from llmtap.pipeline.span import SpanData
from llmtap.service.results import ATTR_SOURCE

__all__ = [
    "FEEDBACK_LABEL",
    "FEEDBACK_VALUES",
    "compile_rule_when",
    "expected_one_of",
    "trace_feedback",
]

FEEDBACK_VALUES = ("negative", "positive", "any")
FEEDBACK_LABEL = semconv.LLMTAP_FEEDBACK_LABEL


def expected_one_of(value: Any, choices: Sequence[str]) -> str:
    return f"expected one of {', '.join(choices)}, got {value!r}"


def _nested_feedback(when: Any, where: str, out: list[str]) -> None:
    """Paths of ``feedback`` keys inside any/all/not (they would be taken as attributes)."""
    if isinstance(when, Mapping):
        for key, value in when.items():
            if key in ("any", "all") and isinstance(value, list):
                for i, item in enumerate(value):
                    _check_nested(item, f"{where}.{key}[{i}]", out)
            elif key == "not":
                _check_nested(value, f"{where}.not", out)


def _check_nested(when: Any, where: str, out: list[str]) -> None:
    if isinstance(when, Mapping):
        if "feedback" in when:
            out.append(
                f"{where}.feedback: feedback is a condition on the whole trace; put it at "
                "the top level of when"
            )
        _nested_feedback(when, where, out)


def compile_rule_when(when: Any, where: str = "when") -> tuple[Matcher, str | None]:
    """A judge rule's ``when``: the span matcher and the trace-level ``feedback`` condition.

    Raises ``ValueError`` with one ``<path>: <problem>`` line per problem.
    """
    problems: list[str] = []
    feedback: str | None = None
    rest = when
    if isinstance(when, Mapping) and "feedback" in when:
        raw = when["feedback"]
        if isinstance(raw, str) and raw.strip().lower() in FEEDBACK_VALUES:
            feedback = raw.strip().lower()
        else:
            problems.append(f"{where}.feedback: {expected_one_of(raw, FEEDBACK_VALUES)}")
        rest = {k: v for k, v in when.items() if k != "feedback"}
    _nested_feedback(rest, where, problems)
    matcher: Matcher | None = None
    try:
        matcher = compile_when(rest if rest is not None else {}, where)
    except ValueError as exc:
        problems.extend(line for line in str(exc).splitlines() if line.strip())
    if problems or matcher is None:
        raise ValueError("\n".join(problems))
    return matcher, feedback


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
