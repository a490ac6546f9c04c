"""The callback handler llmtap adds to every LangChain callback manager.

Each LangChain run (chain, graph, node, chat model, LLM, tool, retriever) reports its start
and end here with its run id and its parent's; ``RunSpans`` turns the runs that matter into
spans and looks through the others. Every callback catches its own errors: LangChain would
log them, llmtap logs them once and the app goes on.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from llmtap import semconv
from llmtap.instrumentation._framework import RunSpans, add_model_call, step_invocation
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once
from llmtap.instrumentation._retrieval import record_documents
from llmtap.instrumentation.langchain import _messages
from llmtap.instrumentation.langchain._graphs import Graphs

# metadata keys an app names a graph run as an agent with, and a conversation with
AGENT_NAME_KEY = "gen_ai.agent.name"
# langchain 1.x ``create_agent``: its graph's metadata (inherited by every run inside it)
CREATE_AGENT = "langchain_create_agent"
CREATE_AGENT_NAME_KEY = "lc_agent_name"
CONVERSATION_KEYS = ("thread_id", "conversation_id", "session_id")
# LangGraph's START and END (older releases run START as a node of its own)
_GRAPH_ENDS = frozenset({"__start__", "__end__"})
# LangGraph's control flow (interrupts, Command to a parent graph) raised through runs
_CONTROL_FLOW = frozenset({"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand"})
_TOP_OPERATIONS = frozenset({semconv.OP_INVOKE_AGENT, semconv.OP_INVOKE_WORKFLOW})
_MODEL_OPERATIONS = frozenset({semconv.OP_CHAT, semconv.OP_TEXT_COMPLETION})


def _node_run(name: str, tags: list[str] | None, metadata: dict[str, Any]) -> bool:
    """A LangGraph node's own run (not a runnable inside it)."""
    if metadata.get("langgraph_node") != name:
        return False
    return any(t.startswith("graph:step:") for t in tags or ())


def _conversation(metadata: dict[str, Any]) -> str | None:
    for key in CONVERSATION_KEYS:
        value = metadata.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return str(value)
    return None


def _run_name(serialized: Any, kwargs: dict[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if not name and isinstance(serialized, dict):
        name = serialized.get("name")
        if not name and isinstance(serialized.get("id"), list) and serialized["id"]:
            name = serialized["id"][-1]
    return str(name or default)


def _agent_name(name: str, parent: UUID | None, meta: dict[str, Any]) -> str:
    if parent is None and meta.get(AGENT_NAME_KEY):
        return str(meta[AGENT_NAME_KEY])
    if meta.get("ls_integration") == CREATE_AGENT and meta.get(CREATE_AGENT_NAME_KEY):
        return str(meta[CREATE_AGENT_NAME_KEY])
    return name


def _is_control_flow(error: BaseException) -> bool:
    return any(cls.__name__ in _CONTROL_FLOW for cls in type(error).__mro__)


class LlmtapCallbackHandler(BaseCallbackHandler):
    """Runs to spans. ``run_inline``: async runs call it in the caller's task, in order."""

    run_inline = True
    raise_error = False

    def __init__(self, telemetry: Telemetry, graphs: Graphs) -> None:
        super().__init__()
        self.telemetry = telemetry
        self.runs = RunSpans(telemetry)
        self.graphs = graphs
        # agent graph runs: their nodes are plumbing (the agent's chat and tool spans suffice)
        self._agent_runs: set[UUID] = set()
        # run -> the agent run it runs in (its nearest): the agent sums up its model calls
        self._agent_of: dict[UUID, UUID] = {}
        # create_agent runs -> their lc_agent_name (the runs inside inherit both markers)
        self._created: dict[UUID, Any] = {}

    @property
    def _capture(self) -> bool:
        return self.telemetry.settings.capture.any

    @property
    def _internal(self) -> bool:
        return self.telemetry.settings.framework_internal_spans

    def _open(
        self,
        run_id: UUID,
        parent: UUID | None,
        inv: Invocation,
        meta: dict[str, Any],
        *,
        attach: bool = False,
    ) -> None:
        self._track(run_id, parent)
        conversation = _conversation(meta)
        if conversation is not None:
            inv.attributes.setdefault(semconv.CONVERSATION_ID, conversation)
        self.runs.open(run_id, parent, inv, attach=attach)

    def _track(self, run_id: UUID, parent: UUID | None) -> None:
        if run_id in self._agent_runs:
            owner: UUID | None = run_id
        else:
            owner = self._agent_of.get(parent) if parent is not None else None
        if owner is not None:
            self._agent_of[run_id] = owner

    # chains, graphs and nodes ----------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.telemetry.enabled:
            return
        try:
            self._chain_start(
                serialized, inputs, run_id, parent_run_id, tags, metadata or {}, kwargs
            )
        except Exception as exc:
            log_once("LangChain on_chain_start", exc)

    def _chain_start(
        self,
        serialized: Any,
        inputs: Any,
        run_id: UUID,
        parent: UUID | None,
        tags: list[str] | None,
        meta: dict[str, Any],
        kwargs: dict[str, Any],
    ) -> None:
        name = _run_name(serialized, kwargs, "chain")
        kind = self._chain_kind(name, parent, tags, meta)
        if kind is None:
            self._track(run_id, parent)
            self.runs.skip(run_id, parent)
            return
        if kind == "agent":
            self._agent_runs.add(run_id)
            if meta.get("ls_integration") == CREATE_AGENT:
                self._created[run_id] = meta.get(CREATE_AGENT_NAME_KEY)
            name = _agent_name(name, parent, meta)
        inv = step_invocation(kind, name)
        if self._capture and kind in ("agent", "workflow"):
            system, others = _messages.chain_input(inputs)
            inv.system_instructions = system or None
            inv.input_messages = others or None
        self._open(run_id, parent, inv, meta)

    def _chain_kind(
        self, name: str, parent: UUID | None, tags: list[str] | None, meta: dict[str, Any]
    ) -> str | None:
        """``workflow``/``agent`` for a graph or a top-level chain, ``node`` for a graph's
        node, ``chain`` for internal runs when they are traced, else None (no span)."""
        if _node_run(name, tags, meta):
            if name in _GRAPH_ENDS or (parent in self._agent_runs and not self._internal):
                return None
            return "node"
        marker = meta.get("ls_integration")
        created = marker == CREATE_AGENT and not self._inherited(parent, meta)
        if marker in ("langgraph", CREATE_AGENT) or parent is None:
            graph = self.graphs.kind(name)
            named = parent is None and bool(meta.get(AGENT_NAME_KEY))
            if graph is not None:
                return "agent" if created or named else graph
            if parent is None:
                return "agent" if created or named else "workflow"
        return "chain" if self._internal else None

    def _inherited(self, parent: UUID | None, meta: dict[str, Any]) -> bool:
        """Whether a run's create_agent markers are those of the agent it runs in (a graph
        that agent runs inherits them: it is no agent for them)."""
        owner = self._agent_of.get(parent) if parent is not None else None
        if owner is None or owner not in self._created:
            return False
        return bool(self._created[owner] == meta.get(CREATE_AGENT_NAME_KEY))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            inv = self.runs.get(run_id)
            if inv is not None and self._capture and inv.operation in _TOP_OPERATIONS:
                inv.output_messages = _messages.chain_output(outputs) or None
        except Exception as exc:
            log_once("LangChain on_chain_end", exc)
        self._close(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, None if _is_control_flow(error) else error)

    def _close(self, run_id: UUID, error: BaseException | None) -> Invocation | None:
        try:
            self._agent_runs.discard(run_id)
            self._created.pop(run_id, None)
            owner = self._agent_of.pop(run_id, None)
            inv = self.runs.close(run_id, error)
            if inv is not None and owner is not None and inv.operation in _MODEL_OPERATIONS:
                self._to_agent(owner, inv)
            return inv
        except Exception as exc:
            log_once("LangChain run end", exc)
            return None

    def _to_agent(self, owner: UUID, call: Invocation) -> None:
        agent = self.runs.get(owner)
        if agent is not None and agent.operation == semconv.OP_INVOKE_AGENT:
            add_model_call(agent, call)

    # chat models and LLMs ----------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.telemetry.enabled:
            return
        try:
            inv = self._model_invocation(semconv.OP_CHAT, serialized, metadata or {}, kwargs)
            if self._capture and messages:
                system, others = _messages.split_messages(messages[0])
                inv.system_instructions = system or None
                inv.input_messages = others
            self._open_model(run_id, parent_run_id, inv, metadata or {}, kwargs)
        except Exception as exc:
            log_once("LangChain on_chat_model_start", exc)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.telemetry.enabled:
            return
        try:
            inv = self._model_invocation(
                semconv.OP_TEXT_COMPLETION, serialized, metadata or {}, kwargs
            )
            if self._capture and prompts:
                inv.input_messages = [_messages.message_from_text(prompts[0])]
            self._open_model(run_id, parent_run_id, inv, metadata or {}, kwargs)
        except Exception as exc:
            log_once("LangChain on_llm_start", exc)

    def _model_invocation(
        self, operation: str, serialized: Any, meta: dict[str, Any], kwargs: dict[str, Any]
    ) -> Invocation:
        params = kwargs.get("invocation_params") or {}
        model = meta.get("ls_model_name") or params.get("model") or params.get("model_name")
        inv = Invocation(
            operation, _messages.provider(meta, serialized), str(model) if model else None
        )
        attrs = inv.attributes
        for value, key in (
            (meta.get("ls_temperature"), semconv.REQUEST_TEMPERATURE),
            (meta.get("ls_max_tokens"), semconv.REQUEST_MAX_TOKENS),
            (params.get("top_p"), semconv.REQUEST_TOP_P),
        ):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attrs[key] = value
        stop = meta.get("ls_stop")
        if isinstance(stop, list) and stop:
            attrs[semconv.REQUEST_STOP_SEQUENCES] = [str(s) for s in stop]
        return inv

    def _open_model(
        self,
        run_id: UUID,
        parent: UUID | None,
        inv: Invocation,
        meta: dict[str, Any],
        kwargs: dict[str, Any],
    ) -> None:
        # its span is made current for the provider SDK to merge into; several message lists
        # in one generate() call are each made current as their call runs (``__init__``)
        attach = (kwargs.get("batch_size") or 1) == 1
        self._open(run_id, parent, inv, meta, attach=attach)

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            inv = self.runs.get(run_id)
            if inv is not None and not self.runs.merged(run_id):
                self.telemetry.chunk(inv)
        except Exception as exc:
            log_once("LangChain on_llm_new_token", exc)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            inv = self.runs.get(run_id)
            if inv is not None and not self.runs.merged(run_id):
                attrs, outputs = _messages.response(response, self._capture)
                inv.attributes.update(attrs)
                inv.output_messages = outputs or None
        except Exception as exc:
            log_once("LangChain on_llm_end", exc)
        self._close(run_id, None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)

    # tools ---------------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.telemetry.enabled:
            return
        try:
            name = _run_name(serialized, kwargs, "tool")
            extra: dict[str, Any] = {
                semconv.TOOL_TYPE: "function",
                semconv.TOOL_CALL_ID: kwargs.get("tool_call_id"),
            }
            description = (serialized or {}).get("description")
            if isinstance(description, str) and description:
                extra[semconv.TOOL_DESCRIPTION] = description
            inv = step_invocation("tool", name, extra)
            if self._capture:
                args = inputs if inputs is not None else input_str
                inv.attributes[semconv.TOOL_CALL_ARGUMENTS] = _messages.as_text(args)
            self._open(run_id, parent_run_id, inv, metadata or {})
        except Exception as exc:
            log_once("LangChain on_tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            inv = self.runs.get(run_id)
            if inv is not None and self._capture:
                inv.attributes[semconv.TOOL_CALL_RESULT] = _messages.as_json(output)
        except Exception as exc:
            log_once("LangChain on_tool_end", exc)
        self._close(run_id, None)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, None if _is_control_flow(error) else error)

    # retrievers ----------------------------------------------------------------------------

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.telemetry.enabled:
            return
        try:
            inv = step_invocation("retrieval", _run_name(serialized, kwargs, "retriever"))
            if self._capture and isinstance(query, str):
                inv.attributes[semconv.RETRIEVAL_QUERY_TEXT] = query
            # current while it runs: the embeddings call of a vector store goes under it
            self._open(run_id, parent_run_id, inv, metadata or {}, attach=True)
        except Exception as exc:
            log_once("LangChain on_retriever_start", exc)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            inv = self.runs.get(run_id)
            if inv is not None:
                docs = [_messages.document(d, i) for i, d in enumerate(documents or ())]
                record_documents(inv, docs, self._capture)
        except Exception as exc:
            log_once("LangChain on_retriever_end", exc)
        self._close(run_id, None)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)
