"""The ``file`` export preset writes OTLP/JSON as the OTLP specification encodes it: hex
trace/span/parent ids, integer enums, lowerCamelCase keys. Readers of these files take both
that and the base64 lines earlier versions wrote. (End to end through a real Collector into
Jaeger: tests/e2e/test_file_preset_collector.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from llmtap import semconv
from llmtap.export.file import (
    JsonLinesSpanExporter,
    OtlpJsonError,
    otlp_json,
    parse_otlp_json,
    read_otlp_json_lines,
)

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


def _spans(path: Path | None = None) -> list[Any]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    if path is not None:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("tests")
    root = tracer.start_span("invoke_workflow answer")
    chat = tracer.start_span(
        "chat gpt-4o-mini",
        context=trace.set_span_in_context(root),
        kind=SpanKind.CLIENT,
        attributes={
            semconv.REQUEST_MODEL: "gpt-4o-mini",
            semconv.USAGE_INPUT_TOKENS: 56,
            semconv.LLMTAP_COST_TOTAL: 1.86e-05,
            semconv.RESPONSE_FINISH_REASONS: ("stop",),
        },
        links=[Link(root.get_span_context(), {"why": "same trace"})],
    )
    chat.add_event("gen_ai.chunk", {"n": 1})
    chat.set_status(Status(StatusCode.ERROR, "boom"))
    chat.end()
    root.end()
    provider.shutdown()
    return list(memory.get_finished_spans())


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def test_the_written_line_is_otlp_json(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    spans = _spans(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2  # one request per export: the chat span, then the root
    docs = [json.loads(line) for line in lines]
    written = [s for d in docs for s in d["resourceSpans"][0]["scopeSpans"][0]["spans"]]
    by_name = {s["name"]: s for s in written}
    chat, root = by_name["chat gpt-4o-mini"], by_name["invoke_workflow answer"]
    sdk = {s.name: s for s in spans}
    chat_ctx, root_ctx = sdk["chat gpt-4o-mini"].context, sdk["invoke_workflow answer"].context
    # ids: lowercase hex of the span's own ids
    assert chat["traceId"] == f"{chat_ctx.trace_id:032x}" and HEX32.fullmatch(chat["traceId"])
    assert chat["spanId"] == f"{chat_ctx.span_id:016x}" and HEX16.fullmatch(chat["spanId"])
    assert chat["parentSpanId"] == f"{root_ctx.span_id:016x}"
    assert "parentSpanId" not in root
    (link,) = chat["links"]
    assert (link["traceId"], link["spanId"]) == (
        f"{root_ctx.trace_id:032x}",
        f"{root_ctx.span_id:016x}",
    )
    # enums as integers
    assert chat["kind"] == 3 and root["kind"] == 1  # CLIENT, INTERNAL
    assert chat["status"] == {"code": 2, "message": "boom"}  # STATUS_CODE_ERROR
    # lowerCamelCase keys only
    assert not [k for d in docs for k in _keys(d) if "_" in k]
    assert {"resourceSpans", "scopeSpans", "startTimeUnixNano", "stringValue"} <= _keys(docs)
    # 64-bit integers as decimal strings (protobuf's JSON mapping, which OTLP keeps)
    attrs = {a["key"]: a["value"] for a in chat["attributes"]}
    assert attrs[semconv.USAGE_INPUT_TOKENS] == {"intValue": "56"}
    assert attrs[semconv.LLMTAP_COST_TOTAL] == {"doubleValue": 1.86e-05}
    assert chat["startTimeUnixNano"] == str(sdk["chat gpt-4o-mini"].start_time)


def test_a_line_reads_back_to_the_same_request(tmp_path: Path) -> None:
    spans = _spans()
    request = encode_spans(spans)
    assert parse_otlp_json(otlp_json(request)) == request


def test_lines_of_earlier_versions_still_read(tmp_path: Path) -> None:
    """Protobuf's default mapping: base64 ids, enum names."""
    request = encode_spans(_spans())
    old = MessageToJson(request, indent=None)
    assert '"kind": "SPAN_KIND_CLIENT"' in old or '"kind":"SPAN_KIND_CLIENT"' in old
    assert parse_otlp_json(old) == request
    snake = MessageToJson(request, indent=None, preserving_proto_field_name=True)
    assert parse_otlp_json(snake) == request
    path = tmp_path / "mixed.jsonl"
    path.write_text(f"{old}\n\n{otlp_json(request)}\nnot json\n", encoding="utf-8")
    found = list(read_otlp_json_lines(path))
    assert [(n, r == request if r else None) for n, r, _ in found] == [
        (1, True),
        (3, True),
        (4, None),
    ]
    assert found[2][2].startswith("not JSON")


@pytest.mark.parametrize(
    ("trace_id", "reason"),
    [("abc", "traceId: expected 32 hex digits"), ("zz" * 16, "traceId: expected 32 hex")],
)
def test_bad_ids_are_errors(trace_id: str, reason: str) -> None:
    line = json.dumps(
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": trace_id, "name": "x"}]}]}]}
    )
    with pytest.raises(OtlpJsonError, match=reason):
        parse_otlp_json(line)


def test_unknown_fields_are_ignored() -> None:
    line = (
        '{"resourceSpans":[{"futureField":1,"scopeSpans":[{"spans":[{"name":"x",'
        '"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",'
        '"somethingNew":{"a":1}}]}]}]}'
    )
    (span,) = parse_otlp_json(line).resource_spans[0].scope_spans[0].spans
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"


def test_pricing_unpriced_reads_old_and_new_lines(tmp_path: Path, capsys) -> None:
    from llmtap.cli import main

    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    attrs = {
        semconv.PROVIDER: "acme",
        semconv.REQUEST_MODEL: "acme-llm-9",
        semconv.USAGE_INPUT_TOKENS: 10,
        semconv.USAGE_OUTPUT_TOKENS: 5,
    }
    provider.get_tracer("t").start_span("chat acme-llm-9", attributes=attrs).end()
    request = encode_spans(memory.get_finished_spans())
    path = tmp_path / "spans.jsonl"
    path.write_text(f"{MessageToJson(request, indent=None)}\n{otlp_json(request)}\n")
    assert main(["pricing", "unpriced", "--spans", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unpriced"] == [{"provider": "acme", "model": "acme-llm-9", "spans": 2}]
