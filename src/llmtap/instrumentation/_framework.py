"""Spans of an agent framework's runs: one mechanism for callback- and event-style frameworks.

A framework (LangChain, LlamaIndex, the OpenAI Agents SDK, ...) reports a run's start and its
end as two separate calls, each naming the run and its parent by an id. ``RunSpans`` keeps the
open invocation of each run, finds a new run's parent span through the parent run ids (a run
that makes no span, such as a prompt template, is looked through), and ends each span exactly
once. ``step_invocation`` builds the invocation of a workflow, agent, tool or retrieval step in
the same shape as the app's own ``llmtap.workflow``/``llmtap.agent``/``llmtap.tool`` steps.

A run that wraps a model call (a framework's chat model) opens its inference span with
``attach=True``: the span becomes current, so when the provider SDK underneath is instrumented
too, the provider's adapter merges into it (the ``_invocation`` foreign-span rule) and the model
call has exactly one inference span. The provider's request and response details and the GenAI
metrics then come from the provider's adapter; the run's own response attributes, content and
metrics are recorded only when no provider adapter merged (an SDK llmtap does not instrument).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from llmtap import semconv
from llmtap.instrumentation._invocation import FRAMEWORK_RUN_KEY, Invocation, Telemetry, log_once

# gen_ai.provider.name of a model call whose provider the framework cannot name (its own
# models, mocks, a custom class): v1.41 lists no fallback member, only "otherwise a custom
# value MAY be used"; llmtap uses the semantic conventions' usual fallback spelling
OTHER_PROVIDER = "_OTHER"

# step kind -> (operation, the attribute that names it, span kind); other kinds are custom steps
STEP_KINDS: dict[str, tuple[str, str, SpanKind]] = {
    "workflow": (semconv.OP_INVOKE_WORKFLOW, semconv.WORKFLOW_NAME, SpanKind.INTERNAL),
    "agent": (semconv.OP_INVOKE_AGENT, semconv.AGENT_NAME, SpanKind.INTERNAL),
    "tool": (semconv.OP_EXECUTE_TOOL, semconv.TOOL_NAME, SpanKind.INTERNAL),
    "retrieval": (semconv.OP_RETRIEVAL, semconv.DATA_SOURCE_ID, SpanKind.CLIENT),
}


def step_invocation(kind: str, name: str, extra: dict[str, Any] | None = None) -> Invocation:
    """The invocation of a step that is no model call: ``invoke_agent {name}`` and so on, or
    ``{kind} {name}`` with ``llmtap.step.kind`` for a kind outside ``STEP_KINDS``."""
    spec = STEP_KINDS.get(kind)
    if spec is None:
        inv = Invocation(kind, "", name=f"{kind} {name}", kind=SpanKind.INTERNAL)
        inv.attributes[semconv.LLMTAP_STEP_KIND] = kind
    else:
        operation, name_key, span_kind = spec
        inv = Invocation(operation, "", name=f"{operation} {name}", kind=span_kind)
        inv.attributes[name_key] = name
    del inv.attributes[semconv.PROVIDER]
    for key, value in (extra or {}).items():
        if value is not None:
            inv.attributes[key] = value
    return inv


def _here() -> object:
    """The asyncio task, else the thread, that is running: where a context token may be reset."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task if task is not None else threading.get_ident()


class _Run:
    __slots__ = ("inv", "merged", "parent", "token", "where")

    def __init__(self, inv: Invocation | None, parent: Hashable | None) -> None:
        self.inv = inv
        self.parent = parent
        self.merged = False  # a provider adapter merged into this run's span
        self.token: object | None = None
        self.where: object | None = None

    @property
    def span(self) -> trace.Span | None:
        return self.inv.span if self.inv is not None else None


class RunSpans:
    """The open spans of one framework's runs, keyed by the framework's run ids."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self._runs: dict[Hashable, _Run] = {}
        self._lock = threading.Lock()

    def open(
        self,
        run_id: Hashable,
        parent_id: Hashable | None,
        inv: Invocation,
        *,
        attach: bool = False,
    ) -> Invocation:
        """Start ``inv``'s span under the nearest parent run with a span (else the current
        span); ``attach`` makes it current until ``close`` (in the same task or thread), for
        the provider call inside to nest under it or merge into it."""
        parent = self.parent_span(parent_id)
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        self.telemetry.start(inv, attach=False, parent=ctx)
        run = _Run(inv, parent_id)
        if attach:
            _attach(run)
        with self._lock:
            self._runs[run_id] = run
        return inv

    def attach(self, run_id: Hashable) -> bool:
        """Make an open run's span current here, as ``open(..., attach=True)`` does, unless it
        was made current already (one of several model calls a framework starts together,
        each made current as it runs); ``release`` or ``close`` ends that. True if it did."""
        run = self._runs.get(run_id)
        if run is None or run.token is not None:
            return False
        _attach(run)
        return run.token is not None

    def skip(self, run_id: Hashable, parent_id: Hashable | None) -> None:
        """A run that makes no span: its children's spans go under its parent's."""
        with self._lock:
            self._runs[run_id] = _Run(None, parent_id)

    def get(self, run_id: Hashable) -> Invocation | None:
        run = self._runs.get(run_id)
        return run.inv if run is not None else None

    def release(self, run_id: Hashable) -> None:
        """The run's span stops being current but stays open: a stream the app iterates
        after the call returned ends it later (``close``)."""
        run = self._runs.get(run_id)
        if run is not None:
            self._reset(run)

    def parent_span(self, run_id: Hashable | None) -> trace.Span | None:
        """The span of ``run_id`` or of its nearest ancestor run that has one."""
        seen = 0
        while run_id is not None and seen < 1000:
            run = self._runs.get(run_id)
            if run is None:
                return None
            if run.inv is not None and run.inv.span is not None:
                return run.inv.span
            run_id, seen = run.parent, seen + 1
        return None

    def merged(self, run_id: Hashable) -> bool:
        """Whether a provider adapter merged into the run's span (it records the response)."""
        run = self._runs.get(run_id)
        return bool(run and run.merged)

    def close(self, run_id: Hashable, error: BaseException | None = None) -> Invocation | None:
        """End the run's span (once); a skipped or unknown run is forgotten."""
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None or run.inv is None:
            return None
        self._reset(run)
        inv = run.inv
        if run.merged:
            _leave_to_provider(inv)
        if error is None:
            self.telemetry.stop(inv)
        else:
            self.telemetry.fail(inv, error)
        if run.merged and inv.span is not None:
            inv.span.end()
        return inv

    def _reset(self, run: _Run) -> None:
        token, run.token = run.token, None
        if token is None or run.where != _here():
            return  # the end came in another task or thread: that context is not ours to reset
        try:
            otel_context.detach(token)
        except Exception as exc:
            log_once("restoring the context after a framework run", exc)

    def __len__(self) -> int:
        return len(self._runs)


def _attach(run: _Run) -> None:
    if run.inv is not None and run.inv.span is not None:
        current = trace.set_span_in_context(run.inv.span)
        run.token = otel_context.attach(otel_context.set_value(FRAMEWORK_RUN_KEY, run, current))
        run.where = _here()


def _leave_to_provider(inv: Invocation) -> None:
    """The provider's adapter recorded the response, content and metrics on this span: the
    run adds nothing after its start, and ends the span itself (no metrics twice)."""
    for key in list(inv.attributes)[inv.opened_with :]:
        del inv.attributes[key]
    inv.input_messages = inv.output_messages = None
    inv.system_instructions = inv.tool_definitions = None
    inv.own_span = False


def add_model_call(agent: Invocation, call: Invocation) -> None:
    """An agent's span sums up its model calls: the provider they went to, the tokens they
    used, how the last one ended. Read from the call's span, where a provider adapter that
    merged into it recorded them too. No model: the cost stage prices the calls, not the
    agent again."""
    recorded = getattr(call.span, "attributes", None) or call.attributes
    attrs = agent.attributes
    provider = recorded.get(semconv.PROVIDER)
    if provider:
        attrs.setdefault(semconv.PROVIDER, provider)
    for key in (semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS):
        if isinstance(recorded.get(key), int):
            attrs[key] = attrs.get(key, 0) + recorded[key]
    finish = recorded.get(semconv.RESPONSE_FINISH_REASONS)
    if finish:
        attrs[semconv.RESPONSE_FINISH_REASONS] = list(finish)
