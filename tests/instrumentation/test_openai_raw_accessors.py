"""``with_raw_response`` / ``with_streaming_response`` accessors first touched before
``instrument()`` and called after it: traced, with the raw response surface unchanged.

(They are ``cached_property`` objects whose ``__init__`` stored the SDK's wrapper around the
bound method as it was then, i.e. the unpatched one.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.resources import completions as completions_module
from openai.resources.chat.completions import completions as chat_module
from openai.resources.responses import responses as responses_module

from .test_openai_support import MODEL, attrs, only_span, sync_client, user

ACCESSOR_CLASSES = [
    chat_module.CompletionsWithRawResponse,
    chat_module.AsyncCompletionsWithRawResponse,
    chat_module.CompletionsWithStreamingResponse,
    chat_module.AsyncCompletionsWithStreamingResponse,
    completions_module.CompletionsWithRawResponse,
    responses_module.ResponsesWithRawResponse,
    responses_module.AsyncResponsesWithStreamingResponse,
]


def test_raw_accessor_kept_from_before_instrument(
    instrument_openai, span_exporter, client, devserver
) -> None:
    raw_chat = client.chat.completions.with_raw_response  # cached now, unpatched
    with sync_client(devserver) as plain:
        expected = plain.chat.completions.with_raw_response.create(model=MODEL, messages=user())
    instrument_openai()
    assert client.chat.completions.with_raw_response is raw_chat  # the SDK's cache is kept
    raw = raw_chat.create(model=MODEL, messages=user())
    assert type(raw).__name__ == type(expected).__name__ == "LegacyAPIResponse"
    assert raw.headers["x-request-id"]
    assert raw.http_response.status_code == 200
    assert json.loads(raw.text)["id"] == expected.parse().id
    completion = raw.parse()
    assert completion.id == expected.parse().id
    span = only_span(span_exporter)
    assert attrs(span)["gen_ai.response.id"] == completion.id
    assert raw_chat.create is raw_chat.create  # one rebuilt wrapper per accessor


def test_client_level_raw_accessor_touched_before_instrument(
    instrument_openai, span_exporter, client
) -> None:
    client.with_raw_response.chat.completions.create  # noqa: B018 (builds the cached accessors)
    client.with_raw_response.completions.create  # noqa: B018
    instrument_openai()
    client.with_raw_response.chat.completions.create(model=MODEL, messages=user()).parse()
    client.with_raw_response.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi")
    names = sorted(s.name for s in span_exporter.get_finished_spans())
    assert names == [f"chat {MODEL}", "text_completion gpt-3.5-turbo-instruct"]


def test_streaming_accessor_kept_from_before_instrument(
    instrument_openai, span_exporter, client
) -> None:
    streaming = client.chat.completions.with_streaming_response
    instrument_openai()
    with streaming.create(
        model=MODEL, messages=user(), stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(response.parse())
    assert chunks[-1].usage is not None
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens


def test_responses_raw_retrieve_stream_kept_from_before_instrument(
    instrument_openai, span_exporter, client
) -> None:
    raw_responses = client.responses.with_raw_response
    queued = client.responses.create(model=MODEL, input="Hello Paris", background=True)
    instrument_openai()
    events = list(raw_responses.retrieve(queued.id, stream=True).parse())
    raw_responses.create(model=MODEL, input="Hi").parse()
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 2
    streamed = next(s for s in spans if attrs(s)["gen_ai.request.stream"])
    assert attrs(streamed)["gen_ai.response.id"] == queued.id == events[-1].response.id


async def test_async_accessors_kept_from_before_instrument(
    instrument_openai, span_exporter, aclient
) -> None:
    raw_chat = aclient.chat.completions.with_raw_response
    streaming = aclient.responses.with_streaming_response
    instrument_openai()
    raw = await raw_chat.create(model=MODEL, messages=user())
    completion = raw.parse()  # a legacy raw response parses synchronously, async or not
    async with streaming.create(model=MODEL, input="Hi", stream=True) as response:
        events = [e async for e in await response.parse()]
    assert events[-1].type == "response.completed"
    spans = sorted(span_exporter.get_finished_spans(), key=lambda s: s.start_time)
    assert [attrs(s)["gen_ai.response.id"] for s in spans] == [
        completion.id,
        events[-1].response.id,
    ]


def test_uninstrument_takes_the_descriptors_away(instrument_openai, span_exporter, client) -> None:
    raw_chat = client.chat.completions.with_raw_response
    instrumentor = instrument_openai()
    assert any("create" in vars(cls) for cls in ACCESSOR_CLASSES)
    raw_chat.create(model=MODEL, messages=user()).parse()
    assert len(span_exporter.get_finished_spans()) == 1
    instrumentor.uninstrument()
    for cls in ACCESSOR_CLASSES:
        assert not {"create", "parse", "retrieve"} & set(vars(cls)), cls
    span_exporter.clear()
    raw_chat.create(model=MODEL, messages=user()).parse()
    client.chat.completions.with_raw_response.create(model=MODEL, messages=user()).parse()
    assert not span_exporter.get_finished_spans()


def test_accessor_from_an_earlier_instrumentation_is_traced_once(
    instrument_openai, span_exporter, client, tracer_provider, meter_provider
) -> None:
    instrumentor = instrument_openai()
    raw_chat = client.chat.completions.with_raw_response  # bound to this instrumentation
    instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        raw_chat.create(model=MODEL, messages=user()).parse()
        assert len(span_exporter.get_finished_spans()) == 1
    finally:
        instrumentor.uninstrument()


def test_assigned_attribute_is_left_as_it_is(instrument_openai, client) -> None:
    raw_chat = client.chat.completions.with_raw_response
    instrument_openai()

    def replacement(**kwargs: Any) -> str:
        return "mine"

    raw_chat.create = replacement
    assert raw_chat.create is replacement
    assert raw_chat.create() == "mine"
    del raw_chat.create
    with pytest.raises(AttributeError):
        raw_chat.create  # noqa: B018
