"""Spans survive the end of the process and the fork of pre-fork servers and worker pools.

- Interpreter exit (Python 3.10-3.13, ``llmtap.configure()`` and ``opentelemetry-instrument``):
  a script that never flushes still delivers every span; no thread may be started at exit.
- A dead backend: shutdown takes no longer than the OpenTelemetry timeout settings allow, in
  all, and says in one log line what it dropped, where, and why.
- Fork: gunicorn (sync workers, with and without ``--preload``), uvicorn ``--workers 2``, a
  Celery prefork worker and a ``multiprocessing`` fork pool; every span of every worker
  arrives exactly once (counted by span id), and more than one worker did the work. Each
  server is stopped (SIGTERM) right after the last answer, so the spans of the last
  requests depend on what the worker does on its way out: atexit (gunicorn), the
  multiprocessing finalizers (Celery's billiard pool, ``multiprocessing``), or the app's
  lifespan shutdown (uvicorn ends its workers by re-raising SIGTERM: no atexit hook runs).

Everything is real and on loopback: the interpreters, the servers, the OTLP receiver
(``support.otlp_receiver``) and the dev model server the OpenAI SDK calls. Every loop is
bounded in time.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support.otlp_receiver import OtlpReceiver, SpanRecord

from .pythons import VERSIONS, launcher, python_with_llmtap

APPS = Path(__file__).parent / "apps"
UNIT = "llmtap.metadata.unit"
PID = "llmtap.metadata.pid"
SPANS_PER_UNIT = 2  # appkit.work: invoke_workflow handle + chat gpt-4o-mini


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(devserver: Any, endpoint: str, mode: str, **extra: str) -> dict[str, str]:
    """The environment of an app process: llmtap set up by ``configure()`` or by the
    launcher (``mode``), exporting to ``endpoint``; the model calls go to the dev server."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "LLMTAP_", "OPENAI_", "ANTHROPIC_", "APP_", "CELERY_"))
    }
    path = [str(APPS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env.update(
        PYTHONPATH=os.pathsep.join(path),
        PYTHONUNBUFFERED="1",
        OPENAI_BASE_URL=devserver.openai_base_url,
        OPENAI_API_KEY="sk-test-not-a-secret",
        APP_MODE=mode,
    )
    if mode == "configure":
        env["APP_OTLP_ENDPOINT"] = endpoint
    else:
        env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_SERVICE_NAME="instrumented-app",
            OTEL_LOGS_EXPORTER="none",
        )
    env.update(extra)
    return env


def command(python: Path, mode: str, *args: str) -> list[str]:
    prefix = [str(launcher(python))] if mode == "instrument" else []
    return [*prefix, str(python), *args]


def settle(
    rx: OtlpReceiver, count: int, output: str = "", timeout: float = 30.0
) -> list[SpanRecord]:
    """The spans once ``count`` arrived, and a moment more (for anything sent twice)."""
    try:
        rx.wait_for(lambda: len(rx.spans()) >= count, timeout, f"{count} spans")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\napp output:\n{output[-4000:]}") from None
    time.sleep(1.0)
    return rx.spans()


def check_exactly_once(spans: list[SpanRecord], units: dict[str, int]) -> dict[str, Any]:
    """Every unit's spans once, from the pid that did the unit; no span id twice."""
    twice = {span_id: n for span_id, n in Counter(s.span_id for s in spans).items() if n > 1}
    assert not twice, f"{len(twice)} span(s) arrived more than once"
    work = [s for s in spans if not str(s.attributes.get(UNIT, "")).startswith("startup-")]
    per_unit = Counter(s.attributes.get(UNIT) for s in work)
    assert per_unit == dict.fromkeys(units, SPANS_PER_UNIT), {
        "missing": sorted(set(units) - set(per_unit)),
        "unexpected": {u: n for u, n in per_unit.items() if per_unit[u] != SPANS_PER_UNIT},
    }
    for span in work:
        assert span.attributes[PID] == units[span.attributes[UNIT]]
    startup = [s for s in spans if str(s.attributes.get(UNIT, "")).startswith("startup-")]
    startup_pids = Counter(s.attributes[PID] for s in startup)
    assert all(n == 1 for n in startup_pids.values()), startup_pids
    seen = {
        "spans": len(spans),
        "units": len(units),
        "units_per_pid": dict(Counter(units.values())),
        "startup_pids": sorted(startup_pids),
    }
    print(seen)  # the figures, with pytest -s
    return seen


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The next line of ``proc``'s stdout, waiting at most ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            raise TimeoutError(f"no output in {timeout}s: {proc.args}")
    return proc.stdout.readline()


# 1. interpreter exit -----------------------------------------------------------------------


@pytest.mark.timeout(1500)  # the first run makes a venv per Python version
@pytest.mark.parametrize("mode", ["configure", "instrument"])
@pytest.mark.parametrize("version", VERSIONS)
def test_every_span_arrives_when_the_script_just_exits(version, mode, devserver):
    python = python_with_llmtap(version)
    units = 25
    with OtlpReceiver() as rx:
        env = app_env(devserver, rx.grpc_endpoint, mode, APP_UNITS=str(units))
        run = subprocess.run(
            command(python, mode, str(APPS / "exit_app.py")),
            env=env, capture_output=True, text=True, timeout=180, cwd=APPS,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        assert "can't create new thread" not in run.stderr, run.stderr[-3000:]
        pid = int(run.stdout.split()[1])
        spans = settle(rx, units * SPANS_PER_UNIT, run.stderr)
        check_exactly_once(spans, {f"u{i}": pid for i in range(units)})
        assert len(spans) == units * SPANS_PER_UNIT


# 2. a dead backend -------------------------------------------------------------------------

SLACK_S = 1.5  # interpreter start of the shutdown hooks and teardown, on a loaded machine


@pytest.mark.parametrize(
    ("mode", "protocol", "shutdown", "setting", "budget_s"),
    [
        ("configure", "grpc", "exit", {"OTEL_BSP_EXPORT_TIMEOUT": "1000"}, 1.0),
        ("configure", "http/protobuf", "exit", {"OTEL_BSP_EXPORT_TIMEOUT": "1000"}, 1.0),
        ("configure", "grpc", "explicit", {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1"}, 1.0),
        ("configure", "http/protobuf", "explicit", {"OTEL_EXPORTER_OTLP_TIMEOUT": "1"}, 1.0),
        ("instrument", "grpc", "exit", {"OTEL_BSP_EXPORT_TIMEOUT": "1000"}, 1.0),
    ],
)
def test_a_dead_backend_bounds_shutdown_by_the_timeout_settings(
    mode, protocol, shutdown, setting, budget_s, devserver
):
    dead = f"http://127.0.0.1:{free_port()}"
    env = app_env(
        devserver, dead, mode, APP_UNITS="25", APP_SHUTDOWN=shutdown,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol, **setting,
    )  # fmt: skip
    if mode == "instrument":  # the SDK's own meter provider has its own exit hook
        env["OTEL_METRICS_EXPORTER"] = "none"
    proc = subprocess.Popen(
        command(Path(sys.executable), mode, str(APPS / "exit_app.py")),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=APPS,
    )  # fmt: skip
    try:
        assert read_line(proc, 120).startswith("units-done")
        started = time.monotonic()
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    if shutdown == "explicit":
        took = float(out.split()[-1])
        assert took <= budget_s + 0.3, out
    assert elapsed <= budget_s + SLACK_S, (elapsed, err[-3000:])
    lines = [line for line in err.splitlines() if "llmtap: " in line]
    assert len(lines) == 1, err[-3000:]
    (line,) = lines
    name = "'otlp-env'" if mode == "configure" else "'OTLPSpanExporter'"
    (var,) = setting
    assert "shutdown dropped 50 span(s)" in line, line
    assert f"50 for {name}" in line, line
    assert f"from {var}" in line, line
    assert "failing" in line or "unanswered" in line, line  # why: the backend is down
    assert "is full" not in err


# 3. fork: pre-fork servers and worker pools ------------------------------------------------


@contextmanager
def running(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[Any]:
    """A server process; stopped with SIGTERM (graceful) when the block ends."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def wait_http(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s:\n{log.read_text()[-3000:]}")


def wait_for_text(log: Path, text: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert proc.poll() is None, log.read_text()[-3000:]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {text!r} after {timeout}s:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def drive_http(port: int, *, min_units: int = 16, max_units: int = 80) -> dict[str, int]:
    """Requests, four at a time, until at least ``min_units`` were served by two or more
    workers (at most ``max_units`` requests, 60 s); {unit: pid that served it}."""

    def get(unit: str) -> tuple[str, int]:
        url = f"http://127.0.0.1:{port}/work?unit={unit}"
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.loads(response.read())
        assert body["unit"] == unit
        return unit, body["pid"]

    served: dict[str, int] = {}
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(4) as pool:
        while len(served) < max_units and time.monotonic() < deadline:
            batch = [f"r{len(served) + i}" for i in range(4)]
            served.update(pool.map(get, batch))
            if len(served) >= min_units and len(set(served.values())) >= 2:
                break
    return served


def stop(proc: subprocess.Popen, log: Path, timeout: float = 40.0) -> str:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=timeout)
    return log.read_text()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
@pytest.mark.parametrize("mode", ["configure", "instrument"])
def test_gunicorn_sync_workers_lose_nothing(mode, preload, devserver, tmp_path):
    port, log = free_port(), tmp_path / "gunicorn.log"
    with OtlpReceiver() as rx:
        env = app_env(devserver, rx.grpc_endpoint, mode)
        cmd = command(
            Path(sys.executable), mode, "-m", "gunicorn", "--workers", "2",
            "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "20",
            *(["--preload"] if preload else []), "wsgi_app:application",
        )  # fmt: skip
        with running(cmd, env, APPS, log) as server:
            wait_http(port, server, log)
            served = drive_http(port)
            output = stop(server, log)
        assert server.returncode == 0, output[-3000:]
        assert len(set(served.values())) >= 2, served
        spans = settle(rx, len(served) * SPANS_PER_UNIT + (1 if preload else 2), output)
        seen = check_exactly_once(spans, served)
        if preload:  # the app (and its startup span) loaded once, in the master, before fork
            assert seen["startup_pids"] == [server.pid], seen
        else:
            assert set(served.values()) <= set(seen["startup_pids"]), seen
        assert "is full" not in output, output[-3000:]


def launcher_reaches_spawned_processes() -> bool:
    """Whether ``opentelemetry-instrument`` leaves its sitecustomize on PYTHONPATH, so that
    processes the app spawns (uvicorn's workers) are set up too; older releases (0.61b0,
    the oldest llmtap supports) take it off."""
    from opentelemetry.instrumentation import auto_instrumentation

    directory = str(Path(auto_instrumentation.__file__).parent)
    probe = "import os; print(os.environ.get('PYTHONPATH', ''))"
    run = subprocess.run(
        [str(launcher(Path(sys.executable))), sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=60, env=app_env_plain(),
    )  # fmt: skip
    return directory in run.stdout.strip().split(os.pathsep)


def app_env_plain() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTAP_"))}
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    return env


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["configure", "instrument"])
def test_uvicorn_workers_lose_nothing(mode, devserver, tmp_path):
    if mode == "instrument" and not launcher_reaches_spawned_processes():
        pytest.skip(
            "this opentelemetry-instrument takes itself off PYTHONPATH: uvicorn's spawned "
            "workers are not instrumented at all (an older opentelemetry-instrumentation)"
        )
    port, log = free_port(), tmp_path / "uvicorn.log"
    with OtlpReceiver() as rx:
        env = app_env(devserver, rx.grpc_endpoint, mode)
        cmd = command(
            Path(sys.executable), mode, "-m", "uvicorn", "--workers", "2",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "asgi_app:app",
        )  # fmt: skip
        with running(cmd, env, APPS, log) as server:
            wait_http(port, server, log)
            served = drive_http(port)
            output = stop(server, log)
        assert len(set(served.values())) >= 2, served
        spans = settle(rx, len(served) * SPANS_PER_UNIT + 2, output)
        seen = check_exactly_once(spans, served)
        assert set(served.values()) <= set(seen["startup_pids"]), seen
        assert "is full" not in output, output[-3000:]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["configure", "instrument"])
def test_celery_prefork_worker_loses_nothing(mode, devserver, tmp_path):
    from celery import Celery

    folder, log = tmp_path / "celery", tmp_path / "celery.log"
    for sub in ("queue", "processed", "results", "control"):
        (folder / sub).mkdir(parents=True)
    with OtlpReceiver() as rx:
        env = app_env(devserver, rx.grpc_endpoint, mode, CELERY_DIR=str(folder))
        env["CELERY_ROLE"] = "worker"
        cmd = command(
            Path(sys.executable), mode, "-m", "celery", "-A", "celery_app", "worker",
            "--pool", "prefork", "--concurrency", "2", "--loglevel", "INFO", "-n", "w1@localhost",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        )  # fmt: skip
        producer = Celery("producer")
        producer.conf.update(
            broker_url="filesystem://",
            broker_transport_options={
                "data_folder_in": str(folder / "queue"),
                "data_folder_out": str(folder / "queue"),
                "processed_folder": str(folder / "processed"),
                "control_folder": str(folder / "control"),
            },
            result_backend=f"file://{folder / 'results'}",
        )
        with running(cmd, env, APPS, log) as worker:
            wait_for_text(log, "ready.", worker)
            served: dict[str, int] = {}
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and len(served) < 60:
                batch = [f"t{len(served) + i}" for i in range(4)]
                results = [(u, producer.send_task("work", args=[u])) for u in batch]
                try:
                    for unit, result in results:
                        served[unit] = result.get(timeout=60, interval=0.05)
                except Exception as exc:
                    output = log.read_text()[-4000:]
                    raise AssertionError(f"{exc!r}; worker output:\n{output}") from None
                if len(served) >= 16 and len(set(served.values())) >= 2:
                    break
            output = stop(worker, log)
        assert worker.returncode == 0, output[-3000:]
        assert len(set(served.values())) >= 2, served
        assert worker.pid not in served.values()  # the pool's children did the work
        spans = settle(rx, len(served) * SPANS_PER_UNIT + 1, output)
        seen = check_exactly_once(spans, served)
        assert seen["startup_pids"] == [worker.pid], seen  # set up once, before the fork
        assert "is full" not in output, output[-3000:]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["configure", "instrument"])
def test_multiprocessing_fork_pool_loses_nothing(mode, devserver, tmp_path):
    with OtlpReceiver() as rx:
        env = app_env(devserver, rx.grpc_endpoint, mode, APP_UNITS="20")
        run = subprocess.run(
            command(Path(sys.executable), mode, str(APPS / "pool_app.py")),
            env=env, capture_output=True, text=True, timeout=180, cwd=APPS,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        served = result["units"]
        assert len(set(served.values())) >= 2, served
        assert result["parent"] not in served.values()
        spans = settle(rx, len(served) * SPANS_PER_UNIT + 1, run.stderr)
        seen = check_exactly_once(spans, served)
        # the parent's span was still queued when the pool forked: sent once, by the parent
        assert seen["startup_pids"] == [result["parent"]], seen
        assert "is full" not in run.stderr, run.stderr[-3000:]
