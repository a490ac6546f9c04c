"""OpenAI Embeddings: span, request attributes, input-only usage and metrics."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv

from .test_openai_support import (
    CONTENT_KEYS,
    EMBED_MODEL,
    SCENARIO,
    async_client,
    attrs,
    data_points,
    dump,
    only_span,
    sync_client,
)


def test_float_embeddings(instrument_openai, span_exporter, metric_reader, client, devserver):
    instrument_openai()
    result = client.embeddings.create(model=EMBED_MODEL, input=["first text", "second one here"])
    vector = result.data[0].embedding
    assert isinstance(vector, list) and len(vector) == 1536
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"embeddings {EMBED_MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == EMBED_MODEL
    assert a["gen_ai.response.model"] == result.model
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == devserver.port
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert "gen_ai.usage.output_tokens" not in a
    assert a["gen_ai.embeddings.dimension.count"] == 1536
    assert "gen_ai.request.encoding_formats" not in a  # not asked for by the app
    for key in CONTENT_KEYS:  # no message content for embeddings, even with capture on
        assert key not in a
    tokens = data_points(metric_reader, "gen_ai.client.token.usage")
    assert [p.attributes["gen_ai.token.type"] for p in tokens] == ["input"]
    assert tokens[0].sum == result.usage.prompt_tokens
    assert list(tokens[0].explicit_bounds) == list(semconv.TOKEN_BUCKETS)
    (duration,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.operation.name"] == "embeddings"
    assert not data_points(metric_reader, "gen_ai.client.operation.time_to_first_chunk")


def test_base64_embeddings(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    result = client.embeddings.create(model=EMBED_MODEL, input="hello", encoding_format="base64")
    assert isinstance(result.data[0].embedding, str)
    a = attrs(only_span(span_exporter))
    assert list(a["gen_ai.request.encoding_formats"]) == ["base64"]
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert "gen_ai.usage.output_tokens" not in a


def test_dimensions_and_float_format(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    result = client.embeddings.create(
        model=EMBED_MODEL, input="hello", dimensions=8, encoding_format="float"
    )
    assert len(result.data[0].embedding) == 8
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.embeddings.dimension.count"] == 8
    assert list(a["gen_ai.request.encoding_formats"]) == ["float"]


def test_embeddings_are_unchanged_for_the_app(instrument_openai, devserver) -> None:
    def run(client: openai.OpenAI) -> list[Any]:
        return [
            dump(client.embeddings.create(model=EMBED_MODEL, input=["a", "b"], dimensions=4)),
            dump(client.embeddings.create(model=EMBED_MODEL, input="a", encoding_format="base64")),
        ]

    with sync_client(devserver) as plain:
        expected = run(plain)
    instrument_openai()
    with sync_client(devserver) as client:
        assert run(client) == expected


def test_embeddings_error(instrument_openai, span_exporter, devserver) -> None:
    with sync_client(devserver) as plain, pytest.raises(openai.NotFoundError) as expected:
        plain.embeddings.create(model=EMBED_MODEL, input="x", extra_headers={SCENARIO: "not_found"})
    instrument_openai()
    with sync_client(devserver) as client, pytest.raises(openai.NotFoundError) as got:
        client.embeddings.create(
            model=EMBED_MODEL, input="x", extra_headers={SCENARIO: "not_found"}
        )
    assert str(got.value) == str(expected.value)
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "NotFoundError"


async def test_async_embeddings(instrument_openai, span_exporter, devserver) -> None:
    instrument_openai()
    client = async_client(devserver)
    result = await client.embeddings.create(model=EMBED_MODEL, input="hello", dimensions=16)
    await client.close()
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.embeddings.dimension.count"] == 16 == len(result.data[0].embedding)
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
