"""Added cost of the app-side span pipeline (cost + redaction) per GenAI span.

One process, rows interleaved: the SDK's plain ``BatchSpanProcessor`` vs llmtap's
``PipelineProcessor`` (stages on its own worker) with no stages, cost only, redaction only,
and cost + redaction. Both sides export to the same in-memory sink. Reported:

- app-thread µs per span: what ``span.end()`` costs the application (the hot path);
- pipeline µs per span: the stages' CPU on the worker, measured by draining the queue;
- end-to-end spans/s through the pipeline.

Spans are realistic chat spans: ~20 GenAI attributes plus 1-8 KB of message JSON with some
PII (content capture on), or no content (the default).

    python bench/pipeline_overhead.py [--spans 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from llmtap.pipeline.cost import CostStage
from llmtap.pipeline.redact import RedactionStage
from llmtap.sdk.processor import PipelineProcessor, exporter_queue

WORDS = [
    "please",
    "check",
    "my",
    "order",
    "status",
    "and",
    "tell",
    "me",
    "when",
    "the",
    "refund",
    "arrives",
    "thanks",
]
PII = ["jane.doe@example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "10.1.2.3"]


class Sink(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans):
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def message_json(rng: random.Random, size: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < size:
        words.append(rng.choice(PII) if rng.random() < 0.01 else rng.choice(WORDS))
    text = " ".join(words)
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])


def attributes(rng: random.Random, content: bool) -> dict:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):x}",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": rng.randint(50, 4000),
        "gen_ai.usage.output_tokens": rng.randint(10, 800),
        "gen_ai.usage.cache_read.input_tokens": 32,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.request.stream": False,
        "server.address": "api.openai.com",
        "server.port": 443,
        "openai.api.type": "chat_completions",
        "user.id": "user-7",
        "llmtap.feature": "support",
    }
    if content:
        attrs["gen_ai.input.messages"] = message_json(rng, rng.randint(1000, 8000))
        attrs["gen_ai.output.messages"] = message_json(rng, rng.randint(200, 1500))
    return attrs


def rows():
    return {
        "batch (plain SDK)": lambda sink: BatchSpanProcessor(sink, max_queue_size=100_000),
        "llmtap, no stages": lambda sink: PipelineProcessor(
            [], [exporter_queue("s", sink, max_items=100_000)], max_items=100_000
        ),
        "llmtap, cost": lambda sink: PipelineProcessor(
            [CostStage()], [exporter_queue("s", sink, max_items=100_000)], max_items=100_000
        ),
        "llmtap, redaction": lambda sink: PipelineProcessor(
            [RedactionStage()], [exporter_queue("s", sink, max_items=100_000)], max_items=100_000
        ),
        "llmtap, cost + redaction": lambda sink: PipelineProcessor(
            [CostStage(), RedactionStage()],
            [exporter_queue("s", sink, max_items=100_000)],
            max_items=100_000,
        ),
    }


def measure(make, spans: list[dict]) -> tuple[float, float]:
    sink = Sink()
    processor = make(sink)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    start = time.perf_counter()
    for attrs in spans:
        tracer.start_span("chat gpt-4o-mini", attributes=attrs).end()
    app = time.perf_counter() - start
    processor.force_flush(60_000)
    total = time.perf_counter() - start
    assert sink.count == len(spans), (sink.count, len(spans))
    provider.shutdown()
    return app / len(spans) * 1e6, total / len(spans) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(20261122)
    results: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for content in (False, True):
        spans = [attributes(rng, content) for _ in range(args.spans)]
        for _ in range(args.rounds):
            for name, make in rows().items():
                results.setdefault((name, content), []).append(measure(make, spans))
    lines = [
        "# Span pipeline overhead (cost + redaction) vs the plain batch processor",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, CPython "
        f"{platform.python_version()}, {args.spans} spans x {args.rounds} interleaved rounds, "
        "median of rounds. `app µs` = time in `span.end()` on the application thread; "
        "`total µs` = until every span reached the sink (stages included).",
        "",
        "| row | content | app µs/span | total µs/span | spans/s end-to-end |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (name, content), values in results.items():
        app = statistics.median(v[0] for v in values)
        total = statistics.median(v[1] for v in values)
        label = "1-8 KB messages" if content else "none"
        lines.append(f"| {name} | {label} | {app:.1f} | {total:.1f} | {1e6 / total:,.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).parent / "results" / "pipeline_overhead.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
