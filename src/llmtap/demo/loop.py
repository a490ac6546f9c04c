"""The demo's service side: an llmtap service in this process, on loopback, with an embedded
configuration (rule evaluators always; the LLM judge when an endpoint is given), forwarding
to a JSON-lines file the demo reads back for its terminal view, and to Jaeger and Phoenix
when asked (Phoenix also gets every verdict and the user's feedback as span annotations of
the judged spans, from a ``phoenix`` evaluation sink)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmtap import semconv
from llmtap.export.console import format_usd
from llmtap.pipeline.cost import cost_total
from llmtap.pipeline.span import SpanData

RULES: list[dict[str, Any]] = [
    {"evaluator": "pii", "name": "no_pii_in_answer"},
    {"evaluator": "truncation"},
    {"evaluator": "refusal"},
    {
        "evaluator": "lexical_groundedness",
        "name": "grounded",
        "when": {"llmtap.feature": "support"},
    },
    {"evaluator": "latency_budget", "max_s": 2.0, "target": "root"},
    {
        "evaluator": "regex",
        "name": "gives_a_time_frame",
        "pattern": r"\b\d+\s+(business\s+)?days?\b",
        "when": {"feedback": "negative"},
    },
]
JUDGE_RULES: list[dict[str, Any]] = [
    {"evaluator": "faithfulness", "when": {"llmtap.feature": "support"}},
    {"evaluator": "answer_relevance", "when": {"feedback": "negative"}},
]


def phoenix_sink(traces_url: str) -> dict[str, Any]:
    """The ``service.evaluation_sinks`` entry for the Phoenix at ``traces_url``: its base URL."""
    from llmtap.service.sinks.phoenix import base_url

    return {"sink": "phoenix", "endpoint": base_url(traces_url)}


def demo_config(
    folder: Path,
    *,
    jaeger: str | None = None,
    phoenix: str | None = None,
    judge: dict[str, Any] | None = None,
) -> Path:
    """Write the demo's ``llmtap.yaml`` into ``folder`` and return its path (``jaeger``: an
    OTLP/gRPC endpoint, ``phoenix``: Phoenix's OTLP/HTTP traces URL, each also forwarded to;
    Phoenix also gets the verdicts and the user feedback as span annotations, through a
    ``phoenix`` evaluation sink)."""
    export: list[dict[str, Any]] = [{"preset": "file", "path": str(folder / "traces.jsonl")}]
    if jaeger:
        export.append({"preset": "jaeger", "endpoint": jaeger})
    if phoenix:
        export.append({"preset": "phoenix", "endpoint": phoenix})
    rules = RULES + (JUDGE_RULES if judge else [])
    config = {
        "service_name": "llmtap-demo",
        "export": export,
        "service": {
            "grpc_address": "127.0.0.1:0",
            "http_address": "off",
            "metrics_address": "off",
            **({"evaluation_sinks": [phoenix_sink(phoenix)]} if phoenix else {}),
        },
        "judge": {
            "trace_idle_s": 0.3,
            "trace_max_wait_s": 3.0,
            "review_queue": str(folder / "review.jsonl"),
            "rules": rules,
            **({"model": judge} if judge else {}),
        },
    }
    path = folder / "llmtap.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class DemoService:
    app: Any
    judging: Any
    folder: Path

    @classmethod
    def start(cls, config_path: Path) -> DemoService:
        from llmtap.config_file import load_config
        from llmtap.service.app import ServiceApp, service_config_of
        from llmtap.service.judging import Judging

        cfg = load_config(str(config_path))
        app = ServiceApp(cfg, service_config_of(cfg))
        sinks = app.evaluation_sinks  # verdicts as a backend's own evaluations
        judging = Judging.from_config(
            cfg,
            emit=app.submit,
            on_verdict=sinks.on_verdict if sinks is not None else None,
            metrics_registry=app.metrics,
        )
        app.on_spans(judging.on_spans)
        app.start()
        judging.start()
        return cls(app, judging, config_path.parent)

    @property
    def otlp_endpoint(self) -> str:
        return f"http://{self.app.grpc.address}"

    def wait_judged(self, timeout_s: float = 30.0, settle_s: float = 0.6) -> None:
        """Until no trace is open, no evaluation waits or runs, for ``settle_s`` in a row."""
        deadline = time.monotonic() + timeout_s
        quiet_since = None
        while time.monotonic() < deadline:
            s = self.judging.stats()
            busy = s["open_traces"] or s["queue_depth"] or s["in_flight"] or s["inbox_spans"]
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle_s:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        self.judging.stop(10)
        self.app.stop(10)

    def spans(self) -> list[SpanData]:
        from llmtap.export.file import read_otlp_json_lines
        from llmtap.service.spans import attributes_of, to_span_data

        out: list[SpanData] = []
        path = self.folder / "traces.jsonl"
        if not path.exists():
            return out
        for _, request, _ in read_otlp_json_lines(path):
            for rs in request.resource_spans if request is not None else ():
                resource = attributes_of(rs.resource.attributes)
                for ss in rs.scope_spans:
                    out.extend(to_span_data(span, resource) for span in ss.spans)
        return out

    def review_entries(self) -> list[dict[str, Any]]:
        path = self.folder / "review.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(spans: Sequence[SpanData]) -> list[str]:
    """Totals under the trees: cost, tokens, redactions, verdicts per evaluation."""
    cost = sum(cost_total(s.attributes) or 0.0 for s in spans)
    tokens = sum(
        int(s.attributes.get(k) or 0)
        for s in spans
        for k in (semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS)
    )
    redacted = sum(int(s.attributes.get(semconv.LLMTAP_REDACTION_COUNT) or 0) for s in spans)
    verdicts: Counter[tuple[str, str]] = Counter()
    for s in spans:
        name = s.attributes.get(semconv.EVALUATION_NAME)
        if name is None:
            continue
        source = s.attributes.get(semconv.LLMTAP_EVALUATION_SOURCE, "")
        if source == "user":
            outcome = f"user {s.attributes.get(semconv.LLMTAP_FEEDBACK_LABEL, '?')}"
        elif semconv.ERROR_TYPE in s.attributes:
            outcome = f"error {s.attributes[semconv.ERROR_TYPE]}"
        else:
            passed = s.attributes.get(semconv.LLMTAP_EVALUATION_PASSED)
            outcome = {True: "pass", False: "fail"}.get(passed, "scored")
        verdicts[(str(name), outcome)] += 1
    lines = [
        f"total: {format_usd(cost)} over {tokens} tokens; {redacted} PII finding(s) redacted "
        "in the app",
        "verdicts:",
    ]
    lines += [f"  {name:<22} {outcome:<18} x{n}" for (name, outcome), n in sorted(verdicts.items())]
    return lines
