"""Mistral instrumentation against the real ``mistralai`` SDK talking to the devserver
(``server_url=<devserver>/mistral``; nothing mocked).

The SDK's own tracing is on for every client here, into the test tracer provider
(``configure_telemetry`` in SDK 3.x; SDK 1.x and 2.x trace whenever a provider is set, which
the ``sdk_traced`` fixture stands in for), so "one span per call" is checked against a live
competitor.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import inspect
import json
import socket
from pathlib import Path
from typing import Any

import pydantic
import pytest
from opentelemetry.trace import StatusCode

from llmtap import semconv
from llmtap.config import CaptureMode
from llmtap.instrumentation._invocation import SCOPE

try:  # SDK 2.x, 3.x
    from mistralai.client import Mistral, models
    from mistralai.client.errors import SDKError

    HOOKS = "mistralai.client._hooks.tracing"
except ImportError:  # SDK 1.x
    from mistralai import Mistral, models
    from mistralai.models import SDKError

    HOOKS = "mistralai._hooks.tracing"

TARGET = "llmtap.instrumentation.mistralai:MistralInstrumentor"
MODEL = "mistral-small-latest"
SDK_SCOPE = "mistralai_sdk_tracer"
SCHEMAS = Path("/work/shared/semconv-genai-v1.41/docs")
TOOL = {
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


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _sdk_has(method: Any, parameter: str) -> bool:
    return parameter in inspect.signature(method).parameters


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


# Older SDK releases lack some features; their tests are skipped there, saying which.
SDK_TRACING = _module_exists(HOOKS)
needs_sdk_tracing = pytest.mark.skipif(
    not SDK_TRACING, reason="this SDK release has no tracing hook (no span of its own)"
)
needs_cache_key = pytest.mark.skipif(
    not _sdk_has(Mistral(api_key="x").chat.complete, "prompt_cache_key"),
    reason="this SDK release has no prompt_cache_key",
)
needs_parse = pytest.mark.skipif(
    not hasattr(Mistral(api_key="x").chat, "parse"), reason="this SDK release has no chat.parse"
)
needs_output_dimension = pytest.mark.skipif(
    not _sdk_has(Mistral(api_key="x").embeddings.create, "output_dimension"),
    reason="this SDK release has no output_dimension",
)
needs_think_chunks = pytest.mark.skipif(
    not hasattr(models, "ThinkChunk"), reason="this SDK release has no thinking chunks"
)


@pytest.fixture
def sdk_traced(tracer_provider: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Turns the SDK's own tracing on, into the test provider, for the clients it makes."""
    try:
        from mistralai.extra.observability.telemetry import configure_telemetry
    except ImportError:  # SDK 1.x, 2.x: the hook traces whenever a real provider is set
        configure_telemetry = None
    if configure_telemetry is None and SDK_TRACING:
        tracer = tracer_provider.get_tracer(SDK_SCOPE)
        hooks = importlib.import_module(HOOKS)
        monkeypatch.setattr(hooks, "get_or_create_otel_tracer", lambda *a, **k: (True, tracer))

    def make(devserver: Any) -> Any:
        client = Mistral(api_key="test", server_url=f"{devserver.base_url}/mistral")
        if configure_telemetry is not None:
            configure_telemetry(client, tracer_provider, redaction=False)
        return client

    return make


@pytest.fixture
def client(devserver: Any, sdk_traced: Any) -> Any:
    return sdk_traced(devserver)


@pytest.fixture
def instrumented(instrument: Any) -> Any:
    return instrument(TARGET, capture="span_only")


def only_span(exporter: Any) -> Any:
    """The one span of the call; the SDK's own GenAI span must not exist."""
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


def output_text(span: Any) -> str:
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    return "".join(p["content"] for p in message["parts"] if p["type"] == "text")


def metric_points(reader: Any, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    points: list[Any] = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    points += list(metric.data.data_points)
    return points


# chat ---------------------------------------------------------------------------------------


def test_complete_sync(instrumented, client, devserver, span_exporter):
    messages = [{"role": "system", "content": "Be terse."}, *_user("Hello Mistral")]
    response = client.chat.complete(
        model=MODEL,
        messages=messages,
        temperature=0.3,
        top_p=0.9,
        max_tokens=100,
        random_seed=7,
        stop=["END", "STOP"],
        presence_penalty=0.1,
        frequency_penalty=0.2,
        n=2,
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"chat {MODEL}"
    assert attrs[semconv.OPERATION] == "chat" and attrs[semconv.PROVIDER] == "mistral_ai"
    assert attrs[semconv.SERVER_ADDRESS] == devserver.host
    assert attrs[semconv.SERVER_PORT] == devserver.port
    assert attrs[semconv.REQUEST_MODEL] == MODEL and attrs[semconv.REQUEST_STREAM] is False
    assert attrs[semconv.REQUEST_TEMPERATURE] == 0.3 and attrs[semconv.REQUEST_TOP_P] == 0.9
    assert attrs[semconv.REQUEST_MAX_TOKENS] == 100 and attrs[semconv.REQUEST_SEED] == 7
    assert attrs[semconv.REQUEST_STOP_SEQUENCES] == ("END", "STOP")
    assert attrs[semconv.REQUEST_PRESENCE_PENALTY] == 0.1
    assert attrs[semconv.REQUEST_FREQUENCY_PENALTY] == 0.2
    assert attrs[semconv.REQUEST_CHOICE_COUNT] == 2
    assert attrs[semconv.RESPONSE_ID] == response.id
    assert attrs[semconv.RESPONSE_MODEL] == MODEL
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop", "stop")
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    assert semconv.USAGE_CACHE_READ_INPUT_TOKENS not in attrs
    assert span.status.status_code is StatusCode.UNSET
    inputs = validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert inputs[0] == {"role": "system", "parts": [{"type": "text", "content": "Be terse."}]}
    outputs = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert [o["parts"][0]["content"] for o in outputs] == [
        c.message.content for c in response.choices
    ]
    assert [o["finish_reason"] for o in outputs] == ["stop", "stop"]


def test_complete_async(instrumented, client, span_exporter):
    response = asyncio.run(client.chat.complete_async(model=MODEL, messages=_user("async hi")))
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_ID] == response.id
    assert output_text(span) == response.choices[0].message.content


@needs_cache_key
def test_single_stop_string_and_cached_tokens(instrumented, client, span_exporter):
    response = client.chat.complete(
        model=MODEL, messages=_user("cache this"), stop="END", prompt_cache_key="session-1"
    )
    attrs = only_span(span_exporter).attributes
    assert attrs[semconv.REQUEST_STOP_SEQUENCES] == ("END",)
    cached = response.usage.prompt_tokens_details["cached_tokens"]
    assert cached > 0 and attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == cached


# streams --------------------------------------------------------------------------------------


def test_stream_iterated(instrumented, client, span_exporter):
    events = list(client.chat.stream(model=MODEL, messages=_user("Stream to Lyon")))
    span = only_span(span_exporter)
    attrs = span.attributes
    text = "".join(e.data.choices[0].delta.content or "" for e in events)
    assert attrs[semconv.REQUEST_STREAM] is True
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert attrs[semconv.RESPONSE_ID] == events[0].data.id
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == events[-1].data.usage.completion_tokens
    assert attrs[semconv.USAGE_INPUT_TOKENS] == events[-1].data.usage.prompt_tokens
    assert output_text(span) == text


def test_stream_context_manager(instrumented, client, span_exporter):
    with client.chat.stream(model=MODEL, messages=_user("one two three")) as stream:
        first = next(iter(stream))
        assert stream.response.status_code == 200
        assert span_exporter.get_finished_spans() == ()
    assert first.data.choices[0].delta.role == "assistant"
    assert only_span(span_exporter).attributes[semconv.LLMTAP_STREAM_END] == "closed"


def test_stream_abandoned(instrumented, client, span_exporter):
    stream = client.chat.stream(model=MODEL, messages=_user("walk away"))
    next(stream)
    del stream
    gc.collect()
    assert only_span(span_exporter).attributes[semconv.LLMTAP_STREAM_END] == "abandoned"


def test_async_stream_and_context_manager(instrumented, client, span_exporter):
    async def go() -> list[Any]:
        stream = await client.chat.stream_async(model=MODEL, messages=_user("async stream"))
        async with stream as events:
            return [event async for event in events]

    events = asyncio.run(go())
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == events[-1].data.usage.completion_tokens
    assert output_text(span) == "".join(e.data.choices[0].delta.content or "" for e in events)


# tools, JSON, finish reasons ----------------------------------------------------------------


def test_tool_call(instrumented, client, span_exporter):
    response = client.chat.complete(
        model=MODEL, messages=_user("Weather in Paris"), tools=[TOOL], tool_choice="any"
    )
    call = response.choices[0].message.tool_calls[0]
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    (message,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert message["finish_reason"] == "tool_call"
    assert message["parts"] == [
        {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    tools = validate(span, semconv.TOOL_DEFINITIONS, "gen-ai-tool-definitions.json")
    assert tools == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": TOOL["function"]["parameters"],
        }
    ]


def test_tool_call_streamed(instrumented, client, span_exporter):
    events = list(client.chat.stream(model=MODEL, messages=_user("Weather in Oslo"), tools=[TOOL]))
    (call,) = events[1].data.choices[0].delta.tool_calls
    (message,) = content(only_span(span_exporter), semconv.OUTPUT_MESSAGES)
    assert message["parts"] == [
        {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": {"city": "Oslo"}}
    ]
    assert message["finish_reason"] == "tool_call"


def test_tool_round_trip_input(instrumented, client, span_exporter):
    """Arguments the app sends back as a JSON string or as an object; the tool's answer."""
    AssistantMessage, FunctionCall = models.AssistantMessage, models.FunctionCall
    ToolCall, ToolMessage = models.ToolCall, models.ToolMessage
    messages = [
        {"role": "system", "content": "Use tools."},
        *_user("Weather in Paris and Rome"),
        AssistantMessage(
            content="",
            tool_calls=[
                ToolCall(
                    id="call00001",
                    function=FunctionCall(name="get_weather", arguments='{"city": "Paris"}'),
                ),
                ToolCall(
                    id="call00002",
                    function=FunctionCall(name="get_weather", arguments={"city": "Rome"}),
                ),
            ],
        ),
        ToolMessage(content="sunny", tool_call_id="call00001", name="get_weather"),
        {
            "role": "tool",
            "content": [{"type": "text", "text": "rainy"}],
            "tool_call_id": "call00002",
        },
    ]
    client.chat.complete(model=MODEL, messages=messages, tools=[TOOL])
    span = only_span(span_exporter)
    inputs = validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert [m["role"] for m in inputs] == ["system", "user", "assistant", "tool", "tool"]
    assert inputs[2]["parts"] == [
        {
            "type": "tool_call",
            "id": "call00001",
            "name": "get_weather",
            "arguments": {"city": "Paris"},
        },
        {
            "type": "tool_call",
            "id": "call00002",
            "name": "get_weather",
            "arguments": {"city": "Rome"},
        },
    ]
    assert inputs[3] == {
        "role": "tool",
        "name": "get_weather",
        "parts": [{"type": "tool_call_response", "id": "call00001", "response": "sunny"}],
    }
    assert inputs[4]["parts"] == [
        {"type": "tool_call_response", "id": "call00002", "response": "rainy"}
    ]
    assert output_text(span).startswith("The tool returned:")


def test_json_output_type(instrumented, client, span_exporter):
    fmt = {"type": "json_object"}
    client.chat.complete(model=MODEL, messages=_user("json"), response_format=fmt)
    client.chat.complete(model=MODEL, messages=_user("text"), response_format={"type": "text"})
    json_span, text_span = span_exporter.get_finished_spans()
    assert json_span.attributes[semconv.OUTPUT_TYPE] == "json"
    assert text_span.attributes[semconv.OUTPUT_TYPE] == "text"


@needs_parse
def test_parse_is_one_json_span(instrumented, client, span_exporter):
    class City(pydantic.BaseModel):
        name: str

    parsed = client.chat.parse(response_format=City, model=MODEL, messages=_user("Name Lyon"))
    span = only_span(span_exporter)
    assert parsed.choices[0].message.parsed == City(name="Lyon")
    assert span.attributes[semconv.OUTPUT_TYPE] == "json"
    assert json.loads(output_text(span)) == {"name": "Lyon"}


@pytest.mark.parametrize(
    ("prompt", "extra", "raw", "mapped"),
    [
        ("hello there friend", {"max_tokens": 2}, "length", "length"),
        ("please overflow now", {}, "model_length", "length"),
    ],
)
def test_finish_reasons(instrumented, client, span_exporter, prompt, extra, raw, mapped):
    client.chat.complete(model=MODEL, messages=_user(prompt), **extra)
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == (raw,)
    assert content(span, semconv.OUTPUT_MESSAGES)[0]["finish_reason"] == mapped


def test_stream_finish_reason_error(instrumented, client, span_exporter):
    events = list(client.chat.stream(model="devserver-stream_error:2", messages=_user("a b c")))
    assert events[-1].data.choices[0].finish_reason == "error"
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("error",)
    assert content(span, semconv.OUTPUT_MESSAGES)[0]["finish_reason"] == "error"


@needs_think_chunks
def test_reasoning_content_chunks():
    """Reasoning models answer with content chunks (``thinking`` then ``text``), whole or
    streamed; read from the SDK's own models (the devserver does not emit them)."""
    from llmtap.config import Settings
    from llmtap.instrumentation._invocation import Invocation
    from llmtap.instrumentation._wrap import Call
    from llmtap.instrumentation.mistralai._chat import ChatAccumulator, ChatAdapter

    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "Hmm."}]}
    message = {"role": "assistant", "content": [thinking, {"type": "text", "text": "Paris."}]}
    response = models.ChatCompletionResponse.model_validate(
        {
            "id": "r1",
            "object": "chat.completion",
            "model": "magistral-small-latest",
            "created": 1,
            "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
    )
    settings = Settings()
    settings.capture = CaptureMode.parse("span_only")
    call = Call(Invocation("chat", "mistral_ai"), (), {})
    ChatAdapter(settings).complete(call, response)
    expected = [
        {"type": "reasoning", "content": "Hmm."},
        {"type": "text", "content": "Paris."},
    ]
    assert call.inv.output_messages[0]["parts"] == expected

    acc = ChatAccumulator(settings)
    for content_piece, finish in (([thinking], None), ("Par", None), ("is.", "stop")):
        chunk = {
            "id": "r2",
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": content_piece}, "finish_reason": finish}],
        }
        assert acc.add(models.CompletionEvent.model_validate({"data": chunk}))
    inv = Invocation("chat", "mistral_ai")
    acc.finish(inv)
    assert inv.output_messages == [
        {"role": "assistant", "parts": expected, "finish_reason": "stop"}
    ]
    assert inv.attributes[semconv.RESPONSE_FINISH_REASONS] == ["stop"]


# embeddings, FIM, agents ------------------------------------------------------------------------


def test_embeddings(instrumented, client, span_exporter):
    response = client.embeddings.create(model="mistral-embed", inputs=["one", "two"])
    asyncio.run(client.embeddings.create_async(model="mistral-embed", inputs="x"))
    plain, other = span_exporter.get_finished_spans()
    assert [s.instrumentation_scope.name for s in (plain, other)] == [SCOPE, SCOPE]
    attrs = plain.attributes
    assert plain.name == "embeddings mistral-embed"
    assert attrs[semconv.OPERATION] == "embeddings" and attrs[semconv.PROVIDER] == "mistral_ai"
    assert attrs[semconv.RESPONSE_ID] == response.id
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert semconv.USAGE_OUTPUT_TOKENS not in attrs
    assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == 1024
    assert other.attributes[semconv.USAGE_INPUT_TOKENS] == 1


@needs_output_dimension
def test_embeddings_output_dimension(instrumented, client, span_exporter):
    client.embeddings.create(model="codestral-embed", inputs="x", output_dimension=8)
    span = only_span(span_exporter)
    assert span.attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] == 8


def test_fim(instrumented, client, span_exporter):
    response = client.fim.complete(
        model="codestral-latest", prompt="def add(a, b):", suffix="return c", max_tokens=50
    )
    events = list(client.fim.stream(model="codestral-latest", prompt="def f():"))
    done, streamed = span_exporter.get_finished_spans()
    assert done.name == "text_completion codestral-latest"
    assert done.attributes[semconv.OPERATION] == "text_completion"
    assert done.attributes[semconv.REQUEST_MAX_TOKENS] == 50
    assert content(done, semconv.INPUT_MESSAGES) == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "def add(a, b):"},
                {"type": "text", "content": "return c"},
            ],
        }
    ]
    assert output_text(done) == response.choices[0].message.content
    assert streamed.attributes[semconv.REQUEST_STREAM] is True
    assert (
        streamed.attributes[semconv.USAGE_OUTPUT_TOKENS] == events[-1].data.usage.completion_tokens
    )


def test_agents(instrumented, client, span_exporter):
    response = client.agents.complete(agent_id="ag:0123", messages=_user("hi agent"))
    events = list(client.agents.stream(agent_id="ag:0123", messages=_user("hi agent")))
    done, streamed = span_exporter.get_finished_spans()
    for span in (done, streamed):
        assert span.name == "chat" and span.attributes[semconv.OPERATION] == "chat"
        assert span.attributes[semconv.AGENT_ID] == "ag:0123"
        assert span.attributes[semconv.RESPONSE_MODEL] == "mistral-large-latest"
        assert semconv.REQUEST_MODEL not in span.attributes
    assert output_text(done) == response.choices[0].message.content
    assert streamed.attributes[semconv.LLMTAP_STREAM_END] == "completed" and events


# errors -----------------------------------------------------------------------------------------


def test_http_error(instrumented, client, span_exporter):
    with pytest.raises(Exception) as info:
        client.chat.complete(model="devserver-rate_limit", messages=_user("x"))
    assert type(info.value).__name__ == "SDKError" and info.value.status_code == 429
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "429"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith("SDKError: ")
    assert "Status 429" in span.status.description
    (event,) = [e for e in span.events if e.name == "exception"]
    assert "Status 429" in event.attributes["exception.message"]


def test_validation_error(instrumented, client, span_exporter):
    with pytest.raises(Exception) as info:
        client.chat.complete(model=MODEL, messages=[])
    assert type(info.value).__name__ == "HTTPValidationError"
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "422"
    assert span.status.description.startswith("HTTPValidationError")


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _call(client: Any, mode: str, model: str) -> None:
    """One chat call that fails: non-streaming or streaming, sync or async."""
    if mode == "sync":
        client.chat.complete(model=model, messages=_user("x"))
    elif mode == "async":
        await client.chat.complete_async(model=model, messages=_user("x"))
    elif mode == "stream":
        for _event in client.chat.stream(model=model, messages=_user("x")):
            pass
    else:
        async for _event in await client.chat.stream_async(model=model, messages=_user("x")):
            pass


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async_stream"])
@pytest.mark.parametrize(
    ("failure", "expected"),
    [("rate_limit", "429"), ("server_error", "500"), ("refused", "ConnectError")],
)
async def test_error_type_matrix(
    instrumented, sdk_traced, devserver, span_exporter, metric_reader, mode, failure, expected
):
    if failure == "refused":
        client = Mistral(api_key="test", server_url=f"http://127.0.0.1:{_closed_port()}")
        model = MODEL
    else:
        client = sdk_traced(devserver)
        model = f"devserver-{failure}"
    with pytest.raises(Exception) as info:
        await _call(client, mode, model)
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == expected
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith(type(info.value).__qualname__)
    if failure != "refused":
        assert info.value.status_code == int(expected)
        assert f"Status {expected}" in span.status.description
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes[semconv.ERROR_TYPE] == expected


def test_error_opening_stream(instrumented, client, span_exporter):
    with pytest.raises(Exception) as info:
        client.chat.stream(model="devserver-server_error", messages=_user("x"))
    assert info.value.status_code == 500
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "500"
    assert semconv.LLMTAP_STREAM_END not in span.attributes


def test_broken_stream(instrumented, client, span_exporter):
    seen = []
    with pytest.raises(Exception) as info:
        for event in client.chat.stream(model="devserver-broken_stream:2", messages=_user("a b c")):
            seen.append(event)
    span = only_span(span_exporter)
    assert len(seen) == 2
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "error"
    assert span.attributes[semconv.ERROR_TYPE] == type(info.value).__qualname__
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["finish_reason"] == "error"


# the SDK's own span, propagation, uninstrument ---------------------------------------------------


@needs_sdk_tracing
def test_sdk_traces_on_its_own(client, span_exporter):
    """Without llmtap the SDK's hook makes its own span: the one-span checks above are live."""
    client.chat.complete(model=MODEL, messages=_user("sdk only"))
    names = [s.instrumentation_scope.name for s in span_exporter.get_finished_spans()]
    assert names == [SDK_SCOPE]


@needs_sdk_tracing
def test_request_carries_llmtaps_trace_context(instrumented, client, devserver, span_exporter):
    devserver.requests.clear()
    client.chat.complete(model=MODEL, messages=_user("propagate"))
    span = only_span(span_exporter)
    (request,) = devserver.requests.all()
    traceparent = request.headers.get("traceparent", "")
    context = span.get_span_context()
    assert traceparent.split("-")[1:3] == [f"{context.trace_id:032x}", f"{context.span_id:016x}"]


def test_uninstrument_restores(instrument, client, span_exporter):
    instrumentor = instrument(TARGET)
    client.chat.complete(model=MODEL, messages=_user("before"))
    instrumentor.uninstrument()
    client.chat.complete(model=MODEL, messages=_user("after"))
    names = [s.instrumentation_scope.name for s in span_exporter.get_finished_spans()]
    assert names == ([SCOPE, SDK_SCOPE] if SDK_TRACING else [SCOPE])
    instrument.active.clear()


def test_generator_messages_not_consumed(instrumented, client, span_exporter):
    response = client.chat.complete(model=MODEL, messages=(m for m in _user("from a generator")))
    assert "from a generator" in response.choices[0].message.content
    assert content(only_span(span_exporter), semconv.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "from a generator"}]}
    ]


# content capture modes ---------------------------------------------------------------------------


# document chunks came with SDK 1.6
DOCUMENTS = hasattr(models, "DocumentURLChunk")


def _rich_messages() -> list[Any]:
    parts: list[dict[str, Any]] = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": "https://example.com/a.png"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
    ]
    if DOCUMENTS:
        parts.append({"type": "document_url", "document_url": "https://example.com/d.pdf"})
    return [
        {"role": "system", "content": [{"type": "text", "text": "Be terse."}]},
        {"role": "user", "content": parts},
    ]


def test_capture_span_only_parts(instrument, client, span_exporter, log_exporter):
    instrument(TARGET, capture="span_only")
    client.chat.complete(model=MODEL, messages=_rich_messages())
    span = only_span(span_exporter)
    inputs = validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert inputs[0] == {"role": "system", "parts": [{"type": "text", "content": "Be terse."}]}
    _, url, blob, *document = inputs[1]["parts"]
    assert url == {"type": "uri", "modality": "image", "uri": "https://example.com/a.png"}
    assert blob["type"] == "blob" and blob["mime_type"] == "image/png"
    assert blob["content"].startswith("<omitted")
    if DOCUMENTS:
        assert document == [
            {"type": "uri", "modality": "document", "uri": "https://example.com/d.pdf"}
        ]
    assert log_exporter.get_finished_logs() == ()


def test_capture_no_content(instrument, client, span_exporter, log_exporter):
    instrument(TARGET, capture="no_content")
    client.chat.complete(model=MODEL, messages=_rich_messages(), tools=[TOOL])
    list(client.chat.stream(model=MODEL, messages=_user("Weather in Nice"), tools=[TOOL]))
    for span in span_exporter.get_finished_spans():
        assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
        for key in (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.TOOL_DEFINITIONS):
            assert key not in span.attributes
    assert log_exporter.get_finished_logs() == ()


def test_capture_event_only(instrument, client, span_exporter, log_exporter):
    instrument(TARGET, capture=CaptureMode.EVENT_ONLY)
    client.chat.complete(model=MODEL, messages=_user("event"))
    span = only_span(span_exporter)
    assert semconv.INPUT_MESSAGES not in span.attributes
    (record,) = log_exporter.get_finished_logs()
    assert record.log_record.event_name == semconv.EVENT_INFERENCE_DETAILS
    messages = json.loads(record.log_record.attributes[semconv.INPUT_MESSAGES])
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "event"}]}]
    assert record.log_record.span_id == span.get_span_context().span_id


# differential and metrics ------------------------------------------------------------------------


def _dump(value: Any) -> Any:
    data = value.model_dump()
    # ``created`` is the devserver's clock (seconds): a call that straddles a second differs
    if isinstance(data, dict) and "data" in data and isinstance(data["data"], dict):
        data["data"].pop("created", None)
    if isinstance(data, dict):
        data.pop("created", None)
    return data


def _calls(client: Any) -> list[Any]:
    chat = {"model": MODEL, "messages": _user("Weather in Rome")}
    out = [_dump(client.chat.complete(**chat, tools=[TOOL]))]
    out.append([_dump(e) for e in client.chat.stream(**chat)])
    with client.chat.stream(**chat, tools=[TOOL]) as stream:
        out.append([_dump(e) for e in stream])
    out.append(_dump(client.embeddings.create(model="mistral-embed", inputs=["same"])))
    out.append(_dump(client.fim.complete(model="codestral-latest", prompt="def f():")))

    async def go() -> list[Any]:
        stream = await client.chat.stream_async(**chat)
        return [_dump(e) async for e in stream]

    out.append(asyncio.run(go()))
    return out


def test_differential(instrument, devserver, sdk_traced, span_exporter):
    # a client per pass: older SDKs keep their async HTTP client on the first event loop
    plain = _calls(sdk_traced(devserver))
    instrument(TARGET, capture="span_and_event")
    span_exporter.clear()
    assert _calls(sdk_traced(devserver)) == plain
    names = [s.instrumentation_scope.name for s in span_exporter.get_finished_spans()]
    assert names == [SCOPE] * 6


def test_metrics(instrumented, client, metric_reader):
    response = client.chat.complete(model=MODEL, messages=_user("metrics"))
    list(client.chat.stream(model=MODEL, messages=_user("metrics stream")))
    tokens = metric_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
    by_type = {p.attributes[semconv.TOKEN_TYPE]: p for p in tokens}
    assert by_type["input"].count == 2 and by_type["output"].count == 2
    assert by_type["output"].sum > response.usage.completion_tokens
    for point in tokens:
        assert point.attributes[semconv.PROVIDER] == "mistral_ai"
        assert point.attributes[semconv.RESPONSE_MODEL] == MODEL
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 2 and duration.attributes[semconv.OPERATION] == "chat"
    (ttfc,) = metric_points(metric_reader, semconv.METRIC_TIME_TO_FIRST_CHUNK)
    assert ttfc.count == 1


def test_error_metric(instrumented, client, metric_reader):
    with pytest.raises(SDKError):
        client.chat.complete(model="devserver-server_error", messages=_user("x"))
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes[semconv.ERROR_TYPE] == "500"
