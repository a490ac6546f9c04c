"""Ollama instrumentation against the real ``ollama`` SDK talking to the devserver's Ollama API
over loopback (nothing mocked; the SDK only ever talks to the host it is given)."""

from __future__ import annotations

import base64
import gc
import inspect
import json
import os
import socket
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
from ollama._types import ChatRequest, Image
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv
from llmtap.devserver import DevServer
from llmtap.instrumentation._invocation import SCOPE
from llmtap.instrumentation.ollama import _adapter
from llmtap.pipeline.cost import CostStage, PricingConfig
from llmtap.pipeline.span import SpanData

TARGET = "llmtap.instrumentation.ollama:OllamaInstrumentor"
MODEL = "llama3.2"
SCHEMAS = Path("/work/shared/semconv-genai-v1.41/docs")
ANSWER = 'Hello from the llmtap devserver! You said: "Hi Paris". This is a deterministic reply.'
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
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)


def add_numbers(a: int, b: int) -> int:
    """
    Add two numbers.

    Args:
      a: The first number
      b: The second number

    Returns:
      int: The sum
    """
    return a + b


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


# fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def client(devserver: DevServer) -> Iterator[ollama.Client]:
    made = ollama.Client(host=devserver.base_url)
    yield made
    made._client.close()  # Client.close() is newer than ollama 0.4


@pytest.fixture
def aclient(devserver: DevServer) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=devserver.base_url)


@pytest.fixture
def instrumented(instrument: Any) -> Any:
    return instrument(TARGET, capture="span_only")


def only_span(exporter: Any) -> Any:
    spans = exporter.get_finished_spans()
    assert [s.instrumentation_scope.name for s in spans] == [SCOPE], [s.name for s in spans]
    return spans[0]


def content(span: Any, key: str) -> Any:
    return json.loads(span.attributes[key])


def validate(span: Any, key: str, schema_file: str) -> Any:
    import jsonschema

    value = content(span, key)
    jsonschema.validate(value, json.loads((SCHEMAS / schema_file).read_text()))
    return value


def metric_points(reader: Any, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    points: list[Any] = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    points += list(metric.data.data_points)
    return points


def plain(response: Any) -> Any:
    """A response (or chunk) as data, without the server's wall-clock timestamp."""
    if isinstance(response, list):
        return [plain(item) for item in response]
    return response.model_dump(exclude={"created_at"})


# chat -------------------------------------------------------------------------------------


def test_chat(instrumented, client, devserver, span_exporter):
    response = client.chat(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, *_user("Hi Paris")],
        options={
            "temperature": 0.3,
            "top_p": 0.9,
            "top_k": 40,
            "num_predict": 100,
            "seed": 7,
            "stop": ["END"],
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
        },
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[semconv.OPERATION] == "chat" and attrs[semconv.PROVIDER] == "ollama"
    assert attrs[semconv.REQUEST_MODEL] == MODEL and attrs[semconv.RESPONSE_MODEL] == MODEL
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[semconv.SERVER_PORT] == devserver.port
    assert attrs[semconv.REQUEST_STREAM] is False
    assert attrs[semconv.REQUEST_TEMPERATURE] == 0.3 and attrs[semconv.REQUEST_TOP_P] == 0.9
    assert attrs[semconv.REQUEST_TOP_K] == 40.0 and attrs[semconv.REQUEST_MAX_TOKENS] == 100
    assert attrs[semconv.REQUEST_SEED] == 7
    assert list(attrs[semconv.REQUEST_STOP_SEQUENCES]) == ["END"]
    assert attrs[semconv.REQUEST_PRESENCE_PENALTY] == 0.1
    assert attrs[semconv.REQUEST_FREQUENCY_PENALTY] == 0.2
    assert list(attrs[semconv.RESPONSE_FINISH_REASONS]) == ["stop"]
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.prompt_eval_count
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.eval_count
    assert semconv.RESPONSE_ID not in attrs  # Ollama has none
    assert semconv.OUTPUT_TYPE not in attrs
    inputs = validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert inputs == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Hi Paris"}]},
    ]
    outputs = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert outputs == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": ANSWER}],
            "finish_reason": "stop",
        }
    ]


def test_chat_positional_arguments_and_options_model(instrumented, client, span_exporter):
    client.chat(MODEL, _user("Hi Paris"), options=ollama.Options(temperature=0.5, num_predict=3))
    attrs = only_span(span_exporter).attributes
    assert attrs[semconv.REQUEST_MODEL] == MODEL
    assert attrs[semconv.REQUEST_TEMPERATURE] == 0.5 and attrs[semconv.REQUEST_MAX_TOKENS] == 3
    assert list(attrs[semconv.RESPONSE_FINISH_REASONS]) == ["length"]
    (message,) = content(only_span(span_exporter), semconv.OUTPUT_MESSAGES)
    assert message["finish_reason"] == "length"
    assert content(only_span(span_exporter), semconv.INPUT_MESSAGES)[0]["parts"] == [
        {"type": "text", "content": "Hi Paris"}
    ]


def test_negative_num_predict_is_no_max_tokens(instrumented, client, span_exporter):
    client.chat(model=MODEL, messages=_user("Hi"), options={"num_predict": -1})
    assert semconv.REQUEST_MAX_TOKENS not in only_span(span_exporter).attributes


async def test_chat_async(instrumented, aclient, span_exporter):
    response = await aclient.chat(model=MODEL, messages=_user("Hi Paris"))
    span = only_span(span_exporter)
    assert span.attributes[semconv.OPERATION] == "chat"
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == response.eval_count
    assert content(span, semconv.OUTPUT_MESSAGES)[0]["parts"][0]["content"] == ANSWER


def test_message_models_images_and_a_one_shot_iterable(instrumented, client, span_exporter):
    messages = iter(
        [
            ollama.Message(role="system", content="Look closely."),
            {"role": "user", "content": "What is this?", "images": [PNG]},
            {"role": "user", "content": "Hi Paris", "images": [base64.b64decode(PNG)]},
        ]
    )
    response = client.chat(model=MODEL, messages=messages)
    assert response.message.content == ANSWER  # the SDK got every message
    system, first, second = content(only_span(span_exporter), semconv.INPUT_MESSAGES)
    assert system == {"role": "system", "parts": [{"type": "text", "content": "Look closely."}]}
    assert first["parts"][0] == {"type": "text", "content": "What is this?"}
    assert first["parts"][1]["type"] == "blob" and first["parts"][1]["modality"] == "image"
    assert second["parts"][1]["type"] == "blob"


def test_image_forms():
    """What an image part records: base64 data, raw bytes (encoded), a file (its name only)."""
    blob = {"type": "blob", "modality": "image", "content": PNG}
    assert _adapter._image_part(Image(value=PNG)) == blob
    assert _adapter._image_part(base64.b64decode(PNG)) == blob
    assert _adapter._image_part(Path("/photos/cat.png")) == {
        "type": "uri",
        "modality": "image",
        "uri": "/photos/cat.png",
    }


# generate ---------------------------------------------------------------------------------


def test_generate(instrumented, client, span_exporter):
    response = client.generate(model=MODEL, prompt="Hi Paris", system="Be brief.")
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"text_completion {MODEL}"
    assert attrs[semconv.OPERATION] == "text_completion"
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.prompt_eval_count
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.eval_count
    assert list(attrs[semconv.RESPONSE_FINISH_REASONS]) == ["stop"]
    system = validate(span, semconv.SYSTEM_INSTRUCTIONS, "gen-ai-system-instructions.json")
    assert system == [{"type": "text", "content": "Be brief."}]
    assert validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json") == [
        {"role": "user", "parts": [{"type": "text", "content": "Hi Paris"}]}
    ]
    (output,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert output["parts"] == [{"type": "text", "content": ANSWER}]


def test_generate_stream(instrumented, client, span_exporter, metric_reader):
    chunks = list(client.generate(model=MODEL, prompt="Hi Paris", stream=True))
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.REQUEST_STREAM] is True
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert 0 < attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] < span.end_time - span.start_time
    assert attrs[semconv.USAGE_INPUT_TOKENS] == chunks[-1].prompt_eval_count
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == chunks[-1].eval_count
    assert list(attrs[semconv.RESPONSE_FINISH_REASONS]) == ["stop"]
    assert attrs[semconv.RESPONSE_MODEL] == MODEL
    (output,) = content(span, semconv.OUTPUT_MESSAGES)
    assert output["parts"] == [{"type": "text", "content": ANSWER}]
    (ttfc,) = metric_points(metric_reader, semconv.METRIC_TIME_TO_FIRST_CHUNK)
    assert ttfc.count == 1
    (per_chunk,) = metric_points(metric_reader, semconv.METRIC_TIME_PER_OUTPUT_CHUNK)
    assert per_chunk.count == len(chunks) - 1


async def test_chat_stream_async(instrumented, aclient, span_exporter):
    stream = await aclient.chat(model=MODEL, messages=_user("Hi Paris"), stream=True)
    assert not span_exporter.get_finished_spans()  # open until the stream ends
    chunks = [chunk async for chunk in stream]
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == chunks[-1].eval_count
    assert semconv.RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes
    assert content(span, semconv.OUTPUT_MESSAGES)[0]["parts"][0]["content"] == ANSWER


def test_stream_abandoned(instrumented, client, span_exporter):
    stream = client.chat(model=MODEL, messages=_user("Hi Paris"), stream=True)
    for _ in stream:
        break
    del stream
    gc.collect()
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "abandoned"
    assert semconv.USAGE_OUTPUT_TOKENS not in span.attributes  # the final chunk never came
    (output,) = content(span, semconv.OUTPUT_MESSAGES)
    assert output["parts"] == [{"type": "text", "content": "Hello "}]


def test_stream_closed(instrumented, client, span_exporter):
    stream = client.generate(model=MODEL, prompt="Hi", stream=True)
    next(stream)
    stream.close()
    assert only_span(span_exporter).attributes[semconv.LLMTAP_STREAM_END] == "closed"


# tools, format, think -------------------------------------------------------------------------


def test_tools(instrumented, client, span_exporter):
    time_tool = {"type": "function", "function": {"name": "now", "description": "The time"}}
    response = client.chat(
        model=MODEL,
        messages=_user("Weather in Paris?"),
        tools=[WEATHER, add_numbers, ollama.Tool.model_validate(time_tool)],
    )
    span = only_span(span_exporter)
    tools = validate(span, semconv.TOOL_DEFINITIONS, "gen-ai-tool-definitions.json")
    assert tools[0] == {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": WEATHER["function"]["parameters"],
    }
    assert tools[1]["name"] == "add_numbers" and tools[1]["description"] == "Add two numbers."
    assert set(tools[1]["parameters"]["properties"]) == {"a", "b"}
    assert tools[2] == {"type": "function", "name": "now", "description": "The time"}
    (output,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    call = response.message.tool_calls[0].function
    assert output["parts"] == [
        {"type": "tool_call", "name": call.name, "arguments": dict(call.arguments)}
    ]
    assert output["finish_reason"] == "tool_call"
    assert list(span.attributes[semconv.RESPONSE_FINISH_REASONS]) == ["stop"]  # as reported


def test_tool_round_trip_input(instrumented, client, span_exporter):
    first = client.chat(model=MODEL, messages=_user("Weather in Paris?"), tools=[WEATHER])
    span_exporter.clear()
    follow_up = [
        *_user("Weather in Paris?"),
        first.message,
        {"role": "tool", "content": "18 degrees", "tool_name": "get_weather"},
    ]
    client.chat(model=MODEL, messages=follow_up, tools=[WEATHER])
    span = only_span(span_exporter)
    inputs = validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert inputs[1] == {
        "role": "assistant",
        "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}}],
    }
    assert inputs[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "response": "18 degrees"}],
        "name": "get_weather",
    }
    (output,) = content(span, semconv.OUTPUT_MESSAGES)
    assert output["finish_reason"] == "stop"


def test_tools_streamed(instrumented, client, span_exporter):
    list(
        client.chat(model=MODEL, messages=_user("Weather in Paris?"), tools=[WEATHER], stream=True)
    )
    (output,) = content(only_span(span_exporter), semconv.OUTPUT_MESSAGES)
    assert output["parts"] == [
        {"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert output["finish_reason"] == "tool_call"


@pytest.mark.parametrize(
    "fmt",
    [
        "json",
        pytest.param(
            {"type": "object", "properties": {"city": {"type": "string"}}},
            marks=needs_schema_format,
        ),
    ],
)
def test_format_is_json_output(instrumented, client, span_exporter, fmt):
    client.chat(model=MODEL, messages=_user("Hi Paris"), format=fmt)
    assert only_span(span_exporter).attributes[semconv.OUTPUT_TYPE] == "json"


@needs_think
def test_think(instrumented, client, span_exporter):
    response = client.chat(model="qwen3", messages=_user("Hi Paris"), think=True)
    (output,) = content(only_span(span_exporter), semconv.OUTPUT_MESSAGES)
    assert output["parts"] == [
        {"type": "reasoning", "content": response.message.thinking},
        {"type": "text", "content": ANSWER},
    ]
    span_exporter.clear()
    chunks = list(client.generate(model="qwen3", prompt="Hi Paris", think=True, stream=True))
    (output,) = content(only_span(span_exporter), semconv.OUTPUT_MESSAGES)
    assert output["parts"][0] == {
        "type": "reasoning",
        "content": "".join(c.thinking or "" for c in chunks),
    }
    assert output["parts"][1] == {"type": "text", "content": ANSWER}


# embeddings -------------------------------------------------------------------------------


def test_embed(instrumented, client, span_exporter, metric_reader):
    response = client.embed(model="nomic-embed-text", input=["Hi Paris", "Bye"])
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == "embeddings nomic-embed-text"
    assert attrs[semconv.OPERATION] == "embeddings" and attrs[semconv.PROVIDER] == "ollama"
    assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == 384 == len(response.embeddings[0])
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.prompt_eval_count
    assert semconv.USAGE_OUTPUT_TOKENS not in attrs
    assert semconv.INPUT_MESSAGES not in attrs
    (tokens,) = metric_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
    assert tokens.attributes[semconv.TOKEN_TYPE] == "input" and tokens.sum == 3


@needs_dimensions
def test_embed_dimensions(instrumented, client, span_exporter):
    response = client.embed(model="nomic-embed-text", input="Hi", dimensions=16)
    assert len(response.embeddings[0]) == 16
    assert only_span(span_exporter).attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] == 16


def test_legacy_embeddings(instrumented, client, span_exporter):
    response = client.embeddings(model="nomic-embed-text", prompt="Hi Paris")
    attrs = only_span(span_exporter).attributes
    assert attrs[semconv.OPERATION] == "embeddings"
    assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == len(response.embedding) == 384


async def test_embed_async(instrumented, aclient, span_exporter):
    await aclient.embed("nomic-embed-text", "Hi")
    attrs = only_span(span_exporter).attributes
    assert attrs[semconv.REQUEST_MODEL] == "nomic-embed-text"
    assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == 384


# errors -----------------------------------------------------------------------------------


def test_model_not_found(instrumented, client, span_exporter, metric_reader):
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="devserver-not_found", messages=_user("Hi"))
    assert caught.value.status_code == 404
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ResponseError"
    assert "not found" in span.status.description
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes[semconv.ERROR_TYPE] == "ResponseError"


def test_error_opening_a_stream(instrumented, client, span_exporter):
    stream = client.generate(model="devserver-rate_limit", prompt="Hi", stream=True)
    with pytest.raises(ollama.ResponseError) as caught:
        next(stream)
    assert caught.value.status_code == 429
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "ResponseError"
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "error"


def test_mid_stream_error(instrumented, client, span_exporter):
    got = []
    with pytest.raises(ollama.ResponseError):
        for chunk in client.chat(
            model="devserver-stream_error:2", messages=_user("Hi Paris"), stream=True
        ):
            got.append(chunk)
    span = only_span(span_exporter)
    assert len(got) == 2
    assert span.attributes[semconv.ERROR_TYPE] == "ResponseError"
    (output,) = content(span, semconv.OUTPUT_MESSAGES)
    assert output["finish_reason"] == "error"
    assert output["parts"][0]["content"] == "Hello from "


async def test_broken_stream_async(instrumented, aclient, span_exporter):
    stream = await aclient.chat(
        model="devserver-broken_stream:3", messages=_user("Hi"), stream=True
    )
    with pytest.raises(httpx.RemoteProtocolError):
        async for _ in stream:
            pass
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "RemoteProtocolError"


def test_connection_error(instrumented, span_exporter):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = ollama.Client(host=f"http://127.0.0.1:{port}")
    # the SDK raises ConnectionError (httpx's ConnectError before ollama 0.4.5)
    with pytest.raises((ConnectionError, httpx.ConnectError)) as caught:
        refused.chat(model=MODEL, messages=_user("Hi"))
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == type(caught.value).__qualname__
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.SERVER_PORT] == port


# capture modes, metrics, cost -------------------------------------------------------------


def test_no_content(instrument, client, span_exporter, log_exporter):
    instrument(TARGET, capture="no_content")
    client.chat(model=MODEL, messages=_user("Hi Paris"), tools=[WEATHER])
    attrs = only_span(span_exporter).attributes
    for key in (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.TOOL_DEFINITIONS):
        assert key not in attrs
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] > 0
    assert log_exporter.get_finished_logs() == ()


def test_event_only(instrument, client, span_exporter, log_exporter):
    instrument(TARGET, capture="event_only")
    client.generate(model=MODEL, prompt="Hi Paris")
    span = only_span(span_exporter)
    assert semconv.OUTPUT_MESSAGES not in span.attributes
    (log,) = log_exporter.get_finished_logs()
    record = log.log_record
    assert record.event_name == semconv.EVENT_INFERENCE_DETAILS
    assert record.attributes[semconv.PROVIDER] == "ollama"
    output = json.loads(record.attributes[semconv.OUTPUT_MESSAGES])
    assert output[0]["parts"] == [{"type": "text", "content": ANSWER}]


def test_metrics(instrumented, client, metric_reader):
    response = client.chat(model=MODEL, messages=_user("Hi Paris"))
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes[semconv.PROVIDER] == "ollama"
    assert duration.attributes[semconv.OPERATION] == "chat"
    assert duration.attributes[semconv.RESPONSE_MODEL] == MODEL
    usage = {
        p.attributes[semconv.TOKEN_TYPE]: p.sum
        for p in metric_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
    }
    assert usage == {"input": response.prompt_eval_count, "output": response.eval_count}


def test_cost_is_zero_and_marked_local(instrumented, client, span_exporter):
    client.chat(model=MODEL, messages=_user("Hi Paris"))
    span = only_span(span_exporter)
    priced = SpanData(name=span.name, attributes=dict(span.attributes))
    CostStage(meter_provider=MeterProvider()).apply(priced)
    assert priced.attributes["llmtap.cost.total"] == 0.0
    assert priced.attributes["llmtap.cost.price_source"] == "local"
    assert "llmtap.cost.unknown_model" not in priced.attributes
    prices = {MODEL: {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}}
    configured = SpanData(name=span.name, attributes=dict(span.attributes))
    CostStage(PricingConfig(overrides=prices), meter_provider=MeterProvider()).apply(configured)
    tokens = (
        span.attributes[semconv.USAGE_INPUT_TOKENS] + span.attributes[semconv.USAGE_OUTPUT_TOKENS]
    )
    assert configured.attributes["llmtap.cost.total"] == pytest.approx(tokens * 1e-6)
    assert configured.attributes["llmtap.cost.price_source"] == "override"


# the default client, differential, uninstrument ----------------------------------------------


def test_module_level_functions(instrumented, devserver, span_exporter, monkeypatch):
    default = ollama._client  # the client behind ollama.chat & co
    monkeypatch.setattr(default, "_client", httpx.Client(base_url=devserver.base_url))
    ollama.chat(model=MODEL, messages=_user("Hi Paris"))
    ollama.generate(model=MODEL, prompt="Hi Paris")
    ollama.embed(model="nomic-embed-text", input="Hi")
    spans = span_exporter.get_finished_spans()
    assert [s.name for s in spans] == [
        f"chat {MODEL}",
        f"text_completion {MODEL}",
        "embeddings nomic-embed-text",
    ]
    assert all(s.attributes[semconv.SERVER_PORT] == devserver.port for s in spans)
    default._client.close()


def test_module_level_functions_when_imported_after_instrument(devserver):
    """A fresh interpreter: instrument first, import ``ollama`` after (the default client's
    methods are then bound to the patched ones); one span per call, none after uninstrument."""
    script = textwrap.dedent(
        f"""
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from {TARGET.split(":")[0]} import OllamaInstrumentor
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor = OllamaInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        import ollama
        ollama.chat(model="{MODEL}", messages=[{{"role": "user", "content": "Hi"}}])
        ollama.embed(model="{MODEL}", input="Hi")
        instrumentor.uninstrument()
        ollama.chat(model="{MODEL}", messages=[{{"role": "user", "content": "Hi"}}])
        print([s.name for s in exporter.get_finished_spans()])
        import wrapt
        proxy = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)
        print([m for m in ("chat", "embed") if isinstance(getattr(ollama, m), proxy)])
        """
    )
    env = {**os.environ, "OLLAMA_HOST": devserver.base_url}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # and the module's functions are plain bound methods again
    assert done.stdout.splitlines() == [f"['chat {MODEL}', 'embeddings {MODEL}']", "[]"]


def _calls(client: ollama.Client) -> list[Any]:
    return [
        plain(client.chat(model=MODEL, messages=_user("Hi Paris"), tools=[WEATHER])),
        plain(client.chat(model="qwen3", messages=_user("Hi Paris"), format="json")),
        plain(list(client.chat(model=MODEL, messages=_user("Hi Paris"), stream=True))),
        plain(client.generate(model=MODEL, prompt="Hi Paris", options={"num_predict": 4})),
        plain(list(client.generate(model=MODEL, prompt="Hi Paris", stream=True))),
        plain(client.embed(model="nomic-embed-text", input=["a", "b"])),
        plain(client.embeddings(model="nomic-embed-text", prompt="a")),
    ]


def test_differential(instrument, client, span_exporter):
    without = _calls(client)
    assert span_exporter.get_finished_spans() == ()
    instrument(TARGET, capture="span_and_event")
    with_llmtap = _calls(client)
    assert with_llmtap == without
    assert len(span_exporter.get_finished_spans()) == 7


@needs_think
def test_differential_think(instrument, client, span_exporter):
    def call() -> Any:
        return plain(client.chat(model="qwen3", messages=_user("Hi Paris"), think=True))

    without = call()
    instrument(TARGET, capture="span_only")
    assert call() == without and without["message"]["thinking"]
    assert len(span_exporter.get_finished_spans()) == 1


def test_stream_proxy_is_still_a_generator(instrumented, client):
    stream = client.chat(model=MODEL, messages=_user("Hi"), stream=True)
    assert isinstance(stream, types.GeneratorType)
    assert iter(stream) is stream
    list(stream)


def test_uninstrument_restores(instrument, client, span_exporter):
    instrumentor = instrument(TARGET)
    client.chat(model=MODEL, messages=_user("Hi"))
    assert len(span_exporter.get_finished_spans()) == 1
    instrumentor.uninstrument()
    client.chat(model=MODEL, messages=_user("Hi"))
    ollama.Client.chat(client, model=MODEL, messages=_user("Hi"))
    assert len(span_exporter.get_finished_spans()) == 1
    assert type(ollama.Client.__dict__["chat"]) is types.FunctionType
    assert type(ollama.chat) is types.MethodType
