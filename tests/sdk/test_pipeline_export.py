"""The app-side pipeline: stages on a copy, fan-out to real OTLP receivers, one dead."""

from __future__ import annotations

import json
import socket
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from llmtap.export.file import JsonLinesSpanExporter
from llmtap.export.presets import Target, build_exporter, target_for
from llmtap.pipeline.span import SpanData
from llmtap.sdk.processor import PipelineProcessor, exporter_queue
from support.otlp_receiver import OtlpReceiver


class Upper:
    """A stage that upper-cases one attribute and the status message (for the tests)."""

    name = "upper"

    def apply(self, span: SpanData) -> None:
        if "note" in span.attributes:
            span.attributes["note"] = str(span.attributes["note"]).upper()
        span.attributes["stage.ran"] = True
        if span.status_message:
            span.status_message = span.status_message.upper()
        for event in span.events:
            event.attributes = {k: str(v).upper() for k, v in event.attributes.items()}


class Exploding:
    name = "exploding"

    def apply(self, span: SpanData) -> None:
        raise RuntimeError("stage bug")


class Preset:
    def __init__(self, preset: str, **fields):
        self.preset = preset
        for key in ("endpoint", "protocol", "headers", "api_key", "public_key", "secret_key"):
            setattr(self, key, fields.get(key))
        for key in ("site", "path", "insecure", "timeout_s", "name", "compression"):
            setattr(self, key, fields.get(key))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stages_run_on_a_copy_and_every_destination_gets_it(tmp_path):
    with OtlpReceiver() as grpc_rx, OtlpReceiver() as http_rx:
        queues = [
            exporter_queue("grpc", build_exporter(Preset("otlp", endpoint=grpc_rx.grpc_endpoint))),
            exporter_queue(
                "http",
                build_exporter(
                    Preset("otlp", endpoint=http_rx.http_url("traces"), protocol="http/protobuf")
                ),
            ),
            exporter_queue("file", JsonLinesSpanExporter(tmp_path / "spans.jsonl")),
        ]
        pipeline = PipelineProcessor([Upper()], queues)
        provider = TracerProvider()
        provider.add_span_processor(pipeline)
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("work", attributes={"note": "secret"}) as span:
            span.add_event("exception", {"exception.message": "boom"})
            span.set_status(Status(StatusCode.ERROR, "failed badly"))
        assert span.attributes["note"] == "secret"  # the live span is not touched
        provider.force_flush()
        for rx in (grpc_rx, http_rx):
            (got,) = rx.wait_for_spans(1)
            assert got.attributes["note"] == "SECRET"
            assert got.attributes["stage.ran"] is True
            assert got.status_message == "FAILED BADLY"
            assert got.events[0].attributes["exception.message"] == "BOOM"
        line = json.loads((tmp_path / "spans.jsonl").read_text().splitlines()[0])
        attrs = line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
        assert {"key": "note", "value": {"stringValue": "SECRET"}} in attrs
        provider.shutdown()


def test_a_dead_destination_neither_delays_nor_drops_spans_for_the_others():
    dead = f"http://127.0.0.1:{free_port()}/v1/traces"
    with OtlpReceiver() as rx:
        slow = exporter_queue(
            "dead", build_exporter(Preset("otlp", endpoint=dead, protocol="http/protobuf")),
            max_items=10, batch_size=5,
        )  # fmt: skip
        live = exporter_queue(
            "live", build_exporter(Preset("otlp", endpoint=rx.grpc_endpoint)), batch_size=50
        )
        pipeline = PipelineProcessor([], [slow, live])
        provider = TracerProvider()
        provider.add_span_processor(pipeline)
        tracer = provider.get_tracer("t")
        started = time.perf_counter()
        for i in range(200):
            with tracer.start_as_current_span(f"s{i}"):
                pass
        elapsed = time.perf_counter() - started
        assert elapsed < 1.0  # the app never waits on the dead backend
        rx.wait_for_spans(200, timeout=15)
        assert len(rx.spans()) == 200
        assert live.dropped == 0
        assert slow.dropped >= 190 - 5  # only its own bounded queue (and one batch) held
        assert slow.sent == 0
        slow.close(timeout_s=0.5)
        live.close()


def test_a_backend_down_then_back_loses_nothing_within_the_queue_bound():
    with OtlpReceiver() as rx:
        rx.fail_next(3)
        queue = exporter_queue(
            "flaky", build_exporter(Preset("otlp", endpoint=rx.grpc_endpoint, timeout_s=2)),
            max_items=500, batch_size=20, max_backoff_s=0.2,
        )  # fmt: skip
        provider = TracerProvider()
        provider.add_span_processor(PipelineProcessor([], [queue]))
        tracer = provider.get_tracer("t")
        for i in range(100):
            with tracer.start_as_current_span(f"s{i}"):
                pass
        rx.wait_for(lambda: len({s.name for s in rx.spans()}) == 100, timeout=30)
        assert queue.dropped == 0
        provider.shutdown()


def test_a_failing_stage_sends_nothing_rather_than_unprocessed_content():
    with OtlpReceiver() as rx:
        queue = exporter_queue("rx", build_exporter(Preset("otlp", endpoint=rx.grpc_endpoint)))
        provider = TracerProvider()
        provider.add_span_processor(PipelineProcessor([Exploding()], [queue]))
        with provider.get_tracer("t").start_as_current_span("leaky", attributes={"pii": "x"}):
            pass
        provider.force_flush()
        time.sleep(0.3)
        assert rx.spans() == []
        provider.shutdown()


def test_presets_resolve_to_the_backends_documented_endpoints_and_headers():
    assert target_for(Preset("jaeger")) == Target("http://localhost:4317", "grpc")
    lf = target_for(Preset("langfuse", public_key="pk", secret_key="sk"))
    assert lf.endpoint == "https://cloud.langfuse.com/api/public/otel/v1/traces"
    assert lf.protocol == "http/protobuf"
    assert lf.headers == {"Authorization": "Basic cGs6c2s=", "x-langfuse-ingestion-version": "4"}
    dd = target_for(Preset("datadog_llmobs", api_key="k", site="datadoghq.eu", name="bot"))
    assert dd.endpoint == "https://otlp.datadoghq.eu/v1/traces"
    assert dd.headers == {"dd-api-key": "k", "dd-otlp-source": "llmobs", "dd-ml-app": "bot"}
    hc = target_for(Preset("honeycomb", api_key="h", headers={"x-honeycomb-dataset": "llm"}))
    assert hc.headers == {"x-honeycomb-team": "h", "x-honeycomb-dataset": "llm"}
    assert target_for(Preset("phoenix", api_key="p")).headers == {"Authorization": "Bearer p"}
