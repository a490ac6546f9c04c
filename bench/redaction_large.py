#!/usr/bin/env python
"""Redaction of large values full of PII: scan time against size, and the time the service
takes to answer one request carrying a 10 MB attribute of emails.

Texts: ``emails`` ("user17.name@example17.com wrote ...", one email per ~33 characters)
and ``ips`` ("10.17.0.1 ...", one IPv4 address per ~10 characters), cut to each size.

- ``scan``: ``Redactor.redact`` on one text of each size, with no size cap and no time
  budget (``max_value_chars`` raised, ``budget_s: 0``): the detectors' own speed. Linear
  work shows as a constant s/MB.
- ``request``: ``ServiceApp.ingest`` of one OTLP request whose only span has the 10 MB
  email text as one attribute, with the default budget (the value is over
  ``redaction.max_value_chars`` and replaced unscanned) and with the budget off.

    PYTHONPATH=src python bench/redaction_large.py [--sizes 0.25,1,4] [--src DIR] [--out DIR]

``--src`` measures another checkout's ``src`` (the request rows without a budget when that
code has none). Writes a Markdown table to stdout and ``redaction_large.md`` under
``--out`` when given.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

PATTERNS: dict[str, Callable[[int], str]] = {
    "emails": lambda i: f"user{i}.name@example{i % 97}.com wrote ",
    "ips": lambda i: f"10.{i % 256}.{i // 256 % 256}.1 ",
}


def text_of(kind: str, size: int) -> str:
    make = PATTERNS[kind]
    parts, n, i = [], 0, 0
    while n < size:
        word = make(i)
        parts.append(word)
        n += len(word)
        i += 1
    return "".join(parts)[:size]


def scan_rows(sizes: list[float]) -> list[str]:
    from llmtap.pipeline.redact import RedactionConfig, Redactor

    fields = RedactionConfig.__dataclass_fields__
    config = RedactionConfig(
        **({"max_value_chars": 10**9, "budget_s": 0} if "max_value_chars" in fields else {})
    )
    redactor = Redactor(config)
    rows = []
    for kind in PATTERNS:
        for mb in sizes:
            text = text_of(kind, int(mb * 1_000_000))
            counts: dict[str, int] = {}
            start = time.perf_counter()
            redactor.redact(text, counts)
            seconds = time.perf_counter() - start
            found = sum(counts.values())
            rows.append(
                f"| scan {kind} | {mb:g} | {found:,} | {seconds:.2f} | {seconds / mb:.2f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def request_rows() -> list[str]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from llmtap.pipeline.redact import RedactionConfig
    from llmtap.service import ServiceConfig
    from llmtap.service.app import ServiceApp
    from llmtap.service.spans import set_attributes

    text = text_of("emails", 10_000_000)
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=(1).to_bytes(16, "big"),
            span_id=(2).to_bytes(8, "big"),
            name="big",
            start_time_unix_nano=1,
            end_time_unix_nano=2,
        )
    )
    set_attributes(span.attributes, {"note": text})
    body = request.SerializeToString()
    budgeted = "max_value_chars" in RedactionConfig.__dataclass_fields__
    cases: list[tuple[str, object, dict]] = [("default", None, {})]
    if budgeted:
        off = RedactionConfig(max_value_chars=10**9, budget_s=0)
        cases.append(("budget off", types.SimpleNamespace(redaction=off), {"request_budget_s": 0}))
    rows = []
    for label, config, extra in cases:
        service = ServiceConfig(http_address=None, metrics_address=None, **extra)
        app = ServiceApp(config, service, destinations=[])
        app._accepting = True  # ingest without listeners
        start = time.perf_counter()
        app.ingest(body)
        seconds = time.perf_counter() - start
        rows.append(f"| request, 10 MB of emails, {label} | 10 | — | {seconds:.2f} | — |")
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0.25,1,4", help="MB, comma-separated")
    parser.add_argument("--src", help="the src folder to measure (default: this checkout's)")
    parser.add_argument("--out", help="folder for redaction_large.md")
    args = parser.parse_args()
    src = Path(args.src) if args.src else Path(__file__).resolve().parents[1] / "src"
    sys.path.insert(0, str(src))
    sizes = [float(s) for s in args.sizes.split(",")]
    lines = [
        "| what | MB | findings | seconds | s/MB |",
        "| --- | ---: | ---: | ---: | ---: |",
        *scan_rows(sizes),
        *request_rows(),
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        where = "the --src checkout" if args.src else "this checkout"
        header = f"# Redaction of large dense values\n\n{stamp}, {where}\n\n"
        (Path(args.out) / "redaction_large.md").write_text(header + table + "\n")


if __name__ == "__main__":
    main()
