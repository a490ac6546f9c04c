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


# the one-pass path against the item-by-item path ---------------------------------------------


def _corpus(seed: int) -> list[list]:
    """Message lists of every shape the caps look at: short and long texts (around the part
    cap), blobs, tool calls with parsed arguments, tool responses, bare parts, non-ASCII."""
    import random

    rng = random.Random(seed)
    texts = ["", "hi", 'é✓ "quoted" \\ \n', "x" * 30, "y" * 31, "z" * 29, "w" * 28, "v" * 200]

    def part() -> dict:
        kind = rng.choices(["text", "blob", "tool_call", "tool_call_response"], [12, 1, 2, 2])[0]
        if kind == "text":
            return {"type": "text", "content": rng.choice(texts)}
        if kind == "blob":
            return {"type": "blob", "modality": "image", "content": "QUJD" * rng.randint(1, 20)}
        if kind == "tool_call":
            args = rng.choice([{"q": rng.choice(texts)}, rng.choice(texts), {"type": "blob"}])
            return {"type": "tool_call", "id": "c1", "name": "f", "arguments": args}
        return {"type": "tool_call_response", "id": "c1", "response": rng.choice(texts)}

    lists = []
    for _ in range(300):
        items: list = []
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.2:
                items.append(part())  # a bare part (system instructions, definitions)
            else:
                parts = [part() for _ in range(rng.randint(0, 3))]
                items.append({"role": rng.choice(["user", "assistant"]), "parts": parts})
        lists.append(items)
    return lists


def test_encoding_once_gives_what_the_item_by_item_path_gives():
    from llmtap.instrumentation._content import _encode_items

    checked = 0
    for items in _corpus(seed=16):
        whole = len(json.dumps(items, ensure_ascii=False, separators=(",", ":")))
        for limits in (
            ContentLimits(),
            ContentLimits(max_part_chars=30),
            ContentLimits(max_part_chars=30, capture_blobs=True),
            # around the attribute cap: everything kept, exactly at the edge, one dropped
            ContentLimits(max_attribute_chars=whole + 1),
            ContentLimits(max_attribute_chars=whole),
            ContentLimits(max_attribute_chars=max(whole - 1, 2)),
            ContentLimits(max_part_chars=29, max_attribute_chars=max(whole // 2, 2)),
        ):
            fast, full = ContentStats(), ContentStats()
            assert encode_list(items, limits, fast) == _encode_items(items, limits, full)
            assert fast.attributes() == full.attributes()
            checked += 1
    assert checked == 2100


def test_the_json_encoder_writes_what_json_dumps_writes():
    from llmtap.instrumentation._content import _dumps

    class Opaque:
        def __str__(self) -> str:
            return "opaque ✓"

    values = [
        [],
        [{"role": "user", "parts": [{"type": "text", "content": 'é ✓ "q" \\ \n \u2028 \x00'}]}],
        [{"n": [0, -1, 2**70, 1.5, 1e-7, float("nan"), float("-inf"), True, None]}],
        [{1: "int key", 2.5: "float key", None: "none key", False: "bool key"}],
        [{"object": Opaque(), "tuple": (1, "two"), "nested": [[{}], [[]]]}],
        *_corpus(seed=7)[:50],
    ]
    for value in values:
        assert _dumps(value) == json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), default=str
        )
