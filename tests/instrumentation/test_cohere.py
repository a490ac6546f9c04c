"""Cohere instrumentation against the real SDK (v2 client) talking to the dev server.

Nothing of llmtap is mocked: ``cohere.ClientV2`` / ``AsyncClientV2`` (and ``Client().v2``)
over the socket devserver, retries off.
"""

from __future__ import annotations

import gc
import inspect
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import cohere
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind, StatusCode

import llmtap
from llmtap import runtime, semconv
from llmtap.config import CaptureMode, Settings
from llmtap.export.readable import to_span_data
from llmtap.instrumentation._invocation import SCOPE, Telemetry
from llmtap.instrumentation.cohere import CohereInstrumentor
from llmtap.pipeline.cost import CostStage

MODEL = "command-a-03-2025"
# cohere < 5.16 takes no max_retries (and retries only when a request asks to)
NO_RETRIES = (
    {"max_retries": 0} if "max_retries" in inspect.signature(cohere.ClientV2).parameters else {}
)
TARGET = "llmtap.instrumentation.cohere:CohereInstrumentor"
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
DOCS = ["Berlin is big", "Paris is the capital of France", "France"]


needs_thinking = pytest.mark.skipif(
    "thinking" not in inspect.signature(cohere.ClientV2.chat).parameters,
    reason="this cohere SDK has no thinking parameter (added after 5.16)",
)


def _field(obj: Any, key: str) -> Any:
    """A field of an SDK model or, in SDKs that type it loosely (message-end usage), a dict."""
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def co(devserver: Any) -> Iterator[cohere.ClientV2]:
    client = cohere.ClientV2(api_key="test", base_url=devserver.base_url, **NO_RETRIES)
    yield client
    client._client_wrapper.httpx_client.httpx_client.close()


@pytest.fixture
async def aco(devserver: Any) -> AsyncIterator[cohere.AsyncClientV2]:
    client = cohere.AsyncClientV2(api_key="test", base_url=devserver.base_url, **NO_RETRIES)
    yield client
    await client._client_wrapper.httpx_client.httpx_client.aclose()


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


def test_chat_sync(instrumented, co, devserver, span_exporter):
    response = co.chat(
        model=MODEL,
        messages=_user("Hi Cohere"),
        temperature=0.2,
        p=0.9,
        k=40,
        max_tokens=256,
        seed=7,
        stop_sequences=["\n\n"],
        frequency_penalty=0.1,
        presence_penalty=0.3,
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert attrs[semconv.OPERATION] == "chat" and attrs[semconv.PROVIDER] == "cohere"
    assert attrs[semconv.REQUEST_MODEL] == MODEL
    host, port = devserver.base_url.split("//")[1].split(":")
    assert attrs[semconv.SERVER_ADDRESS] == host and attrs[semconv.SERVER_PORT] == int(port)
    assert attrs[semconv.REQUEST_TEMPERATURE] == 0.2 and attrs[semconv.REQUEST_TOP_P] == 0.9
    assert attrs[semconv.REQUEST_TOP_K] == 40.0 and attrs[semconv.REQUEST_MAX_TOKENS] == 256
    assert attrs[semconv.REQUEST_SEED] == 7
    assert list(attrs[semconv.REQUEST_STOP_SEQUENCES]) == ["\n\n"]
    assert attrs[semconv.REQUEST_FREQUENCY_PENALTY] == 0.1
    assert attrs[semconv.REQUEST_PRESENCE_PENALTY] == 0.3
    assert attrs[semconv.REQUEST_STREAM] is False
    assert attrs[semconv.RESPONSE_ID] == response.id
    assert list(attrs[semconv.RESPONSE_FINISH_REASONS]) == ["stop"]
    # ``usage.tokens`` (what the model read and wrote), not ``billed_units``
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.tokens.input_tokens
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.tokens.output_tokens
    assert response.usage.tokens.input_tokens != response.usage.billed_units.input_tokens
    assert semconv.USAGE_CACHE_READ_INPUT_TOKENS not in attrs  # cached_tokens == 0
    assert semconv.RESPONSE_TIME_TO_FIRST_CHUNK not in attrs
    assert span.status.status_code is StatusCode.UNSET
    assert output_text(span) == response.message.content[0].text
    messages = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert messages[0]["finish_reason"] == "stop" and messages[0]["role"] == "assistant"


async def test_chat_async(instrumented, aco, span_exporter):
    response = await aco.chat(model=MODEL, messages=_user("async hello"))
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_ID] == response.id
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == response.usage.tokens.output_tokens
    assert "async hello" in output_text(span)


def test_v1_client_v2_namespace(instrumented, devserver, span_exporter):
    client = cohere.Client(api_key="test", base_url=devserver.base_url, **NO_RETRIES)
    assert type(client.v2) is cohere.v2.client.V2Client  # ClientV2's base: the same methods
    client.v2.chat(model=MODEL, messages=_user("via v1"))
    client.v2.embed(model="embed-v4.0", input_type="search_query", texts=["a"])
    spans = span_exporter.get_finished_spans()
    assert [s.attributes[semconv.OPERATION] for s in spans] == ["chat", "embeddings"]
    assert all(s.attributes[semconv.SERVER_ADDRESS] == "127.0.0.1" for s in spans)


def test_finish_reasons_mapped(instrumented, co, span_exporter):
    co.chat(model=MODEL, messages=_user("Say a lot"), max_tokens=3)
    co.chat(model=MODEL, messages=_user("Hi"), stop_sequences=["devserver"])
    co.chat(model=MODEL, messages=_user("Weather in Rome"), tools=[TOOL])
    spans = span_exporter.get_finished_spans()
    assert [list(s.attributes[semconv.RESPONSE_FINISH_REASONS]) for s in spans] == [
        ["length"],
        ["stop"],
        ["tool_call"],
    ]
    assert [content(s, semconv.OUTPUT_MESSAGES)[0]["finish_reason"] for s in spans] == [
        "length",
        "stop",
        "tool_call",
    ]


def test_tools_in_and_out(instrumented, co, span_exporter):
    response = co.chat(model=MODEL, messages=_user("Weather in Rome"), tools=[TOOL])
    span = only_span(span_exporter)
    tools = validate(span, semconv.TOOL_DEFINITIONS, "gen-ai-tool-definitions.json")
    assert tools == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": TOOL["function"]["parameters"],
        }
    ]
    (message,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    call = response.message.tool_calls[0]
    assert message["parts"] == [
        {"type": "reasoning", "content": "I will use the get_weather tool."},
        {"type": "tool_call", "name": "get_weather", "id": call.id, "arguments": {"city": "Rome"}},
    ]


def test_tool_round_trip_input(instrumented, co, span_exporter):
    first = co.chat(model=MODEL, messages=_user("Weather in Rome"), tools=[TOOL])
    call = first.message.tool_calls[0]
    co.chat(
        model=MODEL,
        tools=[TOOL],
        messages=[
            cohere.SystemChatMessageV2(content="Be brief."),
            cohere.UserChatMessageV2(content="Weather in Rome"),
            cohere.AssistantChatMessageV2(tool_plan=first.message.tool_plan, tool_calls=[call]),
            cohere.ToolChatMessageV2(
                tool_call_id=call.id,
                content=[{"type": "document", "document": {"data": {"temp": "21C"}, "id": "w1"}}],
            ),
            {"role": "tool", "tool_call_id": call.id, "content": [{"type": "text", "text": "ok"}]},
        ],
    )
    span = span_exporter.get_finished_spans()[-1]
    msgs = validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert msgs[0] == {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]}
    assert msgs[1]["role"] == "user"
    assert msgs[2] == {
        "role": "assistant",
        "parts": [
            {"type": "reasoning", "content": "I will use the get_weather tool."},
            {
                "type": "tool_call",
                "name": "get_weather",
                "id": call.id,
                "arguments": {"city": "Rome"},
            },
        ],
    }
    document = {"type": "document", "content": '{"temp": "21C"}', "id": "w1"}
    assert msgs[3] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "response": [document], "id": call.id}],
    }
    assert msgs[4]["parts"] == [{"type": "tool_call_response", "response": "ok", "id": call.id}]


def test_documents_system_and_json(instrumented, co, span_exporter):
    fmt = {"type": "json_object", "json_schema": {"type": "object", "properties": {}}}
    co.chat(
        model=MODEL,
        messages=[{"role": "system", "content": "Use the documents."}, *_user("Where is Paris?")],
        documents=[cohere.Document(id="d1", data={"text": "Paris is in France"}), "Berlin"],
        response_format=fmt,
    )
    span = only_span(span_exporter)
    assert span.attributes[semconv.OUTPUT_TYPE] == "json"
    msgs = validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert [m["role"] for m in msgs] == ["system", "system", "user"]
    assert msgs[1]["parts"] == [
        {"type": "document", "content": '{"text": "Paris is in France"}', "id": "d1"},
        {"type": "document", "content": "Berlin"},
    ]


@needs_thinking
def test_thinking_and_images(instrumented, co, span_exporter):
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    co.chat(
        model=MODEL,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Think"}, image]}],
        thinking={"type": "enabled", "token_budget": 100},
    )
    span = only_span(span_exporter)
    (user,) = content(span, semconv.INPUT_MESSAGES)
    assert user["parts"][1] == {
        "type": "uri",
        "modality": "image",
        "uri": "https://example.com/a.png",
    }
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert [p["type"] for p in message["parts"]] == ["reasoning", "text"]


def test_generator_messages_not_consumed(instrumented, co, span_exporter):
    response = co.chat(model=MODEL, messages=(m for m in _user("from a generator")))
    assert "from a generator" in response.message.content[0].text
    msgs = content(only_span(span_exporter), semconv.INPUT_MESSAGES)
    assert msgs == [{"role": "user", "parts": [{"type": "text", "content": "from a generator"}]}]


# streams ------------------------------------------------------------------------------------


def test_stream_iterated_fully(instrumented, co, span_exporter):
    stream = co.chat_stream(model=MODEL, messages=_user("stream me"))
    assert span_exporter.get_finished_spans() == ()
    events = list(stream)
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.REQUEST_STREAM] is True
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert attrs[semconv.RESPONSE_ID] == events[0].id
    assert list(attrs[semconv.RESPONSE_FINISH_REASONS]) == ["stop"]
    tokens = _field(events[-1].delta.usage, "tokens")
    assert attrs[semconv.USAGE_INPUT_TOKENS] == _field(tokens, "input_tokens")
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == _field(tokens, "output_tokens")
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
    assert output_text(span) == text


async def test_stream_async(instrumented, aco, span_exporter):
    events = [e async for e in aco.chat_stream(model=MODEL, messages=_user("async stream"))]
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert span.attributes[semconv.RESPONSE_ID] == events[0].id
    assert "async stream" in output_text(span)
    assert span.attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] >= 0


def test_stream_tools(instrumented, co, span_exporter):
    events = list(co.chat_stream(model=MODEL, messages=_user("Weather in Oslo"), tools=[TOOL]))
    span = only_span(span_exporter)
    start = next(e for e in events if e.type == "tool-call-start")
    (message,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert message == {
        "role": "assistant",
        "parts": [
            {"type": "reasoning", "content": "I will use the get_weather tool."},
            {
                "type": "tool_call",
                "name": "get_weather",
                "id": start.delta.message.tool_calls.id,
                "arguments": {"city": "Oslo"},
            },
        ],
        "finish_reason": "tool_call",
    }
    assert list(span.attributes[semconv.RESPONSE_FINISH_REASONS]) == ["tool_call"]


@needs_thinking
def test_stream_thinking(instrumented, co, span_exporter):
    list(co.chat_stream(model=MODEL, messages=_user("Hmm"), thinking={"type": "enabled"}))
    (message,) = content(only_span(span_exporter), semconv.OUTPUT_MESSAGES)
    assert [p["type"] for p in message["parts"]] == ["reasoning", "text"]
    assert message["parts"][0]["content"].startswith('The user wrote "Hmm"')


def test_stream_break_then_close(instrumented, co, span_exporter):
    stream = co.chat_stream(model=MODEL, messages=_user("stream"))
    for _event in stream:
        break
    stream.close()
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "closed"
    assert span.status.status_code is StatusCode.UNSET


def test_stream_break_then_abandoned(instrumented, co, span_exporter):
    stream = co.chat_stream(model=MODEL, messages=_user("stream"))
    for _event in stream:
        break
    assert span_exporter.get_finished_spans() == ()
    del stream, _event
    gc.collect()
    assert only_span(span_exporter).attributes[semconv.LLMTAP_STREAM_END] == "abandoned"


def test_stream_never_iterated(instrumented, co, span_exporter):
    stream = co.chat_stream(model=MODEL, messages=_user("never"))
    del stream
    gc.collect()
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "abandoned"
    assert semconv.RESPONSE_TIME_TO_FIRST_CHUNK not in span.attributes


def test_stream_request_runs_in_the_span(instrument, devserver, span_exporter):
    """The SDK's HTTP request (made on the first step) sees llmtap's span as current."""
    instrument(TARGET)
    seen: list[Any] = []
    hooks = {"request": [lambda request: seen.append(trace.get_current_span())]}
    with httpx.Client(event_hooks=hooks) as http:
        client = cohere.ClientV2(
            api_key="test", base_url=devserver.base_url, **NO_RETRIES, httpx_client=http
        )
        list(client.chat_stream(model=MODEL, messages=_user("ctx")))
        client.chat(model=MODEL, messages=_user("ctx"))
    spans = span_exporter.get_finished_spans()
    assert [s.get_span_context().span_id for s in seen] == [
        s.get_span_context().span_id for s in spans
    ]
    assert trace.get_current_span() is trace.INVALID_SPAN


# errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("rate_limit", cohere.TooManyRequestsError),
        ("server_error", cohere.InternalServerError),
        ("auth", cohere.UnauthorizedError),
        ("not_found", cohere.NotFoundError),
        ("overloaded", cohere.ServiceUnavailableError),
    ],
)
def test_api_errors(instrumented, co, span_exporter, scenario, error):
    with pytest.raises(error) as caught:
        co.chat(model=f"devserver-{scenario}", messages=_user("x"))
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == error.__name__
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].name == "exception"
    assert caught.type is error


def test_stream_error_on_first_step(instrumented, co, span_exporter):
    stream = co.chat_stream(model="devserver-rate_limit", messages=_user("x"))
    with pytest.raises(cohere.TooManyRequestsError):
        next(iter(stream))
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "TooManyRequestsError"
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "error"


def test_broken_stream(instrumented, co, span_exporter):
    with pytest.raises(httpx.RemoteProtocolError):
        for _event in co.chat_stream(model="devserver-broken_stream:3", messages=_user("a b")):
            pass
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "RemoteProtocolError"
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "error"
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["finish_reason"] == "error"


def test_generation_error_in_stream(instrumented, co, span_exporter):
    events = list(co.chat_stream(model="devserver-stream_error:4", messages=_user("a b c")))
    assert events[-1].delta.finish_reason == "ERROR"
    span = only_span(span_exporter)
    assert list(span.attributes[semconv.RESPONSE_FINISH_REASONS]) == ["error"]
    assert span.attributes[semconv.ERROR_TYPE] == "ERROR"
    assert span.status.status_code is StatusCode.ERROR
    assert content(span, semconv.OUTPUT_MESSAGES)[0]["finish_reason"] == "error"


async def test_async_errors(instrumented, aco, span_exporter):
    with pytest.raises(cohere.NotFoundError):
        await aco.embed(model="devserver-not_found", input_type="search_query", texts=["a"])
    with pytest.raises(cohere.TooManyRequestsError):
        async for _event in aco.chat_stream(model="devserver-rate_limit", messages=_user("x")):
            pass
    spans = span_exporter.get_finished_spans()
    assert [s.attributes[semconv.ERROR_TYPE] for s in spans] == [
        "NotFoundError",
        "TooManyRequestsError",
    ]


# embed and rerank ---------------------------------------------------------------------------


def test_embed(instrumented, co, span_exporter):
    response = co.embed(
        model="embed-v4.0",
        input_type="search_document",
        texts=["alpha", "beta"],
        embedding_types=["float", "ubinary"],
    )
    co.embed(model="embed-v4.0", input_type="search_query", texts=["a"], output_dimension=256)
    first, second = span_exporter.get_finished_spans()
    attrs = first.attributes
    assert first.name == "embeddings embed-v4.0" and first.kind is SpanKind.CLIENT
    assert attrs[semconv.OPERATION] == "embeddings" and attrs[semconv.PROVIDER] == "cohere"
    assert list(attrs[semconv.REQUEST_ENCODING_FORMATS]) == ["float", "ubinary"]
    assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == 1024
    assert attrs[semconv.RESPONSE_ID] == response.id
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.meta.tokens.input_tokens
    assert semconv.USAGE_OUTPUT_TOKENS not in attrs
    assert second.attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] == 256


def test_embed_dimension_from_packed_types(instrumented, co, span_exporter):
    co.embed(
        model="embed-v4.0",
        input_type="classification",
        texts=["a"],
        embedding_types=["ubinary"],
        output_dimension=None,
    )
    assert only_span(span_exporter).attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] == 1024


@pytest.fixture
def step_telemetry(tracer_provider: Any) -> Iterator[None]:
    """llmtap's own steps record into the test provider, with content on."""
    previous = runtime.telemetry()
    runtime.use_telemetry(Telemetry(Settings(capture=CaptureMode.SPAN_ONLY), tracer_provider))
    yield
    runtime.use_telemetry(previous)


def test_rerank_recorded_like_the_rerank_step(instrumented, co, span_exporter, step_telemetry):
    response = co.rerank(model="rerank-v3.5", query="capital of France", documents=DOCS, top_n=2)
    with llmtap.rerank("mine", query="capital of France") as step:
        step.documents(
            [
                {"id": str(r.index), "score": r.relevance_score, "content": DOCS[r.index]}
                for r in response.results
            ]
        )
    cohere_span, step_span = span_exporter.get_finished_spans()
    attrs = cohere_span.attributes
    assert cohere_span.name == "rerank rerank-v3.5" and cohere_span.kind is SpanKind.CLIENT
    assert attrs[semconv.OPERATION] == step_span.attributes[semconv.OPERATION] == "rerank"
    assert attrs[semconv.LLMTAP_STEP_KIND] == step_span.attributes[semconv.LLMTAP_STEP_KIND]
    assert attrs[semconv.PROVIDER] == "cohere" and attrs[semconv.REQUEST_MODEL] == "rerank-v3.5"
    assert attrs[semconv.RESPONSE_ID] == response.id
    for key in (semconv.RETRIEVAL_QUERY_TEXT, semconv.RETRIEVAL_DOCUMENTS):
        assert attrs[key] == step_span.attributes[key]
    assert json.loads(attrs[semconv.RETRIEVAL_DOCUMENTS]) == [
        {"id": "1", "score": response.results[0].relevance_score, "content": DOCS[1]},
        {"id": "2", "score": response.results[1].relevance_score, "content": DOCS[2]},
    ]
    validate(cohere_span, semconv.RETRIEVAL_DOCUMENTS, "gen-ai-retrieval-documents.json")


async def test_async_embed_and_rerank(instrumented, aco, span_exporter):
    await aco.embed(model="embed-v4.0", input_type="search_query", texts=["a"])
    await aco.rerank(model="rerank-v3.5", query="France", documents=(d for d in DOCS))
    embed_span, rerank_span = span_exporter.get_finished_spans()
    assert embed_span.attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] == 1024
    docs = content(rerank_span, semconv.RETRIEVAL_DOCUMENTS)
    assert [d["id"] for d in docs] == ["2", "1", "0"]  # the generator reached the SDK too


@pytest.mark.parametrize(
    ("model", "count", "units", "total"),
    [
        ("rerank-v3.5", 3, 1, 0.002),  # $2.00 per 1,000 searches
        ("rerank-v3.5", 250, 3, 0.006),  # a search unit: one query with up to 100 documents
        ("acme-rerank-1", 3, 1, None),
    ],
)
def test_rerank_search_units_and_cost(
    instrumented, co, span_exporter, tmp_path, monkeypatch, model, count, units, total
):
    monkeypatch.setenv("LLMTAP_DATA_DIR", str(tmp_path))  # the bundled prices only
    monkeypatch.delenv("LLMTAP_PRICING_FILE", raising=False)
    documents = [f"document {i}" for i in range(count)]
    response = co.rerank(model=model, query="France", documents=documents)
    assert response.meta.billed_units.search_units == units
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes[semconv.LLMTAP_USAGE_SEARCH_UNITS] == units
    data = to_span_data(span)
    CostStage(meter_provider=MeterProvider()).apply(data)
    if total is None:
        assert data.attributes[semconv.LLMTAP_COST_UNKNOWN_MODEL] is True
        assert semconv.LLMTAP_COST_TOTAL not in data.attributes
    else:
        assert data.attributes[semconv.LLMTAP_COST_TOTAL] == pytest.approx(total, abs=1e-12)
        assert data.attributes[semconv.LLMTAP_COST_PRICE_MODEL] == "rerank-v3.5"


# capture modes ------------------------------------------------------------------------------

_CONTENT_KEYS = (
    semconv.INPUT_MESSAGES,
    semconv.OUTPUT_MESSAGES,
    semconv.SYSTEM_INSTRUCTIONS,
    semconv.TOOL_DEFINITIONS,
    semconv.RETRIEVAL_QUERY_TEXT,
    semconv.RETRIEVAL_DOCUMENTS,
)


def test_capture_no_content(instrument, co, span_exporter, log_exporter):
    instrument(TARGET, capture="no_content")
    co.chat(model=MODEL, messages=_user("secret"), tools=[TOOL])
    list(co.chat_stream(model=MODEL, messages=_user("secret")))
    co.rerank(model="rerank-v3.5", query="secret", documents=DOCS)
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 3
    for span in spans:
        for key in _CONTENT_KEYS:
            assert key not in span.attributes
    assert spans[1].attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
    assert log_exporter.get_finished_logs() == ()


def test_capture_event_only(instrument, co, span_exporter, log_exporter):
    instrument(TARGET, capture=CaptureMode.EVENT_ONLY)
    co.chat(model=MODEL, messages=_user("event"))
    span = only_span(span_exporter)
    assert semconv.INPUT_MESSAGES not in span.attributes
    (record,) = log_exporter.get_finished_logs()
    assert record.log_record.event_name == semconv.EVENT_INFERENCE_DETAILS
    messages = json.loads(record.log_record.attributes[semconv.INPUT_MESSAGES])
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "event"}]}]
    assert record.log_record.span_id == span.get_span_context().span_id


# clients made before instrument(), raw responses ----------------------------------------------


def test_client_made_before_instrument(instrument, co, span_exporter):
    """``Client.__init__`` binds chat/chat_stream onto the instance: the raw client's wrappers
    make the span then."""
    assert "chat" in vars(co) and "chat_stream" in vars(co)
    instrument(TARGET)
    response = co.chat(model=MODEL, messages=_user("early"), max_tokens=64)
    events = list(co.chat_stream(model=MODEL, messages=_user("early stream")))
    chat_span, stream_span = span_exporter.get_finished_spans()
    assert chat_span.attributes[semconv.RESPONSE_ID] == response.id
    assert chat_span.attributes[semconv.REQUEST_MAX_TOKENS] == 64
    assert chat_span.attributes[semconv.USAGE_OUTPUT_TOKENS] == response.usage.tokens.output_tokens
    assert stream_span.attributes[semconv.REQUEST_STREAM] is True
    assert stream_span.attributes[semconv.RESPONSE_ID] == events[0].id
    assert stream_span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert "early stream" in output_text(stream_span)
    for span in (chat_span, stream_span):
        assert semconv.REQUEST_STOP_SEQUENCES not in span.attributes  # OMIT is not a value


def test_client_made_before_instrument_stream_errors_and_breaks(instrument, co, span_exporter):
    instrument(TARGET)
    with pytest.raises(cohere.TooManyRequestsError):
        list(co.chat_stream(model="devserver-rate_limit", messages=_user("x")))
    stream = co.chat_stream(model=MODEL, messages=_user("x y"))
    next(stream)
    stream.close()
    failed, closed = span_exporter.get_finished_spans()
    assert failed.attributes[semconv.ERROR_TYPE] == "TooManyRequestsError"
    assert closed.attributes[semconv.LLMTAP_STREAM_END] == "closed"


async def test_async_client_made_before_instrument(instrument, aco, span_exporter):
    instrument(TARGET)
    await aco.chat(model=MODEL, messages=_user("early"))
    events = [e async for e in aco.chat_stream(model=MODEL, messages=_user("early"))]
    chat_span, stream_span = span_exporter.get_finished_spans()
    assert chat_span.attributes[semconv.OPERATION] == "chat"
    assert stream_span.attributes[semconv.RESPONSE_ID] == events[0].id
    assert stream_span.attributes[semconv.LLMTAP_STREAM_END] == "completed"


def test_with_raw_response(instrumented, co, span_exporter):
    raw = co.with_raw_response.chat(model=MODEL, messages=_user("raw"))
    embed = co.with_raw_response.embed(model="embed-v4.0", input_type="search_query", texts=["a"])
    chat_span, embed_span = span_exporter.get_finished_spans()
    assert chat_span.attributes[semconv.RESPONSE_ID] == raw.data.id
    assert raw.headers["x-debug-trace-id"].startswith("req_")
    assert embed_span.attributes[semconv.RESPONSE_ID] == embed.data.id
    assert embed_span.attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] == 1024


# one span, uninstrument, metrics, differential ----------------------------------------------


def test_second_instrumentor_handle_adds_no_span(instrumented, co, span_exporter):
    assert CohereInstrumentor() is instrumented  # the per-class singleton
    co.chat(model=MODEL, messages=_user("once"))
    only_span(span_exporter)


def test_uninstrument_restores(instrument, devserver, span_exporter):
    instrumentor = instrument(TARGET)
    client = cohere.ClientV2(api_key="test", base_url=devserver.base_url, **NO_RETRIES)
    client.chat(model=MODEL, messages=_user("before"))
    instrumentor.uninstrument()
    # this client bound the wrapped methods while instrumented: they call straight through
    client.chat(model=MODEL, messages=_user("after"))
    list(client.chat_stream(model=MODEL, messages=_user("after")))
    client.embed(model="embed-v4.0", input_type="search_query", texts=["a"])
    assert len(span_exporter.get_finished_spans()) == 1
    for cls in (cohere.v2.client.V2Client, cohere.v2.raw_client.RawV2Client):
        assert not hasattr(vars(cls)["chat"], "__wrapped__")


def test_metrics(instrumented, co, metric_reader):
    response = co.chat(model=MODEL, messages=_user("metrics"))
    list(co.chat_stream(model=MODEL, messages=_user("metrics")))
    tokens = metric_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
    by_type = {p.attributes[semconv.TOKEN_TYPE]: p for p in tokens}
    assert by_type["input"].sum == 2 * response.usage.tokens.input_tokens
    assert by_type["output"].sum == 2 * response.usage.tokens.output_tokens
    assert by_type["input"].count == 2
    for point in tokens:
        assert point.attributes[semconv.PROVIDER] == "cohere"
        assert point.attributes[semconv.REQUEST_MODEL] == MODEL
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 2 and duration.attributes[semconv.OPERATION] == "chat"
    (ttfc,) = metric_points(metric_reader, semconv.METRIC_TIME_TO_FIRST_CHUNK)
    assert ttfc.count == 1


def _calls(client: cohere.ClientV2) -> list[Any]:
    request = {"model": MODEL, "messages": _user("Weather in Rome")}
    return [
        client.chat(**request, tools=[TOOL]).model_dump(),
        client.chat(**request).model_dump(),
        [e.model_dump() for e in client.chat_stream(**request, tools=[TOOL])],
        [e.model_dump() for e in client.chat_stream(**request)],
        client.embed(
            model="embed-v4.0", input_type="search_query", texts=["a"], embedding_types=["int8"]
        ).model_dump(),
        client.rerank(model="rerank-v3.5", query="France", documents=DOCS).model_dump(),
    ]


def test_differential(instrument, co, span_exporter):
    plain = _calls(co)
    instrument(TARGET, capture="span_and_event")
    assert _calls(co) == plain
    assert len(span_exporter.get_finished_spans()) == 6
