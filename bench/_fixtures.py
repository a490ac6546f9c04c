"""Shared fixtures for the benchmarks: a fixed request, pre-rendered replies, in-process clients.

The reply bytes are produced ONCE by llmtap's own devserver (so they have the exact shape the
OpenAI API sends) and then served from a minimal ``httpx2.MockTransport`` handler that only
hands back those bytes. Every row of a benchmark therefore pays the very same transport cost,
and that cost is small next to the SDK's own work (see ``transport_costs`` in the results).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2

from llmtap.devserver import handle

BASE_URL = "http://bench.invalid/v1"
MODEL = "gpt-4o-mini"

# A typical chat request: system + user message and the usual sampling knobs.
REQUEST: dict[str, Any] = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Explain OpenTelemetry spans in one paragraph."},
    ],
    "temperature": 0.2,
    "top_p": 0.9,
    "max_tokens": 256,
    "seed": 7,
    "frequency_penalty": 0.0,
    "presence_penalty": 0.0,
    "stop": ["\n\n"],
}
STREAM_OPTIONS = {"include_usage": True}


def _devserver_reply(stream: bool, include_usage: bool = True) -> Any:
    body = {k: v for k, v in REQUEST.items() if k != "stop"}
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = STREAM_OPTIONS
    return handle("POST", "/v1/chat/completions", {}, json.dumps(body).encode())


class Rendered:
    """The bytes of one non-streaming reply and one streamed reply of ``chunks`` chunks."""

    def __init__(self, chunks: int = 50, include_usage: bool = True) -> None:
        reply = _devserver_reply(False)
        self.json_headers = dict(reply.headers)
        self.json_body = reply.body_bytes()

        sreply = _devserver_reply(True, include_usage)
        self.sse_headers = dict(sreply.headers)
        events = [e for e in sreply.events if e.data != "[DONE]"]
        # devserver order: role chunk, content chunks..., finish chunk, [usage chunk]
        tail = 2 if include_usage else 1
        role, content, closing = events[0], events[1:-tail], events[-tail:]
        n_content = chunks - 1 - tail
        if n_content < 1:
            raise ValueError(f"a stream needs more than {1 + tail} chunks")
        picked = [content[i % len(content)] for i in range(n_content)]
        self.sse_chunks = [e.encode() for e in (role, *picked, *closing)]
        self.sse_chunks.append(b"data: [DONE]\n\n")
        self.chunks = chunks  # what the application receives (the [DONE] sentinel is not yielded)


class _Chunks(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """The pre-rendered SSE events, one network read per event."""

    __slots__ = ("_chunks",)

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


def mock_transport(rendered: Rendered, stream: bool) -> httpx2.MockTransport:
    """A transport that answers every request with the same pre-rendered reply."""
    if stream:
        headers, chunks = rendered.sse_headers, rendered.sse_chunks

        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(200, headers=headers, stream=_Chunks(chunks))

    else:
        headers, body = rendered.json_headers, rendered.json_body

        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(200, headers=headers, content=body)

    return httpx2.MockTransport(handler)


def sync_client(transport: httpx2.BaseTransport) -> Any:
    import openai

    return openai.OpenAI(
        api_key="bench",
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def async_client(transport: httpx2.AsyncBaseTransport) -> Any:
    import openai

    return openai.AsyncOpenAI(
        api_key="bench",
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport),
    )
