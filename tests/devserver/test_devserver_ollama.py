"""The real Ollama SDK (``ollama.Client`` / ``AsyncClient``) against the devserver's Ollama API.

The SDK speaks httpx, so these run over the loopback socket server (the in-process transport
is httpx2's).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest
from ollama._types import ChatRequest

from llmtap.devserver import DevServer
from llmtap.devserver.reply import JSONLine, ndjson_reply
from llmtap.devserver.router import handle

MODEL = "llama3.2"
WEATHER = {
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
ANSWER = 'Hello from the llmtap devserver! You said: "Hi Paris". This is a deterministic reply.'


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _sdk_takes(method: str, name: str) -> bool:
    return name in inspect.signature(getattr(ollama.Client, method)).parameters


def _schema_format() -> bool:
    try:
        ChatRequest(model="m", format={"type": "object"})
    except ValueError:
        return False
    return True


# features newer than the oldest SDK supported (ollama 0.4.0)
needs_think = pytest.mark.skipif(
    not _sdk_takes("chat", "think"), reason="this ollama release has no think= (newer ones do)"
)
needs_dimensions = pytest.mark.skipif(
    not _sdk_takes("embed", "dimensions"),
    reason="this ollama release has no embed(dimensions=) (newer ones do)",
)
needs_schema_format = pytest.mark.skipif(
    not _schema_format(),
    reason="this ollama release takes no JSON schema as format= (newer ones do)",
)


@pytest.fixture
def client(devserver: DevServer) -> Iterator[ollama.Client]:
    made = ollama.Client(host=devserver.base_url)
    yield made
    made._client.close()  # Client.close() is newer than ollama 0.4


def test_chat(client: ollama.Client) -> None:
    response = client.chat(model=MODEL, messages=_user("Hi Paris"))
    assert response.model == MODEL and response.done is True
    assert response.done_reason == "stop"
    assert response.message.role == "assistant" and response.message.content == ANSWER
    assert response.prompt_eval_count == 6 and response.eval_count == 14
    assert response.total_duration > response.eval_duration > 0  # nanoseconds
    assert response.created_at.endswith("Z")


def test_chat_stream_is_ndjson_ending_with_done(client: ollama.Client) -> None:
    chunks = list(client.chat(model=MODEL, messages=_user("Hi Paris"), stream=True))
    assert all(c.done is False for c in chunks[:-1])
    last = chunks[-1]
    assert last.done is True and last.done_reason == "stop"
    assert last.prompt_eval_count == 6 and last.eval_count == 14
    assert "".join(c.message.content for c in chunks) == ANSWER
    assert len(chunks) == 15


def test_raw_stream_framing(devserver: DevServer) -> None:
    body = {"model": MODEL, "messages": _user("Hi")}  # no "stream": Ollama streams by default
    with httpx.stream("POST", f"{devserver.base_url}/api/chat", json=body) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = list(response.iter_lines())
    assert all(json.loads(line)["model"] == MODEL for line in lines)
    assert json.loads(lines[-1])["done"] is True


def test_generate_and_stream(client: ollama.Client) -> None:
    response = client.generate(model=MODEL, prompt="Hi Paris", system="Be brief.")
    assert response.response == ANSWER and response.done_reason == "stop"
    assert response.context and response.eval_count == 14
    chunks = list(client.generate(model=MODEL, prompt="Hi Paris", stream=True))
    assert "".join(c.response for c in chunks) == ANSWER
    assert chunks[-1].done and chunks[-1].eval_count == 14


def test_num_predict_stops_at_length(client: ollama.Client) -> None:
    response = client.generate(model=MODEL, prompt="Hi Paris", options={"num_predict": 3})
    assert response.done_reason == "length"
    assert response.response == "Hello from the " and response.eval_count == 3


def test_stop_sequence(client: ollama.Client) -> None:
    response = client.chat(model=MODEL, messages=_user("Hi Paris"), options={"stop": ["You"]})
    assert response.message.content == "Hello from the llmtap devserver! "
    assert response.done_reason == "stop"


def test_tools(client: ollama.Client) -> None:
    response = client.chat(model=MODEL, messages=_user("Weather in Paris?"), tools=[WEATHER])
    (call,) = response.message.tool_calls
    assert call.function.name == "get_weather"
    assert call.function.arguments == {"city": "Paris"}
    assert response.message.content == "" and response.done_reason == "stop"
    follow_up = [
        *_user("Weather in Paris?"),
        response.message,
        {"role": "tool", "content": "18 degrees and sunny", "tool_name": "get_weather"},
    ]
    answer = client.chat(model=MODEL, messages=follow_up, tools=[WEATHER])
    assert not answer.message.tool_calls
    assert answer.message.content.startswith('The tool returned: "18 degrees and sunny"')


def test_tools_streamed(client: ollama.Client) -> None:
    chunks = list(
        client.chat(model=MODEL, messages=_user("Weather in Paris?"), tools=[WEATHER], stream=True)
    )
    calls = [call for chunk in chunks for call in chunk.message.tool_calls or ()]
    assert [c.function.name for c in calls] == ["get_weather"]
    assert chunks[-1].done


def test_json_format(client: ollama.Client) -> None:
    response = client.chat(model=MODEL, messages=_user("Hi Paris"), format="json")
    assert json.loads(response.message.content) == {"answer": ANSWER}


@needs_schema_format
def test_json_schema_format(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
    }
    generated = client.generate(model=MODEL, prompt="Tell me about Paris", format=schema)
    assert json.loads(generated.response) == {"city": "Paris", "n": 42}


@needs_think
def test_think(client: ollama.Client) -> None:
    response = client.chat(model="qwen3", messages=_user("Hi Paris"), think=True)
    assert response.message.thinking.startswith('The user wrote "Hi Paris".')
    assert response.message.content == ANSWER
    chunks = list(client.generate(model="qwen3", prompt="Hi Paris", think=True, stream=True))
    thinking = "".join(c.thinking or "" for c in chunks)
    assert thinking == response.message.thinking
    assert "".join(c.response for c in chunks) == ANSWER
    plain = client.chat(model="qwen3", messages=_user("Hi Paris"), think=False)
    assert plain.message.thinking is None


def test_embed_and_legacy_embeddings(client: ollama.Client) -> None:
    response = client.embed(model="nomic-embed-text", input=["Hi Paris", "Bye"])
    assert len(response.embeddings) == 2 and len(response.embeddings[0]) == 384
    assert response.prompt_eval_count == 3 and response.model == "nomic-embed-text"
    legacy = client.embeddings(model="nomic-embed-text", prompt="Hi Paris")
    assert legacy.embedding == pytest.approx(response.embeddings[0])


@needs_dimensions
def test_embed_dimensions(client: ollama.Client) -> None:
    same = client.embed(model="nomic-embed-text", input="Hi Paris", dimensions=8)
    assert len(same.embeddings[0]) == 8


async def test_async_client(devserver: DevServer) -> None:
    client = ollama.AsyncClient(host=devserver.base_url)
    response = await client.chat(model=MODEL, messages=_user("Hi Paris"))
    assert response.message.content == ANSWER
    stream = await client.generate(model=MODEL, prompt="Hi Paris", stream=True)
    pieces = [chunk.response async for chunk in stream]
    assert "".join(pieces) == ANSWER
    embedded = await client.embed(model="nomic-embed-text", input="x")
    assert len(embedded.embeddings) == 1


@pytest.mark.parametrize(
    ("scenario", "status", "message"),
    [
        ("not_found", 404, 'model "devserver-not_found" not found, try pulling it first'),
        ("rate_limit", 429, "too many requests"),
        ("server_error", 500, "llama runner process has terminated: exit status 2"),
        ("bad_request", 400, "invalid request: rejected by the devserver"),
    ],
)
def test_errors_as_ollama_sends_them(client, scenario, status, message) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model=f"devserver-{scenario}", messages=_user("Hi"))
    assert caught.value.status_code == status and caught.value.error == message
    with pytest.raises(ollama.ResponseError) as streamed:
        list(client.chat(model=f"devserver-{scenario}", messages=_user("Hi"), stream=True))
    assert streamed.value.status_code == status


def test_error_body_shape() -> None:
    reply = handle("POST", "/api/chat", {}, {"model": "devserver-not_found"})
    assert reply.status == 404
    assert reply.body == {"error": 'model "devserver-not_found" not found, try pulling it first'}
    missing = handle("POST", "/api/generate", {}, {"prompt": "x"})
    assert (missing.status, missing.body) == (400, {"error": "model is required"})


def test_scenario_header(client: ollama.Client, devserver: DevServer) -> None:
    headed = ollama.Client(host=devserver.base_url, headers={"x-devserver-scenario": "auth"})
    with pytest.raises(ollama.ResponseError) as caught:
        headed.chat(model=MODEL, messages=_user("Hi"))
    assert caught.value.status_code == 401


def test_mid_stream_error_line(client: ollama.Client) -> None:
    got = []
    with pytest.raises(ollama.ResponseError) as caught:
        for chunk in client.chat(
            model="devserver-stream_error:2", messages=_user("Hi"), stream=True
        ):
            got.append(chunk)
    assert len(got) == 2
    assert "unexpected EOF" in caught.value.error


def test_broken_stream(client: ollama.Client) -> None:
    got = []
    with pytest.raises(httpx.RemoteProtocolError):
        for chunk in client.generate(model="devserver-broken_stream:4", prompt="Hi", stream=True):
            got.append(chunk)
    assert len(got) == 4 and not any(c.done for c in got)


def test_broken_non_stream_drops_the_connection(client: ollama.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.chat(model="devserver-broken_stream", messages=_user("Hi"))


def test_slow_first_chunk(devserver: DevServer) -> None:
    reply = handle(
        "POST", "/api/chat", {}, {"model": "devserver-slow_first_chunk:250", "messages": _user("x")}
    )
    assert reply.is_stream and reply.first_event_delay_ms == 250
    slow = handle("POST", "/api/embed", {}, {"model": "devserver-slow:120", "input": "x"})
    assert slow.delay_ms == 120


def test_unknown_api_path_is_404(devserver: DevServer) -> None:
    response = httpx.post(f"{devserver.base_url}/api/nope", json={"model": MODEL})
    assert response.status_code == 404


def test_json_line_encoding() -> None:
    line = JSONLine.of({"a": "é"})
    assert line.encode() == '{"a":"é"}\n'.encode()
    assert line.json() == {"a": "é"}
    reply = ndjson_reply([line, JSONLine.of({"done": True})])
    assert reply.is_stream and reply.headers["content-type"] == "application/x-ndjson"
    assert b"".join(reply.event_chunks()).count(b"\n") == 2
