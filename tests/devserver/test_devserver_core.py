from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import openai
import pytest

from llmtap.devserver import DevServer, DevServerTransport, Reply, SSEEvent, handle
from llmtap.devserver.content import fill_schema, split_fragments, topic_word

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
SRC = Path(__file__).resolve().parents[2] / "src"


def test_handle_is_deterministic_and_pure() -> None:
    first = handle("POST", "/v1/chat/completions", {}, json.dumps(CHAT).encode(), created=1)
    second = handle(
        "POST", "/v1/chat/completions", {"Content-Type": "application/json"}, CHAT, created=1
    )
    assert first.status == 200 and not first.is_stream
    assert first.body == second.body
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.headers["content-type"] == "application/json"


def test_handle_paths_methods_and_bad_json() -> None:
    assert handle("GET", "/health", {}).body == {"status": "ok"}
    assert handle("GET", "/v1/models", {}).body["data"][0]["object"] == "model"
    assert handle("POST", "/chat/completions", {}, CHAT).status == 200
    missing = handle("POST", "/v1/nope", {}, b"{}")
    assert missing.status == 404
    assert missing.body["error"]["message"] == "Invalid URL (POST /nope)"
    assert handle("GET", "/v1/chat/completions", {}).status == 405
    bad = handle("POST", "/v1/messages", {}, b"{not json")
    assert bad.status == 400 and bad.body["error"]["type"] == "invalid_request_error"
    invalid = handle("POST", "/v1/messages", {}, {"model": "claude-haiku-4-5", "messages": []})
    assert invalid.status == 400 and invalid.body["type"] == "error"
    no_messages = handle("POST", "/v1/chat/completions", {}, {"model": "gpt-4o"})
    assert no_messages.status == 400 and no_messages.body["error"]["param"] == "messages"


def test_stream_reply_encoding_and_scenarios() -> None:
    reply = handle(
        "POST",
        "/v1/chat/completions",
        {"X-Devserver-Scenario": "broken_stream:2"},
        {**CHAT, "stream": True},
    )
    assert reply.is_stream and reply.cut_after == 2 and len(reply.event_chunks()) == 2
    assert reply.event_chunks()[0].startswith(b"data: {")
    done = handle("POST", "/v1/chat/completions", {}, {**CHAT, "stream": True})
    assert done.event_chunks()[-1] == b"data: [DONE]\n\n"
    assert SSEEvent('{"a":1}', "ping").encode() == b'event: ping\ndata: {"a":1}\n\n'
    assert Reply(body={"x": 1}).body_bytes() == b'{"x":1}'
    slow = handle(
        "POST",
        "/v1/messages",
        {},
        {
            "model": "devserver-slow:250",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
        },
        latency_ms=10,
    )
    assert slow.delay_ms == 260 and slow.headers["request-id"].startswith("req_")


def test_fill_schema_handles_refs_unions_and_formats() -> None:
    schema = {
        "type": "object",
        "properties": {
            "who": {"$ref": "#/$defs/Person"},
            "when": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 10}]},
            "kind": {"const": "k"},
        },
        "$defs": {
            "Person": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "ok": {"type": "boolean"}},
            }
        },
    }
    assert fill_schema(schema, "Ada") == {
        "who": {"name": "Ada", "ok": True},
        "when": "2025-01-01T12:00:00Z",
        "tags": ["Ada", "Ada"],
        "maybe": 10,
        "kind": "k",
    }
    assert topic_word("what about Paris?") == "Paris" and topic_word("hello there") == "hello"
    assert "".join(split_fragments('{"city": "Paris"}')) == '{"city": "Paris"}'


def test_keep_alive_and_chunked_sse_over_raw_http(devserver: DevServer) -> None:
    conn = http.client.HTTPConnection(devserver.host, devserver.port, timeout=5)
    for stream in (False, True, False):
        conn.request("POST", "/v1/chat/completions", body=json.dumps({**CHAT, "stream": stream}))
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200
        if stream:
            assert response.getheader("transfer-encoding") == "chunked"
            assert response.getheader("content-type").startswith("text/event-stream")
            assert body.endswith(b"data: [DONE]\n\n")
        else:
            assert json.loads(body)["object"] == "chat.completion"
    conn.close()


def test_concurrent_requests_with_latency() -> None:
    with DevServer(latency_ms=150, chunk_latency_ms=0) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0)

        def call(i: int) -> str:
            messages = [{"role": "user", "content": f"request {i}"}]
            return (
                client.chat.completions.create(model="gpt-4o", messages=messages)
                .choices[0]
                .message.content
                or ""
            )

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(call, range(16)))
        elapsed = time.perf_counter() - started
        client.close()
        assert elapsed < 2.0  # sequential would take 16 x 150 ms = 2.4 s
        assert all(f'"request {i}"' in text for i, text in enumerate(results))
        assert len(server.requests.all()) == 16
        assert server.requests.all()[0].headers["authorization"] == "Bearer x"


def test_transport_chunk_latency_and_request_log() -> None:
    transport = DevServerTransport(latency_ms=0, chunk_latency_ms=20)
    with httpx2.Client(transport=transport, base_url="http://dev") as client:
        started = time.perf_counter()
        with client.stream(
            "POST", "/v1/chat/completions", json={**CHAT, "stream": True}
        ) as response:
            chunks = list(response.iter_bytes())
        elapsed = time.perf_counter() - started
    assert response.headers["content-type"].startswith("text/event-stream")
    assert elapsed >= 0.02 * 15
    assert b"[DONE]" in b"".join(chunks)
    assert transport.requests.all()[0].path == "/v1/chat/completions"


def test_module_main_prints_address() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmtap.devserver", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx2.get(f"{url}/health").json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode == 0


def test_server_requires_start() -> None:
    with pytest.raises(RuntimeError):
        _ = DevServer().base_url
