"""Groq instrumentation against the real ``groq`` SDK talking to the devserver (nothing mocked):
sync, async, streams (usage from ``x_groq.usage``), tools, JSON mode, embeddings, errors,
content capture modes, metrics, and what the app receives (the same with and without llmtap).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import groq
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv
from llmtap.config import CaptureMode

from .test_openai_support import (
    WEATHER_PARAMS,
    WEATHER_TOOL,
    attrs,
    content,
    data_points,
    dump,
    finished,
    only_span,
    sync_client,
    user,
)

TARGET = "llmtap.instrumentation.groq:GroqInstrumentor"
MODEL = "llama-3.3-70b-versatile"
EMBED_MODEL = "nomic-embed-text-v1_5"


@pytest.fixture
def client(devserver: Any) -> Iterator[groq.Groq]:
    made = groq.Groq(base_url=devserver.base_url, api_key="test-key", max_retries=0)
    yield made
    made.close()


@pytest.fixture
async def aclient(devserver: Any) -> AsyncIterator[groq.AsyncGroq]:
    made = groq.AsyncGroq(base_url=devserver.base_url, api_key="test-key", max_retries=0)
    yield made
    await made.close()


@pytest.fixture
def instrument_groq(instrument: Any) -> Any:
    def go(**kwargs: Any) -> Any:
        return instrument(TARGET, **kwargs)

    return go


def _no_openai_attributes(a: dict[str, Any]) -> None:
    assert not [key for key in a if key.startswith("openai.")]


def _stream_dump(chunks: list[Any]) -> list[Any]:
    """Chunks as data, without what differs between two identical calls (clock, request id)."""
    out = []
    for chunk in chunks:
        data = dump(chunk)
        if data.get("x_groq"):
            data["x_groq"].pop("id", None)
        out.append(data)
    return out


# chat ---------------------------------------------------------------------------------------


def test_create_span(instrument_groq, client, span_exporter, devserver) -> None:
    instrument_groq()
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be terse."}, *user("Hi Groq")],
        temperature=0.5,
        top_p=0.9,
        max_completion_tokens=64,
        seed=3,
        stop=["END"],
        service_tier="on_demand",
    )
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "groq"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == devserver.port
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.seed"] == 3
    assert list(a["gen_ai.request.stop_sequences"]) == ["END"]
    assert a["gen_ai.response.id"] == completion.id
    assert a["gen_ai.response.model"] == MODEL
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens > 0
    _no_openai_attributes(a)
    # content (span_only by default here)
    assert content(span, semconv.INPUT_MESSAGES) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Hi Groq"}]},
    ]
    assert content(span, semconv.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": completion.choices[0].message.content}],
            "finish_reason": "stop",
        }
    ]


async def test_async_create(instrument_groq, aclient, span_exporter) -> None:
    instrument_groq()
    completion = await aclient.chat.completions.create(model=MODEL, messages=user("async"))
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.provider.name"] == "groq"
    assert a["gen_ai.response.id"] == completion.id
    assert a["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens


def test_reasoning_tokens(instrument_groq, client, span_exporter) -> None:
    instrument_groq()
    completion = client.chat.completions.create(
        model="openai/gpt-oss-20b",
        messages=user("think"),
        extra_body={"reasoning_effort": "high"},  # older SDKs have no such parameter
    )
    a = attrs(only_span(span_exporter))
    # a model in newer SDKs, an untyped dict in older ones: both are read
    assert completion.usage.model_dump()["completion_tokens_details"]["reasoning_tokens"] == 32
    assert a["gen_ai.usage.reasoning.output_tokens"] == 32


def test_json_mode(instrument_groq, client, span_exporter) -> None:
    instrument_groq()
    completion = client.chat.completions.create(
        model=MODEL, messages=user("json please"), response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content)
    assert attrs(only_span(span_exporter))["gen_ai.output.type"] == "json"


def test_tools(instrument_groq, client, span_exporter) -> None:
    instrument_groq()
    completion = client.chat.completions.create(
        model=MODEL, messages=user("Weather in Paris?"), tools=[WEATHER_TOOL]
    )
    call = completion.choices[0].message.tool_calls[0]
    span = only_span(span_exporter)
    assert list(span.attributes["gen_ai.response.finish_reasons"]) == ["tool_calls"]
    assert content(span, semconv.TOOL_DEFINITIONS) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": WEATHER_PARAMS,
        }
    ]
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["finish_reason"] == "tool_call"
    assert message["parts"] == [
        {
            "type": "tool_call",
            "id": call.id,
            "name": "get_weather",
            "arguments": json.loads(call.function.arguments),
        }
    ]


# streams ------------------------------------------------------------------------------------


def test_stream_usage_from_x_groq(instrument_groq, client, span_exporter, devserver) -> None:
    instrument_groq()
    chunks = list(client.chat.completions.create(model=MODEL, messages=user("s"), stream=True))
    assert chunks[-1].x_groq.usage is not None and chunks[-1].usage is None
    span = only_span(span_exporter)
    a = attrs(span)
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.id"] == chunks[0].id
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["gen_ai.usage.input_tokens"] == chunks[-1].x_groq.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == chunks[-1].x_groq.usage.completion_tokens
    assert "llmtap.usage.estimated" not in a
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    _no_openai_attributes(a)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content(span, semconv.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]
    # llmtap asked the server for nothing more than the app did
    sent = json.loads(devserver.requests.all()[-1].body)
    assert sent["stream"] is True and "stream_options" not in sent


async def test_async_stream_with_include_usage(instrument_groq, aclient, span_exporter) -> None:
    instrument_groq()
    # the SDK has no stream_options parameter; the API takes it
    stream = await aclient.chat.completions.create(
        model=MODEL,
        messages=user("s"),
        stream=True,
        extra_body={"stream_options": {"include_usage": True}},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens


def test_stream_tool_call(instrument_groq, client, span_exporter) -> None:
    instrument_groq()
    stream = client.chat.completions.create(
        model=MODEL, messages=user("Weather in Rome?"), tools=[WEATHER_TOOL], stream=True
    )
    for _ in stream:
        pass
    (message,) = content(only_span(span_exporter), semconv.OUTPUT_MESSAGES)
    (part,) = message["parts"]
    assert part["type"] == "tool_call" and part["name"] == "get_weather"
    assert part["arguments"] == {"city": "Rome", "days": 42}


def test_stream_error_event(instrument_groq, client, span_exporter) -> None:
    instrument_groq()
    stream = client.chat.completions.create(
        model="devserver-stream_error", messages=user("s"), stream=True
    )
    with pytest.raises(groq.APIError) as caught:
        for _ in stream:
            pass
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(caught.value).__qualname__


def test_broken_stream(instrument_groq, client, span_exporter) -> None:
    instrument_groq()
    stream = client.chat.completions.create(
        model="devserver-broken_stream:2", messages=user("s"), stream=True
    )
    with pytest.raises(Exception) as caught:  # httpx's transport error, whatever its class
        for _ in stream:
            pass
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(caught.value).__qualname__


# embeddings ---------------------------------------------------------------------------------


def test_embeddings(instrument_groq, client, span_exporter) -> None:
    instrument_groq()
    result = client.embeddings.create(model=EMBED_MODEL, input=["a cat", "a dog"])
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"embeddings {EMBED_MODEL}"
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.provider.name"] == "groq"
    assert a["gen_ai.embeddings.dimension.count"] == len(result.data[0].embedding) == 768
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert "gen_ai.usage.output_tokens" not in a


async def test_async_embeddings(instrument_groq, aclient, span_exporter) -> None:
    instrument_groq()
    await aclient.embeddings.create(model=EMBED_MODEL, input="a cat")
    assert attrs(only_span(span_exporter))["gen_ai.operation.name"] == "embeddings"


# errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "error", "status"),
    [
        ("rate_limit", groq.RateLimitError, 429),
        ("auth", groq.AuthenticationError, 401),
        ("server_error", groq.InternalServerError, 500),
    ],
)
def test_status_errors(
    instrument_groq, client, span_exporter, metric_reader, scenario, error, status
) -> None:
    instrument_groq()
    with pytest.raises(error) as caught:
        client.chat.completions.create(model=f"devserver-{scenario}", messages=user())
    assert caught.value.status_code == status
    assert set(caught.value.body["error"]) >= {"message", "type"}  # Groq's error body
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == error.__name__
    (point,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == error.__name__
    assert point.attributes["gen_ai.provider.name"] == "groq"


# capture modes and metrics ------------------------------------------------------------------


def test_no_content(instrument_groq, client, span_exporter, log_exporter) -> None:
    instrument_groq(capture="no_content")
    client.chat.completions.create(model=MODEL, messages=user(), tools=[WEATHER_TOOL])
    list(client.chat.completions.create(model=MODEL, messages=user(), stream=True))
    spans = finished(span_exporter)
    assert len(spans) == 2
    for span in spans:
        assert span.attributes["gen_ai.usage.output_tokens"] > 0
        for key in (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.TOOL_DEFINITIONS):
            assert key not in span.attributes
    assert log_exporter.get_finished_logs() == ()


def test_event_only(instrument_groq, client, span_exporter, log_exporter) -> None:
    instrument_groq(capture=CaptureMode.EVENT_ONLY)
    client.chat.completions.create(model=MODEL, messages=user("event"))
    span = only_span(span_exporter)
    assert semconv.INPUT_MESSAGES not in span.attributes
    (record,) = log_exporter.get_finished_logs()
    assert record.log_record.event_name == semconv.EVENT_INFERENCE_DETAILS
    messages = json.loads(record.log_record.attributes[semconv.INPUT_MESSAGES])
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "event"}]}]


def test_metrics(instrument_groq, client, metric_reader) -> None:
    instrument_groq()
    completion = client.chat.completions.create(model=MODEL, messages=user())
    (duration,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.provider.name"] == "groq"
    assert duration.attributes["gen_ai.operation.name"] == "chat"
    assert duration.attributes["gen_ai.response.model"] == MODEL
    usage = {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in data_points(metric_reader, "gen_ai.client.token.usage")
    }
    assert usage == {
        "input": completion.usage.prompt_tokens,
        "output": completion.usage.completion_tokens,
    }


# what the app receives, and one span only -----------------------------------------------------


def test_differential(instrument, client, span_exporter) -> None:
    def calls() -> list[Any]:
        plain = client.chat.completions.create(model=MODEL, messages=user("same"))
        tools = client.chat.completions.create(
            model=MODEL, messages=user("Weather in Oslo?"), tools=[WEATHER_TOOL]
        )
        stream = client.chat.completions.create(model=MODEL, messages=user("same"), stream=True)
        embedded = client.embeddings.create(model=EMBED_MODEL, input="same")
        return [
            dump(plain, "x_groq"),
            dump(tools, "x_groq"),
            _stream_dump(list(stream)),
            dump(embedded),
        ]

    before = calls()
    instrument(TARGET)
    after = calls()
    assert after == before
    assert len(finished(span_exporter)) == 4


def test_raw_response(instrument_groq, client, span_exporter) -> None:
    instrument_groq()
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=user())
    assert raw.headers["x-groq-region"] == "dev"
    completion = raw.parse()
    assert attrs(only_span(span_exporter))["gen_ai.response.id"] == completion.id


def test_openai_instrumented_too_one_span(instrument, client, devserver, span_exporter) -> None:
    instrument("llmtap.instrumentation.openai:OpenAIInstrumentor")
    instrument(TARGET)
    client.chat.completions.create(model=MODEL, messages=user())
    assert attrs(only_span(span_exporter))["gen_ai.provider.name"] == "groq"
    span_exporter.clear()
    openai_client = sync_client(devserver)  # and the OpenAI SDK still gets its own span
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=user())
    openai_client.close()
    assert attrs(only_span(span_exporter))["gen_ai.provider.name"] == "openai"


def test_uninstrument(instrument_groq, client, span_exporter) -> None:
    instrumentor = instrument_groq()
    instrumentor.uninstrument()
    client.chat.completions.create(model=MODEL, messages=user())
    assert finished(span_exporter) == ()


def test_raw_accessor_built_before_instrument(instrument_groq, client, span_exporter) -> None:
    raw = client.chat.completions.with_raw_response  # cached by the SDK
    streaming = client.with_streaming_response.chat.completions
    instrument_groq()
    raw.create(model=MODEL, messages=user()).parse()
    with streaming.create(model=MODEL, messages=user()) as response:
        response.parse()
    spans = finished(span_exporter)
    assert [s.attributes["gen_ai.provider.name"] for s in spans] == ["groq", "groq"]
