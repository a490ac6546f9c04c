"""Cross-cutting behaviour of the OpenAI instrumentation: the app sees what it would see
without llmtap, one span per call, provider detection, business context, content caps,
uninstrument, resilience to llmtap's own failures, and the metric shapes."""

from __future__ import annotations

import asyncio
import gc
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import openai
import openai.resources.chat.completions.completions as chat_module
import openai.resources.completions as completions_module
import openai.resources.embeddings as embeddings_module
import openai.resources.responses.responses as responses_module
import pytest
import wrapt
from opentelemetry.instrumentation.threading import ThreadingInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

import llmtap
from llmtap import semconv
from llmtap.config import CaptureMode, ContentLimits, Settings
from llmtap.devserver.transport import IN_PROCESS_BASE_URL, DevServerTransport
from llmtap.instrumentation.openai import OpenAIInstrumentor
from llmtap.instrumentation.openai._chat import ChatAccumulator, ChatAdapter
from llmtap.pipeline import tokens

from .test_openai_support import (
    EMBED_MODEL,
    MODEL,
    RESPONSES_WEATHER_TOOL,
    SCENARIO,
    WEATHER_TOOL,
    async_client,
    attrs,
    content,
    data_points,
    dump,
    finished,
    only_span,
    routed_client,
    sync_client,
    user,
)

SPEC_TOKEN_BUCKETS = [
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
]  # fmt: skip
SPEC_DURATION_BUCKETS = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
]  # fmt: skip

_PATCHED = [
    (chat_module.Completions, "create"),
    (chat_module.Completions, "parse"),
    (chat_module.AsyncCompletions, "create"),
    (chat_module.AsyncCompletions, "parse"),
    (responses_module.Responses, "create"),
    (responses_module.Responses, "parse"),
    (responses_module.AsyncResponses, "create"),
    (responses_module.AsyncResponses, "parse"),
    (responses_module.Responses, "retrieve"),
    (responses_module.AsyncResponses, "retrieve"),
    (completions_module.Completions, "create"),
    (completions_module.AsyncCompletions, "create"),
    (embeddings_module.Embeddings, "create"),
    (embeddings_module.AsyncEmbeddings, "create"),
]


class City(BaseModel):
    name: str
    population: int


def _originals() -> list[Any]:
    return [cls.__dict__[name] for cls, name in _PATCHED]


# the app sees what it would see without llmtap ----------------------------------------------


def _calls(client: openai.OpenAI) -> list[Any]:
    return [
        dump(client.chat.completions.create(model=MODEL, messages=user(), temperature=0.5)),
        dump(client.chat.completions.create(model=MODEL, messages=user(), n=2, seed=1)),
        dump(
            client.chat.completions.create(
                model=MODEL, messages=user("Weather in Paris?"), tools=[WEATHER_TOOL]
            )
        ),
        dump(
            client.chat.completions.parse(
                model=MODEL, messages=user("Describe Paris"), response_format=City
            )
        ),
        [
            dump(c)
            for c in client.chat.completions.create(model=MODEL, messages=user(), stream=True)
        ],
        [
            dump(c)
            for c in client.chat.completions.create(
                model=MODEL,
                messages=user("Weather in Paris?"),
                tools=[WEATHER_TOOL],
                stream=True,
                stream_options={"include_usage": True},
            )
        ],
        dump(client.responses.create(model=MODEL, input="Hi", tools=[RESPONSES_WEATHER_TOOL])),
        dump(client.responses.parse(model=MODEL, input="Describe Paris", text_format=City)),
        [dump(e) for e in client.responses.create(model="gpt-5", input="Hi", stream=True)],
        dump(client.embeddings.create(model=EMBED_MODEL, input=["a", "b"], dimensions=4)),
    ]


def _errors(client: openai.OpenAI) -> list[tuple[type, str]]:
    out = []
    for scenario in ("rate_limit", "server_error", "bad_request", "auth", "not_found"):
        try:
            client.chat.completions.create(
                model=MODEL, messages=user(), extra_headers={SCENARIO: scenario}
            )
        except openai.APIStatusError as exc:
            out.append((type(exc), str(exc), exc.status_code, exc.body))
    return out


def test_differential_results_and_errors(instrument_openai, span_exporter, devserver) -> None:
    with sync_client(devserver) as plain:
        expected, expected_errors = _calls(plain), _errors(plain)
    instrument_openai()
    with sync_client(devserver) as client:
        got, got_errors = _calls(client), _errors(client)
    assert got == expected
    assert got_errors == expected_errors and len(got_errors) == 5
    # in call order: a stream without usage ends its span later, on the token worker
    spans = sorted(finished(span_exporter), key=lambda s: s.start_time)
    assert len(spans) == len(expected) + len(expected_errors)
    assert [s.status.status_code for s in spans[-5:]] == [StatusCode.ERROR] * 5
    assert [attrs(s)["error.type"] for s in spans[-5:]] == [
        "RateLimitError",
        "InternalServerError",
        "BadRequestError",
        "AuthenticationError",
        "NotFoundError",
    ]


async def test_async_differential(instrument_openai, devserver) -> None:
    async def run() -> list[Any]:
        client = async_client(devserver)
        out = [
            dump(await client.chat.completions.create(model=MODEL, messages=user())),
            [
                dump(c)
                async for c in await client.chat.completions.create(
                    model=MODEL, messages=user(), stream=True
                )
            ],
            dump(await client.responses.create(model=MODEL, input="Hi")),
            dump(await client.embeddings.create(model=EMBED_MODEL, input="a", dimensions=4)),
        ]
        await client.close()
        return out

    expected = await run()
    instrument_openai()
    assert await run() == expected


# one span per call ----------------------------------------------------------------------


def test_second_instrument_is_a_no_op(
    instrument_openai, span_exporter, tracer_provider, meter_provider, client
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    original = chat_module.Completions.__dict__["create"]
    instrumentor = instrument_openai()
    other = InMemorySpanExporter()
    other_provider = TracerProvider()
    other_provider.add_span_processor(SimpleSpanProcessor(other))
    instrumentor.instrument(
        tracer_provider=other_provider, settings=Settings(capture=CaptureMode.SPAN_ONLY)
    )
    client.chat.completions.create(model=MODEL, messages=user())
    assert len(span_exporter.get_finished_spans()) == 1
    assert not other.get_finished_spans()
    assert chat_module.Completions.__dict__["create"].__wrapped__ is original  # wrapped once


def test_call_made_inside_an_instrumented_call_is_not_traced_twice(
    instrument_openai, span_exporter, devserver
) -> None:
    inner = sync_client(devserver)
    results: list[Any] = []

    class Nesting(DevServerTransport):
        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            if not results:  # while the outer call is in flight, make another one
                results.append(inner.chat.completions.create(model=MODEL, messages=user("inner")))
            return super().handle_request(request)

    instrument_openai()
    outer = openai.OpenAI(
        base_url=f"{IN_PROCESS_BASE_URL}/v1",
        api_key="k",
        http_client=httpx2.Client(transport=Nesting()),
    )
    completion = outer.chat.completions.create(model=MODEL, messages=user("outer"))
    inner.close()
    outer.close()
    assert "inner" in results[0].choices[0].message.content
    span = only_span(span_exporter)
    assert attrs(span)["gen_ai.response.id"] == completion.id
    assert attrs(span)["server.address"] == "llmtap-devserver.local"


def test_suppressed_instrumentation_makes_no_span(instrument_openai, span_exporter, client):
    instrument_openai()
    with suppress_instrumentation():
        completion = client.chat.completions.create(model=MODEL, messages=user())
    assert completion.choices[0].message.content
    assert not span_exporter.get_finished_spans()


# provider detection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "provider", "host"),
    [
        ({"base_url": "https://api.groq.com/openai/v1"}, "groq", "api.groq.com"),
        ({"base_url": "https://api.deepseek.com/v1"}, "deepseek", "api.deepseek.com"),
        ({"base_url": "https://api.x.ai/v1"}, "x_ai", "api.x.ai"),
        ({"base_url": "https://api.openai.com/v1"}, "openai", "api.openai.com"),
        (
            {"azure_endpoint": "https://contoso.openai.azure.com", "api_version": "2024-10-21"},
            "azure.ai.openai",
            "contoso.openai.azure.com",
        ),
    ],
)
def test_provider_from_the_client(
    instrument_openai, span_exporter, metric_reader, kwargs, provider, host
) -> None:
    instrument_openai()
    cls = openai.AzureOpenAI if "azure_endpoint" in kwargs else openai.OpenAI
    with routed_client(cls, **kwargs) as client:
        client.chat.completions.create(model=MODEL, messages=user())
        client.embeddings.create(model=EMBED_MODEL, input="a")
    spans = span_exporter.get_finished_spans()
    assert [s.name for s in spans] == [f"chat {MODEL}", f"embeddings {EMBED_MODEL}"]
    for span in spans:
        a = attrs(span)
        assert a["gen_ai.provider.name"] == provider
        assert a["server.address"] == host
        assert a["server.port"] == 443
    (point, _) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert point.attributes["gen_ai.provider.name"] == provider


# business context -------------------------------------------------------------------------

CONTEXT_ATTRS = {
    "user.id": "u-7",
    "session.id": "s-42",
    "gen_ai.conversation.id": "s-42",
    "llmtap.feature": "support",
    "llmtap.metadata.tier": "gold",
    "llmtap.metadata.retries": 3,
}


def _context() -> Any:
    return llmtap.context(
        user_id="u-7", session_id="s-42", feature="support", metadata={"tier": "gold", "retries": 3}
    )


def _has_context(span: Any) -> bool:
    a = attrs(span)
    present = {k: a[k] for k in CONTEXT_ATTRS if k in a}
    assert present in ({}, CONTEXT_ATTRS)
    return bool(present)


def test_context_is_stamped_on_sync_calls_and_streams(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    with _context():
        client.chat.completions.create(model=MODEL, messages=user())
        stream = client.chat.completions.create(model=MODEL, messages=user(), stream=True)
    list(stream)  # consumed outside the block: the span started inside it
    tokens.flush()  # the stream's span ends on the token worker: before the next call's
    client.chat.completions.create(model=MODEL, messages=user())
    assert [_has_context(s) for s in span_exporter.get_finished_spans()] == [True, True, False]


async def test_context_follows_asyncio_gather(instrument_openai, span_exporter, devserver):
    instrument_openai()
    client = async_client(devserver)
    with _context():
        await asyncio.gather(
            *(client.chat.completions.create(model=MODEL, messages=user()) for _ in range(3)),
            client.embeddings.create(model=EMBED_MODEL, input="a"),
        )
    await client.close()
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 4
    assert all(_has_context(s) for s in spans)


def test_context_follows_thread_pools_with_threading_instrumentation(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()

    def call(_: int) -> Any:
        return client.chat.completions.create(model=MODEL, messages=user())

    threading = ThreadingInstrumentor()
    ours = not threading.is_instrumented_by_opentelemetry
    if ours:  # without it, a pool thread starts from an empty context
        with _context(), ThreadPoolExecutor(2) as pool:
            list(pool.map(call, range(2)))
        assert [_has_context(s) for s in span_exporter.get_finished_spans()] == [False, False]
        span_exporter.clear()
        threading.instrument()
    try:
        with _context(), ThreadPoolExecutor(2) as pool:
            list(pool.map(call, range(2)))
    finally:
        if ours:
            threading.uninstrument()
    assert [_has_context(s) for s in span_exporter.get_finished_spans()] == [True, True]


# content caps -----------------------------------------------------------------------------


def test_oldest_messages_are_dropped_first(instrument_openai, span_exporter, client) -> None:
    instrument_openai(limits=ContentLimits(max_attribute_chars=400))
    messages = [{"role": "user", "content": f"message {i}: " + "x" * 60} for i in range(10)]
    client.chat.completions.create(model=MODEL, messages=messages)
    span = only_span(span_exporter)
    raw = attrs(span)["gen_ai.input.messages"]
    assert len(raw) <= 400
    kept = json.loads(raw)  # still valid JSON
    dropped = attrs(span)["llmtap.content.dropped_messages"]
    assert dropped == 10 - len(kept) and 0 < len(kept) < 10
    assert [m["parts"][0]["content"] for m in kept] == [m["content"] for m in messages[dropped:]]
    assert "llmtap.content.truncated" not in attrs(span)


def test_long_text_part_is_truncated(instrument_openai, span_exporter, client) -> None:
    instrument_openai(limits=ContentLimits(max_part_chars=100))
    long = "word " * 200
    client.chat.completions.create(model=MODEL, messages=[*user("short"), *user(long)])
    span = only_span(span_exporter)
    first, second = content(span, "gen_ai.input.messages")
    assert first["parts"][0]["content"] == "short"
    text = second["parts"][0]["content"]
    assert text.startswith(long[:100]) and text != long
    assert "truncated 900 chars" in text
    recorded = attrs(span)["gen_ai.input.messages"] + attrs(span)["gen_ai.output.messages"]
    assert attrs(span)["llmtap.content.truncated"] == recorded.count("…[truncated")
    assert "llmtap.content.dropped_messages" not in attrs(span)


@pytest.mark.parametrize("capture_blobs", [False, True])
def test_data_url_image_is_a_blob(instrument_openai, span_exporter, client, capture_blobs):
    instrument_openai(limits=ContentLimits(capture_blobs=capture_blobs))
    data = "QUJD" * 300  # 1200 base64 chars = 900 bytes
    client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
                ],
            }
        ],
    )
    span = only_span(span_exporter)
    (message,) = content(span, "gen_ai.input.messages")
    blob = message["parts"][1]
    assert blob["type"] == "blob"
    assert blob["modality"] == "image"
    assert blob["mime_type"] == "image/png"
    if capture_blobs:
        assert blob["content"] == data
        assert "llmtap.content.blobs_omitted" not in attrs(span)
    else:
        assert blob["content"] == "<omitted 900 bytes>"
        assert attrs(span)["llmtap.content.blobs_omitted"] == 1


def test_one_huge_message_is_shrunk_to_fit(instrument_openai, span_exporter, client) -> None:
    instrument_openai(limits=ContentLimits(max_attribute_chars=1000))
    client.chat.completions.create(model=MODEL, messages=user("y" * 5000))
    span = only_span(span_exporter)
    raw = attrs(span)["gen_ai.input.messages"]
    assert len(raw) <= 1000
    (message,) = json.loads(raw)
    assert message["parts"][0]["content"].startswith("yyyy")
    assert attrs(span)["llmtap.content.truncated"] >= 1


def test_truncated_count_matches_the_recorded_content(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai(limits=ContentLimits(max_attribute_chars=300, max_part_chars=40))
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"{i} " + "z" * 80} for i in range(6)]
    )
    a = attrs(only_span(span_exporter))
    recorded = a["gen_ai.input.messages"] + a["gen_ai.output.messages"]
    assert a["llmtap.content.dropped_messages"] > 0
    assert a["llmtap.content.truncated"] == recorded.count("…[truncated")


def test_event_only_capture_puts_content_on_the_event(
    instrument_openai, span_exporter, log_exporter, client
) -> None:
    instrument_openai(capture="event_only")
    client.chat.completions.create(model=MODEL, messages=user())
    span = only_span(span_exporter)
    assert "gen_ai.input.messages" not in attrs(span)
    (record,) = log_exporter.get_finished_logs()
    log = getattr(record, "log_record", record)
    assert log.event_name == "gen_ai.client.inference.operation.details"
    assert json.loads(log.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Tell me about Paris"}]}
    ]
    assert log.attributes["gen_ai.response.id"] == attrs(span)["gen_ai.response.id"]
    assert log.span_id == span.context.span_id


# uninstrument -----------------------------------------------------------------------------


def test_uninstrument_restores_the_sdk(instrument_openai, span_exporter, client) -> None:
    originals = _originals()
    instrumentor = instrument_openai()
    for wrapper, original in zip(_originals(), originals, strict=True):
        assert wrapper is not original
        assert wrapper.__wrapped__ is original
    client.chat.completions.create(model=MODEL, messages=user())
    assert len(span_exporter.get_finished_spans()) == 1
    instrumentor.uninstrument()
    assert all(a is b for a, b in zip(_originals(), originals, strict=True))
    span_exporter.clear()
    client.chat.completions.create(model=MODEL, messages=user())
    list(client.chat.completions.create(model=MODEL, messages=user(), stream=True))
    client.responses.create(model=MODEL, input="Hi")
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi")
    client.embeddings.create(model=EMBED_MODEL, input="a")
    assert not span_exporter.get_finished_spans()


def test_uninstrument_through_a_fresh_handle(tracer_provider, meter_provider) -> None:
    """BaseInstrumentor is a per-class singleton: ``OpenAIInstrumentor().uninstrument()``
    from anywhere (even after a repeated ``OpenAIInstrumentor().instrument()``) unpatches."""
    originals = _originals()
    first = OpenAIInstrumentor()
    first.instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        settings=Settings(capture=CaptureMode.SPAN_ONLY),
    )
    try:
        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)  # a no-op
        assert OpenAIInstrumentor() is first
        OpenAIInstrumentor().uninstrument()
        assert all(a is b for a, b in zip(_originals(), originals, strict=True))
    finally:  # whatever the outcome, leave the SDK as it was for the other tests
        for cls, name in _PATCHED:
            current = cls.__dict__[name]
            if isinstance(current, wrapt.FunctionWrapper):
                setattr(cls, name, current.__wrapped__)
        first._is_instrumented_by_opentelemetry = False


def test_no_spans_after_uninstrument_through_raw_response(
    instrument_openai, span_exporter, client
) -> None:
    instrumentor = instrument_openai()
    client.chat.completions.with_raw_response.create(model=MODEL, messages=user()).parse()
    assert len(span_exporter.get_finished_spans()) == 1
    instrumentor.uninstrument()
    span_exporter.clear()
    client.chat.completions.with_raw_response.create(model=MODEL, messages=user()).parse()
    assert not span_exporter.get_finished_spans()


# llmtap's own failures never break the call ---------------------------------------------------


def test_unreadable_messages_do_not_break_the_call(instrument_openai, devserver) -> None:
    odd = [
        {"role": "assistant", "content": "x", "tool_calls": "not a list of calls"},
        {"role": "user", "content": "Tell me about Paris"},
    ]
    with sync_client(devserver) as plain:
        expected = dump(plain.chat.completions.create(model=MODEL, messages=odd))
    instrument_openai()
    with sync_client(devserver) as client:
        got = dump(client.chat.completions.create(model=MODEL, messages=odd))
    assert got == expected


def test_failing_response_translation_returns_the_result(
    instrument_openai, span_exporter, monkeypatch, devserver
) -> None:
    with sync_client(devserver) as plain:
        expected = dump(plain.chat.completions.create(model=MODEL, messages=user()))

    def broken(self, call, result):
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(ChatAdapter, "complete", broken)
    instrument_openai()
    with sync_client(devserver) as client:
        got = dump(client.chat.completions.create(model=MODEL, messages=user()))
    assert got == expected
    span = only_span(span_exporter)  # still ended, with what was known before the failure
    assert span.status.status_code is StatusCode.UNSET
    assert attrs(span)["gen_ai.request.model"] == MODEL


def test_failing_request_translation_leaves_the_call_alone(
    instrument_openai, span_exporter, monkeypatch, devserver
) -> None:
    def broken(self, instance, args, kwargs):
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(ChatAdapter, "begin", broken)
    instrument_openai()
    with sync_client(devserver) as client:
        completion = client.chat.completions.create(model=MODEL, messages=user())
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="devserver-rate_limit", messages=user())
    assert completion.choices[0].message.content
    assert not span_exporter.get_finished_spans()


@pytest.mark.parametrize("method", ["add", "finish"])
def test_failing_stream_accumulator_keeps_the_stream_intact(
    instrument_openai, span_exporter, monkeypatch, devserver, method
) -> None:
    with sync_client(devserver) as plain:
        expected = [
            dump(c)
            for c in plain.chat.completions.create(model=MODEL, messages=user(), stream=True)
        ]

    def broken(*args):
        raise RuntimeError("accumulator bug")

    monkeypatch.setattr(ChatAccumulator, method, broken)
    instrument_openai()
    with sync_client(devserver) as client:
        got = [
            dump(c)
            for c in client.chat.completions.create(model=MODEL, messages=user(), stream=True)
        ]
    assert got == expected
    assert attrs(only_span(span_exporter))["llmtap.stream.end"] == "completed"


def test_generator_messages_without_content_capture(
    instrument_openai, span_exporter, devserver
) -> None:
    instrument_openai(capture="no_content")
    with sync_client(devserver) as client:
        completion = client.chat.completions.create(
            model=MODEL, messages=(m for m in user("Tell me about Paris"))
        )
    assert "Tell me about Paris" in completion.choices[0].message.content
    assert attrs(only_span(span_exporter))["gen_ai.response.id"] == completion.id


def test_generator_messages_and_tools_reach_the_sdk(instrument_openai, devserver) -> None:
    """One-shot iterables (allowed by the SDK's ``Iterable[...]`` types) are read for the
    span without being taken away from the SDK."""

    def run(client: openai.OpenAI) -> list[Any]:
        return [
            dump(client.chat.completions.create(model=MODEL, messages=iter(user()))),
            dump(
                client.chat.completions.create(
                    model=MODEL,
                    messages=iter(user("Weather in Paris?")),
                    tools=iter([WEATHER_TOOL]),
                )
            ),
        ]

    with sync_client(devserver) as plain:
        expected = run(plain)
    assert expected[1]["choices"][0]["finish_reason"] == "tool_calls"
    instrument_openai()
    with sync_client(devserver) as client:
        assert run(client) == expected


def test_generator_messages_survive_a_translation_failure(instrument_openai, devserver) -> None:
    odd = [
        {"role": "assistant", "content": "x", "tool_calls": "not a list of calls"},
        {"role": "user", "content": "Tell me about Paris"},
    ]
    with sync_client(devserver) as plain:
        expected = dump(plain.chat.completions.create(model=MODEL, messages=iter(odd)))
    instrument_openai()
    with sync_client(devserver) as client:
        got = dump(client.chat.completions.create(model=MODEL, messages=iter(odd)))
    assert got == expected


def test_chained_raw_stream_parse(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    stream = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=user(), stream=True
    ).parse()
    gc.collect()
    assert not span_exporter.get_finished_spans()
    chunks = list(stream)
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.id"] == chunks[0].id


async def test_async_chained_raw_stream_parse(instrument_openai, span_exporter, devserver):
    instrument_openai()
    client = async_client(devserver)
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=user(), stream=True
    )
    stream = raw.parse()
    del raw
    gc.collect()
    chunks = [c async for c in stream]
    await client.close()
    a = attrs(only_span(span_exporter))
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.id"] == chunks[0].id


# metrics ----------------------------------------------------------------------------------


def test_metric_shapes(instrument_openai, metric_reader, client, devserver) -> None:
    instrument_openai()
    completion = client.chat.completions.create(model=MODEL, messages=user())
    list(client.chat.completions.create(model=MODEL, messages=user(), stream=True))
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": MODEL,
        "server.address": "127.0.0.1",
        "server.port": devserver.port,
    }
    (duration,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert dict(duration.attributes) == base
    assert duration.count == 2
    assert list(duration.explicit_bounds) == SPEC_DURATION_BUCKETS
    tokens = data_points(metric_reader, "gen_ai.client.token.usage")
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens}
    assert set(by_type) == {"input", "output"}
    for token_type, point in by_type.items():
        assert dict(point.attributes) == {**base, "gen_ai.token.type": token_type}
        assert list(point.explicit_bounds) == SPEC_TOKEN_BUCKETS
        assert point.count == 2
    assert by_type["input"].min <= completion.usage.prompt_tokens <= by_type["input"].max
    (ttfc,) = data_points(metric_reader, "gen_ai.client.operation.time_to_first_chunk")
    assert list(ttfc.explicit_bounds) == list(semconv.DURATION_BUCKETS)
    assert ttfc.count == 1
    (per_chunk,) = data_points(metric_reader, "gen_ai.client.operation.time_per_output_chunk")
    assert list(per_chunk.explicit_bounds) == list(semconv.CHUNK_BUCKETS)
