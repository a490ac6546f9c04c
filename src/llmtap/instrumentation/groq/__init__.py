"""Groq SDK instrumentation (``chat.completions.create`` and ``embeddings.create``).

The Groq SDK is its own package but speaks OpenAI's chat-completions wire format, so the
OpenAI adapters translate it, reporting ``gen_ai.provider.name = "groq"`` and none of the
``openai.*`` attributes. Groq ends every stream with its usage in the last chunk's
``x_groq.usage`` (and in ``usage`` when ``stream_options.include_usage`` is asked for): it
is read there, so llmtap never adds ``stream_options`` to the request. Audio (transcription,
translation, speech) is not instrumented.
"""

from __future__ import annotations

from typing import Any

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.groq._adapters import GroqChatAdapter, GroqEmbeddingsAdapter
from llmtap.instrumentation.openai._accessors import AccessorPatches, response_factories

_CHAT = "groq.resources.chat.completions"
_EMBEDDINGS = "groq.resources.embeddings"

# (module, class pair, adapter class): each class's ``create``
_TARGETS = (
    (_CHAT, ("Completions", "AsyncCompletions"), GroqChatAdapter),
    (_EMBEDDINGS, ("Embeddings", "AsyncEmbeddings"), GroqEmbeddingsAdapter),
)


class GroqInstrumentor(SdkInstrumentor):
    """Turns every Groq chat completion and embedding call into a GenAI span with metrics."""

    dependencies = ("groq >= 0.20, < 2",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        if not hasattr(self, "accessors"):
            self.accessors = AccessorPatches(response_factories("groq"))
        for module, (sync_cls, async_cls), adapter_cls in _TARGETS:
            adapter = adapter_cls(settings)
            self.patcher.wrap(module, f"{sync_cls}.create", sync_wrapper(telemetry, adapter))
            self.patcher.wrap(module, f"{async_cls}.create", async_wrapper(telemetry, adapter))
            # ``with_raw_response`` accessors the app built before instrument() (as for OpenAI)
            self.accessors.install(module, sync_cls, "create")
            self.accessors.install(module, async_cls, "create")

    def _uninstrument(self, **kwargs: Any) -> None:
        accessors = getattr(self, "accessors", None)
        if accessors is not None:
            accessors.remove()
        super()._uninstrument(**kwargs)
