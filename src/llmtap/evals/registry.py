"""Evaluators from config entries, and the evaluator input from spans.

``build_evaluator(spec, judge)`` turns one config entry into an evaluator::

    {evaluator: faithfulness}
    {evaluator: regex, pattern: "(?i)sorry", match: false, name: no_apology}
    {evaluator: custom_llm, name: tone, rubric: "...", output: numeric, threshold: 0.7}
    {evaluator: json_schema, schema: {type: object, required: [answer]}}
    {evaluator: latency_budget, max_s: 2.0}

``judge`` is a shared :class:`~llmtap.evals.judge_client.JudgeClient` (best: evaluators then
share its connection pool and circuit breaker), a :class:`JudgeSettings`, or the raw
``judge.model`` mapping; it is needed only by model-based evaluators. Every problem in an
entry is reported at once in one :class:`EvaluatorConfigError`, each line naming the key
path (``judge.rules[2].pattern: required by evaluator regex``). Keys that belong to the rule
around the evaluator (``when``, ``sample``, ...: :data:`RULE_KEYS`) are ignored.

``EVALUATORS`` lists the names with a one-line description and their keys.
:func:`extract_input` (from :mod:`llmtap.evals.extract`) builds the input of an evaluation.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmtap.evals.base import Evaluator
from llmtap.evals.extract import check_field, extract_input
from llmtap.evals.judge_client import JudgeClient, JudgeSettings
from llmtap.evals.rubrics import ALIASES, BUILTIN_RUBRICS, Rubric, get_rubric

__all__ = [
    "EVALUATORS",
    "RULE_KEYS",
    "EvaluatorConfigError",
    "build_evaluator",
    "build_evaluators",
    "extract_input",
    "judge_client",
]

#: keys of a judge rule that are not the evaluator's (the rule matcher and sampler own them)
RULE_KEYS = frozenset(
    {"when", "sample", "sample_rate", "target", "targets", "span", "spans", "on", "enabled",
     "delay_s", "id", "description"}
)  # fmt: skip
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z")


class EvaluatorConfigError(ValueError):
    """One or more problems in evaluator entries; ``problems`` holds ``(path, message)``."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"{p}: {m}" if p else m for p, m in self.problems))


# key checking -------------------------------------------------------------------------------------


class _Spec:
    """Reads one entry, collecting problems with their paths."""

    def __init__(self, raw: Mapping[str, Any], where: str, evaluator: str) -> None:
        self.raw = raw
        self.where = where
        self.evaluator = evaluator
        self.problems: list[tuple[str, str]] = []
        self.used: set[str] = {"evaluator", "name"}

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def problem(self, key: str, message: str) -> None:
        self.problems.append((self.path(key), message))

    def get(
        self,
        key: str,
        kind: str,
        default: Any = None,
        *,
        required: bool = False,
        choices: Sequence[str] = (),
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.used.add(key)
        if key not in self.raw or self.raw[key] is None:
            if required:
                self.problem(key, f"required by evaluator {self.evaluator}")
            return default
        value = self.raw[key]
        converted, error = _convert(value, kind, choices)
        if error is None and check is not None:
            error = check(converted)
        if error is not None:
            self.problem(key, error)
            return default
        return converted

    def unknown_keys(self, allowed_extra: Iterable[str] = ()) -> None:
        known = self.used | set(allowed_extra) | RULE_KEYS
        for key in self.raw:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key), sorted(self.used), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            accepted = ", ".join(sorted(self.used - {"evaluator"}))
            self.problem(
                str(key),
                f"not a setting of evaluator {self.evaluator}{hint}; it takes {accepted}",
            )


def _convert(value: Any, kind: str, choices: Sequence[str]) -> tuple[Any, str | None]:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    if kind == "str":
        if isinstance(value, str) and value != "":
            return value, None
        return None, f"expected a non-empty string, got {shown}"
    if kind == "choice":
        if isinstance(value, str) and value in choices:
            return value, None
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return None, f"expected one of {', '.join(choices)}, got {shown}{hint}"
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true", None
        return None, f"expected true or false, got {shown}"
    if kind in ("number", "int"):
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            return None, f"expected a number, got {shown}"
        if not math.isfinite(number):
            return None, f"expected a finite number, got {shown}"
        if kind == "int":
            if number != int(number):
                return None, f"expected a whole number, got {shown}"
            return int(number), None
        return float(number), None
    if kind == "str_list":
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value):
            return list(value), None
        return None, f"expected a list of non-empty strings, got {shown}"
    if kind == "number_pair":
        if (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            return (float(value[0]), float(value[1])), None
        return None, f"expected [low, high], got {shown}"
    if kind == "str_map":
        if isinstance(value, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return dict(value), None
        return None, f"expected a mapping of names to strings, got {shown}"
    if kind == "schema":
        if isinstance(value, (Mapping, bool)):
            return value, None
        return None, f"expected a JSON Schema (a mapping), got {shown}"
    raise AssertionError(kind)


def _positive(value: float) -> str | None:
    return None if value > 0 else f"expected a number above 0, got {value!r}"


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else f"expected a number of 0 or more, got {value!r}"


def _ratio(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"expected a number between 0 and 1, got {value!r}"


def _field(value: str) -> str | None:
    return check_field(value)


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None


# builders -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluatorInfo:
    description: str
    keys: tuple[str, ...]
    uses_model: bool


_LLM_KEYS = ("output", "threshold", "variables", "model", "max_chars")
EVALUATORS: dict[str, EvaluatorInfo] = {
    **{
        name: EvaluatorInfo(BUILTIN_RUBRICS[ALIASES.get(name, name)].description, _LLM_KEYS, True)
        for name in (*BUILTIN_RUBRICS, *ALIASES)
    },
    "custom_llm": EvaluatorInfo(
        "an LLM judge with your own rubric",
        ("rubric", *_LLM_KEYS, "labels", "higher_is_better", "scale", "true_means", "required"),
        True,
    ),
    "regex": EvaluatorInfo(
        "a regular expression is found (or not) in the output",
        ("pattern", "match", "ignore_case", "multiline", "dotall", "field"),
        False,
    ),
    "contains": EvaluatorInfo(
        "the output contains a value (any or all of several)",
        ("value", "values", "require", "case_sensitive", "field"),
        False,
    ),
    "not_contains": EvaluatorInfo(
        "the output contains none of the values",
        ("value", "values", "case_sensitive", "field"),
        False,
    ),
    "json_valid": EvaluatorInfo(
        "the output is valid JSON", ("strip_code_fence", "require_object", "field"), False
    ),
    "json_schema": EvaluatorInfo(
        "the output is JSON conforming to a JSON Schema",
        ("schema", "strip_code_fence", "field"),
        False,
    ),
    "refusal": EvaluatorInfo(
        "the model refused (phrases, refusal flag, content filter)",
        ("phrases", "extra_phrases", "expect_refusal", "window", "field"),
        False,
    ),
    "truncation": EvaluatorInfo("the model stopped at its token limit", (), False),
    "pii": EvaluatorInfo(
        "PII or secrets in the output", ("detectors", "count_placeholders", "field"), False
    ),
    "latency_budget": EvaluatorInfo("span (or trace) duration budget", ("max_s", "scope"), False),
    "cost_budget": EvaluatorInfo("span (or trace) cost budget", ("max_usd", "scope"), False),
    "lexical_groundedness": EvaluatorInfo(
        "token overlap of the output with the retrieved documents",
        ("threshold", "sentence_threshold"),
        False,
    ),
}


def judge_client(judge: Any, where: str = "judge.model") -> JudgeClient | None:
    """A client from a client, settings or a raw ``judge.model`` mapping (None: none)."""
    if judge is None or isinstance(judge, JudgeClient):
        return judge
    if isinstance(judge, JudgeSettings):
        return JudgeClient(judge)
    if isinstance(judge, Mapping):
        try:
            return JudgeClient(JudgeSettings.from_mapping(judge, where))
        except ValueError as exc:
            raise EvaluatorConfigError([_split(line) for line in str(exc).splitlines()]) from None
    raise TypeError(f"judge: expected a JudgeClient, JudgeSettings or mapping, got {judge!r}")


def _split(line: str) -> tuple[str, str]:
    path, sep, message = line.partition(": ")
    return (path, message) if sep else ("", line)


def build_evaluator(
    spec: Mapping[str, Any],
    judge_settings: Any = None,
    *,
    where: str = "",
    pricing: Any = None,
) -> Evaluator:
    """The evaluator for one config entry (see the module doc). ``where`` prefixes the key
    paths in errors (``judge.rules[0]``). ``pricing``: a ``PriceResolver`` for the judge's
    cost (default: the bundled table, built once). Raises :class:`EvaluatorConfigError`."""
    if not isinstance(spec, Mapping):
        raise EvaluatorConfigError(
            [(where, f"expected a mapping with an evaluator key, got {spec!r}")]
        )
    kind = spec.get("evaluator")
    ev_path = f"{where}.evaluator" if where else "evaluator"
    if kind is None:
        raise EvaluatorConfigError([(ev_path, f"required; one of {', '.join(sorted(EVALUATORS))}")])
    if not isinstance(kind, str) or kind not in EVALUATORS:
        close = difflib.get_close_matches(str(kind), EVALUATORS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise EvaluatorConfigError(
            [(ev_path, f"unknown evaluator {kind!r}{hint}; one of {', '.join(sorted(EVALUATORS))}")]
        )
    s = _Spec(spec, where, kind)
    name = s.get("name", "str", kind, check=_name_check)
    builder = _BUILDERS.get(kind, _build_builtin_llm)
    evaluator = builder(s, name, judge_settings, pricing)
    s.unknown_keys()
    if s.problems:
        raise EvaluatorConfigError(s.problems)
    return evaluator


def build_evaluators(
    specs: Iterable[Mapping[str, Any]],
    judge_settings: Any = None,
    *,
    where: str = "judge.rules",
    pricing: Any = None,
) -> list[Evaluator]:
    """Evaluators for a list of entries, sharing one judge client; every problem of every
    entry in one :class:`EvaluatorConfigError`."""
    specs = list(specs)
    problems: list[tuple[str, str]] = []
    client = None
    needs_model = any(
        isinstance(s, Mapping) and getattr(EVALUATORS.get(s.get("evaluator")), "uses_model", False)
        for s in specs
    )
    if needs_model and judge_settings is not None:
        try:
            client = judge_client(judge_settings)
        except EvaluatorConfigError as exc:
            problems.extend(exc.problems)
    out = []
    for i, spec in enumerate(specs):
        try:
            out.append(build_evaluator(spec, client, where=f"{where}[{i}]", pricing=pricing))
        except EvaluatorConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise EvaluatorConfigError(problems)
    return out


def _name_check(value: str) -> str | None:
    if _NAME.match(value):
        return None
    return (
        f"expected a short identifier (letters, digits, _ . -), got {value!r}; it becomes "
        f"gen_ai.evaluation.name and a metric label"
    )


# model-based --------------------------------------------------------------------------------------


def _llm_judge(
    s: _Spec, name: str, rubric: Any, judge: Any, pricing: Any, options: dict[str, Any]
) -> Evaluator | None:
    """The LLM judge of a checked spec, or None when the spec has problems."""
    from llmtap.evals.llm_judge import LLMJudge

    client = _client_for(s, judge)
    if rubric is None or client is None or s.problems:
        return None
    return LLMJudge(
        name,
        rubric,
        client,
        model=options["model"],
        pricing=pricing,
        max_chars=options["max_chars"],
    )


def _client_for(s: _Spec, judge: Any) -> JudgeClient | None:
    try:
        client = judge_client(judge)
    except EvaluatorConfigError as exc:
        s.problems.extend(exc.problems)
        return None
    if client is None:
        s.problems.append(
            (
                s.path("evaluator"),
                f"evaluator {s.evaluator} asks an LLM judge, but no judge model is configured "
                f"(set judge.model with at least name and base_url)",
            )
        )
    return client


def _llm_options(s: _Spec) -> dict[str, Any]:
    return {
        "output": s.get("output", "choice", choices=("boolean", "numeric")),
        "threshold": s.get("threshold", "number"),
        "variables": s.get("variables", "str_map"),
        "model": s.get("model", "str"),
        "max_chars": s.get("max_chars", "int", 24_000, check=_positive),
    }


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _check_rubric(s: _Spec, make: Callable[[], Rubric]) -> Rubric | None:
    try:
        return make()
    except ValueError as exc:
        for line in str(exc).splitlines():
            key, message = _split(line)
            s.problem(key or "rubric", message)
        return None


def _build_builtin_llm(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:

    options = _llm_options(s)
    base = get_rubric(s.evaluator)
    assert base is not None
    rubric = _check_rubric(
        s,
        lambda: Rubric(
            **{
                **base.__dict__,
                "name": name,
                "output": options["output"] or base.output,
                "threshold": _first(options["threshold"], base.threshold),
                "variables": {**base.variables, **(options["variables"] or {})},
            }
        ),
    )
    return _llm_judge(s, name, rubric, judge, pricing, options)


def _build_custom_llm(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:

    if "name" not in s.raw:
        s.problem("name", "required by evaluator custom_llm (it names the verdicts)")
    template = s.get("rubric", "str", required=True)
    options = _llm_options(s)
    labels = s.get("labels", "str_list", ["pass", "fail"])
    if labels is not None and len(labels) != 2:
        s.problem("labels", f"expected two labels [good, bad], got {labels!r}")
        labels = ["pass", "fail"]
    higher = s.get("higher_is_better", "bool", True)
    scale = s.get("scale", "number_pair", (0.0, 1.0))
    true_means = s.get("true_means", "str")
    required = s.get("required", "str_list")
    rubric = None
    if template is not None:
        rubric = _check_rubric(
            s,
            lambda: Rubric.custom(
                name,
                template,
                output=options["output"] or "numeric",
                threshold=options["threshold"],
                variables=options["variables"],
                labels=labels,
                true_means=true_means,
                higher_is_better=higher,
                scale=scale,
                required=required,
            ),
        )
    return _llm_judge(s, name, rubric, judge, pricing, options)


# rules --------------------------------------------------------------------------------------------


def _rule(s: _Spec, make: Callable[[], Evaluator]) -> Evaluator | None:
    if s.problems:
        return None
    try:
        return make()
    except ValueError as exc:  # the evaluator's own checks: "<key>: message" lines
        for line in str(exc).splitlines():
            key, message = _split(line)
            s.problem(key or "evaluator", message)
        return None


def _build_regex(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import RegexEvaluator

    pattern = s.get("pattern", "str", required=True, check=_regex)
    options = {
        "must_match": s.get("match", "bool", True),
        "ignore_case": s.get("ignore_case", "bool", False),
        "multiline": s.get("multiline", "bool", False),
        "dotall": s.get("dotall", "bool", False),
        "field": s.get("field", "str", "output", check=_field),
    }
    return _rule(s, lambda: RegexEvaluator(name, pattern, **options))


def _values(s: _Spec) -> list[str] | None:
    one = s.get("value", "str")
    many = s.get("values", "str_list")
    if one is None and many is None and not s.problems:
        s.problem("value", f"required by evaluator {s.evaluator} (or values: [...])")
    return ([one] if one is not None else []) + (many or [])


def _build_contains(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import ContainsEvaluator

    values = _values(s)
    require = s.get("require", "choice", "any", choices=("any", "all"))
    case = s.get("case_sensitive", "bool", False)
    field = s.get("field", "str", "output", check=_field)
    return _rule(
        s,
        lambda: ContainsEvaluator(name, values, require=require, case_sensitive=case, field=field),
    )


def _build_not_contains(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import ContainsEvaluator

    values = _values(s)
    case = s.get("case_sensitive", "bool", False)
    field = s.get("field", "str", "output", check=_field)
    return _rule(
        s, lambda: ContainsEvaluator(name, values, negate=True, case_sensitive=case, field=field)
    )


def _build_json_valid(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import JsonValidEvaluator

    options = {
        "strip_code_fence": s.get("strip_code_fence", "bool", False),
        "require_object": s.get("require_object", "bool", False),
        "field": s.get("field", "str", "output", check=_field),
    }
    return _rule(s, lambda: JsonValidEvaluator(name, **options))


def _build_json_schema(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import JsonSchemaEvaluator

    schema = s.get("schema", "schema", required=True)
    options = {
        "strip_code_fence": s.get("strip_code_fence", "bool", False),
        "field": s.get("field", "str", "output", check=_field),
    }
    return _rule(s, lambda: JsonSchemaEvaluator(name, schema, **options))


def _build_refusal(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import RefusalEvaluator

    options = {
        "phrases": s.get("phrases", "str_list"),
        "extra_phrases": s.get("extra_phrases", "str_list", []),
        "expect_refusal": s.get("expect_refusal", "bool", False),
        "window": s.get("window", "int", 400, check=_positive),
        "field": s.get("field", "str", "output", check=_field),
    }
    return _rule(s, lambda: RefusalEvaluator(name, **options))


def _build_truncation(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import TruncationEvaluator

    return _rule(s, lambda: TruncationEvaluator(name))


def _build_pii(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import PIIEvaluator

    options = {
        "detectors": s.get("detectors", "str_list"),
        "count_placeholders": s.get("count_placeholders", "bool", True),
        "field": s.get("field", "str", "output", check=_field),
    }
    return _rule(s, lambda: PIIEvaluator(name, **options))


def _build_latency(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import LatencyBudgetEvaluator

    max_s = s.get("max_s", "number", required=True, check=_positive)
    scope = s.get("scope", "choice", "span", choices=("span", "trace"))
    return _rule(s, lambda: LatencyBudgetEvaluator(name, max_s, scope=scope))


def _build_cost(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import CostBudgetEvaluator

    max_usd = s.get("max_usd", "number", required=True, check=_non_negative)
    scope = s.get("scope", "choice", "span", choices=("span", "trace"))
    return _rule(s, lambda: CostBudgetEvaluator(name, max_usd, scope=scope))


def _build_lexical(s: _Spec, name: str, judge: Any, pricing: Any) -> Evaluator | None:
    from llmtap.evals.rules import LexicalGroundednessEvaluator

    threshold = s.get("threshold", "number", 0.5, check=_ratio)
    sentence = s.get("sentence_threshold", "number", 0.5, check=_ratio)
    return _rule(
        s,
        lambda: LexicalGroundednessEvaluator(
            name, threshold=threshold, sentence_threshold=sentence
        ),
    )


_BUILDERS: dict[str, Callable[[_Spec, str, Any, Any], Evaluator | None]] = {
    "custom_llm": _build_custom_llm,
    "regex": _build_regex,
    "contains": _build_contains,
    "not_contains": _build_not_contains,
    "json_valid": _build_json_valid,
    "json_schema": _build_json_schema,
    "refusal": _build_refusal,
    "truncation": _build_truncation,
    "pii": _build_pii,
    "latency_budget": _build_latency,
    "cost_budget": _build_cost,
    "lexical_groundedness": _build_lexical,
}
