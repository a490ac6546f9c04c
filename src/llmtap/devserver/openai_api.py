"""The OpenAI HTTP API as the devserver speaks it: chat, completions, responses, embeddings."""

from __future__ import annotations

from typing import Any

from .openai_chat import chat_completions
from .openai_completions import completions
from .openai_embeddings import embeddings
from .openai_responses import responses, retrieve
from .protocol import WireProtocol
from .reply import Reply, json_reply
from .scenarios import Context, openai_error, openai_error_body


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    return openai_error(kind, model, ctx.scenario)


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    return json_reply(openai_error_body(message, "invalid_request_error"), status)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "openai-processing-ms": str(int(delay_ms) + 1),
        "openai-version": "2020-10-01",
        "openai-organization": "llmtap-devserver",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-limit-tokens": "10000000",
        "x-ratelimit-remaining-tokens": "9999000",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-reset-tokens": "0s",
    }


PROTOCOL = WireProtocol(
    name="openai",
    routes={
        "/chat/completions": chat_completions,
        "/completions": completions,
        "/responses": responses,
        "/embeddings": embeddings,
    },
    get_routes={"/responses": ("response_id", retrieve)},
    models=("gpt-4o-mini", "gpt-4o", "gpt-5", "gpt-3.5-turbo-instruct", "text-embedding-3-small"),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
    fallback=True,
)
