"""A span exporter that prints finished traces as a readable tree in the terminal."""

from __future__ import annotations

import math
import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llmtap import semconv
from llmtap.export.readable import to_span_data
from llmtap.pipeline.span import SpanData

_DETAILS = (
    (semconv.PROVIDER, "{}"),
    (semconv.RESPONSE_MODEL, "model={}"),
    (semconv.USAGE_INPUT_TOKENS, "in={}"),
    (semconv.USAGE_CACHE_READ_INPUT_TOKENS, "cached={}"),
    (semconv.USAGE_OUTPUT_TOKENS, "out={}"),
    (semconv.USAGE_REASONING_OUTPUT_TOKENS, "reasoning={}"),
    (semconv.RESPONSE_FINISH_REASONS, "finish={}"),
    (semconv.LLMTAP_STREAM_END, "stream={}"),
    (semconv.LLMTAP_COST_TOTAL, "cost={}"),
    (semconv.USAGE_COST, "cost={}"),
    (semconv.LLMTAP_REDACTION_COUNT, "redacted={}"),
    (semconv.EVALUATION_SCORE_LABEL, "verdict={}"),
    (semconv.EVALUATION_SCORE_VALUE, "score={:g}"),
    (semconv.LLMTAP_FEEDBACK_LABEL, "feedback={}"),
    (semconv.USER_ID, "user={}"),
    (semconv.LLMTAP_FEATURE, "feature={}"),
    (semconv.ERROR_TYPE, "error={}"),
)


_HIDE_ZERO = frozenset({semconv.LLMTAP_REDACTION_COUNT})


def format_usd(value: float, significant: int = 3) -> str:
    """Dollars as a person reads them: cents from $1 up (``$12.50``, ``$1,234.57``), and
    ``significant`` digits below, never in exponent form (``$0.0000186``, ``$0.10``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"${value}"
    sign, value = ("-" if value < 0 else ""), abs(float(value))
    if value == 0:
        return "$0.00"
    if value >= 1:
        return f"{sign}${value:,.2f}"
    decimals = max(2, significant - 1 - math.floor(math.log10(value)))
    text = f"{value:.{decimals}f}"
    if float(text) >= 1:  # 0.9999 rounds up to a dollar
        return f"{sign}${float(text):,.2f}"
    head, _, tail = text.partition(".")
    tail = tail.rstrip("0").ljust(2, "0")
    return f"{sign}${head}.{tail}"


def _verdict_failed(attrs: Any) -> bool:
    return attrs.get(semconv.LLMTAP_EVALUATION_PASSED) is False


def describe(span: SpanData) -> str:
    attrs = span.attributes
    bits = [span.name, f"{max(span.end_ns - span.start_ns, 0) / 1e6:.1f} ms"]
    ttfc = attrs.get(semconv.RESPONSE_TIME_TO_FIRST_CHUNK)
    if ttfc is not None:
        bits.append(f"ttfc={ttfc * 1000:.1f} ms")
    for key, fmt in _DETAILS:
        value = attrs.get(key)
        if value is not None and value != "" and not (key in _HIDE_ZERO and value == 0):
            if key in semconv.COST_TOTAL_NAMES:
                if key != semconv.LLMTAP_COST_TOTAL and semconv.LLMTAP_COST_TOTAL in attrs:
                    continue  # the same total under its other name
                value = format_usd(value)
            bits.append(fmt.format(",".join(value) if isinstance(value, (tuple, list)) else value))
    if attrs.get(semconv.LLMTAP_COST_UNKNOWN_MODEL):
        bits.append("cost=unknown")
    if attrs.get(semconv.LLMTAP_USAGE_ESTIMATED):
        bits.append("(tokens estimated)")
    if span.is_error:
        bits.append("✗")
    elif _verdict_failed(attrs):
        bits.append("✗ failed")
    return "  ".join(bits)


def _linked_under(spans: Sequence[SpanData], by_id: set[tuple[int, int]]) -> dict:
    """Spans with no parent among ``spans`` whose first link is to one of them (a verdict in
    an evaluation trace, linked to the span it judged) -> that span; never a chain."""
    linked: dict[tuple[int, int], tuple[int, int]] = {}
    for s in spans:
        if (s.trace_id, s.parent_span_id) in by_id:
            continue
        for link in s.links:
            target = (link.trace_id, link.span_id)
            if target in by_id and link.trace_id != s.trace_id:
                linked[(s.trace_id, s.span_id)] = target
                break
    return {key: target for key, target in linked.items() if target not in linked}


def render(spans: Sequence[SpanData]) -> str:
    """Trees of the given spans, one per trace, children under parents in start order. A span
    of another trace linked to a span shown here (a verdict of ``judge.verdicts: linked``)
    is drawn under that span, marked ``⇢``."""
    by_id = {(s.trace_id, s.span_id) for s in spans}
    linked = _linked_under(spans, by_id)
    children: dict[tuple[int, int] | None, list[SpanData]] = defaultdict(list)
    for s in spans:
        parent = (s.trace_id, s.parent_span_id)
        if parent not in by_id:
            parent = linked.get((s.trace_id, s.span_id))  # type: ignore[assignment]
        children[parent].append(s)
    lines: list[str] = []

    def walk(span: SpanData, prefix: str, last: bool, root: bool) -> None:
        branch = "" if root else ("└─ " if last else "├─ ")
        mark = "⇢ " if (span.trace_id, span.span_id) in linked else ""
        lines.append(prefix + branch + mark + describe(span))
        kids = sorted(children.get((span.trace_id, span.span_id), []), key=lambda s: s.start_ns)
        deeper = prefix + ("" if root else ("   " if last else "│  "))
        for i, kid in enumerate(kids):
            walk(kid, deeper, i == len(kids) - 1, False)

    roots = sorted(children[None], key=lambda s: (s.start_ns, s.trace_id))
    for i, root in enumerate(roots):
        if i == 0 or roots[i - 1].trace_id != root.trace_id:
            lines.append(f"trace {root.trace_id:032x}")
        walk(root, "  ", True, True)
    return "\n".join(lines)


class ConsoleTreeExporter(SpanExporter):
    """Collects spans and prints each trace as a tree when its root span ends."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._pending: dict[int, list[ReadableSpan]] = defaultdict(list)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        done: list[list[ReadableSpan]] = []
        with self._lock:
            for span in spans:
                trace_spans = self._pending[span.context.trace_id]
                trace_spans.append(span)
                if span.parent is None or span.parent.is_remote:
                    done.append(self._pending.pop(span.context.trace_id))
        for trace_spans in done:
            self._write(render([to_span_data(s) for s in trace_spans]))
        return SpanExportResult.SUCCESS

    def _write(self, text: str) -> None:
        out: Any = self._out or sys.stdout
        out.write(text + "\n\n")
        out.flush()

    def shutdown(self) -> None:
        with self._lock:
            rest = [s for spans in self._pending.values() for s in spans]
            self._pending.clear()
        if rest:
            self._write(render([to_span_data(s) for s in rest]))
