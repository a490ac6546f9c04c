"""The SDK's finished spans (``ReadableSpan``) as the stages' ``SpanData``, and back."""

from __future__ import annotations

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status, StatusCode

from llmtap.pipeline.span import EventData, SpanData


def to_span_data(span: ReadableSpan) -> SpanData:
    start, end = span.start_time or 0, span.end_time or 0
    return SpanData(
        name=span.name,
        attributes=dict(span.attributes or {}),
        events=[EventData(e.name, dict(e.attributes or {}), e.timestamp) for e in span.events],
        status_message=span.status.description,
        is_error=span.status.status_code is StatusCode.ERROR,
        duration_s=max(end - start, 0) / 1e9,
        resource=span.resource.attributes if span.resource else {},
        trace_id=span.context.trace_id if span.context else 0,
        span_id=span.context.span_id if span.context else 0,
        parent_span_id=span.parent.span_id if span.parent else 0,
        start_ns=start,
        end_ns=end,
    )


def with_data(span: ReadableSpan, data: SpanData) -> ReadableSpan:
    """A copy of ``span`` carrying the stages' attributes, events and status message."""
    status = span.status
    if status.description != data.status_message:
        status = Status(status.status_code, data.status_message)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=data.attributes,
        events=[Event(e.name, e.attributes, e.timestamp) for e in data.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
