"""Rule evaluators (no model), each with passing and failing cases, built from config
entries as the service builds them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.registry import build_evaluator
from llmtap.evals.rules import lexical_support
from llmtap.pipeline.span import SpanData


def span(**attrs: Any) -> SpanData:
    duration = attrs.pop("duration_s", 0.0)
    return SpanData(name="chat m", attributes=attrs, duration_s=duration)


async def run(spec: dict[str, Any], item: EvalInput | str) -> Verdict:
    if isinstance(item, str):
        item = EvalInput(output_text=item)
    ev = build_evaluator(spec)
    assert ev.uses_model is False
    verdict = await ev.evaluate(item)
    assert verdict.name == spec.get("name", spec["evaluator"])
    assert verdict.judge_model is None and verdict.cost_usd is None
    return verdict


def outcome(v: Verdict) -> tuple[Any, ...]:
    return v.passed, v.score, v.label


# text patterns ------------------------------------------------------------------------------------


async def test_regex() -> None:
    spec = {"evaluator": "regex", "pattern": r"order #\d+", "name": "has_order"}
    assert outcome(await run(spec, "Your order #123 shipped")) == (True, 1.0, "match")
    assert outcome(await run(spec, "Your order shipped")) == (False, 0.0, "no_match")
    no_apology = {"evaluator": "regex", "pattern": "sorry", "match": False, "ignore_case": True}
    assert (await run(no_apology, "SORRY about that")).passed is False
    assert (await run(no_apology, "Here you go")).passed is True
    v = await run(spec, "Your order #123 shipped")
    assert "123" not in v.explanation  # positions, never content


async def test_regex_on_another_field() -> None:
    spec = {"evaluator": "regex", "pattern": "^premium$", "field": "metadata.tier"}
    item = EvalInput(output_text="x", metadata={"tier": "premium"})
    assert (await run(spec, item)).passed is True
    assert (await run(spec, EvalInput(output_text="premium"))).passed is False


async def test_contains_any_all_and_case() -> None:
    any_spec = {"evaluator": "contains", "values": ["refund", "return"]}
    assert outcome(await run(any_spec, "You can RETURN it")) == (True, 1.0, "present")
    assert outcome(await run(any_spec, "No luck")) == (False, 0.0, "absent")
    all_spec = {**any_spec, "require": "all"}
    assert (await run(all_spec, "refund after return")).passed is True
    assert (await run(all_spec, "refund only")).passed is False
    case_spec = {"evaluator": "contains", "value": "ACME", "case_sensitive": True}
    assert (await run(case_spec, "ACME Corp")).passed is True
    assert (await run(case_spec, "acme corp")).passed is False


async def test_not_contains() -> None:
    spec = {"evaluator": "not_contains", "values": ["competitor", "lawsuit"], "name": "clean"}
    assert outcome(await run(spec, "We are the best")) == (True, 1.0, "absent")
    v = await run(spec, "Unlike our Competitor...")
    assert outcome(v) == (False, 0.0, "present")
    assert v.explanation == "1 of 2 value(s) found in the output (#1)"


# JSON ---------------------------------------------------------------------------------------------


async def test_json_valid() -> None:
    spec = {"evaluator": "json_valid"}
    assert outcome(await run(spec, '{"a": 1}')) == (True, 1.0, "valid_json")
    v = await run(spec, '{"a": 1')
    assert outcome(v) == (False, 0.0, "invalid_json")
    assert v.explanation.startswith("not JSON")
    fenced = '```json\n{"a": 1}\n```'
    assert (await run(spec, fenced)).passed is False
    assert (await run({**spec, "strip_code_fence": True}, fenced)).passed is True
    assert (await run({**spec, "require_object": True}, "[1, 2]")).passed is False
    assert (await run(spec, "")).passed is False


SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}


async def test_json_schema() -> None:
    spec = {"evaluator": "json_schema", "schema": SCHEMA, "name": "answer_shape"}
    ok = await run(spec, json.dumps({"answer": "42", "confidence": 0.9}))
    assert outcome(ok) == (True, 1.0, "conforms")
    bad = await run(spec, json.dumps({"answer": "42", "confidence": 7}))
    assert outcome(bad) == (False, 0.0, "schema_violation")
    assert "confidence" in bad.explanation and "maximum" in bad.explanation
    assert "7" not in bad.explanation.split("fails")[0].replace("confidence", "")
    missing = await run(spec, json.dumps({"answer": "42"}))
    assert missing.passed is False and "required" in missing.explanation
    assert outcome(await run(spec, "not json")) == (False, 0.0, "invalid_json")


# refusal and truncation ---------------------------------------------------------------------------


async def test_refusal_phrases_flag_and_content_filter() -> None:
    spec = {"evaluator": "refusal"}
    assert outcome(await run(spec, "Paris is the capital of France.")) == (True, 0.0, "answer")
    v = await run(spec, "I\u2019m sorry, but I can\u2019t help with that request.")
    assert outcome(v) == (False, 1.0, "refusal")
    flagged = EvalInput(
        output_text="Here is some text", span=span(**{"llmtap.response.refusal": True})
    )
    assert (await run(spec, flagged)).label == "refusal"
    filtered = EvalInput(
        output_text="", span=span(**{"gen_ai.response.finish_reasons": ["content_filter"]})
    )
    assert (await run(spec, filtered)).label == "refusal"
    custom = {"evaluator": "refusal", "extra_phrases": ["not within my remit"]}
    assert (await run(custom, "That is not within my remit.")).passed is False
    expected = {"evaluator": "refusal", "expect_refusal": True, "name": "refuses_harm"}
    assert (await run(expected, "I cannot help with making explosives.")).passed is True
    assert (await run(expected, "Step one: ...")).passed is False


async def test_truncation() -> None:
    spec = {"evaluator": "truncation"}
    cut = EvalInput(span=span(**{"gen_ai.response.finish_reasons": ["length"]}))
    assert outcome(await run(spec, cut)) == (False, 1.0, "truncated")
    anthropic = EvalInput(span=span(**{"gen_ai.response.finish_reasons": ("max_tokens",)}))
    assert (await run(spec, anthropic)).label == "truncated"
    done = EvalInput(span=span(**{"gen_ai.response.finish_reasons": ["stop"]}))
    assert outcome(await run(spec, done)) == (True, 0.0, "complete")
    from_messages = EvalInput(
        span=span(
            **{
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [], "finish_reason": "length"}]
                )
            }
        )
    )
    assert (await run(spec, from_messages)).label == "truncated"
    v = await run(spec, EvalInput(output_text="x"))
    assert v.error_type == "missing_input" and v.passed is None and v.score is None


# PII ----------------------------------------------------------------------------------------------


async def test_pii() -> None:
    spec = {"evaluator": "pii", "name": "no_pii"}
    assert outcome(await run(spec, "Your ticket is resolved.")) == (True, 0.0, "no_pii")
    v = await run(spec, "Contact jane.doe@example.com or call +44 20 7946 0958.")
    assert v.passed is False and v.label == "pii" and v.score == 2.0
    assert "email x1" in v.explanation and "phone x1" in v.explanation
    assert "jane" not in v.explanation and "7946" not in v.explanation
    redacted = await run(spec, "Contact <EMAIL> for help")
    assert redacted.passed is False and "email x1" in redacted.explanation
    only_cards = {"evaluator": "pii", "detectors": ["credit_card"]}
    assert (await run(only_cards, "mail me at a@b.example.org")).passed is True
    assert (await run(only_cards, "card 4111 1111 1111 1111")).passed is False


# budgets ------------------------------------------------------------------------------------------


T0 = 1_700_000_000_000_000_000


async def test_latency_budget() -> None:
    spec = {"evaluator": "latency_budget", "max_s": 2.0}
    fast = EvalInput(span=span(duration_s=0.8))
    assert outcome(await run(spec, fast)) == (True, 0.8, "within_budget")
    slow = EvalInput(span=span(duration_s=3.5))
    assert outcome(await run(spec, slow)) == (False, 3.5, "over_budget")
    by_times = SpanData(name="x", attributes={}, start_ns=1_000_000_000, end_ns=3_500_000_000)
    assert (await run(spec, EvalInput(span=by_times))).score == 2.5
    trace = [
        SpanData(name="a", attributes={}, start_ns=T0, end_ns=T0 + 1_000_000_000),
        SpanData(name="b", attributes={}, start_ns=T0 + 500_000_000, end_ns=T0 + 2_500_000_000),
    ]
    trace_spec = {**spec, "scope": "trace"}
    v = await run(trace_spec, EvalInput(span=trace[0], trace=trace))
    assert outcome(v) == (False, 2.5, "over_budget")
    missing = await run(spec, EvalInput(span=SpanData(name="x", attributes={})))
    assert missing.error_type == "missing_input"


async def test_cost_budget() -> None:
    spec = {"evaluator": "cost_budget", "max_usd": 0.01}
    cheap = EvalInput(span=span(**{"llmtap.cost.total": 0.0004}))
    assert outcome(await run(spec, cheap)) == (True, 0.0004, "within_budget")
    dear = EvalInput(span=span(**{"llmtap.cost.total": 0.25}))
    assert outcome(await run(spec, dear)) == (False, 0.25, "over_budget")
    # the name older llmtap apps and other SDKs give the total
    legacy = EvalInput(span=span(**{"gen_ai.usage.cost": 0.25}))
    assert outcome(await run(spec, legacy)) == (False, 0.25, "over_budget")
    unpriced = EvalInput(span=span(**{"llmtap.cost.unknown_model": True}))
    missing = await run(spec, unpriced)
    assert missing.error_type == "missing_input"
    trace = [span(**{"llmtap.cost.total": 0.006}), span(**{"gen_ai.usage.cost": 0.006}), span()]
    v = await run({**spec, "scope": "trace"}, EvalInput(span=trace[0], trace=trace))
    assert outcome(v) == (False, 0.012, "over_budget")


# lexical groundedness -----------------------------------------------------------------------------

DOCS = [
    "The X200 router comes with a two-year limited warranty covering hardware faults.",
    "Firmware updates for the X200 are released every quarter.",
]


async def test_lexical_groundedness() -> None:
    spec = {"evaluator": "lexical_groundedness", "threshold": 0.6}
    grounded = EvalInput(
        output_text="The X200 router has a two-year limited warranty. Firmware updates are "
        "released every quarter.",
        documents=DOCS,
    )
    v = await run(spec, grounded)
    assert v.passed is True and v.label == "grounded" and v.score >= 0.8
    assert v.explanation.startswith("2 of 2 sentence(s)")
    made_up = EvalInput(
        output_text="The X200 router has a two-year warranty. It also includes free "
        "international shipping and a lifetime subscription to premium support.",
        documents=DOCS,
    )
    v = await run(spec, made_up)
    assert v.passed is False and v.label == "ungrounded" and 0 < v.score < 0.6
    assert "weakly supported: sentence 2" in v.explanation
    assert "shipping" not in v.explanation
    none = await run(spec, EvalInput(output_text="anything"))
    assert none.error_type == "missing_input"


def test_lexical_support_is_bounded_and_combines_documents() -> None:
    score, per_sentence = lexical_support("Warranty two years. Updates quarterly.", DOCS)
    assert 0.0 <= score <= 1.0 and len(per_sentence) == 2
    combined, _ = lexical_support("The warranty and firmware updates.", DOCS)
    assert combined == 1.0  # words from two documents together
    assert lexical_support("", DOCS) == (0.0, [])


@pytest.mark.parametrize(
    "spec",
    [
        {"evaluator": "regex", "pattern": "x"},
        {"evaluator": "json_schema", "schema": SCHEMA},
        {"evaluator": "pii"},
        {"evaluator": "refusal"},
    ],
)
async def test_rules_never_raise_on_empty_input(spec: dict[str, Any]) -> None:
    v = await build_evaluator(spec).evaluate(EvalInput())
    assert v.error_type is None or v.error_type == "missing_input"
    assert v.duration_s >= 0
