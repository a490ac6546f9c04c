"""The cost stage on span records: arithmetic, tables, unknown models, idempotence, metrics.

Every expected cost is worked out by hand from the bundled table's prices (quoted in the
comments, dollars per token) or from a small table the test writes.
"""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from llmtap import semconv
from llmtap.pipeline import cost
from llmtap.pipeline.cost import (
    COST_CACHE_WRITE,
    COST_CACHED_INPUT,
    COST_CURRENCY,
    COST_ESTIMATED,
    COST_INPUT,
    COST_OUTPUT,
    COST_PRICE_MODEL,
    COST_PRICE_SOURCE,
    COST_REASONING,
    COST_TOTAL,
    COST_UNKNOWN_MODEL,
    CostStage,
    PricingConfig,
)
from llmtap.pipeline.span import SpanData

BUNDLED = "bundled:2026-11-22"
COST_KEYS = (COST_INPUT, COST_CACHED_INPUT, COST_CACHE_WRITE, COST_OUTPUT, COST_REASONING)


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


@pytest.fixture
def stage(reader) -> CostStage:
    return CostStage(meter_provider=MeterProvider(metric_readers=[reader]))


def genai(
    model: str | None = "gpt-4o",
    provider: str | None = "openai",
    *,
    input: int | str | None = None,
    output: int | str | None = None,
    read: int | None = None,
    write: int | None = None,
    reasoning: int | None = None,
    op: str = "chat",
    response_model: str | None = None,
    **extra,
) -> SpanData:
    attrs = {semconv.OPERATION: op}
    for key, value in (
        (semconv.PROVIDER, provider),
        (semconv.REQUEST_MODEL, model),
        (semconv.RESPONSE_MODEL, response_model),
        (semconv.USAGE_INPUT_TOKENS, input),
        (semconv.USAGE_OUTPUT_TOKENS, output),
        (semconv.USAGE_CACHE_READ_INPUT_TOKENS, read),
        (semconv.USAGE_CACHE_CREATION_INPUT_TOKENS, write),
        (semconv.USAGE_REASONING_OUTPUT_TOKENS, reasoning),
    ):
        if value is not None:
            attrs[key] = value
    attrs.update(extra)
    return SpanData(name=f"{op} {model}", attributes=attrs)


def points(reader: InMemoryMetricReader, name: str) -> dict[frozenset, float]:
    data = reader.get_metrics_data()
    out: dict[frozenset, float] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        out[frozenset(point.attributes.items())] = point.value
    return out


def breakdown(span: SpanData) -> tuple:
    return tuple(span.attributes[k] for k in (*COST_KEYS, COST_TOTAL))


# (input, cached input, cache write, output, reasoning, total)
CASES = [
    pytest.param(
        # gpt-4o: in 2.5e-6, out 1e-5
        genai("gpt-4o", input=1000, output=500),
        (0.0025, 0, 0, 0.005, 0, 0.0075),
        "gpt-4o",
        id="plain-input-output",
    ),
    pytest.param(
        # OpenAI-style cached_tokens: gpt-4o-mini in 1.5e-7, cache read 7.5e-8, out 6e-7
        genai("gpt-4o-mini", input=10_000, read=8000, output=200),
        (2000 * 1.5e-7, 8000 * 7.5e-8, 0, 200 * 6e-7, 0, 0.00102),
        "gpt-4o-mini",
        id="openai-cached-tokens",
    ),
    pytest.param(
        # Anthropic-style: claude-sonnet-4-5 in 3e-6, read 3e-7, write 3.75e-6, out 1.5e-5;
        # input_tokens 6000 = 1000 uncached + 3000 read + 2000 written
        genai("claude-sonnet-4-5", "anthropic", input=6000, read=3000, write=2000, output=400),
        (0.003, 0.0009, 0.0075, 0.006, 0, 0.0174),
        "claude-sonnet-4-5",
        id="anthropic-cache-read-and-write",
    ),
    pytest.param(
        # o3: in 2e-6, out 8e-6, no reasoning rate: reasoning at the output rate
        genai("o3", input=100, output=1000, reasoning=800),
        (0.0002, 0, 0, 200 * 8e-6, 800 * 8e-6, 0.0082),
        "o3",
        id="reasoning-at-output-rate",
    ),
    pytest.param(
        # gemini-2.5-flash (AI Studio): in 3e-7, out 2.5e-6, reasoning 2.5e-6
        genai("gemini-2.5-flash", "gcp.gemini", input=1000, output=2000, reasoning=1500),
        (0.0003, 0, 0, 500 * 2.5e-6, 1500 * 2.5e-6, 0.0053),
        "gemini/gemini-2.5-flash",
        id="gemini-reasoning-rate",
    ),
    pytest.param(
        # above 200k: the whole prompt at 6e-6, output at 2.25e-5
        genai("claude-sonnet-4-5", "anthropic", input=250_000, output=1000),
        (1.5, 0, 0, 0.0225, 0, 1.5225),
        "claude-sonnet-4-5",
        id="tier-above-200k",
    ),
    pytest.param(
        # exactly 200k is not above it
        genai("claude-sonnet-4-5", "anthropic", input=200_000, output=1000),
        (0.6, 0, 0, 0.015, 0, 0.615),
        "claude-sonnet-4-5",
        id="tier-boundary",
    ),
    pytest.param(
        # above 200k the cache read rate is tiered too: 6e-7
        genai("claude-sonnet-4-5", "anthropic", input=300_000, read=100_000, output=0),
        (1.2, 0.06, 0, 0, 0, 1.26),
        "claude-sonnet-4-5",
        id="tier-with-cache-read",
    ),
    pytest.param(
        # gpt-5.4 above 272k: in 5e-6, out 2.25e-5
        genai("gpt-5.4", input=300_000, output=10),
        (1.5, 0, 0, 0.000225, 0, 1.500225),
        "gpt-5.4",
        id="tier-above-272k",
    ),
    pytest.param(
        # priority: gpt-4o in 4.25e-6, out 1.7e-5
        genai(
            "gpt-4o", input=1000, output=1000, **{semconv.OPENAI_RESPONSE_SERVICE_TIER: "priority"}
        ),
        (0.00425, 0, 0, 0.017, 0, 0.02125),
        "gpt-4o",
        id="service-tier-priority",
    ),
    pytest.param(
        # flex (as requested): gpt-5 in 6.25e-7, out 5e-6
        genai("gpt-5", input=1000, output=1000, **{semconv.OPENAI_REQUEST_SERVICE_TIER: "flex"}),
        (0.000625, 0, 0, 0.005, 0, 0.005625),
        "gpt-5",
        id="service-tier-flex",
    ),
    pytest.param(
        # tier and priority together: gemini-3-pro-preview above 200k priority in 7.2e-6,
        # out 3.24e-5
        genai(
            "gemini-3-pro-preview",
            "gcp.gemini",
            input=250_000,
            output=100,
            **{semconv.OPENAI_RESPONSE_SERVICE_TIER: "priority"},
        ),
        (1.8, 0, 0, 0.00324, 0, 1.80324),
        "gemini/gemini-3-pro-preview",
        id="tier-and-priority",
    ),
    pytest.param(
        # embeddings: input only (text-embedding-3-small 2e-8)
        genai("text-embedding-3-small", input=5000, op="embeddings"),
        (0.0001, 0, 0, 0, 0, 0.0001),
        "text-embedding-3-small",
        id="embeddings",
    ),
    pytest.param(
        # an embedding model's output tokens are not billed (text-embedding-3-large 1.3e-7)
        genai("text-embedding-3-large", input=1000, output=50, op="embeddings"),
        (0.00013, 0, 0, 0, 0, 0.00013),
        "text-embedding-3-large",
        id="embeddings-output-ignored",
    ),
    pytest.param(
        # DeepSeek's input_cost_per_token_cache_hit (2.8e-8); in 2.8e-7, out 4e-7
        genai("deepseek-v3.2", "deepseek", input=10_000, read=6000, output=1000),
        (0.00112, 0.000168, 0, 0.0004, 0, 0.001688),
        "deepseek/deepseek-v3.2",
        id="deepseek-cache-hit-rate",
    ),
    pytest.param(
        # cache reads larger than the input count: the sender counted them apart
        genai("claude-sonnet-4-5", "anthropic", input=100, read=3000, output=0),
        (0.0003, 0.0009, 0, 0, 0, 0.0012),
        "claude-sonnet-4-5",
        id="cache-counted-apart",
    ),
    pytest.param(
        # Bedrock cross-region profile with its own price: in 3.3e-6, out 1.65e-5
        genai("us.anthropic.claude-sonnet-4-6", "aws.bedrock", input=1000, output=100),
        (0.0033, 0, 0, 0.00165, 0, 0.00495),
        "us.anthropic.claude-sonnet-4-6",
        id="bedrock-regional-price",
    ),
    pytest.param(
        # Bedrock region prefix dropped: anthropic.claude-haiku-4-5 in 1e-6, out 5e-6
        genai("ca.anthropic.claude-haiku-4-5-20251001-v1:0", "aws.bedrock", input=2000, output=300),
        (0.002, 0, 0, 0.0015, 0, 0.0035),
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        id="bedrock-region-prefix",
    ),
    pytest.param(
        # Azure's price for the response model: in 1.65e-7, out 6.6e-7
        genai(
            "my-deployment",
            "azure.ai.openai",
            response_model="gpt-4o-mini-2024-07-18",
            input=1000,
            output=1000,
        ),
        (0.000165, 0, 0, 0.00066, 0, 0.000825),
        "azure/gpt-4o-mini-2024-07-18",
        id="azure-response-model",
    ),
    pytest.param(
        # the response model (gpt-4o-2024-05-13: in 5e-6, out 1.5e-5) wins over the request's
        genai("gpt-4o", response_model="gpt-4o-2024-05-13", input=1000, output=1000),
        (0.005, 0, 0, 0.015, 0, 0.02),
        "gpt-4o-2024-05-13",
        id="response-model-preferred",
    ),
    pytest.param(
        # a response model without a price falls back to the request model (1.5e-7)
        genai("gpt-4o-mini", response_model="gpt-4o-mini-experimental-x", input=1000, output=0),
        (0.00015, 0, 0, 0, 0, 0.00015),
        "gpt-4o-mini",
        id="request-model-fallback",
    ),
    pytest.param(
        # a dated snapshot missing from the table: the family's price
        genai("claude-opus-4-8-20260901", "anthropic", input=1000, output=1000),
        (0.005, 0, 0, 0.025, 0, 0.03),
        "claude-opus-4-8",
        id="dated-snapshot",
    ),
    pytest.param(
        # OTLP JSON gives int attributes as strings
        genai("gpt-4o", input="1000", output="500"),
        (0.0025, 0, 0, 0.005, 0, 0.0075),
        "gpt-4o",
        id="counts-as-strings",
    ),
]


@pytest.mark.parametrize(("span", "expected", "price_model"), CASES)
def test_cost(stage, span, expected, price_model):
    stage.apply(span)
    assert breakdown(span) == pytest.approx(expected, abs=1e-12)
    assert span.attributes[COST_TOTAL] == pytest.approx(
        sum(span.attributes[k] for k in COST_KEYS), abs=1e-12
    )
    assert span.attributes[COST_CURRENCY] == "USD"
    assert span.attributes[COST_PRICE_MODEL] == price_model
    assert span.attributes[COST_PRICE_SOURCE] == BUNDLED
    assert COST_UNKNOWN_MODEL not in span.attributes
    assert COST_ESTIMATED not in span.attributes


def test_costs_keep_sub_cent_precision(stage):
    # gpt-5-nano flex cache read: 2.5e-9 per token
    span = genai(
        "gpt-5-nano", input=1, read=1, output=0, **{semconv.OPENAI_RESPONSE_SERVICE_TIER: "flex"}
    )
    stage.apply(span)
    assert span.attributes[COST_CACHED_INPUT] == 2.5e-9
    assert span.attributes[COST_TOTAL] == 2.5e-9
    span = genai("gpt-4o-mini", input=3, output=7)  # 3 * 1.5e-7 + 7 * 6e-7 = 4.65e-6
    stage.apply(span)
    assert span.attributes[COST_TOTAL] == 4.65e-6  # no float noise


# Tables and configuration ------------------------------------------------------------------


def write_table(tmp_path, name="my-prices.json", **entries) -> str:
    path = tmp_path / name
    table = {
        "sample_spec": {"input_cost_per_token": 0.0, "max_tokens": "LEGACY parameter"},
        **entries,
    }
    path.write_text(json.dumps(table))
    return str(path)


def test_a_litellm_format_file_is_loaded_on_top_of_the_bundled_table(tmp_path, reader):
    path = write_table(
        tmp_path,
        **{
            # a reasoning rate of its own, no cache write rate (falls back to input)
            "my-reasoner": {
                "input_cost_per_token": 1e-06,
                "output_cost_per_token": 4e-06,
                "output_cost_per_reasoning_token": 2e-06,
                "litellm_provider": "openai",
                "mode": "chat",
            },
            # the file's gpt-4o replaces the bundled one
            "gpt-4o": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
            # unusable entries are left out, the rest of the file still applies
            "broken": {"input_cost_per_token": -1, "output_cost_per_token": 1e-6},
            "an-image-model": {"mode": "image_generation", "output_cost_per_image": 0.04},
        },
    )
    stage = CostStage(
        PricingConfig(file=path), meter_provider=MeterProvider(metric_readers=[reader])
    )
    span = genai("my-reasoner", input=1100, write=100, output=1000, reasoning=600)
    stage.apply(span)
    # 1000 uncached * 1e-6, 100 written * 1e-6, 400 * 4e-6, 600 * 2e-6
    assert breakdown(span) == pytest.approx((0.001, 0, 0.0001, 0.0016, 0.0012, 0.0039), abs=1e-12)
    assert span.attributes[COST_PRICE_SOURCE] == "file:my-prices.json"

    replaced = genai("gpt-4o", input=1000, output=1000)
    stage.apply(replaced)
    assert replaced.attributes[COST_TOTAL] == pytest.approx(0.003, abs=1e-12)
    assert replaced.attributes[COST_PRICE_SOURCE] == "file:my-prices.json"

    bundled = genai("gpt-4o-mini", input=1000, output=0)
    stage.apply(bundled)
    assert bundled.attributes[COST_PRICE_SOURCE] == BUNDLED

    broken = genai("broken", input=10, output=10)
    stage.apply(broken)
    assert broken.attributes[COST_UNKNOWN_MODEL] is True


def test_the_environment_names_the_table_first(tmp_path, monkeypatch):
    config_table = write_table(tmp_path, "config.json", m={"input_cost_per_token": 1e-6})
    env_table = write_table(tmp_path, "env.json", m={"input_cost_per_token": 2e-6})
    monkeypatch.setenv("LLMTAP_PRICING_FILE", env_table)
    resolver = cost.build_resolver(PricingConfig(file=config_table))
    assert resolver.resolve("m").price_source == "file:env.json"


def test_the_table_written_by_update_is_used_by_default(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    write_table(data, "prices.json", m={"input_cost_per_token": 1e-6})
    assert cost.build_resolver().resolve("m").price_source == "file:prices.json"


def test_an_unreadable_table_is_reported_and_the_bundled_prices_apply(tmp_path, caplog):
    bad = tmp_path / "bad.json"
    bad.write_text('{"gpt-4o": {"input_cost_per_token": 1e-6,}}')
    with caplog.at_level(logging.WARNING, logger="llmtap"):
        resolver = cost.build_resolver(PricingConfig(file=str(bad)))
    assert "bad.json:1:" in caplog.text and "not valid JSON" in caplog.text
    assert resolver.resolve("gpt-4o", "openai").price_source == BUNDLED


def test_overrides_win_over_the_bundled_price(reader):
    config = PricingConfig(
        overrides={
            "gpt-4o": {"input_cost_per_token": 1e-06},  # output stays the bundled 1e-5
            "my-model": {"input_cost_per_token": "3e-6", "output_cost_per_token": 1.2e-05},
        }
    )
    stage = CostStage(config, meter_provider=MeterProvider(metric_readers=[reader]))
    span = genai("gpt-4o", input=1000, output=1000)
    stage.apply(span)
    assert breakdown(span) == pytest.approx((0.001, 0, 0, 0.01, 0, 0.011), abs=1e-12)
    assert span.attributes[COST_PRICE_SOURCE] == "override"
    new = genai("my-model", None, input=1000, output=100)
    stage.apply(new)
    assert new.attributes[COST_TOTAL] == pytest.approx(0.0042, abs=1e-12)
    assert new.attributes[COST_PRICE_SOURCE] == "override"


def test_azure_deployment_names_map_to_models(reader):
    config = PricingConfig(deployments={"prod-chat": "gpt-4o"})
    stage = CostStage(config, meter_provider=MeterProvider(metric_readers=[reader]))
    span = genai("prod-chat", "azure.ai.openai", input=1000, output=100)  # no response model
    stage.apply(span)
    # azure/gpt-4o: in 2.5e-6, out 1e-5
    assert span.attributes[COST_TOTAL] == pytest.approx(0.0035, abs=1e-12)
    assert span.attributes[COST_PRICE_MODEL] == "azure/gpt-4o"
    assert stage.resolver.resolve("prod-chat", "azure.ai.openai").match == "deployment"


FT = "ft:gpt-4o-mini-2024-07-18:acme::abc123"


@pytest.mark.parametrize(
    ("config", "model", "price_model", "source", "total"),
    [
        pytest.param(
            PricingConfig(
                overrides={FT: {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}
            ),
            FT,
            FT,
            "override",
            0.003,
            id="configured-price",
        ),
        pytest.param(
            PricingConfig(
                overrides={
                    "ft:gpt-4o-mini-2024-07-18:acme": {
                        "input_cost_per_token": 2e-6,
                        "output_cost_per_token": 2e-6,
                    }
                }
            ),
            "ft:gpt-4o-mini-2024-07-18:acme:v2:xyz",
            "ft:gpt-4o-mini-2024-07-18:acme",
            "override",
            0.004,
            id="configured-for-a-prefix",
        ),
        pytest.param(
            # fine_tunes: name prefix -> the model whose price it has (gpt-4.1-nano: in 1e-7,
            # out 4e-7)
            PricingConfig(fine_tunes={"acme-support-": "gpt-4.1-nano"}),
            "acme-support-v3",
            "gpt-4.1-nano",
            BUNDLED + "+base-model",
            0.0005,
            id="configured-base-model",
        ),
        pytest.param(
            # the table's fine-tune rate: ft:gpt-4o-mini-2024-07-18 in 3e-7, out 1.2e-6
            PricingConfig(),
            FT,
            "ft:gpt-4o-mini-2024-07-18",
            BUNDLED,
            0.0015,
            id="table-fine-tune-rate",
        ),
        pytest.param(
            # Azure's spelling of a fine-tune
            PricingConfig(),
            "gpt-4o-mini-2024-07-18.ft-0a1b2c3d",
            "ft:gpt-4o-mini-2024-07-18",
            BUNDLED,
            0.0015,
            id="azure-fine-tune",
        ),
        pytest.param(
            # no fine-tune rate: the base model's (gpt-5-mini: in 2.5e-7, out 2e-6)
            PricingConfig(),
            "ft:gpt-5-mini-2025-08-07:acme::x9",
            "gpt-5-mini-2025-08-07",
            BUNDLED + "+base-model",
            0.00225,
            id="base-model-fallback",
        ),
    ],
)
def test_fine_tunes(reader, config, model, price_model, source, total):
    stage = CostStage(config, meter_provider=MeterProvider(metric_readers=[reader]))
    span = genai(model, input=1000, output=1000)
    stage.apply(span)
    assert span.attributes[COST_PRICE_MODEL] == price_model
    assert span.attributes[COST_PRICE_SOURCE] == source
    assert span.attributes[COST_TOTAL] == pytest.approx(total, abs=1e-12)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"overrides": {"m": {"input_cost_per_token": -1}}}, "overrides.m.input_cost_per_token"),
        ({"overrides": {"m": {"input_cost_per_token": "cheap"}}}, "expected a price in dollars"),
        (
            {"overrides": {"m": {"input_cost_per_tokens": 1e-6}}},
            "did you mean input_cost_per_token",
        ),
        ({"overrides": {"m": 3e-6}}, "overrides.m: expected a mapping"),
        ({"deployments": {"prod": ""}}, "deployments.prod: expected a model name"),
        ({"fine_tunes": {"ft:x": 3}}, "fine_tunes.ft:x: expected a model name"),
    ],
)
def test_bad_configuration_is_refused_with_the_key(raw, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        PricingConfig(**raw)


def test_the_pricing_section_of_llmtap_yaml(tmp_path):
    from llmtap.config_file import ConfigError, load_config

    path = tmp_path / "llmtap.yaml"
    path.write_text(
        "pricing:\n"
        "  overrides:\n"
        "    my-finetune: {input_cost_per_token: 3e-6, output_cost_per_token: 1.2e-5}\n"
        "  deployments: {prod-chat: gpt-4o}\n"
    )
    cfg = load_config(path, env={})
    assert isinstance(cfg.pricing, PricingConfig)
    assert cfg.pricing.overrides == {
        "my-finetune": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.2e-5}
    }
    path.write_text("pricing:\n  overrides:\n    m: {input_cost_per_token: -1}\n")
    with pytest.raises(ConfigError, match=r"overrides\.m\.input_cost_per_token"):
        load_config(path, env={})


# Unknown models, idempotence, spans left alone ------------------------------------------------


def test_an_unknown_model_is_flagged_counted_and_registered_never_zero(stage, reader):
    span = genai("acme-llm-9", "acme", input=100, output=10)
    stage.apply(span)
    assert span.attributes[COST_UNKNOWN_MODEL] is True
    assert not any(k in span.attributes for k in (*COST_KEYS, COST_TOTAL, COST_CURRENCY))
    stage.apply(genai("acme-llm-9", "acme", input=5, output=5))
    assert points(reader, cost.METRIC_UNPRICED) == {
        frozenset({semconv.PROVIDER: "acme", semconv.REQUEST_MODEL: "acme-llm-9"}.items()): 2
    }
    (row,) = cost.unpriced_models()
    assert (row["provider"], row["model"], row["count"]) == ("acme", "acme-llm-9", 2)
    assert points(reader, cost.METRIC_COST) == {}


def test_an_unknown_model_is_logged_once(stage, caplog):
    with caplog.at_level(logging.WARNING, logger="llmtap"):
        for _ in range(3):
            stage.apply(genai("acme-llm-9", "acme", input=1, output=1))
    assert caplog.text.count("no price for model 'acme-llm-9'") == 1


def test_applying_twice_is_applying_once(stage, reader):
    span = genai("gpt-4o", input=1000, output=500)
    stage.apply(span)
    once = dict(span.attributes)
    stage.apply(span)
    assert span.attributes == once
    assert sum(points(reader, cost.METRIC_COST).values()) == pytest.approx(0.0075)

    unknown = genai("acme-llm-9", "acme", input=1, output=1)
    stage.apply(unknown)
    stage.apply(unknown)
    assert cost.unpriced_models()[0]["count"] == 1
    assert sum(points(reader, cost.METRIC_UNPRICED).values()) == 1


@pytest.mark.parametrize("name", [COST_TOTAL, semconv.USAGE_COST])
def test_a_span_costed_elsewhere_is_left_alone(stage, reader, name):
    """llmtap.cost.total, or gen_ai.usage.cost from an older llmtap app or another SDK."""
    span = genai("gpt-4o", input=1000, output=500, **{name: 0.5})
    before = dict(span.attributes)
    stage.apply(span)
    assert span.attributes == before
    assert points(reader, cost.METRIC_COST) == {}
    assert cost.cost_total(span.attributes) == 0.5


def test_the_total_has_the_registered_name_only(stage):
    span = genai("gpt-4o", input=1000, output=500)
    stage.apply(span)
    assert COST_TOTAL == "llmtap.cost.total" and span.attributes[COST_TOTAL] > 0
    assert semconv.USAGE_COST not in span.attributes


def test_either_total_marks_a_span_costed():
    from llmtap.service.stage_skip import needs_stages

    needs = needs_stages([cost.CostStage(meter_provider=MeterProvider())])
    usage = {semconv.USAGE_INPUT_TOKENS: 10}
    assert needs(usage)
    assert not needs({**usage, COST_TOTAL: 0.1})
    assert not needs({**usage, semconv.USAGE_COST: 0.1})


def test_cost_total_prefers_the_registered_name():
    assert cost.cost_total({COST_TOTAL: 0.2, semconv.USAGE_COST: 0.3}) == 0.2
    assert cost.cost_total({semconv.USAGE_COST: "0.3"}) == 0.3
    assert cost.cost_total({COST_TOTAL: "n/a", semconv.USAGE_COST: 0.3}) == 0.3
    assert cost.cost_total({COST_TOTAL: True}) is None
    assert cost.cost_total({}) is None


@pytest.mark.parametrize(
    "span",
    [
        pytest.param(genai("gpt-4o"), id="no-usage"),
        pytest.param(genai(None, input=10, output=10), id="no-model"),
        pytest.param(SpanData("retrieval", {"llmtap.step.kind": "retrieval"}), id="not-genai"),
        pytest.param(genai("gpt-4o", input=True, output=None), id="bool-is-not-a-count"),
    ],
)
def test_spans_without_usage_or_model_are_left_alone(stage, span):
    before = dict(span.attributes)
    stage.apply(span)
    assert span.attributes == before


def test_estimated_usage_is_costed_and_marked(stage):
    span = genai("gpt-4o", input=1000, output=500, **{semconv.LLMTAP_USAGE_ESTIMATED: True})
    stage.apply(span)
    assert span.attributes[COST_TOTAL] == pytest.approx(0.0075)
    assert span.attributes[COST_ESTIMATED] is True


def test_a_disabled_stage_does_nothing():
    span = genai("gpt-4o", input=1000, output=500)
    CostStage(PricingConfig(enabled=False)).apply(span)
    assert COST_TOTAL not in span.attributes


def test_a_failure_inside_the_stage_is_logged_not_raised(stage, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(stage.resolver, "resolve", boom)
    with caplog.at_level(logging.WARNING, logger="llmtap"):
        stage.apply(genai("gpt-4o", input=1, output=1))
        stage.apply(genai("gpt-4o", input=1, output=1))
    assert caplog.text.count("the cost stage failed") == 1


# The cost metric ------------------------------------------------------------------------------


def test_the_cost_counter_sums_by_provider_model_and_feature(stage, reader):
    stage.apply(genai("gpt-4o", input=1000, output=500, **{semconv.LLMTAP_FEATURE: "support"}))
    stage.apply(genai("gpt-4o", input=1000, output=500, **{semconv.LLMTAP_FEATURE: "support"}))
    stage.apply(genai("gpt-4o", response_model="gpt-4o-2024-08-06", input=1000, output=0))
    assert points(reader, cost.METRIC_COST) == pytest.approx(
        {
            frozenset(
                {
                    semconv.PROVIDER: "openai",
                    semconv.REQUEST_MODEL: "gpt-4o",
                    semconv.LLMTAP_FEATURE: "support",
                }.items()
            ): 0.015,
            frozenset(
                {semconv.PROVIDER: "openai", semconv.REQUEST_MODEL: "gpt-4o"}.items()
            ): 0.0025,
        }
    )


def test_the_cost_counter_caps_its_attribute_sets(reader):
    stage = CostStage(meter_provider=MeterProvider(metric_readers=[reader]), max_series=2)
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"):
        stage.apply(genai(model, input=1000, output=0, **{semconv.LLMTAP_FEATURE: model}))
    keys = {dict(k)[semconv.REQUEST_MODEL] for k in points(reader, cost.METRIC_COST)}
    assert keys == {"gpt-4o", "gpt-4o-mini", "other"}
    other = frozenset(
        {
            semconv.PROVIDER: "openai",
            semconv.REQUEST_MODEL: "other",
            semconv.LLMTAP_FEATURE: "other",
        }.items()
    )
    # gpt-4.1 (2e-6) and gpt-4.1-mini (4e-7), 1000 input tokens each
    assert points(reader, cost.METRIC_COST)[other] == pytest.approx(0.0024)


def test_the_unpriced_counter_caps_its_attribute_sets(reader):
    stage = CostStage(meter_provider=MeterProvider(metric_readers=[reader]), max_unpriced_series=1)
    stage.apply(genai("acme-1", "acme", input=1, output=1))
    stage.apply(genai("acme-2", "acme", input=1, output=1))
    stage.apply(genai("acme-3", "acme", input=1, output=1))
    assert points(reader, cost.METRIC_UNPRICED) == {
        frozenset({semconv.PROVIDER: "acme", semconv.REQUEST_MODEL: "acme-1"}.items()): 1,
        frozenset({semconv.PROVIDER: "acme", semconv.REQUEST_MODEL: "other"}.items()): 2,
    }
    assert [r["model"] for r in cost.unpriced_models()] == ["acme-1", "acme-2", "acme-3"]


# Rerank: priced per search unit ----------------------------------------------------------------


def rerank(model: str, provider: str = "cohere", **extra) -> SpanData:
    return genai(model, provider, op="rerank", **extra)


@pytest.mark.parametrize(
    ("model", "units", "total"),
    [
        ("rerank-v3.5", 1, 0.002),  # $2.00 per 1,000 searches
        ("rerank-v3.5", 3, 0.006),
        ("rerank-v4.0-pro", 2, 0.005),  # $2.50 per 1,000 searches
    ],
)
def test_a_rerank_call_is_priced_per_search_unit(stage, reader, model, units, total):
    span = rerank(model, **{semconv.LLMTAP_USAGE_SEARCH_UNITS: units})
    stage.apply(span)
    assert breakdown(span) == pytest.approx((total, 0, 0, 0, 0, total), abs=1e-12)
    assert span.attributes[COST_CURRENCY] == "USD"
    assert span.attributes[COST_PRICE_MODEL] == model
    assert span.attributes[COST_PRICE_SOURCE] == "bundled:2026-12-07"
    assert COST_UNKNOWN_MODEL not in span.attributes
    assert points(reader, cost.METRIC_COST) == {
        frozenset({semconv.PROVIDER: "cohere", semconv.REQUEST_MODEL: model}.items()): (
            pytest.approx(total, abs=1e-12)
        )
    }


def test_an_unknown_rerank_model_is_unpriced(stage, reader):
    span = rerank("acme-rerank-1", "acme", **{semconv.LLMTAP_USAGE_SEARCH_UNITS: 1})
    stage.apply(span)
    assert span.attributes[COST_UNKNOWN_MODEL] is True
    assert not any(k in span.attributes for k in (*COST_KEYS, COST_TOTAL, COST_CURRENCY))
    assert points(reader, cost.METRIC_UNPRICED) == {
        frozenset({semconv.PROVIDER: "acme", semconv.REQUEST_MODEL: "acme-rerank-1"}.items()): 1
    }
    assert [(r["provider"], r["model"]) for r in cost.unpriced_models()] == [
        ("acme", "acme-rerank-1")
    ]


@pytest.mark.parametrize(
    "span",
    [
        # priced per search, but the span has tokens only: never a made-up $0
        rerank("rerank-v3.5", input=100),
        # priced per token (Cohere Rerank 5), but the span has search units only
        rerank("rerank-v5.0-pro", **{semconv.LLMTAP_USAGE_SEARCH_UNITS: 1}),
    ],
    ids=["per-search-price-token-usage", "per-token-price-search-usage"],
)
def test_a_price_in_other_units_than_the_usage_is_unpriced(stage, span):
    stage.apply(span)
    assert span.attributes[COST_UNKNOWN_MODEL] is True
    assert COST_TOTAL not in span.attributes


def test_a_token_priced_reranker_is_priced_on_its_input_tokens(stage):
    # together_ai/Salesforce/Llama-Rank-V1: in 1e-7 per token
    span = rerank("Salesforce/Llama-Rank-V1", "together_ai", input=2000)
    stage.apply(span)
    assert breakdown(span) == pytest.approx((0.0002, 0, 0, 0, 0, 0.0002), abs=1e-12)
    assert span.attributes[COST_PRICE_MODEL] == "together_ai/Salesforce/Llama-Rank-V1"


def test_an_override_prices_a_reranker_per_search(reader):
    config = PricingConfig(overrides={"my-rerank": {"input_cost_per_query": "0.001"}})
    stage = CostStage(config, meter_provider=MeterProvider(metric_readers=[reader]))
    span = rerank("my-rerank", "acme", **{semconv.LLMTAP_USAGE_SEARCH_UNITS: 4})
    stage.apply(span)
    assert span.attributes[COST_TOTAL] == pytest.approx(0.004, abs=1e-12)
    assert span.attributes[COST_PRICE_SOURCE] == "override"


def test_search_units_alone_give_the_stage_work(stage):
    assert semconv.LLMTAP_USAGE_SEARCH_UNITS in stage.marks().needs
