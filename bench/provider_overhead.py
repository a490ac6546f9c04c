#!/usr/bin/env python
"""Added cost per call and per streamed chunk of Google GenAI and Bedrock instrumentation:
llmtap beside the official OpenTelemetry, OpenInference and OpenLLMetry instrumentations of
the same SDKs, in one process.

The replies are rendered once by llmtap's devserver (the providers' wire formats) and served
in memory: google-genai through an ``httpx.MockTransport``, botocore through its
``before-send`` event, so every row pays the same transport cost and no socket is opened.
Rows are switched on (instrument) and off (uninstrument) around each measured block; blocks
of all rows are interleaved round by round in a shuffled order, each paired with a bare block
(the SDK alone) just before it, and the figure is the median of the paired differences.
Every row runs with message content off.

    bench/.venv-providers/bin/python bench/provider_overhead.py            # full run
    bench/.venv-providers/bin/python bench/provider_overhead.py --quick    # wiring check

Writes a Markdown table to stdout and bench/results/provider_overhead.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata as md
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sink import CONTENT_OFF_ENV, Sink  # noqa: E402
from llmtap.devserver import handle  # noqa: E402

PROMPT = "Explain OpenTelemetry spans in one paragraph."


@dataclass
class RowSpec:
    label: str
    target: str  # module:Class of the instrumentor; "" for the bare SDK
    distribution: str = ""


@dataclass
class Workload:
    """One SDK: how to build a client on canned replies, one call, one stream."""

    name: str
    rows: list[RowSpec]
    make_client: Callable[[], Any]
    call: Callable[[Any], Any]
    stream: Callable[[Any], int]  # consumes one stream, returns its chunk count
    packages: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------------------------
# google-genai
# ---------------------------------------------------------------------------------------------

GEMINI_MODEL = "gemini-2.5-flash"


def _gemini_bodies() -> dict[str, tuple[dict[str, str], bytes]]:
    request = {
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "systemInstruction": {"parts": [{"text": "You are a terse assistant."}]},
        "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 256},
    }
    out = {}
    for verb, path in (
        ("call", f"/v1beta/models/{GEMINI_MODEL}:generateContent"),
        ("stream", f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse"),
    ):
        reply = handle("POST", path, {}, json.dumps(request).encode())
        body = b"".join(reply.event_chunks()) if reply.is_stream else reply.body_bytes()
        out[verb] = (dict(reply.headers), body)
    return out


def gemini_workload() -> Workload:
    import httpx2 as httpx
    from google import genai
    from google.genai import types

    bodies = _gemini_bodies()

    def respond(request: httpx.Request) -> httpx.Response:
        headers, body = bodies["stream" if "stream" in request.url.path else "call"]
        return httpx.Response(200, headers=headers, content=body)

    transport = httpx.MockTransport(respond)
    config = types.GenerateContentConfig(
        system_instruction="You are a terse assistant.",
        temperature=0.2,
        top_p=0.9,
        max_output_tokens=256,
    )

    def make_client() -> Any:
        options = types.HttpOptions(
            base_url="http://bench.invalid", httpx_client=httpx.Client(transport=transport)
        )
        return genai.Client(api_key="bench", http_options=options)

    def call(client: Any) -> Any:
        return client.models.generate_content(model=GEMINI_MODEL, contents=PROMPT, config=config)

    def stream(client: Any) -> int:
        chunks = client.models.generate_content_stream(
            model=GEMINI_MODEL, contents=PROMPT, config=config
        )
        return sum(1 for _ in chunks)

    rows = [
        RowSpec("SDK alone", ""),
        RowSpec(
            "**llmtap**",
            "llmtap.instrumentation.google_genai:GoogleGenAIInstrumentor",
            "llmtap",
        ),
        RowSpec(
            "OTel `opentelemetry-instrumentation-google-genai`",
            "opentelemetry.instrumentation.google_genai:GoogleGenAiSdkInstrumentor",
            "opentelemetry-instrumentation-google-genai",
        ),
        RowSpec(
            "OpenInference `openinference-instrumentation-google-genai`",
            "openinference.instrumentation.google_genai:GoogleGenAIInstrumentor",
            "openinference-instrumentation-google-genai",
        ),
        RowSpec(
            "OpenLLMetry `opentelemetry-instrumentation-google-generativeai`",
            "opentelemetry.instrumentation.google_generativeai:GoogleGenerativeAiInstrumentor",
            "opentelemetry-instrumentation-google-generativeai",
        ),
    ]
    return Workload("google-genai", rows, make_client, call, stream, ("google-genai", "httpx2"))


# ---------------------------------------------------------------------------------------------
# Bedrock (botocore)
# ---------------------------------------------------------------------------------------------

BEDROCK_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


def _bedrock_bodies() -> dict[str, tuple[dict[str, str], bytes]]:
    from urllib.parse import quote

    request = {
        "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
        "system": [{"text": "You are a terse assistant."}],
        "inferenceConfig": {"temperature": 0.2, "topP": 0.9, "maxTokens": 256},
    }
    model = quote(BEDROCK_MODEL, safe="")
    out = {}
    for verb, path in (
        ("call", f"/model/{model}/converse"),
        ("stream", f"/model/{model}/converse-stream"),
    ):
        reply = handle("POST", path, {}, json.dumps(request).encode())
        body = b"".join(reply.event_chunks()) if reply.is_stream else reply.body_bytes()
        out[verb] = (dict(reply.headers), body)
    return out


class _RawBody:
    """What botocore reads a response body from (``urllib3.HTTPResponse``'s surface it uses)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._read = False

    def stream(self, amt: int = 1024, decode_content: bool = False) -> Any:
        for start in range(0, len(self._data), amt):
            yield self._data[start : start + amt]

    def read(self, amt: int | None = None, decode_content: bool = False) -> bytes:
        if self._read:
            return b""
        self._read = True
        return self._data

    def close(self) -> None:
        pass


def bedrock_workload() -> Workload:
    import boto3
    from botocore.awsrequest import AWSResponse

    bodies = _bedrock_bodies()

    def respond(request: Any, **_: Any) -> Any:
        headers, body = bodies["stream" if request.url.endswith("converse-stream") else "call"]
        return AWSResponse(request.url, 200, headers, _RawBody(body))

    inference = {"temperature": 0.2, "topP": 0.9, "maxTokens": 256}
    messages = [{"role": "user", "content": [{"text": PROMPT}]}]
    system = [{"text": "You are a terse assistant."}]

    def make_client() -> Any:
        client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url="http://bench.invalid",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        client.meta.events.register("before-send.bedrock-runtime", respond)
        return client

    def call(client: Any) -> Any:
        return client.converse(
            modelId=BEDROCK_MODEL, messages=messages, system=system, inferenceConfig=inference
        )

    def stream(client: Any) -> int:
        reply = client.converse_stream(
            modelId=BEDROCK_MODEL, messages=messages, system=system, inferenceConfig=inference
        )
        return sum(1 for _ in reply["stream"])

    rows = [
        RowSpec("SDK alone", ""),
        RowSpec("**llmtap**", "llmtap.instrumentation.bedrock:BedrockInstrumentor", "llmtap"),
        RowSpec(
            "OTel `opentelemetry-instrumentation-botocore` (Bedrock extension)",
            "opentelemetry.instrumentation.botocore:BotocoreInstrumentor",
            "opentelemetry-instrumentation-botocore",
        ),
        RowSpec(
            "OpenInference `openinference-instrumentation-bedrock`",
            "openinference.instrumentation.bedrock:BedrockInstrumentor",
            "openinference-instrumentation-bedrock",
        ),
        RowSpec(
            "OpenLLMetry `opentelemetry-instrumentation-bedrock`",
            "opentelemetry.instrumentation.bedrock:BedrockInstrumentor",
            "opentelemetry-instrumentation-bedrock",
        ),
    ]
    return Workload("bedrock", rows, make_client, call, stream, ("boto3", "botocore"))


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------


class Row:
    def __init__(self, spec: RowSpec, sink: Sink) -> None:
        self.spec = spec
        self.sink = sink
        self.instrumentor: Any = None
        if spec.target:
            module, _, name = spec.target.partition(":")
            self.instrumentor = getattr(importlib.import_module(module), name)()

    def on(self) -> None:
        if self.instrumentor is not None:
            self.instrumentor.instrument(**self.sink.providers(), skip_dep_check=True)

    def off(self) -> None:
        if self.instrumentor is not None:
            self.instrumentor.uninstrument()


def _block(work: Callable[[Any], Any], client: Any, n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        work(client)
    return (time.perf_counter_ns() - start) / 1000 / n


def _timed(row: Row, workload: Workload, work: Callable[[Any], Any], n: int) -> float:
    row.on()
    try:
        client = workload.make_client()  # some instrumentors hook client creation
        work(client)  # warm
        return _block(work, client, n)
    finally:
        row.off()


def spans_per_call(row: Row, workload: Workload, sink: Sink) -> tuple[int, int]:
    """How many spans one call and one stream produce with this row on (a row that records
    nothing would look free)."""
    counts = []
    for work in (workload.call, workload.stream):
        before = sink.spans.count
        _timed(row, workload, work, 1)
        counts.append((sink.spans.count - before) // 2)
    return counts[0], counts[1]


def measure(workload: Workload, rounds: int, calls: int, streams: int) -> dict[str, Any]:
    sink = Sink()
    rows = [Row(spec, sink) for spec in workload.rows]
    bare, instrumented = rows[0], rows[1:]
    chunks = workload.stream(workload.make_client())
    spans = {row.spec.label: spans_per_call(row, workload, sink) for row in instrumented}
    diffs: dict[str, dict[str, list[float]]] = {
        row.spec.label: {"call": [], "stream": []} for row in instrumented
    }
    base: dict[str, list[float]] = {"call": [], "stream": []}
    for number in range(rounds):
        order = instrumented[:]
        random.shuffle(order)
        for row in order:
            for mode, work, n in (
                ("call", workload.call, calls),
                ("stream", workload.stream, streams),
            ):
                alone = _timed(bare, workload, work, n)
                base[mode].append(alone)
                diffs[row.spec.label][mode].append(_timed(row, workload, work, n) - alone)
        if number % max(1, rounds // 5) == 0:
            print(f"[{workload.name}] round {number + 1}/{rounds}", file=sys.stderr)
    return {
        "chunks_per_stream": chunks,
        "bare_us": {mode: statistics.median(v) for mode, v in base.items()},
        "rows": {
            label: {
                "call_us": statistics.median(d["call"]),
                "stream_us": statistics.median(d["stream"]),
                # the stream's cost beyond one call's, spread over its chunks
                "chunk_us": (statistics.median(d["stream"]) - statistics.median(d["call"]))
                / chunks,
                "spans_per_call": spans[label][0],
                "spans_per_stream": spans[label][1],
            }
            for label, d in diffs.items()
        },
    }


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def _version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "-"


def report(results: dict[str, Any], config: dict[str, Any]) -> str:
    lines = [
        "# Google GenAI and Bedrock instrumentation: added time per call and per chunk",
        "",
        f"{config['date']}, Python {config['python']}, {config['cpu']}, "
        f"load {config['load']}. {config['rounds']} rounds of {config['calls']} calls and "
        f"{config['streams']} streams per row, each block paired with a bare block; "
        "µs = median of the paired differences. Content capture off in every row.",
        "",
    ]
    for name, result in results.items():
        rows = result["rows"]
        ours = rows["**llmtap**"]
        lines += [
            f"## {name}",
            "",
            f"SDK alone: {result['bare_us']['call']:.0f} µs per call, "
            f"{result['bare_us']['stream']:.0f} µs per stream of "
            f"{result['chunks_per_stream']} chunks. Added µs per chunk = (added per stream "
            "- added per call) / chunks: what each chunk costs beyond the call's own span.",
            "",
            "| row | spans per call / stream | added µs per call | × llmtap "
            "| added µs per stream | added µs per chunk | × llmtap |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for label, row in rows.items():
            lines.append(
                f"| {label} | {row['spans_per_call']} / {row['spans_per_stream']} "
                f"| {row['call_us']:.1f} | {_ratio(row['call_us'], ours['call_us'])} "
                f"| {row['stream_us']:.0f} | {row['chunk_us']:.2f} | {_ratio(row['chunk_us'], ours['chunk_us'])} |"
            )
        lines.append("")
    lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in config["versions"].items()), ""]
    return "\n".join(lines)


def _ratio(value: float, ours: float) -> str:
    return f"{value / ours:.2f}" if ours > 0 else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a wiring check, not figures")
    parser.add_argument("--sdk", choices=("google-genai", "bedrock"), action="append")
    args = parser.parse_args()
    os.environ.update(CONTENT_OFF_ENV)
    rounds, calls, streams = (2, 20, 5) if args.quick else (30, 200, 40)
    factories = {"google-genai": gemini_workload, "bedrock": bedrock_workload}
    chosen = args.sdk or list(factories)
    workloads = [factories[name]() for name in chosen]
    results = {w.name: measure(w, rounds, calls, streams) for w in workloads}
    packages = ["llmtap"] + [p for w in workloads for p in w.packages]
    packages += [r.distribution for w in workloads for r in w.rows if r.distribution]
    config = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cpu": _cpu(),
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "rounds": rounds,
        "calls": calls,
        "streams": streams,
        "versions": {p: _version(p) for p in dict.fromkeys(packages)},
    }
    text = report(results, config)
    print(text)
    if not args.quick:
        out = HERE / "results"
        (out / "provider_overhead.md").write_text(text)
        document = {"config": config, "results": results}
        (out / "provider_overhead.json").write_text(json.dumps(document, indent=1) + "\n")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
