"""What a span took in and gave out, as one text each, and what a trace did.

A model call's input and output are its ``gen_ai.input.messages`` and
``gen_ai.output.messages`` (on the span, or on its inference-details event when content
goes to events only); a tool's are its call arguments and result; a retrieval's are its
query and documents; a verdict span's output is its label, score and explanation. A root
span that carries none of these (a workflow step) takes the first input and the last output
of its trace's other spans that reach the destination before it or with it: in an earlier
batch (children usually end, and are exported, before their root), or anywhere in the same
batch, even after the root (a request whose spans are grouped by scope or resource, a
collector's batch). Spans that arrive after their root are not guessed at: the root has
gone by then.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from llmtap import semconv
from llmtap.pipeline.span import SpanData

__all__ = ["JSON", "TEXT", "TraceIO", "Value", "span_input", "span_output"]

JSON: Final = "application/json"
TEXT: Final = "text/plain"
#: traces whose root has not passed yet, at most (the oldest are forgotten first)
MAX_TRACES: Final = 1024

_INPUT_KEYS = (
    semconv.INPUT_MESSAGES,
    semconv.TOOL_CALL_ARGUMENTS,
    semconv.RETRIEVAL_QUERY_TEXT,
)
_OUTPUT_KEYS = (
    semconv.OUTPUT_MESSAGES,
    semconv.TOOL_CALL_RESULT,
    semconv.RETRIEVAL_DOCUMENTS,
)
_VERDICT_KEYS = {
    semconv.EVALUATION_SCORE_LABEL: "label",
    semconv.EVALUATION_SCORE_VALUE: "score",
    semconv.EVALUATION_EXPLANATION: "explanation",
}


@dataclass(frozen=True)
class Value:
    """A text and its MIME type (:data:`JSON` or :data:`TEXT`)."""

    text: str
    mime: str


def as_value(value: Any) -> Value | None:
    """``value`` as a text: a string as it is (JSON when it parses as an object or array),
    anything else as JSON; None for nothing or an empty string."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            return None
        if value[:1] in "[{":
            try:
                json.loads(value)
            except ValueError:
                return Value(value, TEXT)
            return Value(value, JSON)
        return Value(value, TEXT)
    if isinstance(value, tuple):
        value = list(value)
    return Value(json.dumps(value, ensure_ascii=False, default=str), JSON)


def _content(span: SpanData, key: str) -> Any:
    value = span.attributes.get(key)
    if value is not None:
        return value
    for event in span.events:
        if event.name == semconv.EVENT_INFERENCE_DETAILS and key in event.attributes:
            return event.attributes[key]
    return None


def is_verdict(span: SpanData) -> bool:
    """An ``evaluate {name}`` span (a verdict or user feedback), not a step of the app."""
    return semconv.EVALUATION_NAME in span.attributes


def span_input(span: SpanData) -> Value | None:
    for key in _INPUT_KEYS:
        value = as_value(_content(span, key))
        if value is not None:
            return value
    return None


def span_output(span: SpanData) -> Value | None:
    for key in _OUTPUT_KEYS:
        value = as_value(_content(span, key))
        if value is not None:
            return value
    if is_verdict(span):
        attrs = span.attributes
        verdict = {name: attrs[key] for key, name in _VERDICT_KEYS.items() if key in attrs}
        return as_value(verdict) if verdict else None
    return None


class TraceIO:
    """The input and output of the span being translated (:meth:`note` sets them) and,
    for a root span, of its trace: its own, else the first input (by start time) and the
    last output (by end time) of the trace's spans :meth:`remember` was given before it
    (the spans of earlier batches and all the spans of its own batch)."""

    def __init__(self, max_traces: int = MAX_TRACES) -> None:
        self.max_traces = max(1, max_traces)
        self.input: Value | None = None
        self.output: Value | None = None
        self.trace_input: Value | None = None
        self.trace_output: Value | None = None
        # trace id -> [start of the first input, input, end of the last output, output]
        self._traces: OrderedDict[int, list[Any]] = OrderedDict()
        # traces whose root passed: what comes later for them is not remembered
        self._done: OrderedDict[int, None] = OrderedDict()
        # what remember() found for each span of the batch, so note() does not look again
        self._found: dict[int, tuple[SpanData, Value | None, Value | None]] = {}

    def remember(self, span: SpanData) -> None:
        """Take a span that is not a root into its trace's input and output (a batch's
        spans are all remembered before any of them is translated)."""
        found = span_input(span), span_output(span)
        self._found[id(span)] = (span, *found)
        if not span.trace_id or not span.parent_span_id or is_verdict(span):
            return
        if span.trace_id in self._done or found == (None, None):
            return
        seen = self._traces.get(span.trace_id)
        if seen is None:
            seen = self._traces[span.trace_id] = [0, None, 0, None]
            while len(self._traces) > self.max_traces:
                self._traces.popitem(last=False)
        value_in, value_out = found
        if value_in is not None and (seen[1] is None or span.start_ns < seen[0]):
            seen[0], seen[1] = span.start_ns, value_in
        if value_out is not None and (seen[3] is None or span.end_ns >= seen[2]):
            seen[2], seen[3] = span.end_ns, value_out

    def note(self, span: SpanData) -> None:
        """The span about to be translated: its input and output, and a root's trace's."""
        cached = self._found.pop(id(span), None)
        if cached is not None and cached[0] is span:
            self.input, self.output = cached[1], cached[2]
        else:
            self.input, self.output = span_input(span), span_output(span)
        self.trace_input = self.trace_output = None
        if not span.trace_id or span.parent_span_id or is_verdict(span):
            return
        seen = self._traces.pop(span.trace_id, None) or [0, None, 0, None]
        self.trace_input = self.input or seen[1]
        self.trace_output = self.output or seen[3]
        self._done[span.trace_id] = None
        while len(self._done) > self.max_traces:
            self._done.popitem(last=False)

    def end_batch(self) -> None:
        """Forget what :meth:`remember` found for the batch's spans."""
        self._found.clear()

    @property
    def pending(self) -> int:
        """Traces remembered whose root has not passed yet."""
        return len(self._traces)
