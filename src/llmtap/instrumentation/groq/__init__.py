"""Groq SDK instrumentation (``chat.completions.create`` and ``embeddings.create``).

The Groq SDK is its own package but speaks OpenAI's chat-completions wire format, so the
OpenAI adapters translate it, reporting ``gen_ai.provider.name = "groq"`` and none of the
``openai.*`` attributes. Groq ends every stream with its usage in the last chunk's
``x_groq.usage`` (and in ``usage`` when ``stream_options.include_usage`` is asked for): it
is read there, so llmtap never adds ``stream_options`` to the request. Audio (transcription,
translation, speech) is not instrumented.
"""

from __future__ import annotations

from llmtap.instrumentation.groq._adapters import GroqChatAdapter, GroqEmbeddingsAdapter
from llmtap.instrumentation.openai._wire import OpenAIWireInstrumentor

_CHAT = "groq.resources.chat.completions"
_EMBEDDINGS = "groq.resources.embeddings"

# (module, class pair, adapter class): each class's ``create``
_TARGETS = (
    (_CHAT, ("Completions", "AsyncCompletions"), GroqChatAdapter),
    (_EMBEDDINGS, ("Embeddings", "AsyncEmbeddings"), GroqEmbeddingsAdapter),
)


class GroqInstrumentor(OpenAIWireInstrumentor):
    """Turns every Groq chat completion and embedding call into a GenAI span with metrics."""

    dependencies = ("groq >= 0.20, < 2",)
    package = "groq"
    targets = _TARGETS
