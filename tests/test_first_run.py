"""First run: every command the demo or the README prints runs as printed.

- ``llmtap demo`` run directly (no content-capture variable, a stray ``LLMTAP_CONFIG``)
  behaves as ``./dev demo``: no evaluation errors for want of content, failing verdicts
  marked, costs in dollars; the commands it suggests run and do what they say.
- The README's ``llmtap`` commands (fenced ``sh`` blocks and inline code with arguments) run
  as printed in a project folder that has what they name (``llmtap.yaml``, ``golden.jsonl``,
  ``myapp/bot.py``, ``review.jsonl``, ``labelled.jsonl``, ``baseline.json``,
  ``spans.jsonl`` with prompt versions 3 and 4), with no
  ``LLMTAP_*``/``OTEL_*`` variables set. Commands that serve (``llmtap serve``) must come up
  and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.judge_server import JudgeServer

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "LLMTAP_", "OPENAI_", "ANTHROPIC_"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # `llmtap` as a user types it
    env.update(extra)
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> Any:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("demo")
    stray = folder / "not-there.yaml"  # the demo does not read LLMTAP_CONFIG
    done = run(
        ["llmtap", "demo", "--keep", str(folder / "kept")],
        folder,
        clean_env(LLMTAP_CONFIG=str(stray)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, folder / "kept"


def test_demo_run_directly_has_what_it_needs(demo: tuple[str, Path]) -> None:
    out, _ = demo
    assert "error=missing_input" not in out  # content capture is on
    assert "redacted=3" in out  # the PII in the support question, redacted in the app
    assert "verdict=no_match  score=0  feature=support  ✗ failed" in out
    costs = re.findall(r"cost=(\S+)", out)
    assert costs and all(re.fullmatch(r"\$\d+\.\d+", c) for c in costs), costs
    assert re.search(r"^total: \$0\.\d+ over \d+ tokens", out, re.M)


def printed_commands(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("  llmtap ")]


def test_the_commands_the_demo_prints_run(demo: tuple[str, Path], tmp_path: Path) -> None:
    out, kept = demo
    commands = printed_commands(out)
    assert commands == [
        f"llmtap golden add {shlex.quote(str(kept / 'review.jsonl'))} --to golden.jsonl --all"
    ]
    for command in commands:
        done = run(shlex.split(command), tmp_path, clean_env())
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert done.stdout.startswith("added 1 case(s) to golden.jsonl")
    (case,) = [json.loads(line) for line in (tmp_path / "golden.jsonl").read_text().splitlines()]
    assert case["input"].startswith("When will my refund arrive?")
    assert "<EMAIL>" in case["input"]  # redacted in the app before the service saw it


# the README -------------------------------------------------------------------------------------


def readme_commands(text: str) -> list[str]:
    """``llmtap`` commands of the README: lines of ``sh`` blocks (continuations joined,
    comments dropped) and inline code that gives a command with arguments."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("llmtap "):
                commands.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`(llmtap [^`]+)`", prose):
        if len(shlex.split(span)) >= 3:
            commands.append(span)
    return list(dict.fromkeys(commands))


BOT = """
import openai

_client = None


def answer(question):
    global _client
    _client = _client or openai.OpenAI(max_retries=0)
    reply = _client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
    )
    return reply.choices[0].message.content
"""


@pytest.fixture
def project(
    tmp_path: Path, demo: tuple[str, Path], devserver: Any
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A project folder with the files the README's commands name."""
    with JudgeServer() as judge:
        (tmp_path / "llmtap.yaml").write_text(
            "service_name: support-bot\n"
            "service: {grpc_address: '127.0.0.1:0', http_address: '127.0.0.1:0', "
            "metrics_address: 'off'}\n"
            "judge:\n"
            f"  model: {{name: gpt-4o-mini, base_url: '{judge.openai_base_url}'}}\n"
            "  review_queue: review.jsonl\n"
            "  rules:\n"
            "    - {evaluator: faithfulness, when: {llmtap.feature: support}}\n"
            "    - {evaluator: truncation}\n"
        )
        (tmp_path / "myapp").mkdir()
        (tmp_path / "myapp" / "__init__.py").write_text("")
        (tmp_path / "myapp" / "bot.py").write_text(BOT)
        shutil.copy(demo[1] / "review.jsonl", tmp_path / "review.jsonl")
        (tmp_path / "golden.jsonl").write_text(
            json.dumps({"id": "refund", "input": "When will my refund arrive?"}) + "\n"
        )
        (tmp_path / "labelled.jsonl").write_text(
            json.dumps(
                {
                    "id": "ex-1",
                    "input": "When do refunds arrive?",
                    "output": "Within 5 business days.",
                    "documents": ["Refunds are issued within 5 business days."],
                    "label": "pass",
                }
            )
            + "\n"
        )
        write_prompt_versions(tmp_path / "spans.jsonl", ("3", "4"))
        env = clean_env(OPENAI_BASE_URL=devserver.openai_base_url, OPENAI_API_KEY="readme-test-key")
        baseline = run(
            ["llmtap", "eval", "run", "golden.jsonl", "--app", "myapp.bot:answer",
             "--config", "llmtap.yaml", "--save-baseline", "baseline.json", "--quiet",
             "--allow-failures"],  # the judge has no verdict scripted: an evaluator error
            tmp_path, env,
        )  # fmt: skip
        assert baseline.returncode == 0, baseline.stdout + baseline.stderr
        yield tmp_path, env


def write_prompt_versions(path: Path, versions: tuple[str, ...]) -> None:
    """Model calls of each prompt version with a verdict each, as the file preset writes them."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from llmtap import semconv
    from llmtap.export.file import JsonLinesSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("readme")
    for version in versions:
        for i in range(5):
            with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
                chat.set_attributes({semconv.OPERATION: "chat",
                                     semconv.LLMTAP_PROMPT_VERSION: version})  # fmt: skip
                with tracer.start_as_current_span("evaluate truncation") as verdict:
                    verdict.set_attributes({semconv.EVALUATION_NAME: "truncation",
                                            semconv.LLMTAP_EVALUATION_PASSED: i > 0})  # fmt: skip
    provider.shutdown()


def serves(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Start a serving command, wait until it says where it listens, then SIGTERM it."""
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline and not first:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, first + out, err


def test_readme_commands_run_as_printed(project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert any(c.startswith("llmtap eval run") for c in commands), commands
    assert any(c.startswith("llmtap serve") for c in commands), commands
    for command in commands:
        argv = shlex.split(command)
        if argv[:2] == ["llmtap", "serve"]:
            code, out, err = serves(argv, folder, env)
            assert code == 0, (command, out, err)
            assert out.startswith("llmtap service"), (command, out, err)
            continue
        done = run(argv, folder, env)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
