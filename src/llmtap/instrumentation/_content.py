"""Message content as the GenAI semconv JSON, kept under size caps.

Oldest messages are dropped first, long text parts are cut, and inline base64 blobs are
replaced by a size marker unless blobs are asked for. What was cut is counted in
``llmtap.content.*`` attributes so a reader knows the record is partial.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
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


# what every value below must encode to exactly as the fallback does (else it is the one used)
_PROBE = [
    {"role": "user", "parts": [{"type": "text", "content": 'é ✓ "q" \\ \n \u2028 \x00'}]},
    {"n": [0, -1, 1.5, 1e100, float("nan"), float("inf"), True, False, None], 1: {}, 2.5: []},
    {"object": object, "nested": [[{}], []]},
]


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)``, cheaper.

    ``json.dumps`` with options builds an encoder per call; ``JSONEncoder.encode`` still
    builds CPython's C encoder per call. That C encoder (the same call CPython 3.6 to 3.13
    makes) is built once here, without circular-reference markers, so threads share it (a
    circular value fails with RecursionError instead of ValueError). Used only when it
    writes the probe exactly as the fallback does; otherwise, and on other interpreters,
    the fallback is ``JSONEncoder.encode``.
    """
    fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    try:
        from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]

        if c_make_encoder is None or c_encode_basestring is None:
            return fallback
        encode = c_make_encoder(None, str, c_encode_basestring, None, ":", ",", False, False, True)

        def dumps(value: Any) -> str:
            return "".join(encode(value, 0))

        return dumps if dumps(_PROBE) == fallback(_PROBE) else fallback
    except Exception:  # another interpreter, another signature
        return fallback


_dumps = _json_encoder()


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


def _part_needs_cap(part: Any, limits: ContentLimits) -> bool:
    if not isinstance(part, dict):
        return False
    if part.get("type") == "blob" and not limits.capture_blobs:
        return True
    cap = limits.max_part_chars
    for key in _TEXT_KEYS:
        value = part.get(key)
        if isinstance(value, str) and len(value) > cap:
            return True
    return False


def _needs_cap(items: Sequence[Any], limits: ContentLimits) -> bool:
    """Whether any part of ``items`` is one ``_cap_part`` would change (a blob when blobs are
    not kept counts, whatever its content: the full path decides)."""
    for item in items:
        parts = item.get("parts") if isinstance(item, dict) else None
        if isinstance(parts, list):
            if any(_part_needs_cap(p, limits) for p in parts):
                return True
        elif _part_needs_cap(item, limits):
            return True
    return False


def encode_list(items: Sequence[Any], limits: ContentLimits, stats: ContentStats) -> str:
    """JSON of a message (or part, or definition) list within ``limits``; oldest dropped first."""
    # The common case, encoded once: the text the item-by-item path joins when it keeps
    # everything (it does when len(text) - 1 <= max_attribute_chars - 2) and cuts nothing.
    # Nothing is cut when no part is a blob (to replace) and no text is too long: a text of
    # n characters takes at least n + 2 in the JSON, and a part that is a blob writes
    # "type":"blob" (anything else that writes it only sends this to the full path).
    text = _dumps(items if type(items) is list else list(items))
    if (
        len(text) < limits.max_attribute_chars
        and (limits.capture_blobs or '"type":"blob"' not in text)
        and (len(text) <= limits.max_part_chars or not _needs_cap(items, limits))
    ):
        return text
    return _encode_items(items, limits, stats)


def _encode_items(items: Sequence[Any], limits: ContentLimits, stats: ContentStats) -> str:
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
