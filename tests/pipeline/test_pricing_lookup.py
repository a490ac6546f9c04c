"""Price lookup against the bundled table: names as providers and SDKs spell them."""

from __future__ import annotations

import json
import re
import socket
from importlib import resources

import pytest

from llmtap.pipeline import cost
from llmtap.pipeline.pricing import (
    QUERY_MODES,
    TOKEN_MODES,
    PriceResolver,
    candidates,
    check_table,
    load_bundled,
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMTAP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LLMTAP_PRICING_FILE", raising=False)


@pytest.fixture(scope="module")
def resolver() -> PriceResolver:
    return PriceResolver()


LOOKUPS = [
    # exact names
    ("openai", "gpt-4o", "gpt-4o"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini"),
    ("anthropic", "claude-opus-4-5", "claude-opus-4-5"),
    (None, "text-embedding-3-small", "text-embedding-3-small"),
    (None, "GPT-4o", "gpt-4o"),
    # a dated snapshot in the table keeps its own price ...
    ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
    ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
    # ... one that is not costs what its family costs
    ("openai", "gpt-4o-2026-01-15", "gpt-4o"),
    ("openai", "gpt-5.4-mini-2026-04-01", "gpt-5.4-mini"),
    ("anthropic", "claude-sonnet-4-6-20260301", "claude-sonnet-4-6"),
    ("anthropic", "claude-opus-4-8-latest", "claude-opus-4-8"),
    (None, "gemini-2.5-flash-lite-001", "gemini-2.5-flash-lite"),
    # provider prefixes
    (None, "openai/gpt-4o", "gpt-4o"),
    (None, "azure/gpt-4o", "azure/gpt-4o"),
    (None, "anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
    (None, "openrouter/openai/gpt-4o", "gpt-4o"),
    (None, "groq/llama-3.3-70b-versatile", "groq/llama-3.3-70b-versatile"),
    (None, "gemini/gemini-2.5-pro", "gemini/gemini-2.5-pro"),
    (None, "mistral/mistral-large-latest", "mistral/mistral-large-latest"),
    (
        None,
        "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
    ),
    # Bedrock ids: regional entries where the table has them, else the base id
    (
        "aws.bedrock",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
    ),
    ("aws.bedrock", "us.anthropic.claude-sonnet-4-6", "us.anthropic.claude-sonnet-4-6"),
    (
        "aws.bedrock",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    ),
    (
        "aws.bedrock",
        "apac.anthropic.claude-opus-4-1-20250805-v1:0",
        "anthropic.claude-opus-4-1-20250805-v1:0",
    ),
    (
        "aws.bedrock",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
    ),
    ("aws.bedrock", "claude-sonnet-4-5-20250929", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
    (None, "anthropic.claude-sonnet-4-6-v1", "anthropic.claude-sonnet-4-6"),
    ("aws.bedrock", "amazon.titan-embed-text-v2:0", "amazon.titan-embed-text-v2:0"),
    ("aws.bedrock", "ca.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
    # provider-aware: the same name, priced as its provider sells it
    ("openai", "gpt-4o-2024-11-20", "gpt-4o-2024-11-20"),
    ("azure.ai.openai", "gpt-4o-2024-11-20", "azure/gpt-4o-2024-11-20"),
    ("azure.ai.openai", "text-embedding-3-large", "azure/text-embedding-3-large"),
    ("gcp.gemini", "gemini-2.0-flash-001", "gemini/gemini-2.0-flash-001"),
    ("gcp.vertex_ai", "gemini-2.0-flash-001", "gemini-2.0-flash-001"),
    ("gcp.vertex_ai", "claude-haiku-4-5@20251001", "vertex_ai/claude-haiku-4-5@20251001"),
    ("gcp.vertex_ai", "claude-opus-4-1@20250805", "claude-opus-4-1-20250805"),
    ("x_ai", "grok-4-0709", "xai/grok-4-0709"),
    ("mistral_ai", "mistral-small-latest", "mistral/mistral-small-latest"),
    ("deepseek", "deepseek-reasoner", "deepseek/deepseek-reasoner"),
    ("groq", "openai/gpt-oss-20b", "groq/openai/gpt-oss-20b"),
]


@pytest.mark.parametrize(("provider", "model", "key"), LOOKUPS)
def test_lookup(resolver, provider, model, key):
    found = resolver.resolve(model, provider)
    assert found is not None, f"{model} ({provider}) is not priced"
    assert found.key == key
    assert found.price_source in ("bundled:2026-11-22", "bundled:2026-12-07")
    assert found.match == ("exact" if key.lower() == model.lower() else "normalised")


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        (None, "totally-unknown-model"),
        ("openai", "my-private-model-2025-01-01"),
        (None, ""),
        (None, "   "),
        ("groq", "no-such/model"),
    ],
)
def test_unknown_names_resolve_to_none(resolver, provider, model):
    assert resolver.resolve(model, provider) is None


def test_candidates_go_from_specific_to_general():
    names = list(candidates("openrouter/openai/gpt-4o-2024-08-06", "azure.ai.openai"))
    assert names[:2] == [
        "azure/openrouter/openai/gpt-4o-2024-08-06",
        "openrouter/openai/gpt-4o-2024-08-06",
    ]
    assert names.index("openai/gpt-4o-2024-08-06") < names.index("gpt-4o-2024-08-06")
    assert names.index("azure/gpt-4o-2024-08-06") < names.index("gpt-4o-2024-08-06")
    assert names[-1] == "gpt-4o"
    assert len(names) == len(set(names))


def test_resolutions_are_cached_and_the_cache_is_bounded():
    small = PriceResolver(cache_size=2)
    first = small.resolve("gpt-4o-2026-01-15", "openai")
    assert small.resolve("gpt-4o-2026-01-15", "openai") is first
    small.resolve("nope", None)
    small.resolve("gpt-4.1", None)
    assert small.cache_info() == (2, 2)


def test_the_table_is_package_data_read_without_network(monkeypatch):
    assert resources.files("llmtap.pipeline.pricing").joinpath("prices.json").is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("pricing touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    load_bundled.cache_clear()
    stage = cost.CostStage()
    assert stage._resolver is None  # nothing read at start-up
    assert stage.resolver.resolve("gpt-4o", "openai") is not None


def test_every_bundled_entry_has_a_valid_price_a_source_and_a_date():
    text = resources.files("llmtap.pipeline.pricing").joinpath("prices.json").read_text()
    data = json.loads(text)
    assert check_table(data, "prices.json") == []
    assert 1000 <= len(data) <= 1300
    for key, entry in data.items():
        assert entry["source"].startswith("litellm model_prices_and_context_window.json@"), key
        # a commit of LiteLLM's repository, or the release whose package carried the file
        assert _LITELLM_REF.fullmatch(entry["source"].rsplit("@", 1)[1]), key
        assert entry["as_of"] in ("2026-11-22", "2026-12-07"), key
        assert entry["mode"] in TOKEN_MODES | QUERY_MODES, key
        assert isinstance(entry["litellm_provider"], str), key
        if entry["mode"] in QUERY_MODES:  # rerank: per search, else per input token
            assert entry.get("input_cost_per_query", entry["input_cost_per_token"]) > 0, key
            continue
        assert entry["input_cost_per_token"] >= 0, key
        if entry["mode"] != "embedding":
            assert entry["output_cost_per_token"] > 0, key


_LITELLM_REF = re.compile(r"[0-9a-f]{40}|litellm-v\d+\.\d+\.\d+")


# Current chat and embedding models of every provider llmtap instruments.
COVERAGE = [
    ("openai", "gpt-5.6", "chat"),
    ("openai", "gpt-5.4-mini", "chat"),
    ("openai", "o4-mini", "chat"),
    ("openai", "gpt-4.1", "chat"),
    ("openai", "text-embedding-3-large", "embedding"),
    ("anthropic", "claude-opus-4-8", "chat"),
    ("anthropic", "claude-sonnet-5", "chat"),
    ("anthropic", "claude-haiku-4-5", "chat"),
    ("gcp.gemini", "gemini-3.5-flash", "chat"),
    ("gcp.gemini", "gemini-3.1-pro-preview", "chat"),
    ("gcp.gemini", "gemini-embedding-001", "embedding"),
    ("gcp.vertex_ai", "gemini-2.5-pro", "chat"),
    ("mistral_ai", "mistral-medium-latest", "chat"),
    ("mistral_ai", "mistral-embed", "embedding"),
    ("deepseek", "deepseek-chat", "chat"),
    ("groq", "llama-3.3-70b-versatile", "chat"),
    ("x_ai", "grok-4.5", "chat"),
    ("aws.bedrock", "us.anthropic.claude-opus-4-8", "chat"),
    ("aws.bedrock", "amazon.nova-pro-v1:0", "chat"),
    ("aws.bedrock", "cohere.embed-v4:0", "embedding"),
    ("azure.ai.openai", "gpt-5.5", "chat"),
    ("azure.ai.openai", "o3", "chat"),
    ("azure.ai.openai", "text-embedding-3-small", "embedding"),
    ("cohere", "command-a-03-2025", "chat"),
    ("cohere", "embed-english-v3.0", "embedding"),
    ("cohere", "embed-v4.0", "embedding"),
    ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "chat"),
    ("together_ai", "BAAI/bge-base-en-v1.5", "embedding"),
    ("gcp.vertex_ai", "claude-sonnet-4-5@20250929", "chat"),
    ("gcp.vertex_ai", "mistral-medium-3", "chat"),
    ("aws.bedrock", "meta.llama3-3-70b-instruct-v1:0", "chat"),
    ("aws.bedrock", "amazon.titan-text-express-v1", "chat"),
    ("aws.bedrock", "us.cohere.embed-v4:0", "embedding"),
    ("groq", "openai/gpt-oss-120b", "chat"),
    ("mistral_ai", "codestral-latest", "chat"),
]


@pytest.mark.parametrize(("provider", "model", "mode"), COVERAGE)
def test_current_models_of_every_provider_are_priced(resolver, provider, model, mode):
    found = resolver.resolve(model, provider)
    assert found is not None
    assert found.entry.mode == mode


def test_deployment_names_map_once():
    resolver = PriceResolver(deployments={"a": "b", "b": "a", "chat": "gpt-4o"})
    assert resolver.resolve("a") is None
    found = resolver.resolve("chat", "azure.ai.openai")
    assert (found.key, found.match) == ("azure/gpt-4o", "deployment")
