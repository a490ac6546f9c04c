"""OpenAI SDK instrumentation (Chat Completions, Responses, Embeddings)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from llmtap.config import Settings
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._patch import Patcher
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


class OpenAIInstrumentor(BaseInstrumentor):
    """Turns every OpenAI SDK call into a GenAI semantic-convention span with metrics."""

    def __init__(self) -> None:
        super().__init__()
        self._patcher = Patcher()

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 2.0, < 4",)

    def _instrument(self, **kwargs: Any) -> None:
        settings = kwargs.get("settings") or Settings.from_env()
        telemetry = Telemetry(
            settings,
            kwargs.get("tracer_provider"),
            kwargs.get("meter_provider"),
            kwargs.get("logger_provider"),
        )
        for module, (sync_cls, async_cls), methods, adapter_cls in _TARGETS:
            adapter = adapter_cls(settings)
            for method in methods:
                self._patcher.wrap(module, f"{sync_cls}.{method}", sync_wrapper(telemetry, adapter))
                self._patcher.wrap(
                    module, f"{async_cls}.{method}", async_wrapper(telemetry, adapter)
                )

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patcher.unpatch()
