"""OpenAI clients on the dev server, for the OpenAI instrumentation tests (a test module may
define its own ``client``, as the Anthropic tests do)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from .test_openai_support import async_client, sync_client


@pytest.fixture
def client(devserver: Any) -> Iterator[Any]:
    made = sync_client(devserver)
    yield made
    made.close()


@pytest.fixture
async def aclient(devserver: Any) -> AsyncIterator[Any]:
    made = async_client(devserver)
    yield made
    await made.close()
