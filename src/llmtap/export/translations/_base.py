"""The base of every translation and what its factory is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmtap.export.translations._io import TraceIO
from llmtap.pipeline.span import SpanData

__all__ = ["Translation", "TranslationOptions"]


@dataclass(frozen=True)
class TranslationOptions:
    """What a translation's factory is given: the destination's ``project`` (Phoenix's
    project, ``openinference.project.name``) and the app's or service's name."""

    project: str | None = None
    service_name: str | None = None


class Translation:
    """One backend's reading of llmtap's spans; subclasses override what they change."""

    name = ""
    #: reads the span's and the trace's input and output (``TraceIO``); False spares the
    #: translator finding them
    uses_io = False

    def span(self, span: SpanData, trace: TraceIO) -> None:
        """Change ``span.attributes`` (a copy owned by this destination) in place."""

    def resource(self, attributes: dict[str, Any]) -> None:
        """Change the resource attributes (a copy) in place."""
