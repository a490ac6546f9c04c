"""fact_consistency: each kind of finding caught and named, paraphrases with the same facts
pass, the documented number rules, and the labelled fixture as a whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmtap.evals.base import EvalInput
from llmtap.evals.consistency import FactConsistencyEvaluator, find_inconsistencies
from llmtap.evals.registry import EvaluatorConfigError, build_evaluator

FIXTURE = Path(__file__).parent / "fixtures" / "fact_consistency_cases.jsonl"
DOC = (
    "Marseille prosecutor Brice Robin said on Wednesday, March 25, 2015 that no videos were "
    "used in the investigation. Refunds are allowed within 30 days of purchase. Revenue "
    "increased by 12% to $1,500,000 in 2023. The museum is not open on Mondays."
)


def found(answer: str, docs: list[str] | None = None) -> list[str]:
    _, findings = find_inconsistencies(answer, docs or [DOC])
    return [f.describe(True) for f in findings]


async def verdict(answer: str, **options: object) -> tuple[bool | None, float | None, str]:
    ev = build_evaluator({"evaluator": "fact_consistency", **options})
    v = await ev.evaluate(EvalInput(output_text=answer, documents=[DOC]))
    assert v.error_type is None
    return v.passed, v.score, v.explanation or ""


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Prosecutor Brice Martin said no videos were used.", 'name "Prosecutor Brice Martin"'),
        ("The case was handled in Lyon by Brice Robin.", 'name "Lyon"'),
        ("Refunds are allowed within 45 days of purchase.", 'number "45 days" in sentence 1'),
        ("Revenue increased by 21% in 2023.", 'number "21%"'),
        ("Revenue increased to $2.5M in 2023.", 'number "$2.5M"'),
        ("Robin spoke on March 26, 2015.", 'date "March 26, 2015"'),
        ("Robin spoke on 2015-04-25.", 'date "2015-04-25"'),
        ("Robin spoke on Thursday.", 'date "Thursday"'),
        ("The museum is open on Mondays.", 'negation flip "open"'),
        ("Refunds are not allowed within 30 days of purchase.", 'negation flip "not"'),
        ("Refunds are forbidden within 30 days of purchase.", 'antonym flip "forbidden"'),
        ("Revenue decreased by 12% to $1,500,000 in 2023.", 'antonym flip "decreased"'),
    ],
)
def test_each_kind_of_finding_is_caught_and_named(answer: str, expected: str) -> None:
    findings = found(answer)
    assert any(expected in f for f in findings), findings


@pytest.mark.parametrize(
    "answer",
    [
        "Prosecutor Brice Robin said no videos were used. Refunds are allowed within 30 days.",
        "Revenue rose 12 percent to $1.5 million in 2023.",
        "In 2023 revenue grew by 12% and reached 1,500,000 dollars.",
        "Robin spoke on 25 March 2015, a Wednesday.",
        "Robin spoke on 2015-03-25.",
        "Robin spoke in March 2015.",
        "On Mondays the museum is not open.",
        "You can get a refund within thirty days of purchase.",
        "Prosecutor Brice Robin of Marseille said so.",
    ],
)
def test_paraphrases_with_the_same_facts_pass(answer: str) -> None:
    assert found(answer) == []


def test_names_ignore_accents_case_and_possessives() -> None:
    docs = ["Yaya Touré signed for Manchester City in 2010."]
    assert found("Yaya Toure's move to Manchester City came in 2010.", docs) == []
    assert found("YAYA TOURE signed for Manchester City.", docs) == []
    assert found("Kolo Touré signed for Manchester City.", docs) == [
        'unsupported name "Kolo Touré" in sentence 1'
    ]


def test_a_nationality_adjective_and_its_country_stand_for_each_other() -> None:
    docs = [
        "Marie Curie was born in Poland and worked in France. Her husband Pierre was "
        "from Paris. The prize committee sits in the Netherlands and the United States."
    ]
    assert (
        found("Marie Curie was a Polish physicist who worked in French laboratories.", docs) == []
    )
    assert found("She won a prize from a Dutch committee and an American one.", docs) == []
    assert found("Curie was honoured in the USA.", docs) == []
    # the reverse: the documents use the adjective, the answer the country
    assert found("The film was shot in Germany.", ["The film is a German production."]) == []
    assert found("They met in South Africa.", ["Both are South African citizens."]) == []
    # a nationality the documents give no country for is still a finding
    assert found("Marie Curie was a Russian physicist.", docs) == [
        'unsupported name "Russian" in sentence 1'
    ]
    assert found("Curie worked in Italian laboratories.", docs) == [
        'unsupported name "Italian" in sentence 1'
    ]


def test_number_forms_and_the_documented_rounding_and_unit_rules() -> None:
    docs = ["The town has 1,523,000 residents and a 5 km ring road. It costs $1k a year."]
    assert found("It costs $1,000 a year.", docs) == []  # 1k == 1,000 == 1000
    assert found("The town has about 1.5 million residents.", docs) == []  # hedged: rounds
    assert found("The town has 1.5 million residents.", docs)  # not hedged: exact value only
    assert found("The ring road is 3.1 miles long.", docs)  # units are not converted
    assert found("The town has 2 million residents.", docs)


async def test_score_threshold_and_explanation() -> None:
    passed, score, why = await verdict("Refunds are allowed within 30 days. Robin spoke on Friday.")
    assert (passed, score) == (False, 0.5)
    assert why.startswith("1 of 2 sentence(s) without a finding: ")
    assert 'unsupported date "Friday" in sentence 2' in why
    passed, score, _ = await verdict("Robin spoke on Friday. Refunds: 30 days.", threshold=0.5)
    assert (passed, score) == (True, 0.5)
    passed, _, why = await verdict("Refunds are allowed within 45 days.", quote=False)
    assert passed is False and "45" not in why and "at characters 27-34" in why
    passed, _, _ = await verdict("Refunds are allowed within 45 days.", checks=["names", "dates"])
    assert passed is True


async def test_the_question_supports_names_and_numbers_unless_told_not_to() -> None:
    item = EvalInput(
        input_text="Is the Louvre open on Mondays?",
        output_text="The Louvre is not open on Mondays.",
        documents=["The museum is not open on Mondays."],
    )
    assert (await FactConsistencyEvaluator("f").evaluate(item)).passed is True
    strict = FactConsistencyEvaluator("f", input_as_source=False)
    v = await strict.evaluate(item)
    assert v.passed is False and '"Louvre"' in (v.explanation or "")


async def test_missing_documents_or_output() -> None:
    ev = FactConsistencyEvaluator("f")
    assert (await ev.evaluate(EvalInput(output_text="x"))).error_type == "missing_input"
    empty = EvalInput(output_text=" ", documents=[DOC])
    assert (await ev.evaluate(empty)).error_type == "missing_input"


def test_bad_options_are_named() -> None:
    with pytest.raises(EvaluatorConfigError, match=r"checks: expected some of names"):
        build_evaluator({"evaluator": "fact_consistency", "checks": ["names", "colours"]})
    with pytest.raises(EvaluatorConfigError, match=r"threshold: expected a number between"):
        build_evaluator({"evaluator": "fact_consistency", "threshold": 2})


def test_the_labelled_fixture() -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 60 and {r["kind"] for r in rows} >= {
        "paraphrase", "name", "number", "date", "negation", "antonym"
    }  # fmt: skip
    wrong = [r["id"] for r in rows if (not found(r["answer"], [r["document"]])) != r["label"]]
    assert wrong == ["p03"]  # "two Nobel Prizes": a count the document never states
