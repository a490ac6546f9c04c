"""``llmtap eval calibrate``: agreement of an evaluator with human labels (rule evaluators
and the LLM judge against the scripted loopback judge)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from llmtap.cli import main
from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.calibrate import Example, compare
from support.judge_server import JudgeServer

GOOD, BAD = "We refund within 30 days.", "Ask again later."
# human x evaluator (contains "refund"): pass/pass 4, pass/fail 1, fail/pass 2, fail/fail 3
LINES: list[dict[str, Any]] = [
    {"id": "pp1", "output": GOOD, "label": "pass"},
    {"id": "pp2", "output": GOOD, "label": True},
    {"id": "pp3", "output": GOOD, "label": 1},
    {"id": "pp4", "input": "Refunds?", "output": GOOD, "label": "good"},
    {"id": "pf1", "output": BAD, "label": "PASS"},
    {"id": "fp1", "output": "refund, maybe", "label": "fail"},
    {"id": "fp2", "output": "refund, maybe", "label": False},
    {"id": "ff1", "output": BAD, "score": 1, "threshold": 3},
    {"id": "ff2", "output": BAD, "score": 0.2},
    {"id": "ff3", "output": BAD, "label": 0, "documents": ["doc"]},
]


def _labelled(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_metrics_by_hand() -> None:
    examples = [Example(i, f"e{i}", EvalInput(), human) for i, human in
                enumerate([True] * 5 + [False] * 5, 1)]  # fmt: skip
    passed = [True, True, True, True, False, True, True, False, False, False]
    verdicts = [Verdict("v", score=float(p), passed=p) for p in passed]
    result = compare("v", examples, verdicts)
    assert result.n == 10 and result.errors == 0
    assert result.accuracy == pytest.approx(0.7)
    assert result.precision == pytest.approx(3 / 4)  # positive class: fail
    assert result.recall == pytest.approx(3 / 5)
    assert result.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert result.kappa == pytest.approx(0.4)  # (0.7 - 0.5) / (1 - 0.5)
    assert result.confusion == {"pass": {"pass": 4, "fail": 1}, "fail": {"pass": 2, "fail": 3}}
    assert [d.id for d in result.disagreements] == ["e5", "e6", "e7"]
    flipped = compare("v", examples, verdicts, positive="pass")
    assert (flipped.precision, flipped.recall) == (pytest.approx(4 / 6), pytest.approx(4 / 5))


def test_errors_are_left_out_and_kappa_is_undefined_without_variety() -> None:
    examples = [Example(i, f"e{i}", EvalInput(), True) for i in range(3)]
    verdicts = [
        Verdict("v", passed=True),
        Verdict("v", error_type="timeout"),
        Verdict("v", passed=True),
    ]
    result = compare("v", examples, verdicts)
    assert (result.n, result.errors, result.accuracy) == (2, 1, 1.0)
    assert result.kappa is None  # both always say pass: agreement by chance is 1
    assert result.precision is None and result.recall is None
    assert result.error_lines[0]["error"] == "timeout"


def test_calibrate_a_rule_evaluator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labelled = _labelled(tmp_path / "labelled.jsonl", LINES)
    out_json = tmp_path / "cal.json"
    evaluator = '{"evaluator": "contains", "value": "refund", "name": "mentions_refund"}'
    argv = ["eval", "calibrate", str(labelled), "--evaluator", evaluator, "--json", str(out_json)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [
        "evaluator mentions_refund: n=10 (errors: 0); positive class: fail",
        "accuracy 0.700  precision 0.750  recall 0.600  F1 0.667  Cohen's kappa 0.400",
    ]
    assert "line 5 (pf1): human pass, evaluator fail, score 0" in out
    data = json.loads(out_json.read_text())
    assert data["confusion"] == {"pass": {"pass": 4, "fail": 1}, "fail": {"pass": 2, "fail": 3}}
    assert [d["id"] for d in data["disagreements"]] == ["pf1", "fp1", "fp2"]


def test_calibrate_the_llm_judge_named_in_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], judge: JudgeServer
) -> None:
    config = tmp_path / "llmtap.yaml"
    config.write_text(textwrap.dedent(f"""
        judge:
          model: {{name: judge-mini, base_url: "{judge.openai_base_url}", api_key: k,
                   timeout_s: 5, max_retries: 0}}
        eval:
          evaluators:
            - {{evaluator: faithfulness, name: grounded}}
    """))  # fmt: skip
    labelled = _labelled(tmp_path / "l.jsonl", [
        {"id": "a", "input": "Refunds?", "output": GOOD, "documents": ["Refunds: 30 days."],
         "label": "pass"},
        {"id": "b", "input": "Refunds?", "output": "Refunds take a year.",
         "documents": ["Refunds: 30 days."], "label": "fail"},
        {"id": "c", "input": "Refunds?", "output": "Within 30 days.",
         "documents": ["Refunds: 30 days."], "label": "pass"},
    ])  # fmt: skip
    judge.push_verdict(score=True, label="faithful", explanation="supported")
    judge.push_verdict(score=False, label="unfaithful", explanation="a year is not in the notes")
    judge.push_verdict(score=False, label="unfaithful", explanation="too strict")
    argv = ["eval", "calibrate", str(labelled), "--evaluator", "grounded",
            "--config", str(config), "--concurrency", "1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("evaluator grounded: n=3 (errors: 0)")
    assert "line 3 (c): human pass, evaluator fail, score 0: too strict" in out
    assert len(judge.requests) == 3
    assert "Refunds take a year." in judge.requests[1].prompt
    assert "Refunds: 30 days." in judge.requests[1].prompt


def test_bad_lines_are_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labelled = _labelled(tmp_path / "l.jsonl", [
        {"id": "ok", "output": GOOD, "label": "pass"},
        {"id": "no-output", "label": "pass"},
        {"id": "odd-label", "output": GOOD, "label": "maybe"},
        {"id": "no-label", "output": GOOD},
        {"id": "bad-score", "output": GOOD, "score": "high"},
        "[1, 2]",
    ])  # fmt: skip
    argv = ["eval", "calibrate", str(labelled), "--evaluator", "truncation"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{labelled}:2: output: required, a string" in err
    assert f"{labelled}:3: label: expected pass/fail or true/false, got 'maybe'" in err
    assert f"{labelled}:4: label: required" in err
    assert f"{labelled}:5: score: expected a number, got 'high'" in err
    assert f"{labelled}:6: expected a JSON object, got a list" in err


def test_an_evaluator_that_needs_a_judge_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMTAP_CONFIG", raising=False)
    labelled = _labelled(tmp_path / "l.jsonl", LINES[:1])
    assert main(["eval", "calibrate", str(labelled), "--evaluator", "faithfulness"]) == 2
    assert "no judge model is configured" in capsys.readouterr().err
