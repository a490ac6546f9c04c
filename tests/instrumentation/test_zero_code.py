"""Zero-code instrumentation: ``opentelemetry-instrument python app.py`` with no llmtap import.

The application below is plain OpenAI (and Anthropic) SDK code. The real launcher from
``opentelemetry-instrumentation`` finds llmtap's instrumentors through the
``opentelemetry_instrumentor`` entry points, the distro configures OTLP/gRPC export, and the
spans and metrics are checked as they arrive at a real OTLP receiver.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.otlp_receiver import OtlpReceiver, SpanRecord

LAUNCHER = Path(sys.executable).parent / "opentelemetry-instrument"

APP = """
import json
import os

import openai

client = openai.OpenAI(max_retries=0)  # OPENAI_BASE_URL / OPENAI_API_KEY from the environment


def say(kind, **fields):
    print(json.dumps({"kind": kind, **fields}), flush=True)


chat = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Hello from a zero-code app"}],
    temperature=0.25,
)
say("chat", id=chat.id, text=chat.choices[0].message.content,
    input_tokens=chat.usage.prompt_tokens, output_tokens=chat.usage.completion_tokens)

stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Stream a reply please"}],
    stream=True,
    stream_options={"include_usage": True},
)
pieces, usage, stream_id = [], None, None
for chunk in stream:
    stream_id = stream_id or chunk.id
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage is not None:
        usage = chunk.usage
say("stream", id=stream_id, text="".join(pieces),
    input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)

embedding = client.embeddings.create(model="text-embedding-3-small", input="zero code")
say("embeddings", dims=len(embedding.data[0].embedding), input_tokens=embedding.usage.prompt_tokens)

if os.environ.get("APP_CALL_ANTHROPIC") == "1":
    import anthropic

    message = anthropic.Anthropic(max_retries=0).messages.create(
        model="claude-haiku-4-5",
        max_tokens=200,
        messages=[{"role": "user", "content": "Hello Claude from a zero-code app"}],
    )
    say("anthropic", id=message.id, text=message.content[0].text,
        input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens)

say("done")
"""


def _has_anthropic_instrumentor() -> bool:
    try:
        module = importlib.import_module("llmtap.instrumentation.anthropic")
    except ImportError:
        return False
    return hasattr(module, "AnthropicInstrumentor")


HAS_ANTHROPIC = _has_anthropic_instrumentor()
NO_ANTHROPIC = "llmtap.instrumentation.anthropic:AnthropicInstrumentor does not exist yet"


@dataclass
class AppRun:
    receiver: OtlpReceiver
    stdout: str
    stderr: str
    said: dict[str, dict[str, Any]]

    def spans(self) -> list[SpanRecord]:
        return [s for s in self.receiver.spans() if s.scope_name == "llmtap"]


def run_app(tmp_path: Path, receiver: OtlpReceiver, devserver: Any, **extra_env: str) -> AppRun:
    if not LAUNCHER.exists():
        pytest.skip(f"{LAUNCHER} is missing (opentelemetry-instrumentation not installed)")
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "LLMTAP_"))
    }
    env.update(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
        OTEL_EXPORTER_OTLP_INSECURE="true",
        OTEL_SERVICE_NAME="zero-code-app",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
        OPENAI_BASE_URL=devserver.openai_base_url,
        OPENAI_API_KEY="zero-code-key",
        ANTHROPIC_BASE_URL=devserver.anthropic_base_url,
        ANTHROPIC_API_KEY="zero-code-key",
        APP_CALL_ANTHROPIC="1" if HAS_ANTHROPIC else "0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env)
    proc = subprocess.run(
        [str(LAUNCHER), sys.executable, str(app)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, f"app failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    said = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            said[record.pop("kind")] = record
    assert "done" in said, proc.stdout
    # The launcher's providers flush and export on exit, and the receiver stores an export
    # before answering it: everything the app sent is here once the process is gone.
    return AppRun(receiver, proc.stdout, proc.stderr, said)


@pytest.fixture(scope="module")
def instrumented(tmp_path_factory: pytest.TempPathFactory, devserver: Any) -> Iterator[AppRun]:
    with OtlpReceiver() as receiver:
        yield run_app(tmp_path_factory.mktemp("zero-code"), receiver, devserver)


def _by_call(run: AppRun) -> dict[str, SpanRecord]:
    out: dict[str, SpanRecord] = {}
    for span in run.spans():
        attrs = span.attributes
        if attrs["gen_ai.provider.name"] == "anthropic":
            key = "anthropic"
        elif attrs["gen_ai.operation.name"] == "embeddings":
            key = "embeddings"
        else:
            key = "stream" if attrs["gen_ai.request.stream"] else "chat"
        assert key not in out, f"two spans for the {key} call: {span.name}"
        out[key] = span
    return out


def test_app_runs_unchanged(instrumented: AppRun) -> None:
    assert "llmtap" not in instrumented.stderr  # no instrumentation warning or traceback
    assert "Traceback" not in instrumented.stderr
    said = instrumented.said
    assert said["chat"]["text"].startswith("Hello from the llmtap devserver!")
    assert said["stream"]["text"].startswith("Hello from the llmtap devserver!")
    assert said["embeddings"]["dims"] == 1536


def test_one_client_span_per_call(instrumented: AppRun) -> None:
    expected = {"chat", "stream", "embeddings"} | ({"anthropic"} if HAS_ANTHROPIC else set())
    spans = instrumented.spans()
    assert len(spans) == len(expected), [s.name for s in spans]
    assert set(_by_call(instrumented)) == expected
    # nothing else either: no SDK-made duplicate, no stray spans from other layers
    assert [s.name for s in instrumented.receiver.spans()] == [s.name for s in spans]
    for span in spans:
        assert span.kind == "CLIENT"
        assert span.parent_span_id is None
        assert span.status_code == "UNSET"
        assert span.resource["service.name"] == "zero-code-app"
        assert span.resource["telemetry.sdk.language"] == "python"
        assert span.transport == "grpc"
        assert span.attributes["server.address"] == "127.0.0.1"
        assert isinstance(span.attributes["server.port"], int)
    assert len({s.trace_id for s in spans}) == len(spans)


def test_chat_span(instrumented: AppRun) -> None:
    span = _by_call(instrumented)["chat"]
    said = instrumented.said["chat"]
    assert span.name == "chat gpt-4o-mini"
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.request.temperature"] == 0.25
    assert attrs["gen_ai.request.stream"] is False
    assert attrs["gen_ai.response.id"] == said["id"]
    assert attrs["gen_ai.usage.input_tokens"] == said["input_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == said["output_tokens"]
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["openai.api.type"] == "chat_completions"
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Hello from a zero-code app"}]}
    ]
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": said["text"]}],
            "finish_reason": "stop",
        }
    ]


def test_streamed_chat_span(instrumented: AppRun) -> None:
    span = _by_call(instrumented)["stream"]
    said = instrumented.said["stream"]
    assert span.name == "chat gpt-4o-mini"
    attrs = span.attributes
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.id"] == said["id"]
    assert attrs["gen_ai.usage.input_tokens"] == said["input_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == said["output_tokens"]
    assert "llmtap.usage.estimated" not in attrs  # the stream reported its usage
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert isinstance(attrs["gen_ai.response.time_to_first_chunk"], float)
    assert 0 < attrs["gen_ai.response.time_to_first_chunk"] <= span.duration_s
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Stream a reply please"}]}
    ]
    output = json.loads(attrs["gen_ai.output.messages"])
    assert output[0]["parts"] == [{"type": "text", "content": said["text"]}]


def test_embeddings_span(instrumented: AppRun) -> None:
    span = _by_call(instrumented)["embeddings"]
    said = instrumented.said["embeddings"]
    assert span.name == "embeddings text-embedding-3-small"
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "text-embedding-3-small"
    assert attrs["gen_ai.usage.input_tokens"] == said["input_tokens"]
    assert attrs["gen_ai.embeddings.dimension.count"] == said["dims"]
    assert "gen_ai.usage.output_tokens" not in attrs


@pytest.mark.skipif(not HAS_ANTHROPIC, reason=NO_ANTHROPIC)
def test_anthropic_span(instrumented: AppRun) -> None:
    span = _by_call(instrumented)["anthropic"]
    said = instrumented.said["anthropic"]
    assert span.name == "chat claude-haiku-4-5"
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == "claude-haiku-4-5"
    assert attrs["gen_ai.request.max_tokens"] == 200
    assert attrs["gen_ai.response.id"] == said["id"]
    assert attrs["gen_ai.usage.input_tokens"] == said["input_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == said["output_tokens"]
    assert attrs["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert attrs["gen_ai.request.stream"] is False
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {
            "role": "user",
            "parts": [{"type": "text", "content": "Hello Claude from a zero-code app"}],
        }
    ]


def test_metrics_arrive(instrumented: AppRun) -> None:
    metrics = instrumented.receiver.metrics(latest=True)
    duration = metrics["gen_ai.client.operation.duration"]
    tokens = metrics["gen_ai.client.token.usage"]
    for point in duration + tokens:
        assert point.kind == "histogram"
        assert point.scope_name == "llmtap"
        assert point.resource["service.name"] == "zero-code-app"
    assert {p.unit for p in duration} == {"s"}
    assert {p.unit for p in tokens} == {"{token}"}

    def series(points: list[Any], *keys: str) -> dict[tuple, Any]:
        return {tuple(p.attributes.get(k) for k in keys): p for p in points}

    ops = series(duration, "gen_ai.provider.name", "gen_ai.operation.name", "gen_ai.request.model")
    assert ops[("openai", "chat", "gpt-4o-mini")].count == 2
    assert ops[("openai", "embeddings", "text-embedding-3-small")].count == 1
    assert all(p.sum > 0 for p in duration)

    said = instrumented.said
    usage = series(tokens, "gen_ai.provider.name", "gen_ai.operation.name", "gen_ai.token.type")
    chat_in = usage[("openai", "chat", "input")]
    assert chat_in.count == 2
    assert chat_in.sum == said["chat"]["input_tokens"] + said["stream"]["input_tokens"]
    chat_out = usage[("openai", "chat", "output")]
    assert chat_out.sum == said["chat"]["output_tokens"] + said["stream"]["output_tokens"]
    assert usage[("openai", "embeddings", "input")].sum == said["embeddings"]["input_tokens"]
    assert ("openai", "embeddings", "output") not in usage
    ttfc = metrics["gen_ai.client.operation.time_to_first_chunk"]
    assert [p.count for p in ttfc] == [1]  # only the streamed call


def test_disabled_instrumentation_emits_no_genai_spans(tmp_path: Path, devserver: Any) -> None:
    with OtlpReceiver() as receiver:
        run = run_app(
            tmp_path, receiver, devserver, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="llmtap_openai"
        )
        # the app works exactly as before ...
        assert run.said["chat"]["text"].startswith("Hello from the llmtap devserver!")
        assert run.said["stream"]["text"].startswith("Hello from the llmtap devserver!")
        assert run.said["embeddings"]["dims"] == 1536
        # ... and nothing of OpenAI is traced or measured
        spans = run.spans()
        assert [s for s in spans if s.attributes.get("gen_ai.provider.name") == "openai"] == []
        openai_points = [
            p
            for p in receiver.metric_points()
            if p.name.startswith("gen_ai.") and p.attributes.get("gen_ai.provider.name") == "openai"
        ]
        assert openai_points == []
        if HAS_ANTHROPIC:  # only the named instrumentor is off
            assert [s.name for s in spans] == ["chat claude-haiku-4-5"]
        else:
            assert spans == []
