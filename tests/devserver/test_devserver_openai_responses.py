from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from .conftest import Backend

MODEL = "gpt-4.1-mini"
TOOL = {
    "type": "function",
    "name": "lookup_city",
    "description": "Look a city up",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["city", "limit"],
        "additionalProperties": False,
    },
    "strict": True,
}


class Person(BaseModel):
    name: str
    age: int


def test_create_text(backend: Backend) -> None:
    response = backend.openai().responses.create(
        model=MODEL, input="Hello from Lisbon", instructions="Be brief"
    )
    assert response.status == "completed"
    assert response.model == MODEL and response.id.startswith("resp_")
    said = 'You said: "Hello from Lisbon".'
    assert (
        response.output_text
        == f"Hello from the llmtap devserver! {said} This is a deterministic reply."
    )
    assert [item.type for item in response.output] == ["message"]
    usage = response.usage
    assert usage is not None
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_raw_stream_event_sequence(backend: Backend) -> None:
    events = list(backend.openai().responses.create(model=MODEL, input="stream it", stream=True))
    types = [event.type for event in events]
    assert types[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == deltas
    assert completed.response.usage is not None and completed.response.usage.output_tokens > 0


def test_stream_helper_and_final_response(backend: Backend) -> None:
    with backend.openai().responses.stream(model=MODEL, input="helper please") as stream:
        snapshots = [e.snapshot for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert snapshots[-1] == final.output_text
    assert '"helper please"' in final.output_text


def test_parse_with_text_format(backend: Backend) -> None:
    client = backend.openai()
    parsed = client.responses.parse(model=MODEL, input="Who is Alice?", text_format=Person)
    assert parsed.output_parsed == Person(name="Alice", age=42)
    with client.responses.stream(model=MODEL, input="Who is Bob?", text_format=Person) as stream:
        stream.until_done()
        final = stream.get_final_response()
    assert final.output_parsed == Person(name="Bob", age=42)


def test_function_call_and_follow_up(backend: Backend) -> None:
    client = backend.openai()
    response = client.responses.create(model=MODEL, input="Find Tokyo", tools=[TOOL])
    call = response.output[0]
    assert call.type == "function_call"
    assert call.name == "lookup_city" and call.call_id.startswith("call_")
    assert json.loads(call.arguments) == {"city": "Tokyo", "limit": 5}
    follow_up = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "Find Tokyo"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": "Tokyo has 14 million people",
            },
        ],
        tools=[TOOL],
    )
    assert "Tokyo has 14 million people" in follow_up.output_text


def test_function_call_streamed(backend: Backend) -> None:
    with backend.openai().responses.stream(model=MODEL, input="Find Lima", tools=[TOOL]) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    assert len(deltas) >= 3
    call = final.output[0]
    assert call.type == "function_call"
    assert json.loads("".join(deltas)) == {"city": "Lima", "limit": 5}
    assert call.parsed_arguments == {"city": "Lima", "limit": 5}


def test_reasoning_item_and_tokens(backend: Backend) -> None:
    client = backend.openai()
    response = client.responses.create(
        model="o4-mini", input="Think about Mars", reasoning={"effort": "low", "summary": "auto"}
    )
    assert [item.type for item in response.output] == ["reasoning", "message"]
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and "Think about Mars" in reasoning.summary[0].text
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 8
    events = list(
        client.responses.create(
            model="o4-mini", input="Mars", reasoning={"summary": "auto"}, stream=True
        )
    )
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert "Mars" in summary
    final = events[-1]
    assert final.type == "response.completed"
    assert (
        final.response.usage is not None
        and final.response.usage.output_tokens_details.reasoning_tokens == 16
    )


def test_cached_tokens_with_prompt_cache_key(backend: Backend) -> None:
    response = backend.openai().responses.create(
        model=MODEL, input="word " * 30, prompt_cache_key="pk"
    )
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == response.usage.input_tokens // 2 > 0


def test_max_output_tokens_incomplete(backend: Backend) -> None:
    client = backend.openai()
    response = client.responses.create(model=MODEL, input="hi", max_output_tokens=4)
    assert response.status == "incomplete"
    assert (
        response.incomplete_details is not None
        and response.incomplete_details.reason == "max_output_tokens"
    )
    assert response.output_text == "Hello from the llmtap "
    events = list(
        client.responses.create(model=MODEL, input="hi", max_output_tokens=4, stream=True)
    )
    assert events[-1].type == "response.incomplete"


def test_refusal(backend: Backend) -> None:
    response = backend.openai().responses.create(model=MODEL, input="please refuse")
    part = response.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "refusal" and part.refusal.startswith("I'm sorry")


@pytest.mark.asyncio
async def test_async_stream(backend: Backend) -> None:
    async with (
        backend.async_openai() as client,
        client.responses.stream(model=MODEL, input="async Quito") as stream,
    ):
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert '"async Quito"' in final.output_text
