"""Real processes for end-to-end tests: the OpenTelemetry Collector distribution
(``otelcol-llmtap``), Jaeger v2, ``llmtap serve`` and the test-only Collector with the
``otlp_json_file`` receiver (``otelcol-jsonfile``), on free loopback ports.

Binaries come from ``tools/build-otel-binaries.sh``, which puts them in ``$LLMTAP_BIN_DIR``
(default ``~/.cache/llmtap/bin``); ``PATH`` is the fallback. A test that needs a missing
binary is skipped with the command that builds it, unless ``LLMTAP_REQUIRE_BINARIES=1``
(set by CI, which builds them first): then it fails.

    with Processes(tmp_path) as procs:
        jaeger = start_jaeger(procs)
        collector = start_collector(procs, CONFIG_DIR / "single.yaml", env={...})
        ...

Every process writes its stdout and stderr to ``<log_dir>/<name>.log``; ``Processes`` stops
them all (SIGTERM, then SIGKILL) and :meth:`Processes.logs` gathers the logs for a failure
report.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "collector-config"
BUILD_SCRIPT = REPO / "tools" / "build-otel-binaries.sh"
BIN_DIR_ENV = "LLMTAP_BIN_DIR"
REQUIRE_ENV = "LLMTAP_REQUIRE_BINARIES"
LOOPBACK = "127.0.0.1"
BUILD_COMMAND = str(BUILD_SCRIPT.relative_to(REPO))
NOT_BUILT = "is not built"  # in every skip reason of a missing binary (the summary counts them)


class BinaryMissing(Exception):
    """A binary that tools/build-otel-binaries.sh builds is not there."""


def bin_dir() -> Path:
    return Path(os.environ.get(BIN_DIR_ENV) or Path.home() / ".cache" / "llmtap" / "bin")


def find_binary(name: str) -> Path | None:
    """``$LLMTAP_BIN_DIR/<name>``, else ``<name>`` on PATH, else None."""
    candidate = bin_dir() / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def require_binary(name: str) -> Path:
    """The binary's path; skips the calling test when it is missing (fails under
    ``LLMTAP_REQUIRE_BINARIES=1``)."""
    path = find_binary(name)
    if path is not None:
        return path
    where = f"needs Go >= 1.26; writes to {bin_dir()}"
    unavailable(f"{name} {NOT_BUILT}: run {BUILD_COMMAND} ({where})")


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test for a missing binary or jar (fail under
    ``LLMTAP_REQUIRE_BINARIES=1``)."""
    import pytest

    if os.environ.get(REQUIRE_ENV, "").strip() in ("1", "true", "yes"):
        pytest.fail(f"{reason}; {REQUIRE_ENV} is set", pytrace=False)
    pytest.skip(reason)
    raise BinaryMissing(reason)  # pragma: no cover - skip raises


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the OS's choice for a bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct free ports (held together while chosen, so they differ)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def http_json(url: str, timeout: float = 5.0) -> Any:
    status, body = http_get(url, timeout)
    if status != 200:
        raise AssertionError(f"GET {url}: HTTP {status} {body[:500]!r}")
    return json.loads(body)


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; that value, else AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Proc:
    """One started process and where its output goes."""

    name: str
    args: list[str]
    log_path: Path
    popen: subprocess.Popen
    ports: dict[str, int] = field(default_factory=dict)

    def url(self, port: str, path: str = "") -> str:
        return f"http://{LOOPBACK}:{self.ports[port]}{path}"

    def endpoint(self, port: str) -> str:
        return f"{LOOPBACK}:{self.ports[port]}"

    def running(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_healthy(self, check: Callable[[], bool], timeout: float = 60.0) -> Proc:
        """Wait for ``check``; fails at once, with the log, when the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode} before it was ready:\n"
                    f"{tail(self.log())}"
                )
            if check():
                return self
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready after {timeout:.0f}s:\n{tail(self.log())}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Starts processes with logs under ``log_dir`` and stops them all on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        args: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        ports: Mapping[str, int] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        """Run ``args`` with the current environment (minus ``OTEL_*``/``LLMTAP_*``) plus
        ``env``; output to ``<log_dir>/<name>.log``."""
        log_path = self.log_dir / f"{name}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTAP_"))}
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                [str(a) for a in args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**base, "PYTHONUNBUFFERED": "1", **(env or {})},
                cwd=cwd,
            )
        proc = Proc(name, [str(a) for a in args], log_path, popen, dict(ports or {}))
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n\n".join(f"===== {p.name} ({p.log_path})\n{tail(p.log())}" for p in self.procs)

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM to every process at once, then wait (SIGKILL after ``timeout``)."""
        for proc in self.procs:
            if proc.running():
                with contextlib.suppress(OSError):
                    proc.popen.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop(timeout)

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
        if exc is not None:
            sys.stderr.write(f"\nlogs of the processes of the failed test:\n{self.logs()}\n")


# the processes ---------------------------------------------------------------------------------


def start_collector(
    procs: Processes, config: Path, name: str = "otelcol", env: Mapping[str, str] | None = None
) -> Proc:
    """``otelcol-llmtap --config <config>`` with OTLP gRPC/HTTP, health and telemetry on free
    loopback ports (the ``COLLECTOR_*`` variables of collector-config/) and its sending
    queues in a directory of its own next to the logs (``COLLECTOR_QUEUE_DIR`` in ``env``
    to choose one); waits for health."""
    binary = require_binary("otelcol-llmtap")
    grpc, http, health, telemetry = free_ports(4)
    ports = {"grpc": grpc, "http": http, "health": health, "telemetry": telemetry}
    collector_env = {
        "COLLECTOR_QUEUE_DIR": str(procs.log_dir.parent / "queues" / name),
        "COLLECTOR_OTLP_GRPC_ENDPOINT": f"{LOOPBACK}:{grpc}",
        "COLLECTOR_OTLP_HTTP_ENDPOINT": f"{LOOPBACK}:{http}",
        "COLLECTOR_HEALTH_ENDPOINT": f"{LOOPBACK}:{health}",
        "COLLECTOR_TELEMETRY_HOST": LOOPBACK,
        "COLLECTOR_TELEMETRY_PORT": str(telemetry),
        "COLLECTOR_BATCH_TIMEOUT": "200ms",
        **(env or {}),
    }
    proc = procs.start(name, [binary, "--config", config], env=collector_env, ports=ports)
    return proc.wait_healthy(lambda: http_get(proc.url("health"))[0] == 200)


def start_jsonfile_collector(
    procs: Processes,
    config: Path,
    name: str = "otelcol-jsonfile",
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> Proc:
    """``otelcol-jsonfile --config <config> [args]``, the test-only Collector that reads
    OTLP/JSON files (collector-config/testing/jsonfile-builder.yaml). It has no health check
    extension: ``config`` must serve the Collector's own metrics on
    ``${env:COLLECTOR_TELEMETRY_HOST}:${env:COLLECTOR_TELEMETRY_PORT}`` (a Prometheus pull
    reader), and the start waits until ``/metrics`` answers (port ``telemetry``)."""
    binary = require_binary("otelcol-jsonfile")
    (telemetry,) = free_ports(1)
    collector_env = {
        "COLLECTOR_TELEMETRY_HOST": LOOPBACK,
        "COLLECTOR_TELEMETRY_PORT": str(telemetry),
        **(env or {}),
    }
    proc = procs.start(
        name,
        [binary, "--config", config, *args],
        env=collector_env,
        ports={"telemetry": telemetry},
    )
    return proc.wait_healthy(lambda: http_get(proc.url("telemetry", "/metrics"))[0] == 200)


JAEGER_CONFIG = REPO / "tests" / "e2e" / "jaeger-memory.yaml"


def start_jaeger(procs: Processes, name: str = "jaeger", config: Path = JAEGER_CONFIG) -> Proc:
    """Jaeger v2 with memory storage (``tests/e2e/jaeger-memory.yaml``): OTLP gRPC in, query
    HTTP API out; waits until ``/api/services`` answers."""
    binary = require_binary("jaeger")
    grpc, query, query_grpc, health, telemetry = free_ports(5)
    ports = {"grpc": grpc, "query": query, "health": health}
    env = {
        "JAEGER_OTLP_GRPC_ENDPOINT": f"{LOOPBACK}:{grpc}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"{LOOPBACK}:{query}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"{LOOPBACK}:{query_grpc}",
        "JAEGER_HEALTH_ENDPOINT": f"{LOOPBACK}:{health}",
        "JAEGER_TELEMETRY_HOST": LOOPBACK,
        "JAEGER_TELEMETRY_PORT": str(telemetry),
    }
    proc = procs.start(name, [binary, "--config", config], env=env, ports=ports)
    return proc.wait_healthy(
        lambda: port_open(grpc) and http_get(proc.url("query", "/api/services"))[0] == 200
    )


def start_llmtap_serve(
    procs: Processes, config: Path, name: str = "llmtap", env: Mapping[str, str] | None = None
) -> Proc:
    """``llmtap serve --config <config>`` on free loopback ports (OTLP gRPC, HTTP,
    /metrics); waits until /metrics answers and gRPC accepts connections."""
    grpc, http, metrics = free_ports(3)
    ports = {"grpc": grpc, "http": http, "metrics": metrics}
    args = [
        sys.executable,
        "-m",
        "llmtap",
        "serve",
        "--config",
        config,
        "--grpc-address",
        f"{LOOPBACK}:{grpc}",
        "--http-address",
        f"{LOOPBACK}:{http}",
        "--metrics-address",
        f"{LOOPBACK}:{metrics}",
    ]
    proc = procs.start(name, args, env=env, ports=ports)
    return proc.wait_healthy(
        lambda: port_open(grpc) and http_get(proc.url("metrics", "/metrics"))[0] == 200
    )


TEMPO_CONFIG = REPO / "deploy" / "tempo" / "tempo.yaml"


def require_tempo() -> Path:
    """The ``tempo`` binary; skips (fails under ``LLMTAP_REQUIRE_BINARIES=1``) saying how to
    build it: the Go module proxy has no Tempo 2.x, the build script needs its source."""
    path = find_binary("tempo")
    if path is not None:
        return path
    unavailable(
        f"tempo {NOT_BUILT}: run {BUILD_COMMAND} with git access to GitHub or with"
        " LLMTAP_TEMPO_SRC=<a clone of github.com/grafana/tempo> (see docs/backends/tempo.md)"
    )


def tempo_major(binary: Path) -> int:
    """The major version ``tempo -version`` prints (``tempo, version 2.9.0 ...``)."""
    out = subprocess.run([str(binary), "-version"], capture_output=True, text=True, timeout=30)
    words = out.stdout.split()
    return int(words[words.index("version") + 1].split(".")[0])


def tempo_test_keys(major: int, data_dir: Path, trace_idle: str = "1s") -> dict[str, Any]:
    """What a test run adds to deploy/tempo/tempo.yaml: a trace counts as complete after
    ``trace_idle`` without new spans (Tempo 2's ``ingester.trace_idle_period``, default 5 s;
    Tempo 3's ``live_store.max_trace_idle``), checked every second, so that it is searchable
    within seconds; Tempo 3's own local paths (default under /var/tempo) under ``data_dir``;
    and no anonymous usage report (no internet here)."""
    quiet = {"usage_report": {"reporting_enabled": False}}
    if major < 3:
        return {"ingester": {"trace_idle_period": trace_idle, "flush_check_period": "1s"}, **quiet}
    live_store = {
        "max_trace_idle": trace_idle,
        "flush_check_period": "1s",
        "wal": {"path": str(data_dir / "live-store" / "traces")},
        "shutdown_marker_dir": str(data_dir / "live-store" / "shutdown-marker"),
    }
    return {
        "live_store": live_store,
        "block_builder": {"wal": {"path": str(data_dir / "block-builder" / "traces")}},
        "backend_scheduler": {"local_work_path": str(data_dir / "backend-scheduler")},
        **quiet,
    }


def tempo_test_config(
    config: Path,
    data_dir: Path,
    ports: Mapping[str, int],
    keys: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """``config`` (a Tempo config file) on loopback ``ports`` (``http``, ``grpc``, ``otlp_grpc``,
    ``otlp_http``, ``memberlist``) with its storage under ``data_dir``, plus ``keys`` by
    section (:func:`tempo_test_keys`); every other key as the file has it."""
    import yaml

    cfg = yaml.safe_load(config.read_text())
    server = cfg.setdefault("server", {})
    server.update(http_listen_address=LOOPBACK, http_listen_port=ports["http"])
    server.update(grpc_listen_address=LOOPBACK, grpc_listen_port=ports["grpc"])
    protocols = cfg["distributor"]["receivers"]["otlp"]["protocols"]
    protocols["grpc"]["endpoint"] = f"{LOOPBACK}:{ports['otlp_grpc']}"
    protocols["http"]["endpoint"] = f"{LOOPBACK}:{ports['otlp_http']}"
    trace = cfg["storage"]["trace"]
    trace["wal"]["path"] = str(data_dir / "wal")
    trace["local"]["path"] = str(data_dir / "blocks")
    cfg["memberlist"] = {"bind_addr": [LOOPBACK], "bind_port": ports["memberlist"]}
    for section, values in keys.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def start_tempo(
    procs: Processes, name: str = "tempo", config: Path = TEMPO_CONFIG, trace_idle: str = "1s"
) -> Proc:
    """Grafana Tempo's single binary with ``config`` (deploy/tempo/tempo.yaml) adapted by
    :func:`tempo_test_config` to free loopback ports, a data directory next to the logs and
    :func:`tempo_test_keys`; waits until ``/ready`` answers 200 (ports ``http``, the query
    API, and ``otlp_grpc``)."""
    import yaml

    binary = require_tempo()
    names = ("http", "grpc", "otlp_grpc", "otlp_http", "memberlist")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    data_dir = procs.log_dir.parent / name
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = tempo_test_keys(tempo_major(binary), data_dir, trace_idle)
    path = data_dir / "tempo.yaml"
    path.write_text(yaml.safe_dump(tempo_test_config(config, data_dir, ports, keys)))
    proc = procs.start(name, [binary, f"-config.file={path}"], ports=ports, cwd=data_dir)
    return proc.wait_healthy(lambda: http_get(proc.url("http", "/ready"))[0] == 200, 90)
