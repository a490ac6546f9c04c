"""The span and event handlers llmtap adds to LlamaIndex's root dispatcher (imported only
once the app has imported LlamaIndex)."""

from __future__ import annotations

import inspect
from typing import Any

from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from pydantic import PrivateAttr

from llmtap.instrumentation._invocation import log_once
from llmtap.instrumentation.llama_index._runs import LlamaIndexRuns


class LlmtapSpanHandler(BaseSpanHandler[Any]):
    """Dispatcher spans to llmtap's runs; keeps none of LlamaIndex's span records."""

    _runs: Any = PrivateAttr(default=None)

    def __init__(self, runs: LlamaIndexRuns) -> None:
        super().__init__()
        self._runs = runs

    @classmethod
    def class_name(cls) -> str:
        return "LlmtapSpanHandler"

    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._runs.enter(id_, parent_id, instance, bound_args)
        except Exception as exc:
            log_once("llama_index span enter", exc)

    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        result: Any = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._runs.exit(id_, result)
        except Exception as exc:
            log_once("llama_index span exit", exc)

    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._runs.drop(id_, err)
        except Exception as exc:
            log_once("llama_index span drop", exc)

    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None


class LlmtapEventHandler(BaseEventHandler):
    """Dispatcher events (an LLM call's end, a stream's error) to llmtap's runs."""

    _runs: Any = PrivateAttr(default=None)

    def __init__(self, runs: LlamaIndexRuns) -> None:
        super().__init__()
        self._runs = runs

    @classmethod
    def class_name(cls) -> str:
        return "LlmtapEventHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        try:
            self._runs.event(event)
        except Exception as exc:
            log_once("llama_index event", exc)
