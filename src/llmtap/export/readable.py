"""The SDK's finished spans (``ReadableSpan``) as the stages' ``SpanData``, and back
(with the ``tracestate`` of the span's and its links' contexts as header strings)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceState

from llmtap.pipeline.span import EventData, LinkData, SpanData

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _scope_attributes(scope: InstrumentationScope | None) -> Mapping[str, Any]:
    """The scope's attributes, the same object on every call (identity tells a change)."""
    attributes = getattr(scope, "attributes", None) if scope is not None else None
    return attributes if attributes else _EMPTY


def _trace_state(context: SpanContext | None) -> str:
    state = context.trace_state if context is not None else None
    return state.to_header() if state else ""


def _with_trace_state(context: SpanContext, header: str) -> SpanContext:
    """``context`` with the (redacted) ``tracestate`` header; an invalid one becomes empty."""
    state = TraceState.from_header([header]) if header else TraceState()
    return SpanContext(
        context.trace_id, context.span_id, context.is_remote, context.trace_flags, state
    )


def to_span_data(span: ReadableSpan) -> SpanData:
    start, end = span.start_time or 0, span.end_time or 0
    scope = span.instrumentation_scope
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
        links=[
            LinkData(
                dict(link.attributes or {}),
                _trace_state(link.context),
                link.context.trace_id if link.context else 0,
                link.context.span_id if link.context else 0,
            )
            for link in span.links
        ]
        if span.links
        else [],
        scope_name=scope.name if scope else "",
        scope_version=(scope.version or "") if scope else "",
        scope_attributes=_scope_attributes(scope),
        trace_state=_trace_state(span.context),
    )


def with_data(span: ReadableSpan, data: SpanData, resource: Resource | None = None) -> ReadableSpan:
    """A copy of ``span`` carrying the stages' name, attributes, events, links, status
    message, resource and scope (the resource and scope objects are kept when unchanged;
    ``resource``, when given, is the one to carry, made by the caller from ``data``)."""
    status = span.status
    if status.description != data.status_message:
        status = Status(status.status_code, data.status_message)
    if resource is None:
        resource = span.resource
    if resource is not None and data.resource is not resource.attributes:
        resource = Resource(data.resource, resource.schema_url)
    scope = span.instrumentation_scope
    if scope is not None and (
        data.scope_name != scope.name
        or data.scope_version != (scope.version or "")
        or data.scope_attributes is not _scope_attributes(scope)
    ):
        scope = InstrumentationScope(
            data.scope_name, data.scope_version or None, scope.schema_url, data.scope_attributes
        )
    links = span.links
    if data.links:
        links = [
            Link(
                link.context
                if new.trace_state == _trace_state(link.context)
                else _with_trace_state(link.context, new.trace_state),
                new.attributes,
            )
            for link, new in zip(span.links, data.links, strict=True)
        ]
    context = span.context
    if context is not None and data.trace_state != _trace_state(context):
        context = _with_trace_state(context, data.trace_state)
    return ReadableSpan(
        name=data.name,
        context=context,
        parent=span.parent,
        resource=resource,
        attributes=data.attributes,
        events=[Event(e.name, e.attributes, e.timestamp) for e in data.events],
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=scope,
    )
