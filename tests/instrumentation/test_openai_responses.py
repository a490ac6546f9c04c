"""OpenAI Responses API: create, streams, the stream() helper, parse, tools and reasoning."""

from __future__ import annotations

import gc
import json
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

import llmtap

from .test_openai_support import (
    MODEL,
    RESPONSES_WEATHER_TOOL,
    SCENARIO,
    WEATHER_PARAMS,
    attrs,
    content,
    data_points,
    dump,
    only_span,
    sync_client,
)


class City(BaseModel):
    name: str
    population: int


def _usage_attrs(usage: Any) -> dict[str, int]:
    out = {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
    }
    if usage.input_tokens_details.cached_tokens:
        out["gen_ai.usage.cache_read.input_tokens"] = usage.input_tokens_details.cached_tokens
    if usage.output_tokens_details.reasoning_tokens:
        out["gen_ai.usage.reasoning.output_tokens"] = usage.output_tokens_details.reasoning_tokens
    return out


def _usage_of(a: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in a.items() if k.startswith("gen_ai.usage.")}


def test_create_text_with_instructions(instrument_openai, span_exporter, client, devserver):
    instrument_openai()
    response = client.responses.create(
        model=MODEL,
        input="Tell me about Paris",
        instructions="Answer like a pirate.",
        temperature=0.3,
        top_p=0.9,
        max_output_tokens=100,
    )
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["openai.api.type"] == "responses"
    assert a["server.port"] == devserver.port
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.request.temperature"] == 0.3
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.max_tokens"] == 100
    assert a["gen_ai.response.id"] == response.id
    assert a["gen_ai.response.model"] == response.model
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert _usage_of(a) == _usage_attrs(response.usage)
    assert content(span, "gen_ai.system_instructions") == [
        {"type": "text", "content": "Answer like a pirate."}
    ]
    assert content(span, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "Tell me about Paris"}]}
    ]
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": response.output_text}],
            "finish_reason": "stop",
        }
    ]


def test_function_call_output_is_a_tool_call(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    response = client.responses.create(
        model=MODEL, input="What is the weather in Paris?", tools=[RESPONSES_WEATHER_TOOL]
    )
    (call,) = [item for item in response.output if item.type == "function_call"]
    span = only_span(span_exporter)
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["tool_call"]
    assert content(span, "gen_ai.tool.definitions") == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": WEATHER_PARAMS,
        }
    ]
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "id": call.call_id,
                    "arguments": json.loads(call.arguments),
                }
            ],
            "finish_reason": "tool_call",
        }
    ]


def test_function_call_output_input_is_a_tool_message(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    response = client.responses.create(
        model=MODEL,
        input=[
            {"role": "developer", "content": "Be short."},
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "type": "function_call",
                "call_id": "call_9",
                "name": "get_weather",
                "arguments": '{"city": "Paris", "days": 1}',
            },
            {"type": "function_call_output", "call_id": "call_9", "output": "rainy"},
        ],
        tools=[RESPONSES_WEATHER_TOOL],
    )
    span = only_span(span_exporter)
    assert content(span, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "Be short."}]},
        {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "id": "call_9",
                    "arguments": {"city": "Paris", "days": 1},
                }
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "response": "rainy", "id": "call_9"}],
        },
    ]
    assert "rainy" in response.output_text
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["stop"]


def test_reasoning_item_and_detailed_usage(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    response = client.responses.create(
        model="gpt-5",
        input="Tell me about Paris",
        reasoning={"effort": "low", "summary": "auto"},
        prompt_cache_key="tenant-1",
    )
    reasoning = next(item for item in response.output if item.type == "reasoning")
    summary = reasoning.summary[0].text
    assert summary
    usage = response.usage
    assert usage.input_tokens_details.cached_tokens > 0
    assert usage.output_tokens_details.reasoning_tokens == 8
    span = only_span(span_exporter)
    a = attrs(span)
    assert _usage_of(a) == _usage_attrs(usage)
    assert a["gen_ai.usage.cache_read.input_tokens"] == usage.input_tokens_details.cached_tokens
    assert a["gen_ai.usage.reasoning.output_tokens"] == 8
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": summary},
                {"type": "text", "content": response.output_text},
            ],
            "finish_reason": "stop",
        }
    ]


def test_incomplete_response_is_length(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    response = client.responses.create(
        model=MODEL, input="Tell me about Paris", max_output_tokens=3
    )
    assert response.status == "incomplete"
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.UNSET
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["length"]
    assert attrs(span)["gen_ai.usage.output_tokens"] == 3


def test_refusal_is_flagged(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    response = client.responses.create(model=MODEL, input="Please refuse to answer")
    refusal = response.output[0].content[0]
    assert refusal.type == "refusal"
    span = only_span(span_exporter)
    assert attrs(span)["llmtap.response.refusal"] is True
    assert content(span, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "text", "content": refusal.refusal}
    ]


def test_parse_with_text_format(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    response = client.responses.parse(model=MODEL, input="Describe Paris", text_format=City)
    assert response.output_parsed == City(name="Paris", population=42)
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.output.type"] == "json"
    assert a["gen_ai.response.id"] == response.id


def test_text_format_dict_sets_output_type(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    client.responses.create(
        model=MODEL, input="Describe Paris", text={"format": {"type": "json_object"}}
    )
    assert attrs(only_span(span_exporter))["gen_ai.output.type"] == "json"


def test_conversation_id(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    client.responses.create(model=MODEL, input="Hi", conversation="conv_123")
    client.responses.create(model=MODEL, input="Hi", conversation={"id": "conv_456"})
    ids = [attrs(s)["gen_ai.conversation.id"] for s in span_exporter.get_finished_spans()]
    assert ids == ["conv_123", "conv_456"]


def test_request_conversation_wins_over_session_default(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    with llmtap.context(session_id="s-1"):
        client.responses.create(model=MODEL, input="Hi", conversation="conv_123")
    a = attrs(only_span(span_exporter))
    assert a["session.id"] == "s-1"
    assert a["gen_ai.conversation.id"] == "conv_123"


def test_rate_limit(instrument_openai, span_exporter, devserver) -> None:
    with sync_client(devserver) as plain, pytest.raises(openai.RateLimitError) as expected:
        plain.responses.create(model=MODEL, input="hi", extra_headers={SCENARIO: "rate_limit"})
    instrument_openai()
    with sync_client(devserver) as client, pytest.raises(openai.RateLimitError) as got:
        client.responses.create(model=MODEL, input="hi", extra_headers={SCENARIO: "rate_limit"})
    assert str(got.value) == str(expected.value)
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "RateLimitError"


# streams ------------------------------------------------------------------------------------


def test_stream_iterated(instrument_openai, span_exporter, metric_reader, devserver) -> None:
    with sync_client(devserver) as plain:
        expected = [e.type for e in plain.responses.create(model=MODEL, input="Hi", stream=True)]
    instrument_openai()
    with sync_client(devserver) as client:
        stream = client.responses.create(model=MODEL, input="Hi", stream=True)
        assert isinstance(stream, openai.Stream)
        events = list(stream)
    assert [e.type for e in events] == expected
    final = events[-1].response
    assert events[-1].type == "response.completed"
    span = only_span(span_exporter)
    a = attrs(span)
    assert a["gen_ai.request.stream"] is True
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.id"] == final.id
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert _usage_of(a) == _usage_attrs(final.usage)
    assert "llmtap.usage.estimated" not in a
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert content(span, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "text", "content": final.output_text}
    ]
    (point,) = data_points(metric_reader, "gen_ai.client.operation.time_per_output_chunk")
    assert point.count == len(events) - 1


def test_stream_with_reasoning_and_tool_call(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    events = list(
        client.responses.create(
            model="gpt-5",
            input="Weather in Paris?",
            reasoning={"effort": "low", "summary": "auto"},
            tools=[RESPONSES_WEATHER_TOOL],
            stream=True,
        )
    )
    final = events[-1].response
    reasoning = next(i for i in final.output if i.type == "reasoning")
    call = next(i for i in final.output if i.type == "function_call")
    span = only_span(span_exporter)
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["tool_call"]
    assert attrs(span)["gen_ai.usage.reasoning.output_tokens"] == 8
    assert content(span, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "reasoning", "content": reasoning.summary[0].text},
        {
            "type": "tool_call",
            "name": "get_weather",
            "id": call.call_id,
            "arguments": json.loads(call.arguments),
        },
    ]


def test_stream_error_event_marks_the_span(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    events = list(
        client.responses.create(
            model=MODEL, input="Hi", stream=True, extra_headers={SCENARIO: "stream_error"}
        )
    )
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == "server_error"
    assert list(a["gen_ai.response.finish_reasons"]) == ["error"]


def test_stream_abandoned(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    stream = client.responses.create(model=MODEL, input="Hi", stream=True)
    next(stream)
    del stream
    gc.collect()
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "abandoned"
    assert a["gen_ai.response.id"].startswith("resp_")  # from response.created


def test_stream_helper_final_response(instrument_openai, span_exporter, devserver) -> None:
    def run(client: openai.OpenAI) -> tuple[list[str], Any]:
        with client.responses.stream(model=MODEL, input="Tell me about Paris") as stream:
            return [e.type for e in stream], stream.get_final_response()

    with sync_client(devserver) as plain:
        expected_events, expected = run(plain)
    instrument_openai()
    with sync_client(devserver) as client:
        events, final = run(client)
    assert events == expected_events
    assert dump(final) == dump(expected)
    span = only_span(span_exporter)
    a = attrs(span)
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.id"] == final.id
    assert _usage_of(a) == _usage_attrs(final.usage)
    assert content(span, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "text", "content": final.output_text}
    ]


def test_stream_helper_early_exit(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    with client.responses.stream(model=MODEL, input="Hi") as stream:
        for _ in stream:
            break
    assert attrs(only_span(span_exporter))["llmtap.stream.end"] == "closed"


def test_beta_responses_create(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    response = client.beta.responses.create(model=MODEL, input="Tell me about Paris")
    a = attrs(only_span(span_exporter))
    assert a["openai.api.type"] == "responses"
    assert a["gen_ai.response.id"] == response.id


# async --------------------------------------------------------------------------------------


async def test_async_create(instrument_openai, span_exporter, aclient) -> None:
    instrument_openai()
    response = await aclient.responses.create(
        model=MODEL, input="Tell me about Paris", instructions="Be brief."
    )
    span = only_span(span_exporter)
    assert attrs(span)["gen_ai.response.id"] == response.id
    assert _usage_of(attrs(span)) == _usage_attrs(response.usage)
    assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]


async def test_async_stream_and_helper(instrument_openai, span_exporter, aclient) -> None:
    instrument_openai()
    events = [e async for e in await aclient.responses.create(model=MODEL, input="Hi", stream=True)]
    async with aclient.responses.stream(model=MODEL, input="Hi") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    first, second = span_exporter.get_finished_spans()
    assert attrs(first)["gen_ai.response.id"] == events[-1].response.id
    assert attrs(second)["gen_ai.response.id"] == final.id
    assert attrs(first)["llmtap.stream.end"] == attrs(second)["llmtap.stream.end"] == "completed"


async def test_async_parse(instrument_openai, span_exporter, aclient) -> None:
    instrument_openai()
    response = await aclient.responses.parse(model=MODEL, input="Describe Paris", text_format=City)
    assert response.output_parsed == City(name="Paris", population=42)
    assert attrs(only_span(span_exporter))["gen_ai.output.type"] == "json"
