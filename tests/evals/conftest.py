"""Fixtures for the evaluator tests: a scripted loopback judge and clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from llmtap.evals.judge_client import JudgeClient, JudgeSettings
from support.judge_server import JudgeServer

JUDGE_MODEL = "gpt-4o-mini"


@pytest.fixture
def judge() -> Iterator[JudgeServer]:
    """A fresh scripted judge on loopback (see `support.judge_server`)."""
    with JudgeServer() as server:
        yield server


@pytest.fixture
async def make_client(judge: JudgeServer) -> AsyncIterator[Callable[..., JudgeClient]]:
    """``make_client(**JudgeSettings fields, client_kw={...})``: a client of `judge` with
    fast backoff (closed at teardown)."""
    clients: list[JudgeClient] = []

    def make(*, client_kw: dict[str, Any] | None = None, **fields: Any) -> JudgeClient:
        api = fields.get("api", "openai")
        base = judge.anthropic_base_url if api == "anthropic" else judge.openai_base_url
        settings: dict[str, Any] = {
            "name": JUDGE_MODEL,
            "base_url": base,
            "api_key": "test-key",
            "timeout_s": 3.0,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
        }
        settings.update(fields)
        client = JudgeClient(JudgeSettings(**settings), **(client_kw or {}))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
