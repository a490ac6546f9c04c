"""The ``file`` export preset's lines are OTLP/JSON that a real OpenTelemetry Collector reads:
an app (real ``openai`` SDK against the dev server, ``llmtap.configure()`` with an
``llmtap.yaml`` whose file preset has a relative path) writes its spans to a JSON-lines file;
each line goes to the Collector (``otelcol-llmtap``) as OTLP/JSON, the Collector exports to
Jaeger v2 over OTLP/gRPC, and Jaeger's query API must show the spans with the ids, parents
and attributes of the file.

The Collector decodes the lines with pdata's OTLP/JSON unmarshaler, the one its
``otlpjsonfile`` receiver uses too, which accepts only the specification's encoding: a line
in protobuf's default mapping (base64 ids, as earlier llmtap versions wrote) is refused
with HTTP 400, and the test checks that as well. (The lines reach the Collector through its
OTLP/HTTP receiver because the ``otlpjsonfilereceiver`` module is not served by the Go
module proxy the distribution is built from.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson

from llmtap.export.file import parse_otlp_json
from support.binaries import (
    Proc,
    Processes,
    http_get,
    require_binary,
    start_collector,
    start_jaeger,
    wait_until,
)

pytestmark = pytest.mark.e2e

COLLECTOR_CONFIG = """
extensions:
  health_check:
    endpoint: ${env:COLLECTOR_HEALTH_ENDPOINT}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:COLLECTOR_OTLP_GRPC_ENDPOINT}
      http:
        endpoint: ${env:COLLECTOR_OTLP_HTTP_ENDPOINT}
processors:
  batch:
    timeout: ${env:COLLECTOR_BATCH_TIMEOUT}
exporters:
  otlp_grpc/jaeger:
    endpoint: ${env:JAEGER_OTLP_ENDPOINT}
    tls:
      insecure: true
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_grpc/jaeger]
  telemetry:
    metrics:
      level: none
"""

APP = """
import json

import openai
from opentelemetry import trace

import llmtap

setup = llmtap.configure()  # LLMTAP_CONFIG
client = openai.OpenAI(max_retries=0)


@llmtap.workflow("answer")
def answer(question):
    context = trace.get_current_span().get_span_context()
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
    )
    return f"{context.trace_id:032x}", reply.id


trace_id, response_id = answer("Where is order A-1001?")
setup.shutdown()
print(json.dumps({"trace_id": trace_id, "response_id": response_id}))
"""


@pytest.fixture(autouse=True)
def _binaries() -> None:
    require_binary("otelcol-llmtap")
    require_binary("jaeger")


def write_spans(tmp_path: Path, devserver: Any) -> tuple[dict[str, str], Path]:
    """Run the app from ``tmp_path`` with ``conf/llmtap.yaml`` (file preset, relative path):
    the spans land next to the config file, not in the current directory."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "llmtap.yaml").write_text(
        "service_name: file-preset-app\nexport: [{preset: file, path: out/spans.jsonl}]\n"
    )
    (tmp_path / "app.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTAP_", "OPENAI_"))}
    env.update(
        LLMTAP_CONFIG="conf/llmtap.yaml",
        OPENAI_BASE_URL=devserver.openai_base_url,
        OPENAI_API_KEY="file-preset-key",
    )
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "out").exists()
    return json.loads(done.stdout.strip().splitlines()[-1]), conf / "out" / "spans.jsonl"


def post_json(collector: Proc, body: str) -> tuple[int, str]:
    request = urllib.request.Request(
        collector.url("http", "/v1/traces"),
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def jaeger_spans(jaeger: Proc, trace_id: str) -> list[dict[str, Any]]:
    status, body = http_get(jaeger.url("query", f"/api/traces/{trace_id}"))
    if status != 200:
        return []
    return [span for trace in json.loads(body).get("data") or [] for span in trace["spans"]]


def test_file_preset_lines_read_by_a_collector_into_jaeger(
    procs: Processes, tmp_path: Path, devserver: Any
) -> None:
    said, spans_file = write_spans(tmp_path, devserver)
    lines = spans_file.read_text(encoding="utf-8").splitlines()
    written = [
        span
        for line in lines
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    assert {s["name"] for s in written} == {"invoke_workflow answer", "chat gpt-4o-mini"}
    assert {s["traceId"] for s in written} == {said["trace_id"]}

    jaeger = start_jaeger(procs)
    config = tmp_path / "collector.yaml"
    config.write_text(COLLECTOR_CONFIG)
    collector = start_collector(
        procs, config, env={"JAEGER_OTLP_ENDPOINT": jaeger.endpoint("grpc")}
    )

    # the encoding earlier versions wrote (protobuf's default JSON mapping) is refused ...
    old = MessageToJson(parse_otlp_json(lines[0]), indent=None)
    status, answer = post_json(collector, old)
    assert status == 400, (status, answer)
    # ... the specification's is taken, line by line
    for line in lines:
        status, answer = post_json(collector, line)
        assert status == 200, (status, answer)

    def both_spans() -> list[dict[str, Any]] | None:
        spans = jaeger_spans(jaeger, said["trace_id"])
        return spans if len(spans) >= 2 else None

    found = wait_until(both_spans, 45, f"the 2 spans of trace {said['trace_id']} in Jaeger", 0.5)
    by_id = {s["spanID"]: s for s in found}
    assert set(by_id) == {s["spanId"] for s in written}
    for span in written:
        got = by_id[span["spanId"]]
        assert got["traceID"] == said["trace_id"]
        assert got["operationName"] == span["name"]
        parents = [r["spanID"] for r in got.get("references", []) if r["refType"] == "CHILD_OF"]
        assert parents == ([span["parentSpanId"]] if "parentSpanId" in span else [])
    (chat,) = [s for s in found if s["operationName"] == "chat gpt-4o-mini"]
    tags = {t["key"]: t["value"] for t in chat["tags"]}
    assert tags["gen_ai.response.id"] == said["response_id"]
    assert tags["span.kind"] == "client"
    assert tags["gen_ai.usage.cost"] > 0
    raw = json.loads(http_get(jaeger.url("query", f"/api/traces/{said['trace_id']}"))[1])
    (process,) = {p["serviceName"] for p in raw["data"][0]["processes"].values()}
    assert process == "file-preset-app"
