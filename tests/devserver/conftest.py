from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from llmtap.devserver import DevServer
from llmtap.devserver.transport import (
    DevServerTransport,
    anthropic_client,
    async_anthropic_client,
    async_openai_client,
    openai_client,
)


class Backend:
    """Builds real SDK clients against either the socket server or the in-process transport."""

    def __init__(self, kind: str, server: DevServer) -> None:
        self.kind = kind
        self.server = server
        self._opened: list[Any] = []

    def openai(self, **kwargs: Any) -> openai.OpenAI:
        if self.kind == "socket":
            client = openai.OpenAI(base_url=self.server.openai_base_url, api_key="x", **kwargs)
        else:
            client = openai_client(DevServerTransport(), **kwargs)
        self._opened.append(client)
        return client

    def anthropic(self, **kwargs: Any) -> anthropic.Anthropic:
        if self.kind == "socket":
            client = anthropic.Anthropic(
                base_url=self.server.anthropic_base_url, api_key="x", **kwargs
            )
        else:
            client = anthropic_client(DevServerTransport(), **kwargs)
        self._opened.append(client)
        return client

    def async_openai(self, **kwargs: Any) -> openai.AsyncOpenAI:
        if self.kind == "socket":
            return openai.AsyncOpenAI(base_url=self.server.openai_base_url, api_key="x", **kwargs)
        return async_openai_client(DevServerTransport(), **kwargs)

    def async_anthropic(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        if self.kind == "socket":
            return anthropic.AsyncAnthropic(
                base_url=self.server.anthropic_base_url, api_key="x", **kwargs
            )
        return async_anthropic_client(DevServerTransport(), **kwargs)

    def close(self) -> None:
        for client in self._opened:
            client.close()


@pytest.fixture(scope="session")
def devserver() -> Iterator[DevServer]:
    with DevServer() as server:
        yield server


@pytest.fixture(params=["socket", "inprocess"])
def backend(request: pytest.FixtureRequest, devserver: DevServer) -> Iterator[Backend]:
    chosen = Backend(request.param, devserver)
    yield chosen
    chosen.close()
