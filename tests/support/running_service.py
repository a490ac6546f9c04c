"""Helpers shared by the service's receive, forward and serve tests (no tests here).

``running_service`` starts a real :class:`llmtap.service.app.ServiceApp` on free loopback
ports with destinations taken from a real ``llmtap.yaml`` (``load_config``), the same path
``llmtap serve`` takes; the backends are :class:`support.otlp_receiver.OtlpReceiver`s.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llmtap.config_file import load_config
from llmtap.service.app import ServiceApp, ServiceConfig
from llmtap.service.spans import set_attributes

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
EMAIL = "jane.doe@example.com"


def grpc_export(rx: Any) -> dict[str, Any]:
    """An ``export:`` entry sending OTLP/gRPC to a receiver."""
    return {"preset": "otlp", "endpoint": rx.grpc_endpoint, "protocol": "grpc"}


def http_export(rx: Any) -> dict[str, Any]:
    return {"preset": "otlp", "endpoint": rx.http_url("traces"), "protocol": "http/protobuf"}


def write_config(path: Path, exports: Sequence[dict[str, Any]], **extra: Any) -> Path:
    path.write_text(yaml.safe_dump({"export": list(exports), **extra}, sort_keys=False))
    return path


@contextlib.contextmanager
def running_service(
    tmp_path: Path,
    exports: Sequence[dict[str, Any]] = (),
    *,
    config: dict[str, Any] | None = None,
    stop_timeout: float = 5.0,
    **service: Any,
) -> Iterator[ServiceApp]:
    """A started service on free ports; stopped (drained) on exit."""
    cfg = load_config(write_config(tmp_path / "llmtap.yaml", exports, **(config or {})))
    settings = {
        "grpc_address": "127.0.0.1:0",
        "http_address": "127.0.0.1:0",
        "metrics_address": "127.0.0.1:0",
        "retry_after_s": 0.2,
        **service,
    }
    app = ServiceApp(cfg, ServiceConfig(**settings))
    app.start()
    try:
        yield app
    finally:
        app.stop(stop_timeout)


def grpc_target(app: ServiceApp) -> str:
    assert app.grpc is not None
    return f"127.0.0.1:{app.grpc.port}"


def http_url(app: ServiceApp, path: str = "/v1/traces") -> str:
    assert app.http is not None
    return f"http://127.0.0.1:{app.http.port}{path}"


# the real SDK exporters -------------------------------------------------------------------------


def sdk_provider(exporter: Any, service_name: str = "svc-test") -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_export_batch_size=512, schedule_delay_millis=50)
    )
    return provider


def grpc_exporter(app: ServiceApp, **kw: Any) -> GrpcSpanExporter:
    return GrpcSpanExporter(endpoint=grpc_target(app), insecure=True, timeout=10, **kw)


def http_exporter(app: ServiceApp, **kw: Any) -> HttpSpanExporter:
    return HttpSpanExporter(endpoint=http_url(app), timeout=10, **kw)


# raw requests ---------------------------------------------------------------------------------


def span_request(
    spans: Sequence[dict[str, Any]],
    resource: dict[str, Any] | None = None,
    scope: str = "raw-test",
) -> ExportTraceServiceRequest:
    """A request of spans given as dicts of Span fields plus ``attributes``."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    set_attributes(rs.resource.attributes, resource or {"service.name": "raw"})
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    for fields in spans:
        fields = dict(fields)
        attrs = fields.pop("attributes", {})
        span = ss.spans.add(**fields)
        set_attributes(span.attributes, attrs)
    return request


def ids(n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """``n`` (trace_id, span_id) pairs, all different."""
    return [
        ((seed * 1_000_003 + i + 1).to_bytes(16, "big"), (seed * 7919 + i + 1).to_bytes(8, "big"))
        for i in range(n)
    ]


def simple_spans(n: int, seed: int = 1, **attrs: Any) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": t,
            "span_id": s,
            "name": f"op {i}",
            "kind": 1,
            "start_time_unix_nano": 1_000_000_000 + i,
            "end_time_unix_nano": 2_000_000_000 + i,
            "attributes": {"i": i, **attrs},
        }
        for i, (t, s) in enumerate(ids(n, seed))
    ]


SEAL_KEY = "test-redaction-seal-key-0123456789"


def seal_spans(spans: Sequence[dict[str, Any]], key: str = SEAL_KEY) -> None:
    """Give each span dict (with ``llmtap.redaction.count``) the seal an llmtap app with
    ``key`` would write."""
    from llmtap.pipeline.redaction_seal import SEAL, seal, span_state

    for span in spans:
        attrs = span["attributes"]
        state = span_state(
            attrs.get("llmtap.redaction.count"), attrs.get("llmtap.redaction.failed")
        )
        attrs[SEAL] = seal(key.encode(), span["trace_id"], span["span_id"], state)


def grpc_call(
    app: ServiceApp, body: bytes, metadata: Sequence[tuple[str, str]] | None = None
) -> ExportTraceServiceResponse:
    """One raw Export call; raises ``grpc.RpcError``."""
    with grpc.insecure_channel(grpc_target(app)) as channel:
        call = channel.unary_unary(EXPORT)
        raw = call(body, timeout=10, metadata=metadata)
        return ExportTraceServiceResponse.FromString(raw)


def http_post(
    url: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("POST", parsed.path, body, headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def http_get(url: str) -> tuple[int, bytes]:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("GET", parsed.path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def metrics_text(app: ServiceApp) -> str:
    assert app.metrics_server is not None
    status, body = http_get(app.metrics_server.url)
    assert status == 200
    return body.decode()


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text (0 when absent); labels in any order."""
    want = sorted(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        metric, _, rest = key.partition("{")
        if metric == name and sorted(filter(None, rest.rstrip("}").split(","))) == want:
            return float(value)
    return 0.0


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not met within {timeout}s: {what}")
        time.sleep(0.02)


def by_span_id(spans: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for span in spans:
        assert span.span_id not in out, f"span {span.span_id} ({span.name}) arrived twice"
        out[span.span_id] = span
    return out


def json_body(data: bytes) -> Any:
    return json.loads(data.decode())
