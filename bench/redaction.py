#!/usr/bin/env python
"""Redaction throughput, per-span latency and accuracy: llmtap vs Microsoft Presidio.

One process measures every row on the same spans: chat spans of 1-8 KB of GenAI messages
JSON (``gen_ai.input.messages``/``gen_ai.output.messages``) in many locales with PII
sprinkled in from the labelled corpus of ``tests/pipeline/pii_corpus.py``. The spans are
cut into rounds and every round runs each row on its share in a shuffled order, so a slow
drift of the machine hits every row alike.

Rows:

- ``llmtap``: ``RedactionStage().apply(span)`` (every detector, mask mode; ``engine: auto``,
  which is the hyperscan pre-filter when ``llmtap[redaction-fast]`` is installed, as here).
- ``llmtap_python``: the same with ``engine: python`` (no compiled dependency).
- ``presidio``: the same walk over the span (same allow-listed keys skipped, the same JSON
  attributes parsed, string leaves of 6+ characters analyzed, changed JSON re-serialized),
  with Presidio's analyzer restricted to the recognizers for the types both cover
  (email, phone, credit card, US SSN, IBAN, IP) on a blank spaCy pipeline
  (``spacy.blank("en")``, no model) and the anonymizer's ``replace`` operator.
- ``presidio_all_regions``: the same, with Presidio's phone recognizer asked for every
  region of the corpus instead of its default eight.
- ``presidio_no_phone``: the same without the phone recognizer (pure regex recognizers).

Accuracy: recall and precision per type of each tool on the labelled corpus (a seed the
unit tests do not use), with Presidio's types mapped to llmtap's.

    bench/.venv-redaction/bin/python bench/redaction.py           # full run (~5 min)
    bench/.venv-redaction/bin/python bench/redaction.py --quick   # smoke run (~1 min)

Writes a Markdown table to stdout and bench/results/redaction.{md,json}.
See bench/REDACTION.md for the method and the figures. ``bench/run_redaction.sh`` builds the
environment and runs this.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import random
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "pipeline"))
sys.path.insert(0, str(REPO / "src"))

from faker import Faker  # noqa: E402
from pii_corpus import LOCALES, TYPES, Sample, TypeScore, build_corpus, score  # noqa: E402

from llmtap.pipeline.redact import JSON_ATTRIBUTES, RedactionConfig, RedactionStage  # noqa: E402
from llmtap.pipeline.span import SpanData  # noqa: E402

CORPUS_SEED = 4242  # not the unit tests' seed
SPAN_SEED = 7
PRESIDIO_TO_LLMTAP = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
}
CORPUS_REGIONS = (
    "US",
    "GB",
    "DE",
    "FR",
    "ES",
    "IT",
    "NL",
    "BR",
    "JP",
    "IN",
    "CA",
    "AU",
    "PL",
    "SE",
)


# ---------------------------------------------------------------------------------------
# Spans
# ---------------------------------------------------------------------------------------


# Workloads: the chance that a piece of message content is a PII sentence from the corpus
# rather than a paragraph of locale prose: 0.08 gives a PII sentence every 2 KB or so
# ("sprinkled"), 0.4 one every 400 characters ("dense"), 0 none at all ("clean").
WORKLOADS = {"sprinkled": 0.08, "dense": 0.4, "clean": 0.0}


def make_spans(
    n: int, corpus: tuple[Sample, ...], pii_share: float = 0.15, seed: int = SPAN_SEED
) -> list[SpanData]:
    """``n`` chat spans, each with 1-8 KB of messages JSON, PII sentences making up
    ``pii_share`` of the content pieces (one span in five has none)."""
    rng = random.Random(seed)
    fakers = {}
    for i, loc in enumerate(LOCALES):
        fk = Faker(loc)
        fk.seed_instance(seed + i)
        fakers[loc] = fk
    pii = [s for s in corpus if s.kind == "pii"]
    spans = []
    for i in range(n):
        target = rng.randrange(1024, 8192)
        clean = pii_share == 0 or rng.random() < 0.2
        locale = rng.choice(LOCALES)
        fk = fakers[locale]
        messages: list[dict[str, Any]] = []
        size = 0
        while size < target:
            role = "user" if len(messages) % 2 == 0 else "assistant"
            parts = []
            chunk = []
            while sum(map(len, chunk)) < rng.randrange(200, 900):
                if not clean and rng.random() < pii_share:
                    chunk.append(rng.choice(pii).text)
                else:
                    chunk.append(fk.paragraph(nb_sentences=rng.randrange(1, 4)))
            parts.append({"type": "text", "content": " ".join(chunk)})
            messages.append({"role": role, "parts": parts})
            size = len(json.dumps(messages, ensure_ascii=False).encode())
        output = messages.pop() if len(messages) > 1 else {"role": "assistant", "parts": []}
        output["role"] = "assistant"
        output["finish_reason"] = "stop"
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):016x}",
            "gen_ai.usage.input_tokens": rng.randrange(100, 3000),
            "gen_ai.usage.output_tokens": rng.randrange(10, 800),
            "server.address": "api.openai.com",
            "user.id": fk.user_name(),
            "gen_ai.input.messages": json.dumps(messages, ensure_ascii=False),
            "gen_ai.output.messages": json.dumps([output], ensure_ascii=False),
        }
        spans.append(SpanData(name="chat gpt-4o-mini", attributes=attrs, trace_id=i + 1))
    return spans


def content_bytes(span: SpanData) -> int:
    return sum(len(v.encode()) for v in span.attributes.values() if isinstance(v, str))


def fresh(span: SpanData) -> SpanData:
    return SpanData(
        name=span.name,
        attributes=dict(span.attributes),
        events=copy.deepcopy(span.events),
        status_message=span.status_message,
    )


# ---------------------------------------------------------------------------------------
# Presidio
# ---------------------------------------------------------------------------------------


def presidio_versions() -> dict[str, str]:
    out = {}
    for pkg in ("presidio-analyzer", "presidio-anonymizer", "spacy", "phonenumbers", "hyperscan"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def presidio_analyzer(phone_regions: tuple[str, ...] | None, with_phone: bool = True) -> Any:
    """An AnalyzerEngine with only the pattern recognizers of the shared types on a blank
    spaCy pipeline (no model to download)."""
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    # EmailRecognizer validates domains with tldextract, which would fetch the public
    # suffix list over the network on first use; give it the list bundled with tldextract.
    offline = tldextract.TLDExtract(suffix_list_urls=())
    email_recognizer.tldextract = types.SimpleNamespace(extract=offline)

    class BlankSpacyNlpEngine(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    nlp = BlankSpacyNlpEngine()
    nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    recognizers = [
        EmailRecognizer(),
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
    ]
    if with_phone:
        if phone_regions is None:
            recognizers.append(PhoneRecognizer())
        else:
            recognizers.append(PhoneRecognizer(supported_regions=phone_regions))
    for r in recognizers:
        registry.add_recognizer(r)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])


class PresidioStage:
    """Presidio doing what the llmtap stage does, span for span."""

    def __init__(self, analyzer: Any, allowed: Callable[[str], bool]) -> None:
        from presidio_anonymizer import AnonymizerEngine

        self.analyzer = analyzer
        self.anonymizer = AnonymizerEngine()
        self.allowed = allowed
        self.entities = list(PRESIDIO_TO_LLMTAP)

    def text(self, value: str) -> str:
        if len(value) < 6:
            return value
        results = self.analyzer.analyze(value, language="en", entities=self.entities)
        if not results:
            return value
        return self.anonymizer.anonymize(value, results).text

    def _walk(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, list):
            return [self._walk(v) for v in node]
        if isinstance(node, dict):
            return {k: self._walk(v) for k, v in node.items()}
        return node

    def apply(self, span: SpanData) -> None:
        attrs = span.attributes
        for key, value in list(attrs.items()):
            if not isinstance(value, str) or self.allowed(key):
                continue
            if key in JSON_ATTRIBUTES:
                try:
                    doc = json.loads(value)
                except ValueError:
                    attrs[key] = self.text(value)
                    continue
                new = self._walk(doc)
                if new != doc:
                    attrs[key] = json.dumps(new, ensure_ascii=False, separators=(",", ":"))
            else:
                attrs[key] = self.text(value)

    def find(self, text: str) -> list[tuple[int, int, str]]:
        results = self.analyzer.analyze(text, language="en", entities=self.entities)
        return [(r.start, r.end, PRESIDIO_TO_LLMTAP[r.entity_type]) for r in results]


# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------


def measure(
    rows: dict[str, Callable[[SpanData], None]], spans: list[SpanData], rounds: int, seed: int
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Per-span nanoseconds of every row, wall clock and the thread's CPU time, rows
    interleaved round by round."""
    rng = random.Random(seed)
    lat: dict[str, list[int]] = {name: [] for name in rows}
    cpu: dict[str, list[int]] = {name: [] for name in rows}
    chunk = max(1, len(spans) // rounds)
    for r in range(rounds):
        part = spans[r * chunk : (r + 1) * chunk] if r < rounds - 1 else spans[r * chunk :]
        order = list(rows)
        rng.shuffle(order)
        for name in order:
            apply = rows[name]
            copies = [fresh(s) for s in part]
            out = lat[name]
            out_cpu = cpu[name]
            for s in copies:
                c0 = time.thread_time_ns()
                t0 = time.perf_counter_ns()
                apply(s)
                out.append(time.perf_counter_ns() - t0)
                out_cpu.append(time.thread_time_ns() - c0)
        print(f"[bench] round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return lat, cpu


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k] / 1000.0


def summarize(lat: list[int], cpu: list[int], nbytes: int) -> dict[str, float]:
    total_s = sum(lat) / 1e9
    return {
        "cpu_spans_per_s": len(cpu) / (sum(cpu) / 1e9),
        "spans": len(lat),
        "spans_per_s": len(lat) / total_s,
        "mb_per_s": nbytes / total_s / 1e6,
        "p50_us": pct(lat, 0.50),
        "p99_us": pct(lat, 0.99),
        "mean_us": statistics.fmean(lat) / 1000.0,
    }


def accuracy(
    find: Callable[[str], list[tuple[int, int, str]]], corpus: tuple[Sample, ...]
) -> dict[str, TypeScore]:
    return score(corpus, find)


def fmt_acc(s: TypeScore | None, covered: bool = True) -> str:
    if s is None or not covered:
        return "—"
    return f"{s.recall:.3f} / {s.precision:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--spans", type=int, default=300, help="spans per workload")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="40 spans, 2 rounds, a small corpus")
    ap.add_argument("--no-presidio", action="store_true", help="llmtap only")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    if args.quick:
        args.spans, args.rounds = 40, 2

    corpus_args: dict[str, Any] = {"seed": CORPUS_SEED}
    if args.quick:
        corpus_args.update(per_type=60, near_miss_rounds=8, clean=30)
    corpus = build_corpus(**corpus_args)
    span_corpus = build_corpus(seed=CORPUS_SEED + 1)
    workloads = {
        name: make_spans(args.spans, span_corpus, share, seed=SPAN_SEED + k)
        for k, (name, share) in enumerate(WORKLOADS.items())
    }

    stage = RedactionStage()
    rows: dict[str, Callable[[SpanData], None]] = {"llmtap": stage.apply}
    python_stage = RedactionStage(RedactionConfig(engine="python"))
    if stage.redactor.detectors.prefilter is not None:
        rows["llmtap_python"] = python_stage.apply
    finders: dict[str, Callable[[str], list[tuple[int, int, str]]]] = {
        "llmtap": stage.redactor.detectors.find
    }
    if not args.no_presidio:
        allowed = stage.redactor.key_allowed
        configs = {
            "presidio": (None, True),
            "presidio_all_regions": (CORPUS_REGIONS, True),
            "presidio_no_phone": (None, False),
        }
        for name, (regions, with_phone) in configs.items():
            p = PresidioStage(presidio_analyzer(regions, with_phone), allowed)
            rows[name] = p.apply
            finders[name] = p.find

    # warm-up: every row once over a few spans (imports, caches, spaCy vocab)
    for apply in rows.values():
        for s in workloads["sprinkled"][:5]:
            apply(fresh(s))

    speed: dict[str, dict[str, dict[str, float]]] = {}
    info: dict[str, dict[str, Any]] = {}
    for wname, spans in workloads.items():
        nbytes = sum(content_bytes(s) for s in spans)
        sizes = [
            len(s.attributes["gen_ai.input.messages"]) + len(s.attributes["gen_ai.output.messages"])
            for s in spans
        ]
        check = fresh(spans[0])
        stage.apply(check)
        json.loads(check.attributes["gen_ai.input.messages"])  # still valid JSON
        found = 0
        for s in spans:
            c = fresh(s)
            stage.apply(c)
            found += c.attributes["llmtap.redaction.count"]
        info[wname] = {
            "spans": len(spans),
            "bytes": nbytes,
            "json_min": min(sizes),
            "json_max": max(sizes),
            "json_median": int(statistics.median(sizes)),
            "findings_per_span": found / len(spans),
        }
        print(
            f"[bench] {wname}: {len(spans)} spans, {nbytes / 1e6:.2f} MB of string attributes, "
            f"messages JSON {min(sizes)}-{max(sizes)} B, {found / len(spans):.1f} findings/span",
            file=sys.stderr,
        )
        lat, cpu = measure(rows, spans, args.rounds, seed=1)
        speed[wname] = {name: summarize(v, cpu[name], nbytes) for name, v in lat.items()}

    print("[bench] accuracy on the corpus", file=sys.stderr)
    acc: dict[str, dict[str, TypeScore]] = {}
    for name, find in finders.items():
        if name == "presidio_no_phone":
            continue
        acc[name] = accuracy(find, corpus)

    # llmtap output must be what the unit tests promise: valid JSON, same structure
    check = fresh(spans[0])
    stage.apply(check)
    json.loads(check.attributes["gen_ai.input.messages"])

    lines = [
        "# Redaction: llmtap vs Presidio",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}; "
        f"{args.rounds} interleaved rounds per workload; accuracy on {len(corpus)} labelled "
        f"corpus samples (seed {CORPUS_SEED}).",
    ]
    for wname, table in speed.items():
        w = info[wname]
        base = table["llmtap"]["spans_per_s"]
        lines += [
            "",
            f"**{wname}** — {w['spans']} spans, {w['bytes'] / 1e6:.2f} MB of string attributes, "
            f"messages JSON {w['json_min']}-{w['json_max']} B (median {w['json_median']}), "
            f"{w['findings_per_span']:.1f} llmtap findings per span",
            "",
            "| row | spans/s | MB/s | p50 µs/span | p99 µs/span | llmtap speed-up "
            "| spans/s of CPU | speed-up on CPU |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        base_cpu = table["llmtap"]["cpu_spans_per_s"]
        for name, s in table.items():
            ratio = "—" if name == "llmtap" else f"{base / s['spans_per_s']:.1f}x"
            ratio_cpu = "—" if name == "llmtap" else f"{base_cpu / s['cpu_spans_per_s']:.1f}x"
            lines.append(
                f"| {name} | {s['spans_per_s']:,.0f} | {s['mb_per_s']:.2f} | {s['p50_us']:,.0f} | "
                f"{s['p99_us']:,.0f} | {ratio} | {s['cpu_spans_per_s']:,.0f} | {ratio_cpu} |"
            )
    lines += [
        "",
        "Recall / precision per type on the corpus (— = the tool has no detector for it):",
        "",
        "| type | " + " | ".join(acc) + " |",
        "| --- | " + " | ".join("---:" for _ in acc) + " |",
    ]
    for kind in TYPES:
        cells = [fmt_acc(a.get(kind), n == "llmtap" or kind != "SECRET") for n, a in acc.items()]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in presidio_versions().items())]
    report = "\n".join(lines) + "\n"
    print(report)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "redaction.md").write_text(report)
    raw = {
        "workloads": info,
        "rounds": args.rounds,
        "speed": speed,
        "accuracy": {
            name: {
                k: {
                    "recall": v.recall,
                    "precision": v.precision,
                    "tp": v.tp,
                    "fn": v.fn,
                    "fp": v.fp,
                }
                for k, v in a.items()
            }
            for name, a in acc.items()
        },
        "versions": presidio_versions(),
        "quick": args.quick,
    }
    (args.out / "redaction.json").write_text(json.dumps(raw, indent=2) + "\n")


if __name__ == "__main__":
    main()
