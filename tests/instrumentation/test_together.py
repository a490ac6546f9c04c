"""Together instrumentation against the real ``together`` SDK talking to the devserver (nothing
mocked): chat (sync, async, streams, tools), completions, embeddings, rerank, errors, content
capture modes, metrics, and what the app receives (the same with and without llmtap).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import together
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv
from llmtap.config import CaptureMode
from llmtap.export.readable import to_span_data
from llmtap.pipeline.cost import CostStage

from .test_openai_support import (
    WEATHER_TOOL,
    attrs,
    content,
    data_points,
    dump,
    finished,
    only_span,
    sync_client,
    user,
)

TARGET = "llmtap.instrumentation.together:TogetherInstrumentor"
MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
BASE_MODEL = "meta-llama/Llama-2-70b-hf"
EMBED_MODEL = "BAAI/bge-base-en-v1.5"
RERANK_MODEL = "Salesforce/Llama-Rank-V1"


def base_url(devserver: Any) -> str:
    """The devserver's Together root: 3.x paths start with ``/v1``, 2.x base URLs end with it."""
    source = inspect.getsource(together.resources.chat.completions)
    root = f"{devserver.base_url}/together"
    return root if '"/v1/chat/completions"' in source else f"{root}/v1"


@pytest.fixture
def client(devserver: Any) -> Iterator[together.Together]:
    made = together.Together(base_url=base_url(devserver), api_key="test-key", max_retries=0)
    yield made
    made.close()


@pytest.fixture
async def aclient(devserver: Any) -> AsyncIterator[together.AsyncTogether]:
    made = together.AsyncTogether(base_url=base_url(devserver), api_key="test-key", max_retries=0)
    yield made
    await made.close()


@pytest.fixture
def instrument_together(instrument: Any) -> Any:
    def go(**kwargs: Any) -> Any:
        return instrument(TARGET, **kwargs)

    return go


def _no_openai_attributes(a: dict[str, Any]) -> None:
    assert not [key for key in a if key.startswith("openai.")]


# chat ---------------------------------------------------------------------------------------


def test_chat_span(instrument_together, client, span_exporter, devserver) -> None:
    instrument_together()
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be terse."}, *user("Hi Together")],
        temperature=0.7,
        top_p=0.8,
        max_tokens=128,
        stop=["END"],
        seed=5,
    )
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "together_ai"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == devserver.port
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.request.temperature"] == 0.7
    assert a["gen_ai.request.top_p"] == 0.8
    assert a["gen_ai.request.max_tokens"] == 128
    assert a["gen_ai.request.seed"] == 5
    assert list(a["gen_ai.request.stop_sequences"]) == ["END"]
    assert a["gen_ai.response.id"] == completion.id
    assert a["gen_ai.response.model"] == MODEL
    assert list(a["gen_ai.response.finish_reasons"]) == ["eos"]  # Together's own value
    assert a["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens > 0
    _no_openai_attributes(a)
    assert content(span, semconv.INPUT_MESSAGES)[0] == {
        "role": "system",
        "parts": [{"type": "text", "content": "Be terse."}],
    }
    assert content(span, semconv.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": completion.choices[0].message.content}],
            "finish_reason": "stop",
        }
    ]


async def test_async_chat(instrument_together, aclient, span_exporter) -> None:
    instrument_together()
    completion = await aclient.chat.completions.create(model=MODEL, messages=user("async"))
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.provider.name"] == "together_ai"
    assert a["gen_ai.response.id"] == completion.id


def test_chat_tools(instrument_together, client, span_exporter) -> None:
    instrument_together()
    completion = client.chat.completions.create(
        model=MODEL, messages=user("Weather in Paris?"), tools=[WEATHER_TOOL]
    )
    call = completion.choices[0].message.tool_calls[0]
    span = only_span(span_exporter)
    assert list(span.attributes["gen_ai.response.finish_reasons"]) == ["tool_calls"]
    assert content(span, semconv.TOOL_DEFINITIONS)[0]["name"] == "get_weather"
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["parts"] == [
        {
            "type": "tool_call",
            "id": call.id,
            "name": "get_weather",
            "arguments": json.loads(call.function.arguments),
        }
    ]


def test_chat_stream(instrument_together, client, span_exporter, devserver) -> None:
    instrument_together()
    chunks = list(client.chat.completions.create(model=MODEL, messages=user("s"), stream=True))
    assert chunks[-1].usage is not None
    span = only_span(span_exporter)
    a = attrs(span)
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.id"] == chunks[0].id
    assert list(a["gen_ai.response.finish_reasons"]) == ["eos"]
    assert a["gen_ai.usage.input_tokens"] == chunks[-1].usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens
    assert "llmtap.usage.estimated" not in a
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    _no_openai_attributes(a)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["parts"] == [{"type": "text", "content": text}]
    assert message["finish_reason"] == "stop"
    sent = json.loads(devserver.requests.all()[-1].body)
    assert sent["stream"] is True and "stream_options" not in sent


async def test_async_chat_stream_tool_call(instrument_together, aclient, span_exporter) -> None:
    instrument_together()
    stream = await aclient.chat.completions.create(
        model=MODEL, messages=user("Weather in Rome?"), tools=[WEATHER_TOOL], stream=True
    )
    async for _ in stream:
        pass
    (message,) = content(only_span(span_exporter), semconv.OUTPUT_MESSAGES)
    (part,) = message["parts"]
    assert part["type"] == "tool_call" and part["name"] == "get_weather"
    assert part["arguments"] == {"city": "Rome", "days": 42}


def test_stream_error(instrument_together, client, span_exporter) -> None:
    instrument_together()
    stream = client.chat.completions.create(
        model="devserver-stream_error", messages=user("s"), stream=True
    )
    with pytest.raises(together.APIError) as caught:
        for _ in stream:
            pass
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(caught.value).__qualname__


# completions, embeddings, rerank ------------------------------------------------------------


def test_completion(instrument_together, client, span_exporter) -> None:
    instrument_together()
    completion = client.completions.create(model=BASE_MODEL, prompt="Once upon", max_tokens=4)
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"text_completion {BASE_MODEL}"
    assert a["gen_ai.provider.name"] == "together_ai"
    assert a["gen_ai.request.max_tokens"] == 4
    assert list(a["gen_ai.response.finish_reasons"]) == ["length"]
    assert a["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    _no_openai_attributes(a)
    assert content(span, semconv.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Once upon"}]}
    ]


async def test_completion_stream(instrument_together, aclient, span_exporter) -> None:
    instrument_together()
    stream = await aclient.completions.create(model=BASE_MODEL, prompt="Once upon", stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].finish_reason == "eos" and chunks[-1].usage is not None
    span = only_span(span_exporter)
    a = attrs(span)
    assert list(a["gen_ai.response.finish_reasons"]) == ["eos"]  # from the chunk's top level
    assert a["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["parts"][0]["content"] == "".join(c.choices[0].text for c in chunks)
    assert message["finish_reason"] == "stop"


def test_embeddings(instrument_together, client, span_exporter) -> None:
    instrument_together()
    result = client.embeddings.create(model=EMBED_MODEL, input=["a", "b"])
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"embeddings {EMBED_MODEL}"
    assert a["gen_ai.provider.name"] == "together_ai"
    assert a["gen_ai.response.model"] == EMBED_MODEL
    assert a["gen_ai.embeddings.dimension.count"] == len(result.data[0].embedding) == 768


def test_rerank(instrument_together, client, span_exporter) -> None:
    instrument_together()
    documents = ["Berlin is in Germany", "Paris is the capital of France"]
    result = client.rerank.create(
        model=RERANK_MODEL, query="capital of France", documents=documents, top_n=2
    )
    assert [r.index for r in result.results] == [1, 0]
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"rerank {RERANK_MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "rerank"
    assert a["llmtap.step.kind"] == "rerank"
    assert a["gen_ai.provider.name"] == "together_ai"
    assert a["gen_ai.response.id"] == result.id
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert a["gen_ai.retrieval.query.text"] == "capital of France"
    assert json.loads(a["gen_ai.retrieval.documents"]) == [
        {"id": "1", "score": 1.0, "content": documents[1]},
        {"id": "0", "score": result.results[1].relevance_score, "content": documents[0]},
    ]


def test_rerank_is_priced_per_input_token(
    instrument_together, client, span_exporter, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("LLMTAP_DATA_DIR", str(tmp_path))  # the bundled prices only
    monkeypatch.delenv("LLMTAP_PRICING_FILE", raising=False)
    instrument_together()
    result = client.rerank.create(model=RERANK_MODEL, query="France", documents=["a", "b"])
    data = to_span_data(only_span(span_exporter))
    CostStage(meter_provider=MeterProvider()).apply(data)
    # together_ai/Salesforce/Llama-Rank-V1: 1e-7 per input token
    expected = result.usage.prompt_tokens * 1e-7
    assert data.attributes[semconv.LLMTAP_COST_TOTAL] == pytest.approx(expected, abs=1e-12)
    assert data.attributes[semconv.LLMTAP_COST_PRICE_MODEL] == f"together_ai/{RERANK_MODEL}"


async def test_async_rerank_no_content(instrument_together, aclient, span_exporter) -> None:
    instrument_together(capture="no_content")
    await aclient.rerank.create(
        model=RERANK_MODEL,
        query="q",
        documents=[{"title": "A", "body": "q here"}],
        rank_fields=["body"],
    )
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.operation.name"] == "rerank"
    assert "gen_ai.retrieval.query.text" not in a and "gen_ai.retrieval.documents" not in a


# errors, capture modes, metrics -------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "error", "status"),
    [
        ("rate_limit", together.RateLimitError, 429),
        ("not_found", together.NotFoundError, 404),
        ("overloaded", together.InternalServerError, 503),
    ],
)
def test_status_errors(
    instrument_together, client, span_exporter, metric_reader, scenario, error, status
) -> None:
    instrument_together()
    with pytest.raises(error) as caught:
        client.chat.completions.create(model=f"devserver-{scenario}", messages=user())
    assert caught.value.status_code == status
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == error.__name__
    (point,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == error.__name__
    assert point.attributes["gen_ai.provider.name"] == "together_ai"


def test_embeddings_error(instrument_together, client, span_exporter) -> None:
    instrument_together()
    with pytest.raises(together.AuthenticationError):
        client.embeddings.create(model="devserver-auth", input="x")
    assert only_span(span_exporter).attributes["error.type"] == "AuthenticationError"


def test_event_only(instrument_together, client, span_exporter, log_exporter) -> None:
    instrument_together(capture=CaptureMode.EVENT_ONLY)
    client.chat.completions.create(model=MODEL, messages=user("event"))
    span = only_span(span_exporter)
    assert semconv.INPUT_MESSAGES not in span.attributes
    (record,) = log_exporter.get_finished_logs()
    assert record.log_record.event_name == semconv.EVENT_INFERENCE_DETAILS
    messages = json.loads(record.log_record.attributes[semconv.INPUT_MESSAGES])
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "event"}]}]


def test_no_content(instrument_together, client, span_exporter, log_exporter) -> None:
    instrument_together(capture="no_content")
    client.chat.completions.create(model=MODEL, messages=user(), tools=[WEATHER_TOOL])
    list(client.completions.create(model=BASE_MODEL, prompt="x", stream=True))
    spans = finished(span_exporter)
    assert len(spans) == 2
    for span in spans:
        assert span.attributes["gen_ai.usage.output_tokens"] > 0
        for key in (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.TOOL_DEFINITIONS):
            assert key not in span.attributes
    assert log_exporter.get_finished_logs() == ()


def test_metrics(instrument_together, client, metric_reader) -> None:
    instrument_together()
    completion = client.chat.completions.create(model=MODEL, messages=user())
    (duration,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.provider.name"] == "together_ai"
    assert duration.attributes["gen_ai.request.model"] == MODEL
    usage = {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in data_points(metric_reader, "gen_ai.client.token.usage")
    }
    assert usage == {
        "input": completion.usage.prompt_tokens,
        "output": completion.usage.completion_tokens,
    }


# what the app receives, and one span only -----------------------------------------------------


def test_differential(instrument, client, span_exporter) -> None:
    def calls() -> list[Any]:
        chat = client.chat.completions.create(model=MODEL, messages=user("same"))
        tools = client.chat.completions.create(
            model=MODEL, messages=user("Weather in Oslo?"), tools=[WEATHER_TOOL]
        )
        stream = client.chat.completions.create(model=MODEL, messages=user("same"), stream=True)
        text = client.completions.create(model=BASE_MODEL, prompt="same", stream=True)
        embedded = client.embeddings.create(model=EMBED_MODEL, input="same")
        ranked = client.rerank.create(model=RERANK_MODEL, query="same", documents=["same", "x"])
        return [
            dump(chat),
            dump(tools),
            [dump(chunk) for chunk in stream],
            [dump(chunk) for chunk in text],
            dump(embedded),
            dump(ranked),
        ]

    before = calls()
    instrument(TARGET)
    after = calls()
    assert after == before
    assert len(finished(span_exporter)) == 6


def test_raw_response(instrument_together, client, span_exporter) -> None:
    instrument_together()
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=user())
    assert raw.headers["x-inference-version"] == "v2"
    completion = raw.parse()  # the span ends once the app reads the body
    assert attrs(only_span(span_exporter))["gen_ai.response.id"] == completion.id


def test_openai_instrumented_too_one_span(instrument, client, devserver, span_exporter) -> None:
    instrument("llmtap.instrumentation.openai:OpenAIInstrumentor")
    instrument(TARGET)
    client.chat.completions.create(model=MODEL, messages=user())
    assert attrs(only_span(span_exporter))["gen_ai.provider.name"] == "together_ai"
    span_exporter.clear()
    openai_client = sync_client(devserver)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=user())
    openai_client.close()
    assert attrs(only_span(span_exporter))["gen_ai.provider.name"] == "openai"


def test_uninstrument(instrument_together, client, span_exporter) -> None:
    instrument_together().uninstrument()
    client.chat.completions.create(model=MODEL, messages=user())
    client.rerank.create(model=RERANK_MODEL, query="q", documents=["q"])
    assert finished(span_exporter) == ()


def test_raw_accessor_built_before_instrument(instrument_together, client, span_exporter) -> None:
    raw = client.rerank.with_raw_response  # cached by the SDK
    streaming = client.with_streaming_response.embeddings
    instrument_together()
    raw.create(model=RERANK_MODEL, query="q", documents=["q"]).parse()
    with streaming.create(model=EMBED_MODEL, input="x") as response:
        response.parse()
    spans = finished(span_exporter)
    assert [s.attributes["gen_ai.operation.name"] for s in spans] == ["rerank", "embeddings"]
