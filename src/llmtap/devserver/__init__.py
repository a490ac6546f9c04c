"""Local model server speaking the model providers' HTTP APIs (demos, tests, benchmarks).

One ``<provider>_api`` module per wire protocol: OpenAI (``/v1/...``), Anthropic, Gemini and
Vertex AI (``/v1beta/models/{model}:generateContent`` ...), Bedrock runtime (``/model/{id}/
converse`` ..., AWS event-stream framing), Mistral (``/mistral/v1/...``), Cohere v2
(``/v2/...``), Ollama (``/api/...``, NDJSON streams), Groq (``/openai/v1/...``), Together
(``/together/v1/...``) and Pinecone's data plane (``/query`` ...).

- `DevServer`: socket server on 127.0.0.1 (``with DevServer() as srv: srv.openai_base_url``).
- `DevServerTransport`: the same replies in-process for ``httpx2.Client(transport=...)``;
  `openai_client()` / `anthropic_client()` (and async variants) build SDK clients on it.
- `offline_unless_keyed()`: point this process's SDKs at a loopback server unless a key is set.
- `handle()`: the pure request -> `Reply` function both use.
- Scenarios (errors, broken streams, delays): see `llmtap.devserver.scenarios`.

Replies are deterministic (same request, same body; only ``created`` and request ids vary):
the text echoes the first words of the last user message; with tools and a user message last,
the first tool (or the one named by ``tool_choice``) is called, its arguments filled from its
JSON schema (strings = last capitalized word of the user message, integers 42, enums first);
after a tool result the reply quotes it. JSON response formats are filled the same way.
``max_tokens``-style limits below the reply length truncate it (``length`` / ``max_tokens`` /
``incomplete``). A user message containing "please refuse" gets a refusal. Usage: OpenAI
``cached_tokens`` is half the prompt when ``prompt_cache_key`` is sent; reasoning tokens follow
``reasoning_effort`` / ``reasoning.effort`` (low 8, medium 16, high 32; o-series/gpt-5 default
16); Anthropic reports the prompt up to the last ``cache_control`` block as
``cache_read_input_tokens`` (``cache_creation_input_tokens`` with the ``cache_write`` scenario).
"""

from .content import REFUSAL_TRIGGER
from .offline import offline_unless_keyed
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
    "offline_unless_keyed",
    "openai_client",
]


def __getattr__(name: str) -> object:
    if name in {
        "DevServerTransport",
        "openai_client",
        "async_openai_client",
        "anthropic_client",
        "async_anthropic_client",
    }:
        from . import transport

        return getattr(transport, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
