"""The install commands the README gives work as printed: in a new virtual environment (pip
upgraded first, as the README says), from this checkout (no package index serves llmtap),
with the ``openai`` extra."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _install_command() -> str:
    """The README's ``pip install`` line for a clone, as printed."""
    found = re.findall(r"^pip install (\S+)\s+# from a clone", README, re.MULTILINE)
    assert len(found) == 1, "the README gives one 'pip install ... # from a clone' line"
    return found[0].strip("\"'")


@pytest.mark.timeout(600)
def test_readme_install_command_gives_a_working_llmtap(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    target = _install_command()
    assert target.startswith("."), target
    assert "python -m pip install --upgrade pip" in README
    upgraded = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]
    done = subprocess.run(
        [venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", target],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    version = subprocess.run(
        [venv / "bin" / "llmtap", "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0, version.stderr
    assert re.search(r"\d+\.\d+", version.stdout), version.stdout
    traced = subprocess.run(
        [
            venv / "bin" / "python",
            "-c",
            "import llmtap, openai; from llmtap.instrumentation.openai import OpenAIInstrumentor;"
            "print(OpenAIInstrumentor().instrumentation_dependencies())",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert traced.returncode == 0, traced.stderr
    assert "openai" in traced.stdout
