"""The judge's configuration, for the service's callers: its home is
:mod:`llmtap.evals.judge_config` (``llmtap eval run`` reads it without the service)."""

from __future__ import annotations

from llmtap.evals.judge_config import (
    TARGETS,
    JudgeConfig,
    JudgeRule,
    load_judge_config,
    parse_size,
)

__all__ = ["TARGETS", "JudgeConfig", "JudgeRule", "load_judge_config", "parse_size"]
