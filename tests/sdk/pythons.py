"""Python 3.10-3.13 with this checkout's llmtap, for tests that run an app under each.

The running interpreter is used as it is. Another version is looked up as ``python3.X`` on
PATH or under pyenv (``$PYENV_ROOT/versions/3.X.*``); when present, a virtualenv of it is
made once (cached under ``$LLMTAP_TEST_VENVS``, default ``~/.cache/llmtap-test-venvs``, one
per set of OpenTelemetry versions, remade when pyproject.toml changes) with llmtap installed
editable from this checkout, its ``openai`` extra, and the same OpenTelemetry versions as
the running environment. Only an interpreter that is not installed makes a test skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNNING = f"{sys.version_info[0]}.{sys.version_info[1]}"
# CI runs the whole suite under each version, so there LLMTAP_TEST_RUNNING_PYTHON_ONLY=1 spares
# the per-version venvs; a local ./dev test covers every installed version in one run.
VERSIONS = (
    (RUNNING,)
    if os.environ.get("LLMTAP_TEST_RUNNING_PYTHON_ONLY") == "1"
    else ("3.10", "3.11", "3.12", "3.13")
)
REPO = Path(__file__).resolve().parents[2]


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _version_of(python: str) -> str | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def find_interpreter(version: str) -> str | None:
    """A base interpreter of ``version`` (``"3.12"``), or None when none is installed."""
    if version == RUNNING:
        return sys.executable
    candidates = [shutil.which(f"python{version}")]
    found = sorted((_pyenv_root() / "versions").glob(f"{version}.*/bin/python"))
    candidates += [str(p) for p in reversed(found)]
    for candidate in candidates:
        if candidate and Path(candidate).exists() and _version_of(candidate) == version:
            return candidate
    return None


def _otel_constraints() -> str:
    """The running environment's OpenTelemetry packages, pinned."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.lower().startswith("opentelemetry")]
    return "\n".join(sorted(lines)) + "\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def python_with_llmtap(version: str) -> Path:
    """An interpreter of ``version`` that imports this checkout's llmtap and openai; skips
    the test (naming the version) when no such Python is installed."""
    base = find_interpreter(version)
    if base is None:
        pytest.skip(
            f"Python {version} is not installed (no python{version} on PATH, "
            f"none under {_pyenv_root() / 'versions'})"
        )
    if base == sys.executable:
        return Path(sys.executable)
    cache = Path(os.environ.get("LLMTAP_TEST_VENVS") or Path.home() / ".cache/llmtap-test-venvs")
    constraints = _otel_constraints()
    # one venv per set of OpenTelemetry pins (CI runs the suite with the newest and with
    # the oldest supported releases), remade when pyproject.toml changes
    pins_key = hashlib.sha256(constraints.encode() + base.encode()).hexdigest()[:12]
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + pins_key.encode()).hexdigest()
    venv = cache / f"py{version}-{pins_key}"
    python = venv / "bin" / "python"
    stamp = venv / ".llmtap-stamp"
    with _locked(cache / f"py{version}-{pins_key}.lock"):
        if python.exists() and stamp.exists() and stamp.read_text() == key:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
        pins = venv / "otel-constraints.txt"
        pins.write_text(constraints)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-c", str(pins), "-e", f"{REPO}[openai]"],
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        if install.returncode != 0:
            raise RuntimeError(f"installing llmtap into a Python {version} venv failed:\n"
                               f"{install.stdout[-3000:]}\n{install.stderr[-3000:]}")  # fmt: skip
        stamp.write_text(key)
    return python


def launcher(python: Path) -> Path:
    """``opentelemetry-instrument`` of the environment ``python`` belongs to."""
    return python.parent / "opentelemetry-instrument"
