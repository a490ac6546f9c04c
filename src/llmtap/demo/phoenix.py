"""A local Arize Phoenix for ``llmtap demo --ui``: found, started on loopback with SQLite in
a folder of the demo's, waited for, and stopped.

Phoenix is not a dependency of llmtap: it needs Python >= 3.11 and pins releases (anthropic
< 2, among others) that clash with the SDKs llmtap supports, so it lives in a virtualenv of
its own. :func:`find_phoenix` looks for its ``phoenix`` command in ``$LLMTAP_PHOENIX``, on
``PATH`` (``pipx install arize-phoenix``, ``uv tool install arize-phoenix``) and in the cache
of ``tools/fetch-phoenix.sh`` (``$LLMTAP_PHOENIX_DIR``, default ``~/.cache/llmtap/phoenix``).

Phoenix runs with its telemetry and every request of its own to the internet turned off.
Its UI, REST API and OTLP/HTTP listen on loopback only; its OTLP/gRPC receiver (which the
demo does not use) listens on every interface whatever ``PHOENIX_HOST`` says (Phoenix 20.26
binds it to ``[::]``), on a free port of the OS's choosing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

EXECUTABLE_ENV = "LLMTAP_PHOENIX"
CACHE_ENV = "LLMTAP_PHOENIX_DIR"
HOST = "127.0.0.1"
DEFAULT_PORT = 6006
INSTALL_HINT = (
    "Phoenix is not installed. It runs beside llmtap, in an environment of its own "
    "(Python >= 3.11), e.g.:\n"
    "  pipx install arize-phoenix        (or: uv tool install arize-phoenix)\n"
    "or, in a checkout of llmtap: tools/fetch-phoenix.sh\n"
    f"or point {EXECUTABLE_ENV} at a phoenix executable."
)


class PhoenixUnavailable(Exception):
    """Phoenix cannot be found or did not start; the message says what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llmtap" / "phoenix")


def _version_key(path: Path) -> tuple[int, ...]:
    """The release of ``<cache>/<version>/venv/bin/phoenix`` as numbers, for sorting."""
    parts = path.parents[2].name.split(".")
    return tuple(int(p) if p.isdigit() else -1 for p in parts)


def find_phoenix() -> Path:
    """The ``phoenix`` command: ``$LLMTAP_PHOENIX``, else on ``PATH``, else the newest in the
    cache of tools/fetch-phoenix.sh; :class:`PhoenixUnavailable` when there is none."""
    chosen = os.environ.get(EXECUTABLE_ENV, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise PhoenixUnavailable(f"{EXECUTABLE_ENV}={chosen} is not an executable file")
    found = shutil.which("phoenix")
    if found:
        return Path(found)
    cached = [
        p for p in cache_dir().glob("*/venv/bin/phoenix") if p.is_file() and os.access(p, os.X_OK)
    ]
    if cached:
        return max(cached, key=_version_key)
    raise PhoenixUnavailable(INSTALL_HINT)


def server_env(working_dir: Path, port: int, grpc_port: int) -> dict[str, str]:
    """The environment of ``phoenix serve`` on loopback: UI, REST and OTLP/HTTP on ``port``,
    OTLP/gRPC on ``grpc_port``, SQLite under ``working_dir``; no telemetry, nothing fetched
    from the internet, no assistant, no MCP server."""
    return {
        "PHOENIX_HOST": HOST,
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(working_dir),
        "PHOENIX_SQL_DATABASE_URL": f"sqlite:///{working_dir / 'phoenix.db'}",
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
        "PHOENIX_ENABLE_MCP_SERVER": "false",
        "PHOENIX_LOG_MIGRATIONS": "false",
    }


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ready(url: str) -> bool:
    """Phoenix answers ``/readyz`` (its database is reachable)."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class LocalPhoenix:
    """A ``phoenix serve`` this process started; its output goes to ``log_path``."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def traces_url(self) -> str:
        """Where OTLP/HTTP traces go (the ``phoenix`` export preset's endpoint)."""
        return f"{self.url}/v1/traces"

    def trace_url(self, trace_id: str) -> str:
        """The UI's page of one trace (Phoenix redirects to its project)."""
        return f"{self.url}/redirects/traces/{trace_id}"

    @classmethod
    def start(
        cls, executable: Path, working_dir: Path, port: int = DEFAULT_PORT, timeout: float = 120
    ) -> LocalPhoenix:
        """Start ``executable serve`` on ``port`` (a free one when it is taken), in its own
        session (a Ctrl-C in the terminal reaches this process, which then stops it), and
        wait until it is ready."""
        working_dir.mkdir(parents=True, exist_ok=True)
        port = port if port_free(port) else free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
        env.update(server_env(working_dir, port, free_port()))
        log_path = working_dir / "phoenix.log"
        log: IO[bytes]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [str(executable), "serve"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        phoenix = cls(process, port, log_path)
        try:
            phoenix.wait_ready(timeout)
        except BaseException:
            phoenix.stop()
            raise
        return phoenix

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PhoenixUnavailable(
                    f"Phoenix exited with {self.process.returncode} while starting "
                    f"(log: {self.log_path}):\n{_tail(self.log_path)}"
                )
            if ready(self.url):
                return
            time.sleep(0.25)
        raise PhoenixUnavailable(
            f"Phoenix not ready after {timeout:.0f} s (log: {self.log_path}):\n"
            f"{_tail(self.log_path)}"
        )

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(5)

    def __enter__(self) -> LocalPhoenix:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
