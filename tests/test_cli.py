"""The ``llmtap`` command line: commands reject flags they do not know; ``demo`` and
``devserver`` get everything after their name; ``--version``; a closed pipe
(``llmtap ... | head``) ends a command quietly; ``config check``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import llmtap
from llmtap.cli import EXIT_BROKEN_PIPE, main


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


# --version, pipes ---------------------------------------------------------------------------

LLMTAP = [sys.executable, "-m", "llmtap"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from llmtap.version import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"llmtap {__version__}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["pricing", "show"],
        ["pricing", "show", "gpt-4o", "--json"],
        ["pricing", "check", str(Path(llmtap.__file__).parent / "pipeline/pricing/prices.json")],
        ["config", "check", "{bad}"],
        ["config", "check", "{good}"],
        ["golden", "add", "--help"],
        ["--version"],
    ],
)
def test_a_reader_that_goes_away_is_no_error(argv: list[str], tmp_path: Path) -> None:
    """``llmtap ... | head``: the pipe closes before llmtap writes; no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("capture_contnet: x\n" * 1 + "".join(f"k{i}: 1\n" for i in range(2000)))
    good = tmp_path / "good.yaml"
    good.write_text("service_name: x\n")
    argv = [a.format(bad=bad, good=good) for a in argv]
    proc = subprocess.Popen([*LLMTAP, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `head` does once it has its lines
    err = proc.stderr.read().decode()
    code = proc.wait(60)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    assert code in (0, 2, EXIT_BROKEN_PIPE), (code, err)


def test_piped_into_head(tmp_path: Path) -> None:
    """The same through a real shell pipeline."""
    shell = subprocess.run(
        f"{sys.executable} -m llmtap pricing show | head -n 2",
        shell=True, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert len(shell.stdout.splitlines()) == 2
    assert shell.stderr == ""


# config check ---------------------------------------------------------------------------------


def test_config_check_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "llmtap.yaml"
    path.write_text(
        "service_name: bot\nexport: [{preset: file, path: spans.jsonl}]\n"
        "judge: {rules: [{evaluator: pii}, {evaluator: regex, pattern: '\\\\d+'}]}\n"
    )
    assert main(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: OK (1 export destination, 2 judge rules)\n"
    assert err == ""


def test_config_check_lists_every_problem(tmp_path: Path, capsys) -> None:
    path = tmp_path / "llmtap.yaml"
    path.write_text(
        "capture_contnet: span_only\n"  # 1
        "export:\n"  # 2
        "  - {preset: jeager}\n"  # 3
        "  - {preset: langfuse, public_key: '${env:NO_SUCH_VAR_FOR_SURE}'}\n"  # 4
        "judge:\n"  # 5
        "  concurency: 2\n"  # 6
        "  rules:\n"  # 7
        "    - {evaluator: faithfulnes}\n"  # 8
        "    - {evaluator: regex, pattern: '('}\n"  # 9
        "sampling: {head: {default: 3}}\n"  # 10
    )
    assert main(["config", "check", str(path)]) == 2
    out, err = capsys.readouterr()
    lines = out.splitlines()
    where = [line.split(": ", 2)[:2] for line in lines]
    assert where == [
        [f"{path}:1", "capture_contnet"],
        [f"{path}:3", "export[0].preset"],
        [f"{path}:4", "export[1].public_key"],
        [f"{path}:4", "export[1].secret_key"],
        [f"{path}:6", "judge.concurency"],
        [f"{path}:8", "judge.rules[0].evaluator"],
        [f"{path}:9", "judge.rules[1].pattern"],
        [f"{path}:10", "sampling.head.default"],
    ], out
    assert "did you mean 'capture_content'" in lines[0]
    assert "NO_SUCH_VAR_FOR_SURE is not set" in lines[2]
    assert err == f"llmtap config check: 8 problems in {path}\n"


def test_config_check_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["config", "check", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().out == f"{tmp_path / 'nope.yaml'}: no such file\n"


def test_config_check_warns_about_literal_secrets(tmp_path: Path, capsys) -> None:
    path = tmp_path / "llmtap.yaml"
    path.write_text("export: [{preset: honeycomb, api_key: hc-literal-key-123}]\n")
    assert main(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith(f"warning: {path}:1: export[0].api_key: a literal secret")
    assert out.splitlines()[1] == f"{path}: OK (1 export destination; 1 warning)"
    assert "hc-literal-key-123" not in out + err
