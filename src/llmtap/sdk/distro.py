"""Zero-code set-up: ``opentelemetry-instrument`` picks llmtap's distro and configurator.

The configurator is the SDK's own (every ``OTEL_*`` variable keeps its meaning) with the
llmtap span pipeline in front of every exporter: the exporters named by
``OTEL_TRACES_EXPORTER`` and the ``export:`` presets of ``llmtap.yaml`` (``LLMTAP_CONFIG``)
all receive spans that were costed and redacted once, each through its own queue. The
head sampler of the file applies unless ``OTEL_TRACES_SAMPLER`` names another.

Exporter defaults (what the distro sets when the variable is not set):

- without ``LLMTAP_CONFIG``, as the OpenTelemetry distro (``opentelemetry-distro``) does:
  ``OTEL_TRACES_EXPORTER``, ``OTEL_METRICS_EXPORTER`` and ``OTEL_LOGS_EXPORTER`` are
  ``otlp`` and ``OTEL_EXPORTER_OTLP_PROTOCOL`` is ``grpc``. The logs carry the
  ``gen_ai.client.inference.operation.details`` events of the ``EVENT_ONLY`` and
  ``SPAN_AND_EVENT`` capture modes.
- with ``LLMTAP_CONFIG``, the file's ``export:`` list says where spans go, so traces get no
  default (``OTEL_TRACES_EXPORTER=otlp`` adds the OTLP endpoint as one more destination).
  The file has no destinations for metrics and logs: each defaults to ``otlp`` when the
  environment names an OTLP endpoint for it (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` / ``..._LOGS_ENDPOINT``), and stays off otherwise.

When the capture mode asks for events and no logs exporter is set, a warning says the
events go nowhere. Event attributes and bodies go through the same redaction as spans before
any logs exporter sees them (on the export thread, as for spans).

A configuration that cannot be used never stops the application: the problems are logged
(``file:line: key: message``, as ``llmtap serve`` and ``llmtap config check`` give them, on
stderr unless logging is configured otherwise), then ``llmtap is off for this process``:
no provider is installed and llmtap's instrumentors are not loaded, so the app runs exactly
as it would without llmtap.
"""

from __future__ import annotations

import atexit
import logging
import os
import shlex
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator, _initialize_components
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.trace import SpanProcessor

from llmtap import runtime
from llmtap.config import use_settings
from llmtap.pipeline.stages import build_stages
from llmtap.sdk.build import build_destinations, build_sampler
from llmtap.sdk.processor import PipelineProcessor, exporter_queue

_log = logging.getLogger("llmtap")

OFF_MESSAGE = "llmtap is off for this process"
_SIGNALS = {"traces": "TRACES", "metrics": "METRICS", "logs": "LOGS"}


class _State:
    #: set when the configurator could not set llmtap up: its instrumentors stay out too
    off = False


def otel_defaults(env: MutableMapping[str, str]) -> None:
    """Fill in the exporter variables the way the distro documents (module docstring)."""
    with_file = bool(env.get("LLMTAP_CONFIG", "").strip())
    env.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    for signal, upper in _SIGNALS.items():
        # with a file: spans go to its export: list; metrics and logs where OTLP is pointed
        if not with_file or (signal != "traces" and _endpoint_set(env, upper)):
            env.setdefault(f"OTEL_{upper}_EXPORTER", "otlp")


def _endpoint_set(env: MutableMapping[str, str], upper: str) -> bool:
    return any(
        env.get(name, "").strip()
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT")
    )


class _Registered(SpanProcessor):
    """Stands where the SDK expects one processor per exporter; the pipeline does the work."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: Any) -> None:
        return None


class LlmtapDistro(BaseDistro):
    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", "llmtap")
        otel_defaults(os.environ)

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if _State.off and str(getattr(entry_point, "value", "")).startswith("llmtap."):
            return  # llmtap is off: leave the SDKs exactly as they are
        super().load_instrumentor(entry_point, **kwargs)


def _turn_off(lines: Sequence[str], hint: str) -> None:
    _State.off = True
    use_settings(None)
    for line in lines:
        _log.error("%s", line)
    _log.error("%s%s", OFF_MESSAGE, hint)


class LlmtapConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        from opentelemetry import metrics

        from llmtap.config_file import ConfigError, effective_service_name, load_config

        named = os.environ.get("LLMTAP_CONFIG", "").strip()
        try:
            cfg = load_config()
            # Everything the file decides is built before any global state changes, so a
            # problem leaves the process exactly as it was. Meters come from the API's proxy
            # provider, which forwards to the SDK's once it is installed below.
            pipeline, settings = _pipeline(cfg, metrics.get_meter_provider())
        except ConfigError as exc:
            check = f"llmtap config check {shlex.quote(named)}"
            hint = f": fix LLMTAP_CONFIG (`{check}` lists every problem)"
            _turn_off(str(exc).splitlines(), hint)
            return
        except Exception as exc:  # an export destination that cannot be set up, ...
            _turn_off([f"llmtap could not start: {type(exc).__name__}: {exc}"], "")
            return
        use_settings(settings)

        def per_exporter(exporter: Any, *args: Any, **kw: Any) -> SpanProcessor:
            pipeline.add_destination(exporter_queue(type(exporter).__name__, exporter))
            return _Registered()

        resource = {}
        name = effective_service_name(cfg, os.environ)
        if name and not os.environ.get("OTEL_SERVICE_NAME"):
            resource["service.name"] = name
        sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else build_sampler(cfg)
        redaction = [s for s in pipeline.stages if getattr(s, "name", "") == "redact"]
        _initialize_components(
            auto_instrumentation_version=kwargs.get("auto_instrumentation_version"),
            sampler=sampler,
            resource_attributes=resource,
            span_processors=[pipeline],
            export_span_processor=per_exporter,
            export_log_record_processor=_log_processor_factory(redaction),
        )
        runtime.use_pipeline(trace.get_tracer_provider(), pipeline)
        # At exit the SDK shuts the providers down newest first: the meter provider before
        # the tracer provider, whose last flush runs the cost stage. Flush spans first, so
        # that the cost counters of the last spans are still exported.
        atexit.register(_flush_spans)
        if settings.capture.on_event and not _logs_exporter_set():
            _log.warning(
                "llmtap: content capture %s records gen_ai.client.inference.operation.details "
                "events, but no logs exporter is set (OTEL_LOGS_EXPORTER); they go nowhere",
                settings.capture.value,
            )


def _flush_spans(timeout_millis: int = 10_000) -> None:
    flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if flush is not None:
        try:
            flush(timeout_millis)
        except Exception:  # at exit: never raise
            _log.debug("llmtap: flushing spans at exit failed", exc_info=True)


def _pipeline(cfg: Any, meter_provider: Any) -> tuple[PipelineProcessor, Any]:
    from llmtap.config_file import settings_from

    settings = settings_from(cfg, os.environ)
    stages = build_stages(cfg, meter_provider)
    return PipelineProcessor(stages, build_destinations(cfg)), settings


def _logs_exporter_set() -> bool:
    names = os.environ.get("OTEL_LOGS_EXPORTER", "").strip().lower()
    return bool(names) and names != "none"


# Redaction of log records (the content events) ----------------------------------------------


def _log_processor_factory(stages: Sequence[Any]) -> Callable[[Any], Any]:
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    def build(exporter: Any) -> Any:
        if not stages:
            return BatchLogRecordProcessor(exporter)
        return BatchLogRecordProcessor(RedactingLogExporter(exporter, stages))

    return build


class RedactingLogExporter(LogRecordExporter):
    """Runs the redaction stage over the body and attributes of llmtap's log records and of
    GenAI events (the content events; other instrumentations put message content in the
    body), then hands them to ``exporter``. A record whose redaction fails loses its string
    attributes and body (the stage fails closed) rather than leaking them."""

    def __init__(self, exporter: Any, stages: Sequence[Any]) -> None:
        self._exporter = exporter
        self._stages = list(stages)

    def export(self, batch: Sequence[Any]) -> Any:
        for record in batch:
            try:
                self._redact(record)
            except Exception:  # never lose the batch; the stage already failed closed
                _log.debug("llmtap: redacting a log record failed", exc_info=True)
        return self._exporter.export(batch)

    def _redact(self, record: Any) -> None:
        from llmtap.pipeline.redact import REDACTED
        from llmtap.pipeline.span import SpanData

        inner = getattr(record, "log_record", record)
        scope = getattr(record, "instrumentation_scope", None)
        attributes = getattr(inner, "attributes", None)
        event_name = getattr(inner, "event_name", None) or ""
        if not event_name and attributes:
            event_name = str(attributes.get("event.name") or "")
        if getattr(scope, "name", None) != "llmtap" and not event_name.startswith("gen_ai."):
            return
        body = getattr(inner, "body", None)
        if not attributes and body is None:
            return
        values = dict(attributes or {})
        if body is not None:
            values[_BODY_KEY] = body
        span = SpanData(name=event_name, attributes=values)
        for stage in self._stages:
            stage.apply(span)
        if body is not None:
            new_body = span.attributes.pop(_BODY_KEY, REDACTED)
            if new_body is not body:
                inner.body = new_body
        if attributes is not None:
            _replace_attributes(inner, attributes, span.attributes)
        elif span.attributes:
            from opentelemetry.attributes import BoundedAttributes

            inner.attributes = BoundedAttributes(attributes=span.attributes, immutable=False)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flush = getattr(self._exporter, "force_flush", None)
        return bool(flush(timeout_millis)) if flush is not None else True

    def shutdown(self) -> None:
        self._exporter.shutdown()


#: where a record's body goes while the stage redacts it (not a real attribute name)
_BODY_KEY = "\x00log.body"


def _replace_attributes(record: Any, old: Any, new: dict[str, Any]) -> None:
    try:
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, value in new.items():
            old[key] = value
    except TypeError:  # an immutable mapping: give the record a new one
        from opentelemetry.attributes import BoundedAttributes

        record.attributes = BoundedAttributes(attributes=new, immutable=False)
