"""Together AI SDK instrumentation (2.x and 3.x, the Stainless-generated client): chat
completions, completions, embeddings and rerank.

Together speaks OpenAI's wire format, so the OpenAI adapters translate it, reporting
``gen_ai.provider.name = "together_ai"`` (no well-known value exists for Together; this is
the custom value, spelled like ``mistral_ai`` / ``x_ai`` and as LiteLLM names the provider)
and none of the ``openai.*`` attributes. Together ends every stream with its usage in the
last chunk, and its SDK has no ``stream_options``: llmtap never adds it. A completion
stream's finish reason is on the chunk itself. Rerank calls are ``rerank`` spans (see
``_adapters``).
"""

from __future__ import annotations

from llmtap.instrumentation.openai._wire import OpenAIWireInstrumentor
from llmtap.instrumentation.together._adapters import (
    TogetherChatAdapter,
    TogetherCompletionsAdapter,
    TogetherEmbeddingsAdapter,
    TogetherRerankAdapter,
)

# (module, class pair, adapter class): each class's ``create``
_TARGETS = (
    (
        "together.resources.chat.completions",
        ("CompletionsResource", "AsyncCompletionsResource"),
        TogetherChatAdapter,
    ),
    (
        "together.resources.completions",
        ("CompletionsResource", "AsyncCompletionsResource"),
        TogetherCompletionsAdapter,
    ),
    (
        "together.resources.embeddings",
        ("EmbeddingsResource", "AsyncEmbeddingsResource"),
        TogetherEmbeddingsAdapter,
    ),
    ("together.resources.rerank", ("RerankResource", "AsyncRerankResource"), TogetherRerankAdapter),
)


class TogetherInstrumentor(OpenAIWireInstrumentor):
    """Turns every Together chat, completion, embedding and rerank call into a GenAI span."""

    dependencies = ("together >= 2.0, < 4",)
    package = "together"
    targets = _TARGETS
