"""Groq on the OpenAI adapters: the provider's name, no ``openai.*`` attributes, and the
stream's usage from ``x_groq.usage``."""

from __future__ import annotations

from typing import Any

from llmtap.instrumentation._stream import is_stream
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.openai._chat import ChatAccumulator, ChatAdapter
from llmtap.instrumentation.openai._embeddings import EmbeddingsAdapter

PROVIDER = "groq"


class GroqChatAdapter(ChatAdapter):
    provider = PROVIDER
    openai_attributes = False
    stream_usage = "sent"

    def stream(self, call: Call, result: Any) -> GroqChatAccumulator | None:
        if is_stream(result):
            return GroqChatAccumulator(self.settings, call.options)
        return None


class GroqChatAccumulator(ChatAccumulator):
    """A chat stream whose last chunk carries the usage in ``x_groq.usage`` (a top-level
    ``usage``, sent when the app asked for it, wins)."""

    __slots__ = ()

    def add(self, chunk: Any) -> bool:
        shown = super().add(chunk)
        if self.usage is None:
            usage = getattr(getattr(chunk, "x_groq", None), "usage", None)
            if usage is not None:
                self.usage = usage
        return shown


class GroqEmbeddingsAdapter(EmbeddingsAdapter):
    provider = PROVIDER
