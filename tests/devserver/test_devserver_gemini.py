"""The Gemini wire protocol: the real google-genai SDK parses what the devserver sends."""

# no ``from __future__ import annotations``: older SDKs read get_weather's annotations as they are
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from llmtap.devserver import DevServer
from llmtap.devserver.router import handle, normalize_path, protocol_for

try:  # recent SDKs send through httpx2 when it is installed
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx2.HTTPError)
except ImportError:
    _TRANSPORT_ERRORS = (httpx.HTTPError,)

MODEL = "gemini-2.5-flash"
ANSWER = 'Hello from the llmtap devserver! You said: "Hello Paris". This is a deterministic reply.'


# genai.Client closes its HTTP client when it is collected: the tests keep theirs alive
_alive: list[genai.Client] = []


def _kept(client: genai.Client) -> genai.Client:
    _alive.append(client)
    return client


def _client(server: DevServer, **options: Any) -> genai.Client:
    http = types.HttpOptions(base_url=server.base_url, **options)
    return _kept(genai.Client(api_key="test", http_options=http))


def _vertex(server: DevServer, *, express: bool) -> genai.Client:
    http = types.HttpOptions(base_url=server.base_url)
    if express:
        return _kept(genai.Client(vertexai=True, api_key="test", http_options=http))
    from google.oauth2.credentials import Credentials

    return _kept(
        genai.Client(
            vertexai=True,
            project="p1",
            location="us-central1",
            credentials=Credentials(token="test"),
            http_options=http,
        )
    )


def _sdk_reads(field: str) -> bool:
    """Whether this SDK maps ``field`` of a Gemini API response (older ones drop some)."""
    import inspect

    from google.genai import models

    return field in inspect.getsource(models._GenerateContentResponse_from_mldev)


def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


def _raises_stream_errors() -> bool:
    import inspect

    from google.genai import _api_client

    return '{"error":' in inspect.getsource(_api_client.BaseApiClient.request_streamed)


@pytest.fixture
def server(devserver: DevServer) -> Iterator[DevServer]:
    devserver.requests.clear()
    yield devserver
    _alive.clear()


def test_generate_content(server: DevServer) -> None:
    response = _client(server).models.generate_content(model=MODEL, contents="Hello Paris")
    assert response.text == ANSWER
    assert response.model_version == MODEL
    assert response.response_id or not _sdk_reads("response_id")
    (candidate,) = response.candidates
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content.role == "model"
    usage = response.usage_metadata
    assert usage.candidates_token_count == 14 and usage.prompt_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + 14
    (request,) = server.requests.all()
    assert request.path.endswith(f"/models/{MODEL}:generateContent")


def test_v1beta_path(server: DevServer) -> None:
    client = _client(server, api_version="v1beta")
    response = client.models.generate_content(model=f"models/{MODEL}", contents="Hello Paris")
    assert response.text == ANSWER
    assert server.requests.all()[-1].path == f"/v1beta/models/{MODEL}:generateContent"
    assert normalize_path(f"/v1beta/models/{MODEL}:generateContent").startswith("/v1beta/")
    assert protocol_for(f"/v1beta/models/{MODEL}:generateContent").name == "gemini"


def test_stream_sse(server: DevServer) -> None:
    chunks = list(
        _client(server).models.generate_content_stream(model=MODEL, contents="Hello Paris")
    )
    assert "".join(c.text for c in chunks) == ANSWER
    assert len(chunks) == 14
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    counts = [c.usage_metadata.candidates_token_count for c in chunks]
    assert counts == list(range(1, 15))  # running usage; the last chunk has the total
    assert server.requests.all()[-1].path.endswith(":streamGenerateContent?alt=sse")


async def test_async(server: DevServer) -> None:
    client = _client(server)
    response = await client.aio.models.generate_content(model=MODEL, contents="Hello Paris")
    assert response.text == ANSWER
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="Hello Paris")
    assert "".join([c.text async for c in stream]) == ANSWER


def test_function_call_and_response(server: DevServer) -> None:
    client = _client(server)
    config = types.GenerateContentConfig(
        tools=[get_weather],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    response = client.models.generate_content(
        model=MODEL, contents="Weather in Paris?", config=config
    )
    (call,) = response.function_calls
    assert call.name == "get_weather" and call.args == {"city": "Paris"}
    follow = [
        types.UserContent(parts=[types.Part.from_text(text="Weather in Paris?")]),
        response.candidates[0].content,
        types.Part.from_function_response(name="get_weather", response={"result": "sunny"}),
    ]
    answer = client.models.generate_content(model=MODEL, contents=follow, config=config)
    assert answer.text.startswith('The tool returned: "{"result":"sunny"}"')
    assert not answer.function_calls


def test_declared_function_and_mode_none(server: DevServer) -> None:
    declaration = types.FunctionDeclaration(
        name="lookup",
        description="Look up",
        parameters=types.Schema(
            type="OBJECT", properties={"query": types.Schema(type="STRING")}, required=["query"]
        ),
    )
    tools = [types.Tool(function_declarations=[declaration])]
    client = _client(server)
    response = client.models.generate_content(
        model=MODEL, contents="Find Rome", config=types.GenerateContentConfig(tools=tools)
    )
    assert response.function_calls[0].args == {"query": "Rome"}
    none = types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE"))
    config = types.GenerateContentConfig(tools=tools, tool_config=none)
    plain = client.models.generate_content(model=MODEL, contents="Find Rome", config=config)
    assert plain.function_calls is None and plain.text.startswith("Hello from")


def test_automatic_function_calling(server: DevServer) -> None:
    response = _client(server).models.generate_content(
        model=MODEL,
        contents="Weather in Paris?",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )
    assert response.text.startswith('The tool returned: "{"result":"sunny in Paris"}"')
    assert len(response.automatic_function_calling_history) == 3
    assert len(server.requests.all()) == 2


def test_structured_output(server: DevServer) -> None:
    schema = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=schema
    )
    response = _client(server).models.generate_content(model=MODEL, contents="Paris", config=config)
    assert json.loads(response.text) == {"city": "Paris"} and response.parsed == {"city": "Paris"}


def test_thinking_max_tokens_cache_and_safety(server: DevServer) -> None:
    client = _client(server)
    thinking = types.ThinkingConfig(include_thoughts=True, thinking_budget=64)
    config = types.GenerateContentConfig(thinking_config=thinking, max_output_tokens=3)
    response = client.models.generate_content(model=MODEL, contents="Hello Paris", config=config)
    thought, text = response.candidates[0].content.parts
    assert thought.thought and thought.text.startswith("The user wrote")
    assert text.text == "Hello from the "
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata.thoughts_token_count == 16
    cached = client.models.generate_content(
        model=MODEL,
        contents="Hello",
        config=types.GenerateContentConfig(cached_content="cachedContents/x"),
    )
    assert (
        cached.usage_metadata.cached_content_token_count
        == cached.usage_metadata.prompt_token_count // 2
    )
    refused = client.models.generate_content(model=MODEL, contents="Please refuse this")
    assert refused.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert refused.text is None


def test_embeddings(server: DevServer) -> None:
    result = _client(server).models.embed_content(
        model="gemini-embedding-001",
        contents=["one", "two words"],
        config=types.EmbedContentConfig(output_dimensionality=8),
    )
    assert [len(e.values) for e in result.embeddings] == [8, 8]
    assert result.embeddings[0].values != result.embeddings[1].values
    assert server.requests.all()[-1].path.endswith(":batchEmbedContents")


@pytest.mark.parametrize("express", [True, False])
def test_vertex_ai(server: DevServer, express: bool) -> None:
    client = _vertex(server, express=express)
    response = client.models.generate_content(model=MODEL, contents="Hello Paris")
    assert response.text == ANSWER
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Hello Paris"))
    assert "".join(c.text for c in chunks) == ANSWER
    embedded = client.models.embed_content(model="text-embedding-005", contents=["a b", "c"])
    assert [e.statistics.token_count for e in embedded.embeddings] == [2, 1]
    paths = [r.path for r in server.requests.all()]
    prefix = "/v1beta1/" if express else "/v1beta1/projects/p1/locations/us-central1/"
    assert paths[0] == f"{prefix}publishers/google/models/{MODEL}:generateContent"
    assert paths[-1].endswith("text-embedding-005:predict")
    headers = server.requests.all()[0].headers
    auth = {k.lower(): v for k, v in headers.items()}
    assert ("x-goog-api-key" in auth) if express else auth["authorization"] == "Bearer test"


@pytest.mark.parametrize(
    ("scenario", "code", "status", "error"),
    [
        ("rate_limit", 429, "RESOURCE_EXHAUSTED", errors.ClientError),
        ("bad_request", 400, "INVALID_ARGUMENT", errors.ClientError),
        ("auth", 401, "UNAUTHENTICATED", errors.ClientError),
        ("not_found", 404, "NOT_FOUND", errors.ClientError),
        ("server_error", 500, "INTERNAL", errors.ServerError),
        ("overloaded", 503, "UNAVAILABLE", errors.ServerError),
    ],
)
def test_scenario_errors(
    server: DevServer, scenario: str, code: int, status: str, error: type
) -> None:
    with pytest.raises(error) as caught:
        _client(server).models.generate_content(model=f"devserver-{scenario}", contents="x")
    assert caught.value.code == code and caught.value.status == status


def test_scenario_header_and_request_errors() -> None:
    reply = handle(
        "POST",
        f"/v1beta/models/{MODEL}:generateContent",
        {"x-devserver-scenario": "rate_limit"},
        {"contents": [{"parts": [{"text": "x"}]}]},
    )
    assert reply.status == 429 and reply.headers["retry-after"] == "1"
    assert reply.body["error"] == {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
    }
    empty = handle("POST", f"/v1beta/models/{MODEL}:generateContent", {}, {})
    assert empty.status == 400 and empty.body["error"]["status"] == "INVALID_ARGUMENT"
    unknown = handle("POST", f"/v1beta/models/{MODEL}:doSomething", {}, {})
    assert unknown.status == 404


def test_stream_error_event(server: DevServer) -> None:
    if not _raises_stream_errors():
        pytest.skip("this SDK parses an in-stream error as an empty chunk")
    stream = _client(server).models.generate_content_stream(
        model="devserver-stream_error:2", contents="Hello Paris"
    )
    got = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in stream:
            got.append(chunk.text)
    assert len(got) == 2 and caught.value.code == 503


def test_broken_stream(server: DevServer) -> None:
    stream = _client(server).models.generate_content_stream(
        model="devserver-broken_stream:2", contents="Hello Paris"
    )
    got = []
    with pytest.raises(_TRANSPORT_ERRORS):
        for chunk in stream:
            got.append(chunk.text)
    assert len(got) == 2


def test_slow(server: DevServer) -> None:
    started = time.perf_counter()
    _client(server).models.generate_content(model="devserver-slow:300", contents="x")
    assert time.perf_counter() - started >= 0.3
