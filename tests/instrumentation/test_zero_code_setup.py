"""``opentelemetry-instrument`` start-up, through the real launcher in a subprocess:

- a bad ``LLMTAP_CONFIG`` never stops the app: one ``file:line: key: message`` line per
  problem (the lines ``llmtap config check`` and ``llmtap serve`` give) and ``llmtap is off
  for this process`` on stderr, no traceback, no telemetry, the SDKs left unpatched;
- with the usual settings (an endpoint, exporters left at their defaults) the content events
  of ``EVENT_ONLY``/``SPAN_AND_EVENT`` reach a real OTLP receiver, redacted like the spans:
  llmtap's distro defaults the logs exporter as the OpenTelemetry distro does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmtap.sdk.distro import OFF_MESSAGE, otel_defaults
from support.otlp_receiver import OtlpReceiver

LAUNCHER = Path(sys.executable).parent / "opentelemetry-instrument"
LLMTAP = Path(sys.executable).parent / "llmtap"
EVENT = "gen_ai.client.inference.operation.details"

APP = """
import json

import openai
import wrapt

client = openai.OpenAI(max_retries=0)
create = vars(openai.resources.chat.completions.Completions)["create"]
reply = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Reach me at ann.lee@example.org please"}],
)
print(json.dumps({"id": reply.id, "text": reply.choices[0].message.content,
                  "patched": isinstance(create, wrapt.FunctionWrapper)}), flush=True)
"""

TYPO = "service_name: typo-app\ncapture_contnet: span_only\n"
TYPO_LINE = (
    "typo.yaml:2: capture_contnet: unknown key 'capture_contnet' (did you mean 'capture_content'?)"
)


def _env(devserver: Any, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "LLMTAP_"))
    }
    env.update(
        OPENAI_BASE_URL=devserver.openai_base_url,
        OPENAI_API_KEY="zero-code-key",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_BLRP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _launch(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict]:
    if not LAUNCHER.exists():
        pytest.skip(f"{LAUNCHER} is missing (opentelemetry-instrumentation not installed)")
    (tmp_path / "app.py").write_text(APP)
    proc = subprocess.run(
        [str(LAUNCHER), sys.executable, "app.py"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"app failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    said = json.loads(proc.stdout.strip().splitlines()[-1])
    assert said["text"].startswith("Hello from the llmtap devserver!")
    return proc, said


# a bad config file ---------------------------------------------------------------------------


def test_bad_config_one_line_then_off_and_the_app_runs(tmp_path: Path, devserver: Any) -> None:
    (tmp_path / "typo.yaml").write_text(TYPO)
    with OtlpReceiver() as receiver:
        env = _env(
            devserver,
            LLMTAP_CONFIG="typo.yaml",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_AND_EVENT",
        )
        proc, said = _launch(tmp_path, env)
        assert proc.stderr.splitlines() == [
            TYPO_LINE,
            f"{OFF_MESSAGE}: fix LLMTAP_CONFIG (`llmtap config check typo.yaml` lists every "
            "problem)",
        ]
        assert said["patched"] is False  # llmtap's instrumentors were not loaded
        assert receiver.requests() == []  # no telemetry at all


def test_bad_config_lists_every_problem_and_never_a_secret(tmp_path: Path, devserver: Any) -> None:
    (tmp_path / "bad.yaml").write_text(
        "capture_content: spanonly\n"
        "export:\n"
        "  - {preset: datadog_llmobs, api_key: dd-live-secret-1234, site: 42}\n"
        "  - {preset: jeager}\n"
    )
    proc, said = _launch(tmp_path, _env(devserver, LLMTAP_CONFIG="bad.yaml"))
    lines = proc.stderr.splitlines()
    assert [line.split(":")[1] for line in lines[:-1]] == ["1", "3", "4"]
    assert lines[-1].startswith(OFF_MESSAGE)
    assert "Traceback" not in proc.stderr and "dd-live-secret-1234" not in proc.stderr
    assert said["patched"] is False


def test_a_destination_that_cannot_be_set_up_turns_llmtap_off(
    tmp_path: Path, devserver: Any
) -> None:
    (tmp_path / "blocker").write_text("a file where a folder is needed")
    (tmp_path / "llmtap.yaml").write_text("export: [{preset: file, path: blocker/spans.jsonl}]\n")
    proc, said = _launch(tmp_path, _env(devserver, LLMTAP_CONFIG="llmtap.yaml"))
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith("llmtap could not start: ") and "blocker" in lines[0]
    assert lines[1] == OFF_MESSAGE
    assert said["patched"] is False


def test_config_check_and_serve_give_the_same_line(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text(TYPO)
    check = subprocess.run(
        [str(LLMTAP), "config", "check", "typo.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (check.returncode, check.stdout.splitlines()) == (2, [TYPO_LINE])
    serve = subprocess.run(
        [str(LLMTAP), "serve", "--config", "typo.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert serve.returncode == 2
    assert TYPO_LINE in serve.stderr.splitlines()


def test_configure_in_code_raises_the_same_line(tmp_path: Path) -> None:
    """In code, a bad file is the caller's to handle: ``configure()`` raises ConfigError (a
    ValueError) whose message is the problem lines, and installs nothing."""
    from opentelemetry import trace

    import llmtap
    from llmtap.config_file import ConfigError

    (tmp_path / "typo.yaml").write_text(TYPO)
    before = trace.get_tracer_provider()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ConfigError) as info:
            llmtap.configure("typo.yaml")
    finally:
        os.chdir(cwd)
    assert str(info.value) == TYPO_LINE
    assert trace.get_tracer_provider() is before


# exporter defaults and content events ----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, {"traces": "otlp", "metrics": "otlp", "logs": "otlp"}),
        ({"OTEL_LOGS_EXPORTER": "none"}, {"traces": "otlp", "metrics": "otlp", "logs": "none"}),
        ({"LLMTAP_CONFIG": "llmtap.yaml"}, {"traces": None, "metrics": None, "logs": None}),
        (
            {"LLMTAP_CONFIG": "llmtap.yaml", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
            {"traces": None, "metrics": "otlp", "logs": "otlp"},
        ),
        (
            {"LLMTAP_CONFIG": "f.yaml", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://c:4317"},
            {"traces": None, "metrics": None, "logs": "otlp"},
        ),
        (
            {"LLMTAP_CONFIG": "f.yaml", "OTEL_TRACES_EXPORTER": "otlp"},
            {"traces": "otlp", "metrics": None, "logs": None},
        ),
    ],
)
def test_exporter_defaults(given: dict[str, str], expected: dict[str, str | None]) -> None:
    env = dict(given)
    otel_defaults(env)
    got = {s: env.get(f"OTEL_{s.upper()}_EXPORTER") for s in ("traces", "metrics", "logs")}
    assert got == expected
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"


@pytest.mark.parametrize("capture", ["EVENT_ONLY", "SPAN_AND_EVENT"])
def test_content_events_are_exported_by_default(
    tmp_path: Path, devserver: Any, capture: str
) -> None:
    with OtlpReceiver() as receiver:
        env = _env(
            devserver,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_SERVICE_NAME="events-app",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=capture,
        )
        proc, said = _launch(tmp_path, env)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert said["patched"] is True
        (span,) = receiver.wait_for_spans(1, timeout=20)
        # the cost stage was built before the SDK's meter provider existed: its counter
        # reaches the receiver all the same
        receiver.wait_for_metrics("llmtap.cost", timeout=20)
        events = receiver.wait_for(
            lambda: [r for r in receiver.logs() if r.event_name == EVENT], timeout=20
        )
    (event,) = events
    assert event.scope_name == "llmtap"
    assert event.resource["service.name"] == "events-app"
    assert (event.trace_id, event.span_id) == (span.trace_id, span.span_id)
    attrs = event.attributes
    assert attrs["gen_ai.response.id"] == said["id"]
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    (message,) = json.loads(attrs["gen_ai.input.messages"])
    text = message["parts"][0]["content"]
    assert "ann.lee@example.org" not in text and "<EMAIL>" in text  # redacted, as on spans
    assert attrs["llmtap.redaction.count"] >= 1
    output = json.loads(attrs["gen_ai.output.messages"])
    assert output[0]["parts"][0]["type"] == "text"
    assert ("gen_ai.input.messages" in span.attributes) is (capture == "SPAN_AND_EVENT")


def test_events_with_a_config_file_follow_the_otlp_endpoint(tmp_path: Path, devserver: Any) -> None:
    with OtlpReceiver() as receiver, OtlpReceiver() as spans_rx:
        (tmp_path / "llmtap.yaml").write_text(
            "capture_content: event_only\n"
            f"export: [{{preset: otlp, endpoint: '{spans_rx.grpc_endpoint}'}}]\n"
        )
        env = _env(
            devserver,
            LLMTAP_CONFIG="llmtap.yaml",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
        )
        _launch(tmp_path, env)
        spans_rx.wait_for_spans(1, timeout=20)  # spans: the file's destinations only
        receiver.wait_for(lambda: [r for r in receiver.logs() if r.event_name == EVENT], 20)
        assert receiver.spans() == []


def test_events_nowhere_is_said(tmp_path: Path, devserver: Any) -> None:
    (tmp_path / "llmtap.yaml").write_text("capture_content: event_only\nexport: []\n")
    proc, _ = _launch(tmp_path, _env(devserver, LLMTAP_CONFIG="llmtap.yaml"))
    (line,) = proc.stderr.splitlines()
    assert "event_only" in line and "no logs exporter is set" in line
