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

_CHAT = "openai.resources.chat.completions.completions"


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
        chat = ChatAdapter(settings)
        wrap = self._patcher.wrap
        for method in ("create", "parse"):
            wrap(_CHAT, f"Completions.{method}", sync_wrapper(telemetry, chat))
            wrap(_CHAT, f"AsyncCompletions.{method}", async_wrapper(telemetry, chat))

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patcher.unpatch()
