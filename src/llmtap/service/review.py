"""The review queue: spans with failing verdicts, as JSON lines for humans and the golden set.

``judge.review_queue: path/to/review.jsonl`` turns it on. When every evaluation the judge
scheduled for a span in one batch has finished and at least one verdict has
``passed: false``, one line is appended::

    {"time": "2026-05-01T12:00:00.123Z", "trace_id": "<32 hex>", "span_id": "<16 hex>",
     "span_name": "chat gpt-4o-mini", "service": "support-bot", "feature": "support",
     "model": "gpt-4o-mini", "response_id": "chatcmpl-...", "input": "...", "output": "...",
     "documents": ["..."], "metadata": {...}, "early": false, "late": false,
     "verdicts": [{"name": "faithfulness", "passed": false, "score": 0.0, "label": "fail",
                   "explanation": "...", "judge_model": "gpt-4o-mini", "error_type": null},
                  ...every verdict of that span in the batch, passing ones included]}

The texts are what the evaluators saw: taken from the span attributes after the span
pipeline's redaction, so no PII the pipeline masks reaches the file. Each text is capped at
``max_text_chars`` (20,000) and ``documents`` at 20 entries.

Writes are bounded and thread-safe: one ``write`` of one line under a lock; when the file
would pass ``max_bytes`` it is rotated to ``<path>.1`` (one older file kept) and a new one
started. A failing write is logged once and counted, never raised into the judge.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from llmtap import semconv
from llmtap.diagnostics import Once, warn_once
from llmtap.evals.base import EvalInput, Verdict
from llmtap.pipeline.span import SpanData

__all__ = ["DEFAULT_MAX_BYTES", "ReviewQueue", "review_entry"]

_log = logging.getLogger("llmtap.service")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_TEXT_CHARS = 20_000
MAX_DOCUMENTS = 20


def _iso(time_s: float) -> str:
    whole = int(time_s)
    millis = int((time_s - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _cap(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _verdict(v: Verdict) -> dict[str, Any]:
    return {
        "name": v.name,
        "passed": v.passed,
        "score": v.score,
        "label": v.label,
        "explanation": v.explanation,
        "judge_model": v.judge_model,
        "error_type": v.error_type,
    }


def review_entry(
    span: SpanData,
    item: EvalInput | None,
    verdicts: Sequence[Verdict],
    *,
    time_s: float | None = None,
    early: bool = False,
    late: bool = False,
    max_text_chars: int = MAX_TEXT_CHARS,
) -> dict[str, Any]:
    """One review-queue record for ``span`` and its verdicts."""
    attrs = span.attributes
    item = item if item is not None else EvalInput()
    model = attrs.get(semconv.RESPONSE_MODEL) or attrs.get(semconv.REQUEST_MODEL)
    return {
        "time": _iso(time.time() if time_s is None else time_s),
        "trace_id": f"{span.trace_id:032x}",
        "span_id": f"{span.span_id:016x}",
        "span_name": span.name,
        "service": span.resource.get("service.name"),
        "feature": attrs.get(semconv.LLMTAP_FEATURE),
        "model": model,
        "response_id": attrs.get(semconv.RESPONSE_ID),
        "input": _cap(item.input_text, max_text_chars),
        "output": _cap(item.output_text, max_text_chars),
        "documents": [_cap(d, max_text_chars) for d in list(item.documents)[:MAX_DOCUMENTS]],
        "metadata": dict(item.metadata),
        "early": early,
        "late": late,
        "verdicts": [_verdict(v) for v in verdicts],
    }


class ReviewQueue:
    """Append-only JSON-lines file of review entries, bounded by size (see the module doc)."""

    def __init__(self, path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = os.fspath(path)
        self.max_bytes = max(1024, int(max_bytes))
        self._lock = threading.Lock()
        self._size: int | None = None
        self.written = 0
        self.failed = 0
        self.rotations = 0
        self._once = Once()

    def append(self, entry: Mapping[str, Any]) -> bool:
        """Write one line; False (counted, logged once) when it could not be written."""
        try:
            line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        except (TypeError, ValueError) as exc:
            return self._fail(exc)
        data = line.encode("utf-8")
        if len(data) > self.max_bytes:
            return self._fail(ValueError(f"entry of {len(data)} bytes exceeds max_bytes"))
        with self._lock:
            try:
                if self._size is None:
                    try:
                        self._size = os.path.getsize(self.path)
                    except FileNotFoundError:
                        self._size = 0
                if self._size + len(data) > self.max_bytes and self._size > 0:
                    os.replace(self.path, self.path + ".1")
                    self._size = 0
                    self.rotations += 1
                with open(self.path, "ab") as fh:
                    fh.write(data)
                self._size += len(data)
                self.written += 1
                return True
            except OSError as exc:
                self._size = None
                return self._fail(exc)

    def _fail(self, exc: Exception) -> bool:
        self.failed += 1
        warn_once(
            _log,
            "write",
            "review queue %s: cannot write an entry: %s",
            self.path,
            exc,
            once=self._once,
        )
        return False
