"""``opentelemetry-instrument`` + ``LLMTAP_CONFIG``: costed, redacted spans at every backend.

Plain SDK code, no llmtap import. llmtap's distro and configurator put the span pipeline in
front of the file's export presets; one preset points at a dead port and must not cost the
others a single span.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from support.otlp_receiver import OtlpReceiver

LAUNCHER = Path(sys.executable).parent / "opentelemetry-instrument"

APP = """
import openai

client = openai.OpenAI(max_retries=0)
for feature in ("support", "autocomplete", "autocomplete"):
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"[{feature}] mail me at ann.lee@example.org"}],
        extra_headers={"x-feature": feature},
    )
    print(reply.id, flush=True)
"""

CONFIG = """
service_name: support-bot
capture_content: span_only
redaction: {{mode: mask}}
export:
  - {{preset: otlp, name: collector, endpoint: "{grpc}"}}
  - {{preset: otlp, name: tempo-http, protocol: http/protobuf, endpoint: "{http}"}}
  - {{preset: otlp, name: dead, protocol: http/protobuf, endpoint: "{dead}", timeout_s: 1}}
  - {{preset: file, path: "{file}"}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_config_file_drives_pipeline_and_fan_out(tmp_path, devserver):
    with OtlpReceiver() as grpc_rx, OtlpReceiver() as http_rx:
        config = tmp_path / "llmtap.yaml"
        config.write_text(
            CONFIG.format(
                grpc=grpc_rx.grpc_endpoint,
                http=http_rx.http_url("traces"),
                dead=f"http://127.0.0.1:{free_port()}/v1/traces",
                file=tmp_path / "spans.jsonl",
            )
        )
        (tmp_path / "app.py").write_text(APP)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "LLMTAP_", "OPENAI_", "ANTHROPIC_"))
        }
        env.update(
            LLMTAP_CONFIG=str(config),
            OPENAI_BASE_URL=devserver.openai_base_url,
            OPENAI_API_KEY="sk-test-not-a-secret",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        run = subprocess.run(
            [str(LAUNCHER), sys.executable, str(tmp_path / "app.py")],
            env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        ids = run.stdout.split()
        assert len(ids) == 3
        for rx in (grpc_rx, http_rx):
            spans = rx.wait_for_spans(3, timeout=20)
            assert sorted(s.attributes["gen_ai.response.id"] for s in spans) == sorted(ids)
            for span in spans:
                assert span.resource["service.name"] == "support-bot"
                assert span.attributes["llmtap.cost.total"] > 0
                assert span.attributes["llmtap.cost.currency"] == "USD"
                messages = json.loads(span.attributes["gen_ai.input.messages"])
                text = messages[0]["parts"][0]["content"]
                assert "ann.lee@example.org" not in text
                assert "<EMAIL>" in text
                assert span.attributes["llmtap.redaction.count"] >= 1
        lines = (tmp_path / "spans.jsonl").read_text().splitlines()
        in_file = [
            span
            for line in lines
            for rs in json.loads(line)["resourceSpans"]
            for ss in rs["scopeSpans"]
            for span in ss["spans"]
        ]
        assert len(in_file) == 3
        assert "ann.lee@example.org" not in "\n".join(lines)
