"""The SDKs llmtap instruments: one entry per provider package under ``instrumentation/``.

``llmtap.configure()`` and ``llmtap eval`` instrument every entry; ``opentelemetry-instrument``
finds them as the ``opentelemetry_instrumentor`` entry points of ``pyproject.toml``, which
name the same ones (a test compares the two).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Instrumentation:
    """One instrumented SDK."""

    name: str  #: the entry point's name
    target: str  #: ``module:Class`` of the instrumentor
    distribution: str  #: the SDK's distribution (``pip install`` name)
    module: str  #: the SDK's module (``import`` name)

    @property
    def class_name(self) -> str:
        return self.target.partition(":")[2]

    def load(self) -> Any:
        """The instrumentor class (ImportError or AttributeError when it cannot load)."""
        return import_target(self.target)


INSTRUMENTATIONS: tuple[Instrumentation, ...] = (
    Instrumentation(
        "llmtap_openai", "llmtap.instrumentation.openai:OpenAIInstrumentor", "openai", "openai"
    ),
    Instrumentation(
        "llmtap_anthropic",
        "llmtap.instrumentation.anthropic:AnthropicInstrumentor",
        "anthropic",
        "anthropic",
    ),
    Instrumentation(
        "llmtap_google_genai",
        "llmtap.instrumentation.google_genai:GoogleGenAIInstrumentor",
        "google-genai",
        "google.genai",
    ),
    Instrumentation(
        "llmtap_bedrock",
        "llmtap.instrumentation.bedrock:BedrockInstrumentor",
        "botocore",
        "botocore",
    ),
    Instrumentation(
        "llmtap_mistralai",
        "llmtap.instrumentation.mistralai:MistralInstrumentor",
        "mistralai",
        "mistralai",
    ),
    Instrumentation(
        "llmtap_cohere", "llmtap.instrumentation.cohere:CohereInstrumentor", "cohere", "cohere"
    ),
    Instrumentation(
        "llmtap_ollama", "llmtap.instrumentation.ollama:OllamaInstrumentor", "ollama", "ollama"
    ),
    Instrumentation("llmtap_groq", "llmtap.instrumentation.groq:GroqInstrumentor", "groq", "groq"),
    Instrumentation(
        "llmtap_together",
        "llmtap.instrumentation.together:TogetherInstrumentor",
        "together",
        "together",
    ),
    Instrumentation(
        "llmtap_litellm",
        "llmtap.instrumentation.litellm:LiteLLMInstrumentor",
        "litellm",
        "litellm",
    ),
    Instrumentation(
        "llmtap_chromadb",
        "llmtap.instrumentation.chromadb:ChromaInstrumentor",
        "chromadb",
        "chromadb",
    ),
    Instrumentation(
        "llmtap_qdrant",
        "llmtap.instrumentation.qdrant:QdrantInstrumentor",
        "qdrant-client",
        "qdrant_client",
    ),
    Instrumentation(
        "llmtap_pinecone",
        "llmtap.instrumentation.pinecone:PineconeInstrumentor",
        "pinecone",
        "pinecone",
    ),
    Instrumentation("llmtap_mcp", "llmtap.instrumentation.mcp:McpInstrumentor", "mcp", "mcp"),
    Instrumentation(
        "llmtap_langchain",
        "llmtap.instrumentation.langchain:LangChainInstrumentor",
        "langchain-core",
        "langchain_core",
    ),
    Instrumentation(
        "llmtap_llama_index",
        "llmtap.instrumentation.llama_index:LlamaIndexInstrumentor",
        "llama-index-core",
        "llama_index.core",
    ),
    Instrumentation(
        "llmtap_openai_agents",
        "llmtap.instrumentation.openai_agents:OpenAIAgentsInstrumentor",
        "openai-agents",
        "agents",
    ),
    Instrumentation(
        "llmtap_pydantic_ai",
        "llmtap.instrumentation.pydantic_ai:PydanticAIInstrumentor",
        "pydantic-ai-slim",
        "pydantic_ai",
    ),
)


def installed(instrumentation: Instrumentation) -> bool:
    """Whether the SDK can be imported here, found without importing it."""
    try:
        return importlib.util.find_spec(instrumentation.module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def import_target(target: str) -> Any:
    """The object named ``module:attribute``."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
