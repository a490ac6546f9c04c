"""The head sampler: which traces to keep, decided at span start by rules.

:class:`RuleSampler` is an OpenTelemetry SDK ``Sampler`` driven by ``sampling.head`` of
``llmtap.yaml``: ordered rules (the first whose ``when`` matches gives the ratio), a default
ratio, and (by default) parent-based decisions. The decision for a ratio is the one
``TraceIdRatioBased`` makes (see :mod:`llmtap.pipeline.trace_ids`), so SDKs in other
languages with the same ratio agree. Its rules are written in the ``when:`` matcher
language of :mod:`llmtap.when`.

It decides **at span start**, so it sees only what is known then: the span name and kind,
the start attributes (``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.provider.name``, ...) and llmtap's business context (``llmtap.feature``,
``user.id``, ... from ``llmtap.context(...)``, merged in from the OpenTelemetry context for
spans llmtap did not start). It cannot see response attributes, token counts, the status
or the duration: rules on those belong to the service's tail rules, and a head rule using
``status`` or ``duration`` is rejected.

With ``parent_based: true`` (the default) only root spans are decided by the rules; every
other span follows its parent (local or remote: a sampled parent samples, an unsampled
parent drops), so traces stay whole. In a web app the root is usually the HTTP server span,
so rules on GenAI attributes apply when the GenAI span is the root (scripts, workers), or
when the business context is entered before the root span starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from llmtap.context import attributes_in
from llmtap.diagnostics import shown
from llmtap.pipeline.trace_ids import LOW64_MASK, ratio_bound
from llmtap.when import Matcher, compile_head_when

__all__ = ["RuleSampler"]


class RuleSampler(Sampler):
    """Head sampling from ``sampling.head`` of llmtap.yaml (see the module docstring).

    ``config`` is a :class:`llmtap.pipeline.sampling_config.HeadSamplingConfig` or anything
    with ``default``, ``parent_based`` and ``rules`` (each with ``when`` and ``ratio``).
    """

    def __init__(self, config: Any = None, *, where: str = "sampling.head") -> None:
        if config is None:
            from llmtap.pipeline.sampling_config import HeadSamplingConfig

            config = HeadSamplingConfig()
        self._default = _check_ratio(config.default, f"{where}.default")
        self._parent_based = bool(config.parent_based)
        rules: list[tuple[Matcher, float, int, str | None]] = []
        for i, rule in enumerate(config.rules):
            ratio = _check_ratio(rule.ratio, f"{where}.rules[{i}].ratio")
            matcher = compile_head_when(rule.when, f"{where}.rules[{i}].when")
            rules.append((matcher, ratio, ratio_bound(ratio), getattr(rule, "name", None)))
        self._rules = tuple(rules)
        self._checks = tuple((m.check, bound) for m, _, bound, _ in rules)
        self._default_bound = ratio_bound(self._default)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        has_parent = parent is not None and parent.is_valid
        if has_parent and self._parent_based:
            sampled = bool(parent.trace_flags.sampled)
        else:
            bound = self._default_bound
            if self._checks:
                attrs = _start_attributes(parent_context, attributes)
                facts = (None, None, name, kind)
                for check, rule_bound in self._checks:
                    if check(attrs, facts):
                        bound = rule_bound
                        break
            sampled = (trace_id & LOW64_MASK) < bound
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP,
            attributes if sampled else None,
            parent.trace_state if has_parent else None,
        )

    def rule_for(self, attributes: Mapping[str, Any], name: str = "", kind: Any = None) -> int:
        """Index of the first rule matching these start attributes, or -1 (the default)."""
        facts = (None, None, name, kind)
        for i, (check, _) in enumerate(self._checks):
            if check(attributes, facts):
                return i
        return -1

    def get_description(self) -> str:
        rules = ", ".join(
            f"{name + ':' if name else ''}{m.describe()}->{ratio}"
            for m, ratio, _, name in self._rules
        )
        return (
            f"RuleSampler{{parent_based={self._parent_based}, rules=[{rules}], "
            f"default={self._default}}}"
        )


def _start_attributes(parent_context: Context | None, attributes: Attributes) -> Mapping:
    """The span's start attributes over the business context (the span's own values win)."""
    ctx_attrs = attributes_in(parent_context)
    if not ctx_attrs:
        return attributes or {}
    if not attributes:
        return ctx_attrs
    merged = dict(ctx_attrs)
    merged.update(attributes)
    return merged


def _check_ratio(value: Any, where: str) -> float:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: expected a ratio between 0 and 1, got {shown(value)}")
    return float(value)
