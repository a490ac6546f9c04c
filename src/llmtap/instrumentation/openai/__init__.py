"""OpenAI SDK instrumentation (Chat Completions, Responses, Embeddings)."""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.openai._chat import ChatAdapter
from llmtap.instrumentation.openai._embeddings import EmbeddingsAdapter
from llmtap.instrumentation.openai._responses import ResponsesAdapter

_CHAT = "openai.resources.chat.completions.completions"
_RESPONSES = "openai.resources.responses.responses"
_BETA_RESPONSES = "openai.resources.beta.responses.responses"
_EMBEDDINGS = "openai.resources.embeddings"

# (module, class pair, methods, adapter class)
_TARGETS = (
    (_CHAT, ("Completions", "AsyncCompletions"), ("create", "parse"), ChatAdapter),
    (_RESPONSES, ("Responses", "AsyncResponses"), ("create", "parse"), ResponsesAdapter),
    (_BETA_RESPONSES, ("Responses", "AsyncResponses"), ("create",), ResponsesAdapter),
    (_EMBEDDINGS, ("Embeddings", "AsyncEmbeddings"), ("create",), EmbeddingsAdapter),
)


class OpenAIInstrumentor(SdkInstrumentor):
    """Turns every OpenAI SDK call into a GenAI semantic-convention span with metrics."""

    dependencies = ("openai >= 2.0, < 4",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        for module, (sync_cls, async_cls), methods, adapter_cls in _TARGETS:
            adapter = adapter_cls(settings)
            for method in methods:
                self.patcher.wrap(module, f"{sync_cls}.{method}", sync_wrapper(telemetry, adapter))
                self.patcher.wrap(
                    module, f"{async_cls}.{method}", async_wrapper(telemetry, adapter)
                )
