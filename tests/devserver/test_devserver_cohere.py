"""The real Cohere SDK (v2 client) parses what the devserver's Cohere v2 API sends."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import cohere
import httpx
import pytest

from llmtap.devserver import router
from llmtap.devserver.cohere_api import TEMPLATE_TOKENS, relevance

MODEL = "command-a-03-2025"
# cohere < 5.16 takes no max_retries (and retries only when a request asks to)
NO_RETRIES = (
    {"max_retries": 0} if "max_retries" in inspect.signature(cohere.ClientV2).parameters else {}
)
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


HAS_THINKING = "thinking" in inspect.signature(cohere.ClientV2.chat).parameters
HAS_BASE64 = "base64" in cohere.EmbedByTypeResponseEmbeddings.model_fields


def _field(obj: Any, key: str) -> Any:
    """A field of an SDK model or, in SDKs that type it loosely (message-end usage), a dict."""
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def co(devserver: Any) -> Iterator[cohere.ClientV2]:
    client = cohere.ClientV2(api_key="test", base_url=devserver.base_url, **NO_RETRIES)
    yield client
    client._client_wrapper.httpx_client.httpx_client.close()


def test_routes_are_cohere_owned() -> None:
    for route in ("/v2/chat", "/v2/embed", "/v2/rerank"):
        assert router.normalize_path(route) == route
        assert router.protocol_for(route).name == "cohere"
    assert router.protocol_for("/chat/completions").name != "cohere"


def test_chat_text_and_usage(co: cohere.ClientV2) -> None:
    response = co.chat(model=MODEL, messages=_user("Hi Cohere"))
    assert response.finish_reason == "COMPLETE"
    assert response.message.content[0].text == (
        'Hello from the llmtap devserver! You said: "Hi Cohere". This is a deterministic reply.'
    )
    billed, tokens = response.usage.billed_units, response.usage.tokens
    assert billed.output_tokens == 14 and tokens.output_tokens == 15
    assert tokens.input_tokens == billed.input_tokens + TEMPLATE_TOKENS
    again = co.chat(model=MODEL, messages=_user("Hi Cohere"))
    assert again.id == response.id  # deterministic


def test_chat_finish_reasons(co: cohere.ClientV2) -> None:
    cut = co.chat(model=MODEL, messages=_user("Say a lot"), max_tokens=3)
    assert cut.finish_reason == "MAX_TOKENS" and cut.message.content[0].text == "Hello from the "
    stopped = co.chat(model=MODEL, messages=_user("Hi"), stop_sequences=["devserver"])
    assert stopped.finish_reason == "STOP_SEQUENCE"
    assert stopped.message.content[0].text == "Hello from the llmtap "


def test_chat_tools_and_tool_result(co: cohere.ClientV2) -> None:
    response = co.chat(model=MODEL, messages=_user("Weather in Paris"), tools=[TOOL])
    assert response.finish_reason == "TOOL_CALL"
    assert response.message.tool_plan == "I will use the get_weather tool."
    (call,) = response.message.tool_calls
    assert call.function.name == "get_weather" and call.function.arguments == '{"city":"Paris"}'
    follow = co.chat(
        model=MODEL,
        tools=[TOOL],
        messages=[
            *_user("Weather in Paris"),
            {"role": "assistant", "tool_plan": "plan", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21C"},
        ],
    )
    assert follow.finish_reason == "COMPLETE"
    assert "Sunny, 21C" in follow.message.content[0].text


def test_chat_json_documents_and_thinking(co: cohere.ClientV2) -> None:
    fmt = {
        "type": "json_object",
        "json_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
    }
    assert (
        co.chat(model=MODEL, messages=_user("count"), response_format=fmt).message.content[0].text
        == '{"n": 42}'
    )
    docs = [{"id": "d1", "data": {"text": "Paris is in France"}}, "Berlin"]
    rag = co.chat(model=MODEL, messages=_user("Where is Paris?"), documents=docs)
    assert rag.message.content[0].text.endswith("I read 2 documents.")
    if HAS_THINKING:  # cohere >= 5.17
        thought = co.chat(
            model=MODEL, messages=_user("Think"), thinking={"type": "enabled", "token_budget": 100}
        )
        assert [item.type for item in thought.message.content] == ["thinking", "text"]


def test_chat_stream_events(co: cohere.ClientV2) -> None:
    events = list(co.chat_stream(model=MODEL, messages=_user("stream me")))
    types = [e.type for e in events]
    assert types[:2] == ["message-start", "content-start"]
    assert types[-2:] == ["content-end", "message-end"]
    assert events[0].id and events[0].delta.message.role == "assistant"
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
    assert text.startswith("Hello from the llmtap devserver!")
    end = events[-1].delta
    assert (
        end.finish_reason == "COMPLETE"
        and _field(_field(end.usage, "tokens"), "output_tokens") == 15
    )


def test_chat_stream_tool_events(co: cohere.ClientV2) -> None:
    events = list(co.chat_stream(model=MODEL, messages=_user("Weather in Oslo"), tools=[TOOL]))
    types = [e.type for e in events]
    assert types[1] == "tool-plan-delta" and "tool-call-start" in types
    assert types[-2:] == ["tool-call-end", "message-end"]
    start = next(e for e in events if e.type == "tool-call-start")
    assert start.delta.message.tool_calls.function.name == "get_weather"
    args = "".join(
        e.delta.message.tool_calls.function.arguments for e in events if e.type == "tool-call-delta"
    )
    assert args == '{"city":"Oslo"}' and events[-1].delta.finish_reason == "TOOL_CALL"


def test_async_chat_and_stream(devserver: Any) -> None:
    async def run() -> tuple[Any, list[str]]:
        client = cohere.AsyncClientV2(api_key="test", base_url=devserver.base_url, **NO_RETRIES)
        response = await client.chat(model=MODEL, messages=_user("async"))
        types = [e.type async for e in client.chat_stream(model=MODEL, messages=_user("a"))]
        return response, types

    response, types = asyncio.run(run())
    assert response.finish_reason == "COMPLETE" and types[-1] == "message-end"


def test_embed_by_type(co: cohere.ClientV2) -> None:
    response = co.embed(
        model="embed-v4.0",
        input_type="search_document",
        texts=["alpha", "beta"],
        embedding_types=["float", "int8", "ubinary", *(["base64"] if HAS_BASE64 else [])],
        output_dimension=256,
    )
    emb = response.embeddings
    assert len(emb.float_) == 2 and len(emb.float_[0]) == 256
    assert len(emb.int8[0]) == 256 and len(emb.ubinary[0]) == 32
    assert not HAS_BASE64 or isinstance(emb.base64[0], str)
    assert response.meta.billed_units.input_tokens == 2 and response.texts == ["alpha", "beta"]
    default = co.embed(model="embed-v4.0", input_type="search_query", texts=["alpha"])
    assert len(default.embeddings.float_[0]) == 1024
    assert default.embeddings.float_[0][:256] == emb.float_[0]  # a shorter dimension: a prefix
    assert (
        default.embeddings.float_[0]
        == co.embed(
            model="embed-v4.0", input_type="search_query", texts=["alpha"]
        ).embeddings.float_[0]
    )


def test_rerank_word_overlap(co: cohere.ClientV2) -> None:
    docs = ["Berlin is big", "Paris is the capital of France", "France"]
    response = co.rerank(model="rerank-v3.5", query="capital of France", documents=docs, top_n=2)
    assert [r.index for r in response.results] == [1, 2]
    assert response.results[0].relevance_score == relevance("capital of France", docs[1])
    assert 0 < response.results[1].relevance_score < response.results[0].relevance_score
    assert response.meta.billed_units.search_units == 1


@pytest.mark.parametrize(
    ("scenario", "error", "status"),
    [
        ("rate_limit", cohere.TooManyRequestsError, 429),
        ("server_error", cohere.InternalServerError, 500),
        ("bad_request", cohere.BadRequestError, 400),
        ("auth", cohere.UnauthorizedError, 401),
        ("permission", cohere.ForbiddenError, 403),
        ("not_found", cohere.NotFoundError, 404),
        ("overloaded", cohere.ServiceUnavailableError, 503),
    ],
)
def test_scenario_errors(co: cohere.ClientV2, scenario: str, error: type, status: int) -> None:
    with pytest.raises(error) as caught:
        co.chat(model=f"devserver-{scenario}", messages=_user("x"))
    assert caught.value.status_code == status
    assert set(caught.value.body) == {"id", "message"}


def test_errors_on_every_endpoint_and_in_streams(co: cohere.ClientV2) -> None:
    headers = {"request_options": {"additional_headers": {"x-devserver-scenario": "not_found"}}}
    with pytest.raises(cohere.NotFoundError):
        co.embed(model="embed-v4.0", input_type="search_query", texts=["a"], **headers)
    with pytest.raises(cohere.NotFoundError):
        co.rerank(model="rerank-v3.5", query="q", documents=["d"], **headers)
    with pytest.raises(cohere.TooManyRequestsError):
        next(iter(co.chat_stream(model="devserver-rate_limit", messages=_user("x"))))
    with pytest.raises(cohere.BadRequestError):
        co.chat(model=MODEL, messages=[])


def test_broken_stream_and_stream_error(co: cohere.ClientV2) -> None:
    seen = []
    with pytest.raises(httpx.RemoteProtocolError):
        for event in co.chat_stream(model="devserver-broken_stream:2", messages=_user("a b c")):
            seen.append(event.type)
    assert seen == ["message-start", "content-start"]
    events = list(co.chat_stream(model="devserver-stream_error:3", messages=_user("a b c")))
    assert len(events) == 4 and events[-1].type == "message-end"
    assert events[-1].delta.finish_reason == "ERROR" and events[-1].delta.error


def test_slow_first_chunk(co: cohere.ClientV2) -> None:
    import time

    start = time.perf_counter()
    stream = co.chat_stream(model="devserver-slow_first_chunk:150", messages=_user("x"))
    next(iter(stream))
    assert time.perf_counter() - start >= 0.15
