"""The test OTLP receiver, fed by the real OTLP exporters (gRPC and HTTP) and by raw requests."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as GrpcLogExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as HttpLogExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from support.otlp_receiver import OtlpReceiver

RESOURCE = Resource.create({"service.name": "rx-test", "deployment.environment.name": "ci"})


@pytest.fixture
def rx() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


CHILD_ATTRIBUTES = {
    "s": "text",
    "i": 42,
    "f": 0.5,
    "b": True,
    "ss": ["a", "b"],
    "ii": [1, 2, 3],
    "ff": [0.25, 1.5],
    "bb": [True, False],
}


def _emit_spans(provider: TracerProvider) -> tuple[str, str]:
    tracer = provider.get_tracer("rx.scope", "1.2.3")
    with (
        tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent,
        tracer.start_as_current_span(
            "chat gpt-x", kind=SpanKind.CLIENT, attributes=CHILD_ATTRIBUTES
        ) as child,
    ):
        child.add_event("something", {"n": 7, "why": "because"})
        child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.force_flush()
    parent_id = format(parent.get_span_context().span_id, "016x")
    return parent_id, format(child.get_span_context().trace_id, "032x")


def _check_spans(rx: OtlpReceiver, parent_id: str, trace_id: str, transport: str) -> None:
    spans = rx.wait_for_spans(2, timeout=5)
    assert len(spans) == 2
    by_name = {s.name: s for s in spans}
    parent, child = by_name["parent"], by_name["chat gpt-x"]
    assert parent.kind == "SERVER"
    assert parent.parent_span_id is None
    assert parent.span_id == parent_id
    assert child.kind == "CLIENT"
    assert child.trace_id == trace_id and len(child.trace_id) == 32
    assert child.parent_span_id == parent_id
    assert child.attributes == CHILD_ATTRIBUTES
    assert type(child.attributes["i"]) is int
    assert type(child.attributes["f"]) is float
    assert type(child.attributes["b"]) is bool
    assert child.status_code == "ERROR"
    assert child.status_message == "boom"
    assert parent.status_code == "UNSET"
    assert [(e.name, e.attributes) for e in child.events] == [
        ("something", {"n": 7, "why": "because"})
    ]
    assert child.resource["service.name"] == "rx-test"
    assert child.resource["deployment.environment.name"] == "ci"
    assert child.scope_name == "rx.scope"
    assert child.scope_version == "1.2.3"
    assert child.transport == transport
    assert 0 <= child.duration_s < 5
    assert child.start_time_unix_nano <= child.end_time_unix_nano


def _emit_metrics(exporter: object) -> None:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("rx.meter")
    counter = meter.create_counter("requests", unit="{request}", description="reqs")
    counter.add(3, {"route": "/a"})
    counter.add(2, {"route": "/a"})
    counter.add(1, {"route": "/b"})
    hist = meter.create_histogram(
        "latency", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0]
    )
    hist.record(0.05, {"op": "chat"})
    hist.record(0.5, {"op": "chat"})
    hist.record(2.0, {"op": "chat"})
    updown = meter.create_up_down_counter("inflight")
    updown.add(-4)
    gauge = meter.create_gauge("temperature", unit="Cel")
    gauge.set(21.5, {"room": "lab"})
    provider.shutdown()


def _check_metrics(rx: OtlpReceiver) -> None:
    metrics = rx.wait_for_metrics("requests", "latency", "inflight", "temperature", timeout=5)
    requests = {p.attributes["route"]: p for p in metrics["requests"]}
    assert requests["/a"].value == 5 and type(requests["/a"].value) is int
    assert requests["/b"].value == 1
    assert requests["/a"].kind == "sum"
    assert requests["/a"].is_monotonic is True
    assert requests["/a"].temporality == "CUMULATIVE"
    assert requests["/a"].unit == "{request}"
    assert requests["/a"].description == "reqs"
    assert requests["/a"].scope_name == "rx.meter"
    assert requests["/a"].resource["service.name"] == "rx-test"
    (latency,) = metrics["latency"]
    assert latency.kind == "histogram"
    assert latency.attributes == {"op": "chat"}
    assert latency.count == 3
    assert latency.sum == pytest.approx(2.55)
    assert latency.min == pytest.approx(0.05)
    assert latency.max == pytest.approx(2.0)
    assert latency.explicit_bounds == [0.1, 1.0]
    assert latency.bucket_counts == [1, 1, 1]
    (inflight,) = metrics["inflight"]
    assert inflight.value == -4 and inflight.is_monotonic is False
    (temperature,) = metrics["temperature"]
    assert temperature.kind == "gauge"
    assert temperature.value == 21.5 and type(temperature.value) is float
    assert temperature.unit == "Cel"


def _emit_logs(exporter: object, tracer_provider: TracerProvider) -> str:
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("rx.logger")
    tracer = tracer_provider.get_tracer("rx.scope")
    from opentelemetry import trace

    with tracer.start_as_current_span("around") as span:
        logger.emit(
            LogRecord(
                body={"message": "hello", "n": 1},
                severity_number=SeverityNumber.WARN,
                severity_text="WARN",
                event_name="gen_ai.client.inference.operation.details",
                attributes={"k": "v", "count": 2},
                context=trace.set_span_in_context(span),
            )
        )
    provider.shutdown()
    return format(span.get_span_context().span_id, "016x")


def _check_logs(rx: OtlpReceiver, span_id: str) -> None:
    rx.wait_for(lambda: rx.logs(), timeout=5)
    (log,) = rx.logs()
    assert log.body == {"message": "hello", "n": 1}
    assert log.severity_number == SeverityNumber.WARN.value
    assert log.severity_text == "WARN"
    assert log.event_name == "gen_ai.client.inference.operation.details"
    assert log.attributes == {"k": "v", "count": 2}
    assert log.span_id == span_id
    assert log.trace_id is not None and len(log.trace_id) == 32
    assert log.scope_name == "rx.logger"
    assert log.resource["service.name"] == "rx-test"


def test_grpc_exporters_deliver_traces_metrics_and_logs(rx: OtlpReceiver) -> None:
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(
            GrpcSpanExporter(
                endpoint=rx.grpc_endpoint,
                insecure=True,
                headers={"authorization": "Bearer t0ken"},
                compression=grpc.Compression.Gzip,
            )
        )
    )
    parent_id, trace_id = _emit_spans(tracer_provider)
    _check_spans(rx, parent_id, trace_id, "grpc")
    requests = rx.requests("traces")
    assert len(requests) == 2  # SimpleSpanProcessor: one export per span
    for request in requests:
        assert request.transport == "grpc" and request.encoding == "protobuf"
        assert request.headers["authorization"] == "Bearer t0ken"

    _emit_metrics(GrpcMetricExporter(endpoint=rx.grpc_endpoint, insecure=True))
    _check_metrics(rx)

    rx.clear()
    span_id = _emit_logs(GrpcLogExporter(endpoint=rx.grpc_endpoint, insecure=True), tracer_provider)
    _check_logs(rx, span_id)
    tracer_provider.shutdown()


def test_http_exporters_deliver_gzipped_protobuf(rx: OtlpReceiver) -> None:
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(
            HttpSpanExporter(
                endpoint=rx.http_url("traces"),
                compression=HttpCompression.Gzip,
                headers={"x-tenant": "acme"},
            )
        )
    )
    parent_id, trace_id = _emit_spans(tracer_provider)
    _check_spans(rx, parent_id, trace_id, "http")
    requests = rx.requests("traces")
    assert len(requests) == 2
    for request in requests:
        assert request.transport == "http" and request.encoding == "protobuf"
        assert request.headers["content-encoding"] == "gzip"
        assert request.headers["x-tenant"] == "acme"

    _emit_metrics(
        HttpMetricExporter(endpoint=rx.http_url("metrics"), compression=HttpCompression.Deflate)
    )
    _check_metrics(rx)

    rx.clear()
    span_id = _emit_logs(HttpLogExporter(endpoint=rx.http_url("logs")), tracer_provider)
    _check_logs(rx, span_id)
    tracer_provider.shutdown()


def _post(
    url: str, body: bytes, content_type: str, encoding: str | None = None
) -> tuple[int, bytes]:
    headers = {"content-type": content_type}
    if encoding:
        headers["content-encoding"] = encoding
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


OTLP_JSON_TRACES = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
            },
            "scopeSpans": [
                {
                    "scope": {"name": "json.scope"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "parentSpanId": "eee19b7ec3c1b173",
                            "name": "embeddings m",
                            "kind": 3,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "attributes": [
                                {"key": "tokens", "value": {"intValue": "12"}},
                                {"key": "ratio", "value": {"doubleValue": 0.75}},
                                {"key": "ok", "value": {"boolValue": False}},
                                {
                                    "key": "fmt",
                                    "value": {"arrayValue": {"values": [{"stringValue": "float"}]}},
                                },
                            ],
                            "status": {"code": 2, "message": "bad"},
                        }
                    ],
                }
            ],
        }
    ]
}


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_http_accepts_otlp_json(rx: OtlpReceiver, compressed: bool) -> None:
    body = json.dumps(OTLP_JSON_TRACES).encode()
    status, answer = _post(
        rx.http_url("traces"),
        gzip.compress(body) if compressed else body,
        "application/json",
        "gzip" if compressed else None,
    )
    assert status == 200
    assert json.loads(answer) == {}
    (span,) = rx.spans()
    assert span.name == "embeddings m"
    assert span.kind == "CLIENT"
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert span.attributes == {"tokens": 12, "ratio": 0.75, "ok": False, "fmt": ["float"]}
    assert span.status_code == "ERROR" and span.status_message == "bad"
    assert span.duration_s == 1.0
    assert span.resource == {"service.name": "json-svc"}
    assert span.scope_name == "json.scope"
    assert rx.requests()[0].encoding == "json"


def test_http_rejects_bad_requests(rx: OtlpReceiver) -> None:
    proto = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    assert _post(f"{rx.http_endpoint}/v1/nothing", proto, "application/x-protobuf")[0] == 404
    assert _post(rx.http_url("traces"), proto, "text/plain")[0] == 415
    assert _post(rx.http_url("traces"), b"\xff\x00garbage", "application/x-protobuf")[0] == 400
    assert _post(rx.http_url("traces"), b"{not json", "application/json")[0] == 400
    assert _post(rx.http_url("traces"), b"not gzip", "application/x-protobuf", "gzip")[0] == 400
    assert rx.requests() == []


def test_http_path_prefix_takes_a_backends_own_path_only() -> None:
    proto = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    with OtlpReceiver(http_path_prefix="/api/public/otel/") as prefixed:
        url = prefixed.http_url("traces")
        assert url == f"{prefixed.http_endpoint}/api/public/otel/v1/traces"
        assert (
            _post(f"{prefixed.http_endpoint}/v1/traces", proto, "application/x-protobuf")[0] == 404
        )
        assert _post(url, proto, "application/x-protobuf")[0] == 200
        assert [r.path for r in prefixed.requests()] == ["/api/public/otel/v1/traces"]


def test_fail_next_answers_errors_then_recovers(rx: OtlpReceiver) -> None:
    proto = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    rx.fail_next(2)
    assert _post(rx.http_url("traces"), proto, "application/x-protobuf")[0] == 503
    with grpc.insecure_channel(rx.grpc_endpoint.removeprefix("http://")) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            stub.Export(trace_service_pb2.ExportTraceServiceRequest(), timeout=5)
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
        stub.Export(trace_service_pb2.ExportTraceServiceRequest(), timeout=5)
    assert _post(rx.http_url("traces"), proto, "application/x-protobuf")[0] == 200
    assert [r.transport for r in rx.requests()] == ["grpc", "http"]


def test_wait_for_times_out_with_a_summary(rx: OtlpReceiver) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="0 spans"):
        rx.wait_for(lambda: rx.spans(), timeout=0.2, message="a span")
    assert time.monotonic() - started < 2


def test_metrics_latest_keeps_newest_point_per_series(rx: OtlpReceiver) -> None:
    exporter = GrpcMetricExporter(endpoint=rx.grpc_endpoint, insecure=True)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    counter = provider.get_meter("m").create_counter("hits")
    counter.add(1, {"k": "a"})
    provider.force_flush()
    counter.add(4, {"k": "a"})
    counter.add(2, {"k": "b"})
    provider.shutdown()
    rx.wait_for(lambda: len(rx.metric_points("hits")) >= 3, timeout=5)
    assert [p.value for p in rx.metrics()["hits"]] == [1, 5, 2]
    latest = {p.attributes["k"]: p.value for p in rx.metrics(latest=True)["hits"]}
    assert latest == {"a": 5, "b": 2}
