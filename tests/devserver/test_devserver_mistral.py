"""The devserver's Mistral API (under ``/mistral``) as the real ``mistralai`` SDK reads it,
plus the wire format itself (JSON bodies, SSE framing, error bodies)."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import httpx2
import pytest

from llmtap.devserver import handle

try:  # SDK 2.x, 3.x
    from mistralai.client import Mistral
except ImportError:  # SDK 1.x
    from mistralai import Mistral

MODEL = "mistral-small-latest"
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


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


_SDK = Mistral(api_key="x")
# Older SDK releases lack some request fields; their tests are skipped there, saying which.
needs_json_schema = pytest.mark.skipif(
    not hasattr(_SDK.chat, "parse"), reason="this SDK release has no json_schema response format"
)
needs_output_dimension = pytest.mark.skipif(
    "output_dimension" not in inspect.signature(_SDK.embeddings.create).parameters,
    reason="this SDK release has no output_dimension",
)


@pytest.fixture
def client(devserver: Any) -> Any:
    return Mistral(api_key="test", server_url=f"{devserver.base_url}/mistral")


def _post(devserver: Any, path: str, body: dict[str, Any], **headers: str) -> httpx2.Response:
    return httpx2.post(f"{devserver.base_url}/mistral/v1{path}", json=body, headers=headers)


def test_chat_complete(client):
    response = client.chat.complete(model=MODEL, messages=_user("Hi Mistral"))
    (choice,) = response.choices
    assert response.object == "chat.completion" and response.model == MODEL
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content == (
        'Hello from the llmtap devserver! You said: "Hi Mistral". This is a deterministic reply.'
    )
    assert response.usage.completion_tokens == 14
    assert response.usage.total_tokens == response.usage.prompt_tokens + 14


def test_chat_wire_format_and_headers(devserver):
    response = _post(devserver, "/chat/completions", {"model": MODEL, "messages": _user("hi")})
    body = response.json()
    assert response.headers["mistral-correlation-id"].startswith("req_")
    assert set(body) == {"id", "object", "model", "usage", "created", "choices"}
    message = body["choices"][0]["message"]
    assert message["tool_calls"] is None and message["prefix"] is False
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_stream_framing(devserver):
    body = {"model": MODEL, "messages": _user("stream this"), "stream": True}
    response = _post(devserver, "/chat/completions", body)
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks[-2:]] == [None, "stop"]
    assert ["usage" in c for c in chunks] == [False] * (len(chunks) - 1) + [True]


def test_stream_sdk_context_manager(client):
    with client.chat.stream(model=MODEL, messages=_user("Hello Paris")) as stream:
        events = list(stream)
    text = "".join(e.data.choices[0].delta.content or "" for e in events)
    assert text.startswith("Hello from the llmtap devserver!")
    assert events[-1].data.choices[0].finish_reason == "stop"
    assert events[-1].data.usage.completion_tokens == len(text.split())


def test_tool_call(client):
    response = client.chat.complete(model=MODEL, messages=_user("Weather in Paris"), tools=[TOOL])
    (choice,) = response.choices
    (call,) = choice.message.tool_calls
    assert choice.finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Paris"
    }
    assert len(call.id) == 9 and call.type == "function"


def test_tool_call_streamed_whole(client):
    events = list(client.chat.stream(model=MODEL, messages=_user("Weather in Rome"), tools=[TOOL]))
    calls = [c for e in events for c in (e.data.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and json.loads(calls[0].function.arguments) == {"city": "Rome"}
    assert events[-1].data.choices[0].finish_reason == "tool_calls"


def test_tool_result_answered(client):
    messages = [
        *_user("Weather in Paris"),
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "abc123def", "function": {"name": "get_weather", "arguments": {"c": 1}}}
            ],
        },
        {"role": "tool", "name": "get_weather", "content": "sunny", "tool_call_id": "abc123def"},
    ]
    response = client.chat.complete(model=MODEL, messages=messages, tools=[TOOL])
    assert response.choices[0].message.content.startswith('The tool returned: "sunny"')


@needs_json_schema
def test_json_schema_format(client):
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "city",
            "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    }
    response = client.chat.complete(
        model=MODEL, messages=_user("Name a city like Lyon"), response_format=fmt
    )
    assert json.loads(response.choices[0].message.content) == {"name": "Lyon"}


def test_finish_reasons_length_and_model_length(client):
    cut = client.chat.complete(model=MODEL, messages=_user("hello there"), max_tokens=2)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 2
    full = client.chat.complete(model=MODEL, messages=_user("please overflow the context"))
    assert full.choices[0].finish_reason == "model_length"


def test_n_choices(client):
    response = client.chat.complete(model=MODEL, messages=_user("two please"), n=2)
    assert [c.index for c in response.choices] == [0, 1]
    assert response.choices[1].message.content.endswith("(choice 1)")


def test_cached_tokens_with_cache_key(devserver):
    body = {"model": MODEL, "messages": _user("cache me"), "prompt_cache_key": "s-1"}
    usage = _post(devserver, "/chat/completions", body).json()["usage"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": usage["prompt_tokens"] // 2}


def test_embeddings(client):
    response = client.embeddings.create(model="mistral-embed", inputs=["one", "two words"])
    assert [len(d.embedding) for d in response.data] == [1024, 1024]
    assert response.usage.prompt_tokens == 3 and response.usage.completion_tokens == 0


@needs_output_dimension
def test_embeddings_output_dimension(client):
    small = client.embeddings.create(model="codestral-embed", inputs="x", output_dimension=8)
    assert len(small.data[0].embedding) == 8


def test_fim_and_agents(client):
    fim = client.fim.complete(model="codestral-latest", prompt="def add(a, b):", suffix="return")
    assert fim.choices[0].message.content.startswith("pass  # llmtap devserver")
    streamed = list(client.fim.stream(model="codestral-latest", prompt="def f():"))
    assert streamed[-1].data.usage.prompt_tokens > 0
    agent = client.agents.complete(agent_id="ag:0123", messages=_user("hi agent"))
    assert agent.model == "mistral-large-latest"
    assert "hi agent" in agent.choices[0].message.content


def test_async_client(client):
    async def go() -> tuple[Any, list[Any]]:
        response = await client.chat.complete_async(model=MODEL, messages=_user("async"))
        stream = await client.chat.stream_async(model=MODEL, messages=_user("async"))
        return response, [event async for event in stream]

    response, events = asyncio.run(go())
    streamed = "".join(e.data.choices[0].delta.content or "" for e in events)
    assert streamed == response.choices[0].message.content


# errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "status", "type_"),
    [
        ("rate_limit", 429, "rate_limited"),
        ("server_error", 500, "internal_server_error"),
        ("not_found", 404, "invalid_model"),
        ("overloaded", 503, "service_unavailable"),
    ],
)
def test_scenario_errors(client, scenario, status, type_):
    with pytest.raises(Exception) as info:
        client.chat.complete(model=f"devserver-{scenario}", messages=_user("x"))
    error = info.value
    assert type(error).__name__ == "SDKError" and error.status_code == status
    body = json.loads(error.body)
    assert body["object"] == "error" and body["type"] == type_ and body["message"]


def test_auth_error_is_the_gateway_body(devserver):
    response = _post(
        devserver,
        "/chat/completions",
        {"model": MODEL, "messages": _user("x")},
        **{"x-devserver-scenario": "auth"},
    )
    assert response.status_code == 401 and response.json()["message"] == "Unauthorized"


def test_rate_limit_retry_after(devserver):
    body = {"model": "devserver-rate_limit:2000", "messages": _user("x")}
    response = _post(devserver, "/chat/completions", body)
    assert response.headers["retry-after"] == "2"


def test_validation_error_422(client):
    with pytest.raises(Exception) as info:
        client.chat.complete(model=MODEL, messages=[])
    error = info.value
    assert type(error).__name__ == "HTTPValidationError"
    # SDK 1.x's error has no status_code
    assert getattr(error, "status_code", 422) == 422
    (detail,) = error.data.detail
    assert detail.loc == ["body", "messages"] and detail.type == "missing"


def test_stream_error_finish_reason(client):
    events = list(client.chat.stream(model="devserver-stream_error:2", messages=_user("a b c d")))
    assert len(events) == 3
    assert events[-1].data.choices[0].finish_reason == "error"


def test_broken_stream(client):
    seen = []
    with pytest.raises(Exception) as info:
        for event in client.chat.stream(
            model="devserver-broken_stream:2", messages=_user("a b c d e")
        ):
            seen.append(event)
    assert len(seen) == 2 and "RemoteProtocolError" in type(info.value).__name__


def test_prefix_is_mistrals_and_openai_paths_stay_openai():
    unknown = handle("POST", "/mistral/v1/nothing-here", {}, {"model": MODEL})
    assert unknown.status == 404 and unknown.body["object"] == "error"
    openai = handle("POST", "/v1/chat/completions", {}, {"model": "gpt-4o", "messages": _user("x")})
    assert openai.body["object"] == "chat.completion" and "system_fingerprint" in openai.body
    mistral = handle("POST", "/mistral/v1/chat/completions", {}, {"model": MODEL, "messages": []})
    assert mistral.status == 422 and "detail" in mistral.body
