"""deploy/Containerfile (the service image) and deploy/collector.Containerfile, read as
instructions: slim Python base, a non-root user, the files they copy exist, the ports and
health check agree with deploy/llmtap.yaml. There is no container engine here (CI has
none either), so the image is not built; instead its command and its HEALTHCHECK command
are run as they would run in the container, against deploy/llmtap.yaml."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmtap.config_file import load_config
from llmtap.service import parse_address, service_config_of

from .conftest import DEPLOY, ROOT

Instruction = tuple[str, str]


def _parse(path: Path) -> list[Instruction]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    assert not pending, "a continuation line runs off the end"
    return out


def _final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, (k, _) in enumerate(instructions) if k == "FROM"]
    return instructions[starts[-1] :]


def _args(instructions: list[Instruction]) -> dict[str, str]:
    return dict(rest.split("=", 1) for k, rest in instructions if k == "ARG" and "=" in rest)


def _expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], text)


def _exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list), f"not exec form: {rest}"
    return value


SERVICE = _parse(DEPLOY / "Containerfile")
FINAL = _final_stage(SERVICE)
ARGS = _args(SERVICE)


def _one(keyword: str, stage: list[Instruction] = FINAL) -> str:
    (rest,) = [r for k, r in stage if k == keyword]
    return rest


def _defaults() -> object:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("LLMTAP_")}
    try:
        return service_config_of(load_config(str(DEPLOY / "llmtap.yaml")))
    finally:
        os.environ.update(saved)


def test_base_is_slim_python_in_every_stage() -> None:
    for keyword, rest in SERVICE:
        if keyword == "FROM":
            image = _expand(rest.split()[0], ARGS)
            assert re.fullmatch(r"python:3\.\d+-slim", image), image


def test_runs_as_a_non_root_user() -> None:
    user = _one("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    (run,) = [r for k, r in FINAL if k == "RUN" and "useradd" in r]
    assert f"--uid {uid}" in run and f"--gid {gid}" in run.replace("--gid llmtap", f"--gid {gid}")
    last_user = max(i for i, (k, _) in enumerate(FINAL) if k == "USER")
    assert all(k != "RUN" for k, _ in FINAL[last_user:]), "RUN after USER runs as the user"


def test_installs_llmtap_with_the_service_extra() -> None:
    assert ARGS["LLMTAP_EXTRAS"] == "service"
    pyproject = (ROOT / "pyproject.toml").read_text()
    extras = re.search(r"^\[project\.optional-dependencies\]\n(.*?)^\[", pyproject, re.M | re.S)
    assert extras and re.search(r"^service = \[", extras.group(1), re.M)
    (install,) = [r for k, r in FINAL if k == "RUN" and "pip install" in r]
    assert '"llmtap[${LLMTAP_EXTRAS}]"' in install and "--no-index" in install


def test_copied_files_exist() -> None:
    for path in (DEPLOY / "Containerfile", DEPLOY / "collector.Containerfile"):
        for keyword, rest in _parse(path):
            if keyword == "COPY" and "--from=" not in rest:
                for source in shlex.split(rest)[:-1]:
                    assert (ROOT / source).exists(), f"{path.name}: COPY {source}"


def test_command_serves_the_config_it_ships() -> None:
    command = _exec_form(_one("ENTRYPOINT")) + _exec_form(_one("CMD"))
    assert command == ["llmtap", "serve", "--config", "/etc/llmtap/llmtap.yaml"]
    copies = [shlex.split(r) for k, r in FINAL if k == "COPY" and "--from=" not in r]
    assert ["deploy/llmtap.yaml", "/etc/llmtap/llmtap.yaml"] in copies
    assert "LLMTAP_CONFIG=/etc/llmtap/llmtap.yaml" in _one("ENV").split()


def test_exposes_the_ports_of_the_shipped_config() -> None:
    service = _defaults()
    wanted = {
        parse_address(a)[1]
        for a in (service.grpc_address, service.http_address, service.metrics_address)
        if a
    }
    assert {int(p) for p in _one("EXPOSE").split()} == wanted


def _healthcheck_command(port: int) -> list[str]:
    rest = _one("HEALTHCHECK")
    options, _, command = rest.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    metrics = parse_address(_defaults().metrics_address)[1]  # type: ignore[attr-defined]
    argv = _exec_form(command)
    assert f"127.0.0.1:{metrics}/health" in argv[-1]
    return [sys.executable, *argv[1:-1], argv[-1].replace(f":{metrics}/", f":{port}/")]


@pytest.fixture
def served(tmp_path: Path) -> object:
    """The image's command, run here with deploy/llmtap.yaml on free loopback ports (the
    durable queues in a temporary directory)."""
    command = _exec_form(_one("ENTRYPOINT")) + _exec_form(_one("CMD"))
    argv = [sys.executable, "-m", "llmtap.cli", *command[1:-1], str(DEPLOY / "llmtap.yaml")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTAP_"))}
    env.update(
        LLMTAP_GRPC_ADDRESS="127.0.0.1:0",
        LLMTAP_HTTP_ADDRESS="127.0.0.1:0",
        LLMTAP_METRICS_ADDRESS="127.0.0.1:0",
        LLMTAP_QUEUE_DIR=str(tmp_path / "queue"),
        OPENAI_API_KEY="unused",
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, f"exited: {proc.wait()} {proc.stderr.read()}"  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("  forwarding to tempo"):
                break
        text = "".join(lines)
        match = re.search(r"metrics\s+http://127\.0\.0\.1:(\d+)/metrics", text)
        assert match, text
        assert "judging    6 rule(s)" in text
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_healthcheck_passes_on_the_running_service_and_fails_once_stopped(served) -> None:
    proc, port = served
    check = _healthcheck_command(port)
    assert subprocess.run(check, timeout=30).returncode == 0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert subprocess.run(check, capture_output=True, timeout=30).returncode != 0


def test_collector_image_runs_as_non_root() -> None:
    instructions = _parse(DEPLOY / "collector.Containerfile")
    final = _final_stage(instructions)
    assert _one("FROM", final).startswith("gcr.io/distroless/static")
    uid = _one("USER", final).split(":")[0]
    assert uid.isdigit() and int(uid) > 0
    args = _args(instructions)
    assert args["OCB_VERSION"] in (ROOT / "collector-config/builder-config.yaml").read_text()
    build = [r for k, r in instructions if k == "RUN" and "builder --config" in r]
    assert build and "builder-config.yaml" in build[0]


def test_collector_image_holds_a_queue_directory_its_user_owns() -> None:
    """A volume mounted at the queue directory of collector-config/ starts out with the
    image's ownership there: the collector's user must own it."""
    final = _final_stage(_parse(DEPLOY / "collector.Containerfile"))
    user = _one("USER", final)
    config = (ROOT / "collector-config/single.yaml").read_text()
    default = re.search(r"\$\{env:COLLECTOR_QUEUE_DIR:-([^}]+)\}", config).group(1)
    copies = [shlex.split(r) for k, r in final if k == "COPY" and f"--chown={user}" in r]
    assert any(default.startswith(c[-1].rstrip("/") + "/") for c in copies), copies


def test_service_image_holds_a_queue_directory_its_user_owns() -> None:
    """A volume mounted at service.queue_dir starts out with the image's ownership there."""
    config = (DEPLOY / "llmtap.yaml").read_text()
    queue_dir = re.search(r"queue_dir: \$\{env:LLMTAP_QUEUE_DIR:-([^}]+)\}", config).group(1)
    user = _one("USER").split(":")[0]
    runs = [r for k, r in FINAL if k == "RUN"]
    assert any(f"install -d -o {user} -g {user} {queue_dir}" in r for r in runs), runs
