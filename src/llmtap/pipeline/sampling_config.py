"""The options of the head sampler: ``sampling.head`` of ``llmtap.yaml``.

::

    sampling:
      head:
        default: 0.5                # the ratio of traces kept when no rule matches
        parent_based: true          # spans with a parent follow its decision
        rules:                      # the first rule whose `when` matches gives the ratio
          - {when: {llmtap.feature: autocomplete}, ratio: 0.1, name: autocomplete}

The sampler itself is :class:`llmtap.pipeline.sampling.RuleSampler`; ``when`` is the matcher
language of :mod:`llmtap.when`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmtap.when import compile_head_when

__all__ = ["HeadRule", "HeadSamplingConfig", "SamplingConfig"]


@dataclass
class HeadRule:
    """``when`` (matcher syntax: :mod:`llmtap.when`) → keep ``ratio`` of traces."""

    when: dict[str, Any]
    """the spans the rule applies to, decided at span start (no ``status``, ``duration``)"""
    ratio: float
    """the share of matching traces kept, 0 to 1"""
    name: str | None = None
    """the rule's name in logs"""

    def __post_init__(self) -> None:
        errors: list[str] = []
        if not 0.0 <= self.ratio <= 1.0:
            errors.append(f"ratio: expected a ratio between 0 and 1, got {self.ratio!r}")
        try:
            compile_head_when(self.when, "when")
        except ValueError as exc:
            errors.append(str(exc))
        if errors:
            raise ValueError("\n".join(errors))


@dataclass
class HeadSamplingConfig:
    """Which traces an app keeps, decided when their first span starts."""

    default: float = 1.0
    """the share of traces kept when no rule matches, 0 to 1"""
    parent_based: bool = True
    """spans with a parent follow its decision (only root spans are decided by the rules)"""
    rules: list[HeadRule] = field(default_factory=list)
    """ordered rules; the first whose ``when`` matches gives the ratio"""

    def __post_init__(self) -> None:
        if not 0.0 <= self.default <= 1.0:
            raise ValueError(f"default: expected a ratio between 0 and 1, got {self.default!r}")


@dataclass
class SamplingConfig:
    """Sampling decided in the app."""

    head: HeadSamplingConfig = field(default_factory=HeadSamplingConfig)
    """head sampling: rules decided at span start"""
