"""Golden sets: reading and checking the file, the ``expected`` reference check, and
``llmtap golden add`` from a review queue written by the service's own review code."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from llmtap.cli import main
from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.golden import GoldenError, ReferenceEvaluator, append_cases, load_golden
from llmtap.pipeline.span import SpanData
from llmtap.service.review import ReviewQueue, review_entry


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
        encoding="utf-8",
    )
    return path


def test_load_golden_reads_every_form(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "g.jsonl",
        [
            "# a comment, then a blank line",
            "",
            {"id": "a", "input": "Where is my parcel?", "expected": "Rotterdam"},
            {"id": 7, "input": [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "Hi"}],
             "expected": {"contains": ["x"], "regex": "^H"}, "documents": ["d1"],
             "metadata": {"tier": "gold"}, "feature": "support",
             "evaluators": ["truncation", {"evaluator": "regex", "pattern": "x"}]},
        ],
    )  # fmt: skip
    first, second = load_golden(path)
    assert (first.id, first.input, first.expected) == ("a", "Where is my parcel?", "Rotterdam")
    assert first.where == f"{path}:3"
    assert second.id == "7"
    assert second.documents == ["d1"] and second.feature == "support"
    assert second.evaluators == ["truncation", {"evaluator": "regex", "pattern": "x"}]
    assert second.to_json()["metadata"] == {"tier": "gold"}


def test_every_bad_line_is_reported_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "g.jsonl",
        [
            {"id": "ok", "input": "fine"},
            "{not json",
            ["a", "list"],
            {"input": "no id"},
            {"id": "ok", "input": "duplicate id"},
            {"id": "b", "input": ""},
            {"id": "c", "input": [{"role": "assistant", "content": "no user"}]},
            {"id": "d", "input": "x", "expected": {"contain": "typo"}},
            {"id": "e", "input": "x", "expected": {"regex": "("}},
            {"id": "f", "input": "x", "documents": "not a list", "extra": 1},
            {"id": "g", "input": "x", "evaluators": [3]},
        ],
    )
    with pytest.raises(GoldenError) as info:
        load_golden(path)
    assert info.value.problems == [
        f"{path}:2: not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        f"{path}:3: expected a JSON object, got a list",
        f"{path}:4: id: required",
        f"{path}:5: id: 'ok' is already the id of line 1",
        f"{path}:6: input: is empty",
        f"{path}:7: input: has no user message with text",
        f"{path}:8: expected.contain: unknown check; one of equals, contains, not_contains, "
        "regex, json",
        f"{path}:9: expected.regex: not a valid regular expression: missing ), unterminated "
        "subpattern at position 0",
        f"{path}:10: extra: unknown key; a case has id, input, expected, documents, metadata, "
        "feature, evaluators",
        f"{path}:10: documents: expected a list of strings",
        f"{path}:11: evaluators[0]: expected an evaluator name or an object",
    ]


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(GoldenError, match="no such file"):
        load_golden(tmp_path / "nope.jsonl")
    with pytest.raises(GoldenError, match="no cases"):
        load_golden(_write(tmp_path / "empty.jsonl", ["# nothing"]))


def _check(expected: Any, output: str) -> Verdict:
    return asyncio.run(ReferenceEvaluator(expected).evaluate(EvalInput(output_text=output)))


def test_reference_string_is_a_normalized_substring() -> None:
    ok = _check("three to five  days", "Delivery takes Three to five\ndays.")
    assert (ok.name, ok.passed, ok.score, ok.label) == ("expected", True, 1.0, "pass")
    miss = _check("three to five days", "It takes five days.")
    assert miss.passed is False
    assert miss.score == pytest.approx(0.5)  # two of its four words are there
    assert "50% of its words" in miss.explanation


def test_reference_lists_and_checks() -> None:
    assert _check(["weekdays", "9 to 17"], "Weekdays from 9 to 17.").passed is True
    partial = _check(["weekdays", "weekends"], "Weekdays only.")
    assert (partial.passed, partial.score) == (False, 0.5)
    assert partial.explanation == "missing 'weekends'"
    checks = {"contains": "Rotterdam", "not_contains": ["Berlin"], "regex": r"\d+ days"}
    assert _check(checks, "From Rotterdam in 2 days").passed is True
    bad = _check(checks, "From Berlin")
    assert bad.score == pytest.approx(0.0)
    assert bad.explanation == "missing 'Rotterdam'; unwanted 'Berlin'; no match for /\\d+ days/"
    assert _check({"json": {"ok": True}}, '{"ok": true}').passed is True
    assert _check({"json": {"ok": True}}, "ok").explanation == "the output is not JSON"
    assert _check({"equals": "Yes."}, " yes. ").passed is True
    with pytest.raises(ValueError, match="expected: is empty"):
        ReferenceEvaluator("  ")


# golden add ---------------------------------------------------------------------------------------


def _review_queue(path: Path) -> list[dict[str, Any]]:
    """Three reviewed spans, as the service's judge writes them."""
    queue = ReviewQueue(path)
    entries = []
    for i, (question, failing) in enumerate(
        [
            ("Can annual plans be refunded?", "faithfulness"),
            ("Where do orders ship from?", "answer_relevance"),
            ("Can annual plans be refunded?", "faithfulness"),  # the same question again
        ]
    ):
        span = SpanData(
            name="chat gpt-4o-mini",
            attributes={"gen_ai.response.id": f"chatcmpl-{i}", "llmtap.feature": "support",
                        "gen_ai.request.model": "gpt-4o-mini"},
            resource={"service.name": "support-bot"},
            trace_id=0xAB00 + i,
            span_id=0x10 + i,
        )  # fmt: skip
        item = EvalInput(question, f"wrong answer {i}", ["Annual plans: 30 days."])
        verdicts = [
            Verdict(failing, score=0.0, label="fail", passed=False, explanation="unsupported"),
            Verdict("truncation", score=0.0, label="complete", passed=True),
        ]
        entry = review_entry(span, item, verdicts, time_s=1_700_000_000 + i)
        queue.append(entry)
        entries.append(entry)
    return entries


def test_golden_add_turns_review_entries_into_cases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    review = tmp_path / "review.jsonl"
    entries = _review_queue(review)
    golden = _write(
        tmp_path / "golden.jsonl", [{"id": "old", "input": "Where do orders ship from?"}]
    )
    code = main(["golden", "add", str(review), "--to", str(golden), "--all"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"added 1 case(s) to {golden}; skipped 2 (1 already in the golden set, ")
    assert "1 repeated in the review queue, 0 without an input); 0 entries not selected" in out
    cases = load_golden(golden)  # still a valid golden set
    assert [c.id for c in cases] == ["old", f"review-{entries[0]['span_id']}"]
    new = cases[1]
    assert new.input == "Can annual plans be refunded?"
    assert new.expected is None
    assert new.documents == ["Annual plans: 30 days."]
    assert new.feature == "support"
    review_meta = new.metadata["review"]
    assert new.metadata["source"] == "review"
    assert review_meta["trace_id"] == entries[0]["trace_id"]
    assert review_meta["span_id"] == entries[0]["span_id"]
    assert review_meta["response_id"] == "chatcmpl-0"
    assert review_meta["output"] == "wrong answer 0"
    assert [v["name"] for v in review_meta["verdicts"]] == ["faithfulness", "truncation"]
    # a second run adds nothing
    assert main(["golden", "add", str(review), "--to", str(golden), "--all"]) == 0
    assert capsys.readouterr().out.startswith("added 0 case(s)")
    assert len(load_golden(golden)) == 2


def test_golden_add_selects_by_trace_or_evaluation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    review = tmp_path / "review.jsonl"
    entries = _review_queue(review)
    golden = tmp_path / "new" / "golden.jsonl"
    golden.parent.mkdir()
    args = ["golden", "add", str(review), "--to", str(golden)]
    assert main([*args, "--evaluation", "answer_relevance", "--expected", "Rotterdam"]) == 0
    assert "2 entries not selected" in capsys.readouterr().out
    (case,) = load_golden(golden)
    assert (case.input, case.expected) == ("Where do orders ship from?", "Rotterdam")
    prefix = entries[2]["trace_id"][:30].upper()  # a prefix, in any case, is enough
    assert main([*args, "--trace", prefix]) == 0
    assert capsys.readouterr().out.startswith("added 1 case(s)")
    assert [c.input for c in load_golden(golden)][-1] == "Can annual plans be refunded?"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "choose the entries: --trace ID, --evaluation NAME or --all"),
        (["--all", "--trace", "ab"], "--all takes every entry"),
        (["--all", "--expected", '{"contain": "x"}'], "--expected.contain: unknown check"),
    ],
)
def test_golden_add_input_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    review = tmp_path / "review.jsonl"
    _review_queue(review)
    golden = tmp_path / "golden.jsonl"
    assert main(["golden", "add", str(review), "--to", str(golden), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not golden.exists()


def test_golden_add_refuses_a_broken_golden_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    review = tmp_path / "review.jsonl"
    _review_queue(review)
    golden = _write(tmp_path / "golden.jsonl", ['{"id": "a", "input": "x"}', "oops"])
    before = golden.read_text()
    assert main(["golden", "add", str(review), "--to", str(golden), "--all"]) == 2
    assert f"{golden}:2: not valid JSON" in capsys.readouterr().err
    assert golden.read_text() == before


def test_append_cases_adds_a_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text('{"id": "a", "input": "x"}')
    assert append_cases(path, [{"id": "b", "input": "y"}]) == 1
    assert [c.id for c in load_golden(path)] == ["a", "b"]
