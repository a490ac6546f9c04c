"""google-genai instrumentation against the real SDK talking to the dev server (nothing mocked)."""

from __future__ import annotations

import gc
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv
from llmtap.config import CaptureMode
from llmtap.instrumentation._invocation import SCOPE

from .google_genai_support import (
    EMBED_MODEL,
    MODEL,
    TARGET,
    broken_tool,
    content,
    gemini_client,
    get_weather,
    get_weather_async,
    metric_points,
    only_span,
    raises_stream_errors,
    spans,
    validate,
    vertex_client,
)

ANSWER = 'Hello from the llmtap devserver! You said: "Hello Paris". This is a deterministic reply.'


@pytest.fixture
def client(devserver: Any) -> Iterator[Any]:
    made = gemini_client(devserver)
    yield made
    if hasattr(made, "close"):  # SDKs before 1.2x have no close()
        made.close()


@pytest.fixture
def instrumented(instrument: Any) -> Any:
    return instrument(TARGET, capture="span_only")


def _inference(found: list[Any]) -> list[Any]:
    return [s for s in found if s.attributes[semconv.OPERATION] == "generate_content"]


# generate_content ----------------------------------------------------------------------------


def test_generate_content_attributes(instrumented, client, devserver, span_exporter):
    config = types.GenerateContentConfig(
        system_instruction="Be terse.",
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        max_output_tokens=256,
        stop_sequences=["END"],
        seed=7,
        candidate_count=1,
        presence_penalty=0.1,
        frequency_penalty=0.3,
    )
    response = client.models.generate_content(
        model=f"models/{MODEL}", contents="Hello Paris", config=config
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"generate_content {MODEL}" and span.kind is SpanKind.CLIENT
    assert attrs[semconv.OPERATION] == "generate_content"
    assert attrs[semconv.PROVIDER] == "gcp.gemini"
    assert attrs[semconv.REQUEST_MODEL] == MODEL  # the models/ prefix stripped
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[semconv.SERVER_PORT] == devserver.port
    assert attrs[semconv.REQUEST_STREAM] is False
    assert attrs[semconv.REQUEST_TEMPERATURE] == 0.2 and attrs[semconv.REQUEST_TOP_P] == 0.9
    assert attrs[semconv.REQUEST_TOP_K] == 40.0 and attrs[semconv.REQUEST_MAX_TOKENS] == 256
    assert attrs[semconv.REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[semconv.REQUEST_SEED] == 7
    assert semconv.REQUEST_CHOICE_COUNT not in attrs  # 1 is the default
    assert attrs[semconv.REQUEST_PRESENCE_PENALTY] == 0.1
    assert attrs[semconv.REQUEST_FREQUENCY_PENALTY] == 0.3
    assert attrs.get(semconv.RESPONSE_ID) == response.response_id  # None before SDK 1.2x
    assert attrs[semconv.RESPONSE_MODEL] == response.model_version == MODEL
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    usage = response.usage_metadata
    assert attrs[semconv.USAGE_INPUT_TOKENS] == usage.prompt_token_count
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage.candidates_token_count == 14
    assert semconv.USAGE_REASONING_OUTPUT_TOKENS not in attrs
    assert validate(span, semconv.SYSTEM_INSTRUCTIONS, "gen-ai-system-instructions.json") == [
        {"type": "text", "content": "Be terse."}
    ]
    assert validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json") == [
        {"role": "user", "parts": [{"type": "text", "content": "Hello Paris"}]}
    ]
    assert validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": ANSWER}],
            "finish_reason": "stop",
        }
    ]
    assert span.status.status_code is StatusCode.UNSET


async def test_async_generate_content(instrumented, client, span_exporter):
    response = await client.aio.models.generate_content(model=MODEL, contents="Hello Paris")
    assert response.text == ANSWER
    attrs = only_span(span_exporter).attributes
    assert attrs.get(semconv.RESPONSE_ID) == response.response_id  # None before SDK 1.2x
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == 14


def test_contents_of_every_shape(instrumented, client, span_exporter):
    png = b"\x89PNG\r\n"
    contents = [
        types.Content(role="user", parts=[types.Part.from_text(text="Look at this")]),
        types.Content(role="model", parts=[types.Part.from_text(text="Where?")]),
        "Here:",
        types.Part.from_bytes(data=png, mime_type="image/png"),
        types.Part.from_uri(file_uri="gs://bucket/a.pdf", mime_type="application/pdf"),
    ]
    client.models.generate_content(model=MODEL, contents=contents)
    msgs = validate(only_span(span_exporter), semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    text, blob, uri = msgs[2]["parts"]
    assert text == {"type": "text", "content": "Here:"}
    assert blob["type"] == "blob" and blob["mime_type"] == "image/png"
    assert blob["modality"] == "image" and blob["content"].startswith("<omitted")
    assert uri == {
        "type": "uri",
        "modality": "document",
        "uri": "gs://bucket/a.pdf",
        "mime_type": "application/pdf",
    }


def test_structured_output(instrumented, client, span_exporter):
    schema = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=schema
    )
    response = client.models.generate_content(model=MODEL, contents="Paris", config=config)
    assert response.parsed == {"city": "Paris"}
    assert only_span(span_exporter).attributes[semconv.OUTPUT_TYPE] == "json"


def test_thinking_and_cached_tokens(instrumented, client, span_exporter):
    thinking = types.ThinkingConfig(include_thoughts=True, thinking_budget=64)
    config = types.GenerateContentConfig(
        thinking_config=thinking, max_output_tokens=3, cached_content="cachedContents/abc"
    )
    response = client.models.generate_content(model=MODEL, contents="Hello Paris", config=config)
    span = only_span(span_exporter)
    attrs = span.attributes
    usage = response.usage_metadata
    assert usage.thoughts_token_count == 16 and usage.candidates_token_count == 3
    # output includes the thoughts (as OpenAI's completion tokens include reasoning)
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == 19
    assert attrs[semconv.USAGE_REASONING_OUTPUT_TOKENS] == 16
    assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == usage.cached_content_token_count > 0
    assert attrs[semconv.USAGE_INPUT_TOKENS] == usage.prompt_token_count
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("length",)
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["finish_reason"] == "length"
    assert message["parts"][0]["type"] == "reasoning"
    assert message["parts"][1] == {"type": "text", "content": "Hello from the "}


def test_safety_finish_reason(instrumented, client, span_exporter):
    client.models.generate_content(model=MODEL, contents="Please refuse this")
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("content_filter",)
    (message,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert message == {"role": "assistant", "parts": [], "finish_reason": "content_filter"}


# streams -------------------------------------------------------------------------------------


def test_stream(instrumented, client, span_exporter):
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Hello Paris"))
    assert "".join(c.text for c in chunks) == ANSWER
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.REQUEST_STREAM] is True
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    last = chunks[-1].usage_metadata
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == last.candidates_token_count == 14
    assert attrs[semconv.USAGE_INPUT_TOKENS] == last.prompt_token_count
    assert attrs.get(semconv.RESPONSE_ID) == chunks[0].response_id
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message == {
        "role": "assistant",
        "parts": [{"type": "text", "content": ANSWER}],
        "finish_reason": "stop",
    }


async def test_async_stream(instrumented, client, span_exporter):
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="Hello Paris")
    assert not span_exporter.get_finished_spans()
    text = "".join([c.text async for c in stream])
    assert text == ANSWER
    attrs = only_span(span_exporter).attributes
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == 14
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0


def test_stream_abandoned(instrumented, client, span_exporter):
    stream = client.models.generate_content_stream(model=MODEL, contents="Hello Paris")
    for _ in stream:
        break
    assert not span_exporter.get_finished_spans()
    del stream
    gc.collect()
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "abandoned"
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == 1  # the running usage so far


def test_broken_stream(instrumented, client, span_exporter):
    got = []
    with pytest.raises(Exception) as caught:
        for chunk in client.models.generate_content_stream(
            model="devserver-broken_stream:2", contents="Hello Paris"
        ):
            got.append(chunk.text)
    assert len(got) == 2
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "error"
    assert span.attributes[semconv.ERROR_TYPE] == type(caught.value).__qualname__
    assert span.status.status_code is StatusCode.ERROR
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["finish_reason"] == "error" and message["parts"][0]["type"] == "text"


def test_stream_error_event(instrumented, client, span_exporter):
    if not raises_stream_errors():
        pytest.skip("this SDK parses an in-stream error as an empty chunk: no error to record")
    with pytest.raises(errors.ServerError):
        for _ in client.models.generate_content_stream(
            model="devserver-stream_error:2", contents="Hello Paris"
        ):
            pass
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "503"  # the code of the in-stream error event
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "error"


# errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "error", "name"),
    [
        ("rate_limit", errors.ClientError, "429"),
        ("not_found", errors.ClientError, "404"),
        ("server_error", errors.ServerError, "500"),
    ],
)
def test_api_errors(instrumented, client, span_exporter, metric_reader, scenario, error, name):
    with pytest.raises(error) as caught:
        client.models.generate_content(model=f"devserver-{scenario}", contents="x")
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == name == str(caught.value.code)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith(f"{error.__name__}: {name} ")
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes[semconv.ERROR_TYPE] == name


async def test_async_error(instrumented, client, span_exporter):
    with pytest.raises(errors.ClientError):
        await client.aio.models.generate_content(model="devserver-not_found", contents="x")
    assert only_span(span_exporter).attributes[semconv.ERROR_TYPE] == "404"


async def _call(client: Any, mode: str, model: str) -> None:
    """One generate_content call that fails: non-streaming or streaming, sync or async."""
    if mode == "sync":
        client.models.generate_content(model=model, contents="x")
    elif mode == "async":
        await client.aio.models.generate_content(model=model, contents="x")
    elif mode == "stream":
        for _chunk in client.models.generate_content_stream(model=model, contents="x"):
            pass
    else:
        async for _chunk in await client.aio.models.generate_content_stream(
            model=model, contents="x"
        ):
            pass


def _refusing_client() -> genai.Client:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    http = types.HttpOptions(base_url=f"http://127.0.0.1:{port}")
    return genai.Client(api_key="test", http_options=http)


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async_stream"])
@pytest.mark.parametrize(
    ("failure", "expected"),
    [("rate_limit", "429"), ("server_error", "500"), ("refused", None)],
)
async def test_error_type_matrix(
    instrumented, devserver, span_exporter, metric_reader, mode, failure, expected
):
    if failure == "refused":
        client, model = _refusing_client(), MODEL
    else:
        client, model = gemini_client(devserver), f"devserver-{failure}"
    with pytest.raises(Exception) as caught:
        await _call(client, mode, model)
    error = caught.value
    if expected is None:  # a transport error (httpx or aiohttp) keeps its class
        assert not isinstance(error, errors.APIError) and "Connect" in type(error).__name__
        expected = type(error).__qualname__
    else:
        assert str(error.code) == expected
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == expected
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith(type(error).__qualname__)
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes[semconv.ERROR_TYPE] == expected


# embeddings ----------------------------------------------------------------------------------


def test_embed_content(instrumented, client, span_exporter):
    result = client.models.embed_content(
        model=EMBED_MODEL,
        contents=["one", "two words"],
        config=types.EmbedContentConfig(output_dimensionality=8),
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"embeddings {EMBED_MODEL}"
    assert attrs[semconv.OPERATION] == "embeddings"
    assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == 8 == len(result.embeddings[0].values)
    # from the parsed usage_metadata, or the raw response's when the SDK drops it
    assert attrs[semconv.USAGE_INPUT_TOKENS] == 3
    if getattr(result, "usage_metadata", None) is not None:
        assert result.usage_metadata.prompt_token_count == 3
    assert semconv.USAGE_OUTPUT_TOKENS not in attrs


async def test_async_embed_content(instrumented, client, span_exporter):
    await client.aio.models.embed_content(model=EMBED_MODEL, contents=["one", "two words"])
    assert only_span(span_exporter).attributes[semconv.USAGE_INPUT_TOKENS] == 3


async def test_async_embed_content_vertex_predict(instrument, devserver, span_exporter):
    instrument(TARGET)
    client = vertex_client(devserver, express=False)
    result = await client.aio.models.embed_content(
        model="text-embedding-005", contents=["a b", "c"]
    )
    attrs = only_span(span_exporter).attributes
    assert attrs[semconv.PROVIDER] == "gcp.vertex_ai"
    assert attrs[semconv.USAGE_INPUT_TOKENS] == 3  # from the per-embedding statistics
    assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == len(result.embeddings[0].values)


# Vertex AI -----------------------------------------------------------------------------------


@pytest.mark.parametrize("express", [True, False])
def test_vertex_ai(instrument, devserver, span_exporter, express):
    instrument(TARGET)
    client = vertex_client(devserver, express=express)
    model = MODEL if express else f"publishers/google/models/{MODEL}"
    client.models.generate_content(model=model, contents="Hello Paris")
    list(client.models.generate_content_stream(model=MODEL, contents="Hello Paris"))
    found = spans(span_exporter)
    assert len(found) == 2
    for span in found:
        assert span.attributes[semconv.PROVIDER] == "gcp.vertex_ai"
        assert span.attributes[semconv.REQUEST_MODEL] == MODEL
        assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == 14


# chats and tools -----------------------------------------------------------------------------


def test_chat(instrumented, client, span_exporter):
    chat = client.chats.create(model=MODEL, config=types.GenerateContentConfig(temperature=0.5))
    first = chat.send_message("Hello Paris")
    streamed = "".join(c.text for c in chat.send_message_stream("Hello Rome"))
    assert first.text == ANSWER and "Hello Rome" in streamed
    first_span, second_span = spans(span_exporter)
    assert first_span.attributes[semconv.REQUEST_STREAM] is False
    assert second_span.attributes[semconv.REQUEST_STREAM] is True
    history = content(second_span, semconv.INPUT_MESSAGES)
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[1]["parts"] == [{"type": "text", "content": ANSWER}]


def test_manual_function_calling(instrumented, client, span_exporter):
    declaration = types.FunctionDeclaration(
        name="lookup",
        description="Look things up",
        parameters=types.Schema(
            type="OBJECT", properties={"query": types.Schema(type="STRING")}, required=["query"]
        ),
    )
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])])
    response = client.models.generate_content(model=MODEL, contents="Find Rome", config=config)
    call = response.function_calls[0]
    follow = [
        types.UserContent(parts=[types.Part.from_text(text="Find Rome")]),
        response.candidates[0].content,
        types.Part.from_function_response(name="lookup", response={"result": "found"}),
    ]
    client.models.generate_content(model=MODEL, contents=follow, config=config)
    first, second = spans(span_exporter)
    assert first.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)
    tools = validate(first, semconv.TOOL_DEFINITIONS, "gen-ai-tool-definitions.json")
    assert tools[0]["name"] == "lookup" and tools[0]["description"] == "Look things up"
    assert tools[0]["parameters"]["properties"] == {"query": {"type": "STRING"}}
    (out,) = validate(first, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert out["parts"] == [{"type": "tool_call", "name": "lookup", "arguments": call.args}]
    assert out["finish_reason"] == "tool_call"
    msgs = validate(second, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool"]
    assert msgs[2]["parts"] == [{"type": "tool_call_response", "response": {"result": "found"}}]


def _afc_tree(exporter: Any, parent: Any, tool: str) -> tuple[Any, Any, Any]:
    finished = exporter.get_finished_spans()
    assert [s.name for s in finished if s.instrumentation_scope.name == "app"] == ["app"]
    ours = [s for s in finished if s.name != "app"]
    assert all(s.instrumentation_scope.name == SCOPE for s in ours)
    found = sorted(ours, key=lambda s: s.start_time)
    assert [s.attributes[semconv.OPERATION] for s in found] == [
        "generate_content",
        "execute_tool",
        "generate_content",
    ]
    for span in found:  # siblings under the application's span
        assert span.parent is not None and span.parent.span_id == parent.span_id
    first, tool_span, second = found
    assert tool_span.name == f"execute_tool {tool}" and tool_span.kind is SpanKind.INTERNAL
    assert tool_span.attributes[semconv.TOOL_NAME] == tool
    assert tool_span.attributes[semconv.TOOL_TYPE] == "function"
    assert semconv.PROVIDER not in tool_span.attributes
    return first, tool_span, second


def test_automatic_function_calling(instrumented, client, tracer_provider, span_exporter):
    tracer = trace.get_tracer("app", tracer_provider=tracer_provider)
    with tracer.start_as_current_span("app") as app:
        response = client.models.generate_content(
            model=MODEL,
            contents="Weather in Paris?",
            config=types.GenerateContentConfig(tools=[get_weather]),
        )
    assert "sunny in Paris" in response.text
    first, tool, second = _afc_tree(span_exporter, app.get_span_context(), "get_weather")
    assert tool.attributes[semconv.TOOL_CALL_ARGUMENTS] == '{"city": "Paris"}'
    assert tool.attributes[semconv.TOOL_CALL_RESULT] == '"sunny in Paris"'
    assert tool.attributes[semconv.TOOL_DESCRIPTION] == "Weather for a city."
    assert first.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert second.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert content(first, semconv.TOOL_DEFINITIONS) == [
        {"type": "function", "name": "get_weather", "description": "Weather for a city."}
    ]
    assert [m["role"] for m in content(second, semconv.INPUT_MESSAGES)] == [
        "user",
        "assistant",
        "tool",
    ]


async def test_async_automatic_function_calling(
    instrumented, client, tracer_provider, span_exporter
):
    tracer = trace.get_tracer("app", tracer_provider=tracer_provider)
    with tracer.start_as_current_span("app") as app:
        response = await client.aio.models.generate_content(
            model=MODEL,
            contents="Weather in Paris?",
            config=types.GenerateContentConfig(tools=[get_weather_async]),
        )
    assert "rainy in Paris" in response.text
    _, tool, _ = _afc_tree(span_exporter, app.get_span_context(), "get_weather_async")
    assert tool.attributes[semconv.TOOL_CALL_RESULT] == '"rainy in Paris"'


def test_automatic_function_calling_stream(instrumented, client, tracer_provider, span_exporter):
    tracer = trace.get_tracer("app", tracer_provider=tracer_provider)
    with tracer.start_as_current_span("app") as app:
        chat = client.chats.create(
            model=MODEL, config=types.GenerateContentConfig(tools=[get_weather])
        )
        text = "".join(c.text or "" for c in chat.send_message_stream("Weather in Paris?"))
    assert "sunny in Paris" in text
    first, _, second = _afc_tree(span_exporter, app.get_span_context(), "get_weather")
    assert first.attributes[semconv.REQUEST_STREAM] is True
    assert first.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert second.attributes[semconv.LLMTAP_STREAM_END] == "completed"


def test_failing_tool(instrumented, client, span_exporter):
    client.models.generate_content(
        model=MODEL,
        contents="Weather in Paris?",
        config=types.GenerateContentConfig(tools=[broken_tool]),
    )
    _, tool, _ = spans(span_exporter)
    assert tool.attributes[semconv.ERROR_TYPE] == "FunctionInvocationError"
    assert tool.status.status_code is StatusCode.ERROR
    assert semconv.TOOL_CALL_RESULT not in tool.attributes


def test_tool_content_off(instrument, client, span_exporter):
    instrument(TARGET, capture="no_content")
    client.models.generate_content(
        model=MODEL,
        contents="Weather in Paris?",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )
    first, tool, second = spans(span_exporter)
    assert tool.attributes[semconv.TOOL_NAME] == "get_weather"
    for span in (first, tool, second):
        for key in (
            semconv.TOOL_CALL_ARGUMENTS,
            semconv.TOOL_CALL_RESULT,
            semconv.INPUT_MESSAGES,
            semconv.OUTPUT_MESSAGES,
            semconv.TOOL_DEFINITIONS,
        ):
            assert key not in span.attributes
    assert first.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)


# capture modes, differential, metrics, uninstrument -------------------------------------------


def test_capture_event_only(instrument, client, span_exporter, log_exporter):
    instrument(TARGET, capture=CaptureMode.EVENT_ONLY)
    client.models.generate_content(model=MODEL, contents="event")
    span = only_span(span_exporter)
    assert semconv.INPUT_MESSAGES not in span.attributes
    (record,) = log_exporter.get_finished_logs()
    assert record.log_record.event_name == semconv.EVENT_INFERENCE_DETAILS
    assert record.log_record.span_id == span.get_span_context().span_id


def test_capture_no_content(instrument, client, span_exporter, log_exporter):
    instrument(TARGET, capture="no_content")
    client.models.generate_content(
        model=MODEL, contents="x", config=types.GenerateContentConfig(system_instruction="s")
    )
    list(client.models.generate_content_stream(model=MODEL, contents="x"))
    for span in spans(span_exporter):
        assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
        assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        for key in (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.SYSTEM_INSTRUCTIONS):
            assert key not in span.attributes
    assert log_exporter.get_finished_logs() == ()


def _calls(client: Any) -> list[Any]:
    config = types.GenerateContentConfig(tools=[get_weather], temperature=0.1)
    response = client.models.generate_content(
        model=MODEL, contents="Weather in Paris?", config=config
    )
    chunks = [
        c.model_dump() for c in client.models.generate_content_stream(model=MODEL, contents="Hi")
    ]
    chat = client.chats.create(model=MODEL)
    reply = chat.send_message("Hello Paris")
    embedded = client.models.embed_content(model=EMBED_MODEL, contents=["a"])

    def plain(value: Any) -> Any:
        return value.model_dump(exclude={"sdk_http_response"})

    return [
        plain(response),
        [{k: v for k, v in c.items() if k != "sdk_http_response"} for c in chunks],
        plain(reply),
        [plain(m) for m in chat.get_history()],
        plain(embedded),
    ]


def test_differential(instrument, client, span_exporter):
    before = _calls(client)
    instrument(TARGET, capture="span_and_event")
    assert _calls(client) == before
    assert len(spans(span_exporter)) == 6  # 2 AFC model calls + a tool, stream, chat, embed


def test_metrics(instrumented, client, metric_reader):
    response = client.models.generate_content(model=MODEL, contents="metrics")
    tokens = metric_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
    by_type = {p.attributes[semconv.TOKEN_TYPE]: p for p in tokens}
    assert by_type["input"].sum == response.usage_metadata.prompt_token_count
    assert by_type["output"].sum == response.usage_metadata.candidates_token_count
    for point in tokens:
        assert point.attributes[semconv.PROVIDER] == "gcp.gemini"
        assert point.attributes[semconv.RESPONSE_MODEL] == MODEL
        assert point.attributes[semconv.OPERATION] == "generate_content"
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 1 and semconv.ERROR_TYPE not in duration.attributes


def test_stream_metrics(instrumented, client, metric_reader):
    list(client.models.generate_content_stream(model=MODEL, contents="Hello Paris"))
    (ttfc,) = metric_points(metric_reader, semconv.METRIC_TIME_TO_FIRST_CHUNK)
    assert ttfc.count == 1
    (per_chunk,) = metric_points(metric_reader, semconv.METRIC_TIME_PER_OUTPUT_CHUNK)
    assert per_chunk.count == 13  # 14 chunks


def test_uninstrument_restores(instrument, client, span_exporter):
    from google.genai import _extra_utils, models

    original = models.Models.__dict__["_generate_content"]
    instrumentor = instrument(TARGET)
    assert models.Models.__dict__["_generate_content"] is not original
    instrumentor.uninstrument()
    assert models.Models.__dict__["_generate_content"] is original
    assert not hasattr(_extra_utils.invoke_function_from_dict_args, "__wrapped__")
    client.models.generate_content(model=MODEL, contents="x")
    assert span_exporter.get_finished_spans() == ()


def test_dict_config(instrumented, client, span_exporter):
    config = {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "temperature": 1,
        "candidate_count": 2,
        "response_mime_type": "text/plain",
    }
    client.models.generate_content(
        model=MODEL, contents=[{"role": "user", "parts": [{"text": "Hi"}]}], config=config
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.REQUEST_TEMPERATURE] == 1.0
    assert attrs[semconv.REQUEST_CHOICE_COUNT] == 2
    assert attrs[semconv.OUTPUT_TYPE] == "text"
    assert content(span, semconv.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, semconv.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}
    ]
