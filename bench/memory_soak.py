#!/usr/bin/env python
"""Memory soak: a long-running asyncio app making many OpenAI calls, with and without llmtap.

The app: an ``AsyncOpenAI`` client over an in-process transport (pre-rendered replies), N worker
tasks sharing one call counter. Every 10 calls: 7 non-streaming, 2 streams read to the end, and
1 stream abandoned after a few chunks with ``break`` (its span must then be ended by GC).
Telemetry: ``BatchSpanProcessor`` + an exporter that drops spans, ``InMemoryMetricReader``.

After a warm-up, every ``--sample-every`` calls the process flushes the span processor, collects
garbage and samples RSS, ``sys.getallocatedblocks()``, the gc object count and, with
``--tracemalloc`` (started after the warm-up; ~4x slower calls), the traced size. Flat = growth
from the sample at ``--flat-from`` calls to the last one below ``--max-growth-mb`` (traced size,
else RSS) and fewer than ``--max-objects-growth`` new gc-tracked objects.

    bench/.venv/bin/python bench/memory_soak.py                  # both modes side by side (6-11 min)
    bench/.venv/bin/python bench/memory_soak.py --calls 20000    # shorter
    bench/.venv/bin/python bench/memory_soak.py --tracemalloc --calls 15000 --warmup 5000 \
        --sample-every 2000 --flat-from 7000
    bench/.venv/bin/python bench/memory_soak.py --mode llmtap    # one mode, in this process
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _span_processor_base() -> type:
    from opentelemetry.sdk.trace import SpanProcessor

    return SpanProcessor


class EndedSpans(_span_processor_base()):  # type: ignore[misc]
    """A span processor that counts ended spans, by how their stream ended."""

    def __init__(self) -> None:
        self.ended = 0
        self.by_end: dict[str, int] = {}

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        self.ended += 1
        end = (span.attributes or {}).get("llmtap.stream.end", "call")
        self.by_end[end] = self.by_end.get(end, 0) + 1

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    from _fixtures import MODEL, STREAM_OPTIONS, Rendered, async_client, mock_transport
    from _sink import Sink

    sink = Sink(batch=True)
    counter = EndedSpans()
    sink.tracer_provider.add_span_processor(counter)
    instrumentor = None
    if args.mode == "llmtap":
        from llmtap.config import CaptureMode, Settings
        from llmtap.instrumentation.openai import OpenAIInstrumentor

        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument(
            **sink.providers(), settings=Settings(capture=CaptureMode.NO_CONTENT)
        )

    # a short request: the SDK's request building dominates each call, and this is about memory
    request = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 64,
    }
    rendered = Rendered(args.chunks)
    client = async_client(mock_transport(rendered, stream=False))
    sclient = async_client(mock_transport(rendered, stream=True))
    kinds = {"call": 0, "stream": 0, "abandoned": 0}
    samples: list[dict[str, Any]] = []
    total = args.calls
    next_index = 0
    started = time.monotonic()
    tracing_from = None

    async def one_call(i: int) -> None:
        slot = i % 10
        if slot < 7:
            await client.chat.completions.create(**request)
            kinds["call"] += 1
        elif slot < 9:
            stream = await sclient.chat.completions.create(
                **request, stream=True, stream_options=STREAM_OPTIONS
            )
            async for _ in stream:
                pass
            kinds["stream"] += 1
        else:
            await abandon()
            kinds["abandoned"] += 1

    async def abandon() -> None:
        stream = await sclient.chat.completions.create(
            **request, stream=True, stream_options=STREAM_OPTIONS
        )
        seen = 0
        async for _ in stream:
            seen += 1
            if seen >= args.abandon_after:
                break  # the app walks away: no close(), no context manager

    def sample(done: int) -> None:
        # export what the batch processor still queues, so the sample sees retained memory only
        sink.tracer_provider.force_flush()
        gc.collect()
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
        samples.append(
            {
                "calls": done,
                "traced_bytes": traced,
                "rss_bytes": rss_bytes(),
                "allocated_blocks": sys.getallocatedblocks(),
                "gc_objects": len(gc.get_objects()),
                "spans_ended": counter.ended,
                "elapsed_s": round(time.monotonic() - started, 1),
            }
        )
        print(
            f"[soak {args.mode}] {done:>7,} calls  "
            + (f"traced {traced / 1e6:7.3f} MB  " if traced is not None else "")
            + f"rss {rss_bytes() / 1e6:7.1f} MB  blocks {samples[-1]['allocated_blocks']:,}  "
            f"objects {samples[-1]['gc_objects']:,}  "
            f"spans ended {counter.ended:,}  {time.monotonic() - started:5.0f}s",
            file=sys.stderr,
            flush=True,
        )

    async def worker() -> None:
        nonlocal next_index, tracing_from
        while next_index < total:
            i = next_index
            next_index += 1
            await one_call(i)
            done = i + 1
            if done == args.warmup:
                gc.collect()
                if args.tracemalloc:
                    tracemalloc.start()
                    tracing_from = done
                sample(done)
            elif done > args.warmup and done % args.sample_every == 0:
                sample(done)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    gc.collect()
    if samples[-1]["calls"] != total:
        sample(total)
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    sink.tracer_provider.force_flush()
    exported = sink.spans.count
    if instrumentor is not None:
        instrumentor.uninstrument()
    return {
        "mode": args.mode,
        "calls": total,
        "kinds": kinds,
        "concurrency": args.concurrency,
        "chunks_per_stream": args.chunks,
        "abandon_after": args.abandon_after,
        "warmup": args.warmup,
        "tracemalloc_from": tracing_from,
        "samples": samples,
        "spans_ended": counter.ended,
        "spans_ended_by_stream_end": counter.by_end,
        "spans_exported": exported,
        "duration_s": round(time.monotonic() - started, 1),
    }


def slope_per_10k(samples: list[dict[str, Any]], key: str, start: int) -> float:
    pts = [(s["calls"], s[key]) for s in samples if s["calls"] >= start]
    if len(pts) < 2:
        return float("nan")
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    return sxy / sxx * 10_000 if sxx else float("nan")


def analyse(
    result: dict[str, Any], flat_from: int, max_growth_mb: float, max_objects_growth: int
) -> dict[str, Any]:
    samples = result["samples"]
    base = next((s for s in samples if s["calls"] >= flat_from), samples[0])
    last = samples[-1]
    traced = base["traced_bytes"] is not None
    growth_traced = last["traced_bytes"] - base["traced_bytes"] if traced else None
    growth_rss = last["rss_bytes"] - base["rss_bytes"]
    growth_objects = last["gc_objects"] - base["gc_objects"]
    bytes_growth = growth_traced if traced else growth_rss
    expected = result["calls"] if result["mode"] == "llmtap" else 0
    return {
        "from_calls": base["calls"],
        "to_calls": last["calls"],
        "traced_growth_bytes": growth_traced,
        "rss_growth_bytes": growth_rss,
        "traced_slope_bytes_per_10k": slope_per_10k(samples, "traced_bytes", base["calls"])
        if traced
        else None,
        "rss_slope_bytes_per_10k": slope_per_10k(samples, "rss_bytes", base["calls"]),
        "allocated_blocks_growth": last["allocated_blocks"] - base["allocated_blocks"],
        "allocated_blocks_slope_per_10k": slope_per_10k(samples, "allocated_blocks", base["calls"]),
        "gc_objects_growth": growth_objects,
        "gc_objects_slope_per_10k": slope_per_10k(samples, "gc_objects", base["calls"]),
        "flat_measure": "tracemalloc" if traced else "RSS",
        "flat": bytes_growth < max_growth_mb * 1e6 and growth_objects < max_objects_growth,
        "spans_ok": result["spans_ended"] == expected,
        "expected_spans": expected,
    }


def _mb(x: float | None, signed: bool = True) -> str:
    return "–" if x is None else (f"{x / 1e6:+.3f}" if signed else f"{x / 1e6:.3f}")


def _per10k(x: float | None, scale: float = 1e3, nd: int = 1) -> str:
    return "–" if x is None or x != x else f"{x / scale:+,.{nd}f}"


def render(results: list[dict[str, Any]], args: argparse.Namespace, env: dict[str, Any]) -> str:
    lines: list[str] = []
    w = lines.append
    traced = args.tracemalloc
    w(
        "# Memory soak: AsyncOpenAI, in-process transport, BatchSpanProcessor + dropping exporter"
        + (" (tracemalloc on)" if traced else "")
    )
    w("")
    w(
        f"{env['date']} · {env['cpu']} · {env['cores']} cores · {env['python']} · llmtap {env['llmtap']} "
        f"({env.get('llmtap_git', '?')}) · openai {env['openai']} · opentelemetry-sdk {env['opentelemetry-sdk']}"
    )
    w("")
    r0 = results[0]
    w(
        f"{args.calls:,} calls per mode by {r0['concurrency']} asyncio workers: 70% non-streaming, 20% streams of "
        f"{r0['chunks_per_stream']} chunks read to the end, 10% streams abandoned with `break` after "
        f"{r0['abandon_after']} chunks (no `close()`, no context manager). The two modes run as separate "
        f"processes side by side. After {args.warmup:,} warm-up calls"
        + (", `tracemalloc` is started and" if traced else ",")
        + f" every {args.sample_every:,} calls the process runs `gc.collect()` and samples "
        + ("the traced size, " if traced else "")
        + "RSS, `sys.getallocatedblocks()` and the number of gc-tracked objects. "
        + f"**Flat** = {'traced' if traced else 'RSS'} growth from {args.flat_from:,} calls to the end "
        f"< {args.max_growth_mb:g} MB and gc-tracked objects grew by < {args.max_objects_growth:,}."
    )
    w("")
    w(
        "| mode | calls | run s | traced growth MB | traced slope KB/10k calls | RSS growth MB | RSS slope KB/10k | "
        "gc objects growth (per 10k) | allocated blocks growth (per 10k) | flat | spans ended (expected) | "
        "abandoned streams' spans | spans exported |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in results:
        a = r["analysis"]
        w(
            f"| {r['mode']} | {r['calls']:,} | {r['duration_s']:.0f} | {_mb(a['traced_growth_bytes'])} | "
            f"{_per10k(a['traced_slope_bytes_per_10k'])} | {_mb(a['rss_growth_bytes'])} | "
            f"{_per10k(a['rss_slope_bytes_per_10k'])} | {a['gc_objects_growth']:+,} "
            f"({_per10k(a['gc_objects_slope_per_10k'], 1, 0)}) | {a['allocated_blocks_growth']:+,} "
            f"({_per10k(a['allocated_blocks_slope_per_10k'], 1, 0)}) | {'yes ✔' if a['flat'] else 'NO ✘'} | "
            f"{r['spans_ended']:,} ({a['expected_spans']:,}) {'✔' if a['spans_ok'] else '✘'} | "
            f"{r['spans_ended_by_stream_end'].get('abandoned', 0):,} | {r['spans_exported']:,} |"
        )
    w("")
    w("Samples (k calls: " + ("traced MB / " if traced else "") + "RSS MB / gc objects):")
    w("")
    for r in results:
        pts = ", ".join(
            f"{s['calls'] / 1000:g}k: "
            + (f"{s['traced_bytes'] / 1e6:.2f} / " if s["traced_bytes"] is not None else "")
            + f"{s['rss_bytes'] / 1e6:.1f} / {s['gc_objects']:,}"
            for s in r["samples"]
        )
        w(f"- {r['mode']}: {pts}")
        if r["spans_ended_by_stream_end"]:
            w(f"  - spans by how they ended: {r['spans_ended_by_stream_end']}")
    w("")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    from instrumentation_overhead import environment as bench_env

    env = bench_env()
    for name in ("llmtap", "openai", "opentelemetry-sdk"):
        env[name] = md.version(name)
    return env


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--warmup", type=int, default=5_000)
    p.add_argument("--sample-every", type=int, default=10_000)
    p.add_argument("--flat-from", type=int, default=20_000)
    p.add_argument("--max-growth-mb", type=float, default=2.0)
    p.add_argument("--max-objects-growth", type=int, default=2000)
    p.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace allocations after the warm-up (~4x slower)",
    )
    p.add_argument(
        "--name", default=None, help="output file stem (default memory_soak[_tracemalloc])"
    )
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--chunks", type=int, default=10, help="chunks per stream")
    p.add_argument("--abandon-after", type=int, default=3)
    p.add_argument("--mode", choices=("both", "llmtap", "none"), default="both")
    p.add_argument(
        "--sequential", action="store_true", help="run the two modes one after the other"
    )
    p.add_argument("--json-out", help="(internal) write one mode's raw result here")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args()

    if args.mode != "both":
        result = asyncio.run(soak(args))
        result["analysis"] = analyse(
            result, args.flat_from, args.max_growth_mb, args.max_objects_growth
        )
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result))
        else:
            print(render([result], args, environment()))
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or ("memory_soak_tracemalloc" if args.tracemalloc else "memory_soak")
    passthrough = [
        f"--calls={args.calls}",
        f"--warmup={args.warmup}",
        f"--sample-every={args.sample_every}",
        f"--flat-from={args.flat_from}",
        f"--max-growth-mb={args.max_growth_mb}",
        f"--max-objects-growth={args.max_objects_growth}",
        *(["--tracemalloc"] if args.tracemalloc else []),
        f"--concurrency={args.concurrency}",
        f"--chunks={args.chunks}",
        f"--abandon-after={args.abandon_after}",
    ]
    procs = []
    results = []
    for mode in ("llmtap", "none"):
        tmp = out / f".{name}_{mode}.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            f"--mode={mode}",
            f"--json-out={tmp}",
            *passthrough,
        ]
        proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONHASHSEED": "0"})
        if args.sequential:
            proc.wait()
        procs.append((proc, tmp))
    for proc, tmp in procs:
        if proc.wait() != 0:
            raise SystemExit(f"soak subprocess failed: {proc.args}")
        results.append(json.loads(tmp.read_text()))
        tmp.unlink()
    env = environment()
    text = render(results, args, env)
    print(text)
    (out / f"{name}.md").write_text(text + "\n")
    (out / f"{name}.json").write_text(
        json.dumps({"environment": env, "results": results}, indent=1) + "\n"
    )
    print(f"[soak] wrote {out / (name + '.md')} and .json", file=sys.stderr)


if __name__ == "__main__":
    main()
