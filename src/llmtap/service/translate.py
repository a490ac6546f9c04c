"""The service's side of translation: one destination's OTLP request, translated just before
it is sent (:class:`~llmtap.export.translations.Translator`, the mechanism the app uses
too). Queues, the write-ahead log and the other destinations keep the spans as received; a
translation that fails sends the request as it is (logged once)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmtap.export.translations import Translator
from llmtap.pipeline.span import SpanData
from llmtap.service.spans import Snapshot, attributes_of, set_attributes, to_span_data, write_back

__all__ = ["request_translator", "translate_request"]


def request_translator(translator: Translator) -> Callable[[bytes], bytes]:
    """``translate(request) -> request`` for a destination, never raising."""

    def translate(request: bytes) -> bytes:
        return translator.guard(lambda: translate_request(translator, request), request)

    return translate


def translate_request(translator: Translator, request: bytes) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` with every span (and resource) translated,
    the request's spans as one batch (a root counts the spans of its trace in every
    resource and scope of the request)."""
    message = ExportTraceServiceRequest.FromString(request)
    found: list[tuple[Any, SpanData, Snapshot]] = []
    for resource_spans in message.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_attributes = attributes_of(scope.attributes)
            for span in scope_spans.spans:
                data = to_span_data(span, resource, scope.name, scope.version, scope_attributes)
                found.append((span, data, Snapshot(data)))
    translator.spans([data for _, data, _ in found])
    for span, data, before in found:
        write_back(span, data, before)
    for resource_spans in message.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        translated = translator.resource(resource)
        if translated != resource:
            pairs = resource_spans.resource.attributes
            del pairs[:]
            set_attributes(pairs, translated)
    return message.SerializeToString()
