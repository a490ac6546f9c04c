"""Helpers for the LiteLLM instrumentation tests (no tests in this module).

LiteLLM fetches its model cost map from the internet when imported unless
``LITELLM_LOCAL_MODEL_COST_MAP`` is set: it is set here, before the one import of LiteLLM in
the test session (importing it takes seconds; Python keeps the module for the session).
"""

from __future__ import annotations

import json
import os
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm

from llmtap.instrumentation._invocation import SCOPE

litellm.suppress_debug_info = True  # no "Give Feedback" banners in the test output

TARGET = "llmtap.instrumentation.litellm:LiteLLMInstrumentor"
OPENAI_TARGET = "llmtap.instrumentation.openai:OpenAIInstrumentor"
MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-6"
EMBED_MODEL = "openai/text-embedding-3-small"
KEY = "test-key"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def user(text: str = "Tell me about Paris") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def openai_args(devserver: Any, model: str = MODEL) -> dict[str, Any]:
    return {"model": model, "api_base": devserver.openai_base_url, "api_key": KEY}


def anthropic_args(devserver: Any, model: str = ANTHROPIC_MODEL) -> dict[str, Any]:
    return {"model": model, "api_base": devserver.anthropic_base_url, "api_key": KEY}


def ours(exporter: Any) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == SCOPE]


def only_span(exporter: Any) -> Any:
    """The call's one span: no other span was made (by llmtap or anyone)."""
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [(s.name, s.instrumentation_scope.name) for s in spans]
    assert spans[0].instrumentation_scope.name == SCOPE
    return spans[0]


def content(span: Any, key: str) -> Any:
    return json.loads(span.attributes[key])


def output_text(span: Any) -> str:
    (message,) = content(span, "gen_ai.output.messages")
    return "".join(p["content"] for p in message["parts"] if p["type"] == "text")


def metric_points(reader: Any, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    points: list[Any] = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    points += list(metric.data.data_points)
    return points


# What LiteLLM fills afresh on every call, whatever llmtap does: ``created`` (its clock) and,
# for providers whose responses carry no OpenAI-style id (Anthropic), ``id`` (a new uuid).
FRESH_FIELDS = ("created",)
FRESH_ANTHROPIC_FIELDS = ("created", "id")


def comparable(response: Any, fresh: tuple[str, ...] = FRESH_FIELDS) -> dict[str, Any]:
    data = response.model_dump()
    for key in fresh:
        data.pop(key, None)
    return data


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
