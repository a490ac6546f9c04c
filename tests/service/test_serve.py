"""``llmtap serve`` as a subprocess (``python -m llmtap.cli_serve``; ``llmtap serve`` once wired
into the ``llmtap`` command): addresses printed, spans forwarded, JSON logs, SIGTERM, and the
exits on a bad config or a port in use."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    EMAIL,
    by_span_id,
    grpc_export,
    http_get,
    metric_value,
    sdk_provider,
    wait_until,
)

SERVE = [sys.executable, "-m", "llmtap.cli_serve"]
FREE = ["--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTAP_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def serve_proc() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def _start(procs: list, *args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen(
        [*SERVE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    procs.append(proc)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"exited early: {proc.wait()} {proc.stderr.read()}")  # type: ignore[union-attr]
        lines.append(line.rstrip())
        if line.startswith("  forwarding"):
            break
    text = "\n".join(lines)
    found = {
        "grpc": re.search(r"OTLP/gRPC\s+listening on (\S+)", text),
        "http": re.search(r"OTLP/HTTP\s+listening on (\S+)", text),
        "metrics": re.search(r"metrics\s+(\S+)", text),
    }
    out = {k: m.group(1) for k, m in found.items() if m}
    out["text"] = text
    return proc, out


def test_serve_listens_forwards_and_stops_on_sigterm(tmp_path: Path, serve_proc) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    with OtlpReceiver() as rx:
        config = tmp_path / "llmtap.yaml"
        config.write_text(yaml.safe_dump({"export": [{**grpc_export(rx), "name": "jaeger"}]}))
        proc, where = _start(
            serve_proc, "--config", str(config), *FREE, "--metrics-address", "127.0.0.1:0"
        )
        assert f"forwarding to jaeger: otlp, otlp/grpc 127.0.0.1:{rx.grpc_port}" in where["text"]
        assert where["http"].startswith("http://127.0.0.1:") and where["http"].endswith(
            "/v1/traces"
        )
        provider = sdk_provider(OTLPSpanExporter(endpoint=where["grpc"], insecure=True))
        tracer = provider.get_tracer("t")
        for i in range(20):
            with tracer.start_as_current_span(f"s{i}") as span:
                span.set_attribute("contact", EMAIL)
        provider.shutdown()
        spans = rx.wait_for_spans(20)
        assert len(by_span_id(spans)) == 20
        assert {s.attributes["contact"] for s in spans} == {"<EMAIL>"}

        def forwarded() -> float:
            status, body = http_get(where["metrics"])
            assert status == 200
            return metric_value(
                body.decode(), "llmtap_service_spans_forwarded_total", destination="jaeger"
            )

        assert wait_until(lambda: forwarded() == 20, what="the forwarded counter")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        out = proc.stdout.read()  # type: ignore[union-attr]
        err = proc.stderr.read()  # type: ignore[union-attr]
    assert "20 spans accepted" in out
    logs = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert logs, "expected JSON log lines on stderr"
    messages = [entry["message"] for entry in logs]
    assert "llmtap service started" in messages and "llmtap service stopped" in messages
    started = next(e for e in logs if e["message"] == "llmtap service started")
    assert started["destinations"] == {"jaeger": f"otlp, otlp/grpc 127.0.0.1:{rx.grpc_port}"}
    stopped = next(e for e in logs if e["message"] == "llmtap service stopped")
    assert stopped["drained"] is True and stopped["spans_forwarded"] == {"jaeger": 20}
    assert all({"time", "level", "logger", "message"} <= set(e) for e in logs)


def test_serve_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "llmtap.yaml"
    config.write_text("export:\n  - {preset: jeager, endpoint: 'http://x:4317'}\n")
    done = subprocess.run(
        [*SERVE, "--config", str(config), *FREE],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )
    assert done.returncode == 2
    assert f"{config}:2: export[0].preset" in done.stderr and "jaeger" in done.stderr
    done = subprocess.run(
        [*SERVE, "--config", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )
    assert done.returncode == 2 and "no such file" in done.stderr
    done = subprocess.run(
        [*SERVE, "--grpc-address", "nowhere"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )
    assert done.returncode == 2 and "--grpc-address: expected host:port" in done.stderr


def test_serve_exits_1_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args in (
            ["--grpc-address", f"127.0.0.1:{port}", "--http-address", "off"],
            ["--grpc-address", "off", "--http-address", f"127.0.0.1:{port}"],
        ):
            done = subprocess.run(
                [*SERVE, *args, "--metrics-address", "off"],
                capture_output=True,
                text=True,
                env=_env(),
                timeout=30,
            )
            assert done.returncode == 1, done.stderr
            assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def _service_section_registered() -> bool:
    import dataclasses

    from llmtap.config_file import LlmtapConfig

    return "service" in {f.name for f in dataclasses.fields(LlmtapConfig)}


@pytest.mark.skipif(
    not _service_section_registered(),
    reason="the service: section is not registered in LlmtapConfig yet",
)
def test_serve_takes_its_settings_from_the_service_section(tmp_path: Path, serve_proc) -> None:
    config = tmp_path / "llmtap.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "service": {
                    "grpc_address": "127.0.0.1:0",
                    "http_address": "off",
                    "metrics_address": "off",
                    "auth_token": "${env:SERVE_TOKEN}",
                },
                "export": [{"preset": "console"}],
            }
        )
    )
    env_token = {"SERVE_TOKEN": "t0ken"}
    os.environ.update(env_token)
    try:
        proc, where = _start(serve_proc, "--config", str(config))
    finally:
        os.environ.pop("SERVE_TOKEN")
    assert "grpc" in where and "http" not in where and "metrics" not in where
    assert "bearer token required" in where["text"]
    assert "forwarding to console#0: console, console stdout" in where["text"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0


def test_serve_runs_the_judge_of_the_config_and_forwards_its_results(
    tmp_path: Path, serve_proc
) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    with OtlpReceiver() as rx:
        config = tmp_path / "llmtap.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "export": [grpc_export(rx)],
                    "judge": {
                        "trace_idle_s": 0.2,
                        "trace_max_wait_s": 1.0,
                        "rules": [{"evaluator": "truncation"}],
                    },
                }
            )
        )
        proc, where = _start(serve_proc, "--config", str(config), *FREE, "--metrics-address", "off")
        assert "judging    1 rule(s)" in where["text"]
        provider = sdk_provider(OTLPSpanExporter(endpoint=where["grpc"], insecure=True))
        with provider.get_tracer("t").start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.finish_reasons": ["length"],
                }
            )
            chat_id = f"{span.get_span_context().span_id:016x}"
            chat_trace = f"{span.get_span_context().trace_id:032x}"
        provider.shutdown()
        rx.wait_for(lambda: rx.spans("evaluate truncation"), timeout=15, message="the verdict")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    (verdict,) = rx.spans("evaluate truncation")
    # judge.verdicts: linked (the default): a trace of its own, linked to the chat span
    assert verdict.trace_id != chat_trace and verdict.parent_span_id is None
    assert [(link.trace_id, link.span_id) for link in verdict.links] == [(chat_trace, chat_id)]
    assert verdict.attributes["llmtap.evaluation.target.trace_id"] == chat_trace
    assert verdict.attributes["llmtap.evaluation.target.span_id"] == chat_id
    assert verdict.attributes["gen_ai.evaluation.name"] == "truncation"


def test_serve_judges_with_the_llm_judge_of_the_config(tmp_path: Path, serve_proc) -> None:
    """The whole judge path in the real process: rule → trace assembly → the LLM judge over
    HTTP (loopback server, scripted verdict) → ``evaluate faithfulness`` forwarded, with the
    retrieved documents fenced into the judge prompt and the judge's tokens recorded."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    from support.judge_server import JudgeServer

    question = "When does the store open?"
    answer = "The store opens at 9am."
    document = "Opening hours: 9am to 5pm, Monday to Friday."
    with OtlpReceiver() as rx, JudgeServer() as judge:
        judge.push_verdict(score=False, label="unfaithful", explanation="hours not stated")
        config = tmp_path / "llmtap.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "export": [grpc_export(rx)],
                    "judge": {
                        "model": {"name": "judge-mini", "base_url": judge.openai_base_url},
                        "trace_idle_s": 0.2,
                        "trace_max_wait_s": 1.0,
                        "verdicts": "child",
                        "rules": [{"evaluator": "faithfulness", "when": {"llmtap.feature": "faq"}}],
                    },
                }
            )
        )
        _, where = _start(serve_proc, "--config", str(config), *FREE, "--metrics-address", "off")
        provider = sdk_provider(OTLPSpanExporter(endpoint=where["grpc"], insecure=True))
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("workflow answer"):
            with tracer.start_as_current_span("retrieval kb") as retrieval:
                retrieval.set_attributes(
                    {
                        "gen_ai.operation.name": "retrieval",
                        "gen_ai.retrieval.documents": json.dumps(
                            [{"id": "d1", "content": document}]
                        ),
                    }
                )
            with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
                chat.set_attributes(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "llmtap.feature": "faq",
                        "gen_ai.input.messages": json.dumps(
                            [{"role": "user", "parts": [{"type": "text", "content": question}]}]
                        ),
                        "gen_ai.output.messages": json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "parts": [{"type": "text", "content": answer}],
                                    "finish_reason": "stop",
                                }
                            ]
                        ),
                    }
                )
                chat_id = f"{chat.get_span_context().span_id:016x}"
        provider.shutdown()
        rx.wait_for(lambda: rx.spans("evaluate faithfulness"), timeout=20, message="verdict")
    (verdict,) = rx.spans("evaluate faithfulness")
    assert verdict.parent_span_id == chat_id  # judge.verdicts: child
    assert not verdict.links
    attrs = verdict.attributes
    assert attrs["gen_ai.evaluation.name"] == "faithfulness"
    assert attrs["gen_ai.evaluation.score.label"] == "unfaithful"
    assert attrs["gen_ai.evaluation.score.value"] == 0.0
    assert attrs["gen_ai.evaluation.explanation"] == "hours not stated"
    assert attrs["llmtap.evaluation.judge_model"] == "judge-mini"
    assert attrs["llmtap.evaluation.source"] == "judge"
    (request,) = judge.requests
    prompt = request.prompt
    assert document in prompt and answer in prompt and question in prompt
    assert request.body["temperature"] == 0
