"""google-genai clients on the dev server, and span helpers, for the google-genai tests."""

# no ``from __future__ import annotations``: older SDKs read the tool functions' annotations
# as they are

import json
from pathlib import Path
from typing import Any

from google import genai
from google.genai import types

from llmtap.instrumentation._invocation import SCOPE

TARGET = "llmtap.instrumentation.google_genai:GoogleGenAIInstrumentor"
MODEL = "gemini-2.5-flash"
EMBED_MODEL = "gemini-embedding-001"
SCHEMAS = Path("/work/shared/semconv-genai-v1.41/docs")


def raises_stream_errors() -> bool:
    """Whether this SDK raises an ``{"error": ...}`` event of a stream (older ones parse it as
    an empty chunk)."""
    import inspect

    from google.genai import _api_client

    return '{"error":' in inspect.getsource(_api_client.BaseApiClient.request_streamed)


# Functions for automatic function calling, in a module without ``from __future__ import
# annotations``: older SDKs read the parameter annotations as they are.
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


async def get_weather_async(city: str) -> str:
    """Weather for a city, asynchronously."""
    return f"rainy in {city}"


def broken_tool(city: str) -> str:
    """Always fails."""
    raise RuntimeError("no weather today")


def gemini_client(devserver: Any, **options: Any) -> genai.Client:
    """The Gemini Developer API client (``api_key``), on the dev server."""
    http = types.HttpOptions(base_url=devserver.base_url, **options)
    return genai.Client(api_key="test", http_options=http)


def vertex_client(devserver: Any, *, express: bool = True) -> genai.Client:
    """A Vertex AI client on the dev server: express mode (API key), or a project with a
    static OAuth token (``google.oauth2.credentials.Credentials``: no refresh, no metadata
    server, no ADC lookup)."""
    http = types.HttpOptions(base_url=devserver.base_url)
    if express:
        return genai.Client(vertexai=True, api_key="test", http_options=http)
    from google.oauth2.credentials import Credentials

    return genai.Client(
        vertexai=True,
        project="llmtap-dev",
        location="us-central1",
        credentials=Credentials(token="test"),
        http_options=http,
    )


def spans(exporter: Any) -> list[Any]:
    found = list(exporter.get_finished_spans())
    assert all(s.instrumentation_scope.name == SCOPE for s in found), [s.name for s in found]
    return found


def only_span(exporter: Any) -> Any:
    found = spans(exporter)
    assert len(found) == 1, [s.name for s in found]
    return found[0]


def content(span: Any, key: str) -> Any:
    return json.loads(span.attributes[key])


def validate(span: Any, key: str, schema_file: str) -> Any:
    import jsonschema

    value = content(span, key)
    jsonschema.validate(value, json.loads((SCHEMAS / schema_file).read_text()))
    return value


def metric_points(reader: Any, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    points: list[Any] = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    points += list(metric.data.data_points)
    return points
