"""The ``file`` export preset's lines are OTLP/JSON that a real OpenTelemetry Collector reads:
an app (real ``openai`` SDK against the dev server, ``llmtap.configure()`` with an
``llmtap.yaml`` whose file preset has a relative path) writes its spans to a JSON-lines file;
a Collector's ``otlp_json_file`` receiver (formerly ``otlpjsonfile``) reads that file from
the beginning and exports over OTLP/gRPC to Jaeger v2, whose query API must show exactly the
file's spans with the same hex trace/span/parent ids, attributes and resource.

The Collector is ``otelcol-jsonfile``, a test-only distribution
(collector-config/testing/jsonfile-builder.yaml): the Go module proxy does not serve the
receiver at the release ``otelcol-llmtap`` is built from.

The receiver decodes each line with pdata's OTLP/JSON unmarshaler, which accepts only the
specification's encoding: a line in protobuf's default mapping (base64 ids, as earlier
llmtap versions wrote) is refused. The same Collector also reads such a line from a second
file; its own metrics (``otelcol_receiver_requests`` by outcome, behind the
``receiverhelper.newReceiverMetrics`` feature gate) must count one failed read for it, one
successful read per line of the preset's file, and only the preset's spans as accepted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
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
    start_jaeger,
    start_jsonfile_collector,
    wait_until,
)

pytestmark = pytest.mark.e2e

COLLECTOR_CONFIG = """
receivers:
  otlp_json_file:
    include: ${env:JSONFILE_INCLUDE}
    start_at: beginning
    # otherwise the receiver adds log.file.name to every span's attributes
    include_file_name: false
exporters:
  otlp_grpc/jaeger:
    endpoint: ${env:JAEGER_OTLP_ENDPOINT}
    tls:
      insecure: true
service:
  pipelines:
    traces:
      receivers: [otlp_json_file]
      exporters: [otlp_grpc/jaeger]
  telemetry:
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: ${env:COLLECTOR_TELEMETRY_HOST}
                port: ${env:COLLECTOR_TELEMETRY_PORT}
"""

#: counts every read of a line as a request with an outcome (success / failure)
FEATURE_GATES = "--feature-gates=receiverhelper.newReceiverMetrics"

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
    require_binary("otelcol-jsonfile")
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


def jaeger_spans(jaeger: Proc, trace_id: str) -> list[dict[str, Any]]:
    status, body = http_get(jaeger.url("query", f"/api/traces/{trace_id}"))
    if status != 200:
        return []
    return [span for trace in json.loads(body).get("data") or [] for span in trace["spans"]]


_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the Prometheus samples ``name`` (or ``name_total``) whose labels include
    ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match[1] not in (name, f"{name}_total"):
            continue
        have = dict(_LABEL.findall(match[2] or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match[3])
    return total


def tag_value(value: dict[str, Any]) -> Any:
    """An OTLP/JSON ``AnyValue`` as Jaeger's query API shows the tag (None: not compared)."""
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "intValue" in value:
        return int(value["intValue"])  # a decimal string in OTLP/JSON
    if "doubleValue" in value:
        return float(value["doubleValue"])
    return None


def test_file_preset_lines_read_by_a_collector_into_jaeger(
    procs: Processes, tmp_path: Path, devserver: Any
) -> None:
    said, spans_file = write_spans(tmp_path, devserver)
    lines = spans_file.read_text(encoding="utf-8").splitlines()
    resource_spans = [rs for line in lines for rs in json.loads(line)["resourceSpans"]]
    written = [span for rs in resource_spans for ss in rs["scopeSpans"] for span in ss["spans"]]
    assert {s["name"] for s in written} == {"invoke_workflow answer", "chat gpt-4o-mini"}
    assert {s["traceId"] for s in written} == {said["trace_id"]}
    assert all(re.fullmatch(r"[0-9a-f]{16}", s["spanId"]) for s in written)

    # the encoding earlier versions wrote (protobuf's default JSON mapping, base64 ids)
    old_file = tmp_path / "old" / "spans.jsonl"
    old_file.parent.mkdir()
    old_file.write_text(MessageToJson(parse_otlp_json(lines[0]), indent=None) + "\n")
    old = old_file.read_text()
    assert base64.b64encode(bytes.fromhex(said["trace_id"])).decode() in old
    assert said["trace_id"] not in old

    jaeger = start_jaeger(procs)
    config = tmp_path / "collector.yaml"
    config.write_text(COLLECTOR_CONFIG)
    collector = start_jsonfile_collector(
        procs,
        config,
        env={
            "JAEGER_OTLP_ENDPOINT": jaeger.endpoint("grpc"),
            "JSONFILE_INCLUDE": json.dumps([str(spans_file), str(old_file)]),
        },
        args=[FEATURE_GATES],
    )

    def both_spans() -> list[dict[str, Any]] | None:
        spans = jaeger_spans(jaeger, said["trace_id"])
        return spans if len(spans) >= 2 else None

    found = wait_until(both_spans, 45, f"the 2 spans of trace {said['trace_id']} in Jaeger", 0.5)

    # the receiver read every line of both files: the preset's taken, the old one refused
    receiver = {"receiver": "otlp_json_file"}

    def all_lines_read() -> str | None:
        status, body = http_get(collector.url("telemetry", "/metrics"))
        text = body.decode(errors="replace") if status == 200 else ""
        ok = metric(text, "otelcol_receiver_requests", outcome="success", **receiver)
        failed = metric(text, "otelcol_receiver_requests", outcome="failure", **receiver)
        return text if ok >= len(lines) and failed >= 1 else None

    text = wait_until(all_lines_read, 30, "the Collector's read of both files", 0.5)
    assert metric(text, "otelcol_receiver_requests", outcome="success", **receiver) == len(lines)
    assert metric(text, "otelcol_receiver_requests", outcome="failure", **receiver) == 1
    assert metric(text, "otelcol_receiver_accepted_spans", **receiver) == len(written)
    assert metric(text, "otelcol_exporter_sent_spans") == len(written)

    # Jaeger holds exactly the file's spans: same hex ids, parents, attributes, resource
    found = jaeger_spans(jaeger, said["trace_id"])
    assert len(found) == len(written), [s["spanID"] for s in found]
    by_id = {s["spanID"]: s for s in found}
    assert set(by_id) == {s["spanId"] for s in written}
    for span in written:
        got = by_id[span["spanId"]]
        assert got["traceID"] == said["trace_id"]
        assert got["operationName"] == span["name"]
        parents = [r["spanID"] for r in got.get("references", []) if r["refType"] == "CHILD_OF"]
        assert parents == ([span["parentSpanId"]] if "parentSpanId" in span else [])
        tags = {t["key"]: t["value"] for t in got["tags"]}
        assert not [k for k in tags if k.startswith("log.file.")]
        compared = 0
        for attribute in span.get("attributes", []):
            want = tag_value(attribute["value"])
            if want is not None:
                assert tags.get(attribute["key"]) == want, (span["name"], attribute)
                compared += 1
        assert compared >= 3, span
    (chat,) = [s for s in found if s["operationName"] == "chat gpt-4o-mini"]
    tags = {t["key"]: t["value"] for t in chat["tags"]}
    assert tags["gen_ai.response.id"] == said["response_id"]
    assert tags["span.kind"] == "client"
    assert tags["llmtap.cost.total"] > 0

    raw = json.loads(http_get(jaeger.url("query", f"/api/traces/{said['trace_id']}"))[1])
    (process,) = {json.dumps(p, sort_keys=True) for p in raw["data"][0]["processes"].values()}
    assert json.loads(process)["serviceName"] == "file-preset-app"
    process_tags = {t["key"]: t["value"] for t in json.loads(process)["tags"]}
    for rs in resource_spans:
        for attribute in rs["resource"]["attributes"]:
            want = tag_value(attribute["value"])
            if attribute["key"] != "service.name" and want is not None:
                assert process_tags.get(attribute["key"]) == want, attribute
