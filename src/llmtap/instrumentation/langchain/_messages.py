"""LangChain's messages, results and documents in GenAI semconv shapes."""

from __future__ import annotations

import json
from typing import Any

from llmtap import semconv
from llmtap.instrumentation import _parts
from llmtap.instrumentation._framework import OTHER_PROVIDER

# LangChain's ``ls_provider`` (``_get_ls_params``) -> gen_ai.provider.name
PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "google_genai": "gcp.gemini",
    "google_vertexai": "gcp.vertex_ai",
    "google_anthropic_vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "cohere": "cohere",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "ollama": "ollama",
    "together": "together_ai",
    "ibm": "ibm.watsonx.ai",
}

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def provider(metadata: dict[str, Any], serialized: Any = None) -> str:
    """The ``ls_provider`` as a provider name; ``_OTHER`` when there is none, or when it is
    only what langchain-core derives from the class name of a model no integration package
    defines (its fake models, the app's own class)."""
    raw = str(metadata.get("ls_provider") or "")
    if not raw:
        return OTHER_PROVIDER
    mapped = PROVIDERS.get(raw.lower())
    if mapped is not None:
        return mapped
    return OTHER_PROVIDER if _derived_from_class(raw, serialized) else raw


def _derived_from_class(raw: str, serialized: Any) -> bool:
    ids = serialized.get("id") if isinstance(serialized, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        return False
    package, name = ids[0], ids[-1]
    if package.startswith("langchain") and package != "langchain_core":
        return False  # an integration's model: its class name names its provider
    # langchain-core's default ``ls_provider`` of a chat model and of an LLM
    chat = name[4:] if name.startswith("Chat") else name.removesuffix("Chat")
    return raw in (chat.lower(), name.removesuffix("LLM").lower())


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_parts.text(content)] if content else []
    parts = []
    for block in content or ():
        if isinstance(block, str):
            parts.append(_parts.text(block))
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(_parts.text(block.get("text", "")))
    return parts


def message(msg: Any) -> dict[str, Any]:
    """One LangChain ``BaseMessage`` as a semconv message."""
    kind = getattr(msg, "type", "human")
    role = _ROLES.get(kind, kind)
    if kind == "tool":
        parts = [_parts.tool_response(getattr(msg, "tool_call_id", None), msg.content)]
    else:
        parts = _content_parts(getattr(msg, "content", ""))
    for call in getattr(msg, "tool_calls", None) or ():
        parts.append(_parts.tool_call(call.get("id"), call.get("name"), call.get("args")))
    return _parts.message(role, parts, getattr(msg, "name", None) if kind != "tool" else None)


def message_from_text(prompt: str) -> dict[str, Any]:
    return _parts.message("user", [_parts.text(prompt)])


def split_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instruction parts, the other messages)."""
    system: list[dict[str, Any]] = []
    others = []
    for msg in messages:
        if getattr(msg, "type", "") == "system":
            system.extend(_content_parts(msg.content))
        else:
            others.append(message(msg))
    return system, others


def output_message(generation: Any, reason: str) -> dict[str, Any]:
    msg = getattr(generation, "message", None)
    if msg is not None:
        out = message(msg)
        out["role"] = "assistant"
    else:
        out = _parts.message("assistant", [_parts.text(getattr(generation, "text", ""))])
    out["finish_reason"] = reason
    return out


def _raw_finish_reason(generation: Any) -> str | None:
    info = getattr(generation, "generation_info", None) or {}
    msg = getattr(generation, "message", None)
    meta = getattr(msg, "response_metadata", None) or {}
    for source in (info, meta):
        for key in ("finish_reason", "stop_reason", "done_reason"):
            if source.get(key):
                return str(source[key])
    if getattr(msg, "tool_calls", None):
        return "tool_calls"
    return None


def response(result: Any, capture: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Attributes and output messages of an ``LLMResult``."""
    attrs: dict[str, Any] = {}
    outputs: list[dict[str, Any]] = []
    reasons = []
    generations = [g for batch in getattr(result, "generations", None) or () for g in batch]
    for generation in generations:
        reason = _parts.finish_reason(_raw_finish_reason(generation))
        reasons.append(reason)
        if capture:
            outputs.append(output_message(generation, reason))
    if reasons:
        attrs[semconv.RESPONSE_FINISH_REASONS] = reasons
    msg = getattr(generations[0], "message", None) if generations else None
    meta = getattr(msg, "response_metadata", None) or {}
    llm_output = getattr(result, "llm_output", None) or {}
    model = meta.get("model_name") or meta.get("model") or llm_output.get("model_name")
    if model:
        attrs[semconv.RESPONSE_MODEL] = str(model)
    if meta.get("id"):
        attrs[semconv.RESPONSE_ID] = str(meta["id"])
    attrs.update(_usage(getattr(msg, "usage_metadata", None), llm_output))
    return attrs, outputs


def _usage(usage: Any, llm_output: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if usage:
        attrs[semconv.USAGE_INPUT_TOKENS] = int(usage.get("input_tokens", 0))
        attrs[semconv.USAGE_OUTPUT_TOKENS] = int(usage.get("output_tokens", 0))
        details = usage.get("input_token_details") or {}
        for key, name in (
            ("cache_read", semconv.USAGE_CACHE_READ_INPUT_TOKENS),
            ("cache_creation", semconv.USAGE_CACHE_CREATION_INPUT_TOKENS),
        ):
            if details.get(key):
                attrs[name] = int(details[key])
        reasoning = (usage.get("output_token_details") or {}).get("reasoning")
        if reasoning:
            attrs[semconv.USAGE_REASONING_OUTPUT_TOKENS] = int(reasoning)
        return attrs
    tokens = llm_output.get("token_usage") or llm_output.get("usage") or {}
    if isinstance(tokens, dict):
        for keys, name in (
            (("prompt_tokens", "input_tokens"), semconv.USAGE_INPUT_TOKENS),
            (("completion_tokens", "output_tokens"), semconv.USAGE_OUTPUT_TOKENS),
        ):
            value = next((tokens[k] for k in keys if isinstance(tokens.get(k), int)), None)
            if value is not None:
                attrs[name] = value
    return attrs


def document(doc: Any, rank: int) -> dict[str, Any]:
    """A LangChain ``Document`` as ``{"id", "score", "content"}``."""
    meta = getattr(doc, "metadata", None) or {}
    doc_id = getattr(doc, "id", None) or meta.get("id") or meta.get("source") or str(rank)
    score = next(
        (meta[k] for k in ("score", "relevance_score", "_score") if isinstance(meta.get(k), float)),
        0.0,
    )
    return {"id": str(doc_id), "score": score, "content": getattr(doc, "page_content", "")}


def as_json(value: Any) -> str:
    """A tool's output as a JSON value (a text as a JSON string)."""
    content = getattr(value, "content", value)  # a ToolMessage: its content
    try:
        return json.dumps(content, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return json.dumps(str(content), ensure_ascii=False)


def as_text(value: Any) -> str:
    """A tool's input or output as the text recorded on its span."""
    content = getattr(value, "content", value)  # a ToolMessage: its content
    if isinstance(content, str):
        return content
    try:
        return json.dumps(content, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(content)


def _as_messages(value: Any, role: str) -> list[Any]:
    """LangChain messages from a chain's input or output: a message, a list of messages
    (or of role/content tuples and dicts), a state with ``messages``, or a text (``role``'s);
    none from anything else."""
    from langchain_core.messages import BaseMessage, convert_to_messages

    if isinstance(value, dict):
        value = value.get("messages")
    if isinstance(value, str):
        value = [(role, value)] if value else None
    elif isinstance(value, BaseMessage):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        return []
    try:
        return list(convert_to_messages(value))
    except Exception:
        return []  # not messages: a state of the app's own


def chain_input(inputs: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instruction parts, the other messages) of a workflow's or agent's input."""
    messages = _as_messages(inputs, "user")
    return split_messages(messages) if messages else ([], [])


def chain_output(outputs: Any) -> list[dict[str, Any]]:
    """A workflow's or agent's answer: its last assistant message, which ended the run."""
    answers = [m for m in _as_messages(outputs, "ai") if getattr(m, "type", "") == "ai"]
    if not answers:
        return []
    out = message(answers[-1])
    out["finish_reason"] = "stop"
    return [out]
