"""Local model server speaking the OpenAI and Anthropic HTTP/SSE APIs, for demos, tests and benchmarks.

- `DevServer`: socket server on 127.0.0.1 (``with DevServer() as srv: srv.openai_base_url``).
- `DevServerTransport`: the same replies in-process for ``httpx2.Client(transport=...)``;
  `openai_client()` / `anthropic_client()` (and async variants) build SDK clients on it.
- `handle()`: the pure request -> `Reply` function both use.
- Scenarios (errors, broken streams, delays): see `llmtap.devserver.scenarios`.
"""

from .content import REFUSAL_TRIGGER
from .reply import Reply, SSEEvent
from .router import handle
from .scenarios import MODEL_PREFIX, SCENARIO_HEADER, SCENARIOS
from .server import DevServer, ReceivedRequest

__all__ = [
    "MODEL_PREFIX",
    "REFUSAL_TRIGGER",
    "SCENARIOS",
    "SCENARIO_HEADER",
    "DevServer",
    "DevServerTransport",
    "ReceivedRequest",
    "Reply",
    "SSEEvent",
    "anthropic_client",
    "async_anthropic_client",
    "async_openai_client",
    "handle",
    "openai_client",
]


def __getattr__(name: str) -> object:
    if name in {"DevServerTransport", "openai_client", "async_openai_client", "anthropic_client", "async_anthropic_client"}:
        from . import transport

        return getattr(transport, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
