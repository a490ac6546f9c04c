"""The real ``together`` SDK parses what the devserver's Together protocol sends, served under
``/together/v1`` (the SDK's base URL is ``<devserver>/together``)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest
import together

from llmtap.devserver import DevServer, handle
from llmtap.devserver.router import protocol_for

MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
BASE_MODEL = "meta-llama/Llama-2-70b-hf"


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def base_url(devserver: Any) -> str:
    """The devserver's Together root: 3.x paths start with ``/v1``, 2.x base URLs end with it."""
    source = inspect.getsource(together.resources.chat.completions)
    root = f"{devserver.base_url}/together"
    return root if '"/v1/chat/completions"' in source else f"{root}/v1"


@pytest.fixture
def client(devserver: DevServer) -> Iterator[together.Together]:
    made = together.Together(base_url=base_url(devserver), api_key="x", max_retries=0)
    yield made
    made.close()


def test_routes_do_not_collide_with_openai() -> None:
    for path in ("chat/completions", "completions", "embeddings", "rerank"):
        assert protocol_for(f"/together/v1/{path}").name == "together"
    assert protocol_for("/chat/completions").name == "openai"
    assert protocol_for("/completions").name == "openai"


def test_chat_completion(client: together.Together, devserver: DevServer) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=_user("Hi"))
    completion = raw.parse()
    assert devserver.requests.all()[-1].path == "/together/v1/chat/completions"
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.object == "chat.completion" and completion.prompt == []
    choice = completion.choices[0]
    assert choice.finish_reason == "eos" and choice.seed is not None
    assert 'You said: "Hi"' in choice.message.content
    assert completion.usage.model_dump() == {
        "prompt_tokens": completion.usage.prompt_tokens,
        "completion_tokens": completion.usage.completion_tokens,
        "total_tokens": completion.usage.prompt_tokens + completion.usage.completion_tokens,
    }


def test_chat_stream_usage_on_last_chunk(client: together.Together) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=_user("s"), stream=True))
    assert all(chunk.usage is None for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.choices[0].finish_reason == "eos" and last.usage.completion_tokens > 0
    assert all(chunk.choices[0].delta.role == "assistant" for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text.startswith("Hello from the llmtap devserver!")


def test_chat_tool_call(client: together.Together) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    completion = client.chat.completions.create(
        model=MODEL, messages=_user("Weather in Lima?"), tools=[tool]
    )
    (call,) = completion.choices[0].message.tool_calls
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {
        "city": "Lima"
    }


def test_completion_and_stream(client: together.Together) -> None:
    completion = client.completions.create(model=BASE_MODEL, prompt="Once upon", max_tokens=3)
    assert completion.object == "text.completion"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    chunks = list(client.completions.create(model=BASE_MODEL, prompt="Once upon", stream=True))
    assert [chunk.finish_reason for chunk in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason == "eos" and chunks[-1].token.special is True
    assert chunks[0].token.text == chunks[0].choices[0].text
    assert chunks[-1].usage.completion_tokens == len(chunks) - 1


def test_embeddings(client: together.Together) -> None:
    result = client.embeddings.create(model="BAAI/bge-base-en-v1.5", input=["a", "b"])
    assert [item.index for item in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 768
    assert not hasattr(result, "usage") or getattr(result, "usage", None) is None


def test_rerank(client: together.Together) -> None:
    result = client.rerank.create(
        model="Salesforce/Llama-Rank-V1",
        query="capital of France",
        documents=[{"title": "x", "text": "Berlin"}, {"title": "y", "text": "capital of France"}],
        rank_fields=["text"],
        return_documents=True,
        top_n=1,
    )
    (best,) = result.results
    assert best.index == 1 and best.relevance_score == 1.0
    assert best.document.text == "capital of France"
    assert result.usage.prompt_tokens > 0


def test_errors(client: together.Together) -> None:
    with pytest.raises(together.RateLimitError) as caught:
        client.chat.completions.create(model="devserver-rate_limit", messages=_user("x"))
    assert caught.value.body["id"].startswith("req_")
    assert caught.value.body["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(together.BadRequestError):
        client.rerank.create(model="Salesforce/Llama-Rank-V1", query="q", documents=[])
    stream = client.chat.completions.create(
        model="devserver-stream_error:2", messages=_user("s"), stream=True
    )
    seen = []
    with pytest.raises(together.APIError):
        for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 2


def test_broken_stream_and_delay(client: together.Together) -> None:
    stream = client.completions.create(model="devserver-broken_stream:2", prompt="x", stream=True)
    seen = []
    with pytest.raises(Exception):  # noqa: B017  (httpx's read error: the connection is cut)
        for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 2
    reply = handle(
        "POST",
        "/together/v1/embeddings",
        {"x-devserver-scenario": "slow:300"},
        {"model": "BAAI/bge-base-en-v1.5", "input": "x"},
    )
    assert reply.status == 200 and reply.delay_ms >= 300
