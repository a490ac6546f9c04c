"""Throughput of the llmtap service: spans per second per core, received -> pipeline ->
forwarded, with CPU and memory.

Three processes on loopback:

- **sender** (this process): pre-encodes ``ExportTraceServiceRequest``s of 512 spans and
  sends them over OTLP/gRPC with a few concurrent calls, retrying when the service pushes
  back (UNAVAILABLE);
- **service**: ``ServiceApp`` as ``llmtap serve`` runs it (``--role service``: the config
  file plus a ``ServiceConfig`` set here), one ``otlp`` destination;
- **sink**: a raw gRPC OTLP receiver that only counts spans (``--role sink``).

Per workload the service is started fresh; its CPU time (user + system, from
``/proc/<pid>/stat``) and memory (``VmRSS``, ``VmHWM``) are read around the measured
window, which runs from the first request sent until the sink has every span.
``spans/s per core`` is spans divided by the service's CPU seconds; ``spans/s`` is spans
divided by wall time (on a small machine the three processes share the cores).

Workloads: spans of ~1 KB and ~8 KB (GenAI chat spans; the size is mostly message content)

- ``from llmtap apps``: already costed and redacted by an llmtap SDK (they carry
  ``llmtap.cost.total``, ``llmtap.redaction.count`` and a valid ``llmtap.redaction.seal``
  under the key the service has in ``LLMTAP_REDACTION_KEY``): the stages have nothing to
  do, the service only checks each seal;
  once with the default ``service.usage_metrics`` (cost and tokens by model and feature
  read from every GenAI span) and once with it off;
- ``from other SDKs``: no llmtap markers: the service prices and redacts every span;
- ``stages off``: ``pricing.enabled: false``, ``redaction.enabled: false``: receive and
  forward only (the floor).

Then an in-process profile of the ingest path for each kind (where the time goes).

    python bench/service_throughput.py [--requests 200] [--quick] [--out bench/results]

The same traffic through a real OpenTelemetry Collector (OTLP in, tail sampling, batch,
OTLP out; ``otelcol-llmtap`` from tools/build-otel-binaries.sh) is measured in the same run
as the reference, when the binary is there.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import types
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
COUNT = "/llmtap.bench.Sink/Count"
SPANS_PER_REQUEST = 512
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: the redaction seal key shared by the "llmtap app" sender and the service
SEAL_KEY = "bench-redaction-seal-key-0123456789"

_PROSE = (
    "please check my order status and tell me when it ships thanks a lot for the help the "
    "package was supposed to arrive yesterday but tracking shows nothing new since monday "
    "could you look into it and let me know what happened"
)
WORDS = _PROSE.split()


# spans ---------------------------------------------------------------------------------------


def _text(n: int, rnd: random.Random) -> str:
    out: list[str] = []
    size = 0
    while size < n:
        word = rnd.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:n]


def make_request(size: int, kind: str, seed: int, n: int = SPANS_PER_REQUEST) -> bytes:
    """One request of ``n`` chat spans of about ``size`` serialized bytes each."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from llmtap.pipeline.redaction_seal import SEAL, seal
    from llmtap.service.spans import set_attributes

    rnd = random.Random(seed)
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    set_attributes(
        rs.resource.attributes,
        {
            "service.name": "support-bot",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": "1.45.1",
        },
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "llmtap.instrumentation.openai"
    ss.scope.version = "0.1.0"
    for i in range(n):
        span = ss.spans.add()
        span.trace_id = rnd.randbytes(16)
        span.span_id = rnd.randbytes(8)
        span.parent_span_id = rnd.randbytes(8)
        span.name = "chat gpt-4o-mini"
        span.kind = 3  # CLIENT
        span.start_time_unix_nano = 1_763_800_000_000_000_000 + i * 1000
        span.end_time_unix_nano = span.start_time_unix_nano + rnd.randint(200, 3000) * 1_000_000
        tin, tout = rnd.randint(50, 3000), rnd.randint(10, 800)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 1024,
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": f"chatcmpl-{rnd.randbytes(12).hex()}",
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": tin,
            "gen_ai.usage.output_tokens": tout,
            "server.address": "api.openai.com",
            "server.port": 443,
            "llmtap.feature": rnd.choice(["support", "search", "summarize"]),
            "session.id": f"sess-{rnd.randint(1, 500)}",
            "user.id": f"u-{rnd.randint(1, 5000)}",
        }
        if kind.startswith("llmtap"):
            cost = round(tin * 1.5e-7 + tout * 6e-7, 12)
            attrs.update(
                {
                    "llmtap.cost.total": cost,
                    "llmtap.cost.input": round(tin * 1.5e-7, 12),
                    "llmtap.cost.output": round(tout * 6e-7, 12),
                    "llmtap.cost.currency": "USD",
                    "llmtap.cost.price_source": "bundled:2026-11-22",
                    "llmtap.cost.price_model": "gpt-4o-mini",
                    "llmtap.redaction.count": 0,
                }
            )
            attrs[SEAL] = seal(SEAL_KEY.encode(), span.trace_id, span.span_id, "count=0")
        set_attributes(span.attributes, attrs)
        budget = max(size - span.ByteSize() - 120, 40)
        pii = not kind.startswith("llmtap") and i % 4 == 0
        question = _text(budget * 2 // 3, rnd)
        if pii:
            question = question[: max(0, len(question) - 40)] + " mail me at jane.doe@example.com"
        content = {
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": question}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": _text(budget // 3, rnd)}],
                        "finish_reason": "stop",
                    }
                ]
            ),
        }
        set_attributes(span.attributes, content)
    return request.SerializeToString()


# the sink ------------------------------------------------------------------------------------


def run_sink(port_file: str) -> None:
    from llmtap.service.spans import RawRequest

    lock = threading.Lock()
    state = {"spans": 0}

    def export(request: bytes, context: Any) -> bytes:
        parsed = RawRequest.FromString(request)
        n = sum(len(ss.spans) for rs in parsed.resource_spans for ss in rs.scope_spans)
        with lock:
            state["spans"] += n
        return b""

    def count(request: bytes, context: Any) -> bytes:
        with lock:
            return str(state["spans"]).encode()

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "opentelemetry.proto.collector.trace.v1.TraceService",
                {"Export": grpc.unary_unary_rpc_method_handler(export)},
            ),
            grpc.method_handlers_generic_handler(
                "llmtap.bench.Sink", {"Count": grpc.unary_unary_rpc_method_handler(count)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    Path(port_file + ".tmp").write_text(str(port))
    os.replace(port_file + ".tmp", port_file)
    server.wait_for_termination()


# process helpers -----------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def memory_mb(pid: int) -> tuple[float, float]:
    text = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]
    return rss, hwm


def start_sink(tmp: Path) -> tuple[subprocess.Popen, int]:
    port_file = tmp / "sink.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", "sink", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the sink did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def run_service(config: str, usage_metrics: bool, null_destination: bool = False) -> None:
    """The service as ``llmtap serve`` runs it, with ``service.usage_metrics`` set here (so
    the benchmark does not depend on the ``service:`` section being registered)."""
    import signal

    from llmtap.config_file import load_config
    from llmtap.service import ServiceConfig
    from llmtap.service.app import ServiceApp

    service = ServiceConfig(
        grpc_address="127.0.0.1:0",
        http_address=None,
        metrics_address=None,
        usage_metrics=usage_metrics,
    )
    destinations = None
    if null_destination:  # receive and pipeline only: the forwarder does nothing
        from llmtap.service.forward import Destination, SendResult

        class Null:
            kind = "null"
            target = "-"

            def send(self, request: bytes, spans: int) -> SendResult:
                return SendResult()

            def close(self) -> None:
                pass

        destinations = [Destination("null", Null(), capacity=1 << 30)]
    app = ServiceApp(load_config(config), service, destinations=destinations).start()
    assert app.grpc is not None
    print(f"OTLP/gRPC  listening on {app.grpc.address}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    app.stop(5)


def start_service(
    tmp: Path, sink_port: int, stages: bool, usage_metrics: bool = True, null: bool = False
) -> tuple[subprocess.Popen, int]:
    config = tmp / "llmtap.yaml"
    lines = [
        "export:",
        f'  - {{preset: otlp, endpoint: "http://127.0.0.1:{sink_port}", queue_size: 32768}}',
    ]
    if not stages:
        lines += ["pricing: {enabled: false}", "redaction: {enabled: false}"]
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LLMTAP_REDACTION_KEY": SEAL_KEY}
    command = [sys.executable, __file__, "--role", "service", "--config", str(config)]
    if not usage_metrics:
        command.append("--no-usage-metrics")
    if null:
        command.append("--null-destination")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the service exited before listening")
        match = re.search(r"OTLP/gRPC\s+listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, int(match.group(1))
    raise RuntimeError("the service did not say where it listens")


COLLECTOR_CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{port}", max_recv_msg_size_mib: 64}}
processors:
  tail_sampling:
    decision_wait: 1s
    num_traces: 200000
    policies:
      - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
      - {{name: slow, type: latency, latency: {{threshold_ms: 5000}}}}
      - {{name: the-rest, type: probabilistic, probabilistic: {{sampling_percentage: 100}}}}
exporters:
  otlp:
    endpoint: "127.0.0.1:{sink}"
    tls: {{insecure: true}}
    compression: none
    timeout: 30s
    # batches of 512 spans formed from the queue (the distribution has no batch processor)
    sending_queue: {{queue_size: 5000, batch: {{flush_timeout: 200ms, min_size: 512}}}}
service:
  telemetry: {{metrics: {{level: none}}, logs: {{level: warn}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [tail_sampling], exporters: [otlp]}}
"""


def collector_binary() -> Path | None:
    folder = os.environ.get("LLMTAP_BIN_DIR") or str(Path.home() / ".cache/llmtap/bin")
    path = Path(folder) / "otelcol-llmtap"
    return path if path.exists() else None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_collector(tmp: Path, sink_port: int) -> tuple[subprocess.Popen, int]:
    """The reference: an OpenTelemetry Collector (built by tools/build-otel-binaries.sh)
    doing comparable work: OTLP/gRPC in, tail sampling (keeps everything here, so every span
    reaches the sink as with the service), batch, OTLP/gRPC out."""
    import socket

    binary = collector_binary()
    if binary is None:
        raise RuntimeError("no otelcol-llmtap; run tools/build-otel-binaries.sh")
    port = _free_port()
    config = tmp / "collector.yaml"
    config.write_text(COLLECTOR_CONFIG.format(port=port, sink=sink_port))
    log = open(tmp / "collector.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(binary), "--config", str(config)], stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the Collector did not start listening")


def sink_count(channel: grpc.Channel) -> int:
    return int(channel.unary_unary(COUNT)(b"", timeout=5))


# the measurement -----------------------------------------------------------------------------


def send_all(port: int, requests: list[bytes], concurrency: int) -> int:
    """Send every request, retrying pushed-back ones; returns how many were pushed back."""
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", -1)]
    )
    call = channel.unary_unary(EXPORT)
    pushed_back = 0
    lock = threading.Lock()
    queue = list(reversed(requests))

    def worker() -> None:
        nonlocal pushed_back
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            while True:
                try:
                    call(body, timeout=60)
                    break
                except grpc.RpcError as error:
                    if error.code() not in (  # type: ignore[attr-defined]
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                    ):
                        raise
                    with lock:
                        pushed_back += 1
                    time.sleep(0.05)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    channel.close()
    return pushed_back


def measure(tmp: Path, size: int, kind: str, n_requests: int, concurrency: int) -> dict[str, Any]:
    traffic = "llmtap" if kind == "collector" else kind
    pool = [make_request(size, traffic, seed) for seed in range(8)]
    span_bytes = sum(len(p) for p in pool) / len(pool) / SPANS_PER_REQUEST
    sink, sink_port = start_sink(tmp)
    if kind == "collector":
        service, port = start_collector(tmp, sink_port)
    else:
        service, port = start_service(
            tmp, sink_port, stages=kind != "off", usage_metrics=kind != "llmtap_nousage"
        )
    sink_channel = grpc.insecure_channel(f"127.0.0.1:{sink_port}")
    try:
        warm = 8
        send_all(port, pool[:warm], concurrency)
        while sink_count(sink_channel) < warm * SPANS_PER_REQUEST:
            time.sleep(0.01)
        base = sink_count(sink_channel)
        rss_before, _ = memory_mb(service.pid)
        # fresh trace ids in every request: a tail sampler must buffer and decide each trace
        requests = [make_request(size, traffic, 1000 + i) for i in range(n_requests)]
        target = base + n_requests * SPANS_PER_REQUEST
        cpu0 = cpu_seconds(service.pid)
        t0 = time.perf_counter()
        pushed_back = send_all(port, requests, concurrency)
        while sink_count(sink_channel) < target:
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(service.pid) - cpu0
        rss, hwm = memory_mb(service.pid)
    finally:
        sink_channel.close()
        service.terminate()
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.kill()
        sink.kill()
        sink.wait()
    spans = n_requests * SPANS_PER_REQUEST
    return {
        "size": size,
        "kind": kind,
        "span_bytes": round(span_bytes),
        "spans": spans,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "spans_per_s": round(spans / wall),
        "spans_per_cpu_s": round(spans / cpu) if cpu > 0 else None,
        "cpu_us_per_span": round(cpu / spans * 1e6, 2),
        "mb_per_s": round(spans * span_bytes / wall / 1e6, 1),
        "rss_mb_start": round(rss_before, 1),
        "rss_mb_end": round(rss, 1),
        "rss_mb_peak": round(hwm, 1),
        "pushed_back": pushed_back,
    }


def measure_receive_only(tmp: Path, size: int, kind: str, n_requests: int) -> dict[str, Any]:
    """The service's CPU per span when its one destination's forwarder does nothing: what
    receiving (gRPC) and the pipeline cost, without the cost of sending."""
    pool = [make_request(size, kind, seed) for seed in range(8)]
    service, port = start_service(
        tmp, 0, stages=kind != "off", usage_metrics=kind != "llmtap_nousage", null=True
    )
    try:
        send_all(port, pool, 2)
        cpu0 = cpu_seconds(service.pid)
        send_all(port, [pool[i % len(pool)] for i in range(n_requests)], 2)
        time.sleep(0.3)  # the destination worker finishes
        cpu = cpu_seconds(service.pid) - cpu0
    finally:
        service.terminate()
        service.wait(30)
    spans = n_requests * SPANS_PER_REQUEST
    return {"size": size, "kind": kind, "cpu_us_per_span": round(cpu / spans * 1e6, 2)}


# where the time goes -------------------------------------------------------------------------


def profile(size: int, kind: str, rounds: int) -> dict[str, Any]:
    """The ingest path in this process with a destination that only encodes requests."""
    from llmtap.service.app import ServiceApp, ServiceConfig
    from llmtap.service.forward import Destination, SendResult
    from llmtap.service.spans import RawRequest, WireRequest, encode_requests

    class Null:
        kind = "null"
        target = "-"

        def send(self, request: bytes, spans: int) -> SendResult:
            return SendResult()

        def close(self) -> None:
            pass

    config: Any = None  # the stages' defaults
    if kind == "off":
        from llmtap.pipeline.cost import PricingConfig
        from llmtap.pipeline.redact import RedactionConfig

        off = {"pricing": PricingConfig(enabled=False), "redaction": RedactionConfig(enabled=False)}
        config = types.SimpleNamespace(**off)
    dest = Destination("null", Null(), capacity=1 << 30)
    os.environ["LLMTAP_REDACTION_KEY"] = SEAL_KEY
    service = ServiceConfig(usage_metrics=kind != "llmtap_nousage")
    app = ServiceApp(config, service, destinations=[dest])
    app._accepting = True
    pool = [make_request(size, kind, seed) for seed in range(4)]
    app.ingest(pool[0])
    dest.flush(30)
    n = SPANS_PER_REQUEST * rounds

    def per_span(fn: Any) -> float:
        t = time.process_time()
        for i in range(rounds):
            fn(pool[i % len(pool)])
        return (time.process_time() - t) / n * 1e6

    parse = per_span(lambda raw: (WireRequest.FromString(raw), RawRequest.FromString(raw)))
    process = per_span(app._process)
    batch = app._process(pool[0])
    encode = per_span(lambda raw: encode_requests(batch.items, 4 << 20))
    t = time.process_time()
    for i in range(rounds):
        app.ingest(pool[i % len(pool)])
    dest.flush(30)
    total = (time.process_time() - t) / n * 1e6
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(rounds):
        app.ingest(pool[i % len(pool)])
    dest.flush(30)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(12)
    dest.close(5)
    return {
        "size": size,
        "kind": kind,
        "parse_us": round(parse, 2),
        "per_span_loop_us": round(process - parse, 2),
        "encode_us": round(encode, 2),
        "ingest_and_encode_us": round(total, 2),
        "profile": _trim_profile(out.getvalue()),
    }


def _trim_profile(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    keep = []
    for line in lines[start:]:
        keep.append(line.replace(str(REPO) + "/", "").replace(sys.prefix + "/", ""))
    return "\n".join(keep)


# the report ----------------------------------------------------------------------------------

KIND_NAMES = {
    "llmtap": "from llmtap apps (stages skip)",
    "llmtap_nousage": "from llmtap apps, usage_metrics off",
    "foreign": "from other SDKs (cost + redaction)",
    "off": "stages off",
    "collector": "reference: OpenTelemetry Collector (tail_sampling, queue batches)",
}


def _reference(rows: list[dict]) -> list[str]:
    refs = {r["size"]: r for r in rows if r["kind"] == "collector"}
    if not refs:
        return [
            "Not in this run: no `otelcol-llmtap` (build it with tools/build-otel-binaries.sh)."
        ]
    lines = [
        "The same traffic (spans from llmtap apps) through `otelcol-llmtap` built from "
        "`collector-config/builder-config.yaml`: OTLP/gRPC in, `tail_sampling` (1 s decision "
        "wait; status, latency and probabilistic policies, keeping every trace so every span "
        "reaches the sink), batches of 512 from the sending queue, OTLP/gRPC out. Collector CPU "
        "divided by service CPU per span, same run:",
        "",
        "| service workload | span size | service CPU µs/span | Collector CPU µs/span "
        "| service / Collector |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ref = refs.get(r["size"])
        if r["kind"] == "collector" or ref is None:
            continue
        lines.append(
            f"| {KIND_NAMES[r['kind']]} | {r['size']:,} B | {r['cpu_us_per_span']} "
            f"| {ref['cpu_us_per_span']} | {r['cpu_us_per_span'] / ref['cpu_us_per_span']:.2f}× |"
        )
    return lines


def write_report(
    out_dir: Path, rows: list[dict], receive_only: list[dict], profiles: list[dict], args: Any
) -> Path:
    load = os.getloadavg()
    lines = [
        "# llmtap service throughput",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, CPython "
        f"{platform.python_version()}, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"load average before the run {load[0]:.2f}. Median of {rows[0]['runs']} interleaved "
        f"runs per workload. Requests of {SPANS_PER_REQUEST} spans "
        f"over OTLP/gRPC on loopback, {args.concurrency} concurrent calls; sender, service and "
        "sink are separate processes sharing the machine. `per core` = spans / service CPU "
        "seconds (user + system); `spans/s` = spans / wall time.",
        "",
        "Target: 50,000 spans/s per core.",
        "",
        "On a small shared machine the numbers move a lot between runs (other processes "
        "take CPU and cache; the ranges show it): compare rows of one run, and read the "
        "in-process table below for the relative cost of each part.",
        "",
        "| workload | span size | spans | spans/s per core | CPU µs/span (range) "
        "| spans/s (wall) | MB/s | RSS start → end (peak) MB | pushed back |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        low, high = r["cpu_us_range"]
        lines.append(
            f"| {KIND_NAMES[r['kind']]} | {r['span_bytes']:,} B | {r['spans']:,} "
            f"| {r['spans_per_cpu_s']:,} | {r['cpu_us_per_span']} ({low} to {high}) "
            f"| {r['spans_per_s']:,} "
            f"| {r['mb_per_s']} | {r['rss_mb_start']} → {r['rss_mb_end']} ({r['rss_mb_peak']}) "
            f"| {r['pushed_back']} |"
        )
    lines += [
        "",
        "`pushed back`: requests the service answered with UNAVAILABLE + RetryInfo because "
        "the destination queue was full (the sender retried them; nothing was lost).",
        "",
        "## Where the time goes",
        "",
        "Receiving and the pipeline without sending: the same service and sender, but the "
        "destination's forwarder does nothing (median of the runs, service CPU µs per span); "
        "the difference to the table above is the cost of forwarding (encoding, the gRPC "
        "client, the destination worker):",
        "",
        "| workload | span size | CPU µs/span, receive + pipeline | with forwarding (above) |",
        "| --- | ---: | ---: | ---: |",
        *[
            f"| {KIND_NAMES[r['kind']]} | {r['size']:,} B | {r['cpu_us_per_span']} | "
            + next(
                (
                    str(x["cpu_us_per_span"])
                    for x in rows
                    if x["kind"] == r["kind"] and x["size"] == r["size"]
                ),
                "",
            )
            + " |"
            for r in receive_only
        ],
        "",
        "### In process, one thread",
        "",
        "The ingest path with a destination whose forwarder does nothing, so gRPC is left "
        "out: `parse` = the two C-level parses of the request (validation + span bytes), "
        "`loop` = the per-span work (id checks, the idempotency check, decoding + stages + "
        "re-encoding where needed, usage metrics, framing), `encode` = joining queued spans "
        "into a request for a destination. µs per span, CPU time.",
        "",
        "| workload | span size | parse | loop | encode | ingest + encode |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in profiles:
        lines.append(
            f"| {KIND_NAMES[p['kind']]} | {p['size']:,} B | {p['parse_us']} "
            f"| {p['per_span_loop_us']} | {p['encode_us']} | {p['ingest_and_encode_us']} |"
        )
    for p in profiles:
        lines += [
            "",
            f"<details><summary>cProfile: {KIND_NAMES[p['kind']]}, {p['size']:,} B</summary>",
            "",
            "```",
            p["profile"],
            "```",
            "",
            "</details>",
        ]
    lines += [
        "",
        "## Reference: the OpenTelemetry Collector",
        "",
        *_reference(rows),
        "",
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "service_throughput.md"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", default="bench", choices=["bench", "sink", "service"])
    parser.add_argument("--port-file")
    parser.add_argument("--config")
    parser.add_argument("--no-usage-metrics", action="store_true")
    parser.add_argument("--null-destination", action="store_true")
    parser.add_argument("--requests", type=int, default=200, help="requests per fast workload")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="a wiring check, few requests")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument(
        "--workloads",
        default=(
            "llmtap:1024,llmtap:8192,llmtap_nousage:1024,llmtap_nousage:8192,"
            "foreign:1024,foreign:8192,off:1024,off:8192"
            + (",collector:1024,collector:8192" if collector_binary() else "")
        ),
        help="kind:size,... (kinds: llmtap, llmtap_nousage, foreign, off, collector)",
    )
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per workload; the median run is reported"
    )
    args = parser.parse_args()
    if args.role == "sink":
        run_sink(args.port_file)
        return
    if args.role == "service":
        run_service(args.config, not args.no_usage_metrics, args.null_destination)
        return
    fast = 10 if args.quick else args.requests
    slow = 4 if args.quick else max(8, args.requests // 10)
    workloads = [(k, int(n)) for k, n in (w.split(":") for w in args.workloads.split(","))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs: dict[tuple[str, int], list[dict]] = {w: [] for w in workloads}
        for _ in range(1 if args.quick else args.repeat):
            for kind, size in workloads:  # interleaved, so that load changes hit all alike
                n = slow if kind == "foreign" else fast
                row = measure(Path(tmp), size, kind, n, args.concurrency)
                print(json.dumps(row), flush=True)
                runs[(kind, size)].append(row)
        for w in workloads:
            ordered = sorted(runs[w], key=lambda r: r["cpu_us_per_span"])
            row = dict(ordered[len(ordered) // 2])
            row["cpu_us_range"] = (ordered[0]["cpu_us_per_span"], ordered[-1]["cpu_us_per_span"])
            row["runs"] = len(ordered)
            rows.append(row)
    receive_only = []
    if not args.no_profile:
        with tempfile.TemporaryDirectory() as tmp:
            for kind, size in workloads:
                if kind in ("foreign", "collector"):
                    continue
                runs_ = [
                    measure_receive_only(Path(tmp), size, kind, fast)
                    for _ in range(1 if args.quick else args.repeat)
                ]
                runs_.sort(key=lambda r: r["cpu_us_per_span"])
                row = runs_[len(runs_) // 2]
                print(json.dumps({"receive_only": row}), flush=True)
                receive_only.append(row)
    profiles = []
    for kind, size in [] if args.no_profile else [w for w in workloads if w[0] != "collector"]:
        rounds = 2 if kind == "foreign" else (4 if args.quick else 20)
        prof = profile(size, kind, rounds)
        print(json.dumps({k: v for k, v in prof.items() if k != "profile"}), flush=True)
        profiles.append(prof)
    path = write_report(Path(args.out), rows, receive_only, profiles, args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
