"""``llmtap compare``: did a change (a prompt version, a model) help or hurt? Two groups of
exported spans, metric by metric, with confidence intervals (:mod:`llmtap.evals.compare`).

Exit codes: 0 (a report), 1 with ``--fail-on-worse`` when a metric is worse, 2 on bad input
(files, Jaeger, groups, flags).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_WORSE, EXIT_INPUT = 0, 1, 2


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return int(text)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two prompt versions (models, features) in exported spans",
        description="Group exported spans by an attribute (default: the prompt version) and "
        "compare two groups: pass rate per evaluation, negative-feedback rate, error rate, "
        "cost and tokens per model call, model-call latency p50 and p95, each with a 95% "
        "confidence interval and a verdict (better, worse, can't tell yet). Spans come from "
        "OTLP JSON-lines files (the file export preset) or from Jaeger's query API.",
    )
    p.add_argument("files", nargs="*", metavar="SPANS.jsonl",
                   help="files or glob patterns written by the file preset")  # fmt: skip
    p.add_argument("--jaeger", metavar="URL", help="Jaeger's query address, "
                   "e.g. http://localhost:16686 (with --service)")  # fmt: skip
    p.add_argument("--service", metavar="NAME", help="the service whose traces to fetch")
    p.add_argument("--lookback", default="7d", metavar="AGE",
                   help="traces started this recently (s, m, h, d, w; default 7d)")  # fmt: skip
    p.add_argument("--limit", type=_positive_int, default=2000, metavar="N",
                   help="at most N traces from Jaeger (default 2000)")  # fmt: skip
    p.add_argument("--by", default="prompt.version", metavar="KEY",
                   help="group by prompt.version (default), model, feature, or any attribute "
                   "or resource attribute name")  # fmt: skip
    p.add_argument("--baseline", metavar="GROUP",
                   help="the group to compare against (default: the one seen before the "
                   "candidate)")  # fmt: skip
    p.add_argument("--candidate", metavar="GROUP",
                   help="the group under test (default: the one seen last)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--fail-on-worse", action="store_true",
                   help="exit 1 when any metric is worse (a CI gate)")  # fmt: skip
    p.add_argument("--resamples", type=_positive_int, default=1000, metavar="N",
                   help="bootstrap resamples for means and percentiles (default 1000)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")
    p.set_defaults(handler=compare_command)


def _fail(message: str) -> int:
    print(f"llmtap compare: {message}", file=sys.stderr)
    return EXIT_INPUT


def _spans(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    from llmtap.evals.span_sources import fetch_jaeger, parse_lookback, read_span_files

    spans, problems = read_span_files(args.files) if args.files else ([], [])
    notes = problems[:10]
    if len(problems) > 10:
        notes.append(f"... and {len(problems) - 10} more line(s) that are not OTLP JSON")
    if args.jaeger:
        found, more = fetch_jaeger(
            args.jaeger, args.service, lookback_s=parse_lookback(args.lookback), limit=args.limit
        )
        spans += found
        notes += more
    return spans, notes


def compare_command(args: argparse.Namespace) -> int:
    from llmtap.evals.compare import CompareError, compare, render
    from llmtap.evals.span_sources import SpanSourceError

    if not args.files and not args.jaeger:
        return _fail("give span files (the file preset's JSON lines) or --jaeger URL --service")
    if bool(args.jaeger) != bool(args.service):
        return _fail("--jaeger and --service go together")
    try:
        spans, notes = _spans(args)
        for note in notes:
            print(f"llmtap compare: {note}", file=sys.stderr)
        result = compare(spans, by=args.by, baseline=args.baseline, candidate=args.candidate,
                         resamples=args.resamples, seed=args.seed)  # fmt: skip
    except (SpanSourceError, CompareError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        print(render(result))
    worse = result.worse()
    if args.fail_on_worse and worse:
        names = ", ".join(r.metric for r in worse)
        print(f"llmtap compare: worse: {names}", file=sys.stderr)
        return EXIT_WORSE
    return EXIT_OK
