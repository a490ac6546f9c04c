"""What recorded OpenAI traffic still contains: legacy ``functions`` / ``function_call`` and
``role: function`` in Chat Completions, content-filtered choices, and background responses
streamed again with ``GET /v1/responses/{id}?stream=true``."""

from __future__ import annotations

import json

import openai
import pytest

from llmtap.devserver import handle

from .conftest import Backend

MODEL = "gpt-4o-mini"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}
TIME = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# legacy functions ---------------------------------------------------------------------------


def test_functions_get_a_function_call(backend: Backend) -> None:
    client = backend.openai()
    completion = client.chat.completions.create(
        model=MODEL, messages=_user("Weather in Paris?"), functions=[WEATHER, TIME]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.tool_calls is None and choice.message.content is None
    call = choice.message.function_call
    assert call is not None and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris", "days": 42}
    named = client.chat.completions.create(
        model=MODEL,
        messages=_user("What time is it?"),
        functions=[WEATHER, TIME],
        function_call={"name": "get_time"},
    )
    assert named.choices[0].message.function_call.name == "get_time"
    none = client.chat.completions.create(
        model=MODEL, messages=_user("Hi"), functions=[WEATHER], function_call="none"
    )
    assert none.choices[0].finish_reason == "stop" and none.choices[0].message.content


def test_function_result_is_answered(backend: Backend) -> None:
    completion = backend.openai().chat.completions.create(
        model=MODEL,
        messages=[
            *_user("Weather in Paris?"),
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {"role": "function", "name": "get_weather", "content": "18C and sunny"},
        ],
        functions=[WEATHER],
    )
    assert completion.choices[0].finish_reason == "stop"
    assert "18C and sunny" in (completion.choices[0].message.content or "")


def test_function_call_streamed(backend: Backend) -> None:
    chunks = list(
        backend.openai().chat.completions.create(
            model=MODEL, messages=_user("Weather in Paris?"), functions=[WEATHER], stream=True
        )
    )
    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and first.function_call.name == "get_weather"
    arguments = "".join(
        c.choices[0].delta.function_call.arguments or ""
        for c in chunks
        if c.choices[0].delta and c.choices[0].delta.function_call
    )
    assert json.loads(arguments) == {"city": "Paris", "days": 42}
    assert chunks[-1].choices[0].finish_reason == "function_call"


# content filter -------------------------------------------------------------------------------


def test_filtered_choice_wire_shapes() -> None:
    empty = handle(
        "POST", "/v1/chat/completions", {}, {"model": MODEL, "messages": _user("please filter")}
    )
    (choice,) = empty.body["choices"]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "annotations": [],
    }
    assert choice["content_filter_results"]["violence"]["filtered"] is True
    missing = handle(
        "POST",
        "/v1/chat/completions",
        {},
        {"model": MODEL, "messages": _user("please filter everything")},
    )
    assert "message" not in missing.body["choices"][0]
    assert missing.body["usage"]["completion_tokens"] == 0
    stream = handle(
        "POST",
        "/v1/chat/completions",
        {},
        {"model": MODEL, "messages": _user("please filter everything"), "stream": True},
    )
    (only,) = [e.json() for e in stream.events if e.data != "[DONE]"]
    assert "delta" not in only["choices"][0]
    assert only["choices"][0]["finish_reason"] == "content_filter"


def test_filtered_choice_through_the_sdk(backend: Backend) -> None:
    client = backend.openai()
    completion = client.chat.completions.create(model=MODEL, messages=_user("Please filter this"))
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content is None
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=_user("Please filter everything"), stream=True
        )
    )
    assert [c.choices[0].finish_reason for c in chunks] == ["content_filter"]


# background responses, streamed again -----------------------------------------------------------


def test_background_response_queued_then_retrieved(backend: Backend) -> None:
    client = backend.openai()
    queued = client.responses.create(model=MODEL, input="Hello Paris", background=True)
    assert queued.status == "queued" and queued.background is True
    assert queued.output == [] and queued.usage is None
    done = client.responses.retrieve(queued.id)
    assert done.status == "completed" and done.id == queued.id
    assert "Hello Paris" in done.output_text
    events = list(client.responses.retrieve(queued.id, stream=True))
    assert events[0].type == "response.created" and events[0].response.status == "queued"
    assert events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.output_text == done.output_text
    resumed = list(client.responses.retrieve(queued.id, stream=True, starting_after=5))
    assert [e.sequence_number for e in resumed] == list(range(6, len(events)))


def test_stream_helper_by_response_id(backend: Backend) -> None:
    client = backend.openai()
    queued = client.responses.create(model=MODEL, input="Hello Paris", background=True)
    with client.responses.stream(response_id=queued.id, starting_after=2) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[0].sequence_number == 3
    assert final.id == queued.id and final.output_text


def test_only_kept_background_responses_stream_again(backend: Backend) -> None:
    client = backend.openai()
    stored = client.responses.create(model=MODEL, input="Hi there")
    assert client.responses.retrieve(stored.id).id == stored.id
    with pytest.raises(openai.NotFoundError, match="not found"):
        client.responses.retrieve(stored.id, stream=True)
    unstored = client.responses.create(model=MODEL, input="Not kept", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_retrieve_over_raw_http_and_scenarios() -> None:
    created = handle(
        "POST", "/v1/responses", {}, {"model": MODEL, "input": "Hi", "background": True}
    )
    rid = created.body["id"]
    reply = handle("GET", f"/v1/responses/{rid}?stream=true&starting_after=1", {})
    assert reply.is_stream
    assert reply.events[0].event == "response.output_item.added"
    assert reply.events[0].json()["sequence_number"] == 2
    beta = handle("GET", f"/v1/responses/{rid}?beta=true&stream=true", {})
    assert beta.events[0].event == "response.created"
    cut = handle(
        "GET", f"/v1/responses/{rid}?stream=true", {"x-devserver-scenario": "broken_stream:2"}
    )
    assert cut.cut_after == 2
    assert handle("GET", "/v1/responses/resp_nope", {}).status == 404
    assert handle("POST", f"/v1/responses/{rid}", {}, {}).status == 404
