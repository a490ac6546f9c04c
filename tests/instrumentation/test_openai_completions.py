"""Legacy Completions (``completions.create``): a ``text_completion`` span with the same
lifecycle, metrics, usage, finish reasons, response fields, cost and content rules as chat."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind, StatusCode

from llmtap.pipeline.cost import CostStage, PricingConfig
from llmtap.pipeline.span import SpanData

from .test_openai_support import (
    SCENARIO,
    attrs,
    content,
    data_points,
    dump,
    only_span,
    sync_client,
)

MODEL = "gpt-3.5-turbo-instruct"


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"type": "text", "content": text}]}


def test_create_span_identity_request_and_response(
    instrument_openai, span_exporter, metric_reader, client, devserver
) -> None:
    instrument_openai()
    completion = client.completions.create(
        model=MODEL,
        prompt="Tell me about Paris",
        max_tokens=64,
        temperature=0.5,
        top_p=0.9,
        seed=3,
        stop=["END"],
        frequency_penalty=0.1,
        presence_penalty=0.2,
    )
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"text_completion {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "text_completion"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == MODEL
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == devserver.port
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.seed"] == 3
    assert list(a["gen_ai.request.stop_sequences"]) == ["END"]
    assert a["gen_ai.request.frequency_penalty"] == 0.1
    assert a["gen_ai.request.presence_penalty"] == 0.2
    assert "openai.api.type" not in a  # the registry names chat_completions and responses only
    assert a["gen_ai.response.id"] == completion.id
    assert a["gen_ai.response.model"] == completion.model == MODEL
    assert a["openai.response.system_fingerprint"] == completion.system_fingerprint
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert completion.usage is not None
    assert a["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert "llmtap.usage.estimated" not in a
    text = completion.choices[0].text
    assert content(span, "gen_ai.input.messages") == [_user("Tell me about Paris")]
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    ]
    # the GenAI client metrics, as for chat
    (duration,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.operation.name"] == "text_completion"
    assert duration.attributes["gen_ai.request.model"] == MODEL
    usage = {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in data_points(metric_reader, "gen_ai.client.token.usage")
    }
    assert usage == {
        "input": completion.usage.prompt_tokens,
        "output": completion.usage.completion_tokens,
    }


def test_default_max_tokens_truncates_to_length(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    completion = client.completions.create(
        model=MODEL, prompt="Tell me a long story about the city of Paris", max_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    span = only_span(span_exporter)
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["length"]
    assert content(span, "gen_ai.output.messages")[0]["finish_reason"] == "length"


def test_several_prompts_and_choices(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    completion = client.completions.create(
        model=MODEL, prompt=["Paris is", [1820, 374, 264]], n=2, echo=True
    )
    assert len(completion.choices) == 4
    span = only_span(span_exporter)
    a = attrs(span)
    assert a["gen_ai.request.choice.count"] == 2
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"] * 4
    assert content(span, "gen_ai.input.messages") == [
        _user("Paris is"),
        {"role": "user", "parts": [{"type": "token_ids", "token_ids": [1820, 374, 264]}]},
    ]
    outputs = content(span, "gen_ai.output.messages")
    by_index = sorted(completion.choices, key=lambda c: c.index)
    assert [m["parts"][0]["content"] for m in outputs] == [c.text for c in by_index]
    assert outputs[0]["parts"][0]["content"].startswith("Paris is")  # echo


def test_filtered_choice_has_an_empty_output_message(
    instrument_openai, span_exporter, client
) -> None:
    instrument_openai()
    completion = client.completions.create(model=MODEL, prompt="Please filter this")
    assert completion.choices[0].finish_reason == "content_filter"
    span = only_span(span_exporter)
    assert list(attrs(span)["gen_ai.response.finish_reasons"]) == ["content_filter"]
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [], "finish_reason": "content_filter"}
    ]


def test_no_content_mode(instrument_openai, span_exporter, client) -> None:
    instrument_openai(capture="no_content")
    client.completions.create(model=MODEL, prompt="Tell me about Paris")
    a = attrs(only_span(span_exporter))
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert a["gen_ai.usage.input_tokens"] > 0


def test_cost_from_the_pipeline_stage(instrument_openai, span_exporter, client) -> None:
    """The span carries what the cost stage prices, as chat's does (the bundled table has no
    legacy completion model; an override prices one)."""
    instrument_openai()
    completion = client.completions.create(model=MODEL, prompt="Tell me about Paris")
    span = only_span(span_exporter)
    prices = {MODEL: {"input_cost_per_token": 1.5e-6, "output_cost_per_token": 2e-6}}
    stage = CostStage(PricingConfig(overrides=prices), meter_provider=MeterProvider())
    priced = SpanData(name=span.name, attributes=dict(span.attributes or {}))
    stage.apply(priced)
    usage = completion.usage
    assert usage is not None
    expected = usage.prompt_tokens * 1.5e-6 + usage.completion_tokens * 2e-6
    assert priced.attributes["llmtap.cost.total"] == pytest.approx(expected)
    assert priced.attributes["llmtap.cost.price_source"] == "override"


def test_http_error_reraises_and_marks_the_span(instrument_openai, span_exporter, client):
    instrument_openai()
    with pytest.raises(openai.RateLimitError):
        client.completions.create(model=MODEL, prompt="Hi", extra_headers={SCENARIO: "rate_limit"})
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "RateLimitError"


def test_the_app_sees_what_it_would_see_without_llmtap(instrument_openai, devserver) -> None:
    def calls(client: openai.OpenAI) -> list[Any]:
        chunks = [
            c.to_dict() for c in client.completions.create(model=MODEL, prompt="Hi", stream=True)
        ]
        for chunk in chunks:  # the injected stream_options change the request, so its id
            chunk.pop("id"), chunk.pop("created")
        return [
            dump(client.completions.create(model=MODEL, prompt="Hi there", n=2, logprobs=1)),
            chunks,
        ]

    with sync_client(devserver) as plain:
        expected = calls(plain)
    instrument_openai(inject_stream_usage=True)
    with sync_client(devserver) as client:
        assert calls(client) == expected


# streams ----------------------------------------------------------------------------------


def test_stream_with_usage(instrument_openai, span_exporter, metric_reader, client) -> None:
    instrument_openai()
    chunks = list(
        client.completions.create(
            model=MODEL,
            prompt="Tell me about Paris",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    span = only_span(span_exporter)
    a = attrs(span)
    assert span.name == f"text_completion {MODEL}"
    assert a["gen_ai.request.stream"] is True
    assert a["llmtap.stream.end"] == "completed"
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["gen_ai.response.id"] == chunks[0].id
    assert a["gen_ai.response.model"] == MODEL
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert "llmtap.usage.estimated" not in a
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    ]
    assert data_points(metric_reader, "gen_ai.client.operation.time_to_first_chunk")
    assert data_points(metric_reader, "gen_ai.client.operation.time_per_output_chunk")


def test_stream_without_usage_is_estimated(
    instrument_openai, span_exporter, tracer_provider, client
) -> None:
    instrument_openai()
    chunks = list(
        client.completions.create(model=MODEL, prompt=["Tell me about Paris", "Hi"], stream=True)
    )
    assert all(c.usage is None for c in chunks)
    tracer_provider.force_flush()
    a = attrs(only_span(span_exporter))
    assert a["llmtap.usage.estimated"] is True
    assert a["llmtap.usage.estimate_method"]
    assert a["gen_ai.usage.input_tokens"] > 0
    assert a["gen_ai.usage.output_tokens"] > 0
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop", "stop"]


def test_inject_stream_usage_hides_the_usage_chunk(
    instrument_openai, span_exporter, client, devserver
) -> None:
    instrument_openai(inject_stream_usage=True)
    chunks = list(client.completions.create(model=MODEL, prompt="Hi there", stream=True))
    assert chunks and all(c.choices for c in chunks)
    sent = [json.loads(r.body) for r in devserver.requests.all() if r.path == "/v1/completions"]
    assert sent[-1]["stream_options"] == {"include_usage": True}
    a = attrs(only_span(span_exporter))
    assert a["gen_ai.usage.output_tokens"] > 0
    assert "llmtap.usage.estimated" not in a


def test_stream_closed_early(instrument_openai, span_exporter, tracer_provider, client) -> None:
    instrument_openai()
    stream = client.completions.create(
        model=MODEL,
        prompt="Tell me about Paris",
        stream=True,
        stream_options={"include_usage": True},
    )
    next(iter(stream))
    stream.close()
    tracer_provider.force_flush()  # no usage came: it is estimated off the app's thread
    span = only_span(span_exporter)
    assert attrs(span)["llmtap.stream.end"] == "closed"
    assert content(span, "gen_ai.output.messages")[0]["finish_reason"] == "stop"


def test_stream_error_event(instrument_openai, span_exporter, tracer_provider, client) -> None:
    instrument_openai()
    with pytest.raises(openai.APIError):
        list(
            client.completions.create(
                model=MODEL,
                prompt="Tell me about Paris",
                stream=True,
                extra_headers={SCENARIO: "stream_error:2"},
            )
        )
    tracer_provider.force_flush()
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["llmtap.stream.end"] == "error"


def test_with_raw_response(instrument_openai, span_exporter, client) -> None:
    instrument_openai()
    raw = client.completions.with_raw_response.create(model=MODEL, prompt="Hi")
    assert raw.headers["x-request-id"]
    completion = raw.parse()
    assert attrs(only_span(span_exporter))["gen_ai.response.id"] == completion.id


async def test_async_create_and_stream(
    instrument_openai, span_exporter, tracer_provider, aclient
) -> None:
    instrument_openai()
    completion = await aclient.completions.create(model=MODEL, prompt="Tell me about Paris")
    stream = await aclient.completions.create(
        model=MODEL, prompt="Tell me about Paris", stream=True
    )
    texts = [c.choices[0].text async for c in stream if c.choices]
    tracer_provider.force_flush()
    first, second = sorted(span_exporter.get_finished_spans(), key=lambda s: s.start_time)
    assert first.name == second.name == f"text_completion {MODEL}"
    assert attrs(first)["gen_ai.request.stream"] is False
    assert attrs(second)["gen_ai.request.stream"] is True
    assert attrs(second)["llmtap.stream.end"] == "completed"
    assert content(first, "gen_ai.output.messages")[0]["parts"][0]["content"] == (
        completion.choices[0].text
    )
    assert content(second, "gen_ai.output.messages")[0]["parts"][0]["content"] == "".join(texts)
