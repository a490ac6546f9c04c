"""Which provider a LiteLLM call reaches, in GenAI semconv names, and its server address.

LiteLLM's own resolution (``litellm.get_llm_provider``: the ``provider/`` prefix of the model,
``custom_llm_provider``, known model names, a known ``api_base``) answers; llmtap maps its
provider names to the semconv well-known values and keeps any other name as LiteLLM spells it
(a custom value, as the semconv allows). Answers are cached per (model, provider, api_base).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from llmtap import semconv

# LiteLLM's provider names -> gen_ai.provider.name well-known values
SEMCONV_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "chatgpt": "openai",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "anthropic_text": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "mistral": "mistral_ai",
    "codestral": "mistral_ai",
    "text-completion-codestral": "mistral_ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai",
    "watsonx_text": "ibm.watsonx.ai",
    "ollama": "ollama",
    "ollama_chat": "ollama",
}

UNKNOWN = "litellm"  # LiteLLM could not tell (the call itself then fails in LiteLLM)

_CACHE_SIZE = 512
_cache: dict[tuple[Any, ...], tuple[str, str | None]] = {}
_lock = threading.Lock()


def semconv_name(litellm_provider: str | None) -> str:
    if not litellm_provider:
        return UNKNOWN
    return SEMCONV_PROVIDERS.get(litellm_provider, litellm_provider)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def api_base_of(kwargs: dict[str, Any]) -> str | None:
    return _text(kwargs.get("api_base")) or _text(kwargs.get("base_url"))


def resolve(model: Any, kwargs: dict[str, Any]) -> tuple[str, str | None]:
    """(gen_ai.provider.name, api_base) of a call to ``model`` with these arguments."""
    custom = _text(kwargs.get("custom_llm_provider"))
    api_base = api_base_of(kwargs)
    key = (model, custom, api_base)
    found = _cache.get(key)
    if found is not None:
        return found
    found = _resolve(model, custom, api_base)
    with _lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = found
    return found


def _resolve(model: Any, custom: str | None, api_base: str | None) -> tuple[str, str | None]:
    if not isinstance(model, str) or not model:
        return semconv_name(custom), api_base
    try:
        import litellm  # loaded already: this runs inside a LiteLLM call

        _, provider, _, resolved_base = litellm.get_llm_provider(
            model=model, custom_llm_provider=custom, api_base=api_base
        )
    except Exception:  # LiteLLM cannot tell: it raises the same to the app on the call
        prefix = model.split("/", 1)[0] if "/" in model else None
        return semconv_name(custom or prefix), api_base
    return semconv_name(provider), api_base or _text(resolved_base)


def server_attributes(api_base: str | None) -> dict[str, Any]:
    if not api_base:
        return {}
    try:
        url = urlsplit(api_base)
        host, port = url.hostname, url.port
    except ValueError:
        return {}
    if not host:
        return {}
    return {
        semconv.SERVER_ADDRESS: host,
        semconv.SERVER_PORT: port or (443 if url.scheme == "https" else 80),
    }


def call_attributes(model: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Provider name and server address of one call."""
    provider, api_base = resolve(model, kwargs)
    return {semconv.PROVIDER: provider, **server_attributes(api_base)}
