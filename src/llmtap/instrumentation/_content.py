"""Message content as the GenAI semconv JSON, kept under size caps.

Oldest messages are dropped first, long text parts are cut, and inline base64 blobs are
replaced by a size marker unless blobs are asked for. What was cut is counted in
``llmtap.content.*`` attributes so a reader knows the record is partial.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmtap import semconv
from llmtap.config import ContentLimits

_TEXT_KEYS = ("content", "arguments", "response")


class ContentStats:
    __slots__ = ("blobs", "dropped", "truncated")

    def __init__(self) -> None:
        self.dropped = 0
        self.truncated = 0
        self.blobs = 0

    def attributes(self) -> dict[str, int]:
        out = {}
        if self.dropped:
            out[semconv.LLMTAP_CONTENT_DROPPED_MESSAGES] = self.dropped
        if self.truncated:
            out[semconv.LLMTAP_CONTENT_TRUNCATED] = self.truncated
        if self.blobs:
            out[semconv.LLMTAP_CONTENT_BLOBS_OMITTED] = self.blobs
        return out


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _cap_text(text: str, cap: int, stats: ContentStats) -> str:
    if len(text) <= cap:
        return text
    stats.truncated += 1
    return f"{text[:cap]}…[truncated {len(text) - cap} chars]"


def _cap_part(part: Any, limits: ContentLimits, stats: ContentStats) -> Any:
    if not isinstance(part, dict):
        return part
    if part.get("type") == "blob" and not limits.capture_blobs:
        data = part.get("content")
        if isinstance(data, str | bytes) and not str(data).startswith("<omitted"):
            stats.blobs += 1
            part = {**part, "content": f"<omitted {len(data) * 3 // 4} bytes>"}
        return part
    changed = None
    for key in _TEXT_KEYS:
        value = part.get(key)
        if not isinstance(value, str) or len(value) <= limits.max_part_chars:
            continue
        changed = changed or dict(part)
        changed[key] = _cap_text(value, limits.max_part_chars, stats)
    return changed or part


def _cap_item(item: Any, limits: ContentLimits, stats: ContentStats) -> Any:
    if isinstance(item, dict) and isinstance(item.get("parts"), list):
        return {**item, "parts": [_cap_part(p, limits, stats) for p in item["parts"]]}
    return _cap_part(item, limits, stats)


def encode_list(items: Sequence[Any], limits: ContentLimits, stats: ContentStats) -> str:
    """JSON of a message (or part, or definition) list within ``limits``; oldest dropped first."""
    per_item = [ContentStats() for _ in items]
    encoded = [
        _dumps(_cap_item(item, limits, st)) for item, st in zip(items, per_item, strict=True)
    ]
    budget = limits.max_attribute_chars - 2
    total = sum(len(e) + 1 for e in encoded)
    first = 0
    while total > budget and len(encoded) - first > 1:
        total -= len(encoded[first]) + 1
        first += 1
    stats.dropped += first
    for st in per_item[first:]:
        stats.truncated += st.truncated
        stats.blobs += st.blobs
    kept = encoded[first:]
    if kept and total > budget:
        kept = [_shrink(items[-1], limits, stats)]
    return "[" + ",".join(kept) + "]"


def _shrink(item: Any, limits: ContentLimits, stats: ContentStats) -> str:
    parts = item.get("parts", []) if isinstance(item, dict) else [item]
    tight = ContentLimits(
        max_part_chars=max(64, limits.max_attribute_chars // (2 * max(1, len(parts))) - 256),
        max_attribute_chars=limits.max_attribute_chars,
        capture_blobs=False,
    )
    text = _dumps(_cap_item(item, tight, stats))
    if len(text) <= limits.max_attribute_chars - 2:
        return text
    stats.truncated += 1
    return _dumps({"type": "text", "content": "[content over the size limit omitted]"})
