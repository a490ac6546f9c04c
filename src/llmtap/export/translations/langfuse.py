"""``langfuse``: what Langfuse's OpenTelemetry ingestion reads beyond the GenAI conventions.

* the trace's input and output on the root span, ``langfuse.trace.input`` and
  ``langfuse.trace.output`` (Langfuse's trace list shows them and its evaluators read
  them); a root that records neither (a workflow) gets the first input and the last output
  of its trace's spans;
* each span's own input and output as ``langfuse.observation.input`` and
  ``langfuse.observation.output`` where it has one llmtap records under a name Langfuse does
  not map (a tool's arguments and result, a retrieval's query and documents, a verdict);
* the cost total as ``gen_ai.usage.cost`` (what ``cost_alias`` adds).

Names from Langfuse's OpenTelemetry attribute mapping (``langfuse.trace.*``,
``langfuse.observation.*``; ``gen_ai.usage.cost`` is mapped to an observation's cost).
"""

from __future__ import annotations

from typing import Final

from llmtap import semconv
from llmtap.export.translations._base import Translation, TranslationOptions
from llmtap.export.translations._io import TraceIO
from llmtap.export.translations.cost_alias import add_cost_alias
from llmtap.pipeline.span import SpanData

NAME: Final = "langfuse"
DESCRIPTION: Final = (
    "Langfuse: the trace's input and output on the root span (langfuse.trace.input/output), "
    "steps' inputs and outputs as langfuse.observation.input/output, and cost_alias"
)

TRACE_INPUT: Final = "langfuse.trace.input"
TRACE_OUTPUT: Final = "langfuse.trace.output"
OBSERVATION_INPUT: Final = "langfuse.observation.input"
OBSERVATION_OUTPUT: Final = "langfuse.observation.output"
#: inputs and outputs Langfuse reads by their GenAI names already
_READ_ALREADY = (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES)


class Langfuse(Translation):
    name = NAME
    uses_io = True

    def span(self, span: SpanData, trace: TraceIO) -> None:
        attrs = span.attributes
        add_cost_alias(attrs)
        if not any(key in attrs for key in _READ_ALREADY):
            _put(attrs, OBSERVATION_INPUT, trace.input)
            _put(attrs, OBSERVATION_OUTPUT, trace.output)
        _put(attrs, TRACE_INPUT, trace.trace_input)
        _put(attrs, TRACE_OUTPUT, trace.trace_output)


def _put(attrs: dict, key: str, value: object) -> None:
    text = getattr(value, "text", None)
    if text is not None and key not in attrs:
        attrs[key] = text


def create(options: TranslationOptions) -> Translation:
    return Langfuse()
