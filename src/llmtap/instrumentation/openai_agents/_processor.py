"""llmtap's trace processor for the OpenAI Agents SDK.

It has the methods of ``agents.tracing.TracingProcessor`` without subclassing it (importing
this module never imports the SDK). The SDK calls it next to the processors the app
configured, synchronously, in the task or thread where each trace and span starts and ends.
Its spans are keyed by the SDK's ids (``trace_...``, ``span_...``): a span's parent is its
``parent_id``, else its trace. One processor serves the whole process; ``bind``/``unbind``
switch it on and off (the SDK has no way to take a processor out again).
"""

from __future__ import annotations

import threading
from typing import Any

from llmtap import semconv
from llmtap.instrumentation._framework import RunSpans, add_model_call
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once
from llmtap.instrumentation.openai_agents import _calls, _spans


class AgentsProcessor:
    """Turns the SDK's traces and spans into llmtap spans in the app's OpenTelemetry trace."""

    def __init__(self) -> None:
        self._runs: RunSpans | None = None
        self._conversations: dict[str, str] = {}  # trace id -> its group id
        self._skipped: dict[str, str] = {}  # span id of a span that makes none -> its parent
        self._calls = _calls.PendingCalls()  # the model's tool calls, by the agent's span id
        self._taken: dict[str, tuple[str, _calls.Call]] = {}  # function span -> its call
        self._lock = threading.Lock()

    def bind(self, telemetry: Telemetry) -> None:
        self._runs = RunSpans(telemetry)

    def unbind(self) -> None:
        self._runs = None
        self._conversations.clear()
        self._skipped.clear()
        self._calls.clear()
        self._taken.clear()

    @property
    def bound(self) -> bool:
        return self._runs is not None

    # the TracingProcessor interface ----------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        runs = self._runs
        if runs is None or not runs.telemetry.enabled:
            return
        try:
            group = getattr(trace, "group_id", None)
            if isinstance(group, str) and group:
                with self._lock:
                    self._conversations[trace.trace_id] = group
            runs.open(trace.trace_id, None, _spans.workflow(trace))
        except Exception as exc:
            log_once("openai-agents trace start", exc)

    def on_trace_end(self, trace: Any) -> None:
        runs = self._runs
        if runs is None:
            return
        try:
            with self._lock:
                self._conversations.pop(trace.trace_id, None)
            runs.close(trace.trace_id)
        except Exception as exc:
            log_once("openai-agents trace end", exc)

    def on_span_start(self, span: Any) -> None:
        runs = self._runs
        if runs is None or not runs.telemetry.enabled:
            return
        try:
            self._open(runs, span)
        except Exception as exc:
            log_once("openai-agents span start", exc)

    def on_span_end(self, span: Any) -> None:
        runs = self._runs
        if runs is None:
            return
        try:
            self._close(runs, span)
        except Exception as exc:
            log_once("openai-agents span end", exc)

    def shutdown(self, timeout: float | None = None) -> None:
        """The app's OpenTelemetry providers flush llmtap's spans; nothing is queued here."""

    def force_flush(self) -> None:
        """Nothing is queued here."""

    # internals -------------------------------------------------------------------------

    def _open(self, runs: RunSpans, span: Any) -> None:
        parent = span.parent_id or span.trace_id
        data = span.span_data
        conversation = self._conversations.get(span.trace_id)
        inv = _spans.opening(data, conversation, runs.telemetry.settings)
        if inv is None:
            self._skipped[span.span_id] = parent
            runs.skip(span.span_id, parent)
            return
        if data.type == "function":
            self._take_call(span.span_id, parent, data.name, inv)
        runs.open(span.span_id, parent, inv, attach=data.type in _spans.ATTACHED)

    def _take_call(self, span_id: str, owner: str, name: Any, inv: Invocation) -> None:
        call = self._calls.take(owner, name) if isinstance(name, str) else None
        if call is not None:
            self._taken[span_id] = (owner, call)
            inv.attributes[semconv.TOOL_CALL_ID] = call[0]

    def _settle_call(self, span: Any, inv: Invocation | None) -> None:
        owner, call = self._taken.pop(span.span_id, (None, None))
        if owner is not None and call is not None and inv is not None:
            settled = self._calls.settle(owner, call, span.span_data.input)
            inv.attributes[semconv.TOOL_CALL_ID] = settled[0]

    def _close(self, runs: RunSpans, span: Any) -> None:
        inv = runs.get(span.span_id)
        parent = span.parent_id or span.trace_id
        self._settle_call(span, inv)
        self._calls.forget(span.span_id)  # an agent's span: its calls not run are no more
        if span.span_data.type in _spans.MODEL_SPANS:
            self._calls.add(parent, _calls.made_by(span.span_data))
        if inv is not None:
            self._finish(runs, span, inv)
        else:
            self._skipped.pop(span.span_id, None)
            owner = self._nearest(runs, parent) if span.error else None
            if owner is not None:
                # a span without one of its own (a turn) failed: the span that holds its
                # children (the agent's) records the error
                owner.attributes.setdefault(semconv.ERROR_TYPE, _error_type(span.error))
        runs.close(span.span_id)
        if inv is not None and span.span_data.type in _spans.MODEL_SPANS:
            self._to_agent(runs, parent, inv)

    def _nearest(self, runs: RunSpans, run_id: str | None) -> Invocation | None:
        """The invocation of ``run_id`` or of its nearest ancestor that has one."""
        for _ in range(100):
            if run_id is None:
                return None
            inv = runs.get(run_id)
            if inv is not None:
                return inv
            run_id = self._skipped.get(run_id)
        return None

    def _to_agent(self, runs: RunSpans, parent: str, chat: Invocation) -> None:
        owner = self._nearest(runs, parent)
        if owner is not None and owner.operation == semconv.OP_INVOKE_AGENT:
            add_model_call(owner, chat)

    def _finish(self, runs: RunSpans, span: Any, inv: Invocation) -> None:
        data = span.span_data
        merged = runs.merged(span.span_id)
        _spans.closing(inv, data, merged, runs.telemetry.settings)
        if merged:
            _spans.rename_merged(inv)
            return  # the provider's adapter recorded the outcome, errors included
        if span.error:
            inv.attributes[semconv.ERROR_TYPE] = _error_type(span.error)


def _error_type(error: Any) -> str:
    """The SDK's error message (``Error running tool``, ``Guardrail tripwire triggered``:
    a few fixed texts; what went wrong is in its data, which is not recorded)."""
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or "_OTHER")
