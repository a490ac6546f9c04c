"""The llmtap service: OTLP in, the span pipeline, every destination out, hooks for the judge.

::

    app = ServiceApp(load_config("llmtap.yaml"))
    app.on_spans(assembler.add)            # the judge side: every processed span, off-thread
    app.start()                            # binds gRPC, HTTP and metrics listeners
    ...
    report = app.stop()                    # stop taking data, drain queues, count the rest

Receiving a request (:meth:`ServiceApp.ingest`): the bytes are parsed once by the C protobuf
runtime (which validates them); spans with invalid ids are left out and reported as a
partial success; each other span is checked against the stages' idempotency markers (a
span an llmtap app already costed and redacted carries ``llmtap.cost.total`` (or
``gen_ai.usage.cost``, from older llmtap apps and other SDKs) and
``llmtap.redaction.count``; the redaction mark counts only with a valid
``llmtap.redaction.seal`` or from a trusted sender, see :class:`ServiceConfig`): only
spans a stage has work on are decoded into
:class:`~llmtap.service.spans.ReceivedSpan` records, run through the stages (the same
``build_stages`` as in the app) and re-encoded; the rest are forwarded as received. Then
the whole request is admitted or refused: if a (strict) destination's queue has no room
for all of its spans, nothing is queued and the sender gets a retryable error with a retry
delay (gRPC UNAVAILABLE + RetryInfo, HTTP 503 + Retry-After); otherwise every destination
gets every span. Hooks get the processed spans afterwards, on their own thread and
bounded queue: a slow hook drops (and counts) spans, it never holds up forwarding.

Spans of an accepted request that carry a ``gen_ai.response.id`` feed the feedback resolver
(:mod:`llmtap.service.feedback_resolver`): answers are remembered, and feedback recorded in
a process that did not see its answer is copied under the answer's span, the copies
forwarded like the service's own spans and handed to the hooks (the judge).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.trace.v1 import trace_pb2

from llmtap import semconv
from llmtap.diagnostics import Once, warn_once
from llmtap.pipeline.span import TRUST_EARNED, TRUST_NONE, SpanData, Stage
from llmtap.service import ServiceConfig, service_config_of
from llmtap.service.address import parse_address
from llmtap.service.feedback_resolver import (
    Answer,
    FeedbackResolver,
    Resolved,
    Unresolved,
    copy_into_answer,
)
from llmtap.service.forward import Destination, QueueWriteError, build_forwarder, items_size
from llmtap.service.hooks import SpanHooks
from llmtap.service.memory_limit import MemoryLimit
from llmtap.service.metrics import MetricsRegistry, MetricsServer
from llmtap.service.receiver import (
    INVALID,
    UNAVAILABLE,
    Accepted,
    BindError,
    GrpcReceiver,
    HttpReceiver,
    Rejected,
)
from llmtap.service.service_metrics import DestinationCounts, ServiceMetrics
from llmtap.service.sinks.runner import EvaluationSinks
from llmtap.service.spans import (
    RawRequest,
    ReceivedSpan,
    ScopeGroup,
    Snapshot,
    SpanItem,
    WireRequest,
    from_span_data,
    group_for,
    item,
    regroup,
    regrouped,
    resource_group,
    scope_group,
    span_header,
    to_span_data,
    write_back,
)
from llmtap.service.stage_skip import needs_stages
from llmtap.service.usage import Usage, is_call, usage_from_data, usage_from_wire
from llmtap.service.wal import WriteAheadLog, directory_name

__all__ = ["BindError", "ServiceApp", "ServiceConfig", "StopReport", "service_config_of"]

_log = logging.getLogger("llmtap.service")

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_FEEDBACK = semconv.LLMTAP_FEEDBACK_LABEL
_OVER_BUDGET = semconv.LLMTAP_REDACTION_OVER_BUDGET
_RESPONSE_ID = semconv.RESPONSE_ID
_EVALUATION = semconv.EVALUATION_NAME
_RESOLVED = semconv.LLMTAP_FEEDBACK_RESOLVED
_FEATURE = semconv.LLMTAP_FEATURE


# The service -----------------------------------------------------------------------------------


@dataclass
class StopReport:
    """What :meth:`ServiceApp.stop` left behind."""

    drained: bool
    dropped: dict[str, int]
    hook_spans_dropped: int
    seconds: float
    kept: dict[str, int] = field(default_factory=dict)
    """spans left in the durable queues, sent after the next start"""


@dataclass
class _Batch:
    items: list[SpanItem]
    rejected: int
    problem: str
    hook_spans: list[ReceivedSpan]
    processed: int
    usage: Usage
    size: int
    over_budget: int = 0
    answers: list[Answer] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)


class ServiceApp:
    """The service object: receivers → stages → destinations, plus hooks and metrics.

    ``config`` is a loaded ``LlmtapConfig`` (``export``, ``redaction``, ``pricing``, and
    ``service`` once registered); ``service`` overrides its service section. ``stages`` and
    ``destinations`` replace the ones built from the config (tests, embedding).
    """

    def __init__(
        self,
        config: Any = None,
        service: ServiceConfig | None = None,
        *,
        stages: Sequence[Stage] | None = None,
        destinations: Sequence[Destination] | None = None,
        registry: MetricsRegistry | None = None,
    ) -> None:
        self.config = config
        self.service = service if service is not None else service_config_of(config)
        self.metrics = registry if registry is not None else MetricsRegistry()
        self._m = ServiceMetrics(self.metrics, self.service.max_prompt_versions)
        self._counts = DestinationCounts(self._m)
        if stages is None:
            from llmtap.pipeline.stages import build_stages

            stages = build_stages(config)
        self.stages: list[Stage] = list(stages)
        trust = TRUST_EARNED if self.service.trust_upstream else TRUST_NONE
        for stage in self.stages:
            stage.trust_marks(trust)
        if self.service.trust_upstream:
            self._needs = needs_stages(self.stages)
            self._needs_trusted = needs_stages(self.stages, trusted=True)
        else:
            self._needs = self._needs_trusted = lambda attrs, trace_id=b"", span_id=b"": True
        self.destinations: list[Destination] = (
            list(destinations) if destinations is not None else self._build_destinations()
        )
        for dest in self.destinations:
            dest.count_with(self._counts)
        self._strict = [d for d in self.destinations if not d.best_effort]
        self._memory = MemoryLimit.from_config(self.service.memory_limit_mib)
        self._admit = threading.Lock()
        self._accepting = False
        self._forwarding = True
        self._on_stop: list[Callable[[float], Any]] = []
        self._started = False
        self._stopped = False
        self._hooks = SpanHooks(self.service.hook_queue_size, self._hook_dropped)
        self.feedback: FeedbackResolver | None = None
        if self.service.feedback_responses:
            self.feedback = FeedbackResolver(
                max_responses=self.service.feedback_responses,
                max_pending=self.service.feedback_pending,
                wait_s=self.service.feedback_wait_s,
                registry=self.metrics,
            )
        self._stage_failed = Once()
        self._last_backpressure_log = 0.0
        self.evaluation_sinks = EvaluationSinks.from_config(
            self.service.evaluation_sinks, self.metrics, prepare=self._run_stages
        )
        if self.evaluation_sinks is not None:
            self.on_spans(self.evaluation_sinks.on_spans)  # user feedback
        self.grpc: GrpcReceiver | None = None
        self.http: HttpReceiver | None = None
        self.metrics_server: MetricsServer | None = None
        self.metrics.gauge_callback(
            "llmtap_service_queue_depth",
            "Spans waiting per destination",
            lambda: {(d.name,): d.depth() for d in self.destinations},
            ("destination",),
        )
        self.metrics.gauge_callback(
            "llmtap_service_queue_capacity",
            "Spans that may wait per destination",
            lambda: {(d.name,): d.capacity for d in self.destinations},
            ("destination",),
        )
        self.metrics.gauge_callback(
            "llmtap_service_queue_bytes",
            "Bytes of spans waiting per destination",
            lambda: {(d.name,): d.depth_bytes() for d in self.destinations},
            ("destination",),
        )
        self.metrics.gauge_callback(
            "llmtap_service_hook_queue_depth",
            "Spans waiting for the on_spans hooks",
            lambda: self._hooks.depth(),
        )
        self.metrics.gauge_callback(
            "llmtap_service_up", "1 while the service takes data", lambda: int(self._accepting)
        )

    # construction

    def _build_destinations(self) -> list[Destination]:
        from llmtap.config_file import effective_service_name
        from llmtap.export.presets import build_translator_for, destination_name
        from llmtap.service.translate import request_translator

        exports = list(getattr(self.config, "export", None) or ())
        names = [destination_name(e, i) for i, e in enumerate(exports)]
        unknown = [n for n in self.service.best_effort if n not in names]
        if unknown:
            raise ValueError(
                f"service.best_effort: no export destination named {', '.join(unknown)} "
                f"(destinations: {', '.join(names) or 'none'})"
            )
        service_name = effective_service_name(self.config, os.environ)
        out = []
        for name, export in zip(names, exports, strict=True):
            forwarder = build_forwarder(export, service_name)
            translator = build_translator_for(export, service_name, name)
            out.append(
                Destination(
                    name,
                    forwarder,
                    capacity=max(self.service.queue_size, int(export.queue_size or 0)),
                    max_bytes=self.service.queue_max_bytes,
                    batch_size=int(export.batch_size or 512),
                    best_effort=name in self.service.best_effort,
                    counts=self._counts,
                    description=f"{export.preset}, {forwarder.kind} {forwarder.target}",
                    wal=self._wal(name),
                    translate=request_translator(translator) if translator else None,
                )
            )
        self._warn_orphan_queues(names)
        return out

    def _wal(self, destination: str) -> WriteAheadLog | None:
        if not self.service.queue_dir:
            return None
        root = Path(self.service.queue_dir).expanduser()
        return WriteAheadLog(root / directory_name(destination), fsync=self.service.queue_fsync)

    def _warn_orphan_queues(self, names: list[str]) -> None:
        if not self.service.queue_dir:
            return
        root = Path(self.service.queue_dir).expanduser()
        known = {directory_name(n) for n in names}
        for path in sorted(root.iterdir()):
            if path.is_dir() and path.name not in known and any(path.glob("*.wal")):
                _log.warning(
                    "queue directory %s belongs to no configured destination; its spans "
                    "are not sent (add the destination back, or delete the directory)",
                    path,
                )

    # hooks

    def on_spans(
        self,
        hook: Callable[[list[ReceivedSpan]], Any],
        *,
        trace_filter: Callable[[int], bool] | None = None,
    ) -> None:
        """Call ``hook(spans)`` with every processed span (batches, in arrival order, on one
        worker thread). ``trace_filter(trace_id)`` -> False skips a trace's spans before they
        are even decoded (use it for trace-id sampling). A slow hook loses spans (counted
        in ``llmtap_service_hook_spans_dropped_total``); it never delays forwarding."""
        self._hooks.add(hook, trace_filter)

    def on_stop(self, callback: Callable[[float], Any]) -> None:
        """Call ``callback(seconds_left)`` while stopping: after the receivers stopped and the
        ``on_spans`` hooks got every span taken, before the destination queues are drained,
        so that spans it passes to :meth:`submit` are still forwarded (the judge's last results).
        It gets about half of the time left."""
        self._on_stop.append(callback)

    def _hook_dropped(self, count: int) -> None:
        self._m.hook_dropped.inc(count)

    # receiving

    def accepting(self) -> bool:
        return self._accepting

    def count_request(self, transport: str, outcome: str) -> None:
        self._m.requests.inc(transport=transport, outcome=outcome)

    def ingest(
        self, request: bytes, transport: str = "grpc", sender: str | None = None
    ) -> Accepted:
        """Take one serialized ``ExportTraceServiceRequest`` (see the module doc); ``sender``
        names the trusted sender that sent it (its redaction marks are taken as they are)."""
        started = time.perf_counter()
        try:
            result = self._ingest(request, transport, sender)
        except Rejected as exc:
            self._m.requests.inc(transport=transport, outcome=exc.outcome)
            raise
        self._m.requests.inc(transport=transport, outcome="partial" if result.rejected else "ok")
        self._m.duration.observe(time.perf_counter() - started, transport=transport)
        return result

    def _refuse(self, reason: str, message: str, spans: int | None = None) -> Rejected:
        if spans:
            self._m.rejected.inc(spans, reason=reason)
        return Rejected(
            UNAVAILABLE, message, retry_after_s=self.service.retry_after_s, outcome=reason
        )

    def _full(self) -> Destination | None:
        for dest in self._strict:
            if dest.full():
                return dest
        return None

    def _ingest(self, request: bytes, transport: str, sender: str | None) -> Accepted:
        if not self._accepting:
            raise self._refuse("shutting_down", "the service is not taking data (shutting down)")
        if self._memory.exceeded():
            raise self._refuse(
                "memory_limit", "the service is over its memory limit; retry later", None
            )
        full = self._full()
        if full is not None:  # cheap early answer before any decoding
            raise self._backpressure(full, None)
        try:
            batch = self._process(request, sender is not None)
        except DecodeError as exc:
            raise Rejected(INVALID, f"malformed OTLP protobuf: {_decode_problem(exc)}") from None
        spans = len(batch.items)
        self._m.received.inc(spans + batch.rejected, transport=transport)
        if batch.rejected:
            self._m.rejected.inc(batch.rejected, reason="invalid")
        if spans:
            with self._admit:
                if not self._accepting:
                    raise self._refuse(
                        "shutting_down", "the service is not taking data (shutting down)", spans
                    )
                for dest in self._strict:
                    if not dest.has_room(spans, batch.size):
                        raise self._backpressure(dest, spans)
                self._offer(batch.items, spans)
            self._m.accepted.inc(spans)
            if batch.processed:
                self._m.processed.inc(batch.processed)
            if batch.over_budget > 0:
                self._over_budget(batch.over_budget)
            batch.usage.record(self._m)
            self._hooks.offer(batch.hook_spans)
            if batch.answers or batch.unresolved:
                self._resolve_feedback(batch)
        message = ""
        if batch.rejected:
            message = f"{batch.rejected} span(s) rejected: {batch.problem}"
        return Accepted(spans, batch.rejected, message)

    def _offer(self, items: list[SpanItem], spans: int) -> None:
        try:
            for dest in self.destinations:
                dest.offer(items)
        except QueueWriteError as exc:
            _log.error("%s; answering senders with a retryable error", exc)
            raise self._refuse("queue_write_failed", str(exc), spans) from None

    def _over_budget(self, count: int) -> None:
        self._m.over_budget.inc(count)
        warn_once(
            _log,
            "over_budget",
            "redaction over budget: %d text(s) of a request replaced unscanned by <OVER_BUDGET> "
            "(redaction.max_value_chars, service.request_budget_s); counted in "
            "llmtap_service_redaction_over_budget_total",
            count,
            once=self._stage_failed,
        )

    def _backpressure(self, dest: Destination, spans: int | None) -> Rejected:
        now = time.monotonic()
        if now - self._last_backpressure_log > 10.0:
            self._last_backpressure_log = now
            _log.warning(
                "queue of %s is full (%d/%d spans, %.1f/%.1f MiB); answering senders with a "
                "retryable error",
                dest.name,
                dest.depth(),
                dest.capacity,
                dest.depth_bytes() / 2**20,
                dest.max_bytes / 2**20,
                extra={
                    "fields": {
                        "destination": dest.name,
                        "depth": dest.depth(),
                        "bytes": dest.depth_bytes(),
                    }
                },
            )
        return self._refuse(
            "backpressure",
            f"the queue for {dest.name} is full; retry later",
            spans,
        )

    def _process(self, request: bytes, trusted: bool = False) -> _Batch:
        budget = self.service.request_budget_s
        deadline = time.monotonic() + budget if budget else 0.0
        wire = WireRequest.FromString(request)
        raw = RawRequest.FromString(request)
        needs = self._needs_trusted if trusted else self._needs
        hooks = self._hooks
        hooked = hooks.active
        count_usage = self.service.usage_metrics
        resolving = self.feedback is not None
        answers: list[Answer] = []
        unresolved: list[Unresolved] = []
        items: list[SpanItem] = []
        hook_spans: list[ReceivedSpan] = []
        usage = Usage()
        rejected = processed = size = over_budget = 0
        problem = ""
        for rs, raw_rs in zip(wire.resource_spans, raw.resource_spans, strict=True):
            rgroup = None
            for ss, raw_ss in zip(rs.scope_spans, raw_rs.scope_spans, strict=True):
                group = None
                regroups: list[ScopeGroup] = []
                for span, body in zip(ss.spans, raw_ss.spans, strict=True):
                    trace_id = span.trace_id
                    span_id = span.span_id
                    parent = span.parent_span_id
                    if (
                        len(trace_id) != 16
                        or trace_id == _ZERO_TRACE
                        or len(span_id) != 8
                        or span_id == _ZERO_SPAN
                        or (parent and len(parent) != 8)
                    ):
                        rejected += 1
                        if not problem:
                            problem = _id_problem(trace_id, span_id, parent)
                        continue
                    if group is None:
                        if rgroup is None:
                            rgroup = resource_group(rs)
                        group = scope_group(rgroup, ss)
                    attrs = span.attributes
                    out_group = None
                    run = needs(attrs, trace_id, span_id)
                    hook = hooked and hooks.wants(trace_id)
                    if run or hook:
                        pb = trace_pb2.Span.FromString(body)
                        data = to_span_data(
                            pb,
                            group.resource.attributes,
                            group.name,
                            group.version,
                            group.attributes,
                        )
                        if run:
                            processed += 1
                            data.marks_trusted = trusted
                            data.deadline = deadline
                            before = Snapshot(data)
                            self._run_stages(data)
                            if _OVER_BUDGET in data.attributes:
                                over_budget += _int(data.attributes[_OVER_BUDGET]) - _int(
                                    before.attributes.get(_OVER_BUDGET)
                                )
                            if write_back(pb, data, before):
                                body = pb.SerializeToString()
                            if regrouped(group, data):  # redaction changed the resource/scope
                                out_group = _regroup(regroups, rs, ss, data)
                        if hook:
                            hook_spans.append(data)
                        row = usage_from_data(data.attributes) if count_usage else None
                    elif count_usage and is_call(attrs):
                        row = usage_from_wire(attrs)
                    else:
                        row = None
                    if row is not None:
                        ns = span.end_time_unix_nano - span.start_time_unix_nano
                        usage.add(row, ns / 1e9 if span.end_time_unix_nano else -1.0)
                    if _FEEDBACK in attrs:
                        usage.add_feedback(attrs)
                    if resolving and _RESPONSE_ID in attrs:
                        _note_response(
                            attrs, trace_id, span_id, out_group or group, body, answers, unresolved
                        )
                    items.append((out_group or group, span_header(len(body)), body))
                    size += len(body)
        return _Batch(
            items,
            rejected,
            problem,
            hook_spans,
            processed,
            usage,
            size,
            over_budget,
            answers,
            unresolved,
        )

    def _run_stages(self, data: SpanData) -> None:
        for stage in self.stages:
            try:
                stage.apply(data)
            except Exception as exc:  # the stages guard themselves; this is the last resort
                name = getattr(stage, "name", type(stage).__name__)
                message = "stage %s failed on a span"
                warn_once(
                    _log,
                    name,
                    message,
                    name,
                    exc_info=exc,
                    once=self._stage_failed,
                    level=logging.ERROR,
                )

    # feedback recorded by response id in another process

    def _resolve_feedback(self, batch: _Batch) -> None:
        """Copy the feedback resolved by this (accepted) request into its answers' traces:
        forwarded like the service's own spans, and handed to the hooks (the judge)."""
        resolver = self.feedback
        if resolver is None:
            return
        try:
            resolved = resolver.observe(batch.answers, batch.unresolved)
        except Exception as exc:  # never fail an accepted request
            warn_once(_log, "feedback", "cannot resolve feedback: %s", exc, exc_info=exc)
            return
        if resolved:
            self._forward_copies(resolved)

    def _forward_copies(self, resolved: list[Resolved]) -> None:
        items: list[SpanItem] = []
        hook_spans: list[ReceivedSpan] = []
        for done in resolved:
            try:
                pb = copy_into_answer(done)
            except DecodeError:  # pragma: no cover - the body was validated on receipt
                continue
            group = done.feedback.group
            items.append(item(group, pb.SerializeToString()))
            if self._hooks.active and self._hooks.wants(pb.trace_id):
                hook_spans.append(
                    to_span_data(
                        pb, group.resource.attributes, group.name, group.version, group.attributes
                    )
                )
        self._forward_own(items)
        self._hooks.offer(hook_spans)

    # spans made by the service itself (the judge's evaluation spans)

    def submit(self, spans: Sequence[SpanData], *, scope_name: str = "llmtap.service") -> int:
        """Forward spans made in the service (e.g. evaluation results) to every destination,
        after the stages. Thread-safe; never blocks and never pushes back: what does not fit
        a queue is dropped and counted; returns that number (summed over destinations).
        Works from construction until the queues are drained at :meth:`stop` (so also from
        an :meth:`on_stop` callback)."""
        items = []
        for data in spans:
            self._run_stages(data)
            pb = from_span_data(data)
            group = group_for(dict(data.resource or {}), scope_name)
            items.append(item(group, pb.SerializeToString()))
        return self._forward_own(items)

    def _forward_own(self, items: list[SpanItem]) -> int:
        if not items or not self._forwarding:
            if items:
                for dest in self.destinations:
                    self._counts.dropped(dest.name, "shutdown", len(items))
            return len(items) * len(self.destinations)
        dropped = 0
        with self._admit:
            for dest in self.destinations:
                if dest.best_effort or dest.has_room(len(items), items_size(items)):
                    dropped += self._offer_own(dest, items)
                else:
                    self._counts.dropped(dest.name, "queue_full", len(items))
                    dropped += len(items)
        return dropped

    def _offer_own(self, dest: Destination, items: list[SpanItem]) -> int:
        try:
            return dest.offer(items)
        except QueueWriteError as exc:
            _log.error("%s", exc)
            self._counts.dropped(dest.name, "queue_write_failed", len(items))
            return len(items)

    # lifecycle

    def start(self) -> ServiceApp:
        """Bind the listeners and start taking data. Raises :class:`BindError`."""
        if self._started:
            return self
        svc = self.service
        tls = None
        if svc.tls:
            try:
                with open(os.path.expanduser(svc.tls_cert_file or ""), "rb") as fh:
                    cert = fh.read()
                with open(os.path.expanduser(svc.tls_key_file or ""), "rb") as fh:
                    key = fh.read()
            except OSError as exc:
                raise BindError(f"cannot read the TLS certificate/key: {exc}") from None
            tls = (cert, key)
        try:
            if svc.grpc_address:
                host, port = parse_address(svc.grpc_address, "grpc_address")
                self.grpc = GrpcReceiver(
                    self,
                    host,
                    port,
                    auth_token=svc.auth_token,
                    max_message_bytes=svc.max_message_bytes,
                    tls=tls,
                    workers=svc.workers,
                    senders=svc.sender_tokens(),
                )
            if svc.http_address:
                host, port = parse_address(svc.http_address, "http_address")
                self.http = HttpReceiver(
                    self,
                    host,
                    port,
                    auth_token=svc.auth_token,
                    max_message_bytes=svc.max_message_bytes,
                    tls_files=(
                        (
                            os.path.expanduser(svc.tls_cert_file or ""),
                            os.path.expanduser(svc.tls_key_file or ""),
                        )
                        if svc.tls
                        else None
                    ),
                    max_connections=svc.http_max_connections,
                    header_timeout_s=svc.http_header_timeout_s,
                    body_timeout_s=svc.http_body_timeout_s,
                    idle_timeout_s=svc.http_idle_timeout_s,
                    senders=svc.sender_tokens(),
                )
            if svc.metrics_address:
                host, port = parse_address(svc.metrics_address, "metrics_address")
                try:
                    self.metrics_server = MetricsServer(host, port, self.metrics, self.accepting)
                except OSError as exc:
                    raise BindError(
                        f"cannot listen on {svc.metrics_address} (metrics): {exc.strerror or exc}"
                    ) from None
        except BindError:
            self._close_listeners()
            raise
        self._accepting = True
        self._started = True
        if self.grpc is not None:
            self.grpc.start()
        if self.http is not None:
            self.http.start()
        if self.metrics_server is not None:
            self.metrics_server.start()
        fields: dict[str, Any] = {
            "grpc": self.grpc.address if self.grpc else None,
            "http": self.http.url if self.http else None,
            "metrics": self.metrics_server.url if self.metrics_server else None,
            "destinations": {d.name: d.description for d in self.destinations},
            "evaluation_sinks": (
                self.evaluation_sinks.describe() if self.evaluation_sinks is not None else {}
            ),
            "tls": svc.tls,
            "auth": svc.auth_token is not None,
            "trusted_senders": [s.name for s in svc.trusted_senders],
            "redaction_marks": self._marks_policy(),
        }
        _log.info("llmtap service started", extra={"fields": fields})
        if not self.destinations:
            _log.warning("no export destinations configured: spans are received but not forwarded")
        return self

    def _marks_policy(self) -> str:
        """How received redaction marks are taken, for the start log (never the key)."""
        if not self.service.trust_upstream:
            return "ignored: every span is redacted again (trust_upstream: false)"
        sealing = any(getattr(s, "seal_key", None) for s in self.stages)
        ways = (["sealed spans"] if sealing else []) + (
            ["trusted senders"] if self.service.trusted_senders else []
        )
        if not ways:
            return (
                "ignored: no seal key (redaction.seal_key_env) and no trusted_senders, "
                "so every span is redacted again"
            )
        return "taken from " + " and ".join(ways)

    def _close_listeners(self) -> None:
        if self.grpc is not None:
            self.grpc.stop(0)
            self.grpc = None
        if self.http is not None:
            self.http.stop(0)
            self.http = None
        if self.metrics_server is not None:
            self.metrics_server.stop()
            self.metrics_server = None

    def stop(self, timeout_s: float | None = None) -> StopReport:
        """Stop taking data (senders get a retryable error), finish requests under way, send
        what is queued within ``timeout_s`` (default ``shutdown_timeout_s``), and count what
        could not be sent as dropped (reason ``shutdown``)."""
        started = time.monotonic()
        timeout = self.service.shutdown_timeout_s if timeout_s is None else timeout_s
        deadline = started + timeout
        if self._stopped:
            return StopReport(True, {}, 0, 0.0)
        self._stopped = True
        self._accepting = False
        grace = min(2.0, timeout / 2)
        events = []
        if self.grpc is not None:
            events.append(self.grpc.stop(grace))
        if self.http is not None:
            self.http.stop(grace)
        for event in events:
            event.wait(max(0.0, grace - (time.monotonic() - started)) + 0.1)
        with self._admit:  # requests past admission have queued their spans by now
            pass
        # the hooks get what was taken; then the stop callbacks (the judge: decide open
        # traces, submit() its last results); only then are the queues drained
        if self.feedback is not None:
            self.feedback.close()
        hook_left = self._hooks.stop(max(0.0, (deadline - time.monotonic()) / 2))
        if hook_left:
            self._m.hook_dropped.inc(hook_left)
        for callback in self._on_stop:
            try:
                callback(max(0.0, (deadline - time.monotonic()) / 2))
            except Exception:
                _log.exception("a stop callback (%r) failed", callback)
        self._forwarding = False
        before = {d.name: int(self._m.dropped.total(destination=d.name)) for d in self.destinations}
        closing: list[Any] = list(self.destinations)
        if self.evaluation_sinks is not None:
            closing.append(self.evaluation_sinks)
        threads = [
            threading.Thread(
                target=d.close, args=(max(0.0, deadline - time.monotonic()),), daemon=True
            )
            for d in closing
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 2.0)
        dropped = {
            d.name: int(self._m.dropped.total(destination=d.name)) - before[d.name]
            for d in self.destinations
        }
        kept = {d.name: d.kept for d in self.destinations if d.wal is not None}
        drained = not any(dropped.values()) and not any(kept.values())
        report = StopReport(drained, dropped, hook_left, time.monotonic() - started, kept)
        _log.info(
            "llmtap service stopped",
            extra={
                "fields": {
                    "drained": drained,
                    "dropped": dropped,
                    "kept_on_disk": kept,
                    "hook_spans_dropped": hook_left,
                    "seconds": round(report.seconds, 3),
                    "spans_accepted": int(self._m.accepted.value()),
                    "spans_forwarded": {
                        d.name: int(self._m.forwarded.value(destination=d.name))
                        for d in self.destinations
                    },
                }
            },
        )
        if self.metrics_server is not None:
            self.metrics_server.stop()
        return report

    def __enter__(self) -> ServiceApp:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # numbers for tests, the CLI and the judge side

    def counters(self) -> dict[str, Any]:
        m = self._m
        return {
            "accepted": int(m.accepted.value()),
            "processed": int(m.processed.value()),
            "rejected": {
                r: int(m.rejected.value(reason=r))
                for r in (
                    "invalid",
                    "backpressure",
                    "shutting_down",
                    "memory_limit",
                    "queue_write_failed",
                )
            },
            "forwarded": {
                d.name: int(m.forwarded.value(destination=d.name)) for d in self.destinations
            },
            "dropped": {
                d.name: int(m.dropped.total(destination=d.name)) for d in self.destinations
            },
            "resent": {d.name: int(m.resent.total(destination=d.name)) for d in self.destinations},
            "hook_dropped": int(m.hook_dropped.value()),
        }


def _note_response(
    attrs: Any,
    trace_id: bytes,
    span_id: bytes,
    group: ScopeGroup,
    body: bytes,
    answers: list[Answer],
    unresolved: list[Unresolved],
) -> None:
    """A span with a response id: an answer, or feedback recorded where the answer was not
    seen (``llmtap.feedback.resolved`` = false); other evaluations are neither."""
    response_id = attrs[_RESPONSE_ID].string_value
    if not response_id:
        return
    if _EVALUATION not in attrs:
        feature = attrs[_FEATURE].string_value if _FEATURE in attrs else None
        answers.append(Answer(response_id, trace_id, span_id, feature or None))
    elif _RESOLVED in attrs and _is_false(attrs[_RESOLVED]):
        unresolved.append(Unresolved(response_id, group, body))


def _is_false(value: Any) -> bool:
    return value.WhichOneof("value") == "bool_value" and not value.bool_value


def _regroup(done: list[ScopeGroup], rs: Any, ss: Any, data: SpanData) -> ScopeGroup:
    """The group of a span whose resource or scope redaction changed; spans of one
    ``ScopeSpans`` redacted alike (the stage hands them the same objects) share one."""
    for group in done:
        if not regrouped(group, data):
            return group
    group = regroup(rs, ss, data)
    done.append(group)
    return group


def _decode_problem(exc: DecodeError) -> str:
    text = str(exc)
    if "depth" in text.lower():  # upb: "Exceeded upb_DecodeOptions_MaxDepth"
        return (
            "messages nested deeper than protobuf's limit of 100 (arrayValue or kvlistValue "
            "inside one another?)"
        )
    return text or "cannot parse"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _id_problem(trace_id: bytes, span_id: bytes, parent: bytes) -> str:
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        return "invalid trace_id (expected 16 bytes, not all zero)"
    if len(span_id) != 8 or span_id == _ZERO_SPAN:
        return "invalid span_id (expected 8 bytes, not all zero)"
    return "invalid parent_span_id (expected empty or 8 bytes)"
