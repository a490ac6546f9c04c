"""From spans to what an evaluator reads: texts, documents, metadata, and named fields.

:func:`extract_input` builds an :class:`~llmtap.evals.base.EvalInput` for one span of an
assembled trace:

* ``input_text``: the text of the last user message in ``gen_ai.input.messages`` (the
  request being answered; the whole conversation is the ``conversation`` field);
* ``output_text``: the text parts of the first message of ``gen_ai.output.messages``;
* ``documents``: the contents of ``gen_ai.retrieval.documents`` of the trace's retrieval
  spans, then the results (``gen_ai.tool.call.result``) of its tool spans, then the tool
  results handed to the model in the input messages; only spans that had ended when the
  evaluated span started (all of them when the times are unknown) or that ran inside it (an
  evaluated agent's own retrievals) count, in the order they ended, without duplicates;
* ``metadata``: ``llmtap.metadata.<key>`` as ``<key>``, plus ``feature`` (``llmtap.feature``),
  ``user_id``, ``session_id``, ``conversation_id``, ``prompt_name``, ``prompt_version``.

Messages are read from the span attributes or, when content went to events only, from the
attributes of the ``gen_ai.client.inference.operation.details`` event.

:func:`resolve_field` reads a named field of an ``EvalInput`` (``input``, ``output``,
``documents``, ``system``, ``conversation``, ``metadata.<key>``, ``span.<attribute>``): the
variables of judge rubrics and the targets of rule evaluators.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llmtap import semconv
from llmtap.evals.base import EvalInput
from llmtap.pipeline.span import SpanData

__all__ = [
    "FIELDS",
    "check_field",
    "extract_input",
    "field_text",
    "message_text",
    "parse_messages",
    "render_conversation",
    "resolve_field",
    "system_text",
]

#: fields that need no key; ``metadata.<key>`` and ``span.<attribute>`` take one
FIELDS = ("input", "output", "documents", "system", "conversation")
_PREFIXED = ("metadata.", "span.")

_NAMED_METADATA = {
    semconv.LLMTAP_FEATURE: "feature",
    semconv.USER_ID: "user_id",
    semconv.SESSION_ID: "session_id",
    semconv.CONVERSATION_ID: "conversation_id",
    semconv.PROMPT_NAME: "prompt_name",
    semconv.LLMTAP_PROMPT_VERSION: "prompt_version",
}
_CONTENT_KEYS = (
    semconv.INPUT_MESSAGES,
    semconv.OUTPUT_MESSAGES,
    semconv.SYSTEM_INSTRUCTIONS,
)
MAX_DOCUMENTS = 64


# messages -----------------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def parse_messages(value: Any) -> list[dict[str, Any]]:
    """Semconv messages (``[{"role", "parts": [...]}]``) from a JSON string or a list;
    ``[]`` for anything else. A bare string counts as one user message."""
    data = _json(value)
    if data is None and isinstance(value, str) and value.strip():
        return [{"role": "user", "parts": [{"type": "text", "content": value}]}]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return []
    return [m for m in data if isinstance(m, dict)]


def _part_text(part: Any, *, tools: bool) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    kind = part.get("type")
    if kind == "text":
        content = part.get("content")
        return content if isinstance(content, str) else ""
    if not tools:
        return ""
    if kind == "tool_call":
        args = part.get("arguments")
        args_text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        return f"[tool call {part.get('name', '')}: {args_text}]"
    if kind == "tool_call_response":
        return f"[tool result: {_as_text(part.get('response'))}]"
    return ""


def message_text(message: Mapping[str, Any], *, tools: bool = False) -> str:
    """The text of one message: its text parts joined (tool calls/results too if ``tools``)."""
    parts = message.get("parts")
    if parts is None and "content" in message:  # a provider-shaped message
        parts = message["content"]
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    texts = [_part_text(p, tools=tools) for p in parts]
    return "\n".join(t for t in texts if t)


def render_conversation(messages: Sequence[Mapping[str, Any]]) -> str:
    """``role: text`` lines of every message with content, tool calls shown."""
    lines = []
    for m in messages:
        text = message_text(m, tools=True)
        if text:
            lines.append(f"{m.get('role', 'user')}: {text}")
    return "\n\n".join(lines)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def system_text(attrs: Mapping[str, Any], messages: Sequence[Mapping[str, Any]] = ()) -> str:
    """System instructions: ``gen_ai.system_instructions`` (parts) plus system messages."""
    texts = []
    raw = attrs.get(semconv.SYSTEM_INSTRUCTIONS)
    data = _json(raw)
    if isinstance(data, list):
        texts.extend(_part_text(p, tools=False) for p in data)
    elif isinstance(raw, str) and data is None:
        texts.append(raw)
    for m in messages:
        if m.get("role") in ("system", "developer"):
            texts.append(message_text(m))
    return "\n\n".join(t for t in texts if t)


# spans --------------------------------------------------------------------------------------------


def _content_attrs(span: SpanData) -> dict[str, Any]:
    """The span's content attributes, from its events where the span itself has none."""
    found = {k: span.attributes[k] for k in _CONTENT_KEYS if k in span.attributes}
    if len(found) < len(_CONTENT_KEYS):
        for event in span.events:
            if event.name != semconv.EVENT_INFERENCE_DETAILS:
                continue
            for key in _CONTENT_KEYS:
                if key not in found and key in event.attributes:
                    found[key] = event.attributes[key]
    return found


def _spans_of(trace: Any) -> list[SpanData]:
    if trace is None:
        return []
    spans = getattr(trace, "spans", trace)
    if isinstance(spans, Mapping):
        spans = spans.values()
    return [s for s in spans if isinstance(s, SpanData)]


def _documents_of(span: SpanData) -> list[str]:
    data = _json(span.attributes.get(semconv.RETRIEVAL_DOCUMENTS))
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return []
    out = []
    for doc in data:
        if isinstance(doc, str):
            out.append(doc)
        elif isinstance(doc, dict):
            content = doc.get("content", doc.get("text", doc.get("page_content")))
            if content not in (None, ""):
                out.append(_as_text(content))
    return out


def _evidence(candidate: SpanData, span: SpanData, parents: Mapping[int, int]) -> bool:
    """Could ``candidate`` have informed ``span``: it ended before ``span`` started, or it
    is part of ``span``'s own work (a retrieval inside an evaluated agent span)."""
    if candidate is span or (candidate.span_id and candidate.span_id == span.span_id):
        return False
    if candidate.end_ns and span.start_ns and candidate.end_ns > span.start_ns:
        return bool(span.span_id) and _descends(candidate, span.span_id, parents)
    return True


def _descends(candidate: SpanData, ancestor: int, parents: Mapping[int, int]) -> bool:
    parent = candidate.parent_span_id
    for _ in range(256):  # a bound against cycles in malformed input
        if not parent:
            return False
        if parent == ancestor:
            return True
        parent = parents.get(parent, 0)
    return False


def extract_input(span: SpanData, trace: Any = ()) -> EvalInput:
    """The evaluator input for ``span`` in ``trace`` (a sequence of spans, or any object
    with ``.spans``). Never raises for malformed content: what cannot be read is left out."""
    spans = _spans_of(trace)
    content = _content_attrs(span)
    inputs = parse_messages(content.get(semconv.INPUT_MESSAGES))
    outputs = parse_messages(content.get(semconv.OUTPUT_MESSAGES))

    input_text = ""
    for m in reversed(inputs):
        if m.get("role") == "user":
            input_text = message_text(m)
            if input_text:
                break
    if not input_text and semconv.RETRIEVAL_QUERY_TEXT in span.attributes:
        input_text = _as_text(span.attributes[semconv.RETRIEVAL_QUERY_TEXT])
    output_text = message_text(outputs[0]) if outputs else ""

    parents = {s.span_id: s.parent_span_id for s in spans if s.span_id}
    earlier = sorted(
        (s for s in spans if _evidence(s, span, parents)), key=lambda s: (s.end_ns, s.start_ns)
    )
    documents: list[str] = []
    for s in earlier:
        if s.attributes.get(semconv.OPERATION) == semconv.OP_RETRIEVAL:
            documents.extend(_documents_of(s))
    for s in earlier:
        if s.attributes.get(semconv.OPERATION) == semconv.OP_EXECUTE_TOOL:
            result = s.attributes.get(semconv.TOOL_CALL_RESULT)
            if result not in (None, ""):
                documents.append(_as_text(result))
    for m in inputs:
        for part in m.get("parts") or ():
            if isinstance(part, dict) and part.get("type") == "tool_call_response":
                documents.append(_as_text(part.get("response")))
    documents = [d for d in dict.fromkeys(d.strip() for d in documents) if d][:MAX_DOCUMENTS]

    return EvalInput(
        input_text=input_text,
        output_text=output_text,
        documents=documents,
        metadata=_metadata(span),
        span=span,
        trace=spans,
    )


def _metadata(span: SpanData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    prefix = semconv.LLMTAP_METADATA_PREFIX
    for key, value in span.attributes.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            out[key[len(prefix) :]] = value
    for key, name in _NAMED_METADATA.items():
        if key in span.attributes:
            out[name] = span.attributes[key]
    return out


# fields -------------------------------------------------------------------------------------------


def check_field(path: str) -> str | None:
    """Why ``path`` is not a field name (None when it is one)."""
    if not isinstance(path, str) or not path:
        return f"expected a field name: {', '.join(FIELDS)}, metadata.<key> or span.<attribute>"
    if path in FIELDS:
        return None
    for prefix in _PREFIXED:
        if path.startswith(prefix):
            return None if len(path) > len(prefix) else f"{prefix}<key> needs a key"
    return (
        f"unknown field {path!r}; expected one of {', '.join(FIELDS)}, "
        f"metadata.<key> or span.<attribute>"
    )


def resolve_field(item: EvalInput, path: str) -> Any:
    """The value of field ``path`` of ``item`` (None when absent). ``documents`` is a list;
    ``system`` and ``conversation`` come from the evaluated span's messages, else from
    ``metadata["system"]`` / the input text (golden cases have no span)."""
    if path == "input":
        return item.input_text
    if path == "output":
        return item.output_text
    if path == "documents":
        return list(item.documents)
    if path == "system":
        if item.span is not None:
            content = _content_attrs(item.span)
            text = system_text(content, parse_messages(content.get(semconv.INPUT_MESSAGES)))
            if text:
                return text
        return _as_text(item.metadata.get("system")) if item.metadata else ""
    if path == "conversation":
        if item.span is not None:
            content = _content_attrs(item.span)
            messages = [
                m
                for m in parse_messages(content.get(semconv.INPUT_MESSAGES))
                if m.get("role") not in ("system", "developer")
            ]
            if messages:
                return render_conversation(messages)
        return f"user: {item.input_text}" if item.input_text else ""
    if path.startswith("metadata."):
        return _dig(item.metadata, path[len("metadata.") :])
    if path.startswith("span."):
        if item.span is None:
            return None
        return item.span.attributes.get(path[len("span.") :])
    raise KeyError(path)


def _dig(data: Any, key: str) -> Any:
    """``data[key]``, else a dotted walk through nested mappings (``a.b`` → data[a][b])."""
    if not isinstance(data, Mapping):
        return None
    if key in data:
        return data[key]
    head, dot, rest = key.partition(".")
    if dot and head in data:
        return _dig(data[head], rest)
    return None


def field_text(value: Any) -> str:
    """A field value as text: lists of documents numbered, other values as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "\n\n".join(f"[document {i}]\n{_as_text(v)}" for i, v in enumerate(value, 1))
    return _as_text(value)
