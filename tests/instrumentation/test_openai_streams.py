"""Chat Completions streams: how the span ends, what it carries, what the app still sees."""

from __future__ import annotations

import gc
import json
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from support.sdk_releases import OPENAI_MID_STREAM_ERROR

from .test_openai_support import (
    MODEL,
    SCENARIO,
    WEATHER_TOOL,
    async_client,
    attrs,
    content,
    data_points,
    dump,
    finished,
    only_span,
    sync_client,
    user,
)


def _text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _stream_requests(devserver: Any) -> list[dict[str, Any]]:
    return [
        json.loads(r.body)
        for r in devserver.requests.all()
        if r.path.endswith("/chat/completions") and json.loads(r.body).get("stream")
    ]


# a stream read to the end -------------------------------------------------------------------


def test_full_iteration_records_ttfc_chunks_and_estimated_usage(
    instrument_openai, span_exporter, metric_reader, client
) -> None:
    instrument_openai()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=user(),
        stream=True,
        extra_headers={SCENARIO: "slow_first_chunk:40"},
    )
    assert not span_exporter.get_finished_spans()  # open while the stream is unread
    chunks = list(stream)
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.request.stream"] is True
    assert a["llmtap.stream.end"] == "completed"
    ttfc = a["gen_ai.response.time_to_first_chunk"]
    duration = (span.end_time - span.start_time) / 1e9
    assert 0.04 <= ttfc <= duration
    assert a["gen_ai.response.id"] == chunks[0].id
    assert a["gen_ai.response.model"] == MODEL
    assert a["openai.response.system_fingerprint"] == "fp_llmtap_dev"
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    # the server sent no usage: estimated, and marked so
    assert a["llmtap.usage.estimated"] is True
    method = a["llmtap.usage.estimate_method"]
    assert isinstance(method, str) and (method.startswith("tiktoken:") or method == "chars/4")
    assert a["gen_ai.usage.input_tokens"] > 0
    assert a["gen_ai.usage.output_tokens"] > 0
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": _text(chunks)}],
            "finish_reason": "stop",
        }
    ]
    (first,) = data_points(metric_reader, "gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1
    assert first.sum == pytest.approx(ttfc)
    assert first.attributes["gen_ai.operation.name"] == "chat"
    assert first.attributes["gen_ai.request.model"] == MODEL
    (per_chunk,) = data_points(metric_reader, "gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count == len(chunks) - 1
    assert per_chunk.attributes["gen_ai.provider.name"] == "openai"
    tokens = {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in data_points(metric_reader, "gen_ai.client.token.usage")
    }
    assert tokens == {
        "input": a["gen_ai.usage.input_tokens"],
        "output": a["gen_ai.usage.output_tokens"],
    }


def test_per_chunk_metric_carries_the_response_model(
    instrument_openai, metric_reader, client
) -> None:
    instrument_openai()
    list(client.chat.completions.create(model=MODEL, messages=user(), stream=True))
    (ttfc,) = data_points(metric_reader, "gen_ai.client.operation.time_to_first_chunk")
    (per_chunk,) = data_points(metric_reader, "gen_ai.client.operation.time_per_output_chunk")
    assert ttfc.attributes["gen_ai.response.model"] == MODEL
    assert dict(per_chunk.attributes) == dict(ttfc.attributes)


def test_include_usage_is_taken_from_the_stream(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=user(), stream=True, stream_options={"include_usage": True}
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []  # the app sees the usage chunk
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert "llmtap.usage.estimated" not in a
    assert "llmtap.usage.estimate_method" not in a


def test_two_choices_are_accumulated_separately(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    chunks = list(client.chat.completions.create(model=MODEL, messages=user(), stream=True, n=2))
    texts = ["", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    span = only_span(span_exporter)
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["stop", "stop"]
    assert attrs(span)["gen_ai.request.choice.count"] == 2
    out = content(span, "gen_ai.output.messages")
    assert [m["parts"] for m in out] == [[{"type": "text", "content": t}] for t in texts]


def test_streamed_tool_call_deltas_are_assembled(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=user("Weather in Paris?"), tools=[WEATHER_TOOL], stream=True
        )
    )
    deltas = [c.choices[0].delta.tool_calls for c in chunks if c.choices]
    fragments = [d[0].function.arguments for d in deltas if d]
    assert len([f for f in fragments if f]) > 1  # the arguments really came in pieces
    call_id = next(d[0].id for d in deltas if d and d[0].id)
    span = only_span(span_exporter)
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["tool_calls"]
    assert content(span, "gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "id": call_id,
                    "arguments": json.loads("".join(fragments)),
                }
            ],
            "finish_reason": "tool_call",
        }
    ]


def test_streamed_refusal(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=user("Please refuse"), stream=True)
    )
    refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
    assert refusal
    span = only_span(span_exporter)
    assert attrs(span)["llmtap.response.refusal"] is True
    assert content(span, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "text", "content": refusal}
    ]


def test_stream_keeps_the_sdk_surface(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    stream = client.chat.completions.create(model=MODEL, messages=user(), stream=True)
    assert isinstance(stream, openai.Stream)
    assert stream.response.headers["x-request-id"].startswith("req_")
    assert stream.response.status_code == 200
    assert iter(stream) is stream
    list(stream)
    assert attrs(only_span(span_exporter))["llmtap.stream.end"] == "completed"


# a stream left unfinished ---------------------------------------------------------------------


def test_break_then_garbage_collected_is_abandoned(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    stream = client.chat.completions.create(model=MODEL, messages=user(), stream=True)
    for _ in stream:
        break
    assert not span_exporter.get_finished_spans()
    del stream
    gc.collect()
    span = only_span(span_exporter)
    a = attrs(span)
    assert a["llmtap.stream.end"] == "abandoned"
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.response.id"].startswith("chatcmpl-")
    assert a["gen_ai.response.time_to_first_chunk"] > 0


def test_close_ends_the_span_once(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    stream = client.chat.completions.create(model=MODEL, messages=user(), stream=True)
    next(stream)
    stream.close()
    assert attrs(only_span(span_exporter))["llmtap.stream.end"] == "closed"
    stream.close()
    del stream
    gc.collect()
    assert len(span_exporter.get_finished_spans()) == 1


def test_with_block_exit_closes(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    with client.chat.completions.create(model=MODEL, messages=user(), stream=True) as stream:
        next(stream)
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "closed"


def test_response_close_ends_the_span(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    stream = client.chat.completions.create(model=MODEL, messages=user(), stream=True)
    next(stream)
    stream.response.close()
    assert attrs(only_span(span_exporter))["llmtap.stream.end"] == "closed"


@pytest.mark.parametrize(
    ("scenario", "error_class"),
    [("broken_stream:4", OPENAI_MID_STREAM_ERROR), ("stream_error:4", openai.APIError)],
)
def test_failing_stream_reraises_the_sdk_error(
    instrument_openai, span_exporter, metric_reader, devserver, scenario, error_class
) -> None:
    def consume(client: openai.OpenAI) -> tuple[list[Any], BaseException]:
        received: list[Any] = []
        stream = client.chat.completions.create(
            model=MODEL, messages=user(), stream=True, extra_headers={SCENARIO: scenario}
        )
        with pytest.raises(error_class) as info:
            for chunk in stream:
                received.append(dump(chunk))
        return received, info.value

    with sync_client(devserver) as plain:
        expected_chunks, expected = consume(plain)
    instrument_openai()
    with sync_client(devserver) as client:
        chunks, got = consume(client)
    assert type(got) is type(expected)
    assert str(got) == str(expected)
    assert chunks == expected_chunks and len(chunks) == 4
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == type(got).__name__
    assert a["llmtap.stream.end"] == "error"
    assert a["gen_ai.response.id"] == chunks[0]["id"]
    (point,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == type(got).__name__


# the chat.completions.stream() helper ----------------------------------------------------------


def test_stream_helper_events_and_final_completion(
    instrument_openai, span_exporter, devserver
) -> None:
    def run(client: openai.OpenAI) -> tuple[list[str], Any]:
        with client.chat.completions.stream(model=MODEL, messages=user()) as stream:
            events = [e.type for e in stream]
            return events, stream.get_final_completion()

    with sync_client(devserver) as plain:
        expected_events, expected_final = run(plain)
    instrument_openai()
    with sync_client(devserver) as client:
        events, final = run(client)
    assert events == expected_events
    assert {"chunk", "content.delta", "content.done"} <= set(events)
    assert dump(final) == dump(expected_final)
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.id"] == final.id
    text = final.choices[0].message.content
    out = content(only_span(span_exporter), "gen_ai.output.messages")
    assert out[0]["parts"] == [{"type": "text", "content": text}]


def test_stream_helper_early_exit_ends_the_span(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    with client.chat.completions.stream(model=MODEL, messages=user()) as stream:
        for _ in stream:
            break
        assert not span_exporter.get_finished_spans()
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "closed"


# inject_stream_usage ------------------------------------------------------------------------


def test_inject_stream_usage_hides_the_usage_chunk(
    instrument_openai, span_exporter, devserver
) -> None:
    with sync_client(devserver) as plain:
        expected = [
            dump(c, "id")
            for c in plain.chat.completions.create(model=MODEL, messages=user(), stream=True)
        ]
        with_usage = list(
            plain.chat.completions.create(
                model=MODEL, messages=user(), stream=True, stream_options={"include_usage": True}
            )
        )
    server_usage = with_usage[-1].usage
    assert server_usage is not None
    instrument_openai(inject_stream_usage=True)
    devserver.requests.clear()
    with sync_client(devserver) as client:
        chunks = list(client.chat.completions.create(model=MODEL, messages=user(), stream=True))
    (sent,) = _stream_requests(devserver)
    assert sent["stream_options"] == {"include_usage": True}
    assert [dump(c, "id") for c in chunks] == expected
    assert all(c.choices for c in chunks)  # no usage-only chunk reached the app
    a = attrs(only_span(span_exporter))
    assert "llmtap.usage.estimated" not in a
    assert a["gen_ai.usage.input_tokens"] == server_usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == server_usage.completion_tokens
    assert a["llmtap.stream.end"] == "completed"


def test_inject_stream_usage_chunks_serialize_like_uninstrumented(
    instrument_openai, devserver
) -> None:
    with sync_client(devserver) as plain:
        expected = [
            c.to_dict()
            for c in plain.chat.completions.create(model=MODEL, messages=user(), stream=True)
        ]
    instrument_openai(inject_stream_usage=True)
    with sync_client(devserver) as client:
        got = [
            c.to_dict()
            for c in client.chat.completions.create(model=MODEL, messages=user(), stream=True)
        ]
    for chunk in (*expected, *got):
        chunk.pop("id"), chunk.pop("created")
    assert got == expected


def test_inject_stream_usage_respects_the_callers_options(
    instrument_openai, span_exporter, devserver
) -> None:
    instrument_openai(inject_stream_usage=True)
    options = {"include_obfuscation": False}
    devserver.requests.clear()
    with sync_client(devserver) as client:
        list(
            client.chat.completions.create(
                model=MODEL, messages=user(), stream=True, stream_options=options
            )
        )
        # asked for by the app: the usage chunk is the app's and stays visible
        chunks = list(
            client.chat.completions.create(
                model=MODEL, messages=user(), stream=True, stream_options={"include_usage": True}
            )
        )
    assert options == {"include_obfuscation": False}  # the caller's dict is not mutated
    first, second = _stream_requests(devserver)
    assert first["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert second["stream_options"] == {"include_usage": True}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    spans = span_exporter.get_finished_spans()
    assert [attrs(s).get("llmtap.usage.estimated") for s in spans] == [None, None]


def test_inject_stream_usage_leaves_non_streaming_calls_alone(instrument_openai, devserver) -> None:
    instrument_openai(inject_stream_usage=True)
    devserver.requests.clear()
    with sync_client(devserver) as client:
        client.chat.completions.create(model=MODEL, messages=user())
    (request,) = devserver.requests.all()
    assert "stream_options" not in json.loads(request.body)


def test_inject_stream_usage_with_stream_helper(
    instrument_openai, span_exporter, devserver
) -> None:
    with (
        sync_client(devserver) as plain,
        plain.chat.completions.stream(model=MODEL, messages=user()) as stream,
    ):
        expected = [e.type for e in stream]
        expected_final = stream.get_final_completion()
    instrument_openai(inject_stream_usage=True)
    with (
        sync_client(devserver) as client,
        client.chat.completions.stream(model=MODEL, messages=user()) as stream,
    ):
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    assert events == expected
    assert final.usage is None and expected_final.usage is None
    a = attrs(only_span(span_exporter))
    assert "llmtap.usage.estimated" not in a
    assert a["gen_ai.usage.output_tokens"] > 0


# async -------------------------------------------------------------------------------------


async def test_async_full_iteration(instrument_openai, span_exporter, metric_reader, aclient):
    instrument_openai()
    stream = await aclient.chat.completions.create(model=MODEL, messages=user(), stream=True)
    assert isinstance(stream, openai.AsyncStream)
    assert stream.response.headers["x-request-id"].startswith("req_")
    chunks = [c async for c in stream]
    span = only_span(span_exporter)
    a = attrs(span)
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["llmtap.usage.estimated"] is True
    assert content(span, "gen_ai.output.messages")[0]["parts"][0]["content"] == _text(chunks)
    (first,) = data_points(metric_reader, "gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1
    (per_chunk,) = data_points(metric_reader, "gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count == len(chunks) - 1


async def test_async_abandoned(instrument_openai, span_exporter, aclient) -> None:
    instrument_openai()
    stream = await aclient.chat.completions.create(model=MODEL, messages=user(), stream=True)
    async for _ in stream:
        break
    del stream
    gc.collect()
    assert attrs(only_span(span_exporter))["llmtap.stream.end"] == "abandoned"


async def test_async_close_and_with(instrument_openai, span_exporter, aclient) -> None:
    instrument_openai()
    stream = await aclient.chat.completions.create(model=MODEL, messages=user(), stream=True)
    await stream.__anext__()
    await stream.close()
    async with await aclient.chat.completions.create(
        model=MODEL, messages=user(), stream=True
    ) as stream:
        await stream.__anext__()
    ends = [attrs(s)["llmtap.stream.end"] for s in finished(span_exporter)]
    assert ends == ["closed", "closed"]


async def test_async_broken_stream(instrument_openai, span_exporter, devserver) -> None:
    async def consume(client: openai.AsyncOpenAI) -> BaseException:
        stream = await client.chat.completions.create(
            model="devserver-broken_stream", messages=user(), stream=True
        )
        with pytest.raises(OPENAI_MID_STREAM_ERROR) as info:
            async for _ in stream:
                pass
        await client.close()
        return info.value

    expected = await consume(async_client(devserver))
    instrument_openai()
    got = await consume(async_client(devserver))
    assert type(got) is type(expected)
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == type(got).__name__
    assert attrs(span)["llmtap.stream.end"] == "error"


async def test_async_stream_helper(instrument_openai, span_exporter, aclient) -> None:
    instrument_openai()
    async with aclient.chat.completions.stream(model=MODEL, messages=user()) as stream:
        events = [e.type async for e in stream]
        final = await stream.get_final_completion()
    assert "content.done" in events
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.id"] == final.id


async def test_async_inject_stream_usage(instrument_openai, span_exporter, devserver) -> None:
    plain = async_client(devserver)
    expected = [
        dump(c, "id")
        async for c in await plain.chat.completions.create(
            model=MODEL, messages=user(), stream=True
        )
    ]
    await plain.close()
    instrument_openai(inject_stream_usage=True)
    client = async_client(devserver)
    got = [
        dump(c, "id")
        async for c in await client.chat.completions.create(
            model=MODEL, messages=user(), stream=True
        )
    ]
    await client.close()
    assert got == expected
    assert "llmtap.usage.estimated" not in attrs(only_span(span_exporter))
