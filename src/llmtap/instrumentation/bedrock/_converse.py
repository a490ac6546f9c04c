"""The Converse API (``converse``, ``converse_stream``): requests, responses, stream events.

Amazon Nova's InvokeModel body uses the same message, tool and event shapes, so the vendor
translator for Nova reuses these functions.
"""

from __future__ import annotations

import base64
from typing import Any

from llmtap import semconv
from llmtap.instrumentation import _client
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation.bedrock._outcome import GUARDRAIL_ID, Outcome

# content ---------------------------------------------------------------------------------


def _blob(source: Any, modality: str, mime: str | None) -> dict[str, Any]:
    source = source if isinstance(source, dict) else {}
    data = source.get("bytes")
    if isinstance(data, bytes | bytearray):
        data = base64.b64encode(bytes(data)).decode()
    if isinstance(data, str):
        part: dict[str, Any] = {"type": "blob", "modality": modality, "content": data}
    else:
        location = source.get("s3Location")
        uri = location.get("uri") if isinstance(location, dict) else None
        if not isinstance(uri, str):
            return {"type": modality}
        part = {"type": "uri", "modality": modality, "uri": uri}
    if mime:
        part["mime_type"] = mime
    return part


def _tool_result(result: dict[str, Any]) -> dict[str, Any]:
    items = [c for c in result.get("content") or () if isinstance(c, dict)]
    texts = [c["text"] for c in items if isinstance(c.get("text"), str)]
    response: Any
    if len(texts) == len(items):
        response = "".join(texts)
    elif len(items) == 1 and "json" in items[0]:
        response = items[0]["json"]
    else:
        response = [c.get("json", c.get("text")) for c in items]
    return parts.tool_response(result.get("toolUseId"), response)


def block_part(block: Any) -> dict[str, Any] | None:
    """One Converse content block as a semconv part (None for cache points)."""
    if not isinstance(block, dict):
        return None
    if isinstance(block.get("text"), str):
        return parts.text(block["text"])
    if isinstance(block.get("toolUse"), dict):
        use = block["toolUse"]
        return parts.tool_call(use.get("toolUseId"), use.get("name"), use.get("input"))
    if isinstance(block.get("toolResult"), dict):
        return _tool_result(block["toolResult"])
    if isinstance(block.get("reasoningContent"), dict):
        reasoning = block["reasoningContent"].get("reasoningText")
        text = reasoning.get("text") if isinstance(reasoning, dict) else None
        return {"type": "reasoning", "content": text if isinstance(text, str) else "[redacted]"}
    for kind, modality, family in (
        ("image", "image", "image"),
        ("video", "video", "video"),
        ("audio", "audio", "audio"),
        ("document", "document", "application"),
    ):
        if isinstance(block.get(kind), dict):
            item = block[kind]
            fmt = item.get("format")
            return _blob(item.get("source"), modality, f"{family}/{fmt}" if fmt else None)
    guard = block.get("guardContent")
    if isinstance(guard, dict):
        text = guard.get("text")
        inner = text.get("text") if isinstance(text, dict) else None
        return parts.text(inner) if isinstance(inner, str) else None
    return None


def _split_tool_results(role: str, content: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    runs: list[tuple[str, list[dict[str, Any]]]] = []
    for block in content or ():
        part = block_part(block)
        if part is None:
            continue
        part_role = "tool" if part["type"] == "tool_call_response" else role
        if runs and runs[-1][0] == part_role:
            runs[-1][1].append(part)
        else:
            runs.append((part_role, [part]))
    return runs or [(role, [])]


def input_messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for message in messages or ():
        if not isinstance(message, dict):
            continue
        role = str(message.get("role") or "user")
        for run_role, body in _split_tool_results(role, message.get("content")):
            out.append(parts.message(run_role, body))
    return out


def system_instructions(system: Any) -> list[dict[str, Any]] | None:
    if isinstance(system, str):
        return [parts.text(system)]
    found = [p for p in (block_part(b) for b in system or ()) if p is not None]
    return found or None


def tool_definitions(tool_config: Any) -> list[dict[str, Any]] | None:
    tools = tool_config.get("tools") if isinstance(tool_config, dict) else None
    out = []
    for tool in tools or ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if not isinstance(spec, dict):
            continue
        entry: dict[str, Any] = {"type": "function", "name": str(spec.get("name", ""))}
        if spec.get("description"):
            entry["description"] = spec["description"]
        schema = spec.get("inputSchema")
        if isinstance(schema, dict) and "json" in schema:
            entry["parameters"] = schema["json"]
        out.append(entry)
    return out or None


# requests --------------------------------------------------------------------------------

_TOP_K = ("top_k", "topK")


def inference_attributes(config: Any, attrs: dict[str, Any], extra: Any = None) -> None:
    """``inferenceConfig`` (Converse spelling, or Nova's snake_case) and ``top_k`` from the
    additional model request fields."""
    config = config if isinstance(config, dict) else {}
    num = _client.set_number
    num(
        attrs,
        semconv.REQUEST_MAX_TOKENS,
        config.get("maxTokens", config.get("max_new_tokens")),
        int,
    )
    num(attrs, semconv.REQUEST_TEMPERATURE, config.get("temperature"), float)
    num(attrs, semconv.REQUEST_TOP_P, config.get("topP", config.get("top_p")), float)
    for source in (config, extra if isinstance(extra, dict) else {}):
        for key in _TOP_K:
            num(attrs, semconv.REQUEST_TOP_K, source.get(key), float)
    stops = config.get("stopSequences")
    if isinstance(stops, list | tuple) and stops:
        attrs[semconv.REQUEST_STOP_SEQUENCES] = [str(s) for s in stops]


def guardrail(config: Any, attrs: dict[str, Any]) -> None:
    ident = config.get("guardrailIdentifier") if isinstance(config, dict) else None
    if isinstance(ident, str) and ident:
        attrs[GUARDRAIL_ID] = ident


def request(params: dict[str, Any], inv: Invocation, capture: bool) -> None:
    attrs = inv.attributes
    inference_attributes(
        params.get("inferenceConfig"), attrs, params.get("additionalModelRequestFields")
    )
    guardrail(params.get("guardrailConfig"), attrs)
    if capture:
        inv.system_instructions = system_instructions(params.get("system"))
        inv.input_messages = input_messages(params.get("messages"))
        inv.tool_definitions = tool_definitions(params.get("toolConfig"))


# responses -------------------------------------------------------------------------------


def read_usage(usage: Any, into: Outcome) -> None:
    """Converse usage (and Nova's, whose cache counts end in ``Count``)."""
    if not isinstance(usage, dict):
        return
    into.count("input", usage.get("inputTokens"))
    into.count("output", usage.get("outputTokens"))
    into.count(
        "cache_read", usage.get("cacheReadInputTokens", usage.get("cacheReadInputTokenCount"))
    )
    into.count(
        "cache_write", usage.get("cacheWriteInputTokens", usage.get("cacheWriteInputTokenCount"))
    )


def read_message(response: dict[str, Any], into: Outcome) -> None:
    """A whole Converse (or Nova) response."""
    output = response.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    for index, block in enumerate(content or ()):
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            into.add_text(index, block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            into.add_tool(index, use.get("toolUseId"), use.get("name"), use.get("input"))
        elif isinstance(block.get("reasoningContent"), dict):
            part = block_part(block)
            if part is not None:
                into.add_text(index, part["content"], "reasoning")
    stop = response.get("stopReason")
    if isinstance(stop, str):
        into.stop = stop
    read_usage(response.get("usage"), into)


def read_event(event: Any, into: Outcome) -> None:
    """One ConverseStream event (or Nova stream chunk): ``{"<eventType>": {...}}``."""
    if not isinstance(event, dict):
        return
    delta_event = event.get("contentBlockDelta")
    if isinstance(delta_event, dict):
        index = delta_event.get("contentBlockIndex")
        delta = delta_event.get("delta") if isinstance(delta_event.get("delta"), dict) else {}
        if "text" in delta:
            into.add_text(index, delta["text"])
        elif isinstance(delta.get("toolUse"), dict):
            piece = delta["toolUse"].get("input")
            if isinstance(piece, str):
                into.block(index, "tool_call").pieces.append(piece)
        elif isinstance(delta.get("reasoningContent"), dict):
            into.add_text(index, delta["reasoningContent"].get("text"), "reasoning")
        return
    start_event = event.get("contentBlockStart")
    if isinstance(start_event, dict):
        start = start_event.get("start")
        use = start.get("toolUse") if isinstance(start, dict) else None
        if isinstance(use, dict):
            into.add_tool(
                start_event.get("contentBlockIndex"), use.get("toolUseId"), use.get("name")
            )
        return
    stop_event = event.get("messageStop")
    if isinstance(stop_event, dict) and isinstance(stop_event.get("stopReason"), str):
        into.stop = stop_event["stopReason"]
        return
    metadata = event.get("metadata")
    if isinstance(metadata, dict):
        read_usage(metadata.get("usage"), into)
