"""The ``llmtap`` command line: commands reject flags they do not know; ``demo`` and
``devserver`` get everything after their name."""

from __future__ import annotations

import pytest

from llmtap.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["pricing", "show", "gpt-4o-mini", "--bogus"],
        ["serve", "--no-such-flag"],
        ["eval", "run", "golden.jsonl", "--app", "m:f", "--treshold", "x=1"],
        ["eval", "calibrate", "labelled.jsonl", "--evaluator", "regex", "--extra"],
        ["golden", "add", "review.jsonl", "--to", "golden.jsonl", "--all", "--dry"],
    ],
)
def test_unknown_flags_are_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert (
        "unrecognized arguments: " + argv[-1] in err or "unrecognized arguments: --treshold" in err
    )


@pytest.mark.parametrize(
    ("command", "prog"), [("demo", "llmtap demo"), ("devserver", "python -m llmtap.devserver")]
)
def test_demo_and_devserver_parse_their_own_arguments(
    command: str, prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])  # their own parser answers, not the top-level one
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog} ")


def test_eval_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["eval"])
    assert info.value.code == 2
    assert "run" in capsys.readouterr().err
