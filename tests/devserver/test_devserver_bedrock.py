"""The Bedrock runtime emulation against the real boto3 client (botocore parses every reply:
JSON bodies, AWS event-stream frames with their CRCs, AWS error shapes)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from llmtap.devserver import DevServer
from llmtap.devserver.bedrock_api import Frame, decode_frames
from llmtap.devserver.router import handle

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PROFILE_ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
    "us.anthropic.claude-3-haiku-20240307-v1:0"
)
PROVISIONED_ARN = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123xyz"
WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Weather for a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


@pytest.fixture(scope="module")
def server() -> Any:
    with DevServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: DevServer) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.base_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )


def _scenario(client: Any, scenario: str) -> Any:
    """The same client class, sending ``x-devserver-scenario`` on every request."""
    made = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=client.meta.endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def add(request: Any, **_: Any) -> None:
        request.headers["x-devserver-scenario"] = scenario

    made.meta.events.register("before-sign.bedrock-runtime.*", add)
    return made


# Converse --------------------------------------------------------------------------------


def test_converse(client):
    out = client.converse(
        modelId=CLAUDE,
        messages=_user("Hello there Ada"),
        system=[{"text": "Be terse."}],
        inferenceConfig={"maxTokens": 200},
    )
    assert out["stopReason"] == "end_turn"
    assert "Hello there Ada" in out["output"]["message"]["content"][0]["text"]
    usage = out["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert out["metrics"]["latencyMs"] == 42
    assert out["ResponseMetadata"]["RequestId"].startswith("req_")


def test_converse_max_tokens_and_tools(client):
    cut = client.converse(modelId=CLAUDE, messages=_user("x"), inferenceConfig={"maxTokens": 2})
    assert cut["stopReason"] == "max_tokens" and cut["usage"]["outputTokens"] == 2
    out = client.converse(
        modelId=CLAUDE, messages=_user("Weather in Paris?"), toolConfig={"tools": [WEATHER]}
    )
    assert out["stopReason"] == "tool_use"
    use = out["output"]["message"]["content"][1]["toolUse"]
    assert use["name"] == "get_weather" and use["input"] == {"city": "Paris"}
    answer = client.converse(
        modelId=CLAUDE,
        messages=[
            *_user("Weather in Paris?"),
            out["output"]["message"],
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": "Sunny"}]}}
                ],
            },
        ],
        toolConfig={"tools": [WEATHER]},
    )
    assert answer["stopReason"] == "end_turn"
    assert "Sunny" in answer["output"]["message"]["content"][0]["text"]


def _needs_cache_points(client: Any) -> None:
    members = client.meta.service_model.shape_for("SystemContentBlock").members
    if "cachePoint" not in members:
        pytest.skip("this botocore's Bedrock model has no cachePoint blocks (added after 1.35)")


def test_converse_cache_points(client):
    _needs_cache_points(client)
    system = [{"text": "You are helpful. " * 30}, {"cachePoint": {"type": "default"}}]
    out = client.converse(modelId=CLAUDE, messages=_user("hi"), system=system)
    usage = out["usage"]
    assert usage["cacheReadInputTokens"] > 0 and usage["cacheWriteInputTokens"] == 0
    assert usage["totalTokens"] == (
        usage["inputTokens"] + usage["outputTokens"] + usage["cacheReadInputTokens"]
    )
    written = _scenario(client, "cache_write").converse(
        modelId=CLAUDE, messages=_user("hi"), system=system
    )["usage"]
    assert written["cacheWriteInputTokens"] == usage["cacheReadInputTokens"]
    assert written["cacheReadInputTokens"] == 0


def test_converse_stream(client, server):
    out = client.converse_stream(
        modelId=PROFILE_ARN, messages=_user("Weather in Rome?"), toolConfig={"tools": [WEATHER]}
    )
    events = list(out["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    assert "contentBlockStart" in kinds
    pieces = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    ]
    assert json.loads("".join(pieces)) == {"city": "Rome"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"
    assert events[-1]["metadata"]["usage"]["outputTokens"] > 0
    # the model id travelled URL-encoded in one path segment
    path = server.requests.all()[-1].path
    assert path.startswith("/model/arn%3Aaws%3Abedrock") and "%2Fus.anthropic" in path


def test_event_stream_framing():
    reply = handle(
        "POST",
        "/model/amazon.nova-lite-v1%3A0/converse-stream",
        {},
        json.dumps({"messages": _user("hi")}).encode(),
    )
    assert reply.headers["content-type"] == "application/vnd.amazon.eventstream"
    frames = decode_frames(b"".join(reply.event_chunks()))
    headers, payload = frames[0]
    assert headers == {
        ":event-type": "messageStart",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(payload) == {"role": "assistant"}
    broken = bytearray(Frame.event("x", {}).encode())
    broken[-1] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        decode_frames(bytes(broken))


# InvokeModel per vendor -------------------------------------------------------------------

VENDORS = {
    "anthropic.claude-3-haiku-20240307-v1:0": (
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Hi Ann"}],
        },
        lambda b: b["content"][0]["text"],
    ),
    "amazon.nova-lite-v1:0": (
        {
            "schemaVersion": "messages-v1",
            "messages": _user("Hi Ann"),
            "inferenceConfig": {"max_new_tokens": 100},
        },
        lambda b: b["output"]["message"]["content"][0]["text"],
    ),
    "amazon.titan-text-express-v1": (
        {"inputText": "Hi Ann", "textGenerationConfig": {"maxTokenCount": 100}},
        lambda b: b["results"][0]["outputText"],
    ),
    "meta.llama3-1-8b-instruct-v1:0": (
        {"prompt": "Hi Ann", "max_gen_len": 100},
        lambda b: b["generation"],
    ),
    "mistral.mistral-7b-instruct-v0:2": (
        {"prompt": "<s>[INST] Hi Ann [/INST]", "max_tokens": 100},
        lambda b: b["outputs"][0]["text"],
    ),
    "mistral.mistral-large-2407-v1:0": (
        {"messages": [{"role": "user", "content": "Hi Ann"}], "max_tokens": 100},
        lambda b: b["choices"][0]["message"]["content"],
    ),
    "cohere.command-text-v14": (
        {"prompt": "Hi Ann", "max_tokens": 100},
        lambda b: b["generations"][0]["text"],
    ),
    "cohere.command-r-v1:0": ({"message": "Hi Ann", "max_tokens": 100}, lambda b: b["text"]),
}


@pytest.mark.parametrize("model", list(VENDORS))
def test_invoke_each_vendor(client, model):
    request, text_of = VENDORS[model]
    out = client.invoke_model(modelId=model, body=json.dumps(request))
    body = json.loads(out["body"].read())
    assert "Hi Ann" in text_of(body)
    headers = out["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-input-token-count"]) > 0
    assert int(headers["x-amzn-bedrock-output-token-count"]) > 0
    chunks = [
        json.loads(e["chunk"]["bytes"])
        for e in client.invoke_model_with_response_stream(modelId=model, body=json.dumps(request))[
            "body"
        ]
    ]
    assert len(chunks) > 2
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["outputTokenCount"] > 0 and metrics["inputTokenCount"] > 0


def test_embeddings(client):
    titan = client.invoke_model(
        modelId="amazon.titan-embed-text-v2:0",
        body=json.dumps({"inputText": "hello", "dimensions": 256}),
    )
    body = json.loads(titan["body"].read())
    assert len(body["embedding"]) == 256 and body["inputTextTokenCount"] == 1
    cohere = client.invoke_model(
        modelId="cohere.embed-english-v3",
        body=json.dumps({"texts": ["a", "b"], "input_type": "search_document"}),
    )
    body = json.loads(cohere["body"].read())
    assert len(body["embeddings"]) == 2 and body["response_type"] == "embeddings_floats"


def test_provisioned_arn_by_body_shape(client):
    request = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    body = json.loads(
        client.invoke_model(modelId=PROVISIONED_ARN, body=json.dumps(request))["body"].read()
    )
    assert body["type"] == "message" and body["stop_reason"] == "end_turn"


# errors and scenarios ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [
        ("rate_limit", 429, "ThrottlingException"),
        ("bad_request", 400, "ValidationException"),
        ("server_error", 500, "InternalServerException"),
        ("not_found", 404, "ResourceNotFoundException"),
    ],
)
def test_errors(client, scenario, status, code):
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=f"devserver-{scenario}", messages=_user("hi"))
    error = caught.value
    assert type(error).__name__ == code
    assert error.response["Error"]["Code"] == code
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_validation_of_bodies(client):
    with pytest.raises(ClientError) as caught:
        client.invoke_model(modelId="meta.llama3-1-8b-instruct-v1:0", body=json.dumps({"x": 1}))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "prompt" in caught.value.response["Error"]["Message"]


def test_stream_error_mid_stream(client):
    seen = []
    with pytest.raises(EventStreamError) as caught:
        for event in client.converse_stream(
            modelId="devserver-stream_error:2", messages=_user("hi")
        )["stream"]:
            seen.append(event)
    assert len(seen) == 2
    assert caught.value.response["Error"]["Code"] == "modelStreamErrorException"
    scenario = _scenario(client, "stream_error:1")
    body = scenario.invoke_model_with_response_stream(
        modelId="meta.llama3-1-8b-instruct-v1:0", body=json.dumps({"prompt": "hi"})
    )["body"]
    with pytest.raises(EventStreamError):
        list(body)


def test_broken_stream(client):
    seen = []
    with pytest.raises(Exception, match=r"ended prematurely|Connection"):
        for event in client.converse_stream(
            modelId="devserver-broken_stream:2", messages=_user("hi")
        )["stream"]:
            seen.append(event)
    assert len(seen) == 2


def test_slow_first_chunk(client):
    started = time.perf_counter()
    stream = client.converse_stream(modelId="devserver-slow_first_chunk:200", messages=_user("hi"))
    events = iter(stream["stream"])
    next(events)
    assert time.perf_counter() - started >= 0.2
    assert list(events)[-1]["metadata"]["usage"]["outputTokens"] > 0


def test_other_protocols_unaffected(server):
    with urllib.request.urlopen(f"{server.base_url}/v1/models") as response:
        names = {m["id"] for m in json.loads(response.read())["data"]}
    assert "amazon.nova-lite-v1:0" in names and "claude-sonnet-4-6" in names
    reply = handle("POST", "/model/x/unknown-op", {}, b"{}")
    assert reply.status == 404 and "x-amzn-errortype" not in reply.headers
