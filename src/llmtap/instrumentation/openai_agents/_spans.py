"""The OpenAI Agents SDK's trace and span data as llmtap invocations.

``opening`` builds the invocation a span starts with (``None``: the span makes no span of its
own and is looked through); ``closing`` adds what the span data holds at its end. Model calls
(``response`` and ``generation`` spans) become the inference span: when llmtap's OpenAI
instrumentation merged into it, the provider's adapter recorded the response and the span data
adds nothing; otherwise the span data's model, usage and output are recorded here.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.trace import SpanKind

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._framework import step_invocation
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation.openai import _chat, _common, _responses

MODEL_SPANS = frozenset({"response", "generation"})
# spans whose start and end bracket one block of the SDK in one task: made current, so what
# runs inside (a tool's own calls, the model request) nests under them
ATTACHED = MODEL_SPANS | {"function", "guardrail", "handoff"}
GUARDRAIL_TRIGGERED = semconv.LLMTAP_GUARDRAIL_TRIGGERED


def workflow(trace: Any) -> Invocation:
    """``invoke_workflow {name}`` for a trace (a ``Runner.run``, or the app's ``trace()``)."""
    extra = {semconv.CONVERSATION_ID: _text(getattr(trace, "group_id", None))}
    return step_invocation("workflow", _text(getattr(trace, "name", None)) or "workflow", extra)


def opening(data: Any, conversation: str | None, settings: Settings) -> Invocation | None:
    kind = getattr(data, "type", None)
    if kind == "agent":
        extra = {semconv.CONVERSATION_ID: conversation}
        return step_invocation("agent", _text(data.name) or "agent", extra)
    if kind == "function":
        extra = {semconv.TOOL_TYPE: "extension" if data.mcp_data else "function"}
        return step_invocation("tool", _text(data.name) or "tool", extra)
    if kind == "handoff":
        return step_invocation("handoff", _text(data.from_agent) or "agent")
    if kind == "guardrail":
        return step_invocation("guardrail", _text(data.name) or "guardrail")
    if kind in MODEL_SPANS:
        return _model_call(data, conversation)
    return None  # task, turn, custom, mcp_tools, speech ...: looked through


def _model_call(data: Any, conversation: str | None) -> Invocation:
    config = getattr(data, "model_config", None) or {}
    impl = config.get("model_impl") if isinstance(config, dict) else None
    model = _text(getattr(data, "model", None))
    inv = Invocation(semconv.OP_CHAT, "openai", model, kind=SpanKind.CLIENT)
    if data.type == "response":
        inv.attributes[semconv.OPENAI_API_TYPE] = "responses"
    elif impl is not None:
        # the SDK's LiteLLM or any-llm model (its OpenAI models name none): the provider is
        # theirs to name (llmtap's LiteLLM instrumentation merges into this span)
        del inv.attributes[semconv.PROVIDER]
    if conversation:
        inv.attributes[semconv.CONVERSATION_ID] = conversation
    return inv


def closing(inv: Invocation, data: Any, merged: bool, settings: Settings) -> None:
    """What the span data holds at the end, added to ``inv`` before it closes."""
    kind = data.type
    capture = settings.capture.any
    if kind == "function" and capture:
        if data.input is not None:
            inv.attributes[semconv.TOOL_CALL_ARGUMENTS] = _arguments(data.input)
        if data.output is not None:
            inv.attributes[semconv.TOOL_CALL_RESULT] = _json(data.output)
    elif kind == "handoff" and data.to_agent and inv.span is not None:
        inv.span.update_name(f"handoff {data.from_agent} -> {data.to_agent}")
    elif kind == "guardrail":
        inv.attributes[GUARDRAIL_TRIGGERED] = bool(data.triggered)
    elif kind == "response" and not merged:
        _record_response(inv, data, settings)
    elif kind == "generation" and not merged:
        _record_generation(inv, data, settings)


class _Capture:
    """What ``_responses.record_response`` reads from its adapter."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


def _record_response(inv: Invocation, data: Any, settings: Settings) -> None:
    response = data.response
    if response is None:
        return
    items = list(getattr(response, "output", None) or ())
    _responses.record_response(inv, response, items, _Capture(settings))
    if settings.capture.any:
        if data.input is not None:
            inv.input_messages = _responses.input_messages(data.input)
        instructions = getattr(response, "instructions", None)
        if isinstance(instructions, str) and instructions:
            inv.system_instructions = [parts.text(instructions)]
        inv.tool_definitions = _responses.tool_definitions(getattr(response, "tools", None))
    _rename(inv, response.model)


def _record_generation(inv: Invocation, data: Any, settings: Settings) -> None:
    """A chat completion of the SDK's chat completions model. Its span data keeps the assistant
    message, or (streamed) a ``Response`` the SDK built of the chunks, whose id is a placeholder
    and whose model is the requested one; the chunks' id is on its output items. Neither keeps
    the choice's finish reason: the output messages, which require one, say "tool_call" for a
    message with tool calls and "stop" for any other (a truncated answer the SDK returns cannot
    be told apart), and gen_ai.response.finish_reasons stays unset."""
    attrs = inv.attributes
    attrs.update(_common.usage_attributes(data.usage))
    output = [item for item in map(parts.as_dict, data.output or ()) if isinstance(item, dict)]
    messages = []
    for item in output:
        if "output" in item:  # a Responses-shaped result (the SDK's chat completions adapter)
            items = [i for i in map(parts.as_dict, item["output"] or ()) if isinstance(i, dict)]
            response_id = _response_id(items)
            if response_id:
                attrs[semconv.RESPONSE_ID] = response_id
            message = parts.message("assistant", _responses._output_parts(items))
            reason = "tool_call" if any(i.get("type") == "function_call" for i in items) else "stop"
            messages.append({**message, "finish_reason": reason})
        elif "role" in item:
            reason = "tool_call" if item.get("tool_calls") else "stop"
            messages += [{**m, "finish_reason": reason} for m in _chat.input_messages([item])]
    if settings.capture.any:
        if data.input:
            inv.input_messages = _chat.input_messages(data.input)
        inv.output_messages = messages or None


def _response_id(items: list[dict[str, Any]]) -> str | None:
    """The chat completion's id the SDK keeps in its output items' ``provider_data``."""
    for item in items:
        data = item.get("provider_data")
        value = data.get("response_id") if isinstance(data, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def rename_merged(inv: Invocation) -> None:
    """The provider's adapter named the model on the merged span: so does the span's name."""
    attributes = getattr(inv.span, "attributes", None) or {}
    _rename(inv, attributes.get(semconv.REQUEST_MODEL) or attributes.get(semconv.RESPONSE_MODEL))


def _rename(inv: Invocation, model: Any) -> None:
    if inv.span is not None and isinstance(model, str) and model and inv.name == semconv.OP_CHAT:
        inv.name = f"{semconv.OP_CHAT} {model}"
        inv.span.update_name(inv.name)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _arguments(value: Any) -> str:
    """The model's arguments text as it is when it is JSON (it nearly always is)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return _json(value)
        return value
    return _json(value)


def _json(value: Any) -> str:
    try:
        return json.dumps(parts.as_dict(value), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return json.dumps(str(value), ensure_ascii=False)
