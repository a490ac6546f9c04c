"""docs/config-reference.md is the reference generated from the options types."""

from __future__ import annotations

import io
from pathlib import Path

from llmtap.cli_config import reference_command
from llmtap.config_reference import render

COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "config-reference.md"


def test_committed_reference_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "docs/config-reference.md is out of date: "
        "run `llmtap config reference > docs/config-reference.md`"
    )


def test_reference_lists_every_section_and_evaluator() -> None:
    text = render()
    for heading in (
        "## `export[]`",
        "## `sampling.head.rules[]`",
        "## `judge.model`",
        "### `regex`",
    ):
        assert heading in text
    assert "| `timeout_s` | number | `10.0` | one export at most, in seconds |" in text


def test_cli_prints_it() -> None:
    out = io.StringIO()
    assert reference_command(None, out) == 0  # type: ignore[arg-type]
    assert out.getvalue() == render()
