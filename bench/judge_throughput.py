"""Evaluations per second of the service's judge against an LLM judge endpoint with a fixed
latency (default 200 ms), and its memory while it runs.

Two processes on loopback:

- **judge endpoint** (``bench/_slow_judge.py``): OpenAI-compatible, answers every request
  with a passing verdict after ``--latency`` seconds, with any number of requests in flight;
- **this process**: ``llmtap.service.judging.Judging`` as ``llmtap serve`` runs it (its own
  thread and event loop, the real ``faithfulness`` LLM judge over HTTP), fed traces of a
  retrieval span and a chat span with content by a feeder thread through ``on_spans``.

Per concurrency level the feeder offers traces at 1.25x the ideal rate (concurrency divided
by latency) for ``--seconds``; what the judge queue cannot take is skipped and counted (the
bounded queue at work). Throughput is verdicts per second over the steady window (after
the first quarter of the run). Target: at least 90 % of the ideal rate. Memory is the
process RSS sampled every second; "drift" compares the mean RSS of the last quarter with
that of the second quarter. Decided traces are retained for late spans for 5 s here (300 s
by default, bounded by ``judge.max_bytes``), so that the retained set is at its steady
size before the second quarter.

    python bench/judge_throughput.py [--latency 0.2] [--concurrency 16 64 128] [--seconds 40]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from llmtap.evals.judge_config import JudgeConfig
from llmtap.pipeline.span import SpanData
from llmtap.service.judging import Judging

HERE = Path(__file__).resolve().parent
#: decided traces are kept this long as context for late spans (300 s by default); short
#: here so that the retained set reaches its steady size early in each level
LATE_WINDOW_S = 5.0
QUESTION = "What is the refund window for annual plans bought through the web store?"
ANSWER = "Annual plans bought on the web store can be refunded within 30 days of purchase."
DOCUMENT = (
    "Refund policy. Monthly plans are not refundable. Annual plans bought through the web "
    "store can be refunded in full within 30 days of purchase; after that, pro rata. "
) * 3


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def _trace(trace_id: int, now_ns: int) -> list[SpanData]:
    root = random.getrandbits(64) | 1
    retrieval = SpanData(
        name="retrieval kb",
        attributes={
            "gen_ai.operation.name": "retrieval",
            "gen_ai.retrieval.documents": json.dumps([{"id": "policy", "content": DOCUMENT}]),
        },
        trace_id=trace_id,
        span_id=random.getrandbits(64) | 1,
        parent_span_id=root,
        start_ns=now_ns - 3_000_000,
        end_ns=now_ns - 2_000_000,
    )
    chat = SpanData(
        name="chat gpt-4o-mini",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "llmtap.feature": "support",
            "gen_ai.input.messages": _messages("user", QUESTION),
            "gen_ai.output.messages": _messages("assistant", ANSWER),
        },
        trace_id=trace_id,
        span_id=random.getrandbits(64) | 1,
        parent_span_id=root,
        start_ns=now_ns - 1_000_000,
        end_ns=now_ns,
    )
    return [retrieval, chat]


class _Results:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.failed = 0
        self._lock = threading.Lock()

    def emit(self, spans: list[SpanData]) -> None:
        now = time.monotonic()
        with self._lock:
            for span in spans:
                if "error.type" in span.attributes:
                    self.failed += 1
                else:
                    self.times.append(now)


def _feed(judging: Judging, rate: float, seconds: float, stop: threading.Event) -> int:
    sent, start = 0, time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate) + 1
        while sent < due:
            judging.on_spans(_trace(random.getrandbits(128) | 1, time.time_ns()))
            sent += 1
        time.sleep(0.005)
    return sent


def run_level(base_url: str, concurrency: int, latency: float, seconds: float) -> dict[str, Any]:
    ideal = concurrency / latency
    config = JudgeConfig(
        model={"name": "judge-bench", "base_url": base_url, "max_retries": 0},
        rules=[{"evaluator": "faithfulness"}],
        concurrency=concurrency,
        queue_size=concurrency * 2,
        trace_idle_s=0.05,
        trace_max_wait_s=0.5,
        late_window_s=LATE_WINDOW_S,
    )
    results = _Results()
    judging = Judging(config, emit=results.emit, tick_s=0.02)
    judging.start()
    stop = threading.Event()
    rss: list[tuple[float, float]] = []

    def sample() -> None:
        while not stop.wait(1.0):
            rss.append((time.monotonic(), _rss_mb()))

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.monotonic()
    sampler.start()
    sent = _feed(judging, ideal * 1.25, seconds, stop)
    end = time.monotonic()
    stop.set()
    judging.stop(timeout=10, flush=False)
    steady_from = start + seconds / 4
    steady = [t for t in results.times if steady_from <= t <= end]
    rate = len(steady) / (end - steady_from)
    quarters = [[m for t, m in rss if start + q * seconds / 4 <= t < start + (q + 1) * seconds / 4]
                for q in range(4)]  # fmt: skip
    means = [sum(q) / len(q) if q else 0.0 for q in quarters]
    return {
        "concurrency": concurrency,
        "latency_s": latency,
        "ideal_per_s": round(ideal, 1),
        "offered_traces": sent,
        "verdicts": len(results.times),
        "failed": results.failed,
        "verdicts_per_s": round(rate, 1),
        "of_ideal": round(rate / ideal, 3),
        "rss_mb_q2": round(means[1], 1),
        "rss_mb_q4": round(means[3], 1),
        "rss_drift_mb": round(means[3] - means[1], 2),
        "rss_max_mb": round(max((m for _, m in rss), default=0.0), 1),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| concurrency | ideal/s | verdicts/s | of ideal | failed | RSS q2 → q4 MB | drift MB |\n"
        "|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    return head + "".join(
        f"| {r['concurrency']} | {r['ideal_per_s']} | {r['verdicts_per_s']} | "
        f"{r['of_ideal'] * 100:.1f} % | {r['failed']} | {r['rss_mb_q2']} → {r['rss_mb_q4']} | "
        f"{r['rss_drift_mb']:+.2f} |\n"
        for r in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    endpoint = subprocess.Popen(
        [sys.executable, str(HERE / "_slow_judge.py"), "--latency", str(args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(endpoint.stdout.readline())  # type: ignore[union-attr]
        base_url = f"http://127.0.0.1:{port}/v1"
        rows = [run_level(base_url, c, args.latency, args.seconds) for c in args.concurrency]
    finally:
        endpoint.kill()
    text = (
        f"judge latency {args.latency * 1000:.0f} ms, {args.seconds:.0f} s per level, "
        f"{platform.python_version()} on {platform.machine()}\n\n{_table(rows)}"
    )
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "judge_throughput.json").write_text(json.dumps(rows, indent=2) + "\n")
        (args.out / "judge_throughput.md").write_text(text)


if __name__ == "__main__":
    main()
