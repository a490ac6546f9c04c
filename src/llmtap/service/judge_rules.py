"""The judge's compiled rules: which spans of a ready trace a rule targets, and whether
the rule samples the trace (see :mod:`llmtap.evals.judge_config` for the rule fields).
"""

from __future__ import annotations

from collections.abc import Sequence

from llmtap import semconv
from llmtap.evals.base import Evaluator
from llmtap.evals.judge_config import JudgeRule
from llmtap.pipeline.span import SpanData
from llmtap.pipeline.trace_ids import trace_id_sampled
from llmtap.service.assembly import ReadyTrace
from llmtap.service.judge_when import compile_rule_when, trace_feedback

__all__ = ["CompiledRule", "TraceFacts"]


class TraceFacts:
    __slots__ = ("_feedback", "_spans")

    def __init__(self, spans: Sequence[SpanData]) -> None:
        self._spans = spans
        self._feedback: frozenset[str] | None = None

    def feedback(self) -> frozenset[str]:
        if self._feedback is None:
            self._feedback = trace_feedback(self._spans)
        return self._feedback


def _roots(spans: Sequence[SpanData]) -> list[SpanData]:
    spans = [s for s in spans if semconv.EVALUATION_NAME not in s.attributes]
    roots = [s for s in spans if not s.parent_span_id]
    if roots:
        return roots
    ids = {s.span_id for s in spans}
    orphans = [s for s in spans if s.parent_span_id not in ids]
    return [min(orphans, key=lambda s: s.start_ns)] if orphans else []


class CompiledRule:
    """A judge rule with its evaluator and compiled matcher."""

    def __init__(self, rule: JudgeRule, evaluator: Evaluator, index: int = 0) -> None:
        self.rule = rule
        self.index = index
        self.evaluator = evaluator
        self.evaluation: str = evaluator.name
        #: the sampling salt: rules with the same name sample the same traces (nested)
        self.name: str = rule.name or evaluator.name
        self.sample = float(rule.sample)
        self.target = rule.target
        self.matcher, self.feedback = compile_rule_when(rule.when or {}, "when")
        self.source = "judge" if getattr(evaluator, "uses_model", False) else "rule"

    def sampled(self, trace_id: int) -> bool:
        return trace_id_sampled(trace_id, self.sample, self.name)

    def candidates(self, trace: ReadyTrace, facts: TraceFacts | None = None) -> list[SpanData]:
        """The spans of ``trace`` this rule targets (before sampling and dedup)."""
        if self.feedback is not None:
            found = (facts or TraceFacts(trace.spans)).feedback()
            if (self.feedback == "any" and not found) or (
                self.feedback != "any" and self.feedback not in found
            ):
                return []
        if self.target == "inference":
            ops = semconv.INFERENCE_OPERATIONS
            pool = [
                s
                for s in trace.spans
                if s.attributes.get(semconv.OPERATION) in ops
                and semconv.EVALUATION_NAME not in s.attributes
            ]
        elif self.target == "root":
            pool = _roots(trace.spans)
        else:
            pool = [s for s in trace.spans if semconv.EVALUATION_NAME not in s.attributes]
        matches = self.matcher.matches
        return [
            s
            for s in pool
            if matches(
                s.attributes,
                status_error=s.is_error,
                duration_s=s.duration_s,
                name=s.name,
                kind=s.kind,
            )
        ]

    def __repr__(self) -> str:
        return (
            f"CompiledRule({self.name!r}, evaluator={self.evaluation!r}, "
            f"target={self.target!r}, sample={self.sample})"
        )
