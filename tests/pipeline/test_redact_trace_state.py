"""The W3C ``tracestate`` of a span and of its links is redacted like other strings: its
values by the identifier-safe detectors, so vendor and sampling entries stay as they are."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Link, SpanContext, TraceFlags, TraceState

from llmtap.export.readable import to_span_data, with_data
from llmtap.pipeline.redact import RedactionConfig, RedactionStage
from llmtap.pipeline.span import LinkData, SpanData

EMAIL = "jane.doe@example.com"
KEPT = "ot=th:8;rv:0a1b2c3d4e5f60,congo=t61rcWkgMzE,dd=s:1;o:rum;t.dm:-4"


def redact(state: str, **cfg: object) -> SpanData:
    span = SpanData(name="op", attributes={}, trace_state=state, links=[LinkData({}, state)])
    RedactionStage(RedactionConfig(**cfg)).apply(span)  # type: ignore[arg-type]
    return span


def test_an_email_in_a_value_is_redacted_on_the_span_and_its_links() -> None:
    span = redact(f"acme=user:{EMAIL},{KEPT}")
    assert span.trace_state == f"acme=user:<EMAIL>,{KEPT}"
    assert span.links[0].trace_state == span.trace_state
    assert span.attributes["llmtap.redaction.email"] == 2


def test_vendor_and_sampling_entries_are_kept_as_they_are() -> None:
    assert redact(KEPT).trace_state == KEPT


def test_drop_mode_removes_the_member() -> None:
    assert redact(f"acme={EMAIL},{KEPT}", mode="drop").trace_state == KEPT


def test_free_text_that_is_no_member_is_redacted() -> None:
    assert redact(f"mail {EMAIL} now").trace_state == "mail <EMAIL> now"


def _context(state: str, span_id: int) -> SpanContext:
    return SpanContext(
        trace_id=0xABC,
        span_id=span_id,
        is_remote=False,
        trace_flags=TraceFlags(1),
        trace_state=TraceState.from_header([state]),
    )


def test_the_sdk_span_leaves_with_a_redacted_trace_state() -> None:
    state = f"acme={EMAIL},ot=th:8"
    span = ReadableSpan(
        name="op",
        context=_context(state, 1),
        links=[Link(_context(state, 2), {"k": 1})],
        attributes={},
    )
    data = to_span_data(span)
    assert data.trace_state == state
    RedactionStage().apply(data)
    out = with_data(span, data)
    assert out.context.trace_state.to_header() == "acme=<EMAIL>,ot=th:8"
    assert out.links[0].context.trace_state.to_header() == "acme=<EMAIL>,ot=th:8"
    assert out.context.span_id == 1 and out.links[0].context.span_id == 2
    assert out.links[0].attributes == {"k": 1}
