"""``llmtap compare``: two groups of exported spans (two prompt versions, models,
features...) side by side, with a confidence interval for every metric and a verdict.

Grouping: a span belongs to the group named by the ``--by`` attribute (``prompt.version`` is
``llmtap.prompt.version``, ``model`` the response model else the request model, ``feature``
``llmtap.feature``; any other key is an attribute or resource attribute name), looked up on
the span, then its parents, then the first span of its trace that has it. Verdict and
feedback spans start the look-up at the span they judge, so the verdicts of an answer count
for the answer's prompt version: their parent, or for a verdict in an evaluation trace of
its own (``judge.verdicts: linked``) the span its ``llmtap.evaluation.target.trace_id`` and
``.span_id`` name, when that trace was read too.

Metrics of a group:

- ``pass rate <evaluation>``: ``evaluate <name>`` spans with ``llmtap.evaluation.passed``
  (verdicts without it, evaluator errors, are left out);
- ``negative feedback``: share of ``evaluate user_feedback`` spans whose
  ``llmtap.feedback.label`` is ``negative``;
- ``error rate``: model-call spans (``gen_ai.operation.name`` chat, text_completion,
  generate_content) with an error status or ``error.type``;
- ``cost per call`` (``llmtap.cost.total``, else ``gen_ai.usage.cost``), ``tokens per
  call`` (input + output), and ``latency p50``/``p95`` of the model-call spans' durations.

Intervals are 95%: Wilson score intervals for a rate, Newcombe's hybrid score interval
(from the two Wilson intervals) for the difference of two rates; for means and percentiles
the percentile bootstrap (each group resampled with replacement, ``resamples`` times, from a
``random.Random(seed)`` over the values in sorted order, so the same spans give the same
report whatever order they were read in). Percentiles interpolate linearly
between order statistics. A metric is ``better`` or ``worse`` when the interval of the
difference (candidate - baseline) excludes zero, by direction: a higher pass rate is better;
lower negative feedback, errors, cost, tokens and latency are better. Otherwise it is
``can't tell yet``: more data may tell.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llmtap import semconv
from llmtap.pipeline.cost import cost_total
from llmtap.pipeline.span import SpanData

__all__ = [
    "BETTER",
    "CANT_TELL",
    "WORSE",
    "CompareError",
    "Comparison",
    "Group",
    "compare",
    "group_spans",
    "percentile",
    "pick_groups",
    "render",
    "resolve_key",
    "wilson",
]

BETTER, WORSE, CANT_TELL = "better", "worse", "can't tell yet"
Z95 = 1.959963984540054
NEGATIVE = "negative"
ALIASES: Mapping[str, tuple[str, ...]] = {
    "prompt.version": (semconv.LLMTAP_PROMPT_VERSION,),
    "model": (semconv.RESPONSE_MODEL, semconv.REQUEST_MODEL),
    "feature": (semconv.LLMTAP_FEATURE,),
}


class CompareError(ValueError):
    """Groups that cannot be compared: an unknown group, fewer than two groups."""


@dataclass
class Group:
    name: str
    first_ns: int = 0
    traces: set[int] = field(default_factory=set)
    calls: list[SpanData] = field(default_factory=list)
    verdicts: dict[str, list[bool]] = field(default_factory=dict)
    feedback: list[bool] = field(default_factory=list)  # True: negative

    def costs(self) -> list[float]:
        return [v for s in self.calls if (v := cost_total(s.attributes)) is not None]

    def tokens(self) -> list[float]:
        out = []
        for s in self.calls:
            keys = (semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS)
            found = [_number(s.attributes.get(k)) for k in keys]
            if any(v is not None for v in found):
                out.append(sum(v for v in found if v is not None))
        return out

    def latencies(self) -> list[float]:
        return [s.duration_s for s in self.calls]

    def errors(self) -> int:
        return sum(s.is_error or semconv.ERROR_TYPE in s.attributes for s in self.calls)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# grouping ----------------------------------------------------------------------------------------


def resolve_key(by: str) -> tuple[str, ...]:
    """The attribute names ``--by`` means, in order of preference."""
    return ALIASES.get(by, (by,))


def _own(span: SpanData, keys: Sequence[str]) -> str | None:
    for key in keys:
        for source in (span.attributes, span.resource):
            value = source.get(key)
            if value is not None and value != "":
                return str(value)
    return None


def _is_call(span: SpanData) -> bool:
    return span.attributes.get(semconv.OPERATION) in semconv.INFERENCE_OPERATIONS


def _is_verdict(span: SpanData) -> bool:
    return semconv.EVALUATION_NAME in span.attributes


class _Trace:
    def __init__(self, spans: list[SpanData], keys: Sequence[str]) -> None:
        self.by_id = {s.span_id: s for s in spans}
        self.keys = keys
        ordered = sorted(spans, key=lambda s: (not _is_call(s), s.start_ns))
        self.fallback = next(
            (v for s in ordered if not _is_verdict(s) and (v := _own(s, keys))), None
        )

    def value(self, span: SpanData) -> str | None:
        if _is_verdict(span):
            return self.value_at(span.parent_span_id)
        return self.value_at(span.span_id)

    def value_at(self, span_id: int) -> str | None:
        """The value of span ``span_id`` (its own, its parents', else the trace's)."""
        current = self.by_id.get(span_id)
        seen = 0
        while current is not None and seen < 64:
            found = _own(current, self.keys)
            if found is not None:
                return found
            current = self.by_id.get(current.parent_span_id)
            seen += 1
        return self.fallback


def group_spans(spans: Iterable[SpanData], by: str) -> tuple[dict[str, Group], int]:
    """Groups in order of their first span's start, and the number of model calls and
    verdicts that have no value for ``by`` (left out)."""
    keys = resolve_key(by)
    traces: dict[int, list[SpanData]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    built = {trace_id: _Trace(members, keys) for trace_id, members in traces.items()}
    groups: dict[str, Group] = {}
    unassigned = 0
    for trace_id, members in traces.items():
        for span in members:
            counted = _is_call(span) or _is_verdict(span)
            home, name = _locate(span, trace_id, built) if counted else (trace_id, None)
            if name is None:
                unassigned += counted
                continue
            group = groups.setdefault(name, Group(name, first_ns=span.start_ns))
            group.first_ns = min(group.first_ns, span.start_ns)
            group.traces.add(home)
            _add(group, span)
    ordered = sorted(groups.values(), key=lambda g: (g.first_ns, g.name))
    return {g.name: g for g in ordered}, unassigned


def _target(span: SpanData) -> tuple[int, int] | None:
    """(trace id, span id) of the span a verdict names, or None."""
    attrs = span.attributes
    trace_hex = attrs.get(semconv.LLMTAP_EVALUATION_TARGET_TRACE_ID)
    span_hex = attrs.get(semconv.LLMTAP_EVALUATION_TARGET_SPAN_ID)
    try:
        return int(str(trace_hex), 16), int(str(span_hex), 16)
    except ValueError:
        return None


def _locate(span: SpanData, trace_id: int, built: Mapping[int, _Trace]) -> tuple[int, str | None]:
    """The trace a model call or verdict counts for, and its group: a linked verdict's is the
    judged span's trace when it was read."""
    if _is_verdict(span):
        target = _target(span)
        if target is not None and target[0] != trace_id and target[0] in built:
            return target[0], built[target[0]].value_at(target[1])
    return trace_id, built[trace_id].value(span)


def _add(group: Group, span: SpanData) -> None:
    attrs = span.attributes
    if not _is_verdict(span):
        group.calls.append(span)
        return
    label = attrs.get(semconv.LLMTAP_FEEDBACK_LABEL)
    if label is not None:
        group.feedback.append(label == NEGATIVE)
        return
    passed = attrs.get(semconv.LLMTAP_EVALUATION_PASSED)
    if isinstance(passed, bool):
        group.verdicts.setdefault(str(attrs[semconv.EVALUATION_NAME]), []).append(passed)


def pick_groups(
    groups: Mapping[str, Group], baseline: str | None, candidate: str | None
) -> tuple[Group, Group]:
    """The named groups; by default the candidate is the group seen last and the baseline
    the one seen before it."""
    names = list(groups)
    for given, flag in ((baseline, "--baseline"), (candidate, "--candidate")):
        if given is not None and given not in groups:
            raise CompareError(f"{flag} {given}: no such group; found: {_listed(names)}")
    if baseline is not None and baseline == candidate:
        raise CompareError(f"--baseline and --candidate are both {baseline}")
    if candidate is None:
        candidate = next((n for n in reversed(names) if n != baseline), None)
    if baseline is None:
        before = names[: names.index(candidate)] if candidate in names else []
        rest = [n for n in names if n != candidate]
        baseline = (before or rest or [None])[-1]
    if baseline is None or candidate is None:
        raise CompareError(f"need two groups to compare, found {len(names)}: {_listed(names)}")
    return groups[baseline], groups[candidate]


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"


# statistics --------------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (``(0, 1)`` when ``n`` is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """``p2 - p1`` and its hybrid score interval (Newcombe 1998, method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p2 - p1
    return d, d - math.hypot(p2 - l2, u1 - p1), d + math.hypot(u2 - p2, p1 - l1)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, interpolating linearly between order
    statistics (numpy's default)."""
    return _sorted_quantile(sorted(values), q)


def _sorted_quantile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _means(values: Sequence[float]) -> tuple[float]:
    return (sum(values) / len(values),)


def _p50_p95(values: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return _sorted_quantile(ordered, 0.5), _sorted_quantile(ordered, 0.95)


def _bootstrap(
    base: Sequence[float],
    cand: Sequence[float],
    stats: Callable[[Sequence[float]], tuple[float, ...]],
    resamples: int,
    seed: int,
) -> list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]]:
    """For each statistic ``stats`` computes: 95% percentile-bootstrap intervals of the
    baseline's, the candidate's and the difference's value."""
    rng = random.Random(seed)
    draws: list[tuple[tuple[float, ...], tuple[float, ...]]] = []
    for _ in range(resamples):
        draws.append((stats(rng.choices(base, k=len(base))), stats(rng.choices(cand, k=len(cand)))))
    out = []
    for i in range(len(draws[0][0])):
        b = [d[0][i] for d in draws]
        c = [d[1][i] for d in draws]
        diffs = [y - x for x, y in zip(b, c, strict=True)]
        out.append((_interval(b), _interval(c), _interval(diffs)))
    return out


def _interval(draws: Sequence[float]) -> tuple[float, float]:
    return percentile(draws, 0.025), percentile(draws, 0.975)


# the comparison ----------------------------------------------------------------------------------


@dataclass
class Side:
    value: float | None
    low: float | None
    high: float | None
    n: int
    count: int | None = None  # events counted, for rates


@dataclass
class Row:
    metric: str
    kind: str  # rate | usd | tokens | seconds
    better_when: str  # higher | lower
    baseline: Side
    candidate: Side
    difference: float | None
    low: float | None
    high: float | None
    verdict: str


@dataclass
class Comparison:
    by: str
    baseline: Group
    candidate: Group
    groups: list[Group]
    rows: list[Row]
    unassigned: int
    resamples: int
    seed: int

    def worse(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == WORSE]

    def to_json(self) -> dict[str, Any]:
        def group(g: Group) -> dict[str, Any]:
            return {"name": g.name, "traces": len(g.traces), "model_calls": len(g.calls)}

        return {
            "by": self.by,
            "attributes": list(resolve_key(self.by)),
            "baseline": group(self.baseline),
            "candidate": group(self.candidate),
            "groups": [group(g) for g in self.groups],
            "left_out": self.unassigned,
            "method": {
                "confidence": 0.95,
                "rates": "Wilson score; difference: Newcombe hybrid score",
                "means_and_percentiles": "percentile bootstrap",
                "resamples": self.resamples,
                "seed": self.seed,
            },
            "metrics": [asdict(r) for r in self.rows],
        }


def _verdict(low: float | None, high: float | None, better_when: str) -> str:
    if low is None or high is None or low <= 0 <= high:
        return CANT_TELL
    up = low > 0
    return BETTER if up == (better_when == "higher") else WORSE


def _rate_row(name: str, better_when: str, base: Sequence[bool], cand: Sequence[bool]) -> Row:
    def side(items: Sequence[bool]) -> Side:
        k, n = sum(items), len(items)
        low, high = wilson(k, n) if n else (None, None)
        return Side(k / n if n else None, low, high, n, k)

    b, c = side(base), side(cand)
    if not (b.n and c.n):
        return Row(name, "rate", better_when, b, c, None, None, None, CANT_TELL)
    d, low, high = newcombe(b.count or 0, b.n, c.count or 0, c.n)
    return Row(name, "rate", better_when, b, c, d, low, high, _verdict(low, high, better_when))


def _stat_rows(
    names: Sequence[str],
    kind: str,
    stats: Callable[[Sequence[float]], tuple[float, ...]],
    base: Sequence[float],
    cand: Sequence[float],
    resamples: int,
    seed: int,
) -> list[Row]:
    """One row per statistic ``stats`` computes (several share one bootstrap)."""
    base, cand = sorted(base), sorted(cand)  # the same spans in any order: the same report
    b_values = stats(base) if base else (None,) * len(names)
    c_values = stats(cand) if cand else (None,) * len(names)
    drawn = _bootstrap(base, cand, stats, resamples, seed) if base and cand else None
    rows = []
    for i, name in enumerate(names):
        b = Side(b_values[i], None, None, len(base))
        c = Side(c_values[i], None, None, len(cand))
        if drawn is None:
            rows.append(Row(name, kind, "lower", b, c, None, None, None, CANT_TELL))
            continue
        (b.low, b.high), (c.low, c.high), (low, high) = drawn[i]
        d = (c.value or 0.0) - (b.value or 0.0)
        rows.append(Row(name, kind, "lower", b, c, d, low, high, _verdict(low, high, "lower")))
    return rows


def compare(
    spans: Iterable[SpanData],
    *,
    by: str = "prompt.version",
    baseline: str | None = None,
    candidate: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Group ``spans`` by ``by`` and compare two groups; :class:`CompareError` when there
    are not two groups to compare."""
    groups, unassigned = group_spans(spans, by)
    base, cand = pick_groups(groups, baseline, candidate)
    rows = [
        _rate_row(f"pass rate {name}", "higher", base.verdicts.get(name, []),
                  cand.verdicts.get(name, []))
        for name in sorted(set(base.verdicts) | set(cand.verdicts))
    ]  # fmt: skip
    rows.append(_rate_row("negative feedback", "lower", base.feedback, cand.feedback))
    rows.append(_rate_row("error rate", "lower", _flags(base), _flags(cand)))
    stats = [
        (("cost per call",), "usd", _means, Group.costs),
        (("tokens per call",), "tokens", _means, Group.tokens),
        (("latency p50", "latency p95"), "seconds", _p50_p95, Group.latencies),
    ]
    for names, kind, stat, values in stats:
        rows += _stat_rows(names, kind, stat, values(base), values(cand), resamples, seed)
    rows = [r for r in rows if r.baseline.n or r.candidate.n]
    return Comparison(by, base, cand, list(groups.values()), rows, unassigned, resamples, seed)


def _flags(group: Group) -> list[bool]:
    return [s.is_error or semconv.ERROR_TYPE in s.attributes for s in group.calls]


# the table ---------------------------------------------------------------------------------------


def _fmt(kind: str, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    shown = {"rate": 3, "seconds": 4, "tokens": 1}.get(kind)
    if shown is not None and round(value, shown) == 0:
        value = 0.0  # no "-0.0"
    sign = "+" if signed and value >= 0 else "-" if value < 0 else ""
    size = abs(value)
    if kind == "rate":
        return f"{sign}{size * 100:.1f}" + ("pp" if signed else "%")
    if kind == "usd":
        return f"{sign}${_significant(size)}"
    if kind == "seconds":
        return f"{sign}{size * 1000:.1f}ms" if size < 1 else f"{sign}{size:.2f}s"
    return f"{sign}{size:.1f}"


def _significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, never in exponent form."""
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(value)))
    return f"{value:.{decimals}f}"


def _side(kind: str, s: Side) -> str:
    if s.value is None:
        return "- (n=0)"
    shown = f"{s.count}/{s.n}" if kind == "rate" else f"n={s.n}"
    return f"{_fmt(kind, s.value)} [{_fmt(kind, s.low)}, {_fmt(kind, s.high)}] ({shown})"


def _difference(r: Row) -> str:
    if r.difference is None:
        return "-"
    return f"{_fmt(r.kind, r.difference, True)} [{_fmt(r.kind, r.low, True)}, " \
           f"{_fmt(r.kind, r.high, True)}]"  # fmt: skip


def render(c: Comparison) -> str:
    """The comparison as a table with a header line and a method line."""
    keys = " or ".join(resolve_key(c.by))
    lines = [
        f"llmtap compare by {c.by} ({keys}): baseline {c.baseline.name} "
        f"({len(c.baseline.traces)} traces, {len(c.baseline.calls)} model calls) vs candidate "
        f"{c.candidate.name} ({len(c.candidate.traces)} traces, {len(c.candidate.calls)} model "
        "calls)",
    ]
    others = [g.name for g in c.groups if g not in (c.baseline, c.candidate)]
    if others:
        lines.append(f"other groups: {', '.join(others)}")
    header = ("metric", f"baseline {c.baseline.name}", f"candidate {c.candidate.name}",
              "difference [95% CI]", "verdict")  # fmt: skip
    table = [header] + [
        (r.metric, _side(r.kind, r.baseline), _side(r.kind, r.candidate), _difference(r),
         r.verdict)
        for r in c.rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines.append("")
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(
        "95% intervals: Wilson (rates; difference: Newcombe), percentile bootstrap "
        f"({c.resamples} resamples, seed {c.seed}) for means and percentiles; a verdict needs "
        "the difference's interval to exclude zero."
    )
    if c.unassigned:
        lines.append(f"{c.unassigned} model call(s) or verdict(s) without {c.by}: left out")
    return "\n".join(lines)
