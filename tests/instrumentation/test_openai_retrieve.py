"""``responses.retrieve(response_id, stream=True)``: streaming an existing (background)
response again, directly or through ``responses.stream(response_id=...)``, is a streamed
``chat`` span whose model, usage, output and finish reason come from the events."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from .test_openai_support import (
    MODEL,
    SCENARIO,
    attrs,
    content,
    data_points,
    only_span,
)

PROMPT = "Tell me about Paris"


def _background(client: openai.OpenAI, text: str = PROMPT) -> Any:
    """A background response, created before llmtap is on (its own span is not the subject)."""
    response = client.responses.create(model=MODEL, input=text, background=True)
    assert response.status == "queued"
    return response


def test_retrieve_stream_is_a_streamed_chat_span(
    instrument_openai, span_exporter, metric_reader, client, devserver
) -> None:
    queued = _background(client)
    instrument_openai()
    events = list(client.responses.retrieve(queued.id, stream=True))
    final = events[-1].response
    assert events[-1].type == "response.completed" and final.status == "completed"
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == "chat"  # the request names no model (gen_ai.request.model unknown)
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["openai.api.type"] == "responses"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == devserver.port
    assert "gen_ai.request.model" not in a
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.id"] == queued.id == final.id
    assert a["gen_ai.response.model"] == final.model == MODEL
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["gen_ai.usage.input_tokens"] == final.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert "gen_ai.input.messages" not in a  # the request carries no input
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": final.output_text}],
            "finish_reason": "stop",
        }
    ]
    (duration,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.response.model"] == MODEL
    assert data_points(metric_reader, "gen_ai.client.operation.time_to_first_chunk")


def test_retrieve_stream_resumed_after_a_sequence_number(
    instrument_openai, span_exporter, client
) -> None:
    queued = _background(client)
    instrument_openai()
    events = list(client.responses.retrieve(queued.id, stream=True, starting_after=6))
    assert events[0].sequence_number == 7  # no response.created: the model is in the last one
    final = events[-1].response
    span = only_span(span_exporter)
    a = attrs(span)
    assert a["gen_ai.response.model"] == MODEL
    assert a["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert content(span, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "text", "content": final.output_text}  # whole, though its start was skipped
    ]


def test_background_create_then_stream_helper_by_id(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    queued = client.responses.create(model=MODEL, input=PROMPT, background=True)
    with client.responses.stream(response_id=queued.id, starting_after=3) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert all(e.sequence_number > 3 for e in events)
    created, resumed = sorted(span_exporter.get_finished_spans(), key=lambda s: s.start_time)
    # the queued create: nothing finished yet, so no finish reason and no output
    assert attrs(created)["gen_ai.response.id"] == queued.id
    assert "gen_ai.response.finish_reasons" not in attrs(created)
    assert "gen_ai.output.messages" not in attrs(created)
    a = attrs(resumed)
    assert a["gen_ai.response.id"] == queued.id
    assert a["llmtap.stream.end"] in ("completed", "closed")
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert content(resumed, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "text", "content": final.output_text}
    ]


def test_retrieve_without_stream_is_a_lookup_not_a_span(
    instrument_openai, span_exporter, client
) -> None:
    queued = _background(client)
    instrument_openai()
    assert client.responses.retrieve(queued.id).status == "completed"
    assert not span_exporter.get_finished_spans()


def test_retrieve_stream_of_an_unknown_response(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_unknown", stream=True)
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "NotFoundError"
    assert attrs(span)["gen_ai.response.id"] == "resp_unknown"


def test_retrieve_stream_broken(instrument_openai, span_exporter, client) -> None:
    queued = _background(client)
    instrument_openai()
    # which class a cut connection raises depends on the SDK release (APIConnectionError
    # from openai 3.14 on, the transport's own error before): the span names the one raised
    with pytest.raises(Exception) as info:
        list(
            client.responses.retrieve(
                queued.id, stream=True, extra_headers={SCENARIO: "broken_stream:4"}
            )
        )
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    a = attrs(span)
    assert a["error.type"] == type(info.value).__qualname__
    assert a["llmtap.stream.end"] == "error"
    assert a["gen_ai.response.model"] == MODEL  # from the first events


def test_retrieve_stream_with_raw_response(instrument_openai, span_exporter, client) -> None:
    queued = _background(client)
    instrument_openai()
    raw = client.responses.with_raw_response.retrieve(queued.id, stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = list(raw.parse())
    assert events[-1].type == "response.completed"
    assert attrs(only_span(span_exporter))["llmtap.stream.end"] == "completed"


def test_beta_retrieve_stream(instrument_openai, span_exporter, client) -> None:
    queued = _background(client)
    instrument_openai()
    events = list(client.beta.responses.retrieve(queued.id, stream=True))
    assert events[-1].type == "response.completed"
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.response.id"] == queued.id
    assert a["gen_ai.response.model"] == MODEL


async def test_async_retrieve_stream_and_helper(instrument_openai, span_exporter, aclient):
    queued = await aclient.responses.create(model=MODEL, input=PROMPT, background=True)
    instrument_openai()
    stream = await aclient.responses.retrieve(queued.id, stream=True)
    events = [e async for e in stream]
    async with aclient.responses.stream(response_id=queued.id) as helper:
        final = await helper.get_final_response()
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        a = attrs(span)
        assert span.name == "chat"
        assert a["gen_ai.response.id"] == queued.id
        assert a["gen_ai.response.model"] == MODEL
        assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert events[-1].response.output_text == final.output_text
