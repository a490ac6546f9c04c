"""What every OpenAI adapter needs: provider identity, server address, shared request fields."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from llmtap import semconv
from llmtap.instrumentation import _client
from llmtap.instrumentation._client import given

_HOST_PROVIDERS = (
    ("openai.azure.com", "azure.ai.openai"),
    ("cognitiveservices.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.inference"),
    ("models.inference.ai.azure.com", "azure.ai.inference"),
    ("api.deepseek.com", "deepseek"),
    ("api.groq.com", "groq"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("api.mistral.ai", "mistral_ai"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("amazonaws.com", "aws.bedrock"),
    ("api.cohere.ai", "cohere"),
    ("api.cohere.com", "cohere"),
    ("cloud.ibm.com", "ibm.watsonx.ai"),
)


_RUNTIMES = {"bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai", "azure": "azure.ai.openai"}


def provider_for(host: str, client_class: str, runtime: str | None = None) -> str:
    if runtime in _RUNTIMES:
        return _RUNTIMES[runtime]
    if "Azure" in client_class:
        return "azure.ai.openai"
    if "Bedrock" in client_class:
        return "aws.bedrock"
    for suffix, provider in _HOST_PROVIDERS:
        if host == suffix or host.endswith("." + suffix):
            return provider
    return "openai"


def _identify(client: Any) -> dict[str, Any]:
    host = urlsplit(str(getattr(client, "base_url", ""))).hostname or ""
    runtime = getattr(getattr(client, "_provider_runtime", None), "name", None)
    return {semconv.PROVIDER: provider_for(host, type(client).__name__, runtime)}


def client_attributes(resource: Any, provider: str | None = None) -> dict[str, Any]:
    """Provider name and server address of the client behind a resource. ``provider`` names
    it outright (another provider's own SDK on the same wire format: Groq, Together);
    without it the OpenAI client's host and class tell."""
    if provider is None:
        return _client.client_attributes(resource, _identify, "openai")
    return _client.client_attributes(
        resource, lambda client: {semconv.PROVIDER: provider}, provider
    )


def stop_sequences(value: Any) -> list[str] | None:
    if not given(value):
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if value else None


def usage_attributes(usage: Any) -> dict[str, int]:
    """OpenAI usage (chat, responses or embeddings shape) as semconv token attributes."""
    if usage is None:
        return {}
    get = usage.get if isinstance(usage, dict) else lambda k, d=None: getattr(usage, k, d)
    out: dict[str, int] = {}
    inp = get("prompt_tokens")
    if inp is None:
        inp = get("input_tokens")
    outp = get("completion_tokens")
    if outp is None:
        outp = get("output_tokens")
    if inp is not None:
        out[semconv.USAGE_INPUT_TOKENS] = int(inp)
    if outp is not None:
        out[semconv.USAGE_OUTPUT_TOKENS] = int(outp)
    cached = _detail(get("prompt_tokens_details") or get("input_tokens_details"), "cached_tokens")
    if cached:
        out[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = cached
    reasoning = _detail(
        get("completion_tokens_details") or get("output_tokens_details"), "reasoning_tokens"
    )
    if reasoning:
        out[semconv.USAGE_REASONING_OUTPUT_TOKENS] = reasoning
    return out


def _detail(details: Any, key: str) -> int:
    if details is None:
        return 0
    value = details.get(key) if isinstance(details, dict) else getattr(details, key, None)
    return int(value or 0)
