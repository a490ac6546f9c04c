"""The app-side span pipeline: one SpanProcessor that runs the stages on a copy of each
finished span and hands that copy to every destination's own queue."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from llmtap.export.queue import DestinationQueue
from llmtap.instrumentation._invocation import log_once
from llmtap.pipeline.span import EventData, SpanData, Stage

_log = logging.getLogger("llmtap")


def to_span_data(span: ReadableSpan) -> SpanData:
    start, end = span.start_time or 0, span.end_time or 0
    return SpanData(
        name=span.name,
        attributes=dict(span.attributes or {}),
        events=[EventData(e.name, dict(e.attributes or {}), e.timestamp) for e in span.events],
        status_message=span.status.description,
        is_error=span.status.status_code is StatusCode.ERROR,
        duration_s=max(end - start, 0) / 1e9,
        resource=span.resource.attributes if span.resource else {},
        trace_id=span.context.trace_id if span.context else 0,
        span_id=span.context.span_id if span.context else 0,
        parent_span_id=span.parent.span_id if span.parent else 0,
        start_ns=start,
        end_ns=end,
    )


def with_data(span: ReadableSpan, data: SpanData) -> ReadableSpan:
    """A copy of ``span`` carrying the stages' attributes, events and status message."""
    status = span.status
    if status.description != data.status_message:
        status = Status(status.status_code, data.status_message)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=data.attributes,
        events=[Event(e.name, e.attributes, e.timestamp) for e in data.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def exporter_queue(
    name: str, exporter: SpanExporter, *, max_items: int = 2048, batch_size: int = 512, **kw: Any
) -> DestinationQueue[ReadableSpan]:
    def send(batch: Sequence[ReadableSpan]) -> bool:
        return exporter.export(batch) is SpanExportResult.SUCCESS

    queue = DestinationQueue(name, send, max_items=max_items, batch_size=batch_size, **kw)
    queue.exporter = exporter  # type: ignore[attr-defined]
    return queue


class PipelineProcessor(SpanProcessor):
    """Stages (cost, redaction, ...) then fan-out to independent destination queues.

    ``on_end`` only enqueues: the stages run on a worker thread of their own, so the
    application's thread never pays for them, and no destination sees a span before they ran.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        destinations: Sequence[DestinationQueue[ReadableSpan]],
        *,
        fail_closed: bool = True,
        max_items: int = 8192,
    ) -> None:
        self.stages = list(stages)
        self.destinations = list(destinations)
        self._fail_closed = fail_closed
        self._staging: DestinationQueue[ReadableSpan] = DestinationQueue(
            "pipeline", self._process, max_items=max_items, batch_size=256, delay_s=0.2
        )

    def add_destination(self, queue: DestinationQueue[ReadableSpan]) -> None:
        self.destinations.append(queue)

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        self._staging.offer((span,))

    def _process(self, batch: Sequence[ReadableSpan]) -> bool:
        out = [t for t in (self.transform(span) for span in batch) if t is not None]
        if out:
            for queue in self.destinations:
                queue.offer(out)
        return True

    def transform(self, span: ReadableSpan) -> ReadableSpan | None:
        if not self.stages:
            return span
        try:
            data = to_span_data(span)
            for stage in self.stages:
                stage.apply(data)
            return with_data(span, data)
        except Exception as exc:
            log_once("span pipeline", exc)
            # A stage that failed may have left content unredacted: send nothing.
            return None if self._fail_closed else span

    @property
    def dropped(self) -> int:
        return self._staging.dropped

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Drain within ``timeout_s`` in all, destinations in parallel; the rest is dropped."""
        self._staging.close(timeout_s)
        closing = [
            threading.Thread(target=q.close, args=(timeout_s,), daemon=True)
            for q in self.destinations
        ]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(timeout_s + 1)
        for queue in self.destinations:
            exporter = getattr(queue, "exporter", None)
            if exporter is not None:
                exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        timeout = timeout_millis / 1000
        staged = self._staging.flush(timeout)
        return staged and all(q.flush(timeout) for q in self.destinations)
