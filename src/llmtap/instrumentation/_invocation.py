"""The provider-neutral invocation lifecycle: start -> stop | fail.

Provider adapters fill an ``Invocation`` (attributes under semconv names, content as semconv
message lists); this module alone turns it into a span, the optional content event and the
GenAI client metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LogRecord, get_logger
from opentelemetry.metrics import get_meter
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmtap import semconv
from llmtap.config import Settings
from llmtap.context import current_attributes
from llmtap.diagnostics import warn_once
from llmtap.instrumentation._content import ContentStats, encode_list
from llmtap.instrumentation._pending import PendingEnd, watch_provider
from llmtap.pipeline import tokens
from llmtap.runtime import SCOPE, remember_response
from llmtap.version import __version__

_log = logging.getLogger("llmtap")

# Set in the context while llmtap handles a GenAI call: inner layers see it and stand aside.
ACTIVE_KEY = otel_context.create_key("llmtap.genai_call")
# Set by a framework run whose span is current (``_framework.RunSpans``): a provider adapter that
# merges into that span marks the run, which then leaves the response and metrics to it.
FRAMEWORK_RUN_KEY = otel_context.create_key("llmtap.framework_run")
# Other GenAI instrumentations (OpenLLMetry) skip their own span when they see this key.
_FOREIGN_SUPPRESS_KEY = "suppress_language_model_instrumentation"

#: the operations that are model calls (they get the duration and token metrics)
MODEL_CALLS = semconv.INFERENCE_OPERATIONS | {semconv.OP_EMBEDDINGS}
_METRIC_KEYS = (
    semconv.OPERATION,
    semconv.PROVIDER,
    semconv.REQUEST_MODEL,
    semconv.RESPONSE_MODEL,
    semconv.SERVER_ADDRESS,
    semconv.SERVER_PORT,
    semconv.ERROR_TYPE,
)


def metric_attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of a model call's metric points, taken from its span's."""
    return {k: attrs[k] for k in _METRIC_KEYS if k in attrs}


class Invocation:
    """One GenAI operation as the adapters see it.

    Attributes present when the span starts go on it then; at the end only the keys added
    since are set, so adapters add response fields rather than rewrite request ones.
    """

    __slots__ = (
        "_token",
        "attributes",
        "chunk_gaps",
        "chunks",
        "ended",
        "error_namer",
        "first_chunk",
        "in_foreign",
        "in_framework",
        "input_messages",
        "kind",
        "last_chunk",
        "name",
        "opened_with",
        "output_messages",
        "own_span",
        "pending",
        "span",
        "start",
        "system_instructions",
        "tool_definitions",
    )

    def __init__(
        self,
        operation: str,
        provider: str,
        model: str | None = None,
        *,
        name: str | None = None,
        kind: SpanKind = SpanKind.CLIENT,
    ) -> None:
        self.attributes: dict[str, Any] = {semconv.OPERATION: operation, semconv.PROVIDER: provider}
        if model:
            self.attributes[semconv.REQUEST_MODEL] = model
        self.name = name or (f"{operation} {model}" if model else operation)
        self.kind = kind
        self.input_messages: list[dict[str, Any]] | None = None
        self.system_instructions: list[dict[str, Any]] | None = None
        self.tool_definitions: list[dict[str, Any]] | None = None
        self.output_messages: list[dict[str, Any]] | None = None
        self.span: trace.Span | None = None
        self.own_span = True
        self.in_framework = False  # merged into a framework run's span: records the metrics
        # merged into a span another instrumentation owns (PydanticAI's model request): that
        # layer decides whether the call failed (it may retry a failed attempt in the span)
        self.in_foreign = False
        # set by an adapter when the end needs work too slow for the app's thread (a token
        # estimate): returns attributes to add; the span then ends on llmtap's worker
        self.pending: Callable[[], dict[str, Any]] | None = None
        self.start = 0.0
        self.first_chunk = 0.0
        self.last_chunk = 0.0
        self.chunks = 0
        self.chunk_gaps: list[float] = []
        self.ended = False
        # set by an adapter whose SDK raises one class for many failures: names an error
        # more precisely (an HTTP status code) or returns None for the class name
        self.error_namer: Callable[[BaseException], str | None] | None = None
        self.opened_with = 0
        self._token: object | None = None

    @property
    def operation(self) -> str:
        # "" for a span the conventions give no GenAI operation (an MCP tools/list request)
        return self.attributes.get(semconv.OPERATION, "")


def suppressed() -> bool:
    """True when this call is already handled by an outer layer (ours or another GenAI one)."""
    ctx = otel_context.get_current()
    return bool(
        ctx.get(ACTIVE_KEY)
        or ctx.get(otel_context._SUPPRESS_INSTRUMENTATION_KEY)
        or ctx.get(_FOREIGN_SUPPRESS_KEY)
    )


def _foreign_genai_span(parent: otel_context.Context | None = None) -> trace.Span | None:
    """A recording GenAI inference span made by another layer for this very call, if any."""
    span = trace.get_current_span(parent)
    if not span.is_recording():  # first: a non-recording span has no attributes to read
        return None
    attrs = getattr(span, "attributes", None)
    if not attrs:
        return None
    op = attrs.get(semconv.OPERATION)
    if op in MODEL_CALLS:
        return span
    return None


class Telemetry:
    """Builds spans, events and metrics for invocations."""

    def __init__(
        self,
        settings: Settings | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        logger_provider: Any = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.enabled = True  # off after uninstrument(): SDK-cached bound wrappers call through
        self.tracer_provider = tracer_provider
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = get_meter(SCOPE, __version__, meter_provider)
        self._logger = get_logger(SCOPE, __version__, logger_provider)
        self._duration = meter.create_histogram(
            semconv.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            semconv.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=semconv.TOKEN_BUCKETS,
        )
        self._ttfc = meter.create_histogram(
            semconv.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
        )
        self._per_chunk = meter.create_histogram(
            semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time between consecutive chunks of a streamed response.",
            explicit_bucket_boundaries_advisory=semconv.CHUNK_BUCKETS,
        )

    # lifecycle -----------------------------------------------------------------------

    def start(
        self,
        inv: Invocation,
        *,
        attach: bool = True,
        parent: otel_context.Context | None = None,
        start_time: int | None = None,
    ) -> Invocation:
        """Open the span (under ``parent``, else the current span) and make it current; call
        ``detach`` once the SDK call returns."""
        business = current_attributes()
        if business:
            setdefault = inv.attributes.setdefault
            for key, value in business.items():
                setdefault(key, value)
        foreign = _foreign_genai_span(parent) if inv.kind is SpanKind.CLIENT else None
        if foreign is not None:
            inv.span, inv.own_span = foreign, False
            foreign.set_attributes(inv.attributes)
            run = otel_context.get_value(FRAMEWORK_RUN_KEY, parent)
            if run is not None and getattr(run, "span", None) is foreign:
                run.merged = True
                inv.in_framework = True
            else:
                inv.in_foreign = True
        else:
            inv.span = self.tracer.start_span(
                inv.name,
                parent,
                kind=inv.kind,
                attributes=inv.attributes,
                start_time=start_time,
            )
            inv.opened_with = len(inv.attributes)
        if attach:
            self.attach(inv)
        inv.start = time.perf_counter()
        return inv

    def attach(self, inv: Invocation) -> None:
        """Make the invocation's span current (and mark the GenAI call as handled)."""
        ctx = trace.set_span_in_context(inv.span)
        if inv.operation in MODEL_CALLS:
            # both marks in one copy (what two otel_context.set_value calls would build)
            ctx = otel_context.Context({**ctx, ACTIVE_KEY: True, _FOREIGN_SUPPRESS_KEY: True})
        inv._token = otel_context.attach(ctx)

    def detach(self, inv: Invocation) -> None:
        token, inv._token = inv._token, None
        if token is not None:
            otel_context.detach(token)

    def chunk(self, inv: Invocation) -> None:
        """Note the arrival of one streamed chunk."""
        now = time.perf_counter()
        if inv.chunks == 0:
            inv.first_chunk = now
        else:
            inv.chunk_gaps.append(now - inv.last_chunk)
        inv.last_chunk = now
        inv.chunks += 1

    def stop(self, inv: Invocation) -> None:
        self._end(inv, None)

    def fail(self, inv: Invocation, error: BaseException) -> None:
        self._end(inv, error)

    @contextmanager
    def step(self, inv: Invocation) -> Iterator[Invocation]:
        """Run a block as one invocation (non-streaming, in-process steps)."""
        self.start(inv)
        try:
            yield inv
        except BaseException as exc:
            self.detach(inv)
            self.fail(inv, exc)
            raise
        self.detach(inv)
        self.stop(inv)

    # internals -----------------------------------------------------------------------

    def _end(self, inv: Invocation, error: BaseException | None) -> None:
        if inv.ended:
            return
        inv.ended = True
        elapsed = time.perf_counter() - inv.start
        attrs = inv.attributes
        if inv.chunks:
            attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = inv.first_chunk - inv.start
        if error is not None:
            # an adapter may have named the error more precisely (a provider's error code)
            attrs.setdefault(semconv.ERROR_TYPE, _error_name(inv, error))
        if inv.pending is not None:
            if inv.own_span:
                self._end_later(inv, error, elapsed)
                return
            # another layer's span, ended by that layer as soon as the stream ends: an
            # estimate from the worker would come too late, so it is not made
            inv.pending = None
        self._finish(inv, error, elapsed)

    def _end_later(self, inv: Invocation, error: BaseException | None, elapsed: float) -> None:
        """The span ends on the token worker, at this moment's timestamp, once ``inv.pending``
        ran; the application's thread goes on at once."""
        end_time = time.time_ns()
        estimate, inv.pending = inv.pending, None
        remember_response(inv.attributes.get(semconv.RESPONSE_ID), inv.span, inv.attributes)
        watch_provider(self.tracer_provider or trace.get_tracer_provider())

        def finish(extra: dict[str, Any] | None) -> None:
            if extra:
                inv.attributes.update(extra)
            self._finish(inv, error, elapsed, end_time, remember=False)

        tokens.submit(PendingEnd(estimate, finish))

    def _finish(
        self,
        inv: Invocation,
        error: BaseException | None,
        elapsed: float,
        end_time: int | None = None,
        remember: bool = True,
    ) -> None:
        attrs = inv.attributes
        span = inv.span
        try:
            if span is not None:
                ended = dict(islice(attrs.items(), inv.opened_with, None))
                if inv.in_foreign:
                    ended.pop(semconv.ERROR_TYPE, None)
                capture = self.settings.capture
                content = self._content(inv) if capture.any else None
                if content and capture.on_span:
                    ended.update(content)  # one call sets the response and the content
                span.set_attributes(ended)
                if content is not None and capture.on_event:
                    self._emit_content(inv, span, content)
                if inv.in_foreign:
                    pass  # the owner of the span records the outcome
                elif error is not None:
                    span.set_status(Status(StatusCode.ERROR, _describe(error)))
                    if isinstance(error, Exception):
                        span.record_exception(error)
                elif semconv.ERROR_TYPE in attrs:
                    span.set_status(Status(StatusCode.ERROR, str(attrs[semconv.ERROR_TYPE])))
        finally:
            if span is not None and inv.own_span:
                span.end(end_time)
            if remember:
                remember_response(attrs.get(semconv.RESPONSE_ID), span, attrs)
            self._record_metrics(inv, elapsed)

    def _content(self, inv: Invocation) -> dict[str, Any] | None:
        """The content attributes: each message list as JSON within the limits, and what
        the limits cut. None when the content cannot be encoded (a value that refers to
        itself): the span goes without it, the call goes on."""
        stats = ContentStats()
        limits = self.settings.limits
        content = {}
        try:
            for key, items in (
                (semconv.SYSTEM_INSTRUCTIONS, inv.system_instructions),
                (semconv.INPUT_MESSAGES, inv.input_messages),
                (semconv.OUTPUT_MESSAGES, inv.output_messages),
                (semconv.TOOL_DEFINITIONS, inv.tool_definitions),
            ):
                if items:
                    content[key] = encode_list(items, limits, stats)
        except Exception as exc:
            log_once("content", exc)
            return None
        content.update(stats.attributes())
        return content

    def _emit_content(self, inv: Invocation, span: trace.Span, content: dict[str, Any]) -> None:
        if inv.operation in semconv.INFERENCE_OPERATIONS:
            self._logger.emit(
                LogRecord(
                    event_name=semconv.EVENT_INFERENCE_DETAILS,
                    context=trace.set_span_in_context(span),
                    attributes={**inv.attributes, **content},
                )
            )

    def _metric_attributes(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return metric_attributes(attrs)

    def _record_metrics(self, inv: Invocation, elapsed: float) -> None:
        attrs = inv.attributes
        if inv.kind is not SpanKind.CLIENT or not (inv.own_span or inv.in_framework):
            return
        if semconv.LLMTAP_STEP_KIND in attrs or semconv.PROVIDER not in attrs:
            # a step (a provider's rerank call) is no GenAI operation: its operation name is
            # none of the GenAI metrics' (llmtap's registry, span.llmtap.step); and every GenAI
            # metric requires gen_ai.provider.name, which a vector store's query or the app's
            # retrieval step has not
            return
        base = self._metric_attributes(attrs)
        self._duration.record(elapsed, base)
        if semconv.ERROR_TYPE in base:
            # a new dict: some SDK releases keep the one a measurement was recorded with
            base = {k: v for k, v in base.items() if k != semconv.ERROR_TYPE}
        if inv.chunks:
            self._ttfc.record(inv.first_chunk - inv.start, base)
            for gap in inv.chunk_gaps:
                self._per_chunk.record(gap, base)
        for key, token_type in (
            (semconv.USAGE_INPUT_TOKENS, "input"),
            (semconv.USAGE_OUTPUT_TOKENS, "output"),
        ):
            value = attrs.get(key)
            if value is not None:
                self._tokens.record(value, {**base, semconv.TOKEN_TYPE: token_type})


def error_type(error: BaseException) -> str:
    return type(error).__qualname__


def _error_name(inv: Invocation, error: BaseException) -> str:
    if inv.error_namer is not None:
        try:
            name = inv.error_namer(error)
        except Exception as exc:
            log_once("error name", exc)
        else:
            if name:
                return name
    return error_type(error)


def status_code_name(error: Any, *fields: str) -> str | None:
    """The HTTP status code an SDK error carries in the first of ``fields`` that holds one
    (``"429"``), else None."""
    for field in fields:
        code = getattr(error, field, None)
        if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
            return str(code)
    return None


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__qualname__}: {text}" if text else type(error).__qualname__


def log_once(where: str, exc: BaseException) -> None:
    """An error inside llmtap: logged once per place, never raised into the app."""
    message = "llmtap: %s failed (%s); the call goes on"
    warn_once(_log, ("failed", where), message, where, exc, exc_info=exc)
