"""The real ``groq`` SDK parses what the devserver's Groq protocol sends (``/openai/v1``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import groq
import pytest

from llmtap.devserver import DevServer, handle
from llmtap.devserver.router import protocol_for

MODEL = "llama-3.3-70b-versatile"


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client(devserver: DevServer) -> Iterator[groq.Groq]:
    made = groq.Groq(base_url=devserver.base_url, api_key="x", max_retries=0)
    yield made
    made.close()


def test_routes_owned_by_groq_not_openai() -> None:
    assert protocol_for("/openai/v1/chat/completions").name == "groq"
    assert protocol_for("/openai/v1/embeddings").name == "groq"
    assert protocol_for("/chat/completions").name == "openai"  # OpenAI's /v1 path, normalized


def test_chat_completion(client: groq.Groq) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=_user("Hi Groq"))
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    x_groq = completion.x_groq  # a model in newer SDKs, a plain dict in older ones
    assert (x_groq if isinstance(x_groq, dict) else x_groq.model_dump())["id"] == raw.headers[
        "x-request-id"
    ]
    assert completion.model == MODEL and completion.object == "chat.completion"
    assert completion.service_tier == "on_demand"
    assert completion.choices[0].finish_reason == "stop"
    assert 'You said: "Hi Groq"' in completion.choices[0].message.content
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.queue_time is not None and usage.total_time is not None
    assert getattr(usage, "prompt_tokens_details", None) is None  # nothing cached


def test_stream_usage_in_x_groq(client: groq.Groq) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=_user("s"), stream=True))
    assert chunks[0].x_groq.id.startswith("req_") and chunks[0].x_groq.usage is None
    assert all(chunk.x_groq is None for chunk in chunks[1:-1])
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.x_groq.usage.completion_tokens == len(chunks) - 2  # a piece per middle chunk
    assert last.usage is None


def test_stream_include_usage_chunk(client: groq.Groq) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=_user("s"),
        stream=True,
        extra_body={"stream_options": {"include_usage": True}},
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert chunks[-2].x_groq.usage == chunks[-1].usage


def test_tool_call(client: groq.Groq) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    completion = client.chat.completions.create(
        model=MODEL, messages=_user("Weather in Lima?"), tools=[tool]
    )
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"city": "Lima"}


def test_embeddings(client: groq.Groq) -> None:
    result = client.embeddings.create(model="nomic-embed-text-v1_5", input=["a", "b"])
    assert [item.index for item in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 768
    assert result.usage.prompt_tokens == 2


def test_scenario_errors(client: groq.Groq) -> None:
    with pytest.raises(groq.RateLimitError) as caught:
        client.chat.completions.create(model="devserver-rate_limit", messages=_user("x"))
    assert caught.value.response.headers["retry-after"] == "1"
    error = caught.value.body["error"]
    assert error["code"] == "rate_limit_exceeded" and "param" not in error
    with pytest.raises(groq.NotFoundError):
        client.embeddings.create(model="devserver-not_found", input="x")


def test_stream_error_and_broken_stream(client: groq.Groq) -> None:
    stream = client.chat.completions.create(
        model="devserver-stream_error:2", messages=_user("s"), stream=True
    )
    seen = []
    with pytest.raises(groq.APIError, match="server had an error"):
        for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 2
    with pytest.raises(Exception):  # noqa: B017  (httpx's read error: the connection is cut)
        list(
            client.chat.completions.create(
                model="devserver-broken_stream:2", messages=_user("s"), stream=True
            )
        )


def test_slow_scenario_and_invalid_body() -> None:
    reply = handle(
        "POST",
        "/openai/v1/chat/completions",
        {"x-devserver-scenario": "slow:250"},
        {"model": MODEL, "messages": _user("x")},
    )
    assert reply.status == 200 and reply.delay_ms >= 250
    bad = handle("POST", "/openai/v1/chat/completions", {}, b"not json")
    assert bad.status == 400 and set(bad.body["error"]) == {"message", "type"}
