"""Feedback recorded by response id in another worker process lands in the answer's trace.

A real gunicorn app with two workers (``support/feedback_workers.py``), both instrumented by
llmtap and exporting OTLP/gRPC to a real llmtap service (``ServiceApp`` with its judge and a
``when: {feedback: negative}`` rule) that forwards to an OTLP receiver (the backend). Worker
A answers a chat (the loopback dev server is the model); once the service has judged that
trace, worker B records a thumbs down for the answer's response id, which B never saw. The
backend must get B's feedback copied into A's trace under the chat span, and the feedback
rule's verdict on the chat span (judged late, as for feedback recorded in the answer's own
process), linked to it from the evaluation trace.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llmtap
from llmtap.service.app import ServiceApp
from llmtap.service.judging import Judging
from support.binaries import free_port
from support.otlp_receiver import OtlpReceiver
from support.running_service import grpc_export, running_service, wait_until

SUPPORT = Path(__file__).resolve().parents[1] / "support"
SRC = Path(llmtap.__file__).resolve().parents[1]

JUDGE = {
    "trace_idle_s": 0.3,
    "trace_max_wait_s": 3.0,
    "rules": [
        {
            "evaluator": "not_contains",
            "name": "no_devserver_on_negative_feedback",
            "value": "devserver",
            "when": {"feedback": "negative"},
        }
    ],
}


@pytest.fixture
def judged_service(tmp_path: Path) -> Iterator[tuple[ServiceApp, Judging, OtlpReceiver]]:
    with (
        OtlpReceiver() as backend,
        running_service(
            tmp_path, [grpc_export(backend)], config={"judge": JUDGE}, http_address="off"
        ) as app,
    ):
        judging = Judging.from_config(app.config, emit=app.submit, metrics_registry=app.metrics)
        assert judging is not None
        app.on_spans(judging.on_spans)
        judging.start()
        app.on_stop(judging.stop)
        yield app, judging, backend


class _Worker:
    """A kept-alive connection to the app: the same gunicorn worker serves all its requests."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.pid = self.call("/pid")["pid"]

    def call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        self.conn.request("POST", path, json.dumps(body or {}).encode())
        response = self.conn.getresponse()
        data = response.read()
        assert response.status == 200, data
        return json.loads(data)


def _two_workers(port: int, proc: subprocess.Popen[str]) -> tuple[_Worker, _Worker]:
    deadline = time.monotonic() + 30
    first: _Worker | None = None
    spare: list[_Worker] = []
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            worker = _Worker(port)
        except OSError:
            time.sleep(0.1)
            continue
        if first is None:
            first = worker
        elif worker.pid != first.pid:
            return first, worker
        else:
            spare.append(worker)  # kept open, so the next connection may go elsewhere
    raise AssertionError("gunicorn never answered from two different workers")


@pytest.fixture
def gunicorn(judged_service: Any, devserver: Any) -> Iterator[tuple[_Worker, _Worker]]:
    app = judged_service[0]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "LLMTAP_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(SRC), str(SUPPORT), env.get("PYTHONPATH", "")]),
        FEEDBACK_WORKERS_OTLP=f"http://127.0.0.1:{app.grpc.port}",
        OPENAI_BASE_URL=devserver.openai_base_url,
        OPENAI_API_KEY="test-key",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_only",
    )
    args = [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "gthread"]
    args += ["--threads", "2", "--keep-alive", "60", "--graceful-timeout", "10"]
    args += ["--bind", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*args, "feedback_workers:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: tuple[_Worker, _Worker] | None = None
    try:
        workers = _two_workers(port, proc)
        yield workers
    finally:
        for worker in workers or ():
            worker.conn.close()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]


def test_feedback_from_another_worker_lands_in_the_answers_trace(
    judged_service: tuple[ServiceApp, Judging, OtlpReceiver], gunicorn: tuple[_Worker, _Worker]
) -> None:
    app, judging, backend = judged_service
    worker_a, worker_b = gunicorn
    assert worker_a.pid != worker_b.pid

    response_id = worker_a.call("/chat")["response_id"]
    chat = backend.wait_for(
        lambda: next(
            (s for s in backend.spans() if s.attributes.get("gen_ai.response.id") == response_id),
            None,
        ),
        15,
        "the answer's chat span at the backend",
    )
    # the service has judged the answer's trace (no rule applied: no feedback yet)
    wait_until(lambda: judging.assembler.is_decided(int(chat.trace_id, 16)), 10, "decided")
    assert not [s for s in backend.spans() if s.name.startswith("evaluate no_devserver")]

    recorded = worker_b.call("/feedback", {"response_id": response_id})
    assert recorded == {"resolved": False, "recorded": True, "pid": worker_b.pid}

    def landed() -> Any:
        spans = backend.spans()
        copy = [s for s in spans if s.attributes.get("llmtap.feedback.resolved") is True]
        verdict = [s for s in spans if s.name == "evaluate no_devserver_on_negative_feedback"]
        return (copy, verdict) if copy and verdict else None

    copies, verdicts = backend.wait_for(landed, 15, "the feedback copy and the verdict")
    spans = backend.spans()
    (original,) = [s for s in spans if s.attributes.get("llmtap.feedback.resolved") is False]
    (copy,) = copies
    (verdict,) = verdicts
    # B's feedback, as B recorded it: a root of its own trace, from worker B
    assert original.parent_span_id is None and original.trace_id != chat.trace_id
    assert original.attributes["gen_ai.response.id"] == response_id
    # the service's copy: in A's trace, under the chat span, linked to the original
    assert (copy.trace_id, copy.parent_span_id) == (chat.trace_id, chat.span_id)
    assert copy.attributes["llmtap.feedback.label"] == "negative"
    assert copy.attributes["gen_ai.evaluation.explanation"] == "not my parcel"
    assert [(link.trace_id, link.span_id) for link in copy.links] == [
        (original.trace_id, original.span_id)
    ]
    # the feedback rule judged the answer, as a late batch; the verdict is in the evaluation
    # trace (judge.verdicts: linked), linked to the chat span
    assert verdict.trace_id != chat.trace_id and verdict.parent_span_id is None
    assert [(link.trace_id, link.span_id) for link in verdict.links] == [
        (chat.trace_id, chat.span_id)
    ]
    assert verdict.attributes["llmtap.evaluation.passed"] is False
    assert verdict.attributes["llmtap.evaluation.late"] is True
    assert app.feedback is not None and app.feedback.counts()["resolved"] == 1
