#!/usr/bin/env python
"""Added cost per LangGraph agent run (two tool calls, three model calls) of llmtap's LangChain
+ OpenAI instrumentation beside OpenLLMetry's and OpenInference's LangChain + OpenAI
instrumentations, in one process; spans per run and the span names each row records.

The agent is ``langgraph.prebuilt.create_react_agent`` on ``ChatOpenAI`` with two tools. The
three model replies (call tool 1, call tool 2, final answer) are rendered once by llmtap's
devserver (OpenAI's wire format) and served in memory by an ``httpx2.MockTransport`` that
picks the reply from the number of tool results in the request, so every row pays the same
transport cost and no socket is opened. Rows are switched on (instrument) and off
(uninstrument) around each measured block; blocks of all rows are interleaved round by round
in a shuffled order, each paired with a bare block (the agent alone) just before it, and the
figure is the median of the paired differences. Every row runs with message content off.

    bench/.venv-frameworks/bin/python bench/framework_overhead.py            # full run
    bench/.venv-frameworks/bin/python bench/framework_overhead.py --quick    # wiring check

Writes a Markdown table to stdout and bench/results/framework_overhead.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib
import importlib.metadata as md
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wrapt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sink import CONTENT_OFF_ENV, Sink  # noqa: E402
from llmtap.devserver import handle  # noqa: E402

MODEL = "gpt-4o-mini"
QUESTION = "What is the weather and the local time in Paris?"
LLMTAP_LANGCHAIN = "llmtap.instrumentation.langchain:LangChainInstrumentor"
MISSING = "llmtap langchain instrumentation not present"


@dataclass
class RowSpec:
    key: str
    label: str
    targets: tuple[str, ...]  # module:Class of each instrumentor; () for the bare agent
    distributions: tuple[str, ...] = ()


ROWS = [
    RowSpec("bare", "agent alone", ()),
    RowSpec(
        "llmtap",
        "**llmtap** (LangChain + OpenAI)",
        (LLMTAP_LANGCHAIN, "llmtap.instrumentation.openai:OpenAIInstrumentor"),
        ("llmtap",),
    ),
    RowSpec(
        "openllmetry",
        "OpenLLMetry (`opentelemetry-instrumentation-langchain` + `-openai`)",
        (
            "opentelemetry.instrumentation.langchain:LangchainInstrumentor",
            "opentelemetry.instrumentation.openai:OpenAIInstrumentor",
        ),
        ("opentelemetry-instrumentation-langchain", "opentelemetry-instrumentation-openai"),
    ),
    RowSpec(
        "openinference",
        "OpenInference (`openinference-instrumentation-langchain` + `-openai`)",
        (
            "openinference.instrumentation.langchain:LangChainInstrumentor",
            "openinference.instrumentation.openai:OpenAIInstrumentor",
        ),
        ("openinference-instrumentation-langchain", "openinference-instrumentation-openai"),
    ),
]
LLMTAP = ROWS[1].label
FACTS: dict[str, set[str]] = {}


# ---------------------------------------------------------------------------------------------
# the agent and its canned replies
# ---------------------------------------------------------------------------------------------

TOOLS_WIRE = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    for name, description in (
        ("get_weather", "Current weather in a city."),
        ("get_local_time", "Current local time in a city."),
    )
]


def _replies() -> list[tuple[dict[str, str], bytes]]:
    """The devserver's three replies, indexed by the number of tool results already sent:
    a call of get_weather, a call of get_local_time, the final answer."""
    user = {"role": "user", "content": QUESTION}
    requests = [
        {"model": MODEL, "messages": [user], "tools": TOOLS_WIRE},
        {
            "model": MODEL,
            "messages": [user],
            "tools": TOOLS_WIRE,
            "tool_choice": {"type": "function", "function": {"name": "get_local_time"}},
        },
        {
            "model": MODEL,
            "messages": [
                user,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_local_time", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "14:05, sunny, 21 C"},
            ],
            "tools": TOOLS_WIRE,
        },
    ]
    out = []
    for body in requests:
        reply = handle("POST", "/v1/chat/completions", {}, json.dumps(body).encode())
        out.append((dict(reply.headers), reply.body_bytes()))
    return out


TOKEN_KEYS = ("prompt_tokens", "completion_tokens")


def expected_facts(replies: list[tuple[dict[str, str], bytes]]) -> dict[str, set[str]]:
    """What a complete record of one run holds, as attribute values (or span names) to find:
    the "same information" check."""
    bodies = [json.loads(body) for _, body in replies]
    calls = [c for b in bodies for c in b["choices"][0]["message"].get("tool_calls") or []]
    return {
        "agent name": {"weather_agent"},
        "request model": {MODEL},
        "response ids": {b["id"] for b in bodies},
        "finish reasons": {b["choices"][0]["finish_reason"] for b in bodies},
        "token counts": {str(b["usage"][k]) for b in bodies for k in TOKEN_KEYS},
        "tool names": {c["function"]["name"] for c in calls},
        "tool call ids": {c["id"] for c in calls},
    }


def make_agent() -> tuple[Callable[[], Callable[[], Any]], Callable[[Any], None]]:
    """(build an agent and return its one-run function, check a run's result). Each row
    builds its agent after instrument(), as an application does (some instrumentors hook
    the agent factory or the model's construction)."""
    import httpx2
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent

    replies = _replies()
    FACTS.update(expected_facts(replies))

    def respond(request: httpx2.Request) -> httpx2.Response:
        headers, body = replies[min(request.content.count(b'"tool_call_id"'), 2)]
        return httpx2.Response(200, headers=headers, content=body)

    @tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        return f"sunny, 21 C in {city}"

    @tool
    def get_local_time(city: str) -> str:
        """Current local time in a city."""
        return f"14:05 in {city}"

    transport = httpx2.MockTransport(respond)
    inputs = {"messages": [("user", QUESTION)]}

    def build() -> Callable[[], Any]:
        model = ChatOpenAI(
            model=MODEL,
            api_key="bench",
            base_url="http://bench.invalid/v1",
            http_client=httpx2.Client(transport=transport),
            temperature=0.2,
            max_retries=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # create_react_agent's move to langchain.agents
            agent = create_react_agent(model, [get_weather, get_local_time], name="weather_agent")
        return lambda: agent.invoke(inputs)

    def check(result: Any) -> None:
        messages = result["messages"]
        kinds = [type(m).__name__ for m in messages]
        expected = ["HumanMessage"] + ["AIMessage", "ToolMessage"] * 2 + ["AIMessage"]
        if kinds != expected:
            raise RuntimeError(f"the agent run was not 3 model calls + 2 tool calls: {kinds}")

    return build, check


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------


PATCHABLE = ("langchain_core", "langchain_openai", "langgraph", "openai")


def _members(owner: Any) -> dict[str, Any]:
    return {
        key: value
        for key, value in list(vars(owner).items())
        if not key.startswith("__pydantic") and (callable(value) or isinstance(value, property))
    }


class Patches:
    """Every function, method and property of the framework's and the SDK's modules and
    classes, taken before any row was switched on: what a row's uninstrument() leaves patched
    is found, reported and put back, so the rows after it run on the framework alone."""

    def __init__(self) -> None:
        self.original = self._scan()
        self.owners = {key[0] for key in self.original}
        self.left: dict[str, Counter[str]] = {}

    @staticmethod
    def _scan() -> dict[tuple[int, str], tuple[Any, str, Any]]:
        out: dict[tuple[int, str], tuple[Any, str, Any]] = {}
        for name, module in list(sys.modules.items()):
            if module is None or name.partition(".")[0] not in PATCHABLE:
                continue
            owners = [module]
            owners += [
                v for v in vars(module).values() if isinstance(v, type) and v.__module__ == name
            ]
            for owner in owners:
                where = getattr(owner, "__qualname__", name)
                where = where if owner is module else f"{name}.{where}"
                for key, value in _members(owner).items():
                    out[(id(owner), key)] = (owner, f"{where}.{key}", value)
        return out

    def restore(self, label: str) -> None:
        left = self.left.setdefault(label, Counter())
        for key, (owner, where, now) in self._scan().items():
            before = self.original.get(key)
            if before is None:
                if key[0] in self.owners and isinstance(now, wrapt.ObjectProxy):
                    # a wrapper set on a subclass of the class that defines the method
                    left[where] += 1
                    delattr(owner, key[1])
            elif now is not before[2]:
                left[where] += 1
                setattr(owner, key[1], before[2])


class Row:
    def __init__(self, spec: RowSpec, sink: Sink, patches: Patches | None = None) -> None:
        self.spec = spec
        self.sink = sink
        self.patches = patches
        self.instrumentors: list[Any] = []
        for target in spec.targets:
            module, _, name = target.partition(":")
            self.instrumentors.append(getattr(importlib.import_module(module), name)())

    def on(self) -> None:
        for instrumentor in self.instrumentors:
            instrumentor.instrument(**self.sink.providers(), skip_dep_check=True)

    def off(self) -> None:
        for instrumentor in reversed(self.instrumentors):
            instrumentor.uninstrument()
        if self.patches is not None and self.instrumentors:
            self.patches.restore(self.spec.label)


def available(spec: RowSpec) -> str | None:
    """None when every instrumentor of the row imports, else why not."""
    for target in spec.targets:
        module, _, name = target.partition(":")
        try:
            getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            return MISSING if target == LLMTAP_LANGCHAIN else f"{target}: {exc}"
    return None


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.rstrip()


def llmtap_source() -> str:
    """Which llmtap LangChain code ran: the commit, and whether the working tree differs."""
    if os.environ.get("LLMTAP_BENCH_SOURCE"):  # run_frameworks.sh --commit
        return os.environ["LLMTAP_BENCH_SOURCE"]
    path = "src/llmtap/instrumentation/langchain"
    head = _git("log", "-1", "--format=%h", "--", path).strip()
    dirty = _git("status", "--porcelain", "--", path).strip()
    if not head:
        return "not committed" + (" (uncommitted working-tree files)" if dirty else "")
    text = f"committed {head}" + (", with uncommitted changes" if dirty else "")
    others = [line[3:] for line in _git("status", "--porcelain", "--", "src/llmtap").splitlines()]
    others = [f for f in others if not f.startswith(path)]
    if others:
        text += "; other uncommitted llmtap files in the tree: " + ", ".join(others)
    return text


def _timed(row: Row, build: Callable[[], Callable[[], Any]], n: int) -> tuple[float, float]:
    """(wall µs, the process's CPU µs, all threads) per agent run, over n runs."""
    row.on()
    try:
        run = build()
        run()  # warm
        gc.collect()
        start, cpu = time.perf_counter_ns(), time.process_time_ns()
        for _ in range(n):
            run()
        cpu = time.process_time_ns() - cpu
        return (time.perf_counter_ns() - start) / 1000 / n, cpu / 1000 / n
    finally:
        row.off()


def _attr(span: Any, *keys: str) -> str:
    for key in keys:
        value = span.attributes.get(key)
        if value is not None:
            return str(value)
    return ""


def kind_of(span: Any) -> str:
    """What the span stands for, in the row's own vocabulary."""
    return _attr(
        span, "gen_ai.operation.name", "openinference.span.kind", "traceloop.span.kind"
    ) or _attr(span, "llm.request.type")


CATEGORIES = ("model call", "tool call", "agent", "workflow", "other")


def category(span: Any) -> str:
    kind = kind_of(span).lower()
    if kind in ("chat", "text_completion", "llm", "completion", "generate_content"):
        return "model call"
    if kind in ("execute_tool", "tool"):
        return "tool call"
    if kind in ("invoke_agent", "agent"):
        return "agent"
    if kind in ("invoke_workflow", "workflow"):
        return "workflow"
    return "other"


def tree(spans: Sequence[Any]) -> list[str]:
    """One line per span, indented under its parent, in start order."""
    ids = {s.context.span_id for s in spans}
    children: dict[int | None, list[Any]] = {}
    for span in sorted(spans, key=lambda s: s.start_time):
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            kind = kind_of(span)
            lines.append("  " * depth + span.name + (f" [{kind}]" if kind else ""))
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return lines


def _holds(fact: str, span: Any) -> bool:
    """Which spans may carry the fact (token counts only count on model-call spans)."""
    return fact != "token counts" or category(span) == "model call"


ALIASES = {"tool_call": "tool_calls"}  # semconv's finish reason for OpenAI's "tool_calls"


def _values(spans: Any) -> set[str]:
    out: set[str] = set()
    for span in spans:
        out.add(span.name)
        for value in span.attributes.values():
            for item in value if isinstance(value, (tuple, list)) else (value,):
                out.add(ALIASES.get(str(item), str(item)))
    return out


def inspect(
    row: Row, build: Callable[[], Callable[[], Any]], check: Callable[[Any], None]
) -> dict[str, Any]:
    """The spans of one agent run with this row on (a row that records nothing would look
    free), and a check that the row leaves the agent's result unchanged."""
    sink = row.sink
    sink.spans.kept.clear()
    sink.spans.keep = True
    row.on()
    try:
        check(build()())
    finally:
        row.off()
        sink.spans.keep = False
    spans = list(sink.spans.kept)
    sink.spans.kept.clear()
    found = {
        fact: sorted(values & _values(s for s in spans if _holds(fact, s)))
        for fact, values in FACTS.items()
    }
    usage = sum(
        1
        for s in spans
        if category(s) == "model call"
        and _attr(s, "gen_ai.usage.input_tokens", "llm.token_count.prompt")
    )
    return {
        "spans": len(spans),
        "traces": len({s.context.trace_id for s in spans}),
        "categories": dict(Counter(category(s) for s in spans)),
        "names": dict(Counter(s.name for s in spans)),
        "model_spans_with_tokens": usage,
        "facts": {fact: f"{len(v)}/{len(FACTS[fact])}" for fact, v in found.items()},
        "tree": tree(spans),
    }


def measure(
    rows: list[Row],
    build: Callable[[], Callable[[], Any]],
    check: Callable[[Any], None],
    rounds: int,
    n: int,
) -> dict[str, Any]:
    bare, instrumented = rows[0], rows[1:]
    seen = {row.spec.label: inspect(row, build, check) for row in instrumented}
    for row in instrumented:  # warm every row once
        _timed(row, build, 3)
    diffs: dict[str, list[tuple[float, float]]] = {row.spec.label: [] for row in instrumented}
    base: list[tuple[float, float]] = []
    leaked = 0
    if not instrumented:  # the bare agent's time alone
        base = [_timed(bare, build, n) for _ in range(rounds)]
    for number in range(rounds if instrumented else 0):
        order = instrumented[:]
        random.shuffle(order)
        for row in order:
            before = bare.sink.spans.count
            alone = _timed(bare, build, n)
            leaked += bare.sink.spans.count - before
            base.append(alone)
            wall, cpu = _timed(row, build, n)
            diffs[row.spec.label].append((wall - alone[0], cpu - alone[1]))
        if number % max(1, rounds // 5) == 0:
            print(f"round {number + 1}/{rounds}", file=sys.stderr)
    return {
        "bare_us": statistics.median(b[0] for b in base),
        "bare_cpu_us": statistics.median(b[1] for b in base),
        "spans_in_bare_blocks": leaked,
        "rows": {
            label: {
                "run_us": statistics.median(w for w, _ in d),
                "quartiles_us": _quartiles([w for w, _ in d]),
                "cpu_us": statistics.median(c for _, c in d),
                "cpu_quartiles_us": _quartiles([c for _, c in d]),
                **seen[label],
            }
            for label, d in diffs.items()
        },
    }


def _quartiles(values: list[float]) -> list[float]:
    return statistics.quantiles(values, n=4) if len(values) > 1 else values * 3


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def _version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "-"


def _ratio(value: float, ours: float | None) -> str:
    return f"{value / ours:.2f}" if ours else "n/a"


def report(result: dict[str, Any], config: dict[str, Any]) -> str:
    rows = result["rows"]
    ours = rows.get(LLMTAP, {})
    lines = [
        "# LangGraph agent run: added time and spans per run",
        "",
        f"{config['date']}, Python {config['python']}, {config['cpu']}, "
        f"load average {config['load_before']} before / {config['load_after']} after. "
        f"{config['rounds']} rounds of {config['runs']} agent runs per row, each block paired "
        "with a bare block (the agent alone) just before it, rows shuffled every round; "
        "added µs = median of the paired differences [quartiles]; CPU = the process's CPU "
        "time (all threads), the same pairing. Content capture off in every row. One run = "
        "`create_react_agent(ChatOpenAI, 2 tools).invoke(...)`: 3 chat completions "
        "(tool call, tool call, final answer), 2 tool executions.",
        "",
        f"Agent alone: {result['bare_us']:.0f} µs per run ({result['bare_cpu_us']:.0f} µs "
        "CPU). Spans exported during the bare blocks (after every uninstrument): "
        f"{result['spans_in_bare_blocks']}.",
        "",
        "| row | spans per run | traces per run | added µs per run [quartiles] | × llmtap "
        "| added CPU µs per run [quartiles] | × llmtap |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in rows.items():
        q1, _, q3 = row["quartiles_us"]
        c1, _, c3 = row["cpu_quartiles_us"]
        lines.append(
            f"| {label} | {row['spans']} | {row['traces']} "
            f"| {row['run_us']:.0f} [{q1:.0f}, {q3:.0f}] "
            f"| {_ratio(row['run_us'], ours.get('run_us'))} "
            f"| {row['cpu_us']:.0f} [{c1:.0f}, {c3:.0f}] | {_ratio(row['cpu_us'], ours.get('cpu_us'))} |"
        )
    for label, reason in config["missing"].items():
        lines.append(f"| {label} | – | – | {reason} | – | – | – |")
    facts = list(FACTS)
    lines += [
        "",
        "What one run's spans hold (found / expected; values looked for in every span's "
        "attributes and name, semconv's `tool_call` finish reason counted as OpenAI's "
        "`tool_calls`; token counts only on model-call spans):",
        "",
        "| row | model call / tool / agent / workflow / other spans | " + " | ".join(facts) + " |",
        "|---|---|" + "---:|" * len(facts),
    ]
    for label, row in rows.items():
        c = row["categories"]
        split = " / ".join(str(c.get(k, 0)) for k in CATEGORIES)
        found = " | ".join(row["facts"][f] for f in facts)
        lines.append(f"| {label} | {split} | {found} |")
    lines += [
        "",
        "Left patched by `uninstrument()` (looked for after every block, put back by the "
        "benchmark):",
        "",
    ]
    for label in rows:
        left = result["left_patched"].get(label, {})
        names = ", ".join(f"`{k}`" for k in sorted(left)) or "nothing"
        lines.append(f"- {label}: {names}")
    lines += ["", "## Spans of one run, per row", ""]
    for label, row in rows.items():
        lines += [f"### {label}", "", "```", *row["tree"], "```", ""]
    lines += [
        "Versions: " + ", ".join(f"{k} {v}" for k, v in config["versions"].items()) + ".",
        f"llmtap's LangChain instrumentation: {config['llmtap_langchain']}; "
        f"llmtap imported from {config['llmtap_path']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a wiring check, not figures")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=10, help="agent runs per block")
    keys = [spec.key for spec in ROWS[1:]]
    parser.add_argument(
        "--rows", default=",".join(keys), help=f"comma-separated, of {','.join(keys)}"
    )
    args = parser.parse_args()
    os.environ.update(CONTENT_OFF_ENV)
    rounds, runs = (2, 3) if args.quick else (args.rounds, args.runs)
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    sink = Sink()
    chosen = [ROWS[0]] + [spec for spec in ROWS[1:] if spec.key in args.rows.split(",")]
    missing = {spec.label: why for spec in chosen if (why := available(spec))}
    for why in missing.values():
        print(why, file=sys.stderr)
    build, check = make_agent()
    check(build()())  # the framework's lazy imports are done before the snapshot
    patches = Patches()
    rows = [Row(spec, sink, patches) for spec in chosen if spec.label not in missing]
    result = measure(rows, build, check, rounds, runs)
    result["left_patched"] = {k: dict(v) for k, v in patches.left.items() if v}
    packages = ["llmtap", "langchain-core", "langgraph", "langchain-openai", "openai", "httpx2"]
    packages += [d for spec in ROWS for d in spec.distributions]
    packages += ["opentelemetry-sdk", "opentelemetry-instrumentation"]
    config = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cpu": _cpu(),
        "load_before": load_before,
        "load_after": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "rounds": rounds,
        "runs": runs,
        "missing": missing,
        "llmtap_langchain": llmtap_source(),
        "llmtap_path": str(Path(importlib.import_module("llmtap").__file__ or "?").parent),
        "versions": {p: _version(p) for p in dict.fromkeys(packages)},
    }
    text = report(result, config)
    print(text)
    if not args.quick:
        out = HERE / "results"
        (out / "framework_overhead.md").write_text(text)
        document = {"config": config, "result": result}
        (out / "framework_overhead.json").write_text(json.dumps(document, indent=1) + "\n")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
