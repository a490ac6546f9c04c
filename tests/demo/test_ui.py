"""``llmtap demo --ui``: the demo's traces in a local Arize Phoenix until Ctrl-C.

The whole flow runs against the real Phoenix of tools/fetch-phoenix.sh (skipped without it,
failed under ``LLMTAP_REQUIRE_BINARIES=1``); the errors run without any Phoenix.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

from llmtap.demo.phoenix import CACHE_ENV, EXECUTABLE_ENV, LocalPhoenix
from llmtap.demo.ui import trace_links
from llmtap.pipeline.span import SpanData
from support.binaries import http_get, port_open, wait_until
from support.phoenix_server import require_phoenix

TRACE_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/redirects/traces/([0-9a-f]{32})")
#: a request's trace line, and the line of its evaluation trace under it
REQUEST_LINE = re.compile(r"^  [^ ⇢].*" + TRACE_URL.pattern, re.MULTILINE)
EVALUATION_LINE = re.compile(r"^    ⇢ its \d+ verdicts? +" + TRACE_URL.pattern, re.MULTILINE)
TARGET_TRACE = "llmtap.evaluation.target.trace_id"
READY = "Ctrl-C to stop it"


def demo_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith(("OTEL_", "LLMTAP_"))
    }
    env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"
    return {**env, **extra}


def demo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "llmtap", "demo", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_without_phoenix_it_says_how_to_install_it_and_runs_nothing(tmp_path):
    env = demo_env(PATH=str(tmp_path / "empty-bin"), **{CACHE_ENV: str(tmp_path / "cache")})
    done = demo("--ui", "--keep", str(tmp_path / "demo"), env=env)
    assert done.returncode == 1, done.stderr
    assert "llmtap demo --ui: Phoenix is not installed" in done.stderr
    assert "pipx install arize-phoenix" in done.stderr
    assert "tools/fetch-phoenix.sh" in done.stderr and EXECUTABLE_ENV in done.stderr
    assert "llmtap service" not in done.stdout  # the demo did not run
    assert "Traceback" not in done.stderr


def test_ui_and_a_phoenix_url_together_are_refused(tmp_path):
    done = demo("--ui", "--phoenix", "http://127.0.0.1:1/v1/traces", env=demo_env())
    assert done.returncode == 2
    assert "--ui starts a Phoenix of its own; leave out --phoenix" in done.stderr


def test_trace_links_name_each_request_trace_with_its_evaluation_trace_under_it():
    class Fake(LocalPhoenix):  # only its URLs are used
        def __init__(self) -> None:
            self.port = 6006

    def verdict(name: str, span_id: int, **more: int) -> SpanData:
        target = {TARGET_TRACE: f"{1:032x}", "llmtap.evaluation.target.span_id": f"{2:016x}"}
        return SpanData(f"evaluate {name}", target, span_id=span_id, **more)

    spans = [
        SpanData("invoke_workflow support-answer", {"llmtap.feature": "support"}, trace_id=1),
        SpanData("chat gpt-4o-mini", {}, trace_id=1, span_id=2, parent_span_id=5),
        verdict("faithfulness", 7, trace_id=0xE1),  # linked: roots of the evaluation trace
        verdict("grounded", 8, trace_id=0xE1),
        verdict("user_feedback", 9, trace_id=1, parent_span_id=2),  # feedback: in the trace
        SpanData("chat claude-sonnet-4-5", {}, trace_id=0xAB),
    ]
    url = "http://127.0.0.1:6006/redirects/traces/"
    assert trace_links(Fake(), spans) == [
        f"  {'[support] invoke_workflow support-answer':<48} {url}{1:032x}",
        f"    {'⇢ its 2 verdicts':<46} {url}{0xE1:032x}",
        f"  {'chat claude-sonnet-4-5':<48} {url}{0xAB:032x}",
    ]


def value_of(span: dict, key: str) -> str | None:
    """A string attribute of an OTLP/JSON span."""
    found = [a["value"].get("stringValue") for a in span.get("attributes", ()) if a["key"] == key]
    return found[0] if found else None


def evaluation_pairs(shown: str) -> set[tuple[str, str]]:
    """(request trace id, evaluation trace id) for each evaluation line of the output, the
    request being the trace line above it."""
    pairs, request = set(), None
    for line in shown.splitlines():
        if found := REQUEST_LINE.match(line):
            request = found.group(2)
        elif found := EVALUATION_LINE.match(line):
            assert request is not None, line
            pairs.add((request, found.group(2)))
    assert pairs, shown
    return pairs


class Lines:
    """A process's stdout, line by line, read on a thread (so that waits can time out)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, marker: str, timeout: float) -> str:
        """The output up to the line holding ``marker``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if marker in line:
                return "".join(seen)
        raise AssertionError(f"no {marker!r} after {timeout:.0f} s:\n{''.join(seen)}")

    def rest(self, timeout: float = 30) -> str:
        """The output up to its end."""
        out = []
        while (line := self.lines.get(timeout=timeout)) is not None:
            out.append(line)
        return "".join(out)


def test_ui_serves_the_demo_in_phoenix_until_ctrl_c(tmp_path, record_property):
    executable = require_phoenix()
    folder = tmp_path / "demo"
    env = demo_env(**{EXECUTABLE_ENV: str(executable)})
    command = [sys.executable, "-m", "llmtap", "demo", "--ui", "--keep", str(folder)]
    began = time.monotonic()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        output = Lines(proc)
        shown = output.until(READY, timeout=240)
        record_property("demo_ui_ready_s", round(time.monotonic() - began, 1))
        links = REQUEST_LINE.findall(shown)
        assert len(links) == 5, shown  # the demo's requests, not their evaluation traces
        port = int(links[0][0])
        base = f"http://127.0.0.1:{port}"
        assert f"Phoenix {base} ready in" in shown
        sent = [json.loads(line) for line in (folder / "traces.jsonl").read_text().splitlines()]
        spans = [sp for r in sent for rs in r["resourceSpans"] for ss in rs["scopeSpans"]
                 for sp in ss["spans"]]  # fmt: skip
        count = len(spans)
        # under each request, its evaluation trace: every one the judge wrote, under its request
        assert evaluation_pairs(shown) == {
            (value_of(sp, TARGET_TRACE), sp["traceId"])
            for sp in spans
            if value_of(sp, TARGET_TRACE) and not sp.get("parentSpanId")
        }

        def stored() -> bool:
            projects = json.loads(http_get(f"{base}/v1/projects")[1])["data"]
            spans = [
                json.loads(http_get(f"{base}/v1/projects/{p['name']}/spans?limit=1000")[1])
                for p in projects
            ]
            return sum(len(s["data"]) for s in spans) == count

        wait_until(stored, 60, f"Phoenix to hold the demo's {count} spans", interval=0.5)
        status, page = http_get(f"{base}/redirects/traces/{links[0][1]}")
        assert status == 200 and b"<html" in page.lower()
        assert proc.poll() is None  # still serving
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert "stopping Phoenix" in output.rest()
        assert not port_open(port)
        assert (folder / "phoenix" / "phoenix.db").is_file()
        assert (folder / "phoenix" / "phoenix.log").is_file()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
