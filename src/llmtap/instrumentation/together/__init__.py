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

from typing import Any

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.openai._accessors import AccessorPatches, response_factories
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


class TogetherInstrumentor(SdkInstrumentor):
    """Turns every Together chat, completion, embedding and rerank call into a GenAI span."""

    dependencies = ("together >= 2.0, < 4",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        if not hasattr(self, "accessors"):
            self.accessors = AccessorPatches(response_factories("together"))
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
