"""The judge's metrics, on the service's Prometheus registry (``/metrics``; their meaning
is registered in ``semconv/model/metrics.yaml`` as the ``llmtap.judge.*`` metrics)::

    llmtap_judge_evaluations_run_total       gen_ai_evaluation_name, llmtap_feature
    llmtap_judge_evaluations_failed_total    gen_ai_evaluation_name, error_type
    llmtap_judge_evaluations_skipped_total   gen_ai_evaluation_name, reason
        reason: sampled_out, duplicate, queue_full, shutdown
    llmtap_judge_verdicts_total              gen_ai_evaluation_name, llmtap_feature,
                                             llmtap_prompt_version,
                                             llmtap_evaluation_passed (true|false|unknown)
    llmtap_judge_pass_rate (gauge)           gen_ai_evaluation_name, llmtap_feature;
                                             over the last 100 pass/fail verdicts
    llmtap_judge_duration_seconds (histogram)  gen_ai_evaluation_name
    llmtap_judge_tokens_total                gen_ai_evaluation_name, gen_ai_token_type,
                                             llmtap_evaluation_judge_model
    llmtap_judge_cost_usd_total              gen_ai_evaluation_name,
                                             llmtap_evaluation_judge_model
    llmtap_judge_traces_assembled_total      reason (idle, max_wait, traces, bytes,
                                             shutdown), llmtap_evaluation_late
    llmtap_judge_traces_decided_early_total  reason (traces, bytes, shutdown)
    llmtap_judge_spans_dropped_total         reason (inbox_full)
    llmtap_judge_queue_depth (gauge)
    llmtap_judge_traces_open (gauge)
    llmtap_judge_assembly_bytes (gauge)

``llmtap_feature`` values are capped at 100 distinct ones (then ``_other``);
``llmtap_prompt_version`` values share the service's prompt-version cap
(``service.max_prompt_versions``, then ``other``) with its usage metrics.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from llmtap import semconv
from llmtap.evals.base import Verdict
from llmtap.service.assembly import EARLY_REASONS
from llmtap.service.metrics import MetricsRegistry

__all__ = ["SEMCONV_NAMES", "SKIP_REASONS", "JudgeMetrics"]

SKIP_REASONS = ("sampled_out", "duplicate", "queue_full", "shutdown")

_OTHER = "_other"
#: each metric's family name -> the ``llmtap.judge.*`` metric of the semantic conventions
#: it is (semconv/model/metrics.yaml)
SEMCONV_NAMES = {
    "llmtap_judge_evaluations_run": "llmtap.judge.evaluations.run",
    "llmtap_judge_evaluations_failed": "llmtap.judge.evaluations.failed",
    "llmtap_judge_evaluations_skipped": "llmtap.judge.evaluations.skipped",
    "llmtap_judge_verdicts": "llmtap.judge.verdicts",
    "llmtap_judge_duration_seconds": "llmtap.judge.duration",
    "llmtap_judge_tokens": "llmtap.judge.tokens",
    "llmtap_judge_cost_usd": "llmtap.judge.cost",
    "llmtap_judge_traces_assembled": "llmtap.judge.traces.assembled",
    "llmtap_judge_traces_decided_early": "llmtap.judge.traces.decided_early",
    "llmtap_judge_spans_dropped": "llmtap.judge.spans.dropped",
    "llmtap_judge_pass_rate": "llmtap.judge.pass_rate",
    "llmtap_judge_queue_depth": "llmtap.judge.queue.depth",
    "llmtap_judge_traces_open": "llmtap.judge.traces.open",
    "llmtap_judge_assembly_bytes": "llmtap.judge.assembly.bytes",
}
_EVAL = "gen_ai_evaluation_name"
_FEATURE = "llmtap_feature"
_MODEL = "llmtap_evaluation_judge_model"
_VERSION = "llmtap_prompt_version"


class JudgeMetrics:
    """The judge's metrics on the service's :class:`~llmtap.service.metrics.MetricsRegistry`
    (a registry of their own when none is given; see the module documentation)."""

    def __init__(
        self,
        registry: MetricsRegistry | None = None,
        *,
        state: Callable[[], Mapping[str, float]] | None = None,
        max_features: int = 100,
        window: int = 100,
    ) -> None:
        self.registry = r = registry if registry is not None else MetricsRegistry()
        self._state = state or (lambda: {})
        self._max_features = max_features
        self._features: set[str] = set()
        self._window = window
        self._rates: dict[tuple[str, str], deque[bool]] = {}
        self._lock = threading.Lock()
        #: the llmtap_prompt_version label of an llmtap.prompt.version (capped, shared)
        self.prompt_version = r.capped_values(semconv.LLMTAP_PROMPT_VERSION)
        self._run = r.counter(
            "llmtap_judge_evaluations_run_total",
            "Evaluations that ran to an end (any outcome)",
            (_EVAL, _FEATURE),
        )
        self._failed = r.counter(
            "llmtap_judge_evaluations_failed_total",
            "Evaluations that ended without a verdict",
            (_EVAL, "error_type"),
        )
        self._skipped = r.counter(
            "llmtap_judge_evaluations_skipped_total",
            "Evaluations not run: sampled out, already judged, queue full, shutdown",
            (_EVAL, "reason"),
        )
        self._verdicts = r.counter(
            "llmtap_judge_verdicts_total",
            "Verdicts by outcome",
            (_EVAL, _FEATURE, _VERSION, "llmtap_evaluation_passed"),
        )
        self._duration = r.histogram(
            "llmtap_judge_duration_seconds",
            "Time to an evaluation's verdict, retries included",
            (_EVAL,),
            buckets=semconv.DURATION_BUCKETS,
        )
        self._tokens = r.counter(
            "llmtap_judge_tokens_total",
            "Tokens used by the LLM judge",
            (_EVAL, "gen_ai_token_type", _MODEL),
        )
        self._cost = r.counter(
            "llmtap_judge_cost_usd_total", "Cost of the LLM judge's calls", (_EVAL, _MODEL)
        )
        self._assembled = r.counter(
            "llmtap_judge_traces_assembled_total",
            "Traces handed to the judge rules, by why they were decided",
            ("reason", "llmtap_evaluation_late"),
        )
        self._early = r.counter(
            "llmtap_judge_traces_decided_early_total",
            "Traces judged before they were complete, to stay within memory bounds",
            ("reason",),
        )
        self._dropped = r.counter(
            "llmtap_judge_spans_dropped_total",
            "Spans not held for judging (the judge's inbox was full)",
            ("reason",),
        )
        r.gauge_callback(
            "llmtap_judge_pass_rate",
            "Share of passing verdicts over the last 100 pass/fail verdicts",
            self._pass_rates,
            (_EVAL, _FEATURE),
        )
        for name, key, help in (
            ("llmtap_judge_queue_depth", "queue_depth", "Evaluations waiting in the judge queue"),
            ("llmtap_judge_traces_open", "open_traces", "Traces being assembled"),
            (
                "llmtap_judge_assembly_bytes",
                "assembly_bytes",
                "Estimated span memory held by trace assembly",
            ),
        ):
            r.gauge_callback(name, help, lambda key=key: self._state().get(key, 0))

    def feature(self, value: Any) -> str:
        """A feature label value, capped in cardinality."""
        if value is None:
            return ""
        text = str(value)
        with self._lock:
            if text in self._features:
                return text
            if len(self._features) < self._max_features:
                self._features.add(text)
                return text
        return _OTHER

    def skipped(self, evaluation: str, reason: str, count: int = 1) -> None:
        if count:
            self._skipped.labels(evaluation, reason).inc(count)

    def spans_dropped(self, count: int, reason: str) -> None:
        self._dropped.labels(reason).inc(count)

    def trace_decided(self, reason: str, late: bool) -> None:
        self._assembled.labels(reason, "true" if late else "false").inc()
        if reason in EARLY_REASONS:
            self._early.labels(reason).inc()

    def evaluated(
        self, verdict: Verdict, feature: str, duration_s: float, prompt_version: str = ""
    ) -> None:
        """Count a verdict; ``feature`` and ``prompt_version`` are label values already
        capped (:meth:`feature`, :attr:`prompt_version`)."""
        name = verdict.name
        self._run.labels(name, feature).inc()
        self._duration.observe(duration_s, **{_EVAL: name})
        if verdict.error_type:
            self._failed.labels(name, str(verdict.error_type)).inc()
        else:
            passed = verdict.passed
            outcome = "unknown" if passed is None else ("true" if passed else "false")
            self._verdicts.labels(name, feature, prompt_version, outcome).inc()
            if passed is not None:
                with self._lock:
                    window = self._rates.get((name, feature))
                    if window is None:
                        window = self._rates[(name, feature)] = deque(maxlen=self._window)
                    window.append(bool(passed))
        model = verdict.judge_model or ""
        for kind, tokens in (("input", verdict.input_tokens), ("output", verdict.output_tokens)):
            if tokens:
                self._tokens.labels(name, kind, model).inc(tokens)
        cost = verdict.cost_usd
        if isinstance(cost, (int, float)) and math.isfinite(cost) and cost > 0:
            self._cost.labels(name, model).inc(cost)

    def _pass_rates(self) -> dict[tuple[str, str], float]:
        with self._lock:
            items = [(k, list(w)) for k, w in self._rates.items() if w]
        return {key: sum(w) / len(w) for key, w in items}

    def pass_rate(self, evaluation: str, feature: str = "") -> float | None:
        with self._lock:
            window = self._rates.get((evaluation, feature))
            return sum(window) / len(window) if window else None
