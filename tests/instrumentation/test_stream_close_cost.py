"""Ending an OpenAI stream that carried no usage never waits for the tokenizer.

The token estimate of such a stream runs on llmtap's worker: ``close()``, ``break`` and the
last chunk return at once, the span ends at the moment the stream ended (so its duration and
``gen_ai.client.operation.duration`` exclude the estimate), and the estimate still lands on
the exported span and in ``gen_ai.client.token.usage``, marked ``llmtap.usage.estimated``.

Real ``openai`` SDK against the dev server. The tokenizer load is made slow by wrapping
``llmtap.pipeline.tokens._load`` — llmtap's own function — with a sleep: nothing real makes
a tokenizer file load slowly on demand, and the real load (0.3-0.9 s here) varies too much
with the machine's load to tell "waited for it" from "did not".
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmtap.pipeline import tokens

from .test_openai_support import MODEL, async_client, attrs, data_points, sync_client, user

SLOW_LOAD_S = 1.5
FAST_S = 0.3  # what "returns at once" may take on a busy 2-core machine (measured: ~1-20 ms)


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    """A plain one: these tests look at the spans while their estimate is still pending."""
    return InMemorySpanExporter()


@pytest.fixture
def slow_tokenizer(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every encoder load sleeps SLOW_LOAD_S first; yields the threads that loaded."""
    real = tokens._load
    loaded_on: list[str] = []

    def slow_load(name: str) -> tuple[Any, str]:
        loaded_on.append(threading.current_thread().name)
        time.sleep(SLOW_LOAD_S)
        return real(name)

    monkeypatch.setattr(tokens, "_load", slow_load)
    monkeypatch.setattr(tokens, "_encoders", {})
    monkeypatch.setattr(tokens, "_loading", set())
    yield loaded_on
    assert tokens.flush(30), "the token worker did not finish"


@pytest.fixture
def client(devserver: Any) -> Iterator[Any]:
    client = sync_client(devserver)
    yield client
    client.close()


def _stream(client: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=user("Hello"), stream=True)


def _span_duration_s(span: Any) -> float:
    return (span.end_time - span.start_time) / 1e9


def _assert_estimated(span: Any, end: str) -> dict[str, Any]:
    a = attrs(span)
    assert a["llmtap.stream.end"] == end
    assert a["llmtap.usage.estimated"] is True
    assert a["llmtap.usage.estimate_method"].startswith("tiktoken:")
    assert a["gen_ai.usage.input_tokens"] > 0
    return a


def _token_points(metric_reader: Any) -> dict[str, float]:
    return {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in data_points(metric_reader, "gen_ai.client.token.usage")
    }


def test_close_returns_at_once_and_the_estimate_lands_later(
    instrument_openai, slow_tokenizer, span_exporter, tracer_provider, metric_reader, client
) -> None:
    instrument_openai()
    stream = _stream(client)
    next(iter(stream))
    t0 = time.perf_counter()
    stream.close()
    closed_in = time.perf_counter() - t0
    closed_at = time.time_ns()
    assert closed_in < FAST_S
    assert span_exporter.get_finished_spans() == ()  # still waiting for the tokenizer

    assert tracer_provider.force_flush()  # waits for the pending estimate
    (span,) = span_exporter.get_finished_spans()
    a = _assert_estimated(span, "closed")
    assert span.end_time <= closed_at
    assert _span_duration_s(span) < FAST_S
    assert slow_tokenizer == ["llmtap-tokenizer"]  # loaded once, never on this thread
    (duration,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert duration.sum == pytest.approx(_span_duration_s(span), abs=0.01)
    assert _token_points(metric_reader) == {
        "input": a["gen_ai.usage.input_tokens"],
        "output": a["gen_ai.usage.output_tokens"],
    }


def test_the_last_chunk_returns_at_once(
    instrument_openai, slow_tokenizer, span_exporter, tracer_provider, metric_reader, client
) -> None:
    instrument_openai()
    it = iter(_stream(client))
    chunks = 0
    while True:
        t0 = time.perf_counter()
        try:
            next(it)
        except StopIteration:
            last = time.perf_counter() - t0
            break
        chunks += 1
    ended_at = time.time_ns()
    assert chunks > 2
    assert last < FAST_S
    assert tracer_provider.force_flush()
    (span,) = span_exporter.get_finished_spans()
    a = _assert_estimated(span, "completed")
    assert a["gen_ai.usage.output_tokens"] > 0
    assert span.end_time <= ended_at
    assert _span_duration_s(span) < FAST_S
    (duration,) = data_points(metric_reader, "gen_ai.client.operation.duration")
    assert duration.sum < FAST_S
    assert set(_token_points(metric_reader)) == {"input", "output"}


def test_break_and_drop_returns_at_once(
    instrument_openai, slow_tokenizer, span_exporter, tracer_provider, client
) -> None:
    instrument_openai()
    stream = _stream(client)
    for _ in stream:
        break
    t0 = time.perf_counter()
    del stream  # the last reference: the proxy's finalizer ends the span ("abandoned")
    dropped_in = time.perf_counter() - t0
    dropped_at = time.time_ns()
    gc.collect()  # (not needed on CPython, where the del above already ran the finalizer)
    assert dropped_in < FAST_S
    assert tracer_provider.force_flush()
    (span,) = span_exporter.get_finished_spans()
    _assert_estimated(span, "abandoned")
    assert span.end_time <= dropped_at


async def test_async_close_returns_at_once(
    instrument_openai, slow_tokenizer, span_exporter, tracer_provider, devserver
) -> None:
    instrument_openai()
    client = async_client(devserver)
    try:
        stream = await client.chat.completions.create(
            model=MODEL, messages=user("Hello"), stream=True
        )
        await stream.__anext__()
        t0 = time.perf_counter()
        await stream.close()
        closed_in = time.perf_counter() - t0
        closed_at = time.time_ns()
        # the event loop is not blocked either: other tasks run meanwhile
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
    finally:
        await client.close()
    assert closed_in < FAST_S
    assert ticks == 5
    assert tracer_provider.force_flush()
    (span,) = span_exporter.get_finished_spans()
    _assert_estimated(span, "closed")
    assert span.end_time <= closed_at


def test_the_app_changing_its_messages_afterwards_does_not_change_the_estimate(
    instrument_openai, slow_tokenizer, span_exporter, tracer_provider, client
) -> None:
    instrument_openai()
    messages = user("Hello")
    list(client.chat.completions.create(model=MODEL, messages=messages, stream=True))
    messages.append({"role": "assistant", "content": "a long reply " * 200})  # chat history
    assert tracer_provider.force_flush()
    (span,) = span_exporter.get_finished_spans()
    assert attrs(span)["gen_ai.usage.input_tokens"] < 20


class TestBatchProcessor:
    """With a BatchSpanProcessor, the provider's force_flush and shutdown see the pending span:
    llmtap's drain processor runs first in the provider's chain."""

    @pytest.fixture
    def tracer_provider(self, span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(span_exporter, schedule_delay_millis=60_000))
        yield provider
        provider.shutdown()

    def test_force_flush_exports_the_pending_span(
        self, instrument_openai, slow_tokenizer, span_exporter, tracer_provider, client
    ) -> None:
        instrument_openai()
        list(_stream(client))
        assert tracer_provider.force_flush()
        (span,) = span_exporter.get_finished_spans()
        _assert_estimated(span, "completed")

    def test_shutdown_exports_the_pending_span(
        self, instrument_openai, slow_tokenizer, span_exporter, tracer_provider, client
    ) -> None:
        instrument_openai()
        list(_stream(client))
        tracer_provider.shutdown()
        (span,) = span_exporter.get_finished_spans()
        _assert_estimated(span, "completed")


# the process around it: exit, fork ----------------------------------------------------------

APP = """
import json, os, sys, threading, time

import openai
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from llmtap.instrumentation.openai import OpenAIInstrumentor
from llmtap.pipeline import tokens

SLOW = float(os.environ["SLOW_LOAD_S"])
real = tokens._load


def slow_load(name):
    time.sleep(SLOW)  # llmtap's own loader made slow (see the test module's docstring)
    return real(name)


tokens._load = slow_load
tokens.DRAIN_TIMEOUT_S = float(os.environ.get("DRAIN_S", tokens.DRAIN_TIMEOUT_S))


class Printer(SpanExporter):
    def export(self, spans):
        for span in spans:
            a = dict(span.attributes)
            print(json.dumps({"pid": os.getpid(), "end": a.get("llmtap.stream.end"),
                              "estimated": a.get("llmtap.usage.estimated", False),
                              "method": a.get("llmtap.usage.estimate_method"),
                              "input_tokens": a.get("gen_ai.usage.input_tokens"),
                              "threads": sorted(t.name for t in threading.enumerate())}),
                  flush=True)
        return SpanExportResult.SUCCESS


provider = TracerProvider()  # shuts down at exit (atexit), exporting what the batch holds
provider.add_span_processor(BatchSpanProcessor(Printer(), schedule_delay_millis=60_000))
OpenAIInstrumentor().instrument(tracer_provider=provider)
client = openai.OpenAI(max_retries=0)


def stream(how):
    s = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    if how == "close":
        next(iter(s))
        s.close()
    elif how == "keep":  # read one chunk, keep the stream: collected at exit
        next(iter(s))
        return s
    else:
        list(s)
"""


def _run(tmp_path: Path, devserver: Any, body: str, **env: str) -> subprocess.CompletedProcess:
    script = tmp_path / "app.py"
    script.write_text(APP + textwrap.dedent(body))
    full_env = {
        **os.environ,
        "OPENAI_BASE_URL": devserver.openai_base_url,
        "OPENAI_API_KEY": "test-key",
        "SLOW_LOAD_S": str(SLOW_LOAD_S),
        **env,
    }
    for key in [k for k in full_env if k.startswith(("OTEL_", "LLMTAP_"))]:
        del full_env[key]
    return subprocess.run(
        [sys.executable, str(script)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _printed(run: subprocess.CompletedProcess) -> list[dict[str, Any]]:
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def test_pending_estimates_are_completed_at_exit(tmp_path, devserver) -> None:
    run = _run(
        tmp_path,
        devserver,
        """
        stream("close")
        stream("all")
        kept = stream("keep")  # ended by its finalizer at exit, after the worker was drained
        print("exiting", flush=True)
        """,
    )
    spans = _printed(run)
    assert sorted(s["end"] for s in spans) == ["abandoned", "closed", "completed"]
    assert all(s["estimated"] and s["input_tokens"] > 0 for s in spans), spans
    assert "can't create new thread" not in run.stderr
    assert "Traceback" not in run.stderr, run.stderr


def test_at_exit_a_stuck_estimate_is_given_up_and_the_span_still_exported(
    tmp_path, devserver
) -> None:
    t0 = time.monotonic()
    run = _run(tmp_path, devserver, 'stream("close")\n', SLOW_LOAD_S="30", DRAIN_S="0.5")
    took = time.monotonic() - t0
    (span,) = _printed(run)
    assert span["end"] == "closed"
    assert span["estimated"] is False  # ended without it rather than lost
    assert took < 20  # did not wait for the 30 s load


def test_first_estimate_during_interpreter_shutdown_starts_no_thread(tmp_path, devserver) -> None:
    # usage estimation is prepared at the call; switch that off so the worker has never run
    # when the kept stream is collected at exit
    run = _run(
        tmp_path,
        devserver,
        """
        tokens.prepare = lambda model: None
        kept = stream("keep")
        """,
    )
    (span,) = _printed(run)
    assert span["end"] == "abandoned"
    assert span["estimated"] is True
    assert "llmtap-tokenizer" not in span["threads"]
    assert "Traceback" not in run.stderr, run.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_worker(tmp_path, devserver) -> None:
    run = _run(
        tmp_path,
        devserver,
        """
        stream("close")  # the parent's worker is loading the tokenizer at fork time
        pid = os.fork()
        if pid == 0:
            stream("all")
            provider.force_flush()
            os._exit(0)
        os.waitpid(pid, 0)
        """,
    )
    spans = _printed(run)
    parent = [s for s in spans if s["end"] == "closed"]
    child = [s for s in spans if s["end"] == "completed"]
    assert len(parent) == 1 and len(child) == 1, spans
    assert child[0]["pid"] != parent[0]["pid"]
    assert child[0]["estimated"] is True
    assert "llmtap-tokenizer" in child[0]["threads"]


# The parent's worker imports tiktoken's encoding plugins while the app forks; here one of
# them (a module of this test, as no real import is slow on demand) takes 1.5 s to import.
# A child forked while another thread held a module's import lock could never import that
# module: the fork waits for the worker's imports (up to FORK_WAIT_S), else the child
# estimates with the character heuristic rather than hang.
FORK_DURING_IMPORT = """
import pathlib, tempfile
import tiktoken.registry

tokens.FORK_WAIT_S = float(os.environ["FORK_WAIT_S"])
folder = tempfile.mkdtemp()
pathlib.Path(folder, "slow_plugin.py").write_text("import time\\ntime.sleep(1.5)\\n")
sys.path.insert(0, folder)
names = tiktoken.registry.list_encoding_names


def slow_names():
    import slow_plugin  # noqa: F401

    return names()


tiktoken.registry.list_encoding_names = slow_names
stream("close")  # the worker is importing the plugins now
time.sleep(0.3)
pid = os.fork()
if pid == 0:
    stream("all")
    provider.force_flush(20_000)
    os._exit(0)
os.waitpid(pid, 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize(("wait", "method"), [("5", "tiktoken:"), ("0.1", "chars/4")])
def test_a_fork_during_the_workers_imports_leaves_a_working_child(
    tmp_path, devserver, wait, method
) -> None:
    run = _run(tmp_path, devserver, FORK_DURING_IMPORT, SLOW_LOAD_S="0", FORK_WAIT_S=wait)
    spans = _printed(run)
    child = [s for s in spans if s["end"] == "completed"]
    assert len(child) == 1, (spans, run.stderr)
    assert child[0]["estimated"] is True
    assert child[0]["method"].startswith(method)


def test_a_flush_asked_from_the_worker_itself_does_not_wait_for_itself() -> None:
    # e.g. an exporter behind a SimpleSpanProcessor (it runs on the worker when a pending
    # span ends) that calls the provider's force_flush
    seen: list[tuple[bool, float]] = []

    class Job:
        def run(self) -> None:
            t0 = time.perf_counter()
            seen.append((tokens.flush(5), time.perf_counter() - t0))

        def abandon(self) -> None:
            raise AssertionError("not abandoned")

    tokens.submit(Job())
    assert tokens.flush(30)
    ((flushed, took),) = seen
    assert flushed and took < 1
