"""The cost stage on local models (``ollama``): zero, and marked so, unless configured."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from llmtap import semconv
from llmtap.pipeline import cost
from llmtap.pipeline.cost import (
    COST_CURRENCY,
    COST_INPUT,
    COST_OUTPUT,
    COST_PRICE_MODEL,
    COST_PRICE_SOURCE,
    COST_TOTAL,
    COST_UNKNOWN_MODEL,
    LOCAL_PRICE_SOURCE,
    CostStage,
    PricingConfig,
)
from llmtap.pipeline.span import SpanData


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMTAP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LLMTAP_PRICING_FILE", raising=False)
    cost.reset_unpriced_models()
    yield
    cost.reset_unpriced_models()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


def _stage(reader: InMemoryMetricReader, config: PricingConfig | None = None) -> CostStage:
    return CostStage(config, meter_provider=MeterProvider(metric_readers=[reader]))


def _span(model: str, provider: str = "ollama", op: str = "chat", **extra) -> SpanData:
    attrs = {
        semconv.OPERATION: op,
        semconv.PROVIDER: provider,
        semconv.REQUEST_MODEL: model,
        semconv.USAGE_INPUT_TOKENS: 1200,
        semconv.USAGE_OUTPUT_TOKENS: 300,
        **extra,
    }
    return SpanData(name=f"{op} {model}", attributes=attrs)


def _cost_points(reader: InMemoryMetricReader, name: str) -> dict:
    data = reader.get_metrics_data()
    out = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        out[frozenset(point.attributes.items())] = point.value
    return out


def test_a_local_model_costs_zero_and_says_why(reader):
    span = _span("llama3.2")
    _stage(reader).apply(span)
    attrs = span.attributes
    assert attrs[COST_TOTAL] == 0.0
    assert attrs[COST_INPUT] == attrs[COST_OUTPUT] == 0.0
    assert attrs[COST_CURRENCY] == "USD"
    assert attrs[COST_PRICE_SOURCE] == LOCAL_PRICE_SOURCE == "local"
    assert attrs[COST_PRICE_MODEL] == "llama3.2"
    assert COST_UNKNOWN_MODEL not in attrs
    assert cost.unpriced_models() == []
    assert _cost_points(reader, cost.METRIC_UNPRICED) == {}
    assert _cost_points(reader, cost.METRIC_COST) == {}  # nothing spent


def test_a_local_model_named_like_a_hosted_one_is_not_priced_from_the_table(reader):
    hosted = _span("gpt-4o", provider="openai")
    local = _span("gpt-4o")
    stage = _stage(reader)
    stage.apply(hosted)
    stage.apply(local)
    assert hosted.attributes[COST_TOTAL] > 0
    assert local.attributes[COST_TOTAL] == 0.0
    assert local.attributes[COST_PRICE_SOURCE] == "local"


def test_local_embeddings_cost_zero(reader):
    span = _span("nomic-embed-text", op="embeddings")
    del span.attributes[semconv.USAGE_OUTPUT_TOKENS]
    _stage(reader).apply(span)
    assert span.attributes[COST_TOTAL] == 0.0
    assert span.attributes[COST_PRICE_SOURCE] == "local"


def test_an_override_prices_a_local_model(reader):
    config = PricingConfig(
        overrides={"llama3.2": {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}}
    )
    span = _span("llama3.2")
    _stage(reader, config).apply(span)
    assert span.attributes[COST_TOTAL] == pytest.approx(1200 * 1e-7 + 300 * 2e-7, abs=1e-12)
    assert span.attributes[COST_PRICE_SOURCE] == "override"
    assert _cost_points(reader, cost.METRIC_COST) == {
        frozenset({semconv.PROVIDER: "ollama", semconv.REQUEST_MODEL: "llama3.2"}.items()): (
            pytest.approx(1.8e-4)
        )
    }


def test_an_override_of_the_response_model_wins_too(reader):
    config = PricingConfig(overrides={"qwen3:8b": {"input_cost_per_token": 1e-6}})
    span = _span("qwen3", **{semconv.RESPONSE_MODEL: "qwen3:8b"})
    _stage(reader, config).apply(span)
    assert span.attributes[COST_TOTAL] == pytest.approx(1200 * 1e-6, abs=1e-12)
    assert span.attributes[COST_PRICE_MODEL] == "qwen3:8b"


def test_other_providers_unknown_models_stay_unpriced(reader):
    span = _span("llama3.2", provider="acme")
    _stage(reader).apply(span)
    assert span.attributes[COST_UNKNOWN_MODEL] is True
    assert COST_TOTAL not in span.attributes


def test_a_local_span_is_costed_once(reader):
    stage = _stage(reader)
    span = _span("llama3.2")
    stage.apply(span)
    before = dict(span.attributes)
    stage.apply(span)
    assert span.attributes == before
