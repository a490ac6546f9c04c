#!/usr/bin/env python
"""Added cost of OpenAI chat-completion instrumentation: llmtap vs a hand-written floor vs peers.

One process measures every row. Rows are switched on (instrument) and off (uninstrument)
around each measured block, and the blocks of all rows are interleaved round by round in a
shuffled order, so slow drift of the machine (other processes, frequency) hits every row alike.

    bench/.venv/bin/python bench/instrumentation_overhead.py            # full run (~35 min)
    bench/.venv/bin/python bench/instrumentation_overhead.py --quick    # smoke run (~2 min)
    bench/.venv/bin/python bench/instrumentation_overhead.py --profile llmtap

Writes a Markdown table to stdout and bench/results/instrumentation_overhead.{md,json}.
See bench/README.md for the method and the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata as md
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _fixtures import REQUEST, STREAM_OPTIONS, Rendered, mock_transport, sync_client  # noqa: E402
from _rows import Floor, PatchGuard, Row, all_rows  # noqa: E402
from _sink import Sink  # noqa: E402

PACKAGES = (
    "llmtap",
    "openai",
    "httpx2",
    "wrapt",
    "pydantic",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "opentelemetry-semantic-conventions",
    "opentelemetry-instrumentation-openai",
    "opentelemetry-semantic-conventions-ai",
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-instrumentation-genai-openai",
    "opentelemetry-util-genai",
    "openinference-instrumentation-openai",
    "openinference-instrumentation",
    "openinference-semantic-conventions",
)


# ---------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state() -> str:
    import subprocess

    try:
        head = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}" if head else "unknown"


def environment() -> dict[str, Any]:
    return {
        "llmtap_git": git_state(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "loadavg_start": loadavg(),
        "packages": versions(),
    }


# ---------------------------------------------------------------------------------------------
# calls
# ---------------------------------------------------------------------------------------------


class Workload:
    """The application code being measured: one chat call, or one fully consumed stream."""

    def __init__(self, chunks: int) -> None:
        self.rendered = Rendered(chunks)
        self.chunks = chunks
        self.client = sync_client(mock_transport(self.rendered, stream=False))
        self.stream_client = sync_client(mock_transport(self.rendered, stream=True))

    def calls(self, row: Row, floor: Floor) -> tuple[Callable[[], Any], Callable[[], int]]:
        client, sclient = self.client, self.stream_client
        if row.floor:

            def call() -> Any:
                return floor.create(client, **REQUEST)

            def stream() -> int:
                n = 0
                for _ in floor.stream(
                    sclient, **REQUEST, stream=True, stream_options=STREAM_OPTIONS
                ):
                    n += 1
                return n

        else:

            def call() -> Any:
                return client.chat.completions.create(**REQUEST)

            def stream() -> int:
                n = 0
                for _ in sclient.chat.completions.create(
                    **REQUEST, stream=True, stream_options=STREAM_OPTIONS
                ):
                    n += 1
                return n

        return call, stream

    def abandon(self, row: Row, floor: Floor) -> None:
        """Read 3 chunks of a stream, then walk away from it."""
        if row.floor:
            it = iter(
                floor.stream(
                    self.stream_client, **REQUEST, stream=True, stream_options=STREAM_OPTIONS
                )
            )
        else:
            it = iter(
                self.stream_client.chat.completions.create(
                    **REQUEST, stream=True, stream_options=STREAM_OPTIONS
                )
            )
        for _ in range(3):
            next(it)
        del it


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """µs per call, wall clock (perf_counter_ns) and this thread's CPU time (thread_time_ns)."""
    gc.collect()
    w0 = time.perf_counter_ns()
    c0 = time.thread_time_ns()
    for _ in range(n):
        fn()
    c1 = time.thread_time_ns()
    w1 = time.perf_counter_ns()
    return (w1 - w0) / n / 1000, (c1 - c0) / n / 1000


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------


def bootstrap_ci(values: list[float], rng: random.Random, n: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of the median."""
    if len(values) < 3:
        return (float("nan"), float("nan"))
    k = len(values)
    meds = sorted(statistics.median(rng.choices(values, k=k)) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def summarize(
    blocks: dict[str, list[list[float]]],
    baseline: list[list[float]],
    rng: random.Random,
    repeats: int,
) -> dict[str, Any]:
    """Per row: median µs per unit, and the median of (row block − mean of its two baseline neighbours).

    A row block is ``[wall, cpu, repeat, base_wall, base_cpu]``; a baseline block ``[wall, cpu, repeat]``.
    """
    out: dict[str, Any] = {}
    for key, values in {"baseline": baseline, **blocks}.items():
        for i, clock in enumerate(("wall", "cpu")):
            per = [v[i] for v in values]
            stats: dict[str, Any] = {
                "median": statistics.median(per),
                "min": min(per),
                "max": max(per),
            }
            if key != "baseline":
                diffs = [v[i] - v[3 + i] for v in values]
                stats["added"] = statistics.median(diffs)
                stats["added_ci"] = list(bootstrap_ci(diffs, rng))
                stats["added_by_repeat"] = [
                    statistics.median(d for d, v in zip(diffs, values, strict=True) if v[2] == r)
                    for r in range(repeats)
                    if any(v[2] == r for v in values)
                ]
            out.setdefault(key, {})[clock] = stats
        out[key]["blocks"] = len(values)
    return out


# ---------------------------------------------------------------------------------------------
# inspection: what each row records
# ---------------------------------------------------------------------------------------------


def inspect_row(
    row: Row, sink: Sink, work: Workload, floor: Floor, guard: PatchGuard
) -> dict[str, Any]:
    call, stream = work.calls(row, floor)
    info: dict[str, Any] = {}
    row.on(sink.providers())
    try:
        for kind, fn in (("call", call), ("stream", stream)):
            sink.spans.keep, sink.spans.kept = True, []
            logs0, metrics0 = sink.logs.count, sink.metric_totals()
            result = fn()
            sink.flush()
            spans = list(sink.spans.kept)
            metrics1 = sink.metric_totals()
            points = {
                f"{k[1]}": v - metrics0.get(k, 0)
                for k, v in metrics1.items()
                if v - metrics0.get(k, 0)
            }
            entry: dict[str, Any] = {
                "spans": len(spans),
                "logs": sink.logs.count - logs0,
                "metric_points": points,
                "metric_points_total": sum(points.values()),
            }
            if kind == "stream":
                entry["chunks_seen_by_app"] = result
            if spans:
                s = spans[-1]
                entry.update(
                    name=s.name,
                    kind=s.kind.name,
                    attributes=len(s.attributes or {}),
                    attribute_keys=sorted((s.attributes or {}).keys()),
                    events=len(s.events),
                    event_names=sorted({e.name for e in s.events}),
                    attribute_chars=sum(len(str(v)) for v in (s.attributes or {}).values()),
                )
            info[kind] = entry
        sink.spans.keep = False
        before = sink.spans.count
        work.abandon(row, floor)
        gc.collect()
        sink.flush()
        info["abandoned_stream_spans_ended"] = sink.spans.count - before
    except Exception as exc:  # a peer that breaks on the call itself
        info["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        sink.spans.keep, sink.spans.kept = False, []
        row.off()
    info["uninstrument_leftovers"] = guard.leftovers(restore=True)
    return info


# ---------------------------------------------------------------------------------------------
# main measurement
# ---------------------------------------------------------------------------------------------


ALWAYS_CHECKED = {
    "openai.resources.chat.completions.completions.Completions.create",
    "openai.resources.chat.completions.completions.AsyncCompletions.create",
    "openai._client.OpenAI.request",
    "openai._client.AsyncOpenAI.request",
}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    env = environment()
    sink = Sink(batch=False)
    work = Workload(args.chunks)
    floor = Floor(sink.tracer_provider, sink.meter_provider)
    rows = all_rows()
    if args.rows:
        wanted = {"baseline", *args.rows.split(",")}
        rows = [r for r in rows if r.key in wanted]
    active: list[Row] = []
    failed: list[Row] = []
    for row in rows:
        (active if row.load() else failed).append(row)
    for row in failed:
        log(f"{row.key}: {row.error}")
    guard = PatchGuard()  # pristine SDK, after every peer module was imported
    providers = sink.providers()
    baseline = next(r for r in active if r.key == "baseline")
    rng = random.Random(args.seed)
    per_row = {"call": args.calls * args.repeats, "stream": args.stream_calls * args.repeats}
    block = {"call": args.block, "stream": args.stream_block}
    rounds = {m: max(args.repeats, per_row[m] // block[m]) for m in per_row}
    edge_block = {"call": args.edge_block, "stream": max(1, args.edge_block // 10)}

    # 1. warm the SDK, then freeze the start-up heap so every gc.collect() stays cheap.
    call, stream = work.calls(baseline, floor)
    for _ in range(args.warmup):
        call()
    for _ in range(max(3, args.warmup // 10)):
        stream()
    gc.collect()
    gc.freeze()

    # 2. baseline before any instrumentor was ever switched on
    edge: dict[str, dict[str, list[tuple[float, float]]]] = {
        m: {"start": [], "end": []} for m in per_row
    }
    for mode in per_row:
        fn = call if mode == "call" else stream
        for _ in range(args.edge_blocks):
            edge[mode]["start"].append(timed(fn, edge_block[mode]))

    # 3. what each row records, and whether uninstrument restores the SDK
    inspection = {}
    for row in active:
        inspection[row.key] = inspect_row(row, sink, work, floor, guard)
        log(f"inspected {row.key}: {_brief(inspection[row.key])}")
    for row in [r for r in active if "error" in inspection[r.key]]:
        row.error = f"instrumented call failed: {inspection[row.key]['error']}"
        active.remove(row)
        failed.append(row)
    hot = set(ALWAYS_CHECKED)
    for info in inspection.values():
        hot.update(info.get("uninstrument_leftovers", []))

    # 4. warm every row up
    for row in active:
        call, stream = work.calls(row, floor)
        row.on(providers)
        for _ in range(args.warmup // 4):
            call()
        for _ in range(max(2, args.warmup // 40)):
            stream()
        row.off()
        guard.leftovers(restore=True)
    gc.collect()

    # 5. rounds: B r1 B r2 B ... rN B, rows shuffled each round; each row block is paired with
    #    the mean of the baseline blocks right before and after it.
    measured = [r for r in active if r.key != "baseline"]
    base_call, base_stream = work.calls(baseline, floor)
    fns = {r.key: work.calls(r, floor) for r in measured}
    blocks: dict[str, dict[str, list[list[float]]]] = {
        m: {r.key: [] for r in measured} for m in per_row
    }
    base_blocks: dict[str, list[list[float]]] = {m: [] for m in per_row}
    spans: dict[str, dict[str, int]] = {m: {r.key: 0 for r in active} for m in per_row}
    leftovers: dict[str, set[str]] = {r.key: set() for r in active}
    started = time.monotonic()
    for mode in per_row:
        n = block[mode]
        base_fn = base_call if mode == "call" else base_stream
        for rnd in range(rounds[mode]):
            repeat = rnd * args.repeats // rounds[mode]
            full_check = rnd % 25 == 0 or rnd == rounds[mode] - 1
            order = measured[:]
            rng.shuffle(order)
            before = sink.spans.count
            prev = timed(base_fn, n)
            spans[mode]["baseline"] += sink.spans.count - before
            base_blocks[mode].append([*prev, repeat])
            for row in order:
                fn = fns[row.key][0 if mode == "call" else 1]
                row.on(providers)
                fn()
                before = sink.spans.count
                w, c = timed(fn, n)
                spans[mode][row.key] += sink.spans.count - before
                row.off()
                leftovers[row.key].update(
                    guard.leftovers(restore=True, only=None if full_check else hot)
                )
                before = sink.spans.count
                nxt = timed(base_fn, n)
                spans[mode]["baseline"] += sink.spans.count - before
                base_blocks[mode].append([*nxt, repeat])
                blocks[mode][row.key].append(
                    [w, c, repeat, (prev[0] + nxt[0]) / 2, (prev[1] + nxt[1]) / 2]
                )
                prev = nxt
            if rnd % max(1, rounds[mode] // 10) == 0 or rnd == rounds[mode] - 1:
                base = statistics.median(v[0] for v in base_blocks[mode])
                log(
                    f"{mode}: round {rnd + 1}/{rounds[mode]} ({time.monotonic() - started:.0f}s), "
                    f"baseline median {base:.1f} µs, load {loadavg()}"
                )

    # 6. baseline again, after every row was switched on and off many times
    call, stream = work.calls(baseline, floor)
    for mode in per_row:
        fn = call if mode == "call" else stream
        for _ in range(args.edge_blocks):
            edge[mode]["end"].append(timed(fn, edge_block[mode]))
    final_leftovers = guard.leftovers(restore=False)
    env["loadavg_end"] = loadavg()
    env["duration_s"] = round(time.monotonic() - started)

    # 7. per-request cost of the transports (is the pre-rendered MockTransport cheap enough?)
    transport = transport_costs(args)

    summary = {m: summarize(blocks[m], base_blocks[m], rng, args.repeats) for m in per_row}
    edge_summary = {}
    for mode in per_row:
        s, e = edge[mode]["start"], edge[mode]["end"]
        edge_summary[mode] = {
            clock: {
                "start": statistics.median(v[i] for v in s),
                "end": statistics.median(v[i] for v in e),
                "start_spread": [min(v[i] for v in s), max(v[i] for v in s)],
                "end_spread": [min(v[i] for v in e), max(v[i] for v in e)],
            }
            for i, clock in enumerate(("wall", "cpu"))
        }
    return {
        "environment": env,
        "config": {
            "calls_per_row": rounds["call"] * block["call"],
            "streams_per_row": rounds["stream"] * block["stream"],
            "chunks_per_stream": args.chunks,
            "block": block,
            "rounds": rounds,
            "repeats": args.repeats,
            "edge_blocks": args.edge_blocks,
            "edge_block": edge_block,
            "seed": args.seed,
            "span_processor": "SimpleSpanProcessor + exporter that drops spans",
            "metric_reader": "InMemoryMetricReader (cumulative)",
        },
        "rows": [
            {
                "key": r.key,
                "label": r.label,
                "content": r.content,
                "version": r.version,
                "error": r.error,
                "note": r.note,
            }
            for r in rows
        ],
        "active": [r.key for r in active],
        "summary": summary,
        "blocks": blocks,
        "baseline_blocks": base_blocks,
        "spans_measured": spans,
        "uninstrument_leftovers": {k: sorted(v) for k, v in leftovers.items()},
        "leftovers_at_end": final_leftovers,
        "inspection": inspection,
        "baseline_edges": edge_summary,
        "transport_costs": transport,
    }


def transport_costs(args: argparse.Namespace) -> dict[str, float]:
    """µs per non-streaming call over llmtap's DevServerTransport vs the pre-rendered MockTransport."""
    from llmtap.devserver import DevServerTransport

    devserver = sync_client(DevServerTransport())
    mock = sync_client(mock_transport(Rendered(args.chunks), stream=False))
    out: dict[str, list[float]] = {"devserver_transport": [], "mock_transport": []}
    for _ in range(3):
        for name, client in (("devserver_transport", devserver), ("mock_transport", mock)):
            out[name].append(timed(lambda c=client: c.chat.completions.create(**REQUEST), 100)[1])
    return {k: statistics.median(v) for k, v in out.items()}


def _brief(info: dict[str, Any]) -> str:
    if "error" in info:
        return f"ERROR {info['error']}"
    c, s = info.get("call", {}), info.get("stream", {})
    return (
        f"spans/call={c.get('spans')} attrs={c.get('attributes')} metric pts/call={c.get('metric_points_total')}"
        f" | stream: spans={s.get('spans')} events={s.get('events')} pts={s.get('metric_points_total')}"
        f" chunks={s.get('chunks_seen_by_app')} | abandoned ended={info.get('abandoned_stream_spans_ended')}"
        f" | leftovers={len(info.get('uninstrument_leftovers', []))}"
    )


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def _f(x: float | None, nd: int = 1) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:,.{nd}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "–"
    return f"{a / b:.2f}×"


REFERENCE = {"off": "llmtap", "span": "llmtap_span"}


def render(result: dict[str, Any]) -> str:
    env, cfg = result["environment"], result["config"]
    summ, insp = result["summary"], result["inspection"]
    chunks = cfg["chunks_per_stream"]
    rows = result["rows"]
    lines: list[str] = []
    w = lines.append
    w("# Instrumentation overhead: OpenAI chat completions (sync client, in-process transport)")
    w("")
    w(
        f"{env['date']} · {env['cpu']} · {env['cores']} cores · {env['python']} · "
        f"load avg {env['loadavg_start']} → {env.get('loadavg_end', '?')} · run {env.get('duration_s', '?')} s · "
        f"llmtap tree {env.get('llmtap_git', '?')}"
    )
    w("")
    pk = env["packages"]
    w(
        "Packages: "
        + ", ".join(f"{k} {v}" for k, v in pk.items() if v != "not installed")
        + (
            "; not installed: " + ", ".join(k for k, v in pk.items() if v == "not installed")
            if any(v == "not installed" for v in pk.values())
            else ""
        )
    )
    w("")
    w(
        f"{cfg['calls_per_row']:,} non-streaming calls and {cfg['streams_per_row']:,} streams of {chunks} chunks "
        f"per row ({cfg['repeats']} repeats), measured in blocks of {cfg['block']['call']} calls / "
        f"{cfg['block']['stream']} streams. Each round runs `B r1 B r2 … B rN B` (B = baseline block, rows in "
        "a fresh random order, each switched on with `instrument()` and off with `uninstrument()` around its "
        f"block); {cfg['rounds']['call']} / {cfg['rounds']['stream']} rounds. **µs** = median over blocks; "
        "**added** = median over blocks of (row block − mean of the two baseline blocks around it), "
        "[95% bootstrap CI of that median]. Per chunk = added per stream ÷ "
        f"{chunks} (so it includes the per-stream span start/end). Sink: {cfg['span_processor']}; "
        f"{cfg['metric_reader']}."
    )
    w("")

    def table(clock: str, title: str) -> None:
        w(f"## {title}")
        w("")
        w(
            "| row | µs/call | added µs/call [95% CI] | ÷ floor | ÷ llmtap | µs/stream | "
            "added µs/chunk [95% CI] | ÷ floor | ÷ llmtap |"
        )
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            key = r["key"]
            if r["error"] or key not in summ["call"]:
                err = (r["error"] or "not run").replace("|", "\\|")
                w(f"| {r['label']} {r['version'] or ''} | **did not run**: {err} |||||||| ")
                continue
            c, s = summ["call"][key][clock], summ["stream"][key][clock]
            fc, fs = (
                summ["call"].get("floor", {}).get(clock),
                summ["stream"].get("floor", {}).get(clock),
            )
            ref = REFERENCE.get(r["content"], "llmtap")
            rc, rs = summ["call"].get(ref, {}).get(clock), summ["stream"].get(ref, {}).get(clock)
            is_ref = key in ("baseline", "floor") or key == ref
            version = (
                f" {r['version']}" if r["version"] and key not in ("llmtap", "llmtap_span") else ""
            )
            if key == "baseline":
                added_c = added_s = "—"
                f_c = f_s = l_c = l_s = ""
            else:
                added_c = f"{_f(c['added'])} [{_f(c['added_ci'][0])}, {_f(c['added_ci'][1])}]"
                added_s = (
                    f"{_f(s['added'] / chunks, 2)} [{_f(s['added_ci'][0] / chunks, 2)}, "
                    f"{_f(s['added_ci'][1] / chunks, 2)}]"
                )
                f_c = "" if key == "floor" else _ratio(c["added"], fc["added"] if fc else None)
                f_s = "" if key == "floor" else _ratio(s["added"], fs["added"] if fs else None)
                l_c = "" if is_ref else _ratio(c["added"], rc["added"] if rc else None)
                l_s = "" if is_ref else _ratio(s["added"], rs["added"] if rs else None)
            w(
                f"| {r['label']}{version} | {_f(c['median'])} | {added_c} | {f_c} | {l_c} | "
                f"{_f(s['median'])} | {added_s} | {f_s} | {l_s} |"
            )
        w("")
        w(
            "÷ llmtap compares content-off rows with llmtap content-off and content-on rows with llmtap "
            "SPAN_ONLY."
        )
        w("")

    table("wall", "Wall clock (time.perf_counter_ns) — the headline figures")
    table(
        "cpu",
        "Cross-check: this thread's CPU time (time.thread_time_ns), less sensitive to other processes",
    )

    # target check
    w("## Target: llmtap adds the least of all instrumentations, and at most 2× the floor")
    w("")
    for clock in ("wall", "cpu"):
        for mode, unit in (("call", "per call"), ("stream", "per chunk")):
            s = summ[mode]
            if "llmtap" not in s or "floor" not in s:
                continue
            div = chunks if mode == "stream" else 1
            lt = s["llmtap"][clock]["added"] / div
            fl = s["floor"][clock]["added"] / div
            peers = {
                k: v[clock]["added"] / div
                for k, v in s.items()
                if k not in ("baseline", "floor", "llmtap", "llmtap_span")
                and not k.endswith("_default")
                and not k.endswith("_span")
            }
            cheaper = [k for k, v in peers.items() if v < lt]
            ok_floor = fl > 0 and lt <= 2 * fl
            w(
                f"- {clock}, {unit}: llmtap +{lt:.2f} µs vs floor +{fl:.2f} µs → "
                f"{lt / fl if fl > 0 else float('nan'):.2f}× floor ({'≤ 2× ✔' if ok_floor else '> 2× ✘'}); "
                + (
                    f"peers adding less (content off): {', '.join(cheaper)} ✘"
                    if cheaper
                    else "no content-off peer adds less ✔"
                )
            )
    w("")

    w(
        "Added cost per repeat (median of that repeat's blocks; wall / CPU) — repeat-to-repeat spread:"
    )
    w("")
    for r in rows:
        key = r["key"]
        if key == "baseline" or key not in summ["call"]:
            continue
        parts = []
        for mode, div, unit in (("call", 1, "µs/call"), ("stream", chunks, "µs/chunk")):
            reps = summ[mode][key]
            wall = ", ".join(
                f"{x / div:.1f}" if div == 1 else f"{x / div:.2f}"
                for x in reps["wall"]["added_by_repeat"]
            )
            cpu = ", ".join(
                f"{x / div:.1f}" if div == 1 else f"{x / div:.2f}"
                for x in reps["cpu"]["added_by_repeat"]
            )
            parts.append(f"{unit} wall [{wall}] / CPU [{cpu}]")
        w(f"- {key}: " + "; ".join(parts))
    w("")

    # uninstrument check
    w("## Uninstrument check")
    w("")
    for mode, unit in (("call", "µs/call"), ("stream", "µs/stream")):
        e = result["baseline_edges"][mode]
        for clock in ("wall", "cpu"):
            st, en = e[clock]["start"], e[clock]["end"]
            w(
                f"- baseline {mode} ({clock}): first {_f(st)} {unit} "
                f"(blocks {_f(e[clock]['start_spread'][0])}–{_f(e[clock]['start_spread'][1])}), "
                f"last {_f(en)} {unit} (blocks {_f(e[clock]['end_spread'][0])}–{_f(e[clock]['end_spread'][1])}): "
                f"{(en - st) / st * 100:+.1f}%"
            )
    spans_base = sum(
        result["spans_measured"][m].get("baseline", 0) for m in result["spans_measured"]
    )
    w(f"- spans exported while the baseline blocks ran (must be 0): {spans_base}")
    for key, left in result["uninstrument_leftovers"].items():
        first = insp.get(key, {}).get("uninstrument_leftovers", [])
        if left or first:
            names = sorted(set(left) | set(first))
            w(
                f"- **{key}: `uninstrument()` left {len(names)} patched SDK attribute(s)** "
                f"({', '.join(names[:8])}{' …' if len(names) > 8 else ''}); the benchmark restored the "
                "originals itself after every block so later rows run on a clean SDK."
            )
    end_left = result.get("leftovers_at_end") or []
    w(
        "- full check of the SDK's classes after the last row was switched off: "
        + (
            f"{len(end_left)} attributes still patched: {', '.join(end_left)}"
            if end_left
            else "pristine"
        )
    )
    clean = [
        k
        for k, v in result["uninstrument_leftovers"].items()
        if not v and not insp.get(k, {}).get("uninstrument_leftovers")
    ]
    w(f"- clean `uninstrument()`: {', '.join(k for k in clean if k not in ('baseline', 'floor'))}")
    w("")

    # what each row records
    w("## What each row records (one call / one 50-chunk stream, captured before timing)")
    w("")
    w(
        "| row | spans/call | span kind | attrs/call | attr chars | metric points/call | attrs/stream | "
        "span events/stream | metric points/stream | log records | abandoned stream: span ended |"
    )
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        i = insp.get(r["key"])
        if not i or "call" not in i:
            continue
        c, s = i["call"], i["stream"]
        w(
            f"| {r['key']} | {c['spans']} | {c.get('kind', '–')} | {c.get('attributes', 0)} | "
            f"{c.get('attribute_chars', 0)} | {_f(c['metric_points_total'], 0)} | {s.get('attributes', 0)} | "
            f"{s.get('events', 0)} | {_f(s['metric_points_total'], 0)} | {c['logs'] + s['logs']} | "
            f"{i.get('abandoned_stream_spans_ended')} |"
        )
    w("")
    # attribute and metric differences to llmtap (same content setting)
    w("Differences to llmtap (span attributes over one call + one stream; metric instruments):")
    w("")
    for r in rows:
        key = r["key"]
        i = insp.get(key)
        ref = insp.get(REFERENCE.get(r["content"], "llmtap"))
        if key in ("baseline", "llmtap", "llmtap_span") or not i or "call" not in i or not ref:
            continue

        def keys(info: dict[str, Any]) -> set[str]:
            return set(info["call"].get("attribute_keys", [])) | set(
                info["stream"].get("attribute_keys", [])
            )

        def metrics(info: dict[str, Any]) -> set[str]:
            return set(info["call"]["metric_points"]) | set(info["stream"]["metric_points"])

        lacks, adds = sorted(keys(ref) - keys(i)), sorted(keys(i) - keys(ref))
        m_lacks, m_adds = sorted(metrics(ref) - metrics(i)), sorted(metrics(i) - metrics(ref))
        parts = []
        if lacks:
            parts.append("lacks " + ", ".join(f"`{k}`" for k in lacks))
        if adds:
            parts.append("adds " + ", ".join(f"`{k}`" for k in adds))
        if m_lacks:
            parts.append("no metric " + ", ".join(f"`{k}`" for k in m_lacks))
        if m_adds:
            parts.append("extra metric " + ", ".join(f"`{k}`" for k in m_adds))
        ev = i["stream"].get("event_names") or []
        if ev:
            parts.append(
                f"stream span events: {i['stream'].get('events')} × "
                + ", ".join(f"`{e}`" for e in ev)
            )
        w(f"- **{key}**: " + ("; ".join(parts) if parts else "same keys"))
    w("")
    w(
        f"Transport per non-streaming call (CPU µs, baseline SDK): llmtap DevServerTransport "
        f"{_f(result['transport_costs']['devserver_transport'])}, pre-rendered MockTransport "
        f"{_f(result['transport_costs']['mock_transport'])} (used for every row)."
    )
    w("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# profile mode
# ---------------------------------------------------------------------------------------------


AREAS = (
    ("llmtap", ("/llmtap/",)),
    (
        "peer instrumentation",
        ("instrumentation/openai", "instrumentation/genai", "util/genai", "openinference"),
    ),
    ("bench floor code", ("_rows.py",)),
    ("wrapt", ("wrapt",)),
    ("OTel SDK metrics", ("opentelemetry/sdk/metrics",)),
    (
        "OTel SDK trace (span, processor, export)",
        ("opentelemetry/sdk/trace", "opentelemetry/sdk/util", "_sink.py"),
    ),
    ("OTel API, context, attributes", ("opentelemetry/",)),
    ("openai SDK, httpx2, pydantic, rest", ("",)),
)


def _area(path: str) -> str:
    for name, markers in AREAS:
        if any(m in path for m in markers):
            return name
    return AREAS[-1][0]


def _self_times(run: Callable[[], None]) -> dict[tuple[str, str, int], float]:
    """Seconds of self time per (file, function, line) while ``run`` runs."""
    try:
        from pyinstrument import Profiler
    except ImportError:  # deterministic fallback: inflates many-small-call code
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        run()
        prof.disable()
        st = pstats.Stats(prof)
        return {(f[0], f[2], f[1]): v[2] for f, v in st.stats.items()}  # type: ignore[attr-defined]
    profiler = Profiler(interval=0.0001)
    profiler.start()
    run()
    profiler.stop()
    out: dict[tuple[str, str, int], float] = {}
    stack = [profiler.last_session.root_frame()]
    while stack:
        frame = stack.pop()
        if frame is None:
            continue
        if not frame.is_synthetic:
            key = (frame.file_path or "", frame.function or "?", frame.line_no or 0)
            out[key] = out.get(key, 0.0) + frame.total_self_time
        stack.extend(frame.children)
    return out


def profile(args: argparse.Namespace) -> None:
    """Sample where the added time goes: baseline vs floor vs one row, self time by area and function."""
    sink = Sink(batch=False)
    work = Workload(args.chunks)
    floor = Floor(sink.tracer_provider, sink.meter_provider)
    rows = {r.key: r for r in all_rows()}
    target = rows[args.profile]
    if not target.load():
        raise SystemExit(target.error)
    keys = ["baseline", "floor", target.key] if target.key != "floor" else ["baseline", "floor"]
    n_call, n_stream = args.profile_calls, max(20, args.profile_calls // 20)
    times: dict[tuple[str, str], dict[tuple[str, str, int], float]] = {}
    for key in keys:
        row = rows[key]
        call, stream = work.calls(row, floor)
        row.on(sink.providers())
        for _ in range(50):
            call()
        for _ in range(5):
            stream()
        gc.collect()
        for mode, fn, n in (("call", call, n_call), ("stream", stream, n_stream)):

            def run(fn: Callable[[], Any] = fn, n: int = n) -> None:
                for _ in range(n):
                    fn()

            times[(key, mode)] = _self_times(run)
        row.off()
    profiler = "pyinstrument (0.1 ms sampling)"
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        profiler = "cProfile (inflates code made of many small calls)"
    print(f"# Profile: {target.key} vs floor vs baseline — {profiler}; µs of self time per unit\n")
    for mode, n, unit in (
        ("call", n_call, "call"),
        ("stream", n_stream, f"stream of {args.chunks} chunks"),
    ):
        print(f"## {mode}: {n} × one {unit}\n")
        areas = {k: {} for k in keys}
        for key in keys:
            for (path, _, _), secs in times[(key, mode)].items():
                area = _area(path)
                areas[key][area] = areas[key].get(area, 0.0) + secs / n * 1e6
        names = [a for a, _ in AREAS]
        print("| area | " + " | ".join(keys) + " |")
        print("|---|" + "---:|" * len(keys))
        for area in names:
            print(
                f"| {area} | " + " | ".join(f"{areas[k].get(area, 0.0):,.1f}" for k in keys) + " |"
            )
        totals = {k: sum(areas[k].values()) for k in keys}
        added = {k: sum(v for a, v in areas[k].items() if a != names[-1]) for k in keys}
        print("| **total** | " + " | ".join(f"{totals[k]:,.1f}" for k in keys) + " |")
        print(
            "| **instrumentation + OTel (added)** | "
            + " | ".join(f"{added[k]:,.1f}" for k in keys)
            + " |"
        )
        print()
        tk = keys[-1]
        top = sorted(
            (
                (v / n * 1e6, p, f, ln)
                for (p, f, ln), v in times[(tk, mode)].items()
                if _area(p) != names[-1]
            ),
            reverse=True,
        )[: args.profile_top]
        base = added[tk] or 1.0
        print(f"Top functions by self time in {tk} (share of its {added[tk]:,.1f} µs added):\n")
        print("| self µs | share | area | function |")
        print("|---:|---:|---|---|")
        for us, path, func, line in top:
            print(
                f"| {us:,.1f} | {us / base * 100:.1f}% | {_area(path)} | `{_short(path)}:{line} {func}` |"
            )
        print()
        own = [
            e
            for e in sorted(
                ((v / n * 1e6, p, f, ln) for (p, f, ln), v in times[(tk, mode)].items()),
                reverse=True,
            )
            if _area(e[1]) in ("llmtap", "peer instrumentation")
        ][: args.profile_top]
        if own:
            total_own = sum(us for us, *_ in own)
            print(f"The instrumentation's own functions in {tk} ({total_own:,.1f} µs shown):\n")
            print("| self µs | share of added | function |")
            print("|---:|---:|---|")
            for us, path, func, line in own:
                print(f"| {us:,.1f} | {us / base * 100:.1f}% | `{_short(path)}:{line} {func}` |")
            print()


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/src/", "/bench/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# ---------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--calls", type=int, default=3000, help="non-streaming calls per row per repeat")
    p.add_argument("--stream-calls", type=int, default=300, help="streams per row per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--block", type=int, default=10, help="calls per measured block")
    p.add_argument("--stream-block", type=int, default=2, help="streams per measured block")
    p.add_argument(
        "--chunks", type=int, default=50, help="chunks per stream (as the app sees them)"
    )
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument(
        "--edge-blocks", type=int, default=10, help="baseline blocks at the very start and end"
    )
    p.add_argument("--edge-block", type=int, default=100, help="calls per start/end baseline block")
    p.add_argument("--rows", default="", help="comma-separated row keys (baseline always included)")
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--quick", action="store_true", help="tiny run to check the wiring")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument(
        "--keep-blocks", action="store_true", help="also write every block's timing to the JSON"
    )
    p.add_argument("--name", default="instrumentation_overhead", help="output file stem")
    p.add_argument("--profile", metavar="ROW", help="profile one row against the baseline instead")
    p.add_argument("--profile-calls", type=int, default=2000)
    p.add_argument("--profile-top", type=int, default=30)
    args = p.parse_args()
    if args.quick:
        args.calls, args.stream_calls, args.repeats = 100, 10, 2
        args.block, args.stream_block, args.warmup, args.edge_blocks, args.edge_block = (
            10,
            2,
            40,
            2,
            20,
        )
    if args.profile:
        profile(args)
        return
    result = measure(args)
    text = render(result)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.md").write_text(text + "\n")
    if (
        not args.keep_blocks
    ):  # every block's timing: ~3 MB; the summary keeps the per-repeat medians
        result.pop("blocks", None)
        result.pop("baseline_blocks", None)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    log(f"wrote {out / (args.name + '.md')} and .json")


if __name__ == "__main__":
    main()
