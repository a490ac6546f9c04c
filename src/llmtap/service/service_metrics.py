"""The service's own metrics, declared on its :class:`~llmtap.service.metrics.MetricsRegistry`,
and the counts its destinations report."""

from __future__ import annotations

import logging
import threading
import time

from llmtap import semconv
from llmtap.service.metrics import MetricsRegistry

__all__ = ["DestinationCounts", "ServiceMetrics"]

_log = logging.getLogger("llmtap.service")


class ServiceMetrics:
    """The service's own metrics on a :class:`MetricsRegistry`."""

    def __init__(self, registry: MetricsRegistry, max_prompt_versions: int | None = None) -> None:
        r = registry
        #: the prompt_version label's value of an ``llmtap.prompt.version`` (capped)
        self.prompt_version = r.capped_values(semconv.LLMTAP_PROMPT_VERSION, max_prompt_versions)
        self.requests = r.counter(
            "llmtap_service_requests_total",
            "OTLP export requests received, by transport (grpc, http) and outcome (ok, "
            "partial, invalid, too_large, unauthenticated, backpressure, shutting_down, ...)",
            ("transport", "outcome"),
        )
        self.received = r.counter(
            "llmtap_service_spans_received_total",
            "Spans in well-formed OTLP requests, by transport",
            ("transport",),
        )
        self.rejected = r.counter(
            "llmtap_service_spans_rejected_total",
            "Spans not taken: invalid (bad ids, reported as partial success; lost) or "
            "backpressure/shutting_down/memory_limit/queue_write_failed (refused with a "
            "retryable error; the sender retries)",
            ("reason",),
        )
        self.accepted = r.counter(
            "llmtap_service_spans_accepted_total", "Spans taken for forwarding"
        )
        self.processed = r.counter(
            "llmtap_service_spans_processed_total",
            "Spans the stages had work on (decoded, processed, re-encoded); the others "
            "were already processed upstream and are forwarded as received",
        )
        self.forwarded = r.counter(
            "llmtap_service_spans_forwarded_total",
            "Spans delivered to a destination",
            ("destination",),
        )
        self.dropped = r.counter(
            "llmtap_service_spans_dropped_total",
            "Spans lost for a destination: queue_full (best-effort destinations), shutdown "
            "(not sent within the shutdown timeout), rejected (refused by the backend)",
            ("destination", "reason"),
        )
        self.resent = r.counter(
            "llmtap_service_spans_resent_total",
            "Spans sent to a destination again, which it may have received already: "
            "timeout (a send got no answer in time) or replay (read back from the durable "
            "queue after a restart)",
            ("destination", "reason"),
        )
        self.send_failures = r.counter(
            "llmtap_service_export_failures_total",
            "Failed sends to a destination that will be retried",
            ("destination",),
        )
        self.over_budget = r.counter(
            "llmtap_service_redaction_over_budget_total",
            "Texts the service replaced unscanned by <OVER_BUDGET>: longer than "
            "redaction.max_value_chars, or met after a request's redaction time ran out",
        )
        self.hook_dropped = r.counter(
            "llmtap_service_hook_spans_dropped_total",
            "Spans not handed to on_spans hooks (judge) because their queue was full",
        )
        self.duration = r.histogram(
            "llmtap_service_request_duration_seconds",
            "Time to process an export request (decode, stages, queueing)",
            ("transport",),
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.cost = r.counter(
            "llmtap_cost_usd_total",
            "Cost of GenAI calls (llmtap.cost.total, else gen_ai.usage.cost), by model, "
            "llmtap.feature and llmtap.prompt.version",
            ("model", "feature", "prompt_version"),
            max_series=500,
        )
        self.tokens = r.counter(
            "llmtap_tokens_total",
            "GenAI tokens by model, llmtap.feature, llmtap.prompt.version and type (input, output)",
            ("model", "feature", "prompt_version", "type"),
            max_series=1000,
        )
        self.user_cost = r.counter(
            "llmtap_user_cost_usd_total",
            "Cost of GenAI calls (llmtap.cost.total, else gen_ai.usage.cost) by user.id "
            "(after redaction; an id "
            "holding personal data as user:<hmac>) and llmtap.feature; past max_series new "
            "users are counted as other",
            ("user", "feature"),
            max_series=1000,
        )
        self.call_duration = r.histogram(
            "llmtap_genai_duration_seconds",
            "Duration of GenAI spans that report usage (model calls), by model, feature and "
            "prompt version",
            ("model", "feature", "prompt_version"),
            buckets=semconv.DURATION_BUCKETS,
            max_series=500,
        )
        self.calls = r.counter(
            "llmtap_genai_calls_total",
            "GenAI calls (spans that report usage, and failed chat, completion and embeddings "
            "calls: error.type with a gen_ai.request.model), by model, feature, prompt version "
            "and error_type (empty when the call succeeded)",
            ("model", "feature", "prompt_version", "error_type"),
            max_series=1000,
        )
        self.feedback = r.counter(
            "llmtap_feedback_total",
            "Spans carrying user feedback (llmtap.feedback.label), by label and llmtap.feature",
            ("label", "feature"),
            max_series=200,
        )

    # the Destination counters interface
    def forwarded_spans(self, destination: str, spans: int) -> None:
        self.forwarded.inc(spans, destination=destination)

    def dropped_spans(self, destination: str, reason: str, spans: int) -> None:
        self.dropped.inc(spans, destination=destination, reason=reason)


class DestinationCounts:
    def __init__(self, metrics: ServiceMetrics) -> None:
        self.m = metrics
        self._lock = threading.Lock()
        self._last_log: dict[str, float] = {}

    def forwarded(self, destination: str, spans: int) -> None:
        self.m.forwarded_spans(destination, spans)

    def dropped(self, destination: str, reason: str, spans: int) -> None:
        self.m.dropped_spans(destination, reason, spans)
        now = time.monotonic()
        with self._lock:
            if now - self._last_log.get(destination + reason, -1e9) < 10.0:
                return
            self._last_log[destination + reason] = now
        _log.warning(
            "dropped %d span(s) for %s (%s)",
            spans,
            destination,
            reason,
            extra={"fields": {"destination": destination, "reason": reason, "spans": spans}},
        )

    def send_failed(self, destination: str) -> None:
        self.m.send_failures.inc(destination=destination)

    def resent(self, destination: str, reason: str, spans: int) -> None:
        self.m.resent.inc(spans, destination=destination, reason=reason)
