"""Content size caps: oldest messages dropped first, long parts cut, blobs replaced."""

from __future__ import annotations

import json

from llmtap.config import ContentLimits
from llmtap.instrumentation._content import ContentStats, encode_list


def msg(role: str, text: str) -> dict:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def test_under_the_caps_everything_is_kept_verbatim():
    stats = ContentStats()
    items = [msg("user", "hi"), msg("assistant", "hello")]
    assert json.loads(encode_list(items, ContentLimits(), stats)) == items
    assert stats.attributes() == {}


def test_oldest_messages_are_dropped_first_and_counted():
    items = [msg("user", f"message {i} " + "x" * 100) for i in range(10)]
    stats = ContentStats()
    out = json.loads(encode_list(items, ContentLimits(max_attribute_chars=500), stats))
    assert out == items[-len(out) :]
    assert 0 < len(out) < 10
    assert stats.attributes() == {"llmtap.content.dropped_messages": 10 - len(out)}
    assert len(json.dumps(out, separators=(",", ":"))) <= 500


def test_long_parts_are_cut_with_a_marker():
    stats = ContentStats()
    limits = ContentLimits(max_part_chars=10)
    out = json.loads(encode_list([msg("user", "a" * 25)], limits, stats))
    assert out[0]["parts"][0]["content"] == "a" * 10 + "…[truncated 15 chars]"
    assert stats.attributes() == {"llmtap.content.truncated": 1}


def test_one_huge_message_is_shrunk_to_fit_and_stays_valid_json():
    stats = ContentStats()
    limits = ContentLimits(max_part_chars=100_000, max_attribute_chars=1000)
    text = encode_list([msg("user", "z" * 50_000)], limits, stats)
    assert len(text) <= 1000
    assert json.loads(text)[0]["role"] == "user"
    assert stats.truncated >= 1


def test_blobs_are_replaced_by_a_size_marker_unless_asked_for():
    blob = {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "QUJD" * 1000}
    items = [{"role": "user", "parts": [blob]}]
    stats = ContentStats()
    out = json.loads(encode_list(items, ContentLimits(), stats))
    assert out[0]["parts"][0]["content"] == "<omitted 3000 bytes>"
    assert out[0]["parts"][0]["mime_type"] == "image/png"
    assert stats.attributes() == {"llmtap.content.blobs_omitted": 1}
    kept = json.loads(encode_list(items, ContentLimits(capture_blobs=True), ContentStats()))
    assert kept == items


def test_tool_arguments_and_responses_are_capped_too():
    part = {"type": "tool_call_response", "id": "c1", "response": "r" * 50}
    stats = ContentStats()
    out = json.loads(encode_list([part], ContentLimits(max_part_chars=20), stats))
    assert out[0]["response"].startswith("r" * 20 + "…[truncated 30")
