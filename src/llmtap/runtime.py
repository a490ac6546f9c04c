"""What llmtap holds for the running application, in one place every layer may import.

- the handler: the telemetry that turns invocations into spans and metrics, installed by
  ``llmtap.configure()`` (and ``llmtap eval``), read by the steps and by feedback;
- the response index: which span returned each ``gen_ai.response.id`` (the last
  :data:`MAX_RESPONSES`), filled when a GenAI span ends, read by ``record_feedback``;
- the configured pipeline of each tracer provider (its stages: feedback redacts with them);
- the only reads of OpenTelemetry SDK internals llmtap needs (see the last section).

A leaf module: it imports nothing of llmtap's but the leaf modules (``semconv``, ``config``,
``diagnostics``, ``version``), so nothing it imports can import it back.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanContext

from llmtap import semconv
from llmtap.config import Settings
from llmtap.diagnostics import warn_once
from llmtap.version import __version__

__all__ = [
    "MAX_RESPONSES",
    "SCOPE",
    "Handler",
    "Pipeline",
    "ResponseIndex",
    "SeenResponse",
    "emits_logs",
    "pipeline",
    "prepend_span_processor",
    "remember_response",
    "seen_response",
    "telemetry",
    "tracer",
    "tracer_provider",
    "use_pipeline",
    "use_telemetry",
]

_log = logging.getLogger("llmtap")

#: the instrumentation scope of llmtap's spans, metrics and events
SCOPE = "llmtap"
MAX_RESPONSES = 10_000


# the handler ---------------------------------------------------------------------------------


class Handler(Protocol):
    """What the runtime knows of the telemetry (``instrumentation._invocation.Telemetry``)."""

    settings: Settings
    tracer: Any
    tracer_provider: Any
    enabled: bool


_telemetry: Handler | None = None


def telemetry() -> Handler | None:
    """The installed handler; None until ``configure()`` (or a first step) installs one."""
    return _telemetry


def use_telemetry(value: Handler | None) -> None:
    global _telemetry
    _telemetry = value


def tracer_provider() -> Any:
    """The installed handler's tracer provider, else the global one."""
    provider = getattr(_telemetry, "tracer_provider", None)
    return provider if provider is not None else trace.get_tracer_provider()


def tracer() -> Any:
    """The installed handler's tracer, else llmtap's tracer of the global provider."""
    if _telemetry is not None:
        return _telemetry.tracer
    return trace.get_tracer(SCOPE, __version__)


# the response index --------------------------------------------------------------------------


@dataclass(frozen=True)
class SeenResponse:
    """The span that returned a response, and the ``llmtap.feature`` it carried."""

    context: SpanContext
    feature: Any = None


class ResponseIndex:
    """Response id -> the span that returned it, bounded (oldest forgotten first)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, SeenResponse] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: str, seen: SeenResponse, capacity: int) -> None:
        with self._lock:
            self._seen[key] = seen
            self._seen.move_to_end(key)
            while len(self._seen) > capacity:
                self._seen.popitem(last=False)

    def get(self, key: str) -> SeenResponse | None:
        with self._lock:
            return self._seen.get(key)


_responses = ResponseIndex()


def remember_response(
    response_id: Any, span: Any, attributes: Mapping[str, Any], capacity: int = MAX_RESPONSES
) -> None:
    """Note which span produced ``response_id`` (called when a GenAI span ends; never raises)."""
    if not response_id or span is None:
        return
    try:
        context = span.get_span_context()
        if not context.is_valid:
            return
        seen = SeenResponse(context, attributes.get(semconv.LLMTAP_FEATURE))
        _responses.remember(str(response_id), seen, capacity)
    except Exception as exc:  # never break the instrumented call
        message = "llmtap: cannot remember a response id for feedback: %s"
        warn_once(_log, "remember response", message, exc, exc_info=exc)


def seen_response(response_id: str) -> SeenResponse | None:
    """What :func:`remember_response` noted for ``response_id`` (None when not seen)."""
    return _responses.get(response_id)


# the configured pipeline ---------------------------------------------------------------------


class Pipeline(Protocol):
    """What the runtime knows of a span pipeline (``sdk.processor.PipelineProcessor``)."""

    stages: Sequence[Any]


_pipelines: weakref.WeakKeyDictionary[Any, Pipeline] = weakref.WeakKeyDictionary()


def use_pipeline(provider: Any, value: Pipeline) -> None:
    """Note that ``value`` runs the spans of ``provider`` (its stages, its destinations)."""
    try:
        _pipelines[provider] = value
    except TypeError:  # not weak-referenceable: not an SDK provider
        _log.debug("llmtap: cannot note the pipeline of %r", provider)


def pipeline(provider: Any = None) -> Pipeline | None:
    """The pipeline of ``provider`` (default: :func:`tracer_provider`), None without one."""
    provider = tracer_provider() if provider is None else provider
    try:
        return _pipelines.get(provider)
    except TypeError:
        return None


# OpenTelemetry SDK internals -----------------------------------------------------------------
# The SDK offers no public way to order span processors or to tell whether a logger provider
# has any processor; these two functions are the only places llmtap reads its private state.


def prepend_span_processor(provider: Any, processor: Any) -> None:
    """Put ``processor`` first in ``provider``'s chain.

    The SDK only appends processors; to prepend, this replaces the tuple of its
    ``SynchronousMultiSpanProcessor`` under the chain's own lock. Any other provider gets the
    processor appended."""
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor

    chain = getattr(provider, "_active_span_processor", None)
    lock = getattr(chain, "_lock", None)
    if type(chain) is SynchronousMultiSpanProcessor and lock is not None:
        with lock:
            current = chain._span_processors
            if isinstance(current, tuple):
                chain._span_processors = (processor, *current)
                return
    add = getattr(provider, "add_span_processor", None)
    if add is not None:
        add(processor)


def emits_logs(provider: Any) -> bool:
    """Whether log records given to ``provider`` go anywhere: not a no-op or proxy provider,
    nor an SDK provider without processors (``OTEL_LOGS_EXPORTER=none``)."""
    from opentelemetry._logs import NoOpLoggerProvider
    from opentelemetry._logs._internal import ProxyLoggerProvider

    if isinstance(provider, (NoOpLoggerProvider, ProxyLoggerProvider)):
        return False
    multi = getattr(provider, "_multi_log_record_processor", None)
    return multi is None or bool(getattr(multi, "_log_record_processors", True))
