"""OpenAI SDK instrumentation (Chat Completions, Completions, Responses, Embeddings)."""

from __future__ import annotations

from typing import Any

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.openai._accessors import AccessorPatches
from llmtap.instrumentation.openai._chat import ChatAdapter
from llmtap.instrumentation.openai._completions import CompletionsAdapter
from llmtap.instrumentation.openai._embeddings import EmbeddingsAdapter
from llmtap.instrumentation.openai._responses import ResponsesAdapter, RetrieveAdapter

_CHAT = "openai.resources.chat.completions.completions"
_COMPLETIONS = "openai.resources.completions"
_RESPONSES = "openai.resources.responses.responses"
_BETA_RESPONSES = "openai.resources.beta.responses.responses"
_EMBEDDINGS = "openai.resources.embeddings"

# (module, class pair, methods, adapter class)
_TARGETS = (
    (_CHAT, ("Completions", "AsyncCompletions"), ("create", "parse"), ChatAdapter),
    (_COMPLETIONS, ("Completions", "AsyncCompletions"), ("create",), CompletionsAdapter),
    (_RESPONSES, ("Responses", "AsyncResponses"), ("create", "parse"), ResponsesAdapter),
    (_RESPONSES, ("Responses", "AsyncResponses"), ("retrieve",), RetrieveAdapter),
    (_BETA_RESPONSES, ("Responses", "AsyncResponses"), ("create",), ResponsesAdapter),
    (_BETA_RESPONSES, ("Responses", "AsyncResponses"), ("retrieve",), RetrieveAdapter),
    (_EMBEDDINGS, ("Embeddings", "AsyncEmbeddings"), ("create",), EmbeddingsAdapter),
)


class OpenAIInstrumentor(SdkInstrumentor):
    """Turns every OpenAI SDK call into a GenAI semantic-convention span with metrics."""

    # instrumented; CI runs the suite on 3.x (the openai extra), the GenAI conformance suite
    # checks 2.x
    dependencies = ("openai >= 2.0, < 4",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        if not hasattr(self, "accessors"):
            self.accessors = AccessorPatches()
        for module, (sync_cls, async_cls), methods, adapter_cls in _TARGETS:
            adapter = adapter_cls(settings)
            for method in methods:
                self.patcher.wrap(module, f"{sync_cls}.{method}", sync_wrapper(telemetry, adapter))
                self.patcher.wrap(
                    module, f"{async_cls}.{method}", async_wrapper(telemetry, adapter)
                )
                # accessors the app built before instrument() must reach the patched methods
                self.accessors.install(module, sync_cls, method)
                self.accessors.install(module, async_cls, method)

    def _uninstrument(self, **kwargs: Any) -> None:
        accessors = getattr(self, "accessors", None)
        if accessors is not None:
            accessors.remove()
        super()._uninstrument(**kwargs)
