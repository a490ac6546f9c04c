"""Arize Phoenix for end-to-end tests: ``phoenix serve`` from the virtualenv of
``tools/fetch-phoenix.sh`` on free loopback ports, with SQLite in the test's directory and its
telemetry and internet requests off (``llmtap.demo.phoenix.server_env``, which ``llmtap demo
--ui`` uses too), read back over its REST API (``/v1``) and GraphQL (``/graphql``); and its UI
in the system's Chromium, driven by ``phoenix_browser.py`` under that virtualenv's Python
(playwright is installed there, not in llmtap's test environments).

A test that needs a missing Phoenix or Chromium is skipped with the command that installs it,
unless ``LLMTAP_REQUIRE_BINARIES=1`` (CI runs the fetch script first): then it fails.

    phoenix = start_phoenix(procs, tmp_path / "phoenix")
    ... export to phoenix.traces_url ...
    spans = phoenix.wait_spans(count=12)
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmtap.demo.phoenix import server_env
from support.binaries import (
    LOOPBACK,
    REPO,
    Proc,
    Processes,
    free_ports,
    http_get,
    http_json,
    unavailable,
    wait_until,
)

FETCH_SCRIPT = REPO / "tools" / "fetch-phoenix.sh"
FETCH_COMMAND = str(FETCH_SCRIPT.relative_to(REPO))
BROWSER_SCRIPT = Path(__file__).resolve().parent / "phoenix_browser.py"
CHROMIUM = Path("/usr/bin/chromium")


def phoenix_venv() -> Path:
    """The virtualenv tools/fetch-phoenix.sh installs Phoenix into (installed or not)."""
    printed = subprocess.run(
        [str(FETCH_SCRIPT), "--print"], capture_output=True, text=True, timeout=30, check=True
    )
    return Path(printed.stdout.strip())


def require_phoenix() -> Path:
    """The ``phoenix`` command of the fetch script's virtualenv; skips the calling test when
    it is not installed (fails under ``LLMTAP_REQUIRE_BINARIES=1``)."""
    executable = phoenix_venv() / "bin" / "phoenix"
    if not (executable.is_file() and os.access(executable, os.X_OK)):
        unavailable(
            f"Arize Phoenix is not installed in {executable.parents[1]}: run {FETCH_COMMAND}"
        )
    return executable


def require_browser() -> tuple[Path, Path]:
    """(Python of the Phoenix virtualenv with playwright, Chromium); skips (fails under
    ``LLMTAP_REQUIRE_BINARIES=1``) when either is missing."""
    python = require_phoenix().parent / "python"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        unavailable(
            f"Chromium is not installed at {CHROMIUM}: run {FETCH_COMMAND} as root where apt-get "
            "works (it installs Debian's chromium), or apt-get install chromium"
        )
    found = subprocess.run(
        [str(python), "-c", "import playwright"], capture_output=True, text=True, timeout=60
    )
    if found.returncode != 0:
        unavailable(f"playwright is missing from {python.parents[1]}: run {FETCH_COMMAND} --force")
    return python, CHROMIUM


@dataclass
class PhoenixServer:
    proc: Proc
    #: seconds from the process's start until Phoenix answered /readyz
    start_s: float

    @property
    def url(self) -> str:
        return self.proc.url("http")

    @property
    def traces_url(self) -> str:
        """OTLP/HTTP traces (the ``phoenix`` export preset's endpoint)."""
        return self.proc.url("http", "/v1/traces")

    def rest(self, path: str) -> Any:
        return http_json(f"{self.url}{path}")

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        assert not answer.get("errors"), f"GraphQL errors: {answer['errors']}"
        return answer["data"]

    def projects(self) -> list[dict[str, Any]]:
        """Every project (``GET /v1/projects``): ``{"name", "id", ...}``."""
        return self.rest("/v1/projects")["data"]

    def spans(self, project: str) -> list[dict[str, Any]]:
        """Every span of ``project`` (``GET /v1/projects/{name}/spans``, all pages)."""
        out: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = self.rest(f"/v1/projects/{project}/spans?limit=1000{cursor}")
            out += page["data"]
            if not page.get("next_cursor"):
                return out
            cursor = f"&cursor={page['next_cursor']}"

    def all_spans(self) -> dict[str, list[dict[str, Any]]]:
        """Project name → its spans, for every project that has any."""
        found = {p["name"]: self.spans(p["name"]) for p in self.projects()}
        return {name: spans for name, spans in found.items() if spans}

    def wait_spans(self, span_ids: Iterable[str], timeout: float = 60) -> list[dict[str, Any]]:
        """Every span (of any project), once all of ``span_ids`` (hex) are stored."""
        wanted = set(span_ids)

        def stored() -> list[dict[str, Any]] | None:
            spans = [s for group in self.all_spans().values() for s in group]
            have = {s["context"]["span_id"] for s in spans}
            return spans if wanted <= have else None

        return wait_until(stored, timeout, f"Phoenix to store {len(wanted)} spans", interval=0.5)


def start_phoenix(procs: Processes, working_dir: Path, name: str = "phoenix") -> PhoenixServer:
    """``phoenix serve`` with UI, REST and OTLP/HTTP on one free port (``http``) and OTLP/gRPC
    on another (``grpc``), SQLite under ``working_dir``; waits until ``/readyz`` answers."""
    executable = require_phoenix()
    http, grpc = free_ports(2)
    working_dir.mkdir(parents=True, exist_ok=True)
    env = server_env(working_dir, http, grpc)
    began = time.monotonic()
    proc = procs.start(name, [executable, "serve"], env=env, ports={"http": http, "grpc": grpc})
    proc.wait_healthy(lambda: http_get(proc.url("http", "/readyz"))[0] == 200, timeout=180)
    return PhoenixServer(proc, time.monotonic() - began)


@dataclass
class PageView:
    """What the browser saw of a page of Phoenix's UI."""

    url: str
    text: str
    screenshot: Path
    #: host:port of every request the page made
    hosts: list[str]
    #: the expected texts that never appeared (empty: all of them did)
    missing: list[str]


def open_page(url: str, screenshot: Path, expect: Sequence[str], timeout_s: float = 60) -> PageView:
    """Open ``url`` in headless Chromium, wait until the page's text holds every one of
    ``expect`` (or ``timeout_s`` passes), save a full-page screenshot and return what it saw."""
    python, chromium = require_browser()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    args = [str(python), str(BROWSER_SCRIPT), "--url", url, "--screenshot", str(screenshot)]
    args += ["--chromium", str(chromium), "--timeout", str(timeout_s)]
    args += [arg for text in expect for arg in ("--expect", text)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s + 90)
    assert done.returncode == 0, f"{BROWSER_SCRIPT.name} failed:\n{done.stdout}\n{done.stderr}"
    seen = json.loads(done.stdout)
    return PageView(seen["url"], seen["text"], screenshot, seen["hosts"], seen["missing"])


def loopback(host: str) -> bool:
    return host.split(":")[0] in (LOOPBACK, "localhost", "[::1]")
