"""``llmtap demo --ui``: the demo's traces in Arize Phoenix's UI, without Docker.

Phoenix starts first (its ``phoenix`` command, found by :func:`~llmtap.demo.phoenix.
find_phoenix`; SQLite under ``<demo folder>/phoenix``), the demo runs and forwards to it with
the ``phoenix`` export preset, then the URL of each request's trace is printed (under it, that
of the evaluation trace with the judge's verdicts on it) and Phoenix keeps running until Ctrl-C
(or SIGTERM), when it is stopped.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from llmtap import semconv
from llmtap.demo.phoenix import LocalPhoenix, PhoenixUnavailable, find_phoenix
from llmtap.pipeline.span import SpanData

#: what the process exits with after a Ctrl-C during the demo itself (as a shell reports it)
EXIT_INTERRUPTED = 128 + signal.SIGINT


def _judged_trace(span: SpanData) -> str | None:
    """The trace id (hex) a verdict span names as judged, for a root in an evaluation trace."""
    target = span.attributes.get(semconv.LLMTAP_EVALUATION_TARGET_TRACE_ID)
    return str(target) if target and span.trace_id else None


def _evaluation_traces(spans: Sequence[SpanData]) -> dict[str, dict[int, int]]:
    """Judged trace id (hex) → its evaluation traces → how many verdict spans each holds."""
    found: dict[str, dict[int, int]] = {}
    for span in spans:
        judged = _judged_trace(span)
        if judged is not None and not span.parent_span_id:
            counts = found.setdefault(judged, {})
            counts[span.trace_id] = counts.get(span.trace_id, 0) + 1
    return found


def trace_links(phoenix: LocalPhoenix, spans: Sequence[SpanData]) -> list[str]:
    """One line per request trace: its feature, its root span's name and its page in Phoenix;
    under it, when the judge gave verdicts on it, the page of its evaluation trace (the
    ``evaluate`` spans, ``judge.verdicts: linked``). The verdicts are also annotations of the
    spans they judged, on the request's own page."""
    evaluations = _evaluation_traces(spans)
    lines = []
    for span in spans:
        if span.parent_span_id or not span.trace_id or _judged_trace(span) is not None:
            continue
        feature = span.attributes.get(semconv.LLMTAP_FEATURE, "")
        label = f"[{feature}] {span.name}" if feature else span.name
        trace_id = f"{span.trace_id:032x}"
        lines.append(f"  {label:<48} {phoenix.trace_url(trace_id)}")
        for evaluation, count in sorted(evaluations.get(trace_id, {}).items()):
            label = f"⇢ its {count} verdict{'s' if count != 1 else ''}"
            lines.append(f"    {label:<46} {phoenix.trace_url(f'{evaluation:032x}')}")
    return lines


def _start(folder: Path) -> LocalPhoenix:
    executable = find_phoenix()
    print(f"starting Phoenix ({executable}) ...", flush=True)
    began = time.monotonic()
    phoenix = LocalPhoenix.start(executable, folder / "phoenix")
    print(f"Phoenix {phoenix.url} ready in {time.monotonic() - began:.0f} s "
          f"(data and log in {folder / 'phoenix'})", flush=True)  # fmt: skip
    return phoenix


def _wait(phoenix: LocalPhoenix) -> int:
    """Until Ctrl-C or SIGTERM (0), or until Phoenix exits by itself (1)."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main_thread else None
    try:
        while phoenix.running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping Phoenix", flush=True)
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"llmtap demo --ui: Phoenix exited with {phoenix.process.returncode} "
          f"(log: {phoenix.log_path})", file=sys.stderr)  # fmt: skip
    return 1


def run_with_phoenix(folder: Path, run_demo: Callable[[str], Sequence[SpanData]]) -> int:
    """Start Phoenix, ``run_demo(traces_url)``, print the traces' URLs and wait for Ctrl-C."""
    try:
        phoenix = _start(folder)
    except PhoenixUnavailable as exc:
        print(f"llmtap demo --ui: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    with phoenix:
        try:
            spans = run_demo(phoenix.traces_url)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        print(f"\nthe traces in Phoenix ({phoenix.url}):")
        print("\n".join(trace_links(phoenix, spans)))
        print(f"\nPhoenix keeps running at {phoenix.url}; Ctrl-C to stop it.", flush=True)
        return _wait(phoenix)
