"""LangChain and LangGraph instrumentation, through LangChain's callback system.

llmtap adds one callback handler (``_handler``) to every callback manager LangChain
configures, so every run reports to it without the app passing callbacks. What it records:

- a LangGraph graph run: ``invoke_workflow {graph}``, or ``invoke_agent {name}`` for an agent
  graph (one with a ``ToolNode``, as ``create_react_agent`` builds, one langchain's
  ``create_agent`` marks with ``ls_integration`` and ``lc_agent_name`` in its metadata, or one
  the app names with ``gen_ai.agent.name`` there); a chain the app invokes at the top level:
  ``invoke_workflow {chain}``. ``gen_ai.conversation.id`` is the run's ``thread_id``. An agent
  span sums up its model calls: their provider, input and output tokens, and the last one's
  finish reasons. With content capture, workflow and agent spans carry their input messages
  (a message list, a state's ``messages`` or a text) and their final answer.
- a workflow graph's nodes: ``node {name}`` steps (an agent graph's nodes are plumbing: its
  model and tool calls go straight under the agent span);
- a chat model or LLM run: one ``chat {model}`` (``text_completion``) CLIENT span. When the
  SDK underneath (openai through langchain-openai, anthropic through langchain-anthropic) is
  instrumented by llmtap, its adapter merges into this span (``_framework.RunSpans``) and
  records the request and response; otherwise the span records what LangChain reports
  (provider from ``ls_provider``, usage, finish reasons, output messages, time to first chunk);
- a tool run: ``execute_tool {name}``; a retriever run: ``retrieval {name}`` with documents
  and scores;
- LangChain's internal runs (prompt templates, output parsers, routing lambdas, sequence
  plumbing) make no span unless ``Settings.framework_internal_spans`` is on; their children
  go under the nearest run that has one.

Context: while a runnable's body runs, the span of its run (or its nearest traced ancestor)
is current in the copied context LangChain and LangGraph run it in (``_set_config_context``),
so provider calls, ``llmtap`` steps and other instrumentations inside a node, a tool or a
lambda nest under it, across thread pools and asyncio tasks. A model run's span is current
while the model runs; the async entry points put the caller's context back afterwards (their
end callbacks run in another task). Embeddings have no LangChain callbacks: an instrumented
provider SDK records them under the current span.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry, log_once

_MANAGER = "langchain_core.callbacks.manager"
_CONFIG = "langchain_core.runnables.config"
_CHAT = "langchain_core.language_models.chat_models"
_LLMS = "langchain_core.language_models.llms"
_RETRIEVERS = "langchain_core.retrievers"
# LangGraph's own config context: the current module, then where older releases kept it
_GRAPH_CONFIG = ("langgraph._internal._runnable", "langgraph.utils.runnable")
_PREGEL = ("langgraph.pregel.main", "langgraph.pregel")


class LangChainInstrumentor(SdkInstrumentor):
    """Traces LangChain and LangGraph runs through a callback handler of llmtap's."""

    dependencies = ("langchain-core >= 0.3.0, < 2",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        from llmtap.instrumentation.langchain._graphs import Graphs

        self.graphs = Graphs()
        self.handler: Any = None
        wrap = self.patcher.wrap
        wrap(_MANAGER, "_configure", self._configure)
        wrap(_CONFIG, "_set_config_context", self._config_context)
        for module in _GRAPH_CONFIG:
            wrap(module, "_set_config_context", self._config_context)
        for module in _PREGEL:
            wrap(module, "Pregel.stream", self._graph_run)
            wrap(module, "Pregel.astream", self._graph_run)
        for module, cls in ((_CHAT, "BaseChatModel"), (_LLMS, "BaseLLM")):
            wrap(module, f"{cls}.agenerate", _restoring_call)
            wrap(module, f"{cls}.astream", _restoring_stream)
            wrap(module, f"{cls}.stream", _restoring_sync_stream)
        wrap(_RETRIEVERS, "BaseRetriever.ainvoke", _restoring_call)
        wrap(_CHAT, "BaseChatModel._generate_with_cache", self._model_call)
        wrap(_CHAT, "BaseChatModel._agenerate_with_cache", self._amodel_call)

    def _handler(self) -> Any:
        if self.handler is None:
            from llmtap.instrumentation.langchain._handler import LlmtapCallbackHandler

            self.handler = LlmtapCallbackHandler(self.telemetry, self.graphs)
        return self.handler

    def _configure(self, wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
        manager = wrapped(*args, **kw)
        try:
            if self.telemetry.enabled:
                manager.add_handler(self._handler(), True)
        except Exception as exc:
            log_once("adding llmtap's LangChain callback handler", exc)
        return manager

    def _config_context(
        self, wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any
    ) -> Any:
        """Runs in the copied context a runnable's body runs in: the run's span is made
        current there (never detached: that context is dropped when the body returns)."""
        result = wrapped(*args, **kw)
        try:
            handler = self.handler
            config = args[0] if args else kw.get("config")
            callbacks = config.get("callbacks") if isinstance(config, dict) else None
            run_id = getattr(callbacks, "parent_run_id", None)
            if handler is not None and run_id is not None:
                span = handler.runs.parent_span(run_id)
                if span is not None and span is not trace.get_current_span():
                    otel_context.attach(trace.set_span_in_context(span))
        except Exception as exc:
            log_once("LangChain run context", exc)
        return result

    def _batched_run(self, args: Any, kw: Any) -> Any:
        """The run of one of several model calls that ``generate`` started together (their
        spans are made current one by one, as each call runs), else None."""
        manager = kw.get("run_manager") if "run_manager" in kw else None
        if manager is None and len(args) > 2:
            manager = args[2]
        run_id = getattr(manager, "run_id", None)
        if self.handler is None or run_id is None or not self.handler.runs.attach(run_id):
            return None
        return run_id

    def _model_call(self, wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
        run_id = self._batched_run(args, kw)
        try:
            return wrapped(*args, **kw)
        finally:
            if run_id is not None:
                self.handler.runs.release(run_id)

    def _amodel_call(self, wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
        async def call() -> Any:
            run_id = self._batched_run(args, kw)
            try:
                return await wrapped(*args, **kw)
            finally:
                if run_id is not None:
                    self.handler.runs.release(run_id)

        return call()

    def _graph_run(self, wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
        try:
            config = kw.get("config") if "config" in kw else (args[1] if len(args) > 1 else None)
            name = (config or {}).get("run_name") or instance.get_name()
            self.graphs.add(str(name), _has_tool_node(instance))
        except Exception as exc:
            log_once("LangGraph graph run", exc)
        return wrapped(*args, **kw)


def _has_tool_node(graph: Any) -> bool:
    for node in (getattr(graph, "nodes", None) or {}).values():
        bound = getattr(node, "bound", node)
        if any(cls.__name__ == "ToolNode" for cls in type(bound).__mro__):
            return True
    return False


def _restore(before: otel_context.Context) -> None:
    if otel_context.get_current() is not before:
        otel_context.attach(before)


def _restoring_call(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
    """An async model call: the caller's context comes back once it returns (its run's span
    was made current in this task; the end callback ran in another one)."""

    async def call() -> Any:
        before = otel_context.get_current()
        try:
            return await wrapped(*args, **kw)
        finally:
            _restore(before)

    return call()


def _restoring_sync_stream(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
    """A model stream: between chunks (and after a stream the app leaves unfinished) the
    consumer runs in its own context."""

    def stream() -> Iterator[Any]:
        inner = wrapped(*args, **kw)
        before = otel_context.get_current()
        try:
            while True:
                try:
                    item = next(inner)
                except StopIteration:
                    return
                finally:
                    _restore(before)
                yield item
        finally:
            inner.close()

    return stream()


def _restoring_stream(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
    """An async model stream: between chunks the consumer runs in its own context."""

    async def stream() -> AsyncIterator[Any]:
        inner = wrapped(*args, **kw)
        before = otel_context.get_current()
        try:
            while True:
                try:
                    item = await inner.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    _restore(before)
                yield item
        finally:
            await inner.aclose()

    return stream()
