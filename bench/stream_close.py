#!/usr/bin/env python
"""How long ending an OpenAI stream that carried no usage takes for the application.

The first stream of a fresh process (the tokenizer is not loaded yet), ended three ways:
``close()`` after the first chunk, dropped after ``break`` (its last reference deleted) and
read to the last chunk (the ``next()`` that raises ``StopIteration``). With no
instrumentation and with llmtap (``OpenAIInstrumentor``, token estimation on, the default);
also the span's duration and whether the estimate reached the exported span.

    bench/.venv/bin/python bench/stream_close.py [--runs 7]
    PYTHONPATH=/path/to/older/checkout/src bench/.venv/bin/python bench/stream_close.py --name stream_close_before

Writes bench/results/stream_close.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

CHILD = r"""
import gc, json, sys, time
import openai
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

mode, how = sys.argv[1], sys.argv[2]
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
if mode == "llmtap":
    from llmtap.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
client = openai.OpenAI(max_retries=0)
stream = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}], stream=True
)
if how == "close":
    next(iter(stream))
    t0 = time.perf_counter()
    stream.close()
elif how == "break":
    for chunk in stream:
        break
    t0 = time.perf_counter()
    del stream
else:
    it = iter(stream)
    while True:
        t0 = time.perf_counter()
        try:
            next(it)
        except StopIteration:
            break
took = time.perf_counter() - t0
gc.collect()
provider.force_flush()
spans = exporter.get_finished_spans()
out = {"took_s": took, "spans": len(spans)}
if spans:
    span = spans[0]
    out["span_s"] = (span.end_time - span.start_time) / 1e9
    out["estimated"] = bool(span.attributes.get("llmtap.usage.estimated"))
print(json.dumps(out))
"""


def run(mode: str, how: str, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, how],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default="stream_close")
    args = parser.parse_args()

    import llmtap
    from llmtap.devserver import DevServer

    rows = []
    with DevServer() as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))},
            "OPENAI_BASE_URL": server.openai_base_url,
            "OPENAI_API_KEY": "bench",
        }
        for how in ("close", "break", "last chunk"):
            for mode in ("none", "llmtap"):
                runs = [run(mode, how.split()[0], env) for _ in range(args.runs)]
                took = [r["took_s"] for r in runs]
                row = {
                    "how": how,
                    "mode": mode,
                    "median_s": statistics.median(took),
                    "max_s": max(took),
                    "runs": runs,
                }
                if mode == "llmtap":
                    row["span_median_s"] = statistics.median(r["span_s"] for r in runs)
                    row["estimated"] = sum(r.get("estimated", False) for r in runs)
                rows.append(row)
                print(f"[stream_close] {how} {mode}: {row['median_s']:.4f}s", file=sys.stderr)
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "n/a"
    doc = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "llmtap": str(Path(llmtap.__file__).parent),
        "loadavg_end": load,
        "runs": args.runs,
        "rows": rows,
    }
    lines = [
        "# Ending a stream without usage: time the application waits",
        "",
        f"{doc['date']}, llmtap from `{doc['llmtap']}`, {args.runs} fresh processes per cell, "
        f"load average {load} at the end. The first stream of each process (tokenizer not "
        "loaded yet).",
        "",
        "| stream ended by | no instrumentation: median s (max) | llmtap: median s (max) | "
        "llmtap span duration, median s | estimate on the span |",
        "|---|---:|---:|---:|---:|",
    ]
    for how in ("close", "break", "last chunk"):
        none = next(r for r in rows if r["how"] == how and r["mode"] == "none")
        tap = next(r for r in rows if r["how"] == how and r["mode"] == "llmtap")
        label = {"close": "`close()`", "break": "`break`, then dropped", "last chunk": "last chunk"}
        lines.append(
            f"| {label[how]} | {none['median_s']:.4f} ({none['max_s']:.4f}) | "
            f"{tap['median_s']:.4f} ({tap['max_s']:.4f}) | {tap['span_median_s']:.3f} | "
            f"{tap['estimated']}/{args.runs} |"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
