"""What the llmtap service loses, duplicates and holds when things go wrong.

- **kill -9 loops**: a real ``llmtap serve`` killed with SIGKILL at random moments under
  load and started again (tests/support/crash_loop.py; the backend is down for the first
  half): acknowledged spans lost and duplicated, with the durable queue (fsync off and on)
  and without it.
- **64 KiB flood**: 10,000 spans of 64 KiB sent with the backend down to a real
  ``llmtap serve``; its peak resident memory and how many requests it refused (retryable),
  with the default byte bound and with the bound lifted (the behaviour before byte bounds).
- **slow backend**: 1,000 spans to a backend that answers after 0.7 s with a 0.4 s
  timeout: duplicates the backend received and how many the service counted.
- **outage**: the backend's port is closed for ``--outage`` seconds; how long after it
  comes back delivery resumes.
- **write cost**: in-process ingest time of requests of 512 spans of ~1 KB with the
  stages off (receive and queue only, where the log's share is largest; the backend refuses
  everything, so nothing is sent meanwhile), queues in memory
  vs the write-ahead log (fsync off, on); the best of three rounds.

    python bench/service_durability.py [--quick] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.binaries import Processes, start_llmtap_serve  # noqa: E402
from support.crash_loop import run_crash_loop  # noqa: E402
from support.otlp_receiver import OtlpReceiver  # noqa: E402
from support.running_service import (  # noqa: E402
    EXPORT,
    grpc_call,
    grpc_export,
    running_service,
    simple_spans,
    span_request,
    write_config,
)


def crash_loops(total: int, kills: int, seeds: list[int]) -> list[dict[str, Any]]:
    rows = []
    for label, kw in (
        ("queue_dir, fsync off", {"durable": True}),
        ("queue_dir, fsync on", {"durable": True, "fsync": True}),
        ("in memory (no queue_dir)", {"durable": False}),
    ):
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                r = run_crash_loop(Path(tmp), total=total, kills=kills, seed=seed, **kw)
            rows.append({"mode": label, "seed": seed, **r.__dict__, "seconds": round(r.seconds, 1)})
            print(rows[-1], flush=True)
    return rows


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def flood(spans: int, lifted: bool) -> dict[str, Any]:
    content = "x" * 64 * 1024
    with (
        tempfile.TemporaryDirectory() as tmp,
        OtlpReceiver() as rx,
        Processes(Path(tmp) / "logs") as procs,
    ):
        rx.fail_next(1 << 30)
        service = {"queue_max_bytes": 1 << 40, "queue_size": 1 << 20} if lifted else {}
        config = write_config(Path(tmp) / "llmtap.yaml", [grpc_export(rx)], service=service)
        proc = start_llmtap_serve(procs, config)
        start_rss = _peak_rss_mb(proc.popen.pid)
        refused = accepted = 0
        with grpc.insecure_channel(proc.endpoint("grpc")) as channel:
            call = channel.unary_unary(EXPORT)
            for seed in range(1, spans // 16 + 1):
                body = span_request(simple_spans(16, seed=seed, content=content))
                try:
                    call(body.SerializeToString(), timeout=30)
                    accepted += 16
                except grpc.RpcError:
                    refused += 1
        peak = _peak_rss_mb(proc.popen.pid)
        proc.popen.kill()
    return {
        "byte bound": "lifted" if lifted else "default (128 MiB)",
        "spans sent": spans,
        "spans accepted": accepted,
        "requests refused (retryable)": refused,
        "RSS at start (MB)": round(start_rss, 1),
        "peak RSS (MB)": round(peak, 1),
    }


def slow_backend(tmp: Path) -> dict[str, Any]:
    with OtlpReceiver() as rx:
        rx.slow_down(0.7)
        export = {**grpc_export(rx), "timeout_s": 0.4, "batch_size": 100}
        started = time.monotonic()
        with running_service(tmp, [export]) as app:
            for seed in range(1, 11):
                grpc_call(app, span_request(simple_spans(100, seed=seed)).SerializeToString())
            while app.counters()["forwarded"]["otlp#0"] < 1000:
                time.sleep(0.1)
            resent = app.counters()["resent"]["otlp#0"]
        received = len(rx.spans())
    return {
        "spans": 1000,
        "received by the backend": received,
        "duplicates": received - 1000,
        "counted as resent": resent,
        "seconds": round(time.monotonic() - started, 1),
    }


def outage(tmp: Path, seconds: float) -> dict[str, Any]:
    rx = OtlpReceiver().start()
    port, export = rx.grpc_port, grpc_export(rx)
    rx.stop()
    with running_service(tmp, [export]) as app:
        grpc_call(app, span_request(simple_spans(100)).SerializeToString())
        time.sleep(seconds)
        with OtlpReceiver(grpc_port=port) as back:
            up = time.monotonic()
            back.wait_for_spans(100, timeout=60)
            resumed = time.monotonic() - up
    return {"outage (s)": seconds, "delivery resumed after (s)": round(resumed, 2)}


def write_cost(tmp: Path, requests: int) -> list[dict[str, Any]]:
    rows = []
    bodies = [
        span_request(simple_spans(512, seed=s, content="y" * 900)).SerializeToString()
        for s in range(1, requests + 1)
    ]
    for label, service in (
        ("in memory", {}),
        ("queue_dir, fsync off", {"queue_dir": ""}),
        ("queue_dir, fsync on", {"queue_dir": "", "queue_fsync": True}),
    ):
        took = min(_ingest_time(tmp, bodies, service) for _ in range(3))
        rows.append(
            {"queue": label, "µs per request of 512 spans": round(took / requests * 1e6, 1)}
        )
        print(rows[-1], flush=True)
    return rows


_STAGES_OFF = {"redaction": {"enabled": False}, "pricing": {"enabled": False}}


def _ingest_time(tmp: Path, bodies: list[bytes], service: dict[str, Any]) -> float:
    if "queue_dir" in service:  # a fresh log each round
        service = {**service, "queue_dir": tempfile.mkdtemp(dir=tmp)}
    with (
        OtlpReceiver() as rx,
        running_service(
            tmp, [grpc_export(rx)], config=_STAGES_OFF, queue_size=1 << 22, **service
        ) as app,
    ):
        rx.fail_next(1 << 30)  # nothing leaves: the in-process backend takes no CPU
        started = time.perf_counter()
        for body in bodies:
            app.ingest(body)
        return time.perf_counter() - started


def _table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    quick = args.quick
    result: dict[str, Any] = {"python": platform.python_version(), "date": time.strftime("%F")}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        result["write_cost"] = write_cost(t, 20 if quick else 200)
        result["slow_backend"] = [slow_backend(t)]
        result["outage"] = [outage(t, 3.0 if quick else args.outage)]
    result["flood"] = [flood(800 if quick else 10_000, lifted) for lifted in (False, True)]
    result["crash_loops"] = crash_loops(
        3000 if quick else 20_000, 3 if quick else 10, [1] if quick else [1, 2, 3]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "service_durability.json").write_text(json.dumps(result, indent=2))
    sections = [
        f"# Service durability ({result['date']}, Python {result['python']})\n",
        "## kill -9 loops\n", _table(result["crash_loops"]),
        "\n## 64 KiB flood, backend down\n", _table(result["flood"]),
        "\n## Backend slower than the timeout\n", _table(result["slow_backend"]),
        "\n## Outage\n", _table(result["outage"]),
        "\n## Write cost\n", _table(result["write_cost"]),
    ]  # fmt: skip
    (args.out / "service_durability.md").write_text("\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
