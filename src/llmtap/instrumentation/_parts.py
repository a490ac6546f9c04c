"""Small builders for GenAI semconv message parts, shared by the provider adapters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

FINISH_REASONS = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "completed": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "incomplete": "length",
    "model_context_window_exceeded": "length",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "tool_use": "tool_call",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "failed": "error",
    "error": "error",
}


def finish_reason(raw: str | None) -> str:
    return FINISH_REASONS.get(raw or "", "stop") if raw else "stop"


def as_dict(value: Any) -> Any:
    """SDK models and TypedDicts alike, as plain data."""
    if isinstance(value, dict):
        return value
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        try:
            return dump(exclude_unset=True)
        except Exception:
            return dump()
    return value


# what a request field usually is, and never an iterator (an exact type: spares the ABC check)
_NOT_ITERATORS = frozenset({type(None), list, tuple, dict, str})


def materialize(kwargs: dict[str, Any], *names: str) -> dict[str, Any]:
    """Turn one-shot iterators among ``kwargs[names]`` into lists, in place (the wrapper's
    own per-call dict), so reading them for telemetry leaves the SDK the same values."""
    for name in names:
        value = kwargs.get(name)
        if type(value) not in _NOT_ITERATORS and isinstance(value, Iterator):
            kwargs[name] = list(value)
    return kwargs


def text(content: Any) -> dict[str, Any]:
    return {"type": "text", "content": content if isinstance(content, str) else str(content)}


def parse_arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "tool_call", "name": name or ""}
    if call_id:
        part["id"] = call_id
    if arguments not in (None, ""):
        part["arguments"] = parse_arguments(arguments)
    return part


def tool_response(call_id: Any, response: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "tool_call_response", "response": response}
    if call_id:
        part["id"] = call_id
    return part


def media_from_url(url: str, modality: str = "image") -> dict[str, Any]:
    """A data: URL becomes a blob part, anything else a uri part."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header[5:].split(";")[0] or None
        part = {"type": "blob", "modality": modality, "content": data}
        if mime:
            part["mime_type"] = mime
        return part
    return {"type": "uri", "modality": modality, "uri": url}


def message(role: str, parts: list[dict[str, Any]], name: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": role, "parts": parts}
    if name:
        msg["name"] = name
    return msg
