"""The judge's metrics: OpenTelemetry instruments on the ``meter_provider`` given, or the
same metrics on a ``llmtap.service.metrics.MetricsRegistry`` given as ``metrics_registry``
(named for Prometheus: dots become underscores, counters end in ``_total``, units are
appended)::

    llmtap.judge.evaluations.run       {evaluation}  gen_ai.evaluation.name, llmtap.feature
    llmtap.judge.evaluations.failed    {evaluation}  gen_ai.evaluation.name, error.type
    llmtap.judge.evaluations.skipped   {evaluation}  gen_ai.evaluation.name, reason
        reason: sampled_out, duplicate, queue_full, shutdown
    llmtap.judge.verdicts              {verdict}     gen_ai.evaluation.name, llmtap.feature,
                                                     llmtap.evaluation.passed (true|false|unknown)
    llmtap.judge.pass_rate  (gauge)    1             gen_ai.evaluation.name, llmtap.feature;
                                                     over the last 100 pass/fail verdicts
    llmtap.judge.duration   (histogram) s            gen_ai.evaluation.name
    llmtap.judge.tokens                {token}       gen_ai.evaluation.name, gen_ai.token.type,
                                                     llmtap.evaluation.judge_model
    llmtap.judge.cost                  USD           gen_ai.evaluation.name,
                                                     llmtap.evaluation.judge_model
    llmtap.judge.traces.assembled      {trace}       reason (idle, max_wait, traces, bytes,
                                                     shutdown), llmtap.evaluation.late
    llmtap.judge.traces.decided_early  {trace}       reason (traces, bytes, shutdown)
    llmtap.judge.spans.dropped         {span}        reason (inbox_full)
    llmtap.judge.queue.depth  (gauge)  {evaluation}
    llmtap.judge.traces.open  (gauge)  {trace}
    llmtap.judge.assembly.bytes (gauge) By

``llmtap.feature`` values are capped at 100 distinct ones (then ``_other``).
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
from llmtap.service.results import ATTR_JUDGE_MODEL, ATTR_LATE, ATTR_PASSED
from llmtap.version import __version__

__all__ = ["SKIP_REASONS", "JudgeMetrics"]

SKIP_REASONS = ("sampled_out", "duplicate", "queue_full", "shutdown")

_EVAL = semconv.EVALUATION_NAME
_FEATURE = semconv.LLMTAP_FEATURE
_OTHER = "_other"
#: (name, kind, unit, description, attribute keys)
_SPECS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("llmtap.judge.evaluations.run", "counter", "{evaluation}",
     "Evaluations that ran to an end (any outcome)", (_EVAL, _FEATURE)),
    ("llmtap.judge.evaluations.failed", "counter", "{evaluation}",
     "Evaluations that ended without a verdict", (_EVAL, semconv.ERROR_TYPE)),
    ("llmtap.judge.evaluations.skipped", "counter", "{evaluation}",
     "Evaluations not run: sampled out, already judged, queue full, shutdown",
     (_EVAL, "reason")),
    ("llmtap.judge.verdicts", "counter", "{verdict}",
     "Verdicts by outcome", (_EVAL, _FEATURE, ATTR_PASSED)),
    ("llmtap.judge.duration", "histogram", "s",
     "Time to an evaluation's verdict, retries included", (_EVAL,)),
    ("llmtap.judge.tokens", "counter", "{token}",
     "Tokens used by the LLM judge", (_EVAL, semconv.TOKEN_TYPE, ATTR_JUDGE_MODEL)),
    ("llmtap.judge.cost", "counter", "USD",
     "Cost of the LLM judge's calls", (_EVAL, ATTR_JUDGE_MODEL)),
    ("llmtap.judge.traces.assembled", "counter", "{trace}",
     "Traces handed to the judge rules, by why they were decided", ("reason", ATTR_LATE)),
    ("llmtap.judge.traces.decided_early", "counter", "{trace}",
     "Traces judged before they were complete, to stay within memory bounds",
     ("reason",)),
    ("llmtap.judge.spans.dropped", "counter", "{span}",
     "Spans not held for judging (the judge's inbox was full)", ("reason",)),
    ("llmtap.judge.pass_rate", "gauge", "1",
     "Share of passing verdicts over the last 100 pass/fail verdicts", (_EVAL, _FEATURE)),
    ("llmtap.judge.queue.depth", "gauge", "{evaluation}",
     "Evaluations waiting in the judge queue", ()),
    ("llmtap.judge.traces.open", "gauge", "{trace}",
     "Traces being assembled", ()),
    ("llmtap.judge.assembly.bytes", "gauge", "By",
     "Estimated span memory held by trace assembly", ()),
)  # fmt: skip
_PROM_UNITS = {"s": "_seconds", "USD": "_usd", "By": "_bytes"}


def _prom_name(name: str, kind: str, unit: str) -> str:
    base = name.replace(".", "_") + _PROM_UNITS.get(unit, "")
    if base.endswith("_bytes_bytes"):
        base = base[: -len("_bytes")]
    return base + ("_total" if kind == "counter" else "")


class JudgeMetrics:
    """The judge's metrics on an OpenTelemetry ``MeterProvider`` and/or a
    ``llmtap.service.metrics.MetricsRegistry`` (see the module documentation)."""

    def __init__(
        self,
        meter_provider: Any = None,
        *,
        registry: Any = None,
        state: Callable[[], Mapping[str, float]] | None = None,
        max_features: int = 100,
        window: int = 100,
    ) -> None:
        self._state = state or (lambda: {})
        self._max_features = max_features
        self._features: set[str] = set()
        self._window = window
        self._rates: dict[tuple[str, str], deque[bool]] = {}
        self._lock = threading.Lock()
        self._otel: dict[str, Any] = {}
        self._prom: dict[str, tuple[Any, tuple[str, ...]]] = {}
        gauges = {
            "llmtap.judge.pass_rate": self._pass_rates,
            "llmtap.judge.queue.depth": lambda: [({}, self._state().get("queue_depth", 0))],
            "llmtap.judge.traces.open": lambda: [({}, self._state().get("open_traces", 0))],
            "llmtap.judge.assembly.bytes": lambda: [({}, self._state().get("assembly_bytes", 0))],
        }
        if meter_provider is not None:
            self._setup_otel(meter_provider, gauges)
        if registry is not None:
            self._setup_registry(registry, gauges)

    def _setup_otel(self, meter_provider: Any, gauges: Mapping[str, Callable]) -> None:
        from opentelemetry.metrics import Observation

        meter = meter_provider.get_meter("llmtap.service.judging", __version__)
        for name, kind, unit, description, _ in _SPECS:
            if kind == "counter":
                self._otel[name] = meter.create_counter(name, unit=unit, description=description)
            elif kind == "histogram":
                self._otel[name] = meter.create_histogram(
                    name,
                    unit=unit,
                    description=description,
                    explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
                )
            else:
                read = gauges[name]

                def callback(options: Any, _read: Callable = read) -> list[Any]:
                    try:
                        return [
                            Observation(value, {k: v for k, v in attrs.items() if v != ""})
                            for attrs, value in _read()
                        ]
                    except Exception:  # never break a metrics collection
                        return []

                meter.create_observable_gauge(
                    name, callbacks=[callback], unit=unit, description=description
                )

    def _setup_registry(self, registry: Any, gauges: Mapping[str, Callable]) -> None:
        for name, kind, unit, description, keys in _SPECS:
            prom = _prom_name(name, kind, unit)
            labels = tuple(k.replace(".", "_") for k in keys)
            if kind == "counter":
                self._prom[name] = (registry.counter(prom, description, labels), keys)
            elif kind == "histogram":
                self._prom[name] = (
                    registry.histogram(prom, description, labels, buckets=semconv.DURATION_BUCKETS),
                    keys,
                )
            else:
                read = gauges[name]

                def values(_read: Callable = read, _keys: tuple = keys) -> dict[tuple, float]:
                    return {
                        tuple(str(attrs.get(k, "")) for k in _keys): float(value)
                        for attrs, value in _read()
                    }

                registry.gauge_callback(prom, description, values, labels)

    # recording -------------------------------------------------------------------------

    def _add(self, name: str, value: float, attrs: Mapping[str, Any]) -> None:
        instrument = self._otel.get(name)
        if instrument is not None:
            instrument.add(value, {k: v for k, v in attrs.items() if v != ""})
        entry = self._prom.get(name)
        if entry is not None:
            metric, keys = entry
            metric.inc(value, **{k.replace(".", "_"): attrs.get(k, "") for k in keys})

    def _record(self, name: str, value: float, attrs: Mapping[str, Any]) -> None:
        instrument = self._otel.get(name)
        if instrument is not None:
            instrument.record(value, {k: v for k, v in attrs.items() if v != ""})
        entry = self._prom.get(name)
        if entry is not None:
            metric, keys = entry
            metric.observe(value, **{k.replace(".", "_"): attrs.get(k, "") for k in keys})

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
            self._add(
                "llmtap.judge.evaluations.skipped", count, {_EVAL: evaluation, "reason": reason}
            )

    def spans_dropped(self, count: int, reason: str) -> None:
        self._add("llmtap.judge.spans.dropped", count, {"reason": reason})

    def trace_decided(self, reason: str, late: bool) -> None:
        self._add(
            "llmtap.judge.traces.assembled",
            1,
            {"reason": reason, ATTR_LATE: "true" if late else "false"},
        )
        if reason in EARLY_REASONS:
            self._add("llmtap.judge.traces.decided_early", 1, {"reason": reason})

    def evaluated(self, verdict: Verdict, feature: str, duration_s: float) -> None:
        name = verdict.name
        self._add("llmtap.judge.evaluations.run", 1, {_EVAL: name, _FEATURE: feature})
        self._record("llmtap.judge.duration", duration_s, {_EVAL: name})
        if verdict.error_type:
            self._add(
                "llmtap.judge.evaluations.failed",
                1,
                {_EVAL: name, semconv.ERROR_TYPE: str(verdict.error_type)},
            )
        else:
            passed = verdict.passed
            outcome = "unknown" if passed is None else ("true" if passed else "false")
            self._add(
                "llmtap.judge.verdicts", 1, {_EVAL: name, _FEATURE: feature, ATTR_PASSED: outcome}
            )
            if passed is not None:
                with self._lock:
                    window = self._rates.get((name, feature))
                    if window is None:
                        window = self._rates[(name, feature)] = deque(maxlen=self._window)
                    window.append(bool(passed))
        model = verdict.judge_model or ""
        for kind, tokens in (("input", verdict.input_tokens), ("output", verdict.output_tokens)):
            if tokens:
                self._add(
                    "llmtap.judge.tokens",
                    tokens,
                    {_EVAL: name, semconv.TOKEN_TYPE: kind, ATTR_JUDGE_MODEL: model},
                )
        cost = verdict.cost_usd
        if isinstance(cost, (int, float)) and math.isfinite(cost) and cost > 0:
            self._add("llmtap.judge.cost", cost, {_EVAL: name, ATTR_JUDGE_MODEL: model})

    def _pass_rates(self) -> list[tuple[dict[str, str], float]]:
        with self._lock:
            items = [(k, list(w)) for k, w in self._rates.items() if w]
        return [({_EVAL: name, _FEATURE: feature}, sum(w) / len(w)) for (name, feature), w in items]

    def pass_rate(self, evaluation: str, feature: str = "") -> float | None:
        with self._lock:
            window = self._rates.get((evaluation, feature))
            return sum(window) / len(window) if window else None
