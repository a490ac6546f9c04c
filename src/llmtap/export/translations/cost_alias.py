"""``cost_alias``: the cost total also as ``gen_ai.usage.cost``, the name Langfuse and
OpenLIT-based views read (llmtap's own name, ``llmtap.cost.total``, is the registered one)."""

from __future__ import annotations

from typing import Final

from llmtap import semconv
from llmtap.export.translations._base import Translation, TranslationOptions
from llmtap.export.translations._io import TraceIO
from llmtap.pipeline.span import SpanData

NAME: Final = "cost_alias"
DESCRIPTION: Final = (
    "adds gen_ai.usage.cost (the name Langfuse and OpenLIT read) from llmtap.cost.total"
)


class CostAlias(Translation):
    name = NAME

    def span(self, span: SpanData, trace: TraceIO) -> None:
        add_cost_alias(span.attributes)


def add_cost_alias(attributes: dict) -> None:
    total = attributes.get(semconv.LLMTAP_COST_TOTAL)
    if total is not None and semconv.USAGE_COST not in attributes:
        attributes[semconv.USAGE_COST] = total


def create(options: TranslationOptions) -> Translation:
    return CostAlias()
