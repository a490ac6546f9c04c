"""Helpers shared by the vector-store instrumentation tests (Chroma, Qdrant, Pinecone)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from llmtap import runtime
from llmtap.config import CaptureMode, Settings
from llmtap.instrumentation._invocation import Telemetry


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def documents(span: Any) -> list[dict[str, Any]]:
    return json.loads(span.attributes["gen_ai.retrieval.documents"])


def retrieval_spans(exporter: Any) -> list[Any]:
    return [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get("gen_ai.operation.name") == "retrieval"
        and "db.system.name" in (s.attributes or {})
    ]


def only_retrieval(exporter: Any) -> Any:
    spans = retrieval_spans(exporter)
    assert len(spans) == 1, [s.name for s in exporter.get_finished_spans()]
    return spans[0]


@pytest.fixture
def step_telemetry(tracer_provider: TracerProvider) -> Iterator[Telemetry]:
    """llmtap's steps (``llmtap.retrieval``, ``llmtap.workflow``) on the test tracer provider."""
    telemetry = Telemetry(Settings(capture=CaptureMode.SPAN_ONLY), tracer_provider)
    runtime.use_telemetry(telemetry)
    yield telemetry
    runtime.use_telemetry(None)
