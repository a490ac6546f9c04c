"""``llmtap demo --ui``: the demo's traces in Arize Phoenix's UI, without Docker.

Phoenix starts first (its ``phoenix`` command, found by :func:`~llmtap.demo.phoenix.
find_phoenix`; SQLite under ``<demo folder>/phoenix``), the demo runs and forwards to it with
the ``phoenix`` export preset, then the URL of each trace is printed and Phoenix keeps running
until Ctrl-C (or SIGTERM), when it is stopped.
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


def trace_links(phoenix: LocalPhoenix, spans: Sequence[SpanData]) -> list[str]:
    """One line per trace: its feature, its root span's name and its page in Phoenix."""
    lines = []
    for span in spans:
        if span.parent_span_id or not span.trace_id:
            continue
        feature = span.attributes.get(semconv.LLMTAP_FEATURE, "")
        label = f"[{feature}] {span.name}" if feature else span.name
        lines.append(f"  {label:<48} {phoenix.trace_url(f'{span.trace_id:032x}')}")
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
