"""Anthropic instrumentation against the real SDK talking to the dev server (nothing mocked).

The SDK's own tracing is on in every client here (``open_telemetry={"tracer_provider": ...}``
with the test provider), so "one span per call" is checked against a live competitor.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic import _base_client
from anthropic.resources.beta.messages import messages as beta_resource
from anthropic.resources.messages import messages as resource
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv
from llmtap.config import CaptureMode
from llmtap.devserver.transport import IN_PROCESS_BASE_URL, DevServerTransport
from llmtap.instrumentation._invocation import SCOPE
from llmtap.instrumentation.anthropic import _common

MODEL = "claude-sonnet-4-6"
SDK_SCOPE = "com.anthropic.sdk.python"
SCHEMAS = Path("/work/shared/semconv-genai-v1.41/docs")
TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
}
CACHED_SYSTEM = [
    {
        "type": "text",
        "text": "You are a helpful assistant. " * 20,
        "cache_control": {"type": "ephemeral"},
    }
]
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


class RecordingAnthropic(anthropic.Anthropic):
    """The real client; remembers every status error it builds (to check identity)."""

    made: list[Exception]

    def _make_status_error(self, err_msg: str, *, body: object, response: Any) -> Any:
        error = super()._make_status_error(err_msg, body=body, response=response)
        self.made.append(error)
        return error


# fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def transport() -> DevServerTransport:
    return DevServerTransport()


@pytest.fixture
def sdk_otel(tracer_provider: Any) -> dict[str, Any]:
    """The SDK's own tracing, on, into the same provider as llmtap's spans."""
    return {"tracer_provider": tracer_provider}


@pytest.fixture
def client(transport: DevServerTransport, sdk_otel: dict[str, Any]) -> Any:
    made = RecordingAnthropic(
        api_key="test-key",
        base_url=IN_PROCESS_BASE_URL,
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
        open_telemetry=sdk_otel,
    )
    made.made = []
    yield made
    made.close()


@pytest.fixture
def aclient(transport: DevServerTransport, sdk_otel: dict[str, Any]) -> Any:
    return anthropic.AsyncAnthropic(
        api_key="test-key",
        base_url=IN_PROCESS_BASE_URL,
        http_client=httpx2.AsyncClient(transport=transport),
        max_retries=0,
        open_telemetry=sdk_otel,
    )


@pytest.fixture
def instrumented(instrument_anthropic: Any) -> Any:
    return instrument_anthropic(capture="span_only")


def only_span(exporter: Any) -> Any:
    """The one span of the call; the SDK's own ``anthropic.messages.create`` must not exist."""
    spans = exporter.get_finished_spans()
    assert [s.instrumentation_scope.name for s in spans] == [SCOPE], [s.name for s in spans]
    return spans[0]


def content(span: Any, key: str) -> Any:
    return json.loads(span.attributes[key])


def output_text(span: Any) -> str:
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    return "".join(p["content"] for p in message["parts"] if p["type"] == "text")


def validate(span: Any, key: str, schema_file: str) -> Any:
    import jsonschema

    value = content(span, key)
    jsonschema.validate(value, json.loads((SCHEMAS / schema_file).read_text()))
    return value


def metric_points(reader: Any, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    points: list[Any] = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    points += list(metric.data.data_points)
    return points


# create -------------------------------------------------------------------------------------


def test_create_sync(instrumented, client, transport, span_exporter):
    message = client.messages.create(
        model=MODEL,
        max_tokens=128,
        stop_sequences=["END"],
        extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 40},  # not parameters in SDK 2.x
        messages=_user("Hello there"),
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[semconv.OPERATION] == "chat" and attrs[semconv.PROVIDER] == "anthropic"
    assert attrs[semconv.REQUEST_MODEL] == MODEL and attrs[semconv.REQUEST_MAX_TOKENS] == 128
    assert attrs[semconv.REQUEST_TEMPERATURE] == 0.5 and attrs[semconv.REQUEST_TOP_P] == 0.9
    assert attrs[semconv.REQUEST_TOP_K] == 40.0 and isinstance(attrs[semconv.REQUEST_TOP_K], float)
    assert list(attrs[semconv.REQUEST_STOP_SEQUENCES]) == ["END"]
    assert attrs[semconv.REQUEST_STREAM] is False
    assert attrs[semconv.SERVER_ADDRESS] == "llmtap-devserver.local"
    assert attrs[semconv.SERVER_PORT] == 80
    assert attrs[semconv.RESPONSE_ID] == message.id
    assert attrs[semconv.RESPONSE_MODEL] == message.model
    assert list(attrs[semconv.RESPONSE_FINISH_REASONS]) == ["end_turn"]
    assert attrs[semconv.USAGE_INPUT_TOKENS] == message.usage.input_tokens
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
    assert output_text(span) == message.content[0].text
    # The trace context reached the server, naming llmtap's span as the parent.
    (request,) = transport.requests.all()
    ctx = span.get_span_context()
    assert request.headers["traceparent"].split("-")[1:3] == [
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
    ]


async def test_create_async(instrumented, aclient, transport, span_exporter):
    message = await aclient.messages.create(
        model=MODEL, max_tokens=128, messages=_user("async hello")
    )
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_ID] == message.id
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
    assert output_text(span) == message.content[0].text
    (request,) = transport.requests.all()
    assert f"{span.get_span_context().span_id:016x}" in request.headers["traceparent"]


def test_parse_and_json_output_type(instrumented, client, span_exporter):
    parsed = client.messages.parse(model=MODEL, max_tokens=64, messages=_user("parse me"))
    fmt = {"type": "json_schema", "schema": {"type": "object", "properties": {}}}
    client.messages.create(
        model=MODEL, max_tokens=64, messages=_user("json"), output_config={"format": fmt}
    )
    first, second = span_exporter.get_finished_spans()
    assert first.attributes[semconv.RESPONSE_ID] == parsed.id
    assert semconv.OUTPUT_TYPE not in first.attributes
    assert second.attributes[semconv.OUTPUT_TYPE] == "json"


def test_beta_messages(instrumented, client, span_exporter):
    message = client.beta.messages.create(model=MODEL, max_tokens=64, messages=_user("beta"))
    with client.beta.messages.stream(model=MODEL, max_tokens=64, messages=_user("beta")) as s:
        final = s.get_final_message()
    create_span, stream_span = span_exporter.get_finished_spans()
    assert {create_span.instrumentation_scope.name, stream_span.instrumentation_scope.name} == {
        SCOPE
    }
    assert create_span.attributes[semconv.RESPONSE_ID] == message.id
    assert stream_span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert stream_span.attributes[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens


# create(stream=True) ----------------------------------------------------------------------


def test_stream_iterated_fully(instrumented, client, span_exporter):
    events = list(
        client.messages.create(model=MODEL, max_tokens=128, messages=_user("stream"), stream=True)
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert attrs[semconv.REQUEST_STREAM] is True
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert attrs[semconv.RESPONSE_ID] == events[0].message.id
    assert list(attrs[semconv.RESPONSE_FINISH_REASONS]) == ["end_turn"]
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == events[-2].usage.output_tokens > 1
    assert attrs[semconv.USAGE_INPUT_TOKENS] == events[0].message.usage.input_tokens
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert output_text(span) == text


def test_stream_break_then_abandoned(instrumented, client, span_exporter):
    stream = client.messages.create(
        model=MODEL, max_tokens=128, messages=_user("stream"), stream=True
    )
    for _event in stream:
        break
    assert span_exporter.get_finished_spans() == ()
    del stream, _event
    gc.collect()
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "abandoned"
    assert span.status.status_code is StatusCode.UNSET


def test_stream_break_then_close(instrumented, client, span_exporter):
    stream = client.messages.create(
        model=MODEL, max_tokens=128, messages=_user("stream"), stream=True
    )
    next(iter(stream))
    stream.close()
    assert only_span(span_exporter).attributes[semconv.LLMTAP_STREAM_END] == "closed"


def test_stream_context_manager_exit(instrumented, client, span_exporter):
    with client.messages.create(
        model=MODEL, max_tokens=128, messages=_user("stream"), stream=True
    ) as stream:
        first = next(stream)
    assert first.type == "message_start"
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "closed"
    assert span.attributes[semconv.RESPONSE_ID] == first.message.id


async def test_async_stream(instrumented, aclient, span_exporter):
    stream = await aclient.messages.create(
        model=MODEL, max_tokens=128, messages=_user("async stream"), stream=True
    )
    kinds = [event.type async for event in stream]
    span = only_span(span_exporter)
    assert kinds[-1] == "message_stop"
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] > 1


# messages.stream() ------------------------------------------------------------------------


def test_stream_helper(instrumented, client, transport, span_exporter):
    with client.messages.stream(model=MODEL, max_tokens=128, messages=_user("helper")) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
        s.until_done()
        snapshot = s.current_message_snapshot
        request_id = s.request_id
        assert s.response.headers["request-id"] == request_id
    assert text == final.content[0].text and snapshot.id == final.id
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.REQUEST_STREAM] is True
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert attrs[semconv.RESPONSE_ID] == final.id
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert output_text(span) == text
    (request,) = transport.requests.all()
    assert f"{span.get_span_context().span_id:016x}" in request.headers["traceparent"]


def test_stream_helper_early_exit(instrumented, client, span_exporter):
    with client.messages.stream(model=MODEL, max_tokens=128, messages=_user("helper")) as s:
        for _event in s:
            break
    span = only_span(span_exporter)  # ended by the with block, no GC needed
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "closed"


def test_stream_helper_dropped(instrumented, client, transport, span_exporter):
    manager = client.messages.stream(model=MODEL, max_tokens=128, messages=_user("helper"))
    stream = manager.__enter__()
    next(iter(stream))
    del manager, stream
    gc.collect()
    assert only_span(span_exporter).attributes[semconv.LLMTAP_STREAM_END] == "abandoned"
    never = client.messages.stream(model=MODEL, max_tokens=128, messages=_user("never"))
    del never
    gc.collect()
    assert span_exporter.get_finished_spans()[-1].attributes[semconv.LLMTAP_STREAM_END] == (
        "abandoned"
    )
    assert len(transport.requests.all()) == 1  # the manager never entered sent nothing


async def test_async_stream_helper(instrumented, aclient, transport, span_exporter):
    async with aclient.messages.stream(
        model=MODEL, max_tokens=128, messages=_user("async helper")
    ) as s:
        text = "".join([t async for t in s.text_stream])
        final = await s.get_final_message()
    assert text == final.content[0].text
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    (request,) = transport.requests.all()
    assert f"{span.get_span_context().span_id:016x}" in request.headers["traceparent"]


async def test_async_stream_helper_early_exit(instrumented, aclient, span_exporter):
    async with aclient.messages.stream(
        model=MODEL, max_tokens=128, messages=_user("async helper")
    ) as s:
        async for _event in s:
            break
    assert only_span(span_exporter).attributes[semconv.LLMTAP_STREAM_END] == "closed"


# tools, thinking, cache -------------------------------------------------------------------


def test_tool_use_streamed(instrumented, client, span_exporter):
    events = list(
        client.messages.create(
            model=MODEL,
            max_tokens=512,
            messages=_user("Weather in Oslo"),
            tools=[TOOL],
            stream=True,
        )
    )
    assert any(getattr(e, "delta", None) and e.delta.type == "input_json_delta" for e in events)
    span = only_span(span_exporter)
    assert list(span.attributes[semconv.RESPONSE_FINISH_REASONS]) == ["tool_use"]
    (message,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert message["finish_reason"] == "tool_call"
    call = message["parts"][-1]
    assert call["type"] == "tool_call" and call["name"] == "get_weather"
    assert call["arguments"] == {"city": "Oslo", "unit": "c"}
    assert call["id"].startswith("toolu_")
    (definition,) = validate(span, semconv.TOOL_DEFINITIONS, "gen-ai-tool-definitions.json")
    assert definition == {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": TOOL["input_schema"],
    }


def test_tool_round_trip_input(instrumented, client, span_exporter):
    question = _user("What is the weather in Paris?")
    first = client.messages.create(model=MODEL, max_tokens=512, messages=question, tools=[TOOL])
    tool_use = first.content[-1]
    follow_up = [
        *question,
        {"role": "assistant", "content": first.content},  # the SDK's own models, as apps do
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": "Rainy, 12C"},
                {"type": "text", "text": "Answer briefly."},
            ],
        },
    ]
    client.messages.create(model=MODEL, max_tokens=512, messages=follow_up, tools=[TOOL])
    span = span_exporter.get_finished_spans()[-1]
    msgs = validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "user"]
    assert msgs[1]["parts"][-1] == {
        "type": "tool_call",
        "name": "get_weather",
        "id": tool_use.id,
        "arguments": {"city": "Paris", "unit": "c"},
    }
    assert msgs[2]["parts"] == [
        {"type": "tool_call_response", "response": "Rainy, 12C", "id": tool_use.id}
    ]
    assert msgs[3]["parts"] == [{"type": "text", "content": "Answer briefly."}]


def test_thinking(instrumented, client, span_exporter):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    message = client.messages.create(
        model=MODEL, max_tokens=2048, messages=_user("Ponder Venus"), thinking=thinking
    )
    with client.messages.stream(
        model=MODEL, max_tokens=2048, messages=_user("Ponder Venus"), thinking=thinking
    ) as s:
        streamed = s.get_final_message()
    for span, reply in zip(span_exporter.get_finished_spans(), (message, streamed), strict=True):
        (out,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
        assert out["parts"][0] == {"type": "reasoning", "content": reply.content[0].thinking}
        assert out["parts"][1]["type"] == "text"
        reasoning = message.usage.output_tokens_details.thinking_tokens
        assert span.attributes[semconv.USAGE_REASONING_OUTPUT_TOKENS] == reasoning > 0


def test_cache_token_arithmetic(instrumented, client, span_exporter):
    read = client.messages.create(
        model=MODEL, max_tokens=64, system=CACHED_SYSTEM, messages=_user("hello")
    )
    written = client.messages.create(
        model=MODEL,
        max_tokens=64,
        system=CACHED_SYSTEM,
        messages=_user("hello"),
        extra_headers={"x-devserver-scenario": "cache_write"},
    )
    with client.messages.stream(
        model=MODEL, max_tokens=64, system=CACHED_SYSTEM, messages=_user("hello")
    ) as s:
        s.until_done()
    assert read.usage.cache_read_input_tokens > 0 and written.usage.cache_creation_input_tokens > 0
    read_span, written_span, stream_span = span_exporter.get_finished_spans()
    for span, usage in (
        (read_span, read.usage),
        (written_span, written.usage),
        (stream_span, read.usage),
    ):
        attrs = span.attributes
        total = (
            usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        )
        assert attrs[semconv.USAGE_INPUT_TOKENS] == total
        assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == usage.cache_read_input_tokens
        assert attrs[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS] == (
            usage.cache_creation_input_tokens
        )
    assert (
        written_span.attributes[semconv.USAGE_INPUT_TOKENS]
        == (read_span.attributes[semconv.USAGE_INPUT_TOKENS])
    )


# errors -----------------------------------------------------------------------------------


def test_rate_limit_error(instrumented, client, span_exporter):
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="devserver-rate_limit", max_tokens=64, messages=_user("hi"))
    assert caught.value is client.made[-1]  # the SDK's own exception object, unchanged
    assert caught.value.status_code == 429
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"
    assert [e.name for e in span.events] == ["exception"]


def test_error_entering_stream_helper(instrumented, client, span_exporter):
    manager = client.messages.stream(
        model="devserver-overloaded", max_tokens=64, messages=_user("hi")
    )
    with pytest.raises(anthropic.OverloadedError) as caught, manager:
        pass
    assert caught.value is client.made[-1]
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "OverloadedError"


def test_mid_stream_error_event(instrumented, client, span_exporter):
    stream = client.messages.create(
        model="devserver-stream_error", max_tokens=64, messages=_user("hi"), stream=True
    )
    seen = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in stream:
            seen.append(event.type)
    assert seen and caught.value is client.made[-1]
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(caught.value).__qualname__
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "error"
    # The same through the stream helper.
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(
            model="devserver-stream_error", max_tokens=64, messages=_user("hi")
        ) as s,
    ):
        s.until_done()
    helper_span = span_exporter.get_finished_spans()[-1]
    assert helper_span.status.status_code is StatusCode.ERROR
    assert helper_span.attributes[semconv.LLMTAP_STREAM_END] == "error"


# raw-response modes -----------------------------------------------------------------------


def test_with_raw_response(instrumented, client, span_exporter):
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=_user("raw")
    )
    assert raw.headers["request-id"].startswith("req_")
    message = raw.parse()
    assert isinstance(message, anthropic.types.Message)
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_ID] == message.id
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == message.usage.output_tokens


def test_with_streaming_response(instrumented, client, span_exporter):
    with client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=64, messages=_user("streamed raw")
    ) as response:
        assert response.headers["request-id"].startswith("req_")
        message = response.parse()
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_ID] == message.id
    assert span.attributes[semconv.USAGE_INPUT_TOKENS] == message.usage.input_tokens
    with client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=64, messages=_user("streamed raw"), stream=True
    ) as response:
        kinds = [event.type for event in response.parse()]
    assert kinds[-1] == "message_stop"
    stream_span = span_exporter.get_finished_spans()[-1]
    assert stream_span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert stream_span.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0


# one span, propagation, uninstrument ------------------------------------------------------


def test_one_span_per_call_over_socket(instrumented, devserver, sdk_otel, span_exporter):
    client = anthropic.Anthropic(
        base_url=devserver.anthropic_base_url, api_key="k", max_retries=0, open_telemetry=sdk_otel
    )
    devserver.requests.clear()
    client.messages.create(model=MODEL, max_tokens=64, messages=_user("socket"))
    client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=_user("mine"),
        extra_headers={"traceparent": "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"},
    )
    client.messages.count_tokens(model=MODEL, messages=_user("count"))  # the SDK's, untouched
    client.close()
    spans = span_exporter.get_finished_spans()
    assert [(s.instrumentation_scope.name, s.name) for s in spans] == [
        (SCOPE, f"chat {MODEL}"),
        (SCOPE, f"chat {MODEL}"),
        (SDK_SCOPE, "anthropic.messages.count_tokens"),
    ]
    first, second, _ = devserver.requests.all()
    ctx = spans[0].get_span_context()
    assert first.headers["traceparent"].split("-")[1:3] == [
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
    ]
    assert second.headers["traceparent"] == (
        "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
    )  # the application's header wins


def test_propagation_off(instrumented, transport, tracer_provider, span_exporter):
    client = anthropic.Anthropic(
        api_key="k",
        base_url=IN_PROCESS_BASE_URL,
        http_client=httpx2.Client(transport=transport),
        open_telemetry={"tracer_provider": tracer_provider, "propagation": False},
    )
    client.messages.create(model=MODEL, max_tokens=64, messages=_user("quiet"))
    only_span(span_exporter)
    (request,) = transport.requests.all()
    assert "traceparent" not in request.headers


def test_sdk_tracing_disabled_still_propagates(instrumented, transport, span_exporter):
    client = anthropic.Anthropic(
        api_key="k",
        base_url=IN_PROCESS_BASE_URL,
        http_client=httpx2.Client(transport=transport),
        open_telemetry=False,  # no SDK spans; llmtap's span is the only one either way
    )
    client.messages.create(model=MODEL, max_tokens=64, messages=_user("no sdk spans"))
    span = only_span(span_exporter)
    (request,) = transport.requests.all()
    assert f"{span.get_span_context().span_id:016x}" in request.headers["traceparent"]


def test_uninstrument_restores(instrument_anthropic, client, span_exporter):
    originals = {
        (cls, name): vars(cls)[name]
        for module in (resource, beta_resource)
        for cls in (module.Messages, module.AsyncMessages)
        for name in ("create", "parse", "stream")
    }
    start_span = _base_client.start_api_call_span
    instrumentor = instrument_anthropic(capture="no_content")
    assert all(vars(cls)[name] is not fn for (cls, name), fn in originals.items())
    assert _base_client.start_api_call_span is not start_span
    instrumentor.uninstrument()
    assert all(vars(cls)[name] is fn for (cls, name), fn in originals.items())
    assert _base_client.start_api_call_span is start_span
    client.messages.create(model=MODEL, max_tokens=64, messages=_user("plain"))
    (span,) = span_exporter.get_finished_spans()
    assert span.instrumentation_scope.name == SDK_SCOPE  # only the SDK's own span now


def test_provider_names():
    vertex = anthropic.AnthropicVertex(region="us-east5", project_id="p", access_token="t")
    bedrock = anthropic.AnthropicBedrock(
        aws_region="us-east-1", aws_access_key="a", aws_secret_key="b"
    )
    assert _common.client_attributes(vertex.messages)[semconv.PROVIDER] == "gcp.vertex_ai"
    attrs = _common.client_attributes(bedrock.messages)
    assert attrs[semconv.PROVIDER] == "aws.bedrock"
    assert attrs[semconv.SERVER_ADDRESS] == "bedrock-runtime.us-east-1.amazonaws.com"
    assert attrs[semconv.SERVER_PORT] == 443


# content capture --------------------------------------------------------------------------


def _rich_request() -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 256,
        "system": [{"type": "text", "text": "Be terse."}, {"type": "text", "text": "Be kind."}],
        "tools": [TOOL, {"type": "web_search_20250305", "name": "web_search"}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look at these"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/a.png"},
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "A memo."},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
                    {"type": "redacted_thinking", "data": "c2VjcmV0"},
                    {"type": "text", "text": "Checking."},
                ],
            },
            {"role": "user", "content": "Go on then"},
        ],
    }


def test_capture_span_only_validates(instrument_anthropic, client, span_exporter, log_exporter):
    instrument_anthropic(capture="span_only")
    client.messages.create(**_rich_request())
    span = only_span(span_exporter)
    system = validate(span, semconv.SYSTEM_INSTRUCTIONS, "gen-ai-system-instructions.json")
    assert system == [
        {"type": "text", "content": "Be terse."},
        {"type": "text", "content": "Be kind."},
    ]
    msgs = validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    image, url, document = msgs[0]["parts"][1:]
    assert image["type"] == "blob" and image["mime_type"] == "image/png"
    assert image["modality"] == "image"  # content: omitted unless blobs are asked for
    assert url == {"type": "uri", "modality": "image", "uri": "https://example.com/a.png"}
    assert document == {"type": "text", "content": "A memo."}
    assert msgs[1]["parts"][:2] == [
        {"type": "reasoning", "content": "Hmm."},
        {"type": "reasoning", "content": "[redacted]"},
    ]
    assert msgs[2] == {"role": "user", "parts": [{"type": "text", "content": "Go on then"}]}
    tools = validate(span, semconv.TOOL_DEFINITIONS, "gen-ai-tool-definitions.json")
    assert tools[1] == {"type": "web_search_20250305", "name": "web_search"}
    validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert log_exporter.get_finished_logs() == ()


def test_capture_blobs(instrument_anthropic, client, span_exporter):
    instrument_anthropic(capture="span_only", limits=_limits(capture_blobs=True))
    client.messages.create(**_rich_request())
    image = content(only_span(span_exporter), semconv.INPUT_MESSAGES)[0]["parts"][1]
    assert image == {"type": "blob", "modality": "image", "content": PNG, "mime_type": "image/png"}


def _limits(**fields: Any) -> Any:
    from llmtap.config import ContentLimits

    return ContentLimits(**fields)


def test_capture_no_content(instrument_anthropic, client, span_exporter, log_exporter):
    instrument_anthropic(capture="no_content")
    client.messages.create(**_rich_request())
    with client.messages.stream(**_rich_request()) as s:
        s.until_done()
    for span in span_exporter.get_finished_spans():
        assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
        for key in (
            semconv.INPUT_MESSAGES,
            semconv.OUTPUT_MESSAGES,
            semconv.SYSTEM_INSTRUCTIONS,
            semconv.TOOL_DEFINITIONS,
        ):
            assert key not in span.attributes
    assert log_exporter.get_finished_logs() == ()


def test_capture_event_only(instrument_anthropic, client, span_exporter, log_exporter):
    instrument_anthropic(capture=CaptureMode.EVENT_ONLY)
    client.messages.create(model=MODEL, max_tokens=64, messages=_user("event"))
    span = only_span(span_exporter)
    assert semconv.INPUT_MESSAGES not in span.attributes
    (record,) = log_exporter.get_finished_logs()
    assert record.log_record.event_name == semconv.EVENT_INFERENCE_DETAILS
    messages = json.loads(record.log_record.attributes[semconv.INPUT_MESSAGES])
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "event"}]}]
    assert record.log_record.span_id == span.get_span_context().span_id


def test_generator_messages_not_consumed(instrumented, client, span_exporter):
    message = client.messages.create(
        model=MODEL, max_tokens=64, messages=(m for m in _user("from a generator"))
    )
    assert "from a generator" in message.content[0].text
    msgs = content(only_span(span_exporter), semconv.INPUT_MESSAGES)
    assert msgs == [{"role": "user", "parts": [{"type": "text", "content": "from a generator"}]}]


# differential and metrics -----------------------------------------------------------------


def _calls(client: Any) -> list[Any]:
    request = {"model": MODEL, "max_tokens": 256, "messages": _user("Weather in Rome")}
    message = client.messages.create(**request, tools=[TOOL])
    events = [e.model_dump() for e in client.messages.create(**request, stream=True)]
    with client.messages.stream(**request) as s:
        helper_events = [e.model_dump() for e in s]
        final = s.get_final_message()
    return [message.model_dump(), events, helper_events, final.model_dump()]


def test_differential(instrument_anthropic, client, span_exporter):
    plain = _calls(client)
    instrument_anthropic(capture="span_and_event")
    assert _calls(client) == plain
    assert [s.instrumentation_scope.name for s in span_exporter.get_finished_spans()][-3:] == [
        SCOPE
    ] * 3


def test_metrics(instrumented, client, metric_reader):
    message = client.messages.create(model=MODEL, max_tokens=64, messages=_user("metrics"))
    tokens = metric_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
    by_type = {p.attributes[semconv.TOKEN_TYPE]: p for p in tokens}
    assert by_type["input"].sum == message.usage.input_tokens and by_type["input"].count == 1
    assert by_type["output"].sum == message.usage.output_tokens
    for point in tokens:
        assert point.attributes[semconv.PROVIDER] == "anthropic"
        assert point.attributes[semconv.RESPONSE_MODEL] == MODEL
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 1 and duration.attributes[semconv.OPERATION] == "chat"
    assert semconv.ERROR_TYPE not in duration.attributes
