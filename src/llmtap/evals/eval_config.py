"""The ``eval:`` section of ``llmtap.yaml``: what ``llmtap eval run`` applies to a golden set.

::

    eval:
      evaluators:                   # registry entries (llmtap.evals.registry), every case
        - faithfulness
        - {evaluator: truncation}
        - {evaluator: lexical_groundedness, threshold: 0.4}
      thresholds:                   # minimum pass rate per evaluation name, or a metric
        expected: 1.0               # (name.pass_rate, name.mean_score) of 0..1
        faithfulness.mean_score: 0.8
      tolerance: 0.0                # how far below the baseline a metric may fall
      concurrency: 4                # cases run at once
      case_timeout_s: 120           # one app call at most
      eval_timeout_s: 300           # one evaluation at most, retries included
      model: {...}                  # the LLM judge; default: judge.model

Without ``evaluators`` the evaluators of the ``judge.rules`` are used (their ``when`` and
``sample`` ignored: every case is judged). Kept apart from the runner so that loading the
file imports nothing heavy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from llmtap.evals.judge_client import JudgeSettings

__all__ = ["METRICS", "EvalConfig", "parse_threshold_key"]

METRICS = ("pass_rate", "mean_score")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z")


def parse_threshold_key(key: str) -> tuple[str, str]:
    """``faithfulness`` → (faithfulness, pass_rate); ``x.mean_score`` → (x, mean_score)."""
    for metric in METRICS:
        if key.endswith("." + metric):
            return key[: -len(metric) - 1], metric
    return key, "pass_rate"


@dataclass
class EvalConfig:
    """The ``eval:`` section: what ``llmtap eval run`` applies to a golden set."""

    evaluators: list[Any] | None = None
    """evaluator entries applied to every case (default: those of judge.rules)"""
    thresholds: dict[str, float] = field(default_factory=dict)
    """minimum pass rate (or name.mean_score) per evaluation name, 0 to 1"""
    tolerance: float = 0.0
    """how far below the baseline a metric may fall"""
    concurrency: int = 4
    """cases run at once"""
    case_timeout_s: float = 120.0
    """one app call at most, in seconds"""
    eval_timeout_s: float = 300.0
    """one evaluation at most, retries included, in seconds"""
    model: JudgeSettings | None = None
    """the LLM judge (default: judge.model)"""

    def __post_init__(self) -> None:
        errors: list[str] = []
        for i, item in enumerate(self.evaluators or ()):
            if not (isinstance(item, str) and item) and not isinstance(item, dict):
                errors.append(f"evaluators[{i}]: expected an evaluator name or a mapping")
        for key, value in self.thresholds.items():
            name, _ = parse_threshold_key(key)
            if not _NAME.match(name):
                errors.append(f"thresholds.{key}: not an evaluation name")
            if not 0.0 <= value <= 1.0:
                errors.append(f"thresholds.{key}: expected a number from 0 to 1, got {value!r}")
        if not 0.0 <= self.tolerance <= 1.0:
            errors.append(f"tolerance: expected a number from 0 to 1, got {self.tolerance!r}")
        if self.concurrency < 1:
            errors.append(f"concurrency: expected 1 or more, got {self.concurrency!r}")
        for key in ("case_timeout_s", "eval_timeout_s"):
            if not getattr(self, key) > 0:
                errors.append(f"{key}: expected seconds above 0, got {getattr(self, key)!r}")
        if errors:
            raise ValueError("\n".join(errors))
