"""Zero-code set-up: ``opentelemetry-instrument`` picks llmtap's distro and configurator.

The configurator is the SDK's own (every ``OTEL_*`` variable keeps its meaning) with the
llmtap span pipeline in front of every exporter: the exporters named by
``OTEL_TRACES_EXPORTER`` and the ``export:`` presets of ``llmtap.yaml`` (``LLMTAP_CONFIG``)
all receive spans that were costed and redacted once, each through its own queue. The
head sampler of the file applies unless ``OTEL_TRACES_SAMPLER`` names another.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator, _initialize_components
from opentelemetry.sdk.trace import SpanProcessor

from llmtap.config import use_settings
from llmtap.sdk.build import build_destinations, build_sampler, build_stages
from llmtap.sdk.processor import PipelineProcessor, exporter_queue

_log = logging.getLogger("llmtap")


class _Registered(SpanProcessor):
    """Stands where the SDK expects one processor per exporter; the pipeline does the work."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: Any) -> None:
        return None


class LlmtapDistro(BaseDistro):
    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", "llmtap")
        if not os.environ.get("LLMTAP_CONFIG"):
            os.environ.setdefault("OTEL_TRACES_EXPORTER", "otlp")
            os.environ.setdefault("OTEL_METRICS_EXPORTER", "otlp")


class LlmtapConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        from llmtap.config_file import effective_service_name, load_config, settings_from

        cfg = load_config()
        use_settings(settings_from(cfg, os.environ))
        pipeline = PipelineProcessor([], build_destinations(cfg))

        def per_exporter(exporter: Any, *args: Any, **kw: Any) -> SpanProcessor:
            pipeline.add_destination(exporter_queue(type(exporter).__name__, exporter))
            return _Registered()

        resource = {}
        name = effective_service_name(cfg, os.environ)
        if name and not os.environ.get("OTEL_SERVICE_NAME"):
            resource["service.name"] = name
        sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else build_sampler(cfg)
        _initialize_components(
            auto_instrumentation_version=kwargs.get("auto_instrumentation_version"),
            sampler=sampler,
            resource_attributes=resource,
            span_processors=[pipeline],
            export_span_processor=per_exporter,
        )
        from opentelemetry import metrics

        pipeline.stages = build_stages(cfg, metrics.get_meter_provider())
