"""Evaluators from config entries, and the evaluator input from spans.

``build_evaluator(spec, judge)`` turns one config entry into an evaluator::

    {evaluator: faithfulness}
    {evaluator: regex, pattern: "(?i)sorry", match: false, name: no_apology}
    {evaluator: custom_llm, name: tone, rubric: "...", output: numeric, threshold: 0.7}
    {evaluator: json_schema, schema: {type: object, required: [answer]}}
    {evaluator: latency_budget, max_s: 2.0}

:data:`REGISTRY` maps each evaluator name to its options dataclass
(:mod:`llmtap.evals.evaluator_options`) and the factory that makes the evaluator from them
(:mod:`llmtap.configuration.factories`); the options are built by the one config builder
(:mod:`llmtap.configuration.builder`) in this registry's wording.

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

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from llmtap.configuration.builder import FAILED, Dialect, Invalid, structure
from llmtap.configuration.factories import Registry
from llmtap.diagnostics import did_you_mean, shown
from llmtap.evals import evaluator_options as opt
from llmtap.evals.base import Evaluator
from llmtap.evals.extract import extract_input
from llmtap.evals.judge_client import JudgeClient, JudgeSettings
from llmtap.evals.rubrics import ALIASES, BUILTIN_RUBRICS, Rubric, get_rubric

__all__ = [
    "EVALUATORS",
    "REGISTRY",
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


class EvaluatorConfigError(ValueError):
    """One or more problems in evaluator entries; ``problems`` holds ``(path, message)``."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"{p}: {m}" if p else m for p, m in self.problems))


# the wording of evaluator entries ---------------------------------------------------------------


class _EvaluatorDialect(Dialect):
    """Evaluator options: strict scalars (``"true"``/``"false"`` only), a null key is left
    out, rule keys are ignored, problems are worded for the evaluator (the context)."""

    report_unknown_keys = False  # build_evaluator does, after the evaluator's own checks
    null_is_missing = True
    ignored_keys = RULE_KEYS | {"evaluator"}

    def __init__(self) -> None:
        super().__init__()
        c = self.converter
        c.register_structure_hook_func(lambda t: t == list[str], self._str_list)
        c.register_structure_hook_func(lambda t: t == tuple[float, float], self._number_pair)
        c.register_structure_hook_func(lambda t: t == dict[str, str], self._str_map)
        c.register_structure_hook(opt.JsonSchema, self._schema)

    def missing(self, name: str, metadata: Mapping[str, Any]) -> Invalid:
        return Invalid(
            metadata.get("missing") or (lambda _, kind: f"required by evaluator {kind}"), name
        )

    def unknown_key(self, key: str, names: Sequence[str]) -> Invalid:
        def text(_: str, kind: str) -> str:
            hint = did_you_mean(key, sorted({"evaluator", *names}), quoted=False)
            return f"not a setting of evaluator {kind}{hint}; it takes {', '.join(sorted(names))}"

        return Invalid(text, key)

    def key_not_a_string(self, key: Any) -> Invalid:
        return Invalid(lambda _, kind: f"not a setting of evaluator {kind}", str(key))

    def not_a_mapping(self, data: Any, names: Sequence[str]) -> Invalid:
        return Invalid(f"expected a mapping with an evaluator key, got {data!r}")

    def mismatch(self, expected: str, data: Any, hint: str = "") -> Invalid:
        return Invalid(f"expected {expected}, got {shown(data)}")

    def string(self, data: Any, _: type) -> str:
        if isinstance(data, str) and data != "":
            return data
        raise self.mismatch("a non-empty string", data)

    def literal(self, data: Any, tp: Any) -> Any:
        choices = [str(c) for c in tp.__args__]
        if isinstance(data, str) and data in choices:
            return data
        hint = did_you_mean(str(data), choices, quoted=False)
        raise Invalid(f"expected one of {', '.join(choices)}, got {shown(data)}{hint}")

    def boolean(self, data: Any, _: type) -> bool:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.strip().lower() in ("true", "false"):
            return data.strip().lower() == "true"
        raise self.mismatch("true or false", data)

    def number(self, data: Any, _: type) -> float:
        return float(self._finite(data))

    def integer(self, data: Any, _: type) -> int:
        number = self._finite(data)
        if number != int(number):
            raise self.mismatch("a whole number", data)
        return int(number)

    def _finite(self, data: Any) -> float | int:
        number = data
        if isinstance(data, str):
            try:
                number = float(data.strip())
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise self.mismatch("a number", data)
        if not math.isfinite(number):
            raise self.mismatch("a finite number", data)
        return number

    def _str_list(self, data: Any, _: Any) -> list[str]:
        items = [data] if isinstance(data, str) else data
        if isinstance(items, (list, tuple)) and all(isinstance(v, str) and v for v in items):
            return list(items)
        raise self.mismatch("a list of non-empty strings", data)

    def _number_pair(self, data: Any, _: Any) -> tuple[float, float]:
        if (
            isinstance(data, (list, tuple))
            and len(data) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data)
        ):
            return float(data[0]), float(data[1])
        raise self.mismatch("[low, high]", data)

    def _str_map(self, data: Any, _: Any) -> dict[str, str]:
        if isinstance(data, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            return dict(data)
        raise self.mismatch("a mapping of names to strings", data)

    def _schema(self, data: Any, _: Any) -> Any:
        if isinstance(data, (Mapping, bool)):
            return data
        raise self.mismatch("a JSON Schema (a mapping)", data)


_DIALECT = _EvaluatorDialect()


# factories ----------------------------------------------------------------------------------------


@dataclass
class _Made:
    """What a factory gives back: the evaluator, or the problems found making it."""

    where: str
    kind: str
    problems: list[tuple[str, str]]

    def problem(self, key: str, message: str) -> None:
        self.problems.append((f"{self.where}.{key}" if self.where else key, message))

    def lines(self, exc: ValueError, default_key: str) -> None:
        """An evaluator's own checks: ``<key>: message`` lines."""
        for line in str(exc).splitlines():
            key, message = _split(line)
            self.problem(key or default_key, message)


def _split(line: str) -> tuple[str, str]:
    path, sep, message = line.partition(": ")
    return (path, message) if sep else ("", line)


def _rule(made: _Made, make: Callable[[], Evaluator]) -> Evaluator | None:
    try:
        return make()
    except ValueError as exc:
        made.lines(exc, "evaluator")
        return None


def _rubric(made: _Made, make: Callable[[], Rubric]) -> Rubric | None:
    try:
        return make()
    except ValueError as exc:
        made.lines(exc, "rubric")
        return None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _client_for(made: _Made, judge: Any) -> JudgeClient | None:
    try:
        client = judge_client(judge)
    except EvaluatorConfigError as exc:
        made.problems.extend(exc.problems)
        return None
    if client is None:
        made.problem(
            "evaluator",
            f"evaluator {made.kind} asks an LLM judge, but no judge model is configured "
            f"(set judge.model with at least name and base_url)",
        )
    return client


def _llm_judge(
    made: _Made, o: Any, name: str, rubric: Rubric | None, judge: Any, pricing: Any
) -> Evaluator | None:
    from llmtap.evals.llm_judge import LLMJudge

    client = _client_for(made, judge)
    if rubric is None or client is None or made.problems:
        return None
    return LLMJudge(name, rubric, client, model=o.model, pricing=pricing, max_chars=o.max_chars)


def _builtin_llm(made: _Made, o: opt.LlmOptions, name: str, judge: Any, pricing: Any) -> Any:
    base = get_rubric(made.kind)
    assert base is not None
    rubric = _rubric(
        made,
        lambda: Rubric(
            **{
                **base.__dict__,
                "name": name,
                "output": o.output or base.output,
                "threshold": _first(o.threshold, base.threshold),
                "variables": {**base.variables, **(o.variables or {})},
            }
        ),
    )
    return _llm_judge(made, o, name, rubric, judge, pricing)


def _custom_llm(made: _Made, o: opt.CustomLlmOptions, name: str, judge: Any, pricing: Any) -> Any:
    rubric = _rubric(
        made,
        lambda: Rubric.custom(
            name,
            o.rubric,
            output=o.output or "numeric",
            threshold=o.threshold,
            variables=o.variables,
            labels=o.labels,
            true_means=o.true_means,
            higher_is_better=o.higher_is_better,
            scale=o.scale,
            required=o.required,
        ),
    )
    return _llm_judge(made, o, name, rubric, judge, pricing)


def _regex(made: _Made, o: opt.RegexOptions, name: str, judge: Any, pricing: Any) -> Any:
    from llmtap.evals.rules import RegexEvaluator

    return _rule(
        made,
        lambda: RegexEvaluator(
            name,
            o.pattern,
            must_match=o.match,
            ignore_case=o.ignore_case,
            multiline=o.multiline,
            dotall=o.dotall,
            field=o.field,
        ),
    )


def _values(o: Any) -> list[str]:
    return ([o.value] if o.value is not None else []) + (o.values or [])


def _contains(made: _Made, o: opt.ContainsOptions, name: str, judge: Any, pricing: Any) -> Any:
    from llmtap.evals.rules import ContainsEvaluator

    return _rule(
        made,
        lambda: ContainsEvaluator(
            name, _values(o), require=o.require, case_sensitive=o.case_sensitive, field=o.field
        ),
    )


def _not_contains(
    made: _Made, o: opt.NotContainsOptions, name: str, judge: Any, pricing: Any
) -> Any:
    from llmtap.evals.rules import ContainsEvaluator

    return _rule(
        made,
        lambda: ContainsEvaluator(
            name, _values(o), negate=True, case_sensitive=o.case_sensitive, field=o.field
        ),
    )


def _json_valid(made: _Made, o: opt.JsonValidOptions, name: str, judge: Any, pricing: Any) -> Any:
    from llmtap.evals.rules import JsonValidEvaluator

    return _rule(
        made,
        lambda: JsonValidEvaluator(
            name,
            strip_code_fence=o.strip_code_fence,
            require_object=o.require_object,
            field=o.field,
        ),
    )


def _json_schema(made: _Made, o: opt.JsonSchemaOptions, name: str, judge: Any, pricing: Any) -> Any:
    from llmtap.evals.rules import JsonSchemaEvaluator

    return _rule(
        made,
        lambda: JsonSchemaEvaluator(
            name, o.schema, strip_code_fence=o.strip_code_fence, field=o.field
        ),
    )


def _refusal(made: _Made, o: opt.RefusalOptions, name: str, judge: Any, pricing: Any) -> Any:
    from llmtap.evals.rules import RefusalEvaluator

    return _rule(
        made,
        lambda: RefusalEvaluator(
            name,
            phrases=o.phrases,
            extra_phrases=o.extra_phrases,
            expect_refusal=o.expect_refusal,
            window=o.window,
            field=o.field,
        ),
    )


def _truncation(made: _Made, o: opt.TruncationOptions, name: str, judge: Any, pricing: Any) -> Any:
    from llmtap.evals.rules import TruncationEvaluator

    return _rule(made, lambda: TruncationEvaluator(name))


def _pii(made: _Made, o: opt.PiiOptions, name: str, judge: Any, pricing: Any) -> Any:
    from llmtap.evals.rules import PIIEvaluator

    return _rule(
        made,
        lambda: PIIEvaluator(
            name, detectors=o.detectors, count_placeholders=o.count_placeholders, field=o.field
        ),
    )


def _latency(made: _Made, o: opt.LatencyBudgetOptions, name: str, judge: Any, pricing: Any) -> Any:
    from llmtap.evals.rules import LatencyBudgetEvaluator

    return _rule(made, lambda: LatencyBudgetEvaluator(name, o.max_s, scope=o.scope))


def _cost(made: _Made, o: opt.CostBudgetOptions, name: str, judge: Any, pricing: Any) -> Any:
    from llmtap.evals.rules import CostBudgetEvaluator

    return _rule(made, lambda: CostBudgetEvaluator(name, o.max_usd, scope=o.scope))


def _lexical(
    made: _Made, o: opt.LexicalGroundednessOptions, name: str, judge: Any, pricing: Any
) -> Any:
    from llmtap.evals.rules import LexicalGroundednessEvaluator

    return _rule(
        made,
        lambda: LexicalGroundednessEvaluator(
            name, threshold=o.threshold, sentence_threshold=o.sentence_threshold
        ),
    )


def _fact_consistency(
    made: _Made, o: opt.FactConsistencyOptions, name: str, judge: Any, pricing: Any
) -> Any:
    from llmtap.evals.consistency import FactConsistencyEvaluator

    return _rule(
        made,
        lambda: FactConsistencyEvaluator(
            name,
            threshold=o.threshold,
            checks=o.checks,
            match_threshold=o.match_threshold,
            quote=o.quote,
            input_as_source=o.input_as_source,
        ),
    )


#: every evaluator type: name → (options dataclass, factory, description)
REGISTRY: Registry[Evaluator] = Registry("evaluator")
for _name in (*BUILTIN_RUBRICS, *ALIASES):
    REGISTRY.register(
        _name, opt.LlmOptions, _builtin_llm, BUILTIN_RUBRICS[ALIASES.get(_name, _name)].description
    )
REGISTRY.register(
    "custom_llm", opt.CustomLlmOptions, _custom_llm, "an LLM judge with your own rubric"
)
REGISTRY.register(
    "regex", opt.RegexOptions, _regex, "a regular expression is found (or not) in the output"
)
REGISTRY.register(
    "contains",
    opt.ContainsOptions,
    _contains,
    "the output contains a value (any or all of several)",
)
REGISTRY.register(
    "not_contains", opt.NotContainsOptions, _not_contains, "the output contains none of the values"
)
REGISTRY.register("json_valid", opt.JsonValidOptions, _json_valid, "the output is valid JSON")
REGISTRY.register(
    "json_schema",
    opt.JsonSchemaOptions,
    _json_schema,
    "the output is JSON conforming to a JSON Schema",
)
REGISTRY.register(
    "refusal",
    opt.RefusalOptions,
    _refusal,
    "the model refused (phrases, refusal flag, content filter)",
)
REGISTRY.register(
    "truncation", opt.TruncationOptions, _truncation, "the model stopped at its token limit"
)
REGISTRY.register("pii", opt.PiiOptions, _pii, "PII or secrets in the output")
REGISTRY.register(
    "latency_budget", opt.LatencyBudgetOptions, _latency, "span (or trace) duration budget"
)
REGISTRY.register("cost_budget", opt.CostBudgetOptions, _cost, "span (or trace) cost budget")
REGISTRY.register(
    "lexical_groundedness",
    opt.LexicalGroundednessOptions,
    _lexical,
    "token overlap of the output with the retrieved documents",
)
REGISTRY.register(
    "fact_consistency",
    opt.FactConsistencyOptions,
    _fact_consistency,
    "names, numbers, dates, negations and antonyms of the output found in the documents",
)

_MODEL_FACTORIES = (_builtin_llm, _custom_llm)


@dataclass(frozen=True)
class EvaluatorInfo:
    description: str
    keys: tuple[str, ...]
    uses_model: bool


#: each evaluator name with its description, its keys (beside name) and whether it asks a model
EVALUATORS: dict[str, EvaluatorInfo] = {
    name: EvaluatorInfo(
        REGISTRY[name].description,
        tuple(f.name for f in fields(REGISTRY[name].options) if f.name != "name"),
        REGISTRY[name].create in _MODEL_FACTORIES,
    )
    for name in REGISTRY
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
        raise EvaluatorConfigError([(ev_path, f"required; one of {', '.join(REGISTRY.names())}")])
    factory = REGISTRY.get(kind)
    if factory is None:
        raise EvaluatorConfigError([(ev_path, REGISTRY.unknown(kind, quoted=False))])
    options, problems = structure(_DIALECT, factory.options, spec, where, kind)
    made = _Made(where, kind, problems)
    evaluator = None
    if options is not FAILED:
        evaluator = factory.create(made, options, options.name or kind, judge_settings, pricing)
    elif factory.create in _MODEL_FACTORIES:
        _client_for(made, judge_settings)
    names = [f.name for f in fields(factory.options)]
    for problem in _DIALECT.unknown_keys(spec, names):
        made.problem(problem.path, problem.text("", kind))
    if made.problems or evaluator is None:
        raise EvaluatorConfigError(made.problems)
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
