"""Bedrock instrumentation against the real boto3 ``bedrock-runtime`` client talking to the
dev server over loopback (nothing mocked). Clients are made after ``instrument()``: llmtap
hooks the client class botocore builds."""

from __future__ import annotations

import gc
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import EventStream
from botocore.exceptions import ClientError, EventStreamError
from opentelemetry.trace import StatusCode

from llmtap import semconv
from llmtap.config import CaptureMode
from llmtap.instrumentation._invocation import SCOPE

TARGET = "llmtap.instrumentation.bedrock:BedrockInstrumentor"
CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PROFILE_ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
    "us.anthropic.claude-3-haiku-20240307-v1:0"
)
PROVISIONED_ARN = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123xyz"
SCHEMAS = Path("/work/shared/semconv-genai-v1.41/docs")
WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Weather for a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}
PNG = bytes.fromhex("89504e470d0a1a0a")


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


@pytest.fixture
def instrumented(instrument: Any) -> Any:
    return instrument(TARGET, capture="span_only")


@pytest.fixture
def make_client(devserver: Any) -> Any:
    def make(scenario: str | None = None) -> Any:
        made = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=devserver.base_url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1}),
        )
        if scenario:

            def add(request: Any, **_: Any) -> None:
                request.headers["x-devserver-scenario"] = scenario

            made.meta.events.register("before-sign.bedrock-runtime.*", add)
        return made

    return make


@pytest.fixture
def client(instrumented: Any, make_client: Any) -> Any:
    return make_client()


def genai_spans(exporter: Any) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if semconv.OPERATION in s.attributes]


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


# Converse ------------------------------------------------------------------------------------


def test_converse(client, devserver, span_exporter):
    out = client.converse(
        modelId=CLAUDE,
        messages=_user("Hello there Ada"),
        system=[{"text": "Be terse."}],
        inferenceConfig={
            "maxTokens": 200,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["##"],
        },
        additionalModelRequestFields={"top_k": 5},
        guardrailConfig={"guardrailIdentifier": "gr-123", "guardrailVersion": "1"},
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"chat {CLAUDE}"
    assert attrs[semconv.OPERATION] == "chat" and attrs[semconv.PROVIDER] == "aws.bedrock"
    assert attrs[semconv.REQUEST_MODEL] == CLAUDE
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[semconv.SERVER_PORT] == devserver.port
    assert attrs[semconv.REQUEST_MAX_TOKENS] == 200
    assert attrs[semconv.REQUEST_TEMPERATURE] == 0.2 and attrs[semconv.REQUEST_TOP_P] == 0.9
    assert attrs[semconv.REQUEST_TOP_K] == 5
    assert attrs[semconv.REQUEST_STOP_SEQUENCES] == ("##",)
    assert attrs["aws.bedrock.guardrail.id"] == "gr-123"
    assert attrs[semconv.RESPONSE_ID] == out["ResponseMetadata"]["RequestId"]
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.USAGE_INPUT_TOKENS] == out["usage"]["inputTokens"]
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == out["usage"]["outputTokens"]
    assert semconv.USAGE_CACHE_READ_INPUT_TOKENS not in attrs
    assert validate(span, semconv.SYSTEM_INSTRUCTIONS, "gen-ai-system-instructions.json") == [
        {"type": "text", "content": "Be terse."}
    ]
    assert validate(span, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json") == [
        {"role": "user", "parts": [{"type": "text", "content": "Hello there Ada"}]}
    ]
    (message,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert message["finish_reason"] == "stop"
    assert message["parts"][0]["content"] == out["output"]["message"]["content"][0]["text"]


def test_converse_tools_round_trip(client, span_exporter):
    first = client.converse(
        modelId=CLAUDE, messages=_user("Weather in Paris?"), toolConfig={"tools": [WEATHER]}
    )
    use = first["output"]["message"]["content"][1]["toolUse"]
    client.converse(
        modelId=CLAUDE,
        messages=[
            {
                "role": "user",
                "content": [
                    {"text": "Weather in Paris?"},
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                ],
            },
            first["output"]["message"],
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": use["toolUseId"],
                            "content": [{"json": {"sky": "clear"}}],
                        }
                    }
                ],
            },
        ],
        toolConfig={"tools": [WEATHER]},
    )
    calling, answering = span_exporter.get_finished_spans()
    assert calling.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)
    (out,) = content(calling, semconv.OUTPUT_MESSAGES)
    assert out["finish_reason"] == "tool_call"
    assert out["parts"][1] == {
        "type": "tool_call",
        "name": "get_weather",
        "id": use["toolUseId"],
        "arguments": {"city": "Paris"},
    }
    assert validate(calling, semconv.TOOL_DEFINITIONS, "gen-ai-tool-definitions.json") == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": WEATHER["toolSpec"]["inputSchema"]["json"],
        }
    ]
    msgs = validate(answering, semconv.INPUT_MESSAGES, "gen-ai-input-messages.json")
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool"]
    image = msgs[0]["parts"][1]
    assert image["type"] == "blob" and image["mime_type"] == "image/png"
    assert msgs[2]["parts"] == [
        {"type": "tool_call_response", "response": {"sky": "clear"}, "id": use["toolUseId"]}
    ]


def _needs_cache_points(client: Any) -> None:
    members = client.meta.service_model.shape_for("SystemContentBlock").members
    if "cachePoint" not in members:
        pytest.skip("this botocore's Bedrock model has no cachePoint blocks (added after 1.35)")


def test_cache_tokens(instrumented, make_client, span_exporter):
    _needs_cache_points(make_client())
    system = [{"text": "You are helpful. " * 30}, {"cachePoint": {"type": "default"}}]
    read = make_client().converse(modelId=CLAUDE, messages=_user("hi"), system=system)
    written = make_client("cache_write").converse(
        modelId=CLAUDE, messages=_user("hi"), system=system
    )
    first, second = (s.attributes for s in span_exporter.get_finished_spans())
    usage = read["usage"]
    assert first[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == usage["cacheReadInputTokens"] > 0
    assert first[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS] == 0
    assert first[semconv.USAGE_INPUT_TOKENS] == usage["inputTokens"] + usage["cacheReadInputTokens"]
    assert (
        second[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS]
        == (written["usage"]["cacheWriteInputTokens"])
    )
    assert second[semconv.USAGE_INPUT_TOKENS] == first[semconv.USAGE_INPUT_TOKENS]


# ConverseStream ------------------------------------------------------------------------------


def test_converse_stream_full(client, span_exporter):
    out = client.converse_stream(
        modelId=PROFILE_ARN, messages=_user("Weather in Rome?"), toolConfig={"tools": [WEATHER]}
    )
    assert isinstance(out["stream"], EventStream) and out["stream"].__class__ is EventStream
    events = list(out["stream"])
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.REQUEST_MODEL] == PROFILE_ARN and attrs[semconv.REQUEST_STREAM] is True
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    usage = events[-1]["metadata"]["usage"]
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage["outputTokens"]
    assert attrs[semconv.USAGE_INPUT_TOKENS] == usage["inputTokens"]
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)
    (message,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert message["parts"][0]["content"] == "I'll use the get_weather tool."
    assert message["parts"][1]["arguments"] == {"city": "Rome"}


def test_converse_stream_abandoned(client, span_exporter):
    out = client.converse_stream(modelId=CLAUDE, messages=_user("hi"))
    for _ in zip(range(2), out["stream"], strict=False):
        pass
    assert span_exporter.get_finished_spans() == ()
    del out
    gc.collect()
    assert only_span(span_exporter).attributes[semconv.LLMTAP_STREAM_END] == "abandoned"


def test_converse_stream_closed(client, span_exporter):
    stream = client.converse_stream(modelId=CLAUDE, messages=_user("hi"))["stream"]
    next(iter(stream))
    stream.close()
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "closed"
    assert span.status.status_code is not StatusCode.ERROR


def test_converse_stream_broken(client, span_exporter):
    stream = client.converse_stream(modelId="devserver-broken_stream:2", messages=_user("hi"))
    with pytest.raises(Exception) as caught:
        list(stream["stream"])
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "error"
    assert span.attributes[semconv.ERROR_TYPE] == type(caught.value).__qualname__
    assert span.status.status_code is StatusCode.ERROR
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["finish_reason"] == "error" and message["parts"][0]["content"] == "Hello "


def test_converse_stream_error_event(client, span_exporter):
    with pytest.raises(EventStreamError):
        list(
            client.converse_stream(modelId="devserver-stream_error:3", messages=_user("hi"))[
                "stream"
            ]
        )
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "ModelStreamErrorException"
    assert span.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize(
    ("scenario", "code"),
    [("rate_limit", "ThrottlingException"), ("bad_request", "ValidationException"),
     ("server_error", "InternalServerException")],
)  # fmt: skip
def test_errors(client, span_exporter, scenario, code):
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=f"devserver-{scenario}", messages=_user("hi"))
    assert caught.value.response["Error"]["Code"] == code
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == code
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].name == "exception"


# InvokeModel ---------------------------------------------------------------------------------

ANTHROPIC_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 100,
    "system": "Be terse.",
    "messages": [{"role": "user", "content": "Hi Ann"}],
}
VENDOR_CALLS = {
    "anthropic.claude-3-haiku-20240307-v1:0": ("chat", ANTHROPIC_BODY, "end_turn"),
    "amazon.nova-lite-v1:0": (
        "chat",
        {"schemaVersion": "messages-v1", "messages": _user("Hi Ann"), "inferenceConfig": {"max_new_tokens": 100}},  # noqa: E501
        "end_turn",
    ),
    "amazon.titan-text-express-v1": (
        "text_completion",
        {"inputText": "Hi Ann", "textGenerationConfig": {"maxTokenCount": 100}},
        "FINISH",
    ),
    "meta.llama3-1-8b-instruct-v1:0": (
        "text_completion", {"prompt": "Hi Ann", "max_gen_len": 100}, "stop"
    ),
    "mistral.mistral-7b-instruct-v0:2": (
        "text_completion", {"prompt": "Hi Ann", "max_tokens": 100}, "stop"
    ),
    "mistral.mistral-large-2407-v1:0": (
        "chat", {"messages": [{"role": "user", "content": "Hi Ann"}], "max_tokens": 100}, "stop"
    ),
    "cohere.command-text-v14": (
        "text_completion", {"prompt": "Hi Ann", "max_tokens": 100}, "COMPLETE"
    ),
    "cohere.command-r-v1:0": ("chat", {"message": "Hi Ann", "max_tokens": 100}, "COMPLETE"),
}  # fmt: skip


@pytest.mark.parametrize("model", list(VENDOR_CALLS))
def test_invoke_each_vendor(client, span_exporter, model):
    operation, body, stop = VENDOR_CALLS[model]
    out = client.invoke_model(modelId=model, body=json.dumps(body))
    data = out["body"].read()
    assert b"Hi Ann" in data
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.OPERATION] == operation and span.name == f"{operation} {model}"
    assert attrs[semconv.REQUEST_MAX_TOKENS] == 100
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == (stop,)
    headers = out["ResponseMetadata"]["HTTPHeaders"]
    assert attrs[semconv.USAGE_INPUT_TOKENS] == int(headers["x-amzn-bedrock-input-token-count"])
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == int(headers["x-amzn-bedrock-output-token-count"])
    assert content(span, semconv.INPUT_MESSAGES)[-1]["parts"][0]["content"].endswith("Hi Ann")
    (message,) = validate(span, semconv.OUTPUT_MESSAGES, "gen-ai-output-messages.json")
    assert "Hi Ann" in message["parts"][0]["content"] and message["finish_reason"] == "stop"


@pytest.mark.parametrize("model", list(VENDOR_CALLS))
def test_invoke_stream_each_vendor(client, span_exporter, model):
    operation, body, stop = VENDOR_CALLS[model]
    out = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    chunks = [json.loads(e["chunk"]["bytes"]) for e in out["body"]]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.OPERATION] == operation
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == (stop,)
    assert attrs[semconv.USAGE_INPUT_TOKENS] == metrics["inputTokenCount"]
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == metrics["outputTokenCount"]
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert "Hi Ann" in message["parts"][0]["content"]


def test_invoke_anthropic_details(client, span_exporter):
    body = {
        **ANTHROPIC_BODY,
        "tools": [
            {
                "name": "get_weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    }
    out = json.loads(
        client.invoke_model(
            modelId=PROVISIONED_ARN, body=json.dumps(body), guardrailIdentifier="gr-9"
        )["body"].read()
    )
    stream = client.invoke_model_with_response_stream(
        modelId="anthropic.claude-3-haiku-20240307-v1:0", body=json.dumps(body)
    )
    list(stream["body"])
    plain, streamed = span_exporter.get_finished_spans()
    for span in (plain, streamed):
        attrs = span.attributes
        assert attrs[semconv.RESPONSE_ID] == out["id"]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)
        assert content(span, semconv.SYSTEM_INSTRUCTIONS) == [
            {"type": "text", "content": "Be terse."}
        ]
        (message,) = content(span, semconv.OUTPUT_MESSAGES)
        assert message["parts"][1]["arguments"] == {"city": "Ann"}
        assert message["finish_reason"] == "tool_call"
    assert plain.attributes[semconv.RESPONSE_MODEL] == out["model"]
    assert streamed.attributes[semconv.RESPONSE_MODEL] == "claude-3-haiku-20240307"
    assert plain.attributes[semconv.REQUEST_MODEL] == PROVISIONED_ARN  # vendor from the body
    assert plain.attributes["aws.bedrock.guardrail.id"] == "gr-9"


def test_embeddings(client, span_exporter):
    client.invoke_model(
        modelId="amazon.titan-embed-text-v2:0",
        body=json.dumps({"inputText": "hello world", "dimensions": 256}),
    )["body"].read()
    client.invoke_model(
        modelId="cohere.embed-english-v3",
        body=json.dumps({"texts": ["a", "b"], "input_type": "search_document"}),
    )["body"].read()
    titan, cohere = span_exporter.get_finished_spans()
    assert titan.name == "embeddings amazon.titan-embed-text-v2:0"
    assert titan.attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] == 256
    assert titan.attributes[semconv.USAGE_INPUT_TOKENS] == 2
    assert cohere.attributes[semconv.OPERATION] == "embeddings"
    assert cohere.attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] == 1024
    assert cohere.attributes[semconv.USAGE_INPUT_TOKENS] == 2


def test_file_like_request_body_not_consumed(client, span_exporter):
    body = io.BytesIO(json.dumps({"prompt": "From a file", "max_gen_len": 50}).encode())
    out = client.invoke_model(modelId="meta.llama3-1-8b-instruct-v1:0", body=body)
    assert b"From a file" in out["body"].read()
    span = only_span(span_exporter)
    assert content(span, semconv.INPUT_MESSAGES)[0]["parts"][0]["content"] == "From a file"


def test_invoke_stream_error(instrumented, make_client, span_exporter):
    body = make_client("stream_error:2").invoke_model_with_response_stream(
        modelId="meta.llama3-1-8b-instruct-v1:0", body=json.dumps({"prompt": "hi"})
    )["body"]
    with pytest.raises(EventStreamError):
        list(body)
    assert only_span(span_exporter).attributes[semconv.ERROR_TYPE] == "ModelStreamErrorException"


# capture modes, metrics, uninstrument ----------------------------------------------------------


def _all_calls(client: Any) -> list[Any]:
    """Every operation; what the app gets back (request ids and dates left out)."""

    def strip(response: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v for k, v in response.items() if k not in ("ResponseMetadata", "body", "stream")
        }

    out = []
    first = client.converse(
        modelId=CLAUDE, messages=_user("Rome?"), toolConfig={"tools": [WEATHER]}
    )
    out.append(strip(first))
    streamed = client.converse_stream(modelId=CLAUDE, messages=_user("Rome?"))
    out += [strip(streamed), list(streamed["stream"])]
    for model, (_, body, _) in VENDOR_CALLS.items():
        response = client.invoke_model(modelId=model, body=json.dumps(body))
        out += [strip(response), response["body"].read(), response["body"].read()]
        chunks = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
        out += [strip(chunks), list(chunks["body"])]
    embed = client.invoke_model(
        modelId="cohere.embed-english-v3", body=json.dumps({"texts": ["a"]})
    )
    out.append(json.loads(embed["body"].read())["embeddings"])
    return out


def test_differential(instrument, make_client, span_exporter):
    plain = _all_calls(make_client())
    instrument(TARGET, capture="span_and_event")
    assert _all_calls(make_client()) == plain
    assert len(genai_spans(span_exporter)) == 3 + 2 * len(VENDOR_CALLS)


def test_capture_no_content(instrument, make_client, span_exporter, log_exporter):
    instrument(TARGET, capture="no_content")
    client = make_client()
    client.converse(
        modelId=CLAUDE,
        messages=_user("hi"),
        system=[{"text": "s"}],
        toolConfig={"tools": [WEATHER]},
    )
    list(
        client.invoke_model_with_response_stream(
            modelId="anthropic.claude-3-haiku-20240307-v1:0", body=json.dumps(ANTHROPIC_BODY)
        )["body"]
    )
    for span in span_exporter.get_finished_spans():
        assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
        for key in (
            semconv.INPUT_MESSAGES,
            semconv.OUTPUT_MESSAGES,
            semconv.SYSTEM_INSTRUCTIONS,
            semconv.TOOL_DEFINITIONS,
        ):
            assert key not in span.attributes
    assert log_exporter.get_finished_logs() == ()


def test_capture_event_only(instrument, make_client, span_exporter, log_exporter):
    instrument(TARGET, capture=CaptureMode.EVENT_ONLY)
    make_client().converse(modelId=CLAUDE, messages=_user("event"))
    span = only_span(span_exporter)
    assert semconv.INPUT_MESSAGES not in span.attributes
    (record,) = log_exporter.get_finished_logs()
    assert record.log_record.event_name == semconv.EVENT_INFERENCE_DETAILS
    messages = json.loads(record.log_record.attributes[semconv.INPUT_MESSAGES])
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "event"}]}]


def test_metrics(client, metric_reader):
    out = client.converse(modelId=CLAUDE, messages=_user("metrics"))
    tokens = metric_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
    by_type = {p.attributes[semconv.TOKEN_TYPE]: p for p in tokens}
    assert by_type["input"].sum == out["usage"]["inputTokens"]
    assert by_type["output"].sum == out["usage"]["outputTokens"]
    assert by_type["input"].attributes[semconv.PROVIDER] == "aws.bedrock"
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 1 and duration.attributes[semconv.REQUEST_MODEL] == CLAUDE
    list(client.converse_stream(modelId=CLAUDE, messages=_user("m"))["stream"])
    (ttfc,) = metric_points(metric_reader, semconv.METRIC_TIME_TO_FIRST_CHUNK)
    assert ttfc.count == 1


def test_other_services_untouched_and_uninstrument(instrument, make_client, span_exporter):
    instrumentor = instrument(TARGET)
    client = make_client()
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    assert "_make_api_call" in type(client).__dict__
    assert "_make_api_call" not in type(s3).__dict__
    instrumentor.uninstrument()
    client.converse(modelId=CLAUDE, messages=_user("hi"))
    assert "_make_api_call" not in type(make_client()).__dict__
    assert span_exporter.get_finished_spans() == ()
    instrumentor.instrument(tracer_provider=None)  # the fixture uninstruments it again


# with OpenTelemetry's botocore instrumentation ---------------------------------------------------


@pytest.fixture
def otel_botocore(tracer_provider: Any, meter_provider: Any, logger_provider: Any) -> Any:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    instrumentor = BotocoreInstrumentor()
    yield lambda: instrumentor.instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    instrumentor.uninstrument()


@pytest.fixture
def bedrock_direct(tracer_provider: Any, meter_provider: Any, logger_provider: Any) -> Any:
    """The instrumentor without the ``instrument`` fixture, which refuses a botocore that
    another instrumentation patched already (OpenTelemetry's, here on purpose)."""
    from llmtap.config import Settings
    from llmtap.instrumentation.bedrock import BedrockInstrumentor

    instrumentor = BedrockInstrumentor()
    settings = Settings()
    settings.capture = CaptureMode.SPAN_ONLY
    yield lambda: instrumentor.instrument(
        settings=settings,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    instrumentor.uninstrument()


@pytest.mark.parametrize("otel_first", [True, False])
def test_one_genai_span_with_otel_botocore(
    bedrock_direct, otel_botocore, make_client, span_exporter, metric_reader, otel_first
):
    first, second = (
        (otel_botocore, bedrock_direct) if otel_first else (bedrock_direct, otel_botocore)
    )
    first()
    second()
    client = make_client()
    client.converse(modelId=CLAUDE, messages=_user("hi"))
    list(client.converse_stream(modelId=CLAUDE, messages=_user("hi"))["stream"])
    client.invoke_model(modelId="meta.llama3-1-8b-instruct-v1:0", body=json.dumps({"prompt": "x"}))
    spans = span_exporter.get_finished_spans()
    ours = [s for s in spans if s.instrumentation_scope.name == SCOPE]
    theirs = [s for s in spans if s.instrumentation_scope.name != SCOPE]
    assert len(ours) == 3 and len(theirs) == 3
    assert genai_spans(span_exporter) == ours
    assert {s.name for s in theirs} == {
            "Bedrock Runtime.Converse",
        "Bedrock Runtime.ConverseStream",
        "Bedrock Runtime.InvokeModel",
    }  # fmt: skip
    by_id = {s.context.span_id: s for s in ours}
    for span in theirs:
        assert span.attributes["rpc.system"] == "aws-api"
        assert not any(key.startswith("gen_ai.") for key in span.attributes)
        assert span.parent.span_id in by_id
    durations = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert sum(p.count for p in durations) == 3  # llmtap's only


def test_otel_botocore_alone_keeps_its_genai_span(otel_botocore, make_client, span_exporter):
    otel_botocore()
    make_client().converse(modelId=CLAUDE, messages=_user("hi"))
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes.get(semconv.OPERATION) == "chat"  # its Bedrock extension is intact


def test_async_client_classes_left_alone():
    """aiobotocore's clients have an async ``_make_api_call``: llmtap does not override it
    (a stand-in class here; aiobotocore is not installed)."""
    from llmtap.instrumentation.bedrock._hook import _install

    class AsyncBase:
        async def _make_api_call(self, operation_name: str, api_params: dict) -> Any:
            return {}

    client_class = type("BedrockRuntime", (AsyncBase,), {})
    _install(client_class, None, {})  # type: ignore[arg-type]
    assert "_make_api_call" not in client_class.__dict__


def test_unreadable_request_body_still_traced(client, span_exporter):
    with pytest.raises(ClientError) as caught:
        client.invoke_model(modelId="meta.llama3-1-8b-instruct-v1:0", body=b"not json")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    span = only_span(span_exporter)
    assert span.attributes[semconv.OPERATION] == "text_completion"  # the vendor, by model id
    assert span.attributes[semconv.ERROR_TYPE] == "ValidationException"
    assert semconv.INPUT_MESSAGES not in span.attributes
