from __future__ import annotations

from typing import Any

import pytest

from .conftest import Backend

MODEL = "claude-sonnet-4-6"
TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
}


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_create_text_and_headers(backend: Backend) -> None:
    client = backend.anthropic()
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=256, messages=_user("Hi Claude")
    )
    message = raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message.model == MODEL and message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert (
        message.content[0].text
        == 'Hello from the llmtap devserver! You said: "Hi Claude". This is a deterministic reply.'
    )
    assert message.usage.output_tokens == 14
    assert (
        message.usage.cache_read_input_tokens == 0
        and message.usage.cache_creation_input_tokens == 0
    )


def test_stream_raw_events(backend: Backend) -> None:
    client = backend.anthropic()
    events = list(
        client.messages.create(model=MODEL, max_tokens=256, messages=_user("stream"), stream=True)
    )
    types = [event.type for event in events]
    assert types[0] == "message_start" and types[1] == "content_block_start"
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text.startswith("Hello from the llmtap devserver!")
    delta = events[-2]
    assert delta.type == "message_delta" and delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == len(text.split())


def test_stream_helper_final_message(backend: Backend) -> None:
    client = backend.anthropic()
    with client.messages.stream(model=MODEL, max_tokens=256, messages=_user("helper")) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == final.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == len(pieces)


def test_thinking(backend: Backend) -> None:
    client = backend.anthropic()
    thinking = {"type": "enabled", "budget_tokens": 1024}
    message = client.messages.create(
        model=MODEL, max_tokens=2048, messages=_user("Ponder Venus"), thinking=thinking
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    block = message.content[0]
    assert block.type == "thinking" and "Ponder Venus" in block.thinking and block.signature
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens > 0
    with client.messages.stream(
        model=MODEL, max_tokens=2048, messages=_user("Ponder Venus"), thinking=thinking
    ) as s:
        kinds = [e.delta.type for e in s if e.type == "content_block_delta"]
        final = s.get_final_message()
    assert "thinking_delta" in kinds and "signature_delta" in kinds
    assert final.content[0].type == "thinking"
    assert (
        final.content[0].thinking == block.thinking
        and final.content[0].signature == block.signature
    )


def test_tool_use_and_result(backend: Backend) -> None:
    client = backend.anthropic()
    messages = _user("What is the weather in Paris?")
    message = client.messages.create(model=MODEL, max_tokens=512, messages=messages, tools=[TOOL])
    assert message.stop_reason == "tool_use"
    tool_use = message.content[-1]
    assert tool_use.type == "tool_use" and tool_use.name == "get_weather"
    assert tool_use.input == {"city": "Paris", "unit": "c"}
    follow_up = [
        *messages,
        {
            "role": "assistant",
            "content": [b.model_dump(exclude_none=True) for b in message.content],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": "Rainy, 12C"}
            ],
        },
    ]
    answer = client.messages.create(model=MODEL, max_tokens=512, messages=follow_up, tools=[TOOL])
    assert answer.stop_reason == "end_turn"
    assert "Rainy, 12C" in answer.content[0].text  # type: ignore[union-attr]


def test_tool_use_streamed(backend: Backend) -> None:
    client = backend.anthropic()
    with client.messages.stream(
        model=MODEL, max_tokens=512, messages=_user("Weather in Oslo"), tools=[TOOL]
    ) as s:
        partials = [
            e.delta.partial_json
            for e in s
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        final = s.get_final_message()
    assert len([p for p in partials if p]) >= 3
    assert final.stop_reason == "tool_use"
    assert final.content[-1].type == "tool_use" and final.content[-1].input == {
        "city": "Oslo",
        "unit": "c",
    }


def test_cache_tokens(backend: Backend) -> None:
    client = backend.anthropic()
    system = [
        {
            "type": "text",
            "text": "You are a helpful assistant. " * 20,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    message = client.messages.create(
        model=MODEL, max_tokens=64, system=system, messages=_user("hello")
    )
    usage = message.usage
    assert usage.cache_read_input_tokens == 120
    assert usage.cache_creation_input_tokens == 0
    assert usage.input_tokens == 4
    written = client.messages.create(
        model=MODEL,
        max_tokens=64,
        system=system,
        messages=_user("hello"),
        extra_headers={"x-devserver-scenario": "cache_write"},
    )
    assert (
        written.usage.cache_creation_input_tokens == 120
        and written.usage.cache_read_input_tokens == 0
    )
    with client.messages.stream(
        model=MODEL, max_tokens=64, system=system, messages=_user("hello")
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens == 120 and final.usage.input_tokens == 4


def test_max_tokens_and_refusal(backend: Backend) -> None:
    client = backend.anthropic()
    short = client.messages.create(model=MODEL, max_tokens=2, messages=_user("hello"))
    assert short.stop_reason == "max_tokens" and short.content[0].text == "Hello from "  # type: ignore[union-attr]
    refused = client.messages.create(model=MODEL, max_tokens=100, messages=_user("Please refuse"))
    assert refused.stop_reason == "refusal"


def test_count_tokens(backend: Backend) -> None:
    counted = backend.anthropic().messages.count_tokens(
        model=MODEL, messages=_user("one two three")
    )
    assert counted.input_tokens == 6


@pytest.mark.asyncio
async def test_async_create_and_stream(backend: Backend) -> None:
    async with backend.async_anthropic() as client:
        message = await client.messages.create(
            model=MODEL, max_tokens=128, messages=_user("async hi")
        )
        async with client.messages.stream(
            model=MODEL, max_tokens=128, messages=_user("async hi")
        ) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
    assert message.content[0].text == text == final.content[0].text  # type: ignore[union-attr]
