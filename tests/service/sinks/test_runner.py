"""The sinks' queue: retries with Retry-After, giving up on a refusal, a bounded queue whose
overflow is counted, the shutdown count, and a sink that is down never holding up the judge."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.judge_config import JudgeConfig, JudgeRule
from llmtap.pipeline.span import SpanData
from llmtap.service.judging import Judging
from llmtap.service.metrics import MetricsRegistry
from llmtap.service.sinks.phoenix import PhoenixSink
from llmtap.service.sinks.record import Evaluation
from llmtap.service.sinks.runner import EvaluationSinks, SinkMetrics, SinkRunner
from support.recording_server import RecordingServer


def verdicts(n: int, source: str = "judge") -> list[Evaluation]:
    return [
        Evaluation(
            name="check", trace_id=7, span_id=i + 1, source=source, timestamp_ns=1, score=1.0
        )
        for i in range(n)
    ]


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as srv:
        yield srv


def runner(url: str, **kw: Any) -> tuple[SinkRunner, SinkMetrics]:
    metrics = SinkMetrics(MetricsRegistry())
    client = PhoenixSink(url, api_key=None, headers={}, timeout_s=kw.pop("timeout_s", 5.0))
    return SinkRunner("px", client, metrics, **kw), metrics


@pytest.mark.parametrize("status", [429, 503])
def test_retried_after_the_servers_retry_after(server: RecordingServer, status: int) -> None:
    server.script.append((status, {"Retry-After": "1"}))
    sink, metrics = runner(server.url)
    sink.offer(verdicts(3))
    assert sink.flush(15)
    sink.close(2)
    first, second = server.wait_for(2)
    assert second.at - first.at >= 0.9  # waited as asked
    assert first.body == second.body  # the same batch, sent again
    assert metrics.failures.value(sink="px") == 1
    assert metrics.sent.value(sink="px") == 3
    assert metrics.dropped.total(sink="px") == 0


def test_refused_evaluations_are_dropped_and_counted_not_retried(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.append((400, {}))
    sink, metrics = runner(server.url)
    sink.offer(verdicts(4))
    assert sink.flush(10)
    sink.offer(verdicts(1))
    assert sink.flush(10)
    sink.close(2)
    assert len(server.requests) == 2  # the refused batch was not sent again
    assert metrics.dropped.value(sink="px", reason="rejected") == 4
    assert metrics.sent.value(sink="px") == 1
    assert "dropped 4 evaluation(s) for sink px (rejected): HTTP 400" in caplog.text


def test_a_full_queue_drops_and_counts(server: RecordingServer) -> None:
    server.hold.clear()  # the backend takes requests and does not answer
    sink, metrics = runner(server.url, capacity=5, batch_size=5, timeout_s=30.0)
    assert sink.offer(verdicts(5)) == 0
    server.wait_for(0)
    time.sleep(0.3)  # the worker took the batch and waits on the backend
    assert sink.offer(verdicts(7)) == 7
    assert metrics.dropped.value(sink="px", reason="queue_full") == 7
    assert sink.depth() == 5
    server.hold.set()
    assert sink.flush(10)
    sink.close(2)
    assert metrics.sent.value(sink="px") == 5


def test_what_is_queued_at_shutdown_is_counted() -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    sink, metrics = runner(url, timeout_s=0.5)
    sink.offer(verdicts(6))
    time.sleep(0.3)
    sink.close(0.5)
    assert metrics.dropped.value(sink="px", reason="shutdown") == 6
    assert metrics.failures.value(sink="px") >= 1


class Scripted:
    """An evaluator of this test: passes every span at once."""

    name = "scripted"
    uses_model = False

    async def evaluate(self, item: EvalInput) -> Verdict:
        await asyncio.sleep(0)
        return Verdict(name=self.name, score=1.0, label="pass", passed=True)


def chat_span(trace_id: int, span_id: int) -> SpanData:
    return SpanData(
        name="chat gpt-4o-mini",
        attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
        resource={"service.name": "support-bot"},
        trace_id=trace_id,
        span_id=span_id,
        kind="CLIENT",
        start_ns=1,
        end_ns=2,
    )


def test_a_sink_that_is_down_never_slows_the_judge(server: RecordingServer) -> None:
    server.hold.clear()  # every request hangs
    registry = MetricsRegistry()
    entry = {"sink": "phoenix", "endpoint": server.url, "batch_size": 1, "timeout_s": 30}
    sinks = EvaluationSinks.from_config([entry], registry)
    assert sinks is not None
    config = JudgeConfig(
        rules=[JudgeRule(evaluator="scripted", target="inference")],
        trace_idle_s=0.05,
        trace_max_wait_s=0.2,
    )
    judging = Judging(
        config,
        evaluators={"scripted": Scripted()},
        on_verdict=sinks.on_verdict,
        metrics_registry=registry,
        tick_s=0.02,
    )
    judging.start()
    try:
        started = time.monotonic()
        for i in range(200):
            judging.on_spans([chat_span(1000 + i, 1)])
        assert judging.wait_idle(10)
        time.sleep(0.2)
        assert judging.wait_idle(10)
        elapsed = time.monotonic() - started
    finally:
        judging.stop(2)
    assert elapsed < 5.0  # 200 verdicts, while the sink hangs on its first request
    evaluated = judging.metrics.registry.render()
    assert "llmtap_judge" in evaluated
    (runner_,) = sinks.runners
    assert runner_.depth() == 200  # all queued, one being sent (and hanging)
    server.hold.set()
    sinks.close(5)


def test_langfuse_resends_only_what_was_not_delivered(server: RecordingServer) -> None:
    from llmtap.service.sinks.langfuse import LangfuseSink

    server.script.extend([(200, {}), (503, {"Retry-After": "0"})])
    metrics = SinkMetrics(MetricsRegistry())
    client = LangfuseSink(
        server.url, public_key="p", secret_key="s", environment=None, headers={}, timeout_s=5
    )
    sink = SinkRunner("lf", client, metrics)
    sink.offer(verdicts(3))
    assert sink.flush(10)
    sink.close(2)
    sent = [r.body["observationId"] for r in server.requests]
    # the first was taken, the second refused for now and sent again, then the third
    assert sent == [f"{i:016x}" for i in (1, 2, 2, 3)]
    assert metrics.sent.value(sink="lf") == 3
    assert metrics.failures.value(sink="lf") == 1


def test_at_shutdown_only_what_was_not_delivered_is_counted(server: RecordingServer) -> None:
    from llmtap.service.sinks.langfuse import LangfuseSink

    server.status = 503  # after the first score, the backend is down
    server.script.append((200, {}))
    metrics = SinkMetrics(MetricsRegistry())
    client = LangfuseSink(
        server.url, public_key="p", secret_key="s", environment=None, headers={}, timeout_s=5
    )
    sink = SinkRunner("lf", client, metrics)
    sink.offer(verdicts(3))
    server.wait_for(2)
    sink.close(0.5)
    assert metrics.sent.value(sink="lf") == 1
    assert metrics.dropped.value(sink="lf", reason="shutdown") == 2
