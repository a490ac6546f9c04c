"""``build_evaluator``/``build_evaluators`` from config entries: every evaluator builds from
its minimal entry, and bad entries fail with the key path and what was expected."""

from __future__ import annotations

from typing import Any

import pytest

from llmtap.config_file import build
from llmtap.evals.judge_client import JudgeClient, JudgeSettings
from llmtap.evals.registry import (
    EVALUATORS,
    EvaluatorConfigError,
    build_evaluator,
    build_evaluators,
)

JUDGE = {"name": "gpt-4o-mini", "base_url": "http://127.0.0.1:1/v1"}

MINIMAL: dict[str, dict[str, Any]] = {
    "custom_llm": {"name": "tone", "rubric": "Is {output} polite?"},
    "regex": {"pattern": "x"},
    "contains": {"value": "x"},
    "not_contains": {"values": ["x"]},
    "json_schema": {"schema": {"type": "object"}},
    "latency_budget": {"max_s": 2.0},
    "cost_budget": {"max_usd": 0.01},
}


def problems(spec: Any, judge: Any = None, **kw: Any) -> list[str]:
    with pytest.raises(EvaluatorConfigError) as info:
        build_evaluator(spec, judge, **kw)
    assert str(info.value) == "\n".join(f"{p}: {m}" if p else m for p, m in info.value.problems)
    return str(info.value).splitlines()


@pytest.mark.parametrize("kind", sorted(EVALUATORS))
def test_every_evaluator_builds_from_its_minimal_entry(kind: str) -> None:
    spec = {"evaluator": kind, **MINIMAL.get(kind, {})}
    ev = build_evaluator(spec, JudgeSettings(**JUDGE))
    assert ev.name == spec.get("name", kind)
    assert ev.uses_model is EVALUATORS[kind].uses_model
    assert callable(ev.evaluate)


def test_rule_keys_and_string_values_are_accepted() -> None:
    ev = build_evaluator(
        {
            "evaluator": "latency_budget",
            "max_s": "2.5",  # ${env:...} gives strings
            "scope": "trace",
            "when": {"llmtap.feature": "support"},
            "sample": 0.1,
            "name": "slow_trace",
        }
    )
    assert (ev.name, ev.max_s, ev.scope) == ("slow_trace", 2.5, "trace")
    regex = build_evaluator({"evaluator": "regex", "pattern": "a", "ignore_case": "true"})
    assert regex.pattern.flags & 2  # re.IGNORECASE


def test_unknown_and_missing_evaluator() -> None:
    assert problems({"evaluator": "faithfulnes"}, where="judge.rules[3]") == [
        "judge.rules[3].evaluator: unknown evaluator 'faithfulnes' (did you mean faithfulness?); "
        "one of " + ", ".join(sorted(EVALUATORS))
    ]
    (line,) = problems({"pattern": "x"})
    assert line.startswith("evaluator: required; one of ")
    assert problems("regex") == ["expected a mapping with an evaluator key, got 'regex'"]


def test_missing_and_mistyped_keys_name_their_path() -> None:
    assert problems({"evaluator": "regex"}, where="judge.rules[0]") == [
        "judge.rules[0].pattern: required by evaluator regex"
    ]
    assert problems({"evaluator": "latency_budget", "max_s": "fast"}) == [
        "max_s: expected a number, got 'fast'"
    ]
    assert problems({"evaluator": "latency_budget", "max_s": 0}) == [
        "max_s: expected a number above 0, got 0.0"
    ]
    assert problems({"evaluator": "regex", "pattern": "(unclosed"}) == [
        "pattern: not a valid regular expression: missing ), unterminated subpattern at position 0"
    ]
    (line,) = problems({"evaluator": "regex", "patern": "x", "pattern": "y"})
    assert line.startswith("patern: not a setting of evaluator regex (did you mean pattern?)")
    assert problems({"evaluator": "contains"}) == [
        "value: required by evaluator contains (or values: [...])"
    ]
    assert problems({"evaluator": "cost_budget", "max_usd": 1, "scope": "request"}) == [
        "scope: expected one of span, trace, got 'request'"
    ]
    assert problems({"evaluator": "regex", "pattern": "x", "field": "answer"})[0].startswith(
        "field: unknown field 'answer'"
    )
    assert problems({"evaluator": "regex", "pattern": "x", "name": "has space"})[0].startswith(
        "name: expected a short identifier"
    )
    assert problems({"evaluator": "pii", "detectors": ["email", "passport"]}) == [
        "detectors: unknown detector(s) 'passport'; expected some of email, phone, "
        "credit_card, ssn, iban, ip, secrets"
    ]


def test_bad_json_schema_is_reported_at_its_path() -> None:
    lines = problems(
        {
            "evaluator": "json_schema",
            "schema": {"type": "object", "properties": {"a": {"type": 5}}},
        },
        where="judge.rules[1]",
    )
    assert len(lines) == 1
    assert lines[0].startswith("judge.rules[1].schema.properties.a.type: not a valid JSON Schema")


def test_custom_llm_problems_are_all_reported() -> None:
    lines = problems({"evaluator": "custom_llm", "output": "score"}, JudgeSettings(**JUDGE))
    assert lines == [
        "name: required by evaluator custom_llm (it names the verdicts)",
        "rubric: required by evaluator custom_llm",
        "output: expected one of boolean, numeric, got 'score'",
    ]
    lines = problems(
        {
            "evaluator": "custom_llm",
            "name": "tone",
            "rubric": "Is {answer} polite given {question}?",
            "variables": {"question": "input"},
            "threshold": 2,
        },
        JudgeSettings(**JUDGE),
    )
    assert lines[0] == "threshold: expected a number between 0 and 1, got 2.0"
    assert lines[1].startswith("rubric: placeholder {answer} is not a field nor a name under")
    bad_var = problems(
        {"evaluator": "custom_llm", "name": "t", "rubric": "{q}", "variables": {"q": "nope"}},
        JudgeSettings(**JUDGE),
    )
    assert bad_var[0].startswith("variables.q: unknown field 'nope'")


def test_llm_evaluator_needs_a_judge() -> None:
    (line,) = problems({"evaluator": "faithfulness"}, where="judge.rules[0]")
    assert line.startswith("judge.rules[0].evaluator: evaluator faithfulness asks an LLM judge")
    assert "judge.model" in line
    # rules build without one
    assert build_evaluator({"evaluator": "pii"}).uses_model is False


def test_bad_judge_settings_name_the_key() -> None:
    lines = problems({"evaluator": "toxicity"}, {"name": "", "timeout_s": -1, "retries": 3})
    assert lines == [
        "judge.model.retries: unknown setting; expected one of "
        + ", ".join(sorted(JudgeSettings.__dataclass_fields__))
    ]
    lines = problems({"evaluator": "toxicity"}, {"name": "", "timeout_s": -1})
    assert lines == [
        "judge.model.name: the judge model name is required",
        "judge.model.timeout_s: expected a number of seconds above 0, got -1",
    ]


def test_judge_settings_build_with_the_config_file_builder() -> None:
    settings = build(
        JudgeSettings,
        {"name": "m", "base_url": "http://h:8000/v1", "timeout_s": "5", "api": "anthropic"},
        "judge.model",
    )
    assert (settings.timeout_s, settings.api) == (5.0, "anthropic")
    assert settings.url == "http://h:8000/v1/messages"


def test_build_evaluators_shares_one_client_and_collects_every_problem() -> None:
    evaluators = build_evaluators(
        [
            {"evaluator": "faithfulness"},
            {"evaluator": "answer_relevance", "when": {"feedback": "negative"}, "sample": 1.0},
            {"evaluator": "regex", "pattern": "x"},
        ],
        JUDGE,
    )
    assert isinstance(evaluators[0].client, JudgeClient)
    assert evaluators[0].client is evaluators[1].client
    with pytest.raises(EvaluatorConfigError) as info:
        build_evaluators(
            [{"evaluator": "regex"}, {"evaluator": "pii"}, {"evaluator": "nope"}], JUDGE
        )
    paths = [p for p, _ in info.value.problems]
    assert paths == ["judge.rules[0].pattern", "judge.rules[2].evaluator"]


def test_every_fact_consistency_option_reaches_the_evaluator() -> None:
    ev = build_evaluator(
        {
            "evaluator": "fact_consistency",
            "threshold": 0.8,
            "checks": ["numbers"],
            "match_threshold": 0.7,
            "quote": False,
            "input_as_source": False,
        }
    )
    assert (ev.threshold, ev.checks, ev.match_threshold, ev.quote, ev.input_as_source) == (
        0.8,
        ("numbers",),
        0.7,
        False,
        False,
    )
