"""A real OTLP receiver for tests: gRPC and HTTP (protobuf or JSON, gzip/deflate) on loopback.

``with OtlpReceiver() as rx:`` starts both servers on free ports of 127.0.0.1:

- ``rx.grpc_endpoint`` (``http://127.0.0.1:PORT``) serves the OTLP collector services
  ``TraceService``, ``MetricsService`` and ``LogsService`` (``Export``) with grpcio;
- ``rx.http_endpoint`` (``http://127.0.0.1:PORT``) takes ``POST /v1/traces``, ``/v1/metrics``
  and ``/v1/logs`` as ``application/x-protobuf`` or ``application/json``, optionally
  ``Content-Encoding: gzip`` or ``deflate``; ``rx.http_url("traces")`` gives a full signal URL.
  ``OtlpReceiver(http_path_prefix="/api/public/otel")`` takes them under a backend's own path
  instead (``/api/public/otel/v1/traces``); every HTTP request keeps its ``path``.

Whatever arrives is decoded and kept. ``spans()``, ``metrics()`` and ``logs()`` flatten it into
plain records whose attribute values are Python values (str, int, float, bool, lists, dicts,
bytes); ``requests()`` keeps every decoded export request with its headers; ``wait_for()``
blocks until a condition over them holds. ``fail_next()`` answers the next exports with an
error (gRPC ``UNAVAILABLE`` / HTTP 503) to exercise retries.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

T = TypeVar("T")

TRACES, METRICS, LOGS = "traces", "metrics", "logs"
SIGNALS = (TRACES, METRICS, LOGS)

_REQUEST_TYPES: dict[str, type[Message]] = {
    TRACES: trace_service_pb2.ExportTraceServiceRequest,
    METRICS: metrics_service_pb2.ExportMetricsServiceRequest,
    LOGS: logs_service_pb2.ExportLogsServiceRequest,
}
_RESPONSE_TYPES: dict[str, type[Message]] = {
    TRACES: trace_service_pb2.ExportTraceServiceResponse,
    METRICS: metrics_service_pb2.ExportMetricsServiceResponse,
    LOGS: logs_service_pb2.ExportLogsServiceResponse,
}
_HTTP_PATHS = {f"/v1/{signal}": signal for signal in SIGNALS}
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


# records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRequest:
    """One export call as it arrived."""

    signal: str  # traces | metrics | logs
    transport: str  # grpc | http
    encoding: str  # protobuf | json
    headers: dict[str, str]
    message: Message
    path: str = ""  # the HTTP request path (empty for gRPC)


@dataclass(frozen=True)
class SpanEvent:
    name: str
    attributes: dict[str, Any]
    time_unix_nano: int


@dataclass(frozen=True)
class SpanLink:
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class SpanRecord:
    name: str
    kind: str  # INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER | UNSPECIFIED
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str | None
    attributes: dict[str, Any]
    status_code: str  # UNSET | OK | ERROR
    status_message: str
    events: list[SpanEvent]
    links: list[SpanLink]
    start_time_unix_nano: int
    end_time_unix_nano: int
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    transport: str

    @property
    def duration_s(self) -> float:
        return (self.end_time_unix_nano - self.start_time_unix_nano) / 1e9


@dataclass(frozen=True)
class MetricPoint:
    """One data point of one metric, with the metric's own description repeated on it."""

    name: str
    kind: str  # gauge | sum | histogram | exponential_histogram | summary
    unit: str
    description: str
    attributes: dict[str, Any]
    time_unix_nano: int
    start_time_unix_nano: int
    resource: dict[str, Any]
    scope_name: str
    temporality: str | None = None  # CUMULATIVE | DELTA for sums and histograms
    is_monotonic: bool | None = None  # sums only
    value: int | float | None = None  # gauges and sums (int for as_int, float for as_double)
    count: int | None = None  # histograms and summaries
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class LogRecordView:
    body: Any
    severity_number: int
    severity_text: str
    event_name: str
    attributes: dict[str, Any]
    trace_id: str | None
    span_id: str | None
    time_unix_nano: int
    resource: dict[str, Any]
    scope_name: str


# protobuf -> python -----------------------------------------------------------------------


def any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, which)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in pairs}


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw else None


def _enum_suffix(enum_type: Any, number: int, prefix: str) -> str:
    name = enum_type.Name(number)
    return name[len(prefix) :] if name.startswith(prefix) else name


def flatten_spans(request: ExportRequest) -> list[SpanRecord]:
    out = []
    for rs in request.message.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.append(
                    SpanRecord(
                        name=span.name,
                        kind=_enum_suffix(trace_pb2.Span.SpanKind, span.kind, "SPAN_KIND_"),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=_hex(span.parent_span_id),
                        attributes=attributes(span.attributes),
                        status_code=_enum_suffix(
                            trace_pb2.Status.StatusCode, span.status.code, "STATUS_CODE_"
                        ),
                        status_message=span.status.message,
                        events=[
                            SpanEvent(e.name, attributes(e.attributes), e.time_unix_nano)
                            for e in span.events
                        ],
                        links=[
                            SpanLink(
                                link.trace_id.hex(), link.span_id.hex(), attributes(link.attributes)
                            )
                            for link in span.links
                        ],
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        resource=resource,
                        scope_name=ss.scope.name,
                        scope_version=ss.scope.version,
                        transport=request.transport,
                    )
                )
    return out


def _temporality(number: int) -> str:
    return _enum_suffix(metrics_pb2.AggregationTemporality, number, "AGGREGATION_TEMPORALITY_")


def flatten_metrics(request: ExportRequest) -> list[MetricPoint]:
    out = []
    for rm in request.message.resource_metrics:
        resource = attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                common = {
                    "name": metric.name,
                    "kind": kind,
                    "unit": metric.unit,
                    "description": metric.description,
                    "resource": resource,
                    "scope_name": sm.scope.name,
                }
                if kind in ("sum", "histogram", "exponential_histogram"):
                    common["temporality"] = _temporality(data.aggregation_temporality)
                if kind == "sum":
                    common["is_monotonic"] = data.is_monotonic
                for dp in data.data_points:
                    out.append(MetricPoint(**common, **_point_fields(kind, dp)))
    return out


def _point_fields(kind: str, dp: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "attributes": attributes(dp.attributes),
        "time_unix_nano": dp.time_unix_nano,
        "start_time_unix_nano": dp.start_time_unix_nano,
    }
    if kind in ("gauge", "sum"):
        which = dp.WhichOneof("value")
        fields["value"] = getattr(dp, which) if which else None
    elif kind == "summary":
        fields.update(count=dp.count, sum=dp.sum)
    else:
        fields.update(count=dp.count, sum=dp.sum if dp.HasField("sum") else None)
        fields["min"] = dp.min if dp.HasField("min") else None
        fields["max"] = dp.max if dp.HasField("max") else None
        if kind == "histogram":
            fields["bucket_counts"] = list(dp.bucket_counts)
            fields["explicit_bounds"] = list(dp.explicit_bounds)
    return fields


def flatten_logs(request: ExportRequest) -> list[LogRecordView]:
    out = []
    for rl in request.message.resource_logs:
        resource = attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                out.append(
                    LogRecordView(
                        body=any_value(rec.body),
                        severity_number=rec.severity_number,
                        severity_text=rec.severity_text,
                        event_name=rec.event_name,
                        attributes=attributes(rec.attributes),
                        trace_id=_hex(rec.trace_id),
                        span_id=_hex(rec.span_id),
                        time_unix_nano=rec.time_unix_nano or rec.observed_time_unix_nano,
                        resource=resource,
                        scope_name=sl.scope.name,
                    )
                )
    return out


# OTLP/JSON --------------------------------------------------------------------------------


def _ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    if isinstance(node, dict):
        return {
            key: (
                base64.b64encode(bytes.fromhex(value)).decode()
                if key in _ID_KEYS and isinstance(value, str)
                else _ids_to_base64(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_ids_to_base64(item) for item in node]
    return node


def parse_json(signal: str, payload: bytes) -> Message:
    message = _REQUEST_TYPES[signal]()
    json_format.ParseDict(_ids_to_base64(json.loads(payload)), message, ignore_unknown_fields=True)
    return message


# the receiver -----------------------------------------------------------------------------


class _Failures:
    def __init__(self) -> None:
        self.remaining = 0
        self.grpc_code = grpc.StatusCode.UNAVAILABLE
        self.http_status = 503
        self.delay_s = 0.0


class OtlpReceiver:
    """OTLP over gRPC and HTTP on loopback; keeps and flattens whatever is exported to it."""

    def __init__(
        self, host: str = "127.0.0.1", grpc_port: int = 0, http_path_prefix: str = ""
    ) -> None:
        """``grpc_port``: where gRPC listens (0: a free port), e.g. an address a collector
        was already told to send to."""
        self.host = host
        self._wanted_grpc_port = grpc_port
        #: HTTP requests are taken at ``{prefix}/v1/{signal}`` (a backend's own path)
        self.http_path_prefix = http_path_prefix.rstrip("/")
        self._lock = threading.Condition()
        self._requests: list[ExportRequest] = []
        self._spans: list[SpanRecord] = []
        self._points: list[MetricPoint] = []
        self._logs: list[LogRecordView] = []
        self._failures = _Failures()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.grpc_port = grpc_port
        self.http_port = 0

    # lifecycle

    def start(self) -> OtlpReceiver:
        if self._grpc is not None:
            return self
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-grpc")
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceServicer(self), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _MetricsServicer(self), server
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), server)
        self.grpc_port = server.add_insecure_port(f"{self.host}:{self._wanted_grpc_port}")
        if not self.grpc_port:
            raise RuntimeError("OtlpReceiver: could not bind a gRPC port")
        server.start()
        self._grpc = server

        httpd = _HTTPServer((self.host, 0), _HttpHandler, receiver=self)
        self.http_port = int(httpd.server_address[1])
        self._http = httpd
        self._http_thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="otlp-http",
            daemon=True,
        )
        self._http_thread.start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=0.2).wait(2)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=2)
            self._http_thread = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # addresses

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{self.host}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def http_url(self, signal: str) -> str:
        if signal not in SIGNALS:
            raise ValueError(f"unknown OTLP signal {signal!r}; one of {SIGNALS}")
        return f"{self.http_endpoint}{self.http_path_prefix}/v1/{signal}"

    # what arrived

    def requests(self, signal: str | None = None) -> list[ExportRequest]:
        with self._lock:
            return [r for r in self._requests if signal is None or r.signal == signal]

    def spans(self, name: str | None = None) -> list[SpanRecord]:
        with self._lock:
            return [s for s in self._spans if name is None or s.name == name]

    def metric_points(self, name: str | None = None) -> list[MetricPoint]:
        with self._lock:
            return [p for p in self._points if name is None or p.name == name]

    def metrics(self, *, latest: bool = False) -> dict[str, list[MetricPoint]]:
        """Metric name -> data points in arrival order.

        Periodic readers re-export cumulative series; ``latest=True`` keeps only the newest
        point of each (metric, attribute set).
        """
        out: dict[str, list[MetricPoint]] = {}
        if not latest:
            for point in self.metric_points():
                out.setdefault(point.name, []).append(point)
            return out
        newest: dict[tuple[str, str], MetricPoint] = {}
        for point in self.metric_points():
            newest[(point.name, _attr_key(point.attributes))] = point
        for (name, _), point in newest.items():
            out.setdefault(name, []).append(point)
        return out

    def logs(self) -> list[LogRecordView]:
        with self._lock:
            return list(self._logs)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._spans.clear()
            self._points.clear()
            self._logs.clear()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, message: str = "") -> T:
        """Block until ``predicate()`` is truthy (re-checked whenever data arrives); return it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"OtlpReceiver: condition not met in {timeout}s"
                        f"{': ' + message if message else ''}; received {self.summary()}"
                    )
                self._lock.wait(min(left, 0.1))

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[SpanRecord]:
        self.wait_for(lambda: len(self._spans) >= count, timeout, f"{count} spans")
        return self.spans()

    def wait_for_metrics(self, *names: str, timeout: float = 10.0) -> dict[str, list[MetricPoint]]:
        def arrived() -> bool:
            have = {p.name for p in self._points}
            return all(n in have for n in names)

        self.wait_for(arrived, timeout, f"metrics {names}")
        return self.metrics()

    def summary(self) -> str:
        with self._lock:
            span_names = sorted({s.name for s in self._spans})
            metric_names = sorted({p.name for p in self._points})
            return (
                f"{len(self._requests)} requests, {len(self._spans)} spans {span_names}, "
                f"metrics {metric_names}, {len(self._logs)} logs"
            )

    # failure injection

    def fail_next(
        self,
        count: int = 1,
        *,
        grpc_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        http_status: int = 503,
    ) -> None:
        """Answer the next ``count`` export calls (any signal/transport) with an error."""
        with self._lock:
            self._failures.remaining = count
            self._failures.grpc_code = grpc_code
            self._failures.http_status = http_status

    # intake (called by the servers)

    def slow_down(self, seconds: float) -> None:
        """Take ``seconds`` before answering each export call (the data is kept even when
        the caller gave up waiting, as a slow real backend does)."""
        with self._lock:
            self._failures.delay_s = seconds

    def _take_failure(self) -> _Failures | None:
        with self._lock:
            if self._failures.remaining <= 0:
                return None
            self._failures.remaining -= 1
            return self._failures

    def _accept(self, request: ExportRequest) -> None:
        if self._failures.delay_s:
            time.sleep(self._failures.delay_s)
        if request.signal == TRACES:
            flat: list[Any] = flatten_spans(request)
        elif request.signal == METRICS:
            flat = flatten_metrics(request)
        else:
            flat = flatten_logs(request)
        with self._lock:
            self._requests.append(request)
            {TRACES: self._spans, METRICS: self._points, LOGS: self._logs}[request.signal].extend(
                flat
            )
            self._lock.notify_all()


def _attr_key(attrs: dict[str, Any]) -> str:
    return json.dumps(attrs, sort_keys=True, default=repr)


# gRPC ---------------------------------------------------------------------------------------


def _grpc_export(receiver: OtlpReceiver, signal: str, request: Message, context: Any) -> Message:
    failure = receiver._take_failure()
    if failure is not None:
        context.abort(failure.grpc_code, "OtlpReceiver: injected failure")
    headers = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
    receiver._accept(ExportRequest(signal, "grpc", "protobuf", headers, request))
    return _RESPONSE_TYPES[signal]()


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver

    def Export(self, request: Message, context: Any) -> Message:
        return _grpc_export(self.receiver, TRACES, request, context)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver

    def Export(self, request: Message, context: Any) -> Message:
        return _grpc_export(self.receiver, METRICS, request, context)


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver

    def Export(self, request: Message, context: Any) -> Message:
        return _grpc_export(self.receiver, LOGS, request, context)


# HTTP ---------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, *, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, handler)


class _BadRequest(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        try:
            body = self._read_body()
            path = self.path.split("?", 1)[0].rstrip("/")
            prefix = self.server.receiver.http_path_prefix
            signal = _HTTP_PATHS.get(path[len(prefix) :]) if path.startswith(prefix) else None
            if signal is None:
                raise _BadRequest(404, f"no OTLP endpoint at {self.path}")
            content_type = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
            if content_type == "application/x-protobuf":
                encoding = "protobuf"
            elif content_type == "application/json":
                encoding = "json"
            else:
                raise _BadRequest(415, f"unsupported content-type {content_type!r}")
            payload = _decompress(body, self.headers.get("content-encoding") or "")
            failure = self.server.receiver._take_failure()
            if failure is not None:
                self._send(failure.http_status, b"injected failure", "text/plain")
                return
            try:
                if encoding == "json":
                    message = parse_json(signal, payload)
                else:
                    message = _REQUEST_TYPES[signal].FromString(payload)
            except (DecodeError, ValueError, json_format.ParseError) as exc:
                raise _BadRequest(400, f"cannot decode {encoding} {signal}: {exc}") from exc
        except _BadRequest as exc:
            self._send(exc.status, str(exc).encode(), "text/plain")
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        request = ExportRequest(signal, "http", encoding, headers, message, self.path)
        self.server.receiver._accept(request)
        response = _RESPONSE_TYPES[signal]()
        if encoding == "json":
            self._send(200, json_format.MessageToJson(response).encode(), "application/json")
        else:
            self._send(200, response.SerializeToString(), "application/x-protobuf")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _decompress(body: bytes, content_encoding: str) -> bytes:
    encoding = content_encoding.strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, no zlib header
    except (OSError, zlib.error) as exc:
        raise _BadRequest(400, f"bad {encoding} body: {exc}") from exc
    if encoding in ("", "identity"):
        return body
    raise _BadRequest(415, f"unsupported content-encoding {encoding!r}")
