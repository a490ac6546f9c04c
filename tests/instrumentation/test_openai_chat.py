"""Chat Completions (non-streaming): span identity, request/response attributes, usage,
content in the GenAI semconv shape, errors, ``parse`` and the raw-response modes."""

from __future__ import annotations

import json

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from .test_openai_support import (
    CONTENT_KEYS,
    MODEL,
    SCENARIO,
    WEATHER_PARAMS,
    WEATHER_TOOL,
    async_client,
    attrs,
    closed_port,
    content,
    data_points,
    dump,
    only_span,
    sync_client,
    user,
)


class City(BaseModel):
    name: str
    population: int


# request and response attributes --------------------------------------------------------


def test_create_span_identity_and_request_parameters(
    instrument_openai, span_exporter, client, devserver
) -> None:
    instrument_openai()
    completion = client.chat.completions.create(
        model=MODEL,
        messages=user(),
        temperature=1,
        top_p=0.5,
        seed=7,
        max_completion_tokens=64,
        stop=["END", "STOP"],
        n=2,
        frequency_penalty=0.25,
        presence_penalty=-0.5,
        response_format={"type": "json_object"},
    )
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope.name == "llmtap"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == MODEL
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == devserver.port
    assert a["openai.api.type"] == "chat_completions"
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.request.temperature"] == 1.0
    assert isinstance(a["gen_ai.request.temperature"], float)
    assert a["gen_ai.request.top_p"] == 0.5
    assert a["gen_ai.request.seed"] == 7
    assert a["gen_ai.request.max_tokens"] == 64
    assert list(a["gen_ai.request.stop_sequences"]) == ["END", "STOP"]
    assert a["gen_ai.request.choice.count"] == 2
    assert a["gen_ai.request.frequency_penalty"] == 0.25
    assert a["gen_ai.request.presence_penalty"] == -0.5
    assert a["gen_ai.output.type"] == "json"
    # response
    assert a["gen_ai.response.id"] == completion.id
    assert a["gen_ai.response.model"] == completion.model == MODEL
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop", "stop"]
    assert a["openai.response.system_fingerprint"] == completion.system_fingerprint
    assert a["openai.response.system_fingerprint"] == "fp_llmtap_dev"
    assert completion.usage is not None
    assert a["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    # nothing cached and no reasoning reported: no zero-valued detail attributes
    assert "gen_ai.usage.cache_read.input_tokens" not in a
    assert "gen_ai.usage.reasoning.output_tokens" not in a
    assert "llmtap.usage.estimated" not in a
    assert "gen_ai.response.time_to_first_chunk" not in a
    assert "error.type" not in a


def test_legacy_max_tokens_single_choice_and_text_format(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    completion = client.chat.completions.create(
        model=MODEL,
        messages=user("Tell me a long story about the city of Paris"),
        max_tokens=3,
        n=1,
        stop="END",
        response_format={"type": "text"},
    )
    a = attrs(only_span(span_exporter))
    assert completion.choices[0].finish_reason == "length"
    assert a["gen_ai.request.max_tokens"] == 3
    assert "gen_ai.request.choice.count" not in a  # n == 1 is the default
    assert list(a["gen_ai.request.stop_sequences"]) == ["END"]
    assert a["gen_ai.output.type"] == "text"
    assert list(a["gen_ai.response.finish_reasons"]) == ["length"]
    assert a["gen_ai.usage.output_tokens"] == 3
    for absent in ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty"):
        assert f"gen_ai.request.{absent}" not in a
    assert content(only_span(span_exporter), "gen_ai.output.messages")[0]["finish_reason"] == (
        "length"
    )


def test_max_completion_tokens_wins_over_max_tokens(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    client.chat.completions.create(
        model=MODEL, messages=user(), max_completion_tokens=40, max_tokens=10
    )
    assert attrs(only_span(span_exporter))["gen_ai.request.max_tokens"] == 40


def test_usage_reports_cache_read_and_reasoning_tokens(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    completion = client.chat.completions.create(
        model="gpt-5", messages=user(), reasoning_effort="high", prompt_cache_key="tenant-1"
    )
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    cached = usage.prompt_tokens_details.cached_tokens
    reasoning = usage.completion_tokens_details.reasoning_tokens
    assert cached and cached > 0 and reasoning == 32  # the server did report both
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert a["gen_ai.usage.cache_read.input_tokens"] == cached
    assert a["gen_ai.usage.reasoning.output_tokens"] == reasoning
    assert a["gen_ai.response.model"] == "gpt-5"


def test_service_tier(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    client.chat.completions.create(model=MODEL, messages=user(), service_tier="flex")
    client.chat.completions.create(model=MODEL, messages=user(), service_tier="auto")
    flex, auto = (attrs(s) for s in span_exporter.get_finished_spans())
    assert flex["openai.request.service_tier"] == "flex"
    assert flex["openai.response.service_tier"] == "flex"
    assert "openai.request.service_tier" not in auto  # "auto" is the default
    assert auto["openai.response.service_tier"] == "default"


async def test_async_create_records_the_same_attributes(
    instrument_openai, span_exporter, aclient, devserver
) -> None:
    instrument_openai()
    completion = await aclient.chat.completions.create(
        model=MODEL, messages=user(), temperature=0.2, seed=1
    )
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert a["server.port"] == devserver.port
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.request.seed"] == 1
    assert a["gen_ai.response.id"] == completion.id
    assert completion.usage is not None
    assert a["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]


# content ----------------------------------------------------------------------------------


def test_conversation_with_tool_round_trip_in_semconv_shape(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
    ]
    completion = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL]
    )
    span = only_span(span_exporter)
    assert content(span, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "id": "call_1",
                    "arguments": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "response": "18C and sunny", "id": "call_1"}],
        },
    ]
    assert content(span, "gen_ai.tool.definitions") == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": WEATHER_PARAMS,
        }
    ]
    text = completion.choices[0].message.content
    assert text and "18C and sunny" in text
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": text}],
            "finish_reason": "stop",
        }
    ]


def test_tool_call_in_output(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    completion = client.chat.completions.create(
        model=MODEL, messages=user("What is the weather in Paris?"), tools=[WEATHER_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    span = only_span(span_exporter)
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["tool_calls"]
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "id": call.id,
                    "arguments": json.loads(call.function.arguments),
                }
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 42}


def test_multimodal_and_developer_content_parts(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Answer in French."},
            {
                "role": "user",
                "name": "alice",
                "content": [
                    {"type": "text", "text": "What is on this picture?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
        ],
    )
    assert content(only_span(span_exporter), "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "Answer in French."}]},
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is on this picture?"},
                {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
            ],
            "name": "alice",
        },
    ]


def test_refusal_is_flagged_and_recorded(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    completion = client.chat.completions.create(model=MODEL, messages=user("Please refuse this"))
    refusal = completion.choices[0].message.refusal
    assert refusal
    span = only_span(span_exporter)
    assert attrs(span)["llmtap.response.refusal"] is True
    assert content(span, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "text", "content": refusal}
    ]


def test_no_content_mode_records_no_content(instrument_openai, span_exporter, client) -> None:
    instrument_openai(capture="no_content")
    client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "secret prompt"}, *user("secret question")],
        tools=[WEATHER_TOOL],
    )
    a = attrs(only_span(span_exporter))
    for key in CONTENT_KEYS:
        assert key not in a
    assert not [k for k in a if k.startswith("llmtap.content.")]
    assert not [k for k, v in a.items() if isinstance(v, str) and "secret" in v]
    assert a["gen_ai.usage.input_tokens"] > 0  # the rest is still recorded


# errors -----------------------------------------------------------------------------------


def _error_of(call) -> BaseException:
    with pytest.raises(openai.OpenAIError) as info:
        call()
    return info.value


@pytest.mark.parametrize(
    ("scenario", "error_class", "status"),
    [
        ("rate_limit", openai.RateLimitError, 429),
        ("server_error", openai.InternalServerError, 500),
    ],
)
def test_http_errors_reraise_the_sdk_exception(
    instrument_openai, span_exporter, metric_reader, devserver, scenario, error_class, status
) -> None:
    def call(client):
        return lambda: client.chat.completions.create(
            model=MODEL, messages=user(), extra_headers={SCENARIO: scenario}
        )

    with sync_client(devserver) as plain:
        expected = _error_of(call(plain))
    instrument_openai()
    with sync_client(devserver) as client:
        got = _error_of(call(client))
    assert type(got) is type(expected) is error_class
    assert str(got) == str(expected)
    assert got.status_code == expected.status_code == status
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.status.status_code is StatusCode.ERROR
    assert error_class.__name__ in (span.status.description or "")
    assert a["error.type"] == error_class.__name__
    assert a["gen_ai.request.model"] == MODEL
    assert "gen_ai.response.id" not in a
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"].endswith(error_class.__name__)
    (point,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == error_class.__name__
    assert point.attributes["gen_ai.operation.name"] == "chat"
    assert not data_points(metric_reader, "gen_ai.client.token.usage")


async def test_async_rate_limit(instrument_openai, span_exporter, devserver) -> None:
    plain = async_client(devserver)
    with pytest.raises(openai.RateLimitError) as expected:
        await plain.chat.completions.create(model="devserver-rate_limit", messages=user())
    await plain.close()
    instrument_openai()
    client = async_client(devserver)
    with pytest.raises(openai.RateLimitError) as got:
        await client.chat.completions.create(model="devserver-rate_limit", messages=user())
    await client.close()
    assert str(got.value) == str(expected.value)
    span = only_span(span_exporter)
    assert span.name == "chat devserver-rate_limit"
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "RateLimitError"


def test_connection_refused(instrument_openai, span_exporter, metric_reader) -> None:
    port = closed_port()

    def call():
        with openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0
        ) as client:
            client.chat.completions.create(model=MODEL, messages=user())

    expected = _error_of(call)
    instrument_openai()
    got = _error_of(call)
    assert type(got) is type(expected) is openai.APIConnectionError
    assert str(got) == str(expected)
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == "APIConnectionError"
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == port
    (point,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == "APIConnectionError"


# parse and raw-response modes -------------------------------------------------------------


def test_parse_with_pydantic_model_is_one_span(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    completion = client.chat.completions.parse(
        model=MODEL, messages=user("Describe Paris"), response_format=City
    )
    assert completion.choices[0].message.parsed == City(name="Paris", population=42)
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert a["gen_ai.output.type"] == "json"
    assert a["gen_ai.response.id"] == completion.id
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    out = content(span, "gen_ai.output.messages")[0]["parts"][0]["content"]
    assert json.loads(out) == {"name": "Paris", "population": 42}


async def test_async_parse_is_one_span(instrument_openai, span_exporter, aclient) -> None:
    instrument_openai()
    completion = await aclient.chat.completions.parse(
        model=MODEL, messages=user("Describe Paris"), response_format=City
    )
    assert completion.choices[0].message.parsed == City(name="Paris", population=42)
    assert attrs(only_span(span_exporter))["gen_ai.response.id"] == completion.id


def test_with_raw_response_create(instrument_openai, span_exporter, devserver) -> None:
    with sync_client(devserver) as plain:
        expected = plain.chat.completions.with_raw_response.create(model=MODEL, messages=user())
    instrument_openai()
    with sync_client(devserver) as client:
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=user())
        assert raw.headers["x-request-id"].startswith("req_")
        assert raw.status_code == 200
        completion = raw.parse()
    assert type(completion) is openai.types.chat.ChatCompletion
    assert dump(completion) == dump(expected.parse())
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.response.id"] == completion.id
    assert a["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens


def test_with_raw_response_stream_then_parse(instrument_openai, span_exporter, devserver) -> None:
    with sync_client(devserver) as plain:
        raw = plain.chat.completions.with_raw_response.create(
            model=MODEL, messages=user(), stream=True
        )
        expected = [dump(c) for c in raw.parse()]
    instrument_openai()
    with sync_client(devserver) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=user(), stream=True
        )
        assert raw.headers["content-type"].startswith("text/event-stream")
        stream = raw.parse()
        assert isinstance(stream, openai.Stream)
        got = [dump(c) for c in stream]
    assert got == expected
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.id"] == expected[0]["id"]
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]


def test_with_raw_response_parse_is_one_span(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    raw = client.chat.completions.with_raw_response.parse(
        model=MODEL, messages=user("Describe Paris"), response_format=City
    )
    assert raw.parse().choices[0].message.parsed == City(name="Paris", population=42)
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.output.type"] == "json"
    assert a["gen_ai.response.id"].startswith("chatcmpl-")


def test_with_streaming_response_create(instrument_openai, span_exporter, devserver) -> None:
    with (
        sync_client(devserver) as plain,
        plain.chat.completions.with_streaming_response.create(
            model=MODEL, messages=user()
        ) as response,
    ):
        expected = response.parse()
    instrument_openai()
    with sync_client(devserver) as client:
        with client.chat.completions.with_streaming_response.create(
            model=MODEL, messages=user()
        ) as response:
            assert response.headers["x-request-id"].startswith("req_")
            assert not span_exporter.get_finished_spans()  # not parsed yet
            completion = response.parse()
        assert dump(completion) == dump(expected)
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.response.id"] == completion.id
    assert a["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert "llmtap.stream.end" not in a


def test_with_streaming_response_stream(instrument_openai, span_exporter, devserver) -> None:
    with (
        sync_client(devserver) as plain,
        plain.chat.completions.with_streaming_response.create(
            model=MODEL, messages=user(), stream=True
        ) as response,
    ):
        expected = [dump(c) for c in response.parse()]
    instrument_openai()
    with (
        sync_client(devserver) as client,
        client.chat.completions.with_streaming_response.create(
            model=MODEL, messages=user(), stream=True
        ) as response,
    ):
        got = [dump(c) for c in response.parse()]
    assert got == expected
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.id"] == expected[0]["id"]


async def test_async_with_streaming_response(instrument_openai, span_exporter, devserver) -> None:
    plain = async_client(devserver)
    async with plain.chat.completions.with_streaming_response.create(
        model=MODEL, messages=user()
    ) as response:
        expected = await response.parse()
    await plain.close()
    instrument_openai()
    client = async_client(devserver)
    async with client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=user()
    ) as response:
        completion = await response.parse()
    await client.close()
    assert dump(completion) == dump(expected)
    assert attrs(only_span(span_exporter))["gen_ai.response.id"] == completion.id


async def test_async_with_raw_response_create(instrument_openai, span_exporter, devserver) -> None:
    instrument_openai()
    client = async_client(devserver)
    raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=user())
    completion = raw.parse()
    await client.close()
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.response.id"] == completion.id
    assert a["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
