"""In-process httpx2 transport serving the dev server replies without sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx2

from .reply import Reply
from .router import handle
from .server import ReceivedRequest, RequestLog

if TYPE_CHECKING:
    import anthropic
    import openai

IN_PROCESS_BASE_URL = "http://llmtap-devserver.local"


class DevServerTransport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Usable by both ``httpx2.Client(transport=...)`` and ``httpx2.AsyncClient(transport=...)``."""

    def __init__(self, *, latency_ms: float = 0.0, chunk_latency_ms: float | None = None) -> None:
        self.latency_ms = latency_ms
        self.chunk_latency_ms = chunk_latency_ms
        self.requests = RequestLog()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        reply = self._reply(request, request.read())
        _sleep_ms(reply.delay_ms)
        return self._response(reply, request)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        reply = self._reply(request, await request.aread())
        await _asleep_ms(reply.delay_ms)
        return self._response(reply, request)

    def _reply(self, request: httpx2.Request, body: bytes) -> Reply:
        headers = {key.lower(): value for key, value in request.headers.items()}
        path = request.url.raw_path.decode("ascii")
        self.requests.add(ReceivedRequest(request.method, path, headers, body))
        return handle(
            request.method,
            path,
            headers,
            body,
            latency_ms=self.latency_ms,
            chunk_latency_ms=self.chunk_latency_ms,
        )

    def _response(self, reply: Reply, request: httpx2.Request) -> httpx2.Response:
        if reply.drops_connection:
            raise httpx2.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        extensions = {"http_version": b"HTTP/1.1"}
        if reply.is_stream:
            stream = _EventStream(reply, request)
            return httpx2.Response(
                reply.status, headers=reply.headers, stream=stream, extensions=extensions
            )
        return httpx2.Response(
            reply.status, headers=reply.headers, content=reply.body_bytes(), extensions=extensions
        )


class _EventStream(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    def __init__(self, reply: Reply, request: httpx2.Request) -> None:
        self._reply = reply
        self._request = request

    def _delay(self, index: int) -> float:
        return self._reply.first_event_delay_ms if index == 0 else self._reply.chunk_delay_ms

    def _broken(self) -> httpx2.ReadError:
        return httpx2.ReadError(
            "devserver cut the connection mid-stream (broken_stream)", request=self._request
        )

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self._reply.event_chunks()):
            _sleep_ms(self._delay(index))
            yield chunk
        if self._reply.cut_after is not None:
            raise self._broken()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(self._reply.event_chunks()):
            await _asleep_ms(self._delay(index))
            yield chunk
        if self._reply.cut_after is not None:
            raise self._broken()


def _sleep_ms(ms: float) -> None:
    if ms > 0:
        time.sleep(ms / 1000)


async def _asleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


def openai_client(transport: DevServerTransport | None = None, **kwargs: Any) -> openai.OpenAI:
    import openai

    kwargs.setdefault("api_key", "devserver")
    kwargs.setdefault("base_url", f"{IN_PROCESS_BASE_URL}/v1")
    return openai.OpenAI(
        http_client=httpx2.Client(transport=transport or DevServerTransport()), **kwargs
    )


def async_openai_client(
    transport: DevServerTransport | None = None, **kwargs: Any
) -> openai.AsyncOpenAI:
    import openai

    kwargs.setdefault("api_key", "devserver")
    kwargs.setdefault("base_url", f"{IN_PROCESS_BASE_URL}/v1")
    return openai.AsyncOpenAI(
        http_client=httpx2.AsyncClient(transport=transport or DevServerTransport()), **kwargs
    )


def anthropic_client(
    transport: DevServerTransport | None = None, **kwargs: Any
) -> anthropic.Anthropic:
    import anthropic

    kwargs.setdefault("api_key", "devserver")
    kwargs.setdefault("base_url", IN_PROCESS_BASE_URL)
    return anthropic.Anthropic(
        http_client=httpx2.Client(transport=transport or DevServerTransport()), **kwargs
    )


def async_anthropic_client(
    transport: DevServerTransport | None = None, **kwargs: Any
) -> anthropic.AsyncAnthropic:
    import anthropic

    kwargs.setdefault("api_key", "devserver")
    kwargs.setdefault("base_url", IN_PROCESS_BASE_URL)
    client = httpx2.AsyncClient(transport=transport or DevServerTransport())
    return anthropic.AsyncAnthropic(http_client=client, **kwargs)
