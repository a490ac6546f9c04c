"""PydanticAI's own spans in the registered GenAI v1.41 names, with what PydanticAI leaves out.

PydanticAI gets a tracer provider from llmtap that hands out its own spans wrapped: every
attribute PydanticAI (or an llmtap provider adapter merged into its ``chat`` span) writes goes
through ``tidy``, and the end of a span fills in what PydanticAI does not record. PydanticAI
sees the same spans, contexts and behaviour; the wrapping never raises into it.

- ``gen_ai.system`` (deprecated) becomes ``gen_ai.provider.name``; Logfire's display hints
  (``logfire.*``), the duplicates ``model_name``/``agent_name`` and ``operation.cost`` (llmtap's
  cost stage prices the span from its usage, the figure ``gen_ai.usage.cost`` backends read) are
  dropped.
- An agent run's ``pydantic_ai.all_messages`` becomes ``gen_ai.input.messages`` (the history up
  to the run's answer) and ``gen_ai.output.messages`` (the answer), as v1.41's ``invoke_agent``
  span records them, so the judge finds the question and the answer on the run span too;
  ``final_result`` (the answer again) and ``pydantic_ai.new_message_index`` go with it.
- A run's ``gen_ai.aggregated_usage.*`` becomes ``gen_ai.usage.*``, as on llmtap's own agent
  spans (no model on the run: the cost stage prices its model calls, not the run again);
  ``gen_ai.usage.details.*`` keeps the registered names it has (reasoning tokens), the rest goes.
- A span PydanticAI failed gets ``error.type`` (the exception's type); each model call
  (``chat`` etc., CLIENT) records ``gen_ai.client.operation.duration``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmtap import semconv
from llmtap.instrumentation._invocation import MODEL_CALLS, log_once, metric_attributes

_ALL_MESSAGES = "pydantic_ai.all_messages"
_DROPPED = frozenset(
    {"model_name", "agent_name", "operation.cost", "final_result", "pydantic_ai.new_message_index"}
)
_RENAMED = {
    "gen_ai.aggregated_usage.input_tokens": semconv.USAGE_INPUT_TOKENS,
    "gen_ai.aggregated_usage.output_tokens": semconv.USAGE_OUTPUT_TOKENS,
    "gen_ai.aggregated_usage.cache_read.input_tokens": "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.aggregated_usage.cache_creation.input_tokens": (
        "gen_ai.usage.cache_creation.input_tokens"
    ),
    "gen_ai.usage.details.reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.aggregated_usage.details.reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
}
_DROPPED_PREFIXES = ("logfire.", "gen_ai.usage.details.", "gen_ai.aggregated_usage.")
_SYSTEM = "gen_ai.system"  # deprecated in v1.41: renamed to gen_ai.provider.name


def split_messages(value: Any) -> dict[str, str]:
    """``gen_ai.input.messages`` and ``gen_ai.output.messages`` of a run from its whole
    history (PydanticAI's ``all_messages`` JSON): the trailing assistant message is the answer;
    a run that ended without one (it failed) has input messages only."""
    try:
        history = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        history = None
    if not isinstance(history, list) or not history:
        return {}
    last = history[-1]
    if isinstance(last, Mapping) and last.get("role") == "assistant":
        found = {semconv.OUTPUT_MESSAGES: json.dumps([last], separators=(",", ":"))}
        if len(history) > 1:
            found[semconv.INPUT_MESSAGES] = json.dumps(history[:-1], separators=(",", ":"))
        return found
    return {semconv.INPUT_MESSAGES: value}


def tidy(attributes: Mapping[str, Any], has: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``attributes`` in registered names (see the module's docstring); ``has``: what the
    span holds already (a provider name set earlier wins over ``gen_ai.system``)."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if key == _SYSTEM:
            if semconv.PROVIDER not in attributes and semconv.PROVIDER not in (has or {}):
                out[semconv.PROVIDER] = value
        elif key == _ALL_MESSAGES:
            out.update(split_messages(value))
        elif key in _RENAMED:
            out[_RENAMED[key]] = value
        elif key not in _DROPPED and not key.startswith(_DROPPED_PREFIXES):
            out[key] = value
    return out


def _exception_type(span: Any) -> str:
    """The type of the last exception recorded on ``span`` (PydanticAI names it with its
    module when content is off; llmtap's ``error.type`` is the type's own name)."""
    for event in reversed(list(getattr(span, "events", ()) or ())):
        if event.name == "exception":
            name = str((event.attributes or {}).get("exception.type") or "")
            if name:
                return name.rsplit(".", 1)[-1]
    return "_OTHER"


class TidySpan(wrapt.ObjectProxy):  # type: ignore[misc]
    """One of PydanticAI's spans: attributes tidied as they are set, gaps filled at the end."""

    def __init__(self, span: trace.Span, duration: Histogram | None) -> None:
        super().__init__(span)
        self._self_duration = duration
        self._self_ended = False

    def set_attribute(self, key: str, value: Any) -> None:
        self.set_attributes({key: value})

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        try:
            attributes = tidy(attributes, self.__wrapped__.attributes)
        except Exception as exc:
            log_once("tidying a PydanticAI span's attributes", exc)
        self.__wrapped__.set_attributes(attributes)

    def end(self, end_time: int | None = None) -> None:
        end_time = end_time if end_time is not None else time.time_ns()
        if not self._self_ended:
            self._self_ended = True
            try:
                self._finish(end_time)
            except Exception as exc:
                log_once("finishing a PydanticAI span", exc)
        self.__wrapped__.end(end_time)

    def _finish(self, end_time: int) -> None:
        span = self.__wrapped__
        attrs = span.attributes or {}
        if span.status.status_code is StatusCode.ERROR and semconv.ERROR_TYPE not in attrs:
            span.set_attribute(semconv.ERROR_TYPE, _exception_type(span))
            attrs = span.attributes or {}
        start = getattr(span, "start_time", None)
        if (
            self._self_duration is not None
            and span.kind is SpanKind.CLIENT
            and attrs.get(semconv.OPERATION) in MODEL_CALLS
            and semconv.PROVIDER in attrs
            and isinstance(start, int)
        ):
            metric = metric_attributes(attrs)
            self._self_duration.record(max(end_time - start, 0) / 1e9, metric)

    def __enter__(self) -> TidySpan:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and self.is_recording():
            if getattr(self.__wrapped__, "_record_exception", True):
                self.__wrapped__.record_exception(exc, escaped=True)
            if getattr(self.__wrapped__, "_set_status_on_exception", True):
                status = Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
                self.__wrapped__.set_status(status)
        self.end()


class TidyTracer(trace.Tracer):
    """PydanticAI's tracer: the real one's spans, wrapped in ``TidySpan``."""

    def __init__(self, tracer: trace.Tracer, duration: Histogram | None) -> None:
        self._tracer = tracer
        self._duration = duration

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        if attributes:
            try:
                attributes = tidy(attributes)
            except Exception as exc:
                log_once("tidying a PydanticAI span's attributes", exc)
        span = self._tracer.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        if not span.is_recording():
            return span
        return TidySpan(span, self._duration)

    @contextmanager  # type: ignore[override]
    def start_as_current_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class TidyTracerProvider(trace.TracerProvider):
    """The tracer provider llmtap hands PydanticAI: the app's (or llmtap's), tidied."""

    def __init__(self, provider: trace.TracerProvider, duration: Histogram | None) -> None:
        self.provider = provider
        self._duration = duration

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return TidyTracer(self.provider.get_tracer(*args, **kwargs), self._duration)
