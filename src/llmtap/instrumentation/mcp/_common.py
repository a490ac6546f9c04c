"""What MCP client and server spans share: the invocation, content encoding, error names."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once

TOOLS_CALL = "tools/call"
# the request methods whose params.name is the span's target (MCP semconv v1.41)
NAMED_TARGETS = {TOOLS_CALL: semconv.TOOL_NAME, "prompts/get": semconv.PROMPT_NAME}
TOOL_ERROR = "tool_error"  # error.type of a CallToolResult with isError (MCP semconv)


def off(telemetry: Telemetry) -> bool:
    """Uninstrumented (a method bound before), or instrumentation suppressed by the app."""
    return not telemetry.enabled or bool(
        otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY)
    )


def mcp_invocation(method: str, name: Any, kind: SpanKind) -> Invocation:
    """``{mcp.method.name} {target}``: ``gen_ai.operation.name`` execute_tool on tools/call only."""
    target = name if method in NAMED_TARGETS and isinstance(name, str) and name else None
    inv = Invocation(
        semconv.OP_EXECUTE_TOOL,
        "",
        name=f"{method} {target}" if target else method,
        kind=kind,
    )
    del inv.attributes[semconv.PROVIDER]
    if method != TOOLS_CALL:
        del inv.attributes[semconv.OPERATION]
    inv.attributes[semconv.MCP_METHOD_NAME] = method
    if target is not None:
        inv.attributes[NAMED_TARGETS[method]] = target
    return inv


def to_json(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, default=str)


def tool_result(result: Any) -> Any:
    """What a CallToolResult (a model or its wire dict) returned: the structured content when
    there is some, else the content blocks."""
    if isinstance(result, dict):
        structured = result.get("structuredContent")
        return structured if structured is not None else result.get("content")
    structured = _field(result, "structured_content", "structuredContent")
    return structured if structured is not None else _field(result, "content")


def is_tool_error(result: Any) -> bool:
    if isinstance(result, dict):
        return result.get("isError") is True
    return _field(result, "is_error", "isError") is True


def error_code(exc: BaseException) -> str | None:
    """The JSON-RPC error code of an MCP error (``MCPError.error.code``), as a string."""
    code = getattr(getattr(exc, "error", None), "code", None)
    return str(code) if isinstance(code, int) and not isinstance(code, bool) else None


def _field(model: Any, *names: str) -> Any:
    for name in names:
        value = getattr(model, name, None)
        if value is not None:
            return value
    return None


def _plain(value: Any) -> Any:
    """Pydantic models (content blocks) as their wire JSON; containers walked."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def fail(telemetry: Telemetry, inv: Invocation, exc: BaseException) -> None:
    """End ``inv`` as failed, with the MCP error code as ``error.type`` when there is one."""
    code = error_code(exc)
    if code is not None:
        inv.attributes[semconv.ERROR_TYPE] = code
        inv.attributes[semconv.RPC_RESPONSE_STATUS_CODE] = code
    telemetry.fail(inv, exc)


def detach(token: object, after: str) -> None:
    """Restore the context of before an MCP message (``after`` names it in the log)."""
    try:
        otel_context.detach(token)
    except Exception as exc:
        log_once(f"restoring the context after {after}", exc)
