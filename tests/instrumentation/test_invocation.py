"""The neutral lifecycle: spans, the content event, metrics, errors, one span per call."""

from __future__ import annotations

import json

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv
from llmtap.config import CaptureMode, Settings
from llmtap.instrumentation._invocation import (
    Invocation,
    Telemetry,
    status_code_name,
    suppressed,
)


class Harness:
    def __init__(self, capture: CaptureMode) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.logs = InMemoryLogRecordExporter()
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        self.telemetry = Telemetry(
            Settings(capture=capture),
            self.tracer_provider,
            MeterProvider(metric_readers=[self.metrics]),
            logger_provider,
        )

    def metric(self, name: str) -> list:
        data = self.metrics.get_metrics_data()
        points = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        points += list(m.data.data_points)
        return points


def chat(model: str = "gpt-4o") -> Invocation:
    inv = Invocation("chat", "openai", model)
    inv.attributes[semconv.SERVER_ADDRESS] = "api.openai.com"
    inv.input_messages = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    return inv


def finish(h: Harness, inv: Invocation) -> None:
    inv.attributes[semconv.USAGE_INPUT_TOKENS] = 12
    inv.attributes[semconv.USAGE_OUTPUT_TOKENS] = 3
    inv.attributes[semconv.RESPONSE_MODEL] = "gpt-4o-2024-08-06"
    inv.output_messages = [
        {"role": "assistant", "parts": [{"type": "text", "content": "yo"}], "finish_reason": "stop"}
    ]
    h.telemetry.detach(inv)
    h.telemetry.stop(inv)


@pytest.mark.parametrize(
    ("mode", "on_span", "events"),
    [
        (CaptureMode.NO_CONTENT, False, 0),
        (CaptureMode.SPAN_ONLY, True, 0),
        (CaptureMode.EVENT_ONLY, False, 1),
        (CaptureMode.SPAN_AND_EVENT, True, 1),
    ],
)
def test_capture_modes_route_content(mode, on_span, events):
    h = Harness(mode)
    inv = h.telemetry.start(chat())
    finish(h, inv)
    (span,) = h.spans.get_finished_spans()
    assert span.name == "chat gpt-4o"
    assert span.kind is SpanKind.CLIENT
    assert (semconv.INPUT_MESSAGES in span.attributes) is on_span
    assert (semconv.OUTPUT_MESSAGES in span.attributes) is on_span
    records = h.logs.get_finished_logs()
    assert len(records) == events
    if events:
        record = records[0].log_record
        assert record.event_name == "gen_ai.client.inference.operation.details"
        assert record.span_id == span.context.span_id
        assert json.loads(record.attributes[semconv.INPUT_MESSAGES])[0]["role"] == "user"
        assert record.attributes[semconv.USAGE_OUTPUT_TOKENS] == 3


def test_metrics_carry_the_spec_attributes_and_buckets():
    h = Harness(CaptureMode.NO_CONTENT)
    finish(h, h.telemetry.start(chat()))
    (duration,) = h.metric("gen_ai.client.operation.duration")
    assert tuple(duration.explicit_bounds) == semconv.DURATION_BUCKETS
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "server.address": "api.openai.com",
    }
    usage = {p.attributes["gen_ai.token.type"]: p for p in h.metric("gen_ai.client.token.usage")}
    assert usage["input"].sum == 12 and usage["output"].sum == 3
    assert tuple(usage["input"].explicit_bounds) == semconv.TOKEN_BUCKETS


def test_only_the_duration_carries_the_error_type():
    h = Harness(CaptureMode.NO_CONTENT)
    inv = h.telemetry.start(chat())
    h.telemetry.detach(inv)
    h.telemetry.chunk(inv)
    h.telemetry.chunk(inv)
    inv.attributes[semconv.USAGE_INPUT_TOKENS] = 12
    inv.attributes[semconv.USAGE_OUTPUT_TOKENS] = 3
    h.telemetry.fail(inv, TimeoutError("slow"))
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "server.address": "api.openai.com",
    }
    (duration,) = h.metric("gen_ai.client.operation.duration")
    assert dict(duration.attributes) == {**base, "error.type": "TimeoutError"}
    for name in (
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.operation.time_per_output_chunk",
    ):
        (point,) = h.metric(name)
        assert dict(point.attributes) == base
    tokens = {p.attributes["gen_ai.token.type"]: p for p in h.metric("gen_ai.client.token.usage")}
    assert dict(tokens["input"].attributes) == {**base, "gen_ai.token.type": "input"}
    assert dict(tokens["output"].attributes) == {**base, "gen_ai.token.type": "output"}


def test_content_that_cannot_be_encoded_is_left_out_and_the_call_goes_on(caplog):
    h = Harness(CaptureMode.SPAN_AND_EVENT)
    inv = h.telemetry.start(chat())
    loop: dict = {"type": "text"}
    loop["content"] = loop  # refers to itself: no JSON for it
    inv.input_messages = [{"role": "user", "parts": [loop]}]
    with caplog.at_level("WARNING", logger="llmtap"):
        finish(h, inv)
    (span,) = h.spans.get_finished_spans()
    assert semconv.INPUT_MESSAGES not in span.attributes
    assert semconv.OUTPUT_MESSAGES not in span.attributes
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == 3
    assert span.attributes[semconv.RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert h.logs.get_finished_logs() == ()
    assert "content failed" in caplog.text
    (duration,) = h.metric("gen_ai.client.operation.duration")
    assert duration.count == 1


def test_streamed_chunks_give_ttfc_and_per_chunk_metrics():
    h = Harness(CaptureMode.NO_CONTENT)
    inv = h.telemetry.start(chat())
    h.telemetry.detach(inv)
    for _ in range(4):
        h.telemetry.chunk(inv)
    h.telemetry.stop(inv)
    (span,) = h.spans.get_finished_spans()
    assert span.attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert h.metric("gen_ai.client.operation.time_to_first_chunk")[0].count == 1
    (per_chunk,) = h.metric("gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count == 3
    assert tuple(per_chunk.explicit_bounds) == semconv.CHUNK_BUCKETS


def test_failure_sets_error_type_status_and_ends_once():
    h = Harness(CaptureMode.NO_CONTENT)
    inv = h.telemetry.start(chat())
    h.telemetry.detach(inv)
    error = TimeoutError("upstream slow")
    h.telemetry.fail(inv, error)
    h.telemetry.stop(inv)
    (span,) = h.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "TimeoutError: upstream slow"
    assert span.attributes["error.type"] == "TimeoutError"
    assert [e.name for e in span.events] == ["exception"]
    (duration,) = h.metric("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "TimeoutError"


class StatusError(Exception):
    def __init__(self, status_code: object) -> None:
        super().__init__(f"status {status_code}")
        self.status_code = status_code


def _broken_namer(error: BaseException) -> str | None:
    raise ValueError("namer bug")


@pytest.mark.parametrize(
    ("namer", "error", "expected"),
    [
        (lambda e: status_code_name(e, "status_code"), StatusError(429), "429"),
        (lambda e: status_code_name(e, "status_code"), StatusError(True), "StatusError"),
        (lambda e: status_code_name(e, "status_code"), StatusError(42), "StatusError"),
        (lambda e: None, TimeoutError("slow"), "TimeoutError"),
        (_broken_namer, TimeoutError("slow"), "TimeoutError"),
    ],
)
def test_an_adapter_names_the_error(namer, error, expected):
    h = Harness(CaptureMode.NO_CONTENT)
    inv = h.telemetry.start(chat())
    inv.error_namer = namer
    h.telemetry.detach(inv)
    h.telemetry.fail(inv, error)
    (span,) = h.spans.get_finished_spans()
    assert span.attributes["error.type"] == expected
    assert span.status.description.startswith(type(error).__qualname__)
    (duration,) = h.metric("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == expected


def test_an_active_call_suppresses_inner_layers_until_detached():
    h = Harness(CaptureMode.NO_CONTENT)
    assert not suppressed()
    inv = h.telemetry.start(chat())
    assert suppressed()
    assert trace.get_current_span() is inv.span
    # OpenLLMetry's key too, so its instrumentation stands aside
    assert otel_context.get_value("suppress_language_model_instrumentation") is True
    h.telemetry.detach(inv)
    assert not suppressed()
    assert otel_context.get_value("suppress_language_model_instrumentation") is None
    h.telemetry.stop(inv)


def test_suppression_key_of_opentelemetry_is_honoured():
    token = otel_context.attach(
        otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True)
    )
    try:
        assert suppressed()
    finally:
        otel_context.detach(token)


def test_a_foreign_inference_span_is_completed_not_nested():
    h = Harness(CaptureMode.NO_CONTENT)
    tracer = h.tracer_provider.get_tracer("framework")
    with tracer.start_as_current_span("ChatOpenAI", attributes={"gen_ai.operation.name": "chat"}):
        inv = h.telemetry.start(chat())
        finish(h, inv)
    (span,) = h.spans.get_finished_spans()
    assert span.name == "ChatOpenAI"
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert span.attributes["gen_ai.provider.name"] == "openai"


def test_a_failed_attempt_leaves_the_foreign_spans_outcome_to_its_owner():
    """A framework that retries a refused attempt inside its own inference span (PydanticAI
    streams after the SDK refuses a long non-streamed request) decides whether it failed."""
    h = Harness(CaptureMode.NO_CONTENT)
    tracer = h.tracer_provider.get_tracer("framework")
    with tracer.start_as_current_span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat"}):
        refused = h.telemetry.start(chat())
        h.telemetry.detach(refused)
        h.telemetry.fail(refused, ValueError("streaming is required"))
        finish(h, h.telemetry.start(chat()))
    (span,) = h.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert semconv.ERROR_TYPE not in span.attributes
    assert span.events == ()
    assert span.attributes["gen_ai.usage.input_tokens"] == 12


def test_response_shapes_are_judged_per_class_and_the_memo_stays_bounded():
    from llmtap.instrumentation import _raw, _stream

    class Parsed:
        pass

    class Stream:
        def __next__(self) -> None:
            return None

    class Raw:
        http_response = object()

        def parse(self) -> None:
            return None

    for _ in range(2):  # asked, then remembered: the same answers
        assert not _stream.is_stream(Parsed()) and _stream.is_stream(Stream())
        assert not _raw.is_raw(Parsed()) and _raw.is_raw(Raw())
    bare = Raw()
    del Raw.http_response  # the instance check stays per call
    assert not _raw.is_raw(bare)
    for i in range(1000):  # classes made at run time
        made = type(f"Made{i}", (), {})
        assert not _stream.is_stream(made()) and not _raw.is_raw(made())
    assert len(_stream._STREAM_TYPES) <= _stream._KNOWN_TYPES_MAX
    assert len(_raw._PARSING_TYPES) <= _raw._KNOWN_TYPES_MAX
