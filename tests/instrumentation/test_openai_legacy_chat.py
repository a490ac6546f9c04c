"""Chat Completions as recorded traffic still has it: the legacy ``functions`` /
``function_call`` fields and ``role: function`` messages, and choices stopped by the content
filter (with an empty message, or none at all), streamed and not."""

from __future__ import annotations

import json

import pytest

from .test_openai_support import (
    MODEL,
    WEATHER_PARAMS,
    WEATHER_TOOL,
    attrs,
    content,
    only_span,
    user,
)

WEATHER_FUNCTION = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": WEATHER_PARAMS,
}
TIME_FUNCTION = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}
WEATHER_DEFINITION = {"type": "function", **WEATHER_FUNCTION}


# legacy functions ---------------------------------------------------------------------------


def test_functions_are_tool_definitions_and_function_call_is_a_tool_call(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    completion = client.chat.completions.create(
        model=MODEL,
        messages=user("What is the weather in Paris?"),
        functions=[WEATHER_FUNCTION, TIME_FUNCTION],
        function_call="auto",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "function_call"
    call = choice.message.function_call
    assert call is not None and call.name == "get_weather"
    span = only_span(span_exporter)
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["function_call"]
    assert content(span, "gen_ai.tool.definitions") == [
        WEATHER_DEFINITION,
        {"type": "function", "name": "get_time", "parameters": TIME_FUNCTION["parameters"]},
    ]
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "arguments": json.loads(call.arguments),
                }
            ],
            "finish_reason": "tool_call",
        }
    ]


def test_tools_and_functions_together_are_all_defined(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    client.chat.completions.create(
        model=MODEL,
        messages=user("What time is it?"),
        tools=[WEATHER_TOOL],
        functions=[TIME_FUNCTION],
    )
    names = [d["name"] for d in content(only_span(span_exporter), "gen_ai.tool.definitions")]
    assert names == ["get_weather", "get_time"]


def test_function_round_trip_in_the_input(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    messages = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 1}'},
        },
        {"role": "function", "name": "get_weather", "content": "18C and sunny"},
    ]
    completion = client.chat.completions.create(
        model=MODEL, messages=messages, functions=[WEATHER_FUNCTION]
    )
    text = completion.choices[0].message.content
    assert text and "18C and sunny" in text
    span = only_span(span_exporter)
    assert content(span, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "arguments": {"city": "Paris", "days": 1},
                }
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "response": "18C and sunny"}],
            "name": "get_weather",
        },
    ]
    assert content(span, "gen_ai.output.messages")[0]["finish_reason"] == "stop"


def test_streamed_function_call_deltas_are_assembled(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=user("What is the weather in Paris?"),
            functions=[WEATHER_FUNCTION],
            function_call={"name": "get_weather"},
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    fragments = [
        c.choices[0].delta.function_call.arguments
        for c in chunks
        if c.choices and c.choices[0].delta.function_call
    ]
    assert len([f for f in fragments if f]) > 1  # the arguments really came in pieces
    span = only_span(span_exporter)
    a = attrs(span)
    assert list(a["gen_ai.response.finish_reasons"]) == ["function_call"]
    assert a["gen_ai.usage.output_tokens"] > 0
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "arguments": json.loads("".join(fragments)),
                }
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert content(span, "gen_ai.tool.definitions") == [WEATHER_DEFINITION]


def test_streamed_function_call_is_counted_in_the_estimate(
    instrument_openai, span_exporter, tracer_provider, client
) -> None:
    instrument_openai()
    list(
        client.chat.completions.create(
            model=MODEL,
            messages=user("What is the weather in Paris?"),
            functions=[WEATHER_FUNCTION],
            stream=True,
        )
    )
    tracer_provider.force_flush()
    a = attrs(only_span(span_exporter))
    assert a["llmtap.usage.estimated"] is True
    assert a["gen_ai.usage.output_tokens"] > 0  # the function's name and arguments


async def test_async_function_call(
    instrument_openai, span_exporter, tracer_provider, aclient
) -> None:
    instrument_openai()
    completion = await aclient.chat.completions.create(
        model=MODEL, messages=user("Weather in Paris?"), functions=[WEATHER_FUNCTION]
    )
    stream = await aclient.chat.completions.create(
        model=MODEL,
        messages=user("Weather in Paris?"),
        functions=[WEATHER_FUNCTION],
        stream=True,
    )
    async for _ in stream:
        pass
    tracer_provider.force_flush()  # the stream reported no usage: estimated off the app's thread
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 2
    arguments = json.loads(completion.choices[0].message.function_call.arguments)
    for span in spans:
        (message,) = content(span, "gen_ai.output.messages")
        assert message["parts"] == [
            {"type": "tool_call", "name": "get_weather", "arguments": arguments}
        ]
        assert message["finish_reason"] == "tool_call"


# content filter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "has_message"),
    [("Please filter this", True), ("Please filter everything", False)],
    ids=["empty-message", "no-message"],
)
def test_filtered_choice_still_has_its_output_message(
    instrument_openai, span_exporter, client, prompt: str, has_message: bool
) -> None:
    instrument_openai()
    completion = client.chat.completions.create(model=MODEL, messages=user(prompt))
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert (choice.message is not None) is has_message
    span = only_span(span_exporter)
    a = attrs(span)
    assert list(a["gen_ai.response.finish_reasons"]) == ["content_filter"]
    assert a["gen_ai.response.id"] == completion.id
    assert "error.type" not in a
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [], "finish_reason": "content_filter"}
    ]


def test_filtered_choice_among_others(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    completion = client.chat.completions.create(
        model=MODEL, messages=user("Please filter everything"), n=2
    )
    assert [c.finish_reason for c in completion.choices] == ["content_filter"] * 2
    span = only_span(span_exporter)
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["content_filter"] * 2
    assert [m["finish_reason"] for m in content(span, "gen_ai.output.messages")] == [
        "content_filter"
    ] * 2


@pytest.mark.parametrize(
    "prompt", ["Please filter this", "Please filter everything"], ids=["empty-delta", "no-delta"]
)
def test_filtered_stream(instrument_openai, span_exporter, client, prompt: str) -> None:
    instrument_openai()
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=user(prompt),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-2].choices[0].finish_reason == "content_filter"
    span = only_span(span_exporter)
    a = attrs(span)
    assert a["llmtap.stream.end"] == "completed"
    assert list(a["gen_ai.response.finish_reasons"]) == ["content_filter"]
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [], "finish_reason": "content_filter"}
    ]


def test_filtered_choice_without_content_capture(instrument_openai, span_exporter, client) -> None:
    instrument_openai(capture="no_content")
    client.chat.completions.create(model=MODEL, messages=user("Please filter everything"))
    a = attrs(only_span(span_exporter))
    assert list(a["gen_ai.response.finish_reasons"]) == ["content_filter"]
    assert "gen_ai.output.messages" not in a
