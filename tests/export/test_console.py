"""Console trees: costs read as dollars, failing verdicts and errors are marked."""

from __future__ import annotations

import pytest

from llmtap import semconv
from llmtap.export.console import describe, format_usd, render
from llmtap.pipeline.span import SpanData


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12.5, "$12.50"),
        (1234.567, "$1,234.57"),
        (1.0, "$1.00"),
        (0.9999, "$1.00"),
        (0.1, "$0.10"),
        (0.123456, "$0.123"),
        (0.001064, "$0.00106"),
        (0.0004225, "$0.000423"),
        (1.86e-05, "$0.0000186"),
        (2e-08, "$0.00000002"),
        (0, "$0.00"),
        (0.0, "$0.00"),
        (-0.5, "-$0.50"),
    ],
)
def test_format_usd(value: float, text: str) -> None:
    assert format_usd(value) == text
    assert "e-" not in format_usd(value) and "e+" not in format_usd(value)


def span(name: str, **attrs: object) -> SpanData:
    return SpanData(name=name, attributes=dict(attrs), trace_id=1, span_id=2, end_ns=1_500_000)


def test_cost_on_a_span() -> None:
    line = describe(span("chat gpt-4o-mini", **{semconv.LLMTAP_COST_TOTAL: 1.86e-05}))
    assert "cost=$0.0000186" in line


def test_verdicts_are_marked() -> None:
    passed = span(
        "evaluate truncation",
        **{
            semconv.EVALUATION_NAME: "truncation",
            semconv.EVALUATION_SCORE_LABEL: "complete",
            semconv.LLMTAP_EVALUATION_PASSED: True,
        },
    )
    failed = span(
        "evaluate gives_a_time_frame",
        **{
            semconv.EVALUATION_NAME: "gives_a_time_frame",
            semconv.EVALUATION_SCORE_LABEL: "no_match",
            semconv.EVALUATION_SCORE_VALUE: 0.0,
            semconv.LLMTAP_EVALUATION_PASSED: False,
        },
    )
    errored = span("evaluate grounded", **{semconv.ERROR_TYPE: "missing_input"})
    errored.is_error = True
    assert "✗" not in describe(passed)
    assert describe(failed).endswith("verdict=no_match  score=0  ✗ failed")
    assert describe(errored).endswith("error=missing_input  ✗")
    tree = render([passed, failed])
    assert "✗ failed" in tree


def test_a_linked_verdict_is_drawn_under_the_span_it_judged() -> None:
    from llmtap.pipeline.span import LinkData

    root = SpanData(name="invoke_workflow answer", attributes={}, trace_id=7, span_id=1)
    chat = SpanData(name="chat gpt-4o", attributes={}, trace_id=7, span_id=2, parent_span_id=1)
    verdict = SpanData(
        name="evaluate truncation",
        attributes={semconv.EVALUATION_NAME: "truncation"},
        trace_id=0x70,
        span_id=3,
        links=[LinkData(trace_id=7, span_id=2)],
        start_ns=10,
    )
    elsewhere = SpanData(  # linked to a span that is not shown: a tree of its own
        name="evaluate refusal",
        attributes={},
        trace_id=0x80,
        span_id=4,
        links=[LinkData(trace_id=8, span_id=9)],
    )
    lines = render([verdict, chat, root, elsewhere]).splitlines()
    assert lines == [
        f"trace {7:032x}",
        "  invoke_workflow answer  0.0 ms",
        "  └─ chat gpt-4o  0.0 ms",
        "     └─ ⇢ evaluate truncation  0.0 ms",
        f"trace {0x80:032x}",
        "  evaluate refusal  0.0 ms",
    ]
