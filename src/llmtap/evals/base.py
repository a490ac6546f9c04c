"""What an evaluator sees and what it returns.

The service builds an ``EvalInput`` from an assembled trace (the evaluated span, the whole
trace, and the texts pulled from them); ``llmtap eval`` builds the same from a golden case.
An evaluator never raises for a bad model answer or a failed call: it returns a ``Verdict``
with ``error_type`` set and no score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmtap.pipeline.span import SpanData


@dataclass
class EvalInput:
    input_text: str = ""
    output_text: str = ""
    documents: Sequence[str] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    span: SpanData | None = None
    trace: Sequence[SpanData] = ()


@dataclass
class Verdict:
    name: str
    score: float | None = None
    label: str | None = None
    explanation: str | None = None
    passed: bool | None = None
    error_type: str | None = None
    judge_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    duration_s: float = 0.0


class Evaluator(Protocol):
    name: str
    uses_model: bool

    async def evaluate(self, item: EvalInput) -> Verdict:
        """Judge one input; failures come back as a Verdict with ``error_type``."""
