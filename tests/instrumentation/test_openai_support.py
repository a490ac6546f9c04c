"""Helpers shared by the OpenAI instrumentation tests (no tests in this module).

The fixtures come from ``tests/conftest.py``: ``instrument_openai``, ``span_exporter``,
``metric_reader``, ``devserver`` (session-scoped loopback server) and ``openai_client``.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx2
import openai
from opentelemetry.sdk.trace import ReadableSpan

from llmtap.devserver.transport import DevServerTransport
from llmtap.pipeline import tokens

MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"
SCENARIO = "x-devserver-scenario"

CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
)

WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": WEATHER_PARAMS,
    },
}
RESPONSES_WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": WEATHER_PARAMS,
}


def user(text: str = "Tell me about Paris") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def sync_client(devserver: Any, **kwargs: Any) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=devserver.openai_base_url, api_key="test-key", **kwargs)


def async_client(devserver: Any, **kwargs: Any) -> openai.AsyncOpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(base_url=devserver.openai_base_url, api_key="test-key", **kwargs)


def finished(exporter: Any) -> tuple[ReadableSpan, ...]:
    """The finished spans, once the token estimates still running have ended theirs (a stream
    without usage ends its span on llmtap's worker)."""
    tokens.flush()
    return exporter.get_finished_spans()


def only_span(exporter: Any) -> ReadableSpan:
    spans = finished(exporter)
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def content(span: ReadableSpan, key: str) -> Any:
    raw = (span.attributes or {})[key]
    assert isinstance(raw, str)
    return json.loads(raw)


def data_points(reader: Any, name: str) -> list[Any]:
    tokens.flush()  # metrics of a span ended by the token worker are recorded there
    found: list[Any] = []
    data = reader.get_metrics_data()
    if data is None:
        return found
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


_CLOCK_FIELDS = ("created", "created_at", "completed_at")


def dump(model: Any, *drop: str) -> Any:
    """``model_dump()`` without the fields that differ between two identical calls (the
    server's clock, at any depth; and top-level ``drop``)."""
    data = _without(model.model_dump(warnings=False), _CLOCK_FIELDS)
    for key in drop:
        data.pop(key, None)
    return data


def _without(value: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RoutingTransport(DevServerTransport):
    """The in-process dev server behind any base URL: ``https://api.groq.com/openai/v1/...``,
    Azure's ``/openai/deployments/<model>/chat/completions?api-version=...``."""

    ENDPOINTS = ("/chat/completions", "/responses", "/embeddings")

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        for endpoint in self.ENDPOINTS:
            at = path.find(endpoint)
            if at >= 0:
                request.url = request.url.copy_with(path="/v1" + path[at:], query=None)
                break
        return super().handle_request(request)


def routed_client(cls: type = openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("api_key", "test-key")
    kwargs.setdefault("max_retries", 0)
    return cls(http_client=httpx2.Client(transport=RoutingTransport()), **kwargs)
