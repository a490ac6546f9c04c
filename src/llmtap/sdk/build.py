"""From an ``LlmtapConfig`` to the app-side parts: the destination queues and the sampler.

The stages are built by :func:`llmtap.pipeline.stages.build_stages`, which the app, the
service and ``llmtap eval`` share.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import Sampler

from llmtap.export.presets import build_exporter, build_translator_for, destination_name
from llmtap.export.queue import DestinationQueue
from llmtap.export.translations.readable_spans import ReadableTranslator
from llmtap.sdk.processor import exporter_queue

__all__ = ["build_destinations", "build_sampler"]

_log = logging.getLogger("llmtap")


def build_destinations(
    cfg: Any, service_name: str | None = None
) -> list[DestinationQueue[ReadableSpan]]:
    """A queue per ``export:`` destination; ``service_name`` (default: the effective one of
    ``cfg`` and the environment) is the fallback of presets that name the app."""
    if service_name is None:
        from llmtap.config_file import effective_service_name

        service_name = effective_service_name(cfg, os.environ)
    queues = []
    for index, export in enumerate(getattr(cfg, "export", None) or ()):
        name = destination_name(export, index)
        translator = build_translator_for(export, service_name, name)
        queues.append(
            exporter_queue(
                name,
                build_exporter(export, service_name),
                max_items=export.queue_size,
                batch_size=export.batch_size,
                translate=ReadableTranslator(translator) if translator else None,
            )
        )
        translated = f", translated: {', '.join(translator.names)}" if translator else ""
        _log.info("llmtap: exporting spans to %s (%s%s)", name, export.preset, translated)
    return queues


def build_sampler(cfg: Any) -> Sampler | None:
    sampling = getattr(cfg, "sampling", None)
    head = getattr(sampling, "head", None)
    if head is None or (not head.rules and head.default >= 1.0 and head.parent_based):
        return None
    from llmtap.pipeline.sampling import RuleSampler

    return RuleSampler(head)
