"""LlamaIndex instrumentation through its instrumentation dispatcher.

llmtap adds one span handler and one event handler to LlamaIndex's root dispatcher (when the
app imports ``llama_index.core``; nothing is patched). Each dispatcher span carries its id and
its parent's, so the spans follow LlamaIndex's own nesting across threads, ``asyncio`` tasks
and workflow steps. What becomes a span (and what is looked through) is in ``_runs``:

- query engine ``query``: ``invoke_workflow {engine class}`` (a query coordinates retrieval,
  reranking and an LLM's synthesis into one answer: the semconv's workflow, "a coordinated
  process composed of ... operations involving generative AI"); its input and answer are
  ``gen_ai.input.messages``/``gen_ai.output.messages`` when content capture is on;
- retriever ``retrieve``: ``retrieval {retriever class}`` with ``gen_ai.retrieval.query.text``
  and ``gen_ai.retrieval.documents`` (node ids, scores, text; content on);
- node postprocessors (rerankers): ``rerank {class}`` steps with the documents kept;
- LLM chat/complete: exactly one inference span per model call. The span is current while
  the call runs, so llmtap's instrumentation of the provider SDK underneath (``anthropic``
  under ``llama-index-llms-anthropic``, ``ollama`` under ``llama-index-embeddings-ollama``)
  merges into it and records the request and response; an LLM no llmtap instrumentation sees
  (``MockLLM``, a custom LLM) has its model, usage and output recorded from LlamaIndex's
  events. A streamed call's span ends with the stream, when the app closes it, or when the
  app drops it unread (garbage-collected), with ``llmtap.stream.end`` saying which;
- embeddings: ``embeddings {model}``; tools: ``execute_tool {name}``; workflow runs:
  ``invoke_agent {name}`` for agents, ``invoke_workflow {class}`` for other workflows.

Splitters, prompt programs, synthesizers, workflow steps and LlamaIndex's other internal
spans are no spans of llmtap's.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import wrapt

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry, log_once
from llmtap.instrumentation.llama_index._runs import LlamaIndexRuns

_MODULE = "llama_index.core.instrumentation"


class LlamaIndexInstrumentor(SdkInstrumentor):
    """Adds llmtap's span and event handlers to LlamaIndex's root dispatcher."""

    # 0.12 brought the workflow agents (FunctionAgent, AgentWorkflow); the dispatcher's span
    # handler and event API used here is the same from 0.10.4x on
    dependencies = ("llama-index-core >= 0.12",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        self._runs = LlamaIndexRuns(telemetry)
        self._added: tuple[Any, Any, Any] | None = None
        self._armed = True
        module = sys.modules.get(_MODULE)
        if module is not None:
            self._add(module)
        elif not getattr(self, "_hooked", False):
            self._hooked = True  # wrapt cannot remove a hook: it checks ``_armed``
            wrapt.register_post_import_hook(self._imported, _MODULE)

    def _imported(self, module: ModuleType) -> None:
        try:
            if self._armed and self._added is None:
                self._add(module)
        except Exception as exc:
            log_once("adding llmtap's LlamaIndex handlers", exc)

    def _add(self, module: ModuleType) -> None:
        if not self.sdk_supported():
            return
        from llmtap.instrumentation.llama_index._handlers import (
            LlmtapEventHandler,
            LlmtapSpanHandler,
        )

        root = module.get_dispatcher()
        span_handler = LlmtapSpanHandler(self._runs)
        event_handler = LlmtapEventHandler(self._runs)
        root.add_span_handler(span_handler)
        root.add_event_handler(event_handler)
        self._added = (root, span_handler, event_handler)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._armed = False
        added, self._added = self._added, None
        if added is not None:
            root, span_handler, event_handler = added
            root.span_handlers = [h for h in root.span_handlers if h is not span_handler]
            root.event_handlers = [h for h in root.event_handlers if h is not event_handler]
        super()._uninstrument(**kwargs)
