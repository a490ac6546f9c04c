"""Deterministic content shared by the provider emulations: text, tokens, ids, JSON."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

REFUSAL_TRIGGER = "please refuse"
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
SYSTEM_FINGERPRINT = "fp_llmtap_dev"

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PIECE_RE = re.compile(r"\S+\s*")
_WORD_RE = re.compile(r"[A-Za-z0-9][\w'-]*")
_REASONING_MODEL_RE = re.compile(r"^(o\d|gpt-5)")
_EFFORT_TOKENS = {"none": 0, "minimal": 0, "low": 8, "medium": 16, "high": 32, "xhigh": 64}


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def split_pieces(text: str) -> list[str]:
    """Split text into stream deltas ("tokens"): each word with its trailing space."""
    return _PIECE_RE.findall(text)


def split_fragments(text: str, parts: int = 4) -> list[str]:
    """Split text (e.g. tool-call JSON) into `parts` raw character fragments."""
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stable_id(prefix: str, *parts: Any, length: int = 24) -> str:
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return prefix + hashlib.sha256(raw).hexdigest()[:length]


def json_text(value: Any) -> str:
    """JSON with the default spaced separators, so it splits into several stream pieces."""
    return json.dumps(value, ensure_ascii=False)


def first_words(text: str, count: int = 5) -> str:
    words = text.split()
    snippet = " ".join(words[:count])
    return snippet + ("..." if len(words) > count else "")


def topic_word(text: str) -> str:
    """The last capitalized word of `text`, else its first word, else "world"."""
    words = _WORD_RE.findall(text)
    capitalized = [w for w in words if w[0].isupper()]
    if capitalized:
        return capitalized[-1]
    return words[0] if words else "world"


def answer_text(prompt: str) -> str:
    if not prompt.strip():
        return "Hello from the llmtap devserver! How can I help you today?"
    said = first_words(prompt)
    return f'Hello from the llmtap devserver! You said: "{said}". This is a deterministic reply.'


def tool_result_answer(result: str) -> str:
    return f'The tool returned: "{first_words(result, 8)}". That completes the request.'


def thinking_text(prompt: str) -> str:
    said = first_words(prompt)
    return f'The user wrote "{said}". A short, friendly, deterministic answer is enough here.'


def is_refusal(prompt: str) -> bool:
    return REFUSAL_TRIGGER in prompt.lower()


def truncate(pieces: list[str], limit: Any) -> tuple[list[str], bool]:
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit < len(pieces):
        return pieces[:limit], True
    return pieces, False


def reasoning_tokens(effort: Any, model: str) -> int:
    if isinstance(effort, str):
        return _EFFORT_TOKENS.get(effort, 16)
    return 16 if _REASONING_MODEL_RE.match(model) else 0


def cached_prompt_tokens(prompt_tokens: int, cache_key: Any) -> int:
    """OpenAI-style implicit caching: 1024+ token prompts cache in 128 steps; a cache key halves."""
    if prompt_tokens >= 1024:
        return 1024 + (prompt_tokens - 1024) // 128 * 128
    return prompt_tokens // 2 if cache_key else 0


def text_of(content: Any) -> str:
    """Flatten any provider's message content (string, parts, nested blocks) into text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(filter(None, (text_of(part) for part in content)))
    if isinstance(content, dict):
        for key in ("text", "content", "output", "thinking", "refusal"):
            if key in content:
                return text_of(content[key])
    return ""


def fill_schema(schema: Any, text: str, root: Any = None, depth: int = 0) -> Any:
    """A value that validates against a simple JSON schema; strings are filled with `text`."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "$ref" in schema:
        return fill_schema(_resolve_ref(root, schema["$ref"]), text, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return fill_schema(_pick_option(schema[key]), text, root, depth + 1)
    return _fill_typed(schema, _schema_type(schema), text, root, depth)


def _fill_typed(schema: dict[str, Any], kind: str, text: str, root: Any, depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: fill_schema(sub, text, root, depth + 1) for key, sub in props.items()}
    if kind == "array":
        count = min(max(1, schema.get("minItems", 1)), schema.get("maxItems", 1_000))
        return [fill_schema(schema.get("items") or {}, text, root, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(_clamp(schema, 42))
    if kind == "number":
        return float(_clamp(schema, 4.2))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _fill_string(schema, text)


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else "string"


def _pick_option(options: list[Any]) -> Any:
    for option in options:
        if isinstance(option, dict) and option.get("type") != "null":
            return option
    return options[0]


def _resolve_ref(root: Any, ref: str) -> Any:
    node = root
    for part in ref.lstrip("#/").split("/"):
        if not isinstance(node, dict) or not part:
            break
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node


def _clamp(schema: dict[str, Any], value: float) -> float:
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + 1)
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - 1)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    return value


_STRING_FORMATS = {
    "date-time": "2025-01-01T12:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00",
    "email": "dev@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "duration": "P1D",
}


def _fill_string(schema: dict[str, Any], text: str) -> str:
    value = _STRING_FORMATS.get(schema.get("format", ""), text)
    value = value.ljust(schema.get("minLength", 0), "x")
    return value[: schema["maxLength"]] if "maxLength" in schema else value
