"""OpenAI Agents SDK instrumentation (``openai-agents``, imported as ``agents``): its tracing
processor interface, so agent runs, handoffs, guardrails, tool calls and model calls become
spans in the app's OpenTelemetry trace.

llmtap adds one trace processor of its own next to the ones the app configured (the SDK's
OpenAI exporter by default): the SDK's own tracing and exporting stay as the app set them.
The processor is added to the SDK's ``DefaultTraceProvider`` when it creates its first trace
(importing the SDK creates nothing, and neither does llmtap), and added again after the app
replaces the processor list (``set_trace_processors``), after the app's processors. Turning
the SDK's tracing off (``set_tracing_disabled``, ``OPENAI_AGENTS_DISABLE_TRACING``,
``RunConfig(tracing_disabled=True)``) turns these spans off too: the SDK then reports nothing
to any processor. A custom ``TraceProvider`` of the app's own is not instrumented.

- A trace (``Runner.run``'s, or the app's ``agents.trace(...)`` around several runs):
  ``invoke_workflow {workflow name}``, under the app's current span;
  ``gen_ai.conversation.id`` from the trace's ``group_id``.
- An agent span: ``invoke_agent {agent name}`` (``gen_ai.agent.name``; the SDK's span data
  has no agent id, nor the model). When it ends it sums up its model calls:
  ``gen_ai.provider.name`` they went to, ``gen_ai.usage.*_tokens`` of all of them, the last
  one's ``gen_ai.response.finish_reasons`` (no model: the cost stage prices the model calls,
  not the agent again). An error the SDK puts on a turn (a guardrail's tripwire) is the
  agent span's.
- A function tool: ``execute_tool {tool}`` (``gen_ai.tool.type`` ``function``, or
  ``extension`` for an MCP server's tool); arguments and result with content capture on;
  ``gen_ai.tool.call.id`` from the model call that made the call (``_calls``: the SDK's span
  data has none of its own, the model call's keeps it while the SDK includes data in traces).
- A handoff: ``handoff {from} -> {to}``, a guardrail: ``guardrail {name}`` with
  ``llmtap.guardrail.triggered`` (``llmtap.step.kind`` ``handoff`` / ``guardrail``).
- A model call (``response`` / ``generation`` span): the ``chat`` span. It is current while
  the SDK calls the model, so llmtap's OpenAI instrumentation merges into it (one ``chat``
  span per model call, with the request, response and metrics from the OpenAI adapter); when
  nothing merged (that instrumentation off, a model llmtap does not instrument) the span
  data's model, usage and output are recorded instead. The SDK's ``LitellmModel`` calls merge
  the same way into llmtap's LiteLLM instrumentation (which names the provider).
- The SDK's task, turn, custom and MCP list-tools spans make no span (their children go under
  their parent).
"""

from __future__ import annotations

import weakref
from typing import Any

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry, log_once
from llmtap.instrumentation.openai_agents._processor import AgentsProcessor

_PROVIDER_MODULE = "agents.tracing.provider"
PROCESSOR = AgentsProcessor()
_seen: weakref.WeakSet[Any] = weakref.WeakSet()  # providers whose processors cannot be read


def _ensure_registered(provider: Any) -> None:
    """Add llmtap's processor to ``provider`` unless it holds it already."""
    held = getattr(getattr(provider, "_multi_processor", None), "_processors", None)
    if isinstance(held, tuple):
        if not any(p is PROCESSOR for p in held):
            provider.register_processor(PROCESSOR)
    elif provider not in _seen:
        _seen.add(provider)
        provider.register_processor(PROCESSOR)


def _create_trace(wrapped: Any, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
    if PROCESSOR.bound:
        try:
            _ensure_registered(instance)
        except Exception as exc:
            log_once("adding llmtap's openai-agents trace processor", exc)
    return wrapped(*args, **kwargs)


def _set_processors(wrapped: Any, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    if PROCESSOR.bound:
        try:
            _ensure_registered(instance)
        except Exception as exc:
            log_once("keeping llmtap's openai-agents trace processor", exc)
    return result


class OpenAIAgentsInstrumentor(SdkInstrumentor):
    """Adds llmtap's trace processor to the OpenAI Agents SDK."""

    # 0.21 is the first release that installs with openai 3.x (earlier ones pin openai < 3)
    dependencies = ("openai-agents >= 0.21, < 1",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        PROCESSOR.bind(telemetry)
        self.patcher.wrap(_PROVIDER_MODULE, "DefaultTraceProvider.create_trace", _create_trace)
        self.patcher.wrap(_PROVIDER_MODULE, "DefaultTraceProvider.set_processors", _set_processors)

    def _uninstrument(self, **kwargs: Any) -> None:
        PROCESSOR.unbind()
        super()._uninstrument(**kwargs)
