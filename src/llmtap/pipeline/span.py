"""The plain span record every pipeline stage works on, in the app and in the service.

A stage sees attributes, events and the status message as plain Python values, so the
same code serves an SDK ``ReadableSpan`` in the app and an OTLP protobuf span in the
service. Stages mutate the record in place and must be idempotent: running one twice
leaves the span as running it once did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class EventData:
    name: str
    attributes: dict[str, Any] = field(default_factory=dict)
    timestamp: int = 0


@dataclass
class SpanData:
    name: str
    attributes: dict[str, Any]
    events: list[EventData] = field(default_factory=list)
    status_message: str | None = None
    is_error: bool = False
    duration_s: float = 0.0
    resource: Mapping[str, Any] = field(default_factory=dict)
    trace_id: int = 0
    span_id: int = 0
    parent_span_id: int = 0
    kind: str = "INTERNAL"
    start_ns: int = 0
    end_ns: int = 0


class Stage(Protocol):
    """One transformation over a span record (cost, redaction, ...)."""

    name: str

    def apply(self, span: SpanData) -> None:
        """Change ``span`` in place; never raise for bad input (the caller guards anyway)."""
