"""The judge's configuration: the ``judge:`` section of ``llmtap.yaml`` (:class:`JudgeConfig`)
and its rules (:class:`JudgeRule`)::

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
      verdicts: linked              # where verdict spans go: linked, child or events_only
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
``gen_ai.evaluation.name``) are never targets. ``feedback`` is a condition on the whole
trace, allowed only at the top level of ``when``: ``negative``, ``positive`` or ``any``
(how the service finds feedback in a trace: :mod:`llmtap.service.judge_when`).

``verdicts`` places the verdict spans (:mod:`llmtap.service.results`): ``linked`` (default)
in an evaluation trace of their own, one per judged trace, each linked to the span it
judged, so the request's trace keeps its own duration; ``child`` as children of the judged
span, in its trace (the trace then lasts until its last verdict); ``events_only`` no spans,
only the ``gen_ai.evaluation.result`` log records and the metrics.

Kept under ``evals`` so that ``llmtap eval run`` reads the judge's rules and model without
importing the service.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmtap.evals.judge_client import JudgeSettings
from llmtap.when import Matcher, compile_when

__all__ = [
    "FEEDBACK_VALUES",
    "TARGETS",
    "VERDICT_PLACEMENTS",
    "JudgeConfig",
    "JudgeRule",
    "compile_rule_when",
    "expected_one_of",
    "load_judge_config",
    "parse_size",
]

TARGETS = ("inference", "root", "all_matching")
FEEDBACK_VALUES = ("negative", "positive", "any")
#: where the judge writes its verdict spans (``judge.verdicts``)
VERDICT_PLACEMENTS = ("linked", "child", "events_only")


# A rule's when -----------------------------------------------------------------------------


def expected_one_of(value: Any, choices: Sequence[str]) -> str:
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
            problems.append(f"{where}.feedback: {expected_one_of(raw, FEEDBACK_VALUES)}")
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


# Sizes and the section ---------------------------------------------------------------------

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


_RULE_FIELDS = ("evaluator", "when", "sample", "name", "target")


@dataclass
class JudgeRule:
    """One ``judge.rules[]`` entry (see the module documentation).

    ``options`` are the evaluator's own keys when ``evaluator`` is a name (the flat form
    ``{evaluator: regex, pattern: "...", when: ...}``); a mapping ``evaluator`` carries them
    itself. :meth:`spec` is what the evaluator registry gets.
    """

    evaluator: str | dict[str, Any]
    """an evaluator name (its keys beside the rule's) or a whole evaluator entry"""
    when: dict[str, Any] = field(default_factory=dict)
    """the spans judged (the when: matcher, plus feedback: negative, positive or any)"""
    sample: float = 1.0
    """the share of matching traces judged, 0 to 1"""
    name: str | None = None
    """the evaluation's name (default: the evaluator's); also the sampling salt"""
    target: str = "inference"
    """inference, root or all_matching spans of the trace"""
    options: dict[str, Any] = field(default_factory=dict)
    """the evaluator's own keys, written beside the rule's (see Evaluators)"""

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
            errors.append(f"target: {expected_one_of(self.target, TARGETS)}")
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
    """the LLM judge"""
    #: JudgeRule objects, or their config mappings (converted here)
    rules: list[Any] = field(default_factory=list)
    """which spans are judged, by which evaluator"""
    concurrency: int = 4
    """evaluations at once"""
    queue_size: int = 1000
    """evaluations waiting at most; more are skipped (counted)"""
    trace_idle_s: float = 10.0
    """a trace is complete after this long without a new span"""
    trace_max_wait_s: float = 60.0
    """... or this long after its first span, at the latest"""
    max_traces: int = 10_000
    """open traces held at most"""
    max_bytes: int | str = 256 * 1024 * 1024
    """span memory held at most (bytes, or 512MB, 256MiB, ...)"""
    late_window_s: float = 300.0
    """decided traces' spans kept as context for late spans, in seconds"""
    dedup_size: int = 100_000
    """(trace, span, evaluator) decisions remembered"""
    eval_timeout_s: float = 300.0
    """one evaluation at most, retries included, in seconds"""
    review_queue: str | None = None
    """JSON lines of spans with failing verdicts (unset: none)"""
    review_max_bytes: int | str = 64 * 1024 * 1024
    """size of the review queue before it is rotated"""
    verdicts: str = "linked"
    """where verdict spans go: linked (a trace of their own, linked to the judged span; the
    request's trace keeps its duration), child (under the judged span, in its trace) or
    events_only (no spans: gen_ai.evaluation.result log records and metrics)"""

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
        if self.verdicts not in VERDICT_PLACEMENTS:
            errors.append(f"verdicts: {expected_one_of(self.verdicts, VERDICT_PLACEMENTS)}")
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
