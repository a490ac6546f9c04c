from __future__ import annotations

import asyncio
import json

import openai
import pytest
from pydantic import BaseModel

from .conftest import Backend

MODEL = "gpt-4o-mini"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


class CityInfo(BaseModel):
    name: str
    population: int
    capital: bool


def test_create_returns_deterministic_text_and_usage(backend: Backend) -> None:
    client = backend.openai()
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=_user("Tell me about Paris please")
    )
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["openai-processing-ms"]) >= 1
    assert completion.model == MODEL
    assert completion.id.startswith("chatcmpl-")
    assert completion.system_fingerprint == "fp_llmtap_dev"
    assert completion.service_tier == "default"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert 'You said: "Tell me about Paris please"' in (choice.message.content or "")
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert (
        usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    )
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0
    again = client.chat.completions.create(
        model=MODEL, messages=_user("Tell me about Paris please")
    )
    assert again.choices[0].message.content == choice.message.content
    assert again.id == completion.id


def test_reply_scenario_scripts_the_message(backend: Backend) -> None:
    """``reply:TEXT`` (header or model name): the message is TEXT, streamed or not (what a
    scripted judge answers through the route Ollama and vLLM serve)."""
    client = backend.openai()
    verdict = '{"explanation": "ok: 5 days", "label": "faithful", "score": true}'
    scripted = client.chat.completions.create(
        model=MODEL,
        messages=_user("judge this"),
        response_format={"type": "json_object"},
        extra_headers={"x-devserver-scenario": f"reply:{verdict}"},
    )
    assert scripted.choices[0].message.content == verdict
    assert scripted.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(
        model=f"devserver-reply:{verdict}", messages=_user("judge this"), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == verdict


def test_cached_and_reasoning_tokens(backend: Backend) -> None:
    completion = backend.openai().chat.completions.create(
        model="o4-mini",
        messages=_user("Hello " * 40),
        prompt_cache_key="k1",
        reasoning_effort="high",
    )
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens // 2 > 0
    assert usage.completion_tokens_details.reasoning_tokens == 32
    assert usage.completion_tokens > 32


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_text_and_optional_usage_chunk(backend: Backend, include_usage: bool) -> None:
    client = backend.openai()
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=_user("stream me"), stream=True, **kwargs
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    expected = (
        client.chat.completions.create(model=MODEL, messages=_user("stream me"))
        .choices[0]
        .message.content
    )
    assert text == expected
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [
        ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usage_chunks = [ch for ch in chunks if not ch.choices]
    if include_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
        assert (
            usage_chunks[0].usage is not None
            and usage_chunks[0].usage.completion_tokens == len(chunks) - 3
        )
        assert all(ch.usage is None for ch in chunks[:-1])
    else:
        assert usage_chunks == [] and all(ch.usage is None for ch in chunks)


def test_n_choices(backend: Backend) -> None:
    completion = backend.openai().chat.completions.create(model=MODEL, messages=_user("hi"), n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert (completion.choices[2].message.content or "").endswith("(choice 2)")
    stream = backend.openai().chat.completions.create(
        model=MODEL, messages=_user("hi"), n=2, stream=True
    )
    texts = {0: "", 1: ""}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts[1] == completion.choices[1].message.content


def test_tool_call_non_stream_and_follow_up(backend: Backend) -> None:
    client = backend.openai()
    messages = _user("What is the weather in Paris?")
    completion = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = (choice.message.tool_calls or [])[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius", "days": 42}
    follow_up = [
        *messages,
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees"},
    ]
    answer = client.chat.completions.create(model=MODEL, messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.choices[0].finish_reason == "stop"
    assert "Sunny, 21 degrees" in (answer.choices[0].message.content or "")


def test_tool_call_streamed_in_fragments(backend: Backend) -> None:
    stream = backend.openai().chat.completions.create(
        model=MODEL, messages=_user("Weather in Rome"), tools=[WEATHER_TOOL], stream=True
    )
    deltas = [tc for chunk in stream for ch in chunk.choices for tc in (ch.delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function and deltas[0].function.name == "get_weather"
    assert all(d.index == 0 for d in deltas)
    fragments = [d.function.arguments for d in deltas[1:] if d.function and d.function.arguments]
    assert len(fragments) >= 3
    assert json.loads("".join(fragments))["city"] == "Rome"


def test_stream_helper_collects_tool_calls(backend: Backend) -> None:
    strict_tool = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "strict": True}}
    with backend.openai().chat.completions.stream(
        model=MODEL, messages=_user("Weather in Oslo"), tools=[strict_tool]
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
    final = stream.get_final_completion()
    assert done[0].parsed_arguments == {"city": "Oslo", "unit": "celsius", "days": 42}
    assert final.choices[0].message.tool_calls[0].function.parsed_arguments["city"] == "Oslo"  # type: ignore[index]


def test_parse_with_pydantic_model(backend: Backend) -> None:
    client = backend.openai()
    completion = client.chat.completions.parse(
        model=MODEL, messages=_user("Describe Berlin"), response_format=CityInfo
    )
    assert completion.choices[0].message.parsed == CityInfo(
        name="Berlin", population=42, capital=True
    )
    with client.chat.completions.stream(
        model=MODEL, messages=_user("Describe Madrid"), response_format=CityInfo
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
    assert len(deltas) > 2
    assert stream.get_final_completion().choices[0].message.parsed == CityInfo(
        name="Madrid", population=42, capital=True
    )


def test_json_object_format(backend: Backend) -> None:
    completion = backend.openai().chat.completions.create(
        model=MODEL, messages=_user("json please"), response_format={"type": "json_object"}
    )
    assert "json please" in json.loads(completion.choices[0].message.content or "")["answer"]


def test_refusal(backend: Backend) -> None:
    client = backend.openai()
    message = (
        client.chat.completions.create(model=MODEL, messages=_user("Please refuse this"))
        .choices[0]
        .message
    )
    assert (
        message.content is None
        and message.refusal == "I'm sorry, but I can't help with that request."
    )
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=_user("please refuse"), stream=True)
    )
    assert (
        "".join(ch.choices[0].delta.refusal or "" for ch in chunks if ch.choices) == message.refusal
    )


def test_max_tokens_gives_length(backend: Backend) -> None:
    client = backend.openai()
    completion = client.chat.completions.create(
        model=MODEL, messages=_user("hello there"), max_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Hello from the "
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(
            model=MODEL, messages=_user("x"), response_format=CityInfo, max_completion_tokens=2
        )


def test_async_create_and_stream(backend: Backend) -> None:
    async def run() -> tuple[str, str]:
        async with backend.async_openai() as client:
            completion = await client.chat.completions.create(
                model=MODEL, messages=_user("async hello")
            )
            stream = await client.chat.completions.create(
                model=MODEL,
                messages=_user("async hello"),
                stream=True,
                stream_options={"include_usage": True},
            )
            text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
            return completion.choices[0].message.content or "", text

    full, streamed = asyncio.run(run())
    assert full == streamed and "async hello" in full


@pytest.mark.asyncio
async def test_async_stream_helper(backend: Backend) -> None:
    async with backend.async_openai() as client:
        async with client.chat.completions.stream(model=MODEL, messages=_user("helper")) as stream:
            async for _ in stream:
                pass
        final = await stream.get_final_completion()
    assert '"helper"' in (final.choices[0].message.content or "")
