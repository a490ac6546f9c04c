#!/usr/bin/env python
"""Start-up time: set-up + first OpenAI call in a fresh process, llmtap vs the SDK alone vs peers.

Every run is a new interpreter (``bench/_startup_app.py ROW``): Python's start-up, the tool's
set-up (``llmtap.configure()``; for the peers the same tracer/meter providers by hand and
their instrumentor's ``instrument()``; OpenLIT's ``openlit.init()``), ``import openai``, a
client and one chat completion against llmtap's dev server on loopback. Measured from the
parent's spawn to the return of that call (the exit is not part of it). Rows run in a fresh
random order in every round; each row's venv gets its own "SDK alone" row, and each run is
paired with that baseline's run of the same round.

    bench/.venv/bin/python bench/startup.py                 # 15 rounds (~10 min on 2 cores)
    bench/.venv/bin/python bench/startup.py --runs 5 --rows sdk,llmtap
    bench/.venv/bin/python bench/startup.py --importtime    # + where llmtap's own time goes

Writes bench/results/startup.{md,json}. See bench/README.md ("Start-up").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
APP = HERE / "_startup_app.py"

# peers share the entry-point name "openai": disabling it leaves llmtap's instrumentors only
ZERO_CODE_ENV = {
    "OTEL_PYTHON_DISTRO": "llmtap",
    "OTEL_PYTHON_CONFIGURATOR": "llmtap",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}


@dataclass
class Row:
    name: str
    label: str
    venv: str  # folder under bench/
    package: str | None = None  # distribution that must be installed in the venv
    launcher: bool = False
    env: dict[str, str] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return HERE / self.venv / "bin" / "python"

    def command(self) -> list[str]:
        prefix = (
            [str(HERE / self.venv / "bin" / "opentelemetry-instrument")] if self.launcher else []
        )
        app_row = self.name.split("@")[0]
        return [*prefix, str(self.python), str(APP), app_row]


ROWS = [
    Row("sdk", "OpenAI SDK alone", ".venv"),
    Row("llmtap", "llmtap `configure()`", ".venv", "llmtap"),
    Row(
        "zero_code_llmtap",
        "llmtap zero-code (`opentelemetry-instrument`)",
        ".venv",
        "llmtap",
        launcher=True,
        env=ZERO_CODE_ENV,
    ),
    Row(
        "llmtap_instrumentor",
        "llmtap `OpenAIInstrumentor` only (set up like the peers)",
        ".venv",
        "llmtap",
    ),
    Row("openllmetry", "OpenLLMetry", ".venv", "opentelemetry-instrumentation-openai"),
    Row("openinference", "OpenInference", ".venv", "openinference-instrumentation-openai"),
    Row("otel_genai", "OTel `genai-openai`", ".venv", "opentelemetry-instrumentation-genai-openai"),
    Row("sdk@httpx", "OpenAI SDK alone (`.venv-httpx`)", ".venv-httpx"),
    Row("llmtap@httpx", "llmtap `configure()` (`.venv-httpx`)", ".venv-httpx", "llmtap"),
    Row(
        "otel_v2@httpx",
        "OTel contrib `openai-v2`",
        ".venv-httpx",
        "opentelemetry-instrumentation-openai-v2",
    ),
    # OpenLIT requires openai < 3 and anthropic < 1, llmtap openai 3.x and anthropic 2.x: its
    # own venv, compared with the SDK it brings (openai 2.x)
    Row("sdk@openlit", "OpenAI SDK alone (`.venv-openlit`, openai 2.x)", ".venv-openlit"),
    Row("openlit@openlit", "OpenLIT `openlit.init()`", ".venv-openlit", "openlit"),
]
VERSIONS = (
    "llmtap",
    "openai",
    "anthropic",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "opentelemetry-instrumentation-openai",
    "openinference-instrumentation-openai",
    "opentelemetry-instrumentation-genai-openai",
    "opentelemetry-instrumentation-openai-v2",
    "openlit",
)


def baseline_of(row: Row) -> str:
    return "sdk" + (row.name[row.name.index("@") :] if "@" in row.name else "")


def venv_versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as md, json, sys\n"
        "out = {}\n"
        f"for n in {list(VERSIONS)!r}:\n"
        "    try: out[n] = md.version(n)\n"
        "    except md.PackageNotFoundError: pass\n"
        "print(json.dumps({'python': sys.version.split()[0], **out}))\n"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_head() -> str:
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
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}"


# ---------------------------------------------------------------------------------------------


def run_once(row: Row, env: dict[str, str], extra_args: list[str] | None = None) -> dict[str, Any]:
    command = row.command()
    if extra_args:
        command[command.index(str(row.python)) + 1 : command.index(str(row.python)) + 1] = (
            extra_args
        )
    t_spawn = time.time()
    proc = subprocess.run(
        command, env={**env, **row.env}, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: {' | '.join(tail)}", "stderr": proc.stderr}
    out = json.loads(lines[-1])
    out["total_ms"] = (out["t_done"] - t_spawn) * 1000
    out["python_start_ms"] = (out["t_main"] - t_spawn) * 1000
    out["setup_ms"] = (out["t_setup"] - out["t_main"]) * 1000
    out["first_call_ms"] = (out["t_done"] - out["t_setup"]) * 1000
    out["cpu_ms"] = out["cpu_done"] * 1000
    out["stderr"] = proc.stderr
    return out


def available(rows: list[Row]) -> tuple[list[Row], dict[str, str], dict[str, Any]]:
    ok, skipped = [], {}
    versions = {}
    for venv in sorted({r.venv for r in rows}):
        python = HERE / venv / "bin" / "python"
        versions[venv] = venv_versions(python) if python.exists() else {}
    for row in rows:
        have = versions.get(row.venv) or {}
        if not have:
            skipped[row.name] = f"bench/{row.venv} does not exist (see bench/run_startup.sh)"
        elif row.package and row.package not in have:
            skipped[row.name] = f"{row.package} is not installed in bench/{row.venv}"
        else:
            ok.append(row)
    return ok, skipped, versions


def _import_self_times(row: Row, env: dict[str, str]) -> dict[str, float]:
    """Self import time (ms) of every module one run of ``row`` imports (``-X importtime``)."""
    command = [str(row.python), "-X", "importtime", str(APP), row.name.split("@")[0]]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    pattern = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)")
    out: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = pattern.match(line)
        if m:
            out[m.group(2)] = int(m.group(1)) / 1000
    return out


def _group(module: str) -> str:
    parts = module.split(".")
    if parts[0] in ("llmtap", "opentelemetry") and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def added_imports(
    row: Row, base: Row, env: dict[str, str], repeats: int = 3
) -> list[tuple[str, float]]:
    """What ``row`` imports that the SDK alone does not, by package: median over ``repeats``
    pairs of runs of the summed self import time (ms)."""
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        mine, theirs = _import_self_times(row, env), _import_self_times(base, env)
        groups: dict[str, float] = defaultdict(float)
        for module, ms in mine.items():
            if module not in theirs:
                groups[_group(module)] += ms
        groups["(total)"] = sum(groups.values())
        for key, ms in groups.items():
            samples[key].append(ms)
    medians = {k: statistics.median(v + [0.0] * (repeats - len(v))) for k, v in samples.items()}
    return sorted(medians.items(), key=lambda kv: -kv[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="rounds (fresh processes per row)")
    parser.add_argument("--rows", default="", help="comma-separated row names (default: all)")
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--importtime", action="store_true", help="also profile imports")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default="startup")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    wanted = [r for r in ROWS if not args.rows or r.name in args.rows.split(",")]
    # every row is compared with the SDK alone in its own venv
    names = {r.name for r in wanted}
    wanted += [
        r for r in ROWS if r.name not in names and r.name in {baseline_of(w) for w in wanted}
    ]
    rows, skipped, versions = available(wanted)
    rng = random.Random(args.seed)

    from llmtap.devserver import DevServer

    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "LLMTAP_", "TRACELOOP_", "PYTHON"))
    }
    results: dict[str, list[dict[str, Any]]] = {r.name: [] for r in rows}
    errors: dict[str, str] = {}
    started = time.time()
    load_start = loadavg()
    with DevServer() as server:
        prices = Path(tempfile.mkdtemp(prefix="llmtap-startup-")) / "prices.json"
        prices.write_text("{}")
        env = {
            **base_env,
            "OPENAI_BASE_URL": server.openai_base_url,
            "OPENAI_API_KEY": "bench",
            "STARTUP_PRICES": str(prices),
        }
        for row in rows:  # warm-up: byte-code caches written, files in the page cache
            first = run_once(row, env)
            if "error" in first:
                errors[row.name] = first["error"]
                print(f"[startup] {row.name}: {first['error']}", file=sys.stderr)
        rows = [r for r in rows if r.name not in errors]
        for i in range(runs):
            order = rows[:]
            rng.shuffle(order)
            for row in order:
                out = run_once(row, env)
                if "error" in out:
                    errors[row.name] = out["error"]
                    continue
                out["round"] = i
                results[row.name].append(out)
            print(f"[startup] round {i + 1}/{runs} done", file=sys.stderr)
        profiles = {}
        if args.importtime:
            by_name = {r.name: r for r in rows}
            for row in rows:
                base = by_name.get(baseline_of(row))
                if base is not None and row is not base and not row.launcher:
                    profiles[row.name] = added_imports(row, base, env)
    load_end = loadavg()

    summary = summarize(rows, results)
    doc = {
        "environment": {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "llmtap_git": git_head(),
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_start": load_start,
            "loadavg_end": load_end,
            "minutes": round((time.time() - started) / 60, 1),
            "runs_per_row": runs,
            "venvs": versions,
        },
        "rows": summary,
        "skipped": skipped,
        "errors": errors,
        "importtime_ms": profiles,
        "runs": {name: [_slim(r) for r in rs] for name, rs in results.items()},
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{args.name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = render(doc, rows)
    (out_dir / f"{args.name}.md").write_text(md)
    print(md)


def _slim(run: dict[str, Any]) -> dict[str, Any]:
    keep = ("round", "total_ms", "cpu_ms", "python_start_ms", "setup_ms", "first_call_ms", "spans")
    return {k: (round(run[k], 2) if isinstance(run[k], float) else run[k]) for k in keep}


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def summarize(rows: list[Row], results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out = {}
    for row in rows:
        runs = results.get(row.name) or []
        if not runs:
            continue
        base = {r["round"]: r for r in results.get(baseline_of(row), [])}
        totals = [r["total_ms"] for r in runs]
        paired = [r["total_ms"] - base[r["round"]]["total_ms"] for r in runs if r["round"] in base]
        base_median = statistics.median([b["total_ms"] for b in base.values()]) if base else None
        q1, q3 = _quartiles(paired) if paired else (None, None)
        cpus = [r["cpu_ms"] for r in runs]
        cpu_paired = [r["cpu_ms"] - base[r["round"]]["cpu_ms"] for r in runs if r["round"] in base]
        cpu_base = statistics.median([b["cpu_ms"] for b in base.values()]) if base else None
        cq1, cq3 = _quartiles(cpu_paired) if cpu_paired else (None, None)
        out[row.name] = {
            "label": row.label,
            "venv": row.venv,
            "baseline": baseline_of(row),
            "n": len(runs),
            "total_ms": statistics.median(totals),
            "python_start_ms": statistics.median(r["python_start_ms"] for r in runs),
            "setup_ms": statistics.median(r["setup_ms"] for r in runs),
            "first_call_ms": statistics.median(r["first_call_ms"] for r in runs),
            "added_ms": statistics.median(paired) if paired else None,
            "added_q1_ms": q1,
            "added_q3_ms": q3,
            "ratio": statistics.median(totals) / base_median if base_median else None,
            "cpu_ms": statistics.median(cpus),
            "cpu_added_ms": statistics.median(cpu_paired) if cpu_paired else None,
            "cpu_added_q1_ms": cq1,
            "cpu_added_q3_ms": cq3,
            "cpu_ratio": statistics.median(cpus) / cpu_base if cpu_base else None,
            "loaded_after_setup": runs[-1]["loaded_after_setup"],
            "loaded_at_end": runs[-1]["loaded_at_end"],
            "spans": runs[-1]["spans"],
        }
    return out


def render(doc: dict[str, Any], rows: list[Row]) -> str:
    env = doc["environment"]
    lines = [
        "# Start-up: set-up + first OpenAI call, fresh process",
        "",
        f"{env['date']}, llmtap {env['llmtap_git']}, {env['cpu']}, {env['cores']} cores, "
        f"{env['platform']}; load average {env['loadavg_start']} → {env['loadavg_end']}; "
        f"{env['runs_per_row']} runs per row, {env['minutes']} min.",
        "",
        "Two measures per run, both up to the return of the first `chat.completions.create`:",
        "**wall** ms from spawning the interpreter, and **CPU** ms the process used by then (all",
        "threads, `time.process_time()`; on a shared machine this one moves far less with the",
        "other load). Medians over the runs. *Added* = median over rounds of (row − the SDK",
        "alone in the same venv and round) [interquartile range]; *ratio* = row median ÷ the",
        "SDK alone's median.",
        "",
        "| row | CPU ms | CPU added [IQR] | CPU ratio | wall ms | wall added [IQR] | wall "
        "ratio | set-up (wall) | SDKs loaded by the set-up | spans |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]

    def added(s: dict[str, Any], key: str, base: bool) -> str:
        if base or s[f"{key}added_ms"] is None:
            return "–"
        q1, q3 = s[f"{key}added_q1_ms"], s[f"{key}added_q3_ms"]
        return f"**{s[f'{key}added_ms']:+.0f}** [{q1:+.0f}, {q3:+.0f}]"

    for row in rows:
        s = doc["rows"].get(row.name)
        if s is None:
            continue
        base = row.name == s["baseline"]
        ratio = f"{s['ratio']:.2f}×" if s["ratio"] else "–"
        cpu_ratio = f"{s['cpu_ratio']:.2f}×" if s["cpu_ratio"] else "–"
        loaded = ", ".join(s["loaded_after_setup"]) or "none"
        spans = "–" if s["spans"] is None else str(s["spans"])
        lines.append(
            f"| {s['label']} | {s['cpu_ms']:.0f} | {added(s, 'cpu_', base)} | {cpu_ratio} | "
            f"{s['total_ms']:.0f} | {added(s, '', base)} | {ratio} | {s['setup_ms']:.0f} | "
            f"{loaded} | {spans} |"
        )
    if doc["skipped"] or doc["errors"]:
        lines += ["", "Not measured:", ""]
        for name, why in {**doc["skipped"], **doc["errors"]}.items():
            lines.append(f"- `{name}`: {why}")
    lines += ["", "Versions per venv:", ""]
    for venv, versions in env["venvs"].items():
        pairs = ", ".join(f"{k} {v}" for k, v in versions.items())
        lines.append(f"- `bench/{venv}`: {pairs}")
    if doc["importtime_ms"]:
        lines += [
            "",
            "## What the set-up imports that the SDK alone does not",
            "",
            "Self import time (`-X importtime`, ms; it includes what modules do when imported, "
            "such as compiling regular expressions) of the modules a row loads and the "
            "SDK-alone row does not, summed by package; median of 3 pairs of runs.",
            "",
        ]
        labels = {r.name: r.label for r in rows}
        for name, items in doc["importtime_ms"].items():
            top = ", ".join(f"{pkg} {ms:.0f}" for pkg, ms in items[:18] if ms >= 0.5)
            lines.append(f"- {labels.get(name, name)}: {top}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
