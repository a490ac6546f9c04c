"""Send hand-made spans over OTLP/gRPC, one export call per batch, and tell which calls were
acknowledged: for tests of what a collector does with what it accepted.

    traces = make_traces(count=10, spans_per_trace=4)
    acknowledged = send_spans(collector.endpoint("grpc"), interleave(traces))
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2


@dataclass(frozen=True)
class SentSpan:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    name: str


def make_traces(count: int, spans_per_trace: int) -> list[list[SentSpan]]:
    """``count`` traces of ``spans_per_trace`` spans each, with random ids."""
    traces = []
    for _ in range(count):
        trace_id = os.urandom(16).hex()
        traces.append(
            [SentSpan(trace_id, os.urandom(8).hex(), f"step {i}") for i in range(spans_per_trace)]
        )
    return traces


def interleave(traces: list[list[SentSpan]]) -> list[list[SentSpan]]:
    """One batch per span, the traces' spans taking turns: the spans of a trace travel in
    separate export calls, with other traces' spans in between."""
    rounds = max(len(t) for t in traces)
    return [[t[i]] for i in range(rounds) for t in traces if i < len(t)]


def _request(batch: Sequence[SentSpan], service: str) -> Message:
    now = time.time_ns()
    spans = [
        trace_pb2.Span(
            trace_id=bytes.fromhex(s.trace_id),
            span_id=bytes.fromhex(s.span_id),
            name=s.name,
            kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=now - 1_000_000,
            end_time_unix_nano=now,
        )
        for s in batch
    ]
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
    )
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=spans)]
            )
        ]
    )


def send_spans(
    endpoint: str, batches: Iterable[Sequence[SentSpan]], service: str = "otlp-sender"
) -> list[SentSpan]:
    """Export each batch to ``endpoint`` (``host:port``, plaintext gRPC); the spans of the
    calls that were acknowledged (an error answer leaves its batch out)."""
    acknowledged: list[SentSpan] = []
    with grpc.insecure_channel(endpoint) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for batch in batches:
            try:
                stub.Export(_request(batch, service), timeout=10)
            except grpc.RpcError:
                continue
            acknowledged.extend(batch)
    return acknowledged
