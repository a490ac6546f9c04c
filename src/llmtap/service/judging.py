"""The judge of the llmtap service: rules over assembled traces, a bounded queue of
evaluations, concurrent evaluators, and the verdicts written back into the traces.

The service calls :meth:`Judging.on_spans` with every span it has processed (after the
cost and redaction stages), next to forwarding them. That call only appends the batch to
a bounded inbox and returns; everything else runs on the judge's own thread and asyncio
event loop, so **forwarding never waits for judging**:

1. **Assembly** (:mod:`llmtap.service.assembly`): spans grouped by trace id; a trace is
   ready after ``trace_idle_s`` without a new span or ``trace_max_wait_s`` after its first
   one; the oldest traces are decided early when ``max_traces``/``max_bytes`` would be
   passed; late spans are judged as a small new batch, with the decided trace's spans as
   context while they are retained (``late_window_s``).
2. **Rules**: for each ready trace and each rule, the target spans (``target`` + ``when``)
   are selected; then the rule samples the *trace* with
   ``trace_id_sampled(trace_id, sample, salt=<rule name>)`` (after filtering, so replicas
   agree and rules sharing a name stay nested: a trace kept at 5% is kept at 10% too); then
   (trace, span, evaluator) is looked up in a bounded LRU (``dedup_size``) so that **no span
   is ever judged twice by the same evaluator**, whatever the rules and batches.
3. **Scheduling**: one job per (span, evaluator) goes into a bounded asyncio queue
   (``queue_size``; when full the job is skipped and counted,
   ``skipped{reason=queue_full}``); ``concurrency`` workers run evaluators, each evaluation
   bounded by ``eval_timeout_s`` on top of the evaluators' own timeouts and retries.
4. **Results** (:mod:`llmtap.service.results`): an ``evaluate {name}`` child span of the
   evaluated span, handed to ``emit`` (the service's forwarders); a
   ``gen_ai.evaluation.result`` log record when a ``logger_provider`` is given; the review
   queue (:mod:`llmtap.service.review`) for spans with a failing verdict; metrics.

Configuration (``judge:`` in ``llmtap.yaml``; :class:`JudgeConfig`)::

    judge:
      model:                        # the LLM judge (llmtap.evals.judge_client.JudgeSettings)
        name: gpt-4o-mini
        base_url: ${env:JUDGE_BASE_URL}
        api: openai                 # or anthropic (the wire protocol)
        api_key: ${env:JUDGE_API_KEY}
        timeout_s: 30
        max_retries: 3
      concurrency: 4                # evaluations at once
      queue_size: 1000              # evaluations waiting; more are skipped (counted)
      trace_idle_s: 10              # a trace is complete after this long without a new span
      trace_max_wait_s: 60          # ... or this long after its first span, at the latest
      max_traces: 10000             # open traces held at most
      max_bytes: 256MiB             # span memory held at most (bytes, or 512MB, 1GiB, ...)
      late_window_s: 300            # decided traces' spans kept as context for late spans
      dedup_size: 100000            # (trace, span, evaluator) decisions remembered
      eval_timeout_s: 300           # one evaluation at most, retries included
      review_queue: review.jsonl    # JSON lines of spans with failing verdicts (optional)
      review_max_bytes: 64MiB       # then rotated to review.jsonl.1
      rules:
        - evaluator: faithfulness   # a name, or a mapping, given to the evaluator registry
          when: {llmtap.feature: support}
          sample: 0.05
        - evaluator: answer_relevance
          when: {feedback: negative}
        - evaluator: regex          # flat form: the evaluator's own keys beside the rule's
          pattern: "(?i).*refund.*"
          name: mentions_refund     # the evaluation name (gen_ai.evaluation.name)
          target: all_matching
          when: {name: {regex: "chat .*"}}
        - evaluator: {evaluator: json_schema, schema: {type: object}}   # nested form
          name: answer_schema

Rule fields: ``evaluator`` (required: an evaluator name of ``llmtap.evals.registry``, its
options given beside it, or a whole registry entry as a mapping), ``when`` (the matcher of
:mod:`llmtap.pipeline.sampling`: attributes, ``status``, ``duration``, ``name``, ``kind``,
``any``/``all``/``not``; plus ``feedback``, below), ``sample`` (0..1, default 1), ``name``
(the evaluation's name, default the evaluator's: it is ``gen_ai.evaluation.name``, the
sampling salt, and the dedup key, so rules with the same name sample the same traces and
never judge a span twice between them), ``target``:

* ``inference`` (default): the trace's GenAI inference spans (``gen_ai.operation.name`` of
  ``chat``, ``text_completion`` or ``generate_content``) that match ``when``;
* ``root``: the trace's root span (no parent), or when the root was not received, the
  earliest span whose parent is not in the trace, if it matches ``when``;
* ``all_matching``: every span of the trace that matches ``when``.

Spans that are themselves evaluation results or feedback (they carry
``gen_ai.evaluation.name``) are never targets.

``feedback`` is a condition on the *whole trace*, allowed only at the top level of
``when`` and AND-ed with the rest: ``negative``, ``positive`` or ``any``. A trace has
negative (positive) feedback when any of its spans, or any event of its spans, carries

* ``llmtap.feedback.label`` = ``negative`` (``positive``), or
* ``llmtap.evaluation.source`` = ``user`` together with ``gen_ai.evaluation.name`` (or the
  event is named ``gen_ai.evaluation.result``) and a ``gen_ai.evaluation.score.value``
  below 0 (above 0) - or ``gen_ai.evaluation.score.label`` = ``negative``/``positive``.
  Feedback senders with another scale (1-5 stars) set ``llmtap.feedback.label``
  (``neutral`` marks feedback with no polarity, whatever its score).

Feedback usually arrives long after the answer. It then comes as a late span: the late
batch carries the retained spans of the trace, so ``feedback: negative`` rules select the
trace's inference spans then (those not yet judged by that evaluator).

Metrics (OpenTelemetry instruments on the ``meter_provider`` given, or the same metrics
on a ``llmtap.service.metrics.MetricsRegistry`` given as ``metrics_registry``, named for
Prometheus: dots become underscores, counters end in ``_total``, units are appended)::

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

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmtap import semconv
from llmtap.evals.base import EvalInput, Evaluator, Verdict
from llmtap.evals.judge_client import JudgeSettings
from llmtap.pipeline.sampling import Matcher, compile_when, trace_id_sampled
from llmtap.pipeline.span import SpanData
from llmtap.service.assembly import EARLY_REASONS, ReadyTrace, TraceAssembler
from llmtap.service.results import (
    ATTR_JUDGE_MODEL,
    ATTR_LATE,
    ATTR_PASSED,
    ATTR_SOURCE,
    build_log_record,
    build_result_span,
    evaluation_attributes,
)
from llmtap.service.review import ReviewQueue, review_entry
from llmtap.version import __version__

__all__ = [
    "FEEDBACK_LABEL",
    "TARGETS",
    "CompiledRule",
    "JudgeConfig",
    "JudgeMetrics",
    "JudgeRule",
    "Judging",
    "compile_rule_when",
    "load_judge_config",
    "parse_size",
    "trace_feedback",
]

_log = logging.getLogger("llmtap.service")

TARGETS = ("inference", "root", "all_matching")
FEEDBACK_VALUES = ("negative", "positive", "any")
FEEDBACK_LABEL = semconv.LLMTAP_FEEDBACK_LABEL
SKIP_REASONS = ("sampled_out", "duplicate", "queue_full", "shutdown")

# Configuration ---------------------------------------------------------------------------

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([kKmMgGtT]i?)?[bB]?\s*")
_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
}


def parse_size(value: int | float | str) -> int:
    """Bytes from ``1048576``, ``"512MB"`` (powers of 1000) or ``"256MiB"`` (of 1024)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size in bytes, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"expected a size in bytes, got {value!r}")
        return int(value)
    match = _SIZE.fullmatch(str(value))
    if not match:
        raise ValueError(f"expected a size such as 268435456, 256MiB or 500MB, got {value!r}")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


_PATHED = re.compile(r"[A-Za-z_][\w.\[\]-]*: ")


def _under(prefix: str, line: str) -> str:
    """``line`` (``<path>: <problem>`` or a bare problem) moved under ``prefix``."""
    return f"{prefix}.{line}" if _PATHED.match(line) else f"{prefix}: {line}"


def _choices(value: Any, choices: Sequence[str]) -> str:
    return f"expected one of {', '.join(choices)}, got {value!r}"


def _nested_feedback(when: Any, where: str, out: list[str]) -> None:
    """Paths of ``feedback`` keys inside any/all/not (they would be taken as attributes)."""
    if isinstance(when, Mapping):
        for key, value in when.items():
            if key in ("any", "all") and isinstance(value, list):
                for i, item in enumerate(value):
                    _check_nested(item, f"{where}.{key}[{i}]", out)
            elif key == "not":
                _check_nested(value, f"{where}.not", out)


def _check_nested(when: Any, where: str, out: list[str]) -> None:
    if isinstance(when, Mapping):
        if "feedback" in when:
            out.append(
                f"{where}.feedback: feedback is a condition on the whole trace; put it at "
                "the top level of when"
            )
        _nested_feedback(when, where, out)


def compile_rule_when(when: Any, where: str = "when") -> tuple[Matcher, str | None]:
    """A judge rule's ``when``: the span matcher and the trace-level ``feedback`` condition.

    Raises ``ValueError`` with one ``<path>: <problem>`` line per problem.
    """
    problems: list[str] = []
    feedback: str | None = None
    rest = when
    if isinstance(when, Mapping) and "feedback" in when:
        raw = when["feedback"]
        if isinstance(raw, str) and raw.strip().lower() in FEEDBACK_VALUES:
            feedback = raw.strip().lower()
        else:
            problems.append(f"{where}.feedback: {_choices(raw, FEEDBACK_VALUES)}")
        rest = {k: v for k, v in when.items() if k != "feedback"}
    _nested_feedback(rest, where, problems)
    matcher: Matcher | None = None
    try:
        matcher = compile_when(rest if rest is not None else {}, where)
    except ValueError as exc:
        problems.extend(line for line in str(exc).splitlines() if line.strip())
    if problems or matcher is None:
        raise ValueError("\n".join(problems))
    return matcher, feedback


_RULE_FIELDS = ("evaluator", "when", "sample", "name", "target")


@dataclass
class JudgeRule:
    """One ``judge.rules[]`` entry (see the module documentation).

    ``options`` are the evaluator's own keys when ``evaluator`` is a name (the flat form
    ``{evaluator: regex, pattern: "...", when: ...}``); a mapping ``evaluator`` carries them
    itself. :meth:`spec` is what the evaluator registry gets.
    """

    evaluator: str | dict[str, Any]
    when: dict[str, Any] = field(default_factory=dict)
    sample: float = 1.0
    name: str | None = None
    target: str = "inference"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        errors: list[str] = []
        if isinstance(self.evaluator, str):
            if not self.evaluator.strip():
                errors.append("evaluator: is empty")
        elif not isinstance(self.evaluator, Mapping) or not self.evaluator:
            errors.append(
                f"evaluator: expected an evaluator name or a mapping, got {self.evaluator!r}"
            )
        elif self.options:
            errors.extend(
                f"{key}: unknown rule key (the options of an evaluator given as a mapping go "
                "inside that mapping)"
                for key in self.options
            )
        if (
            isinstance(self.sample, bool)
            or not isinstance(self.sample, (int, float))
            or not 0.0 <= self.sample <= 1.0
        ):
            errors.append(f"sample: expected a ratio between 0 and 1, got {self.sample!r}")
        if self.target not in TARGETS:
            errors.append(f"target: {_choices(self.target, TARGETS)}")
        if self.name is not None and not self.name.strip():
            errors.append("name: is empty")
        try:
            compile_rule_when(self.when if self.when is not None else {}, "when")
        except ValueError as exc:
            errors.append(str(exc))
        if errors:
            raise ValueError("\n".join(errors))

    @classmethod
    def from_mapping(cls, raw: Any) -> JudgeRule:
        """A rule from its config mapping; keys other than the rule's own are evaluator
        options. Raises ``ValueError`` with one ``<key path>: <problem>`` line per problem."""
        from llmtap.config_file import ConfigError, build

        if isinstance(raw, JudgeRule):
            return raw
        if not isinstance(raw, Mapping):
            raise ValueError(f"expected a mapping with an evaluator key, got {raw!r}")
        core = {k: raw[k] for k in _RULE_FIELDS if k in raw}
        options = {str(k): v for k, v in raw.items() if k not in _RULE_FIELDS}
        if "evaluator" in core:
            core["options"] = options
        try:
            return build(cls, core)
        except ConfigError as exc:
            lines = [f"{p.path}: {p.message}" if p.path else p.message for p in exc.problems]
            raise ValueError("\n".join(lines)) from None

    def spec(self) -> dict[str, Any]:
        """The evaluator entry for ``llmtap.evals.registry.build_evaluator``; ``name`` names
        the evaluator (``gen_ai.evaluation.name``)."""
        if isinstance(self.evaluator, str):
            out: dict[str, Any] = {"evaluator": self.evaluator, **self.options}
        else:
            out = dict(self.evaluator)
        if self.name is not None:
            out.setdefault("name", self.name)
        return out


@dataclass
class JudgeConfig:
    """The ``judge:`` section of ``llmtap.yaml`` (see the module documentation)."""

    model: JudgeSettings | None = None
    #: JudgeRule objects, or their config mappings (converted here)
    rules: list[Any] = field(default_factory=list)
    concurrency: int = 4
    queue_size: int = 1000
    trace_idle_s: float = 10.0
    trace_max_wait_s: float = 60.0
    max_traces: int = 10_000
    max_bytes: int | str = 256 * 1024 * 1024
    late_window_s: float = 300.0
    dedup_size: int = 100_000
    eval_timeout_s: float = 300.0
    review_queue: str | None = None
    review_max_bytes: int | str = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        errors: list[str] = []
        rules: list[JudgeRule] = []
        for i, raw in enumerate(self.rules or ()):
            try:
                rules.append(JudgeRule.from_mapping(raw))
            except ValueError as exc:
                errors.extend(_under(f"rules[{i}]", line) for line in str(exc).splitlines())
        self.rules = rules
        for key in ("max_bytes", "review_max_bytes"):
            try:
                setattr(self, key, parse_size(getattr(self, key)))
            except ValueError as exc:
                errors.append(f"{key}: {exc}")
                continue
            if getattr(self, key) < 1:
                errors.append(f"{key}: expected a positive size, got {getattr(self, key)!r}")
        for key in ("concurrency", "queue_size", "max_traces", "dedup_size"):
            if getattr(self, key) < 1:
                errors.append(
                    f"{key}: expected a whole number of 1 or more, got {getattr(self, key)!r}"
                )
        for key in ("trace_idle_s", "trace_max_wait_s", "eval_timeout_s"):
            if not getattr(self, key) > 0:
                errors.append(
                    f"{key}: expected a number of seconds above 0, got {getattr(self, key)!r}"
                )
        if self.late_window_s < 0:
            errors.append(f"late_window_s: expected 0 or more seconds, got {self.late_window_s!r}")
        if self.trace_max_wait_s < self.trace_idle_s:
            errors.append(
                f"trace_max_wait_s: {self.trace_max_wait_s} is shorter than trace_idle_s "
                f"{self.trace_idle_s}; a trace would never be judged as complete"
            )
        if self.review_queue is not None and not self.review_queue.strip():
            errors.append("review_queue: is empty; leave it out to turn the review queue off")
        if errors:
            raise ValueError("\n".join(errors))


def load_judge_config(cfg: Any) -> JudgeConfig | None:
    """``judge:`` of a loaded ``LlmtapConfig`` as a :class:`JudgeConfig` (errors with file
    and line), or None when the file has no ``judge`` section."""
    if getattr(cfg, "judge", None) is None:
        return None
    return cfg.section("judge", JudgeConfig)


# Rules -----------------------------------------------------------------------------------

_NEGATIVE_LABELS = frozenset({"negative", "thumbs_down", "bad"})
_POSITIVE_LABELS = frozenset({"positive", "thumbs_up", "good"})


def _feedback_in(attrs: Mapping[str, Any], is_result_event: bool, out: set[str]) -> None:
    label = attrs.get(FEEDBACK_LABEL)
    if isinstance(label, str):
        text = label.strip().lower()
        if text in ("negative", "positive"):
            out.add(text)
            return
        if text == "neutral":  # e.g. 3 of 5 stars: a score above 0, but no polarity
            return
    source = attrs.get(ATTR_SOURCE)
    if not (isinstance(source, str) and source.lower() == "user"):
        return
    if not (is_result_event or semconv.EVALUATION_NAME in attrs):
        return
    score = attrs.get(semconv.EVALUATION_SCORE_VALUE)
    if isinstance(score, (int, float)) and not isinstance(score, bool) and score != 0:
        out.add("negative" if score < 0 else "positive")
        return
    text = str(attrs.get(semconv.EVALUATION_SCORE_LABEL, "")).strip().lower()
    if text in _NEGATIVE_LABELS:
        out.add("negative")
    elif text in _POSITIVE_LABELS:
        out.add("positive")


def trace_feedback(spans: Iterable[SpanData]) -> frozenset[str]:
    """The user feedback found in a trace: a subset of ``{"negative", "positive"}``."""
    found: set[str] = set()
    for span in spans:
        _feedback_in(span.attributes, False, found)
        for event in span.events:
            if event.attributes:
                _feedback_in(event.attributes, event.name == semconv.EVENT_EVALUATION_RESULT, found)
    return frozenset(found)


class _TraceFacts:
    __slots__ = ("_feedback", "_spans")

    def __init__(self, spans: Sequence[SpanData]) -> None:
        self._spans = spans
        self._feedback: frozenset[str] | None = None

    def feedback(self) -> frozenset[str]:
        if self._feedback is None:
            self._feedback = trace_feedback(self._spans)
        return self._feedback


def _roots(spans: Sequence[SpanData]) -> list[SpanData]:
    spans = [s for s in spans if semconv.EVALUATION_NAME not in s.attributes]
    roots = [s for s in spans if not s.parent_span_id]
    if roots:
        return roots
    ids = {s.span_id for s in spans}
    orphans = [s for s in spans if s.parent_span_id not in ids]
    return [min(orphans, key=lambda s: s.start_ns)] if orphans else []


class CompiledRule:
    """A judge rule with its evaluator and compiled matcher."""

    def __init__(self, rule: JudgeRule, evaluator: Evaluator, index: int = 0) -> None:
        self.rule = rule
        self.index = index
        self.evaluator = evaluator
        self.evaluation: str = evaluator.name
        #: the sampling salt: rules with the same name sample the same traces (nested)
        self.name: str = rule.name or evaluator.name
        self.sample = float(rule.sample)
        self.target = rule.target
        self.matcher, self.feedback = compile_rule_when(rule.when or {}, "when")
        self.source = "judge" if getattr(evaluator, "uses_model", False) else "rule"

    def sampled(self, trace_id: int) -> bool:
        return trace_id_sampled(trace_id, self.sample, self.name)

    def candidates(self, trace: ReadyTrace, facts: _TraceFacts | None = None) -> list[SpanData]:
        """The spans of ``trace`` this rule targets (before sampling and dedup)."""
        if self.feedback is not None:
            found = (facts or _TraceFacts(trace.spans)).feedback()
            if (self.feedback == "any" and not found) or (
                self.feedback != "any" and self.feedback not in found
            ):
                return []
        if self.target == "inference":
            ops = semconv.INFERENCE_OPERATIONS
            pool = [
                s
                for s in trace.spans
                if s.attributes.get(semconv.OPERATION) in ops
                and semconv.EVALUATION_NAME not in s.attributes
            ]
        elif self.target == "root":
            pool = _roots(trace.spans)
        else:
            pool = [s for s in trace.spans if semconv.EVALUATION_NAME not in s.attributes]
        matches = self.matcher.matches
        return [
            s
            for s in pool
            if matches(
                s.attributes,
                status_error=s.is_error,
                duration_s=s.duration_s,
                name=s.name,
                kind=s.kind,
            )
        ]

    def __repr__(self) -> str:
        return (
            f"CompiledRule({self.name!r}, evaluator={self.evaluation!r}, "
            f"target={self.target!r}, sample={self.sample})"
        )


class _Keys:
    """A bounded LRU set of (trace, span, evaluator) decisions, as 64-bit hashes."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = max(1, maxsize)
        self._keys: OrderedDict[int, None] = OrderedDict()

    @staticmethod
    def key(trace_id: int, span_id: int, evaluation: str) -> int:
        return hash((trace_id, span_id, evaluation))

    def __contains__(self, key: int) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: int) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.maxsize:
            self._keys.popitem(last=False)


# Metrics ---------------------------------------------------------------------------------

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


# The judge -------------------------------------------------------------------------------


class _SpanRun:
    """The evaluations of one span in one batch: the shared input, the verdicts so far."""

    __slots__ = ("input_error", "item", "pending", "span", "trace", "verdicts")

    def __init__(self, span: SpanData, trace: ReadyTrace) -> None:
        self.span = span
        self.trace = trace
        self.item: EvalInput | None = None
        self.input_error: str | None = None
        self.pending = 0
        self.verdicts: list[Verdict] = []


@dataclass
class _Job:
    rule: CompiledRule
    run: _SpanRun


ExtractInput = Callable[[SpanData, Sequence[SpanData]], EvalInput]


def _default_extract() -> ExtractInput:
    try:
        from llmtap.evals.registry import extract_input  # type: ignore[attr-defined]

        return extract_input
    except ImportError:
        pass
    from llmtap.evals.extract import extract_input as from_extract

    return from_extract


def _registry() -> Any:
    """``llmtap.evals.registry``, or None when it is not there."""
    try:
        from llmtap.evals import registry
    except ImportError:
        return None
    return registry


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 500 else text[:499] + "…"


class Judging:
    """The judge of the service. Typical wiring::

        judging = Judging(judge_config, emit=forward_result_spans, meter_provider=mp)
        judging.start()                 # its own thread and event loop
        ...
        judging.on_spans(spans)         # for every processed batch; never blocks
        ...
        judging.stop(timeout=10)        # decide open traces, finish what fits, stop

    ``evaluators`` maps names to ready evaluators, used for rules whose ``evaluator`` is
    that name (tests, embedders); any other rule's evaluator comes from
    ``llmtap.evals.registry.build_evaluator(spec, config.model)``. Rules are compiled and
    evaluators built here, so a bad rule fails at start-up (``ValueError`` naming
    ``judge.rules[i]``). ``emit`` receives lists of result spans, on the judge thread: it
    must be thread-safe and must not block (queue them for the forwarders). ``clock`` is the
    assembly clock (monotonic seconds; tests pass a fake one); ``time_ns`` stamps the result
    spans (wall clock).
    """

    def __init__(
        self,
        config: JudgeConfig,
        *,
        evaluators: Mapping[str, Evaluator] | None = None,
        emit: Callable[[list[SpanData]], Any] | None = None,
        meter_provider: Any = None,
        metrics_registry: Any = None,
        logger_provider: Any = None,
        extract_input: ExtractInput | None = None,
        review_queue: ReviewQueue | None = None,
        clock: Callable[[], float] = time.monotonic,
        time_ns: Callable[[], int] = time.time_ns,
        tick_s: float = 0.25,
        inbox_max_spans: int = 50_000,
    ) -> None:
        self.config = config
        self._judge_client: Any = None
        self.rules = self._compile_rules(config, evaluators or {})
        self.assembler = TraceAssembler(
            idle_s=config.trace_idle_s,
            max_wait_s=config.trace_max_wait_s,
            max_traces=config.max_traces,
            max_bytes=int(config.max_bytes),
            late_window_s=config.late_window_s,
            clock=clock,
        )
        self.metrics = JudgeMetrics(
            meter_provider, registry=metrics_registry, state=self._gauge_state
        )
        self.review = review_queue
        if self.review is None and config.review_queue:
            self.review = ReviewQueue(config.review_queue, max_bytes=int(config.review_max_bytes))
        self._emit = emit
        self._logger = (
            logger_provider.get_logger("llmtap.service.judging", __version__)
            if logger_provider is not None
            else None
        )
        self._extract = extract_input or _default_extract()
        self._time_ns = time_ns
        self.tick_s = tick_s
        self._seen = _Keys(config.dedup_size)
        # inbox: batches from on_spans, taken by the judge thread at each tick
        self._inbox: deque[list[SpanData]] = deque()
        self._inbox_spans = 0
        self._inbox_max = max(1, inbox_max_spans)
        self._kick_at = max(1, self._inbox_max // 4)
        self._kicked = False
        self._inbox_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Job] | None = None
        self._wake: asyncio.Event | None = None
        self._stop_at: float | None = None
        self._flush_on_stop = True
        self._in_flight = 0
        self._warned: set[str] = set()
        self._last_drop_log = 0.0

    # set-up ------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: Any, **kwargs: Any) -> Judging | None:
        """The judge for a loaded ``LlmtapConfig`` (``judge:`` section), or None when the
        file has no judge section or no rules. ``kwargs`` go to the constructor."""
        config = load_judge_config(cfg)
        if config is None or not config.rules:
            return None
        return cls(config, **kwargs)

    def _compile_rules(
        self, config: JudgeConfig, provided: Mapping[str, Evaluator]
    ) -> list[CompiledRule]:
        built: dict[str, Evaluator] = {}
        names: dict[str, tuple[int, str]] = {}
        rules: list[CompiledRule] = []
        registry: Any = None
        for i, rule in enumerate(config.rules):
            where = f"judge.rules[{i}]"
            if isinstance(rule.evaluator, str) and not rule.options and rule.evaluator in provided:
                key = "given:" + rule.evaluator
                evaluator = provided[rule.evaluator]
            else:
                spec = rule.spec()
                key = json.dumps(spec, sort_keys=True, default=str)
                evaluator = built.get(key)
                if evaluator is None:
                    registry = registry or _registry()
                    if registry is None:
                        given = ", ".join(sorted(provided)) or "none"
                        raise ValueError(
                            f"{where}.evaluator: {rule.evaluator!r} is not one of the "
                            f"evaluators given ({given}) and the evaluator registry "
                            "(llmtap.evals.registry) is missing"
                        )
                    evaluator = self._build(registry, spec, config.model, where)
            built[key] = evaluator
            name = getattr(evaluator, "name", None)
            if not isinstance(name, str) or not name:
                raise ValueError(f"{where}.evaluator: the evaluator has no name")
            if name in names and names[name][1] != key:
                raise ValueError(
                    f"{where}.evaluator: the evaluation name {name!r} is already used by a "
                    f"different evaluator (judge.rules[{names[name][0]}]); give one of them "
                    "another name"
                )
            names.setdefault(name, (i, key))
            rules.append(CompiledRule(rule, evaluator, i))
        return rules

    def _build(self, registry: Any, spec: dict[str, Any], model: Any, where: str) -> Evaluator:
        """One evaluator from the registry; LLM evaluators share one judge client."""
        try:
            if self._judge_client is None and model is not None:
                make_client = getattr(registry, "judge_client", None)
                self._judge_client = make_client(model) if make_client else model
            judge = self._judge_client if self._judge_client is not None else model
            return registry.build_evaluator(spec, judge, where=where)
        except ValueError as exc:  # EvaluatorConfigError: lines already carry their paths
            raise ValueError(str(exc)) from None
        except (TypeError, KeyError) as exc:
            raise ValueError(f"{where}.evaluator: {exc}") from None

    def _gauge_state(self) -> dict[str, float]:
        queue = self._queue
        return {
            "queue_depth": queue.qsize() if queue is not None else 0,
            "open_traces": self.assembler.open_traces,
            "assembly_bytes": self.assembler.bytes,
        }

    def stats(self) -> dict[str, Any]:
        """A snapshot for health endpoints and logs (approximate: read without locks)."""
        return {
            **self._gauge_state(),
            "open_spans": self.assembler.open_spans,
            "retained_traces": self.assembler.retained_traces,
            "inbox_spans": self._inbox_spans,
            "in_flight": self._in_flight,
            "dedup_keys": len(self._seen),
            "running": self.running,
        }

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._stop_at is None

    # the service's side -------------------------------------------------------------

    def on_spans(self, spans: Sequence[SpanData]) -> None:
        """Hand processed spans to the judge: a list copy under a lock; never blocks, never raises.

        The spans must not be changed afterwards (the judge reads them later, on its own
        thread). When the inbox is full (the judge thread is behind by ``inbox_max_spans``)
        the batch is not judged, and counted in ``llmtap.judge.spans.dropped``.
        """
        if self._closed or not self.rules or not spans:
            return
        try:
            batch = list(spans)
            count = len(batch)
            kick = False
            with self._inbox_lock:
                full = self._inbox_spans + count > self._inbox_max
                if not full:
                    self._inbox.append(batch)
                    self._inbox_spans += count
                    if self._inbox_spans >= self._kick_at and not self._kicked:
                        self._kicked = kick = True
            if full:
                self.metrics.spans_dropped(count, "inbox_full")
                now = time.monotonic()
                if now - self._last_drop_log > 60:
                    self._last_drop_log = now
                    _log.warning(
                        "judge: inbox full (%d spans waiting); %d spans will not be judged",
                        self._inbox_spans,
                        count,
                    )
                return
            if kick:
                self._call_soon(self._wake_up)
        except Exception:  # never break forwarding
            self._warn_once("on_spans", "judge: cannot take spans")

    def _call_soon(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(fn)

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        """Start the judge thread and its event loop (idempotent)."""
        with self._state_lock:
            if self._closed:
                raise RuntimeError("this judge was stopped; make a new one")
            if self._thread is not None:
                return
            started = threading.Event()
            self._thread = threading.Thread(
                target=self._thread_main, args=(started,), name="llmtap-judge", daemon=True
            )
            self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the judge thread did not start")

    def stop(self, timeout: float = 10.0, *, flush: bool = True) -> None:
        """Stop taking spans and stop the judge within ``timeout`` seconds.

        With ``flush`` the open traces are decided now (early) and their evaluations run
        while the deadline allows; what is left is skipped (``reason=shutdown``). Blocks the
        caller until the judge thread ended (call it from a thread, or accept the wait).
        """
        self._closed = True
        with self._state_lock:
            thread = self._thread
        if thread is None:
            return

        def begin() -> None:
            if self._stop_at is None:
                self._stop_at = time.monotonic() + max(0.0, timeout)
                self._flush_on_stop = flush
            self._wake_up()

        self._call_soon(begin)
        thread.join(max(0.0, timeout) + 5.0)
        if thread.is_alive():
            _log.warning("judge: the judge thread did not stop in time")

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Take the inbox, decide the traces ready now, and wait until every queued
        evaluation has finished. False on timeout. For tests, benchmarks and tools."""
        loop = self._loop
        if loop is None or self._stop_at is not None:
            return False
        future = asyncio.run_coroutine_threadsafe(self._settle(), loop)
        try:
            future.result(timeout)
            return True
        except (concurrent.futures.TimeoutError, asyncio.TimeoutError):
            future.cancel()
            return False
        except concurrent.futures.CancelledError:
            return False

    async def _settle(self) -> None:
        self._tick()
        if self._queue is not None:
            await self._queue.join()

    # the judge thread ----------------------------------------------------------------

    def _thread_main(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main(started))
        except Exception:
            _log.exception("judge: the judge loop failed")
        finally:
            started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._loop = None
                loop.close()

    async def _main(self, started: threading.Event) -> None:
        self._queue = asyncio.Queue(self.config.queue_size)
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        workers = [asyncio.ensure_future(self._worker()) for _ in range(self.config.concurrency)]
        started.set()
        while self._stop_at is None:
            self._tick()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()
        await self._shutdown(workers)

    def _take_inbox(self) -> list[list[SpanData]]:
        with self._inbox_lock:
            batches = list(self._inbox)
            self._inbox.clear()
            self._inbox_spans = 0
            self._kicked = False
        return batches

    def _tick(self, *, flush: bool = False) -> int:
        """Assemble what arrived, decide ready traces, queue their evaluations."""
        try:
            for batch in self._take_inbox():
                self.assembler.add(batch)
            ready = self.assembler.flush() if flush else self.assembler.poll()
        except Exception:
            self._warn_once("assembly", "judge: trace assembly failed")
            return 0
        queued = 0
        for trace in ready:
            self.metrics.trace_decided(trace.reason, trace.late)
            try:
                queued += self._plan(trace)
            except Exception:
                self._warn_once("plan", "judge: applying the judge rules failed")
        return queued

    def _plan(self, trace: ReadyTrace) -> int:
        """Select, sample, deduplicate and queue the evaluations of one ready trace."""
        facts = _TraceFacts(trace.spans)
        runs: dict[int, _SpanRun] = {}
        queue = self._queue
        queued = 0
        for rule in self.rules:
            spans = rule.candidates(trace, facts)
            if not spans:
                continue
            if not rule.sampled(trace.trace_id):
                self.metrics.skipped(rule.evaluation, "sampled_out", len(spans))
                continue
            for span in spans:
                key = _Keys.key(trace.trace_id, span.span_id, rule.evaluation)
                if key in self._seen:
                    self.metrics.skipped(rule.evaluation, "duplicate")
                    continue
                run = runs.get(span.span_id)
                if run is None:
                    run = runs[span.span_id] = _SpanRun(span, trace)
                try:
                    if queue is None:
                        raise asyncio.QueueFull
                    queue.put_nowait(_Job(rule, run))
                except asyncio.QueueFull:
                    self.metrics.skipped(rule.evaluation, "queue_full")
                    continue
                self._seen.add(key)
                run.pending += 1
                queued += 1
        return queued

    async def _worker(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            job = await queue.get()
            try:
                self._in_flight += 1
                await self._evaluate(job)
            except asyncio.CancelledError:
                self.metrics.skipped(job.rule.evaluation, "shutdown")
                self._done(job.run, None)
                raise
            except Exception:
                self._warn_once("worker", "judge: an evaluation failed unexpectedly")
            finally:
                self._in_flight -= 1
                queue.task_done()

    async def _evaluate(self, job: _Job) -> None:
        run, evaluator = job.run, job.rule.evaluator
        if run.item is None and run.input_error is None:
            try:
                run.item = self._extract(run.span, run.trace.spans)
            except Exception as exc:
                run.input_error = _short(exc)
                self._warn_once("extract", "judge: cannot read the input of a span")
        start_ns = self._time_ns()
        started = time.perf_counter()
        if run.item is None:
            verdict = Verdict(
                name=evaluator.name, error_type="input_error", explanation=run.input_error
            )
        else:
            try:
                verdict = await asyncio.wait_for(
                    evaluator.evaluate(run.item), self.config.eval_timeout_s
                )
            except asyncio.TimeoutError:
                verdict = Verdict(
                    name=evaluator.name,
                    error_type="timeout",
                    explanation=f"no verdict within {self.config.eval_timeout_s:g} s",
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # evaluators should not raise; tolerate it
                verdict = Verdict(
                    name=evaluator.name, error_type=type(exc).__name__, explanation=_short(exc)
                )
        duration = time.perf_counter() - started
        end_ns = self._time_ns()
        if not isinstance(verdict, Verdict):
            verdict = Verdict(name=evaluator.name, error_type="invalid_verdict")
        elif not verdict.name:
            verdict.name = evaluator.name
        self._deliver(job, verdict, start_ns, end_ns, duration)

    def _deliver(
        self, job: _Job, verdict: Verdict, start_ns: int, end_ns: int, duration: float
    ) -> None:
        run, rule = job.run, job.rule
        span, trace = run.span, run.trace
        attrs = evaluation_attributes(
            verdict,
            span,
            source=rule.source,
            rule=rule.name if rule.name != rule.evaluation else None,
            early=trace.early,
            late=trace.late,
        )
        if self._emit is not None:
            try:
                result = build_result_span(verdict, span, attrs, start_ns=start_ns, end_ns=end_ns)
                self._emit([result])
            except Exception:
                self._warn_once("emit", "judge: cannot emit a result span")
        if self._logger is not None:
            try:
                self._logger.emit(build_log_record(verdict, span, attrs, timestamp_ns=end_ns))
            except Exception:
                self._warn_once("log", "judge: cannot emit a gen_ai.evaluation.result event")
        try:
            feature = self.metrics.feature(span.attributes.get(semconv.LLMTAP_FEATURE))
            self.metrics.evaluated(verdict, feature, duration)
        except Exception:
            self._warn_once("metrics", "judge: cannot record judge metrics")
        self._done(run, verdict)

    def _done(self, run: _SpanRun, verdict: Verdict | None) -> None:
        if verdict is not None:
            run.verdicts.append(verdict)
        run.pending -= 1
        if run.pending > 0 or self.review is None:
            return
        if any(v.passed is False and not v.error_type for v in run.verdicts):
            try:
                entry = review_entry(
                    run.span,
                    run.item,
                    run.verdicts,
                    time_s=self._time_ns() / 1e9,
                    early=run.trace.early,
                    late=run.trace.late,
                )
                self.review.append(entry)
            except Exception:
                self._warn_once("review", "judge: cannot write to the review queue")

    async def _shutdown(self, workers: list[asyncio.Future]) -> None:
        deadline = self._stop_at or time.monotonic()
        queue = self._queue
        assert queue is not None
        if self._flush_on_stop:
            self._tick(flush=True)
        else:
            self._take_inbox()
        remaining = deadline - time.monotonic()
        if remaining > 0 and queue.qsize() + self._in_flight > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(queue.join(), remaining)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        while not queue.empty():
            job = queue.get_nowait()
            self.metrics.skipped(job.rule.evaluation, "shutdown")
            self._done(job.run, None)
        closed: set[int] = set()
        for evaluator in [rule.evaluator for rule in self.rules] + [self._judge_client]:
            if evaluator is None or id(evaluator) in closed:
                continue
            closed.add(id(evaluator))
            aclose = getattr(evaluator, "aclose", None)
            if aclose is None:
                continue
            try:
                result = aclose()
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, 5.0)
            except Exception:
                self._warn_once("aclose", "judge: closing an evaluator failed")

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.warning("%s", message, exc_info=True)
