"""Values in messages are cut to a length, the same way everywhere."""

from __future__ import annotations

from llmtap.diagnostics import shown


def test_a_short_value_is_its_repr() -> None:
    assert shown("ten percent") == "'ten percent'"
    assert shown(None) == "None"


def test_a_long_value_is_cut_to_the_limit() -> None:
    text = shown("x" * 200)
    assert len(text) == 80
    assert text == repr("x" * 200)[:77] + "..."
    assert shown(list(range(100)), limit=40) == repr(list(range(100)))[:37] + "..."
    assert len(shown("y" * 79)) == 80 and shown("y" * 78) == repr("y" * 78)
