"""google-genai contents, parts, configs and tools as GenAI semconv values (models or dicts)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from llmtap.instrumentation import _parts as parts

# Gemini finish reasons -> the spec's values (the rest: lower case, as sent)
_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "MALFORMED_RESPONSE": "error",
    "MISSING_THOUGHT_SIGNATURE": "error",
}
_MESSAGE_FINISH = frozenset({"stop", "length", "content_filter", "tool_call", "error"})


def get(obj: Any, key: str) -> Any:
    """A field of an SDK model or of a plain (snake_case) dict."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def enum_name(value: Any) -> str | None:
    if value is None:
        return None
    name = getattr(value, "value", value)
    return str(name) if name else None


def finish_reason(raw: Any, calls_tools: bool = False) -> str | None:
    """A candidate's finish reason as the spec spells it; a STOP with function calls is
    ``tool_call``."""
    name = enum_name(raw)
    if not name or name == "FINISH_REASON_UNSPECIFIED":
        return None
    mapped = _FINISH.get(name, name.lower())
    return "tool_call" if mapped == "stop" and calls_tools else mapped


def message_finish(reason: str | None) -> str:
    return reason if reason in _MESSAGE_FINISH else ("error" if reason else "stop")


def model_id(model: Any) -> str | None:
    """``models/gemini-2.5-flash`` and Vertex resource names as the bare model id."""
    if not isinstance(model, str) or not model:
        return None
    if "models/" in model and not model.startswith("tunedModels/"):
        return model.rsplit("models/", 1)[1] or model
    return model


# parts -------------------------------------------------------------------------------------


def _blob(data: Any, mime: Any) -> dict[str, Any]:
    if isinstance(data, bytes | bytearray):
        data = base64.b64encode(bytes(data)).decode()
    part: dict[str, Any] = {
        "type": "blob",
        "modality": _modality(mime),
        "content": data if isinstance(data, str) else "",
    }
    if mime:
        part["mime_type"] = str(mime)
    return part


def _modality(mime: Any) -> str:
    kind = str(mime or "").split("/", 1)[0]
    return kind if kind in ("image", "video", "audio") else "document"


def part(value: Any) -> dict[str, Any] | None:
    """One ``Part`` (or str, or dict) as a semconv message part."""
    if isinstance(value, str):
        return parts.text(value)
    if value is None:
        return None
    text = get(value, "text")
    if isinstance(text, str):
        if get(value, "thought"):
            return {"type": "reasoning", "content": text}
        return parts.text(text)
    call = get(value, "function_call")
    if call is not None:
        return parts.tool_call(get(call, "id"), get(call, "name"), _plain(get(call, "args")))
    reply = get(value, "function_response")
    if reply is not None:
        return parts.tool_response(get(reply, "id"), _plain(get(reply, "response")))
    inline = get(value, "inline_data")
    if inline is not None:
        return _blob(get(inline, "data"), get(inline, "mime_type"))
    file_data = get(value, "file_data")
    if file_data is not None:
        mime = get(file_data, "mime_type")
        out = {"type": "uri", "modality": _modality(mime), "uri": str(get(file_data, "file_uri"))}
        return {**out, "mime_type": str(mime)} if mime else out
    code = get(value, "executable_code")
    if code is not None:
        call = {"type": "code_execution", "code": get(code, "code")}
        return {"type": "server_tool_call", "name": "code_execution", "server_tool_call": call}
    result = get(value, "code_execution_result")
    if result is not None:
        reply = {"type": "code_execution", "output": get(result, "output")}
        return {"type": "server_tool_call_response", "server_tool_call_response": reply}
    uri = get(value, "uri")  # a files.upload() File
    if isinstance(uri, str):
        mime = get(value, "mime_type")
        return {"type": "uri", "modality": _modality(mime), "uri": uri}
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    dumped = parts.as_dict(value)
    return dumped if dumped is not value else value


def _is_content(value: Any) -> bool:
    if isinstance(value, Mapping):
        return "parts" in value or "role" in value
    # Content and its UserContent / ModelContent subclasses (a Part has no ``parts``)
    return hasattr(value, "parts") and hasattr(value, "role")


def _role(role: Any) -> str:
    return "assistant" if role == "model" else str(role or "user")


def _message_runs(role: str, values: Any) -> list[dict[str, Any]]:
    """A content's parts as messages: function responses go in ``tool`` messages."""
    out: list[dict[str, Any]] = []
    run_role, run = role, []
    for value in values or ():
        p = part(value)
        if p is None:
            continue
        p_role = "tool" if p["type"] == "tool_call_response" else role
        if p_role != run_role and run:
            out.append(parts.message(run_role, run))
            run = []
        run_role = p_role
        run.append(p)
    if run or not out:
        out.append(parts.message(run_role, run))
    return out


def input_messages(contents: Any) -> list[dict[str, Any]]:
    """``contents`` (str, Part, Content, or a list of them) as semconv input messages."""
    if contents is None:
        return []
    items = contents if isinstance(contents, list | tuple) else [contents]
    out: list[dict[str, Any]] = []
    loose: list[Any] = []
    for item in items:
        if _is_content(item):
            if loose:
                out += _message_runs(_loose_role(loose), loose)
                loose = []
            out += _message_runs(_role(get(item, "role")), get(item, "parts"))
        else:
            loose.append(item)
    if loose:
        out += _message_runs(_loose_role(loose), loose)
    return out


def _loose_role(values: list[Any]) -> str:
    # the SDK sends loose function-call parts as the model's turn, other parts as the user's
    calls = [v for v in values if not isinstance(v, str) and get(v, "function_call") is not None]
    return "assistant" if calls and len(calls) == len(values) else "user"


def system_instructions(instruction: Any) -> list[dict[str, Any]] | None:
    if instruction is None:
        return None
    if isinstance(instruction, str):
        return [parts.text(instruction)] if instruction else None
    values = get(instruction, "parts") if _is_content(instruction) else None
    if values is None:
        values = instruction if isinstance(instruction, list | tuple) else [instruction]
    found = [p for p in (part(v) for v in values) if p is not None]
    return found or None


def output_message(candidate: Any) -> dict[str, Any]:
    content = get(candidate, "content")
    body = [p for p in (part(v) for v in get(content, "parts") or ()) if p is not None]
    calls = any(p["type"] == "tool_call" for p in body)
    msg = parts.message("assistant", body)
    msg["finish_reason"] = message_finish(finish_reason(get(candidate, "finish_reason"), calls))
    return msg


# tools -------------------------------------------------------------------------------------


def _schema(value: Any) -> Any:
    if value is None or isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        try:
            return dump(exclude_none=True, mode="json")
        except Exception:
            return None
    return None


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    out: list[dict[str, Any]] = []
    for tool in tools:
        if callable(tool) and not isinstance(tool, Mapping) and not hasattr(tool, "model_dump"):
            entry: dict[str, Any] = {"type": "function", "name": getattr(tool, "__name__", "")}
            doc = (getattr(tool, "__doc__", None) or "").strip()
            if doc:
                entry["description"] = doc
            out.append(entry)
            continue
        declarations = get(tool, "function_declarations")
        for declaration in declarations or ():
            entry = {"type": "function", "name": str(get(declaration, "name") or "")}
            if get(declaration, "description"):
                entry["description"] = str(get(declaration, "description"))
            schema = get(declaration, "parameters_json_schema")
            schema = schema if schema is not None else _schema(get(declaration, "parameters"))
            if schema is not None:
                entry["parameters"] = schema
            out.append(entry)
        if not declarations:
            fields = parts.as_dict(tool) if not isinstance(tool, Mapping) else tool
            kinds = [
                k
                for k, v in (fields or {}).items()
                if v is not None and k != "function_declarations"
            ]
            out += [{"type": kind, "name": kind} for kind in kinds]
    return out or None
