"""One evaluation as the sinks send it: the verdict and the span it is about.

Both kinds of verdict carry the same attributes (:mod:`llmtap.service.results` for the
judge's, :mod:`llmtap.feedback` for users'), so :func:`from_attributes` reads either: the
judge hands over its attributes with the evaluated span, and a feedback span names the
evaluated span as its parent.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmtap import semconv

__all__ = ["ANNOTATOR_KINDS", "Evaluation", "from_attributes", "from_feedback_span"]

#: who gave a verdict (``llmtap.evaluation.source``) -> Phoenix's annotator kind
ANNOTATOR_KINDS = {"judge": "LLM", "rule": "CODE", "user": "HUMAN"}

_SOURCE = semconv.LLMTAP_EVALUATION_SOURCE
_RESOLVED = semconv.LLMTAP_FEEDBACK_RESOLVED
#: attributes kept as the evaluation's metadata (the rest is the verdict itself)
_METADATA = {
    "llmtap.evaluation.rule": "rule",
    "llmtap.evaluation.judge_model": "judge_model",
    "llmtap.evaluation.early": "early",
    "llmtap.evaluation.late": "late",
    semconv.LLMTAP_FEATURE: "feature",
    semconv.RESPONSE_ID: "response_id",
    semconv.LLMTAP_FEEDBACK_LABEL: "feedback_label",
    "llmtap.feedback.scale": "feedback_scale",
}


@dataclass(frozen=True)
class Evaluation:
    """A verdict on the span ``span_id`` of trace ``trace_id`` (the OTel ids, as ints)."""

    name: str
    trace_id: int
    span_id: int
    source: str
    timestamp_ns: int
    score: float | None = None
    label: str | None = None
    passed: bool | None = None
    explanation: str | None = None
    service_name: str | None = None
    #: tells apart verdicts of one name on one span (a user's feedback span id), else ""
    key: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def annotator_kind(self) -> str:
        """LLM (an LLM judge), CODE (a rule), HUMAN (user feedback)."""
        kind = ANNOTATOR_KINDS.get(self.source)
        if kind is None:
            kind = "LLM" if "judge_model" in self.metadata else "CODE"
        return kind

    @property
    def trace_hex(self) -> str:
        return f"{self.trace_id:032x}"

    @property
    def span_hex(self) -> str:
        return f"{self.span_id:016x}"

    def identity(self) -> str:
        """A stable id of this evaluation: a retried or re-sent one is the same one."""
        text = f"{self.trace_hex}/{self.span_hex}/{self.name}/{self.source}/{self.key}"
        digest = hashlib.blake2b(text.encode(), digest_size=16, person=b"llmtap-eval").hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def from_attributes(
    attributes: Mapping[str, Any],
    *,
    trace_id: int,
    span_id: int,
    timestamp_ns: int,
    resource: Mapping[str, Any] | None = None,
    key: str = "",
) -> Evaluation | None:
    """The evaluation the attributes of a result span or event describe, about span
    ``span_id``; None when it is not a verdict (no name, no span, or the evaluation failed:
    ``error.type``)."""
    name = attributes.get(semconv.EVALUATION_NAME)
    if not isinstance(name, str) or not name or not trace_id or not span_id:
        return None
    if attributes.get(semconv.ERROR_TYPE):
        return None
    label = attributes.get(semconv.EVALUATION_SCORE_LABEL)
    passed = attributes.get(semconv.LLMTAP_EVALUATION_PASSED)
    explanation = attributes.get(semconv.EVALUATION_EXPLANATION)
    service = (resource or {}).get("service.name")
    return Evaluation(
        name=name,
        trace_id=trace_id,
        span_id=span_id,
        source=str(attributes.get(_SOURCE) or ""),
        timestamp_ns=timestamp_ns,
        score=_finite(attributes.get(semconv.EVALUATION_SCORE_VALUE)),
        label=str(label) if label not in (None, "") else None,
        passed=passed if isinstance(passed, bool) else None,
        explanation=str(explanation) if explanation else None,
        service_name=str(service) if service else None,
        key=key,
        metadata={m: attributes[a] for a, m in _METADATA.items() if a in attributes},
    )


def from_feedback_span(span: Any) -> Evaluation | None:
    """The user feedback a received span carries (``llmtap.evaluation.source`` = ``user``,
    a child of the answer's span), else None. Feedback not yet moved into its answer's
    trace (``llmtap.feedback.resolved`` = false) is not: its resolved copy is."""
    attrs = span.attributes
    if attrs.get(_SOURCE) != "user" or attrs.get(_RESOLVED) is False:
        return None
    return from_attributes(
        attrs,
        trace_id=span.trace_id,
        span_id=span.parent_span_id,
        timestamp_ns=span.end_ns or span.start_ns,
        resource=span.resource,
        key=f"{span.span_id:016x}",
    )
