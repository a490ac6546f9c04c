"""``llmtap eval run``: golden cases through a real app (OpenAI SDK on the in-process dev
server, llmtap instrumentation), judged by the registry's evaluators from the case's trace,
with thresholds, baselines, JSON and JUnit output; the LLM judge path against the scripted
loopback judge."""

from __future__ import annotations

import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from llmtap.cli import main
from support.judge_server import JudgeServer

APP = """
import json
from pathlib import Path

import llmtap
from llmtap.devserver import async_openai_client, openai_client

KB = {"refund": "Annual plans are refundable within 30 days.",
      "ship": "Orders ship from Rotterdam within two days."}
CALLS = Path(__file__).with_name("calls.log")
client = openai_client()


def _chat(question, notes):
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Answer from: " + notes},
                  {"role": "user", "content": question}],
    )
    return reply.choices[0].message.content


def answer(question):
    with CALLS.open("a") as fh:
        fh.write(question + "\\n")
    if "explode" in question:
        raise RuntimeError("the vector store is down")
    key = "refund" if "refund" in question else "ship"
    with llmtap.retrieval("kb", query=question) as step:
        step.documents([{"id": key, "content": KB[key]}])
    return _chat(question, KB[key])


def regressed(question):  # a prompt change that loses the question
    with llmtap.retrieval("kb", query=question) as step:
        step.documents([{"id": "refund", "content": KB["refund"]}])
    return _chat("I do not know.", KB["refund"])


async def answer_case(case):
    client = async_openai_client()
    reply = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": " ".join(case.documents)},
                  {"role": "user", "content": case.input}],
    )
    return {"answer": reply.choices[0].message.content}
"""

GOLDEN = [
    {"id": "refund", "input": "Do you refund annual plans?", "expected": "refund annual plans",
     "feature": "support", "metadata": {"tier": "gold"}},
    {"id": "ship", "input": "Where do you ship from?", "expected": {"contains": ["ship from"]}},
    {"id": "miss", "input": "Where do you ship from, please?", "expected": "Rotterdam"},
]  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "app.py").write_text(APP)
    _golden(tmp_path / "golden.jsonl", GOLDEN)
    _config(tmp_path / "llmtap.yaml", "")
    monkeypatch.delenv("LLMTAP_CONFIG", raising=False)
    return tmp_path


def _golden(path: Path, cases: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def _config(path: Path, extra: str) -> Path:
    base = """
        service_name: eval-tests
        eval:
          evaluators:
            - truncation
            - {evaluator: lexical_groundedness, threshold: 0.0}
          concurrency: 2
    """
    path.write_text(textwrap.dedent(base) + extra)
    return path


def _run(project: Path, *extra: str, app: str = "answer") -> int:
    return main([
        "eval", "run", str(project / "golden.jsonl"), "--app", f"{project / 'app.py'}:{app}",
        "--config", str(project / "llmtap.yaml"), *extra,
    ])  # fmt: skip


def test_run_judges_each_case_from_its_trace(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_xml = project / "report.json", project / "report.xml"
    code = _run(project, "--json", str(out_json), "--junit", str(out_xml), "--allow-failures")
    assert code == 0  # no thresholds, failing cases allowed
    captured = capsys.readouterr()
    assert "[3/3]" in captured.err and "miss: FAIL expected" in captured.err
    table = captured.out.splitlines()
    assert table[0].split() == ["evaluation", "n", "pass", "rate", "mean", "score", "errors",
                                "checks"]  # fmt: skip
    assert table[2].split()[:3] == ["truncation", "3", "100.0%"]
    assert table[4].split()[:3] == ["expected", "3", "66.7%"]

    report = json.loads(out_json.read_text())
    assert report["passed"] is True and report["checks"] == []
    assert report["metrics"]["expected"] == {
        "n": 3, "passed": 2, "failed": 1, "errors": 0,
        "pass_rate": pytest.approx(2 / 3), "mean_score": pytest.approx((1 + 1 + 0) / 3),
    }  # fmt: skip
    cases = {c["id"]: c for c in report["cases"]}
    refund = cases["refund"]
    # the evaluated output is the model's answer on the chat span of the case's trace
    assert refund["output"].startswith('Hello from the llmtap devserver! You said: "Do you')
    assert len(refund["trace_id"]) == 32 and len(refund["span_id"]) == 16  # the chat span
    assert len({c["trace_id"] for c in cases.values()}) == 3  # one trace per case
    verdicts = {v["name"]: v for v in refund["verdicts"]}
    assert set(verdicts) == {"truncation", "lexical_groundedness", "expected"}
    assert verdicts["lexical_groundedness"]["error_type"] is None  # documents were found
    miss = {v["name"]: v for v in cases["miss"]["verdicts"]}["expected"]
    assert miss["passed"] is False and "not in the output" in miss["explanation"]

    suite = ET.parse(out_xml).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("9", "1", "0")
    (failure,) = suite.iter("failure")
    failed_case = next(tc for tc in suite.iter("testcase") if tc.find("failure") is not None)
    assert (failed_case.get("classname"), failed_case.get("name")) == ("expected", "miss")
    assert "not in the output" in failure.get("message")
    assert cases["miss"]["trace_id"] in failure.text


def test_thresholds_and_baselines_decide_the_exit_code(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = project / "baseline.json"
    assert _run(project, "--quiet", "--save-baseline", str(baseline), "--allow-failures") == 0
    saved = json.loads(baseline.read_text())["metrics"]
    assert saved["expected"]["pass_rate"] == pytest.approx(2 / 3)
    capsys.readouterr()

    assert _run(project, "--quiet", "--baseline", str(baseline)) == 0  # same app, same metrics
    assert "passed: 3 case(s)" in capsys.readouterr().out

    assert _run(project, "--quiet", "--baseline", str(baseline), app="regressed") == 1
    out = capsys.readouterr().out
    assert "FAIL expected.pass_rate = 0.000, below the baseline minimum 0.667" in out
    assert out.rstrip().splitlines()[-1].startswith("REGRESSION: ")

    tolerant = ("--baseline", str(baseline), "--tolerance", "1")
    assert _run(project, "--quiet", *tolerant, app="regressed") == 0
    capsys.readouterr()

    assert _run(project, "--quiet", "--threshold", "expected=0.9") == 1
    assert "below the threshold minimum 0.900" in capsys.readouterr().out
    _config(project / "llmtap.yaml", "  thresholds: {expected.mean_score: 0.5}\n")
    assert _run(project, "--quiet") == 0


def test_a_failing_case_fails_the_run_unless_allowed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_xml = project / "r.json", project / "r.xml"
    assert _run(project, "--quiet", "--json", str(out_json), "--junit", str(out_xml)) == 1
    out = capsys.readouterr().out
    assert "FAIL expected: 1 of 3 case(s) did not pass (no threshold or baseline" in out
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("FAILED: 1 of 3 case(s) failed (miss); 3 case(s), 0 app error(s)")
    assert f"the report {out_json}, the JUnit {out_xml}" in last
    assert "--allow-failures" in last
    report = json.loads(out_json.read_text())
    assert report["passed"] is False
    every = {c["evaluation"]: c for c in report["checks"] if c["source"] == "every case"}
    assert set(every) == {"truncation", "lexical_groundedness", "expected"}
    assert every["expected"]["ok"] is False and every["truncation"]["ok"] is True

    # a threshold on the failing evaluation is what the gate checks instead
    assert _run(project, "--quiet", "--threshold", "expected=0.6") == 0
    assert capsys.readouterr().out.rstrip().endswith("3 check(s) met, 1 failing case(s) allowed")
    assert _run(project, "--quiet", "--allow-failures", "--threshold", "truncation=1") == 0


def test_app_exceptions_are_case_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _golden(project / "golden.jsonl", [
        {"id": "ok", "input": "Do you refund?"},
        {"id": "boom", "input": "Please explode now"},
    ])  # fmt: skip
    out_json, out_xml = project / "r.json", project / "r.xml"
    code = _run(project, "--json", str(out_json), "--junit", str(out_xml),
                "--threshold", "truncation=1")  # fmt: skip
    assert code == 1
    assert "boom: ERROR RuntimeError: the vector store is down" in capsys.readouterr().err
    report = json.loads(out_json.read_text())
    boom = next(c for c in report["cases"] if c["id"] == "boom")
    assert boom["error"] == "RuntimeError: the vector store is down"
    assert {v["error_type"] for v in boom["verdicts"]} == {"app_error"}
    assert report["metrics"]["truncation"]["errors"] == 1
    assert report["metrics"]["truncation"]["pass_rate"] == 0.5
    suite = ET.parse(out_xml).getroot().find("testsuite")
    assert suite.get("errors") == "2"


def test_async_app_gets_the_case_and_spans_carry_its_context(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _golden(project / "golden.jsonl", [{
        "id": "ctx", "input": "Where from?", "documents": ["Orders ship from Rotterdam."],
        "feature": "shipping", "metadata": {"tier": "gold"},
        "evaluators": [
            {"evaluator": "contains", "field": "span.llmtap.metadata.tier", "value": "gold",
             "name": "tier_on_span"},
            {"evaluator": "contains", "field": "span.llmtap.feature", "value": "shipping",
             "name": "feature_on_span"},
            {"evaluator": "contains", "field": "documents", "value": "Rotterdam",
             "name": "documents_from_case"},
        ],
    }])  # fmt: skip
    out_json = project / "r.json"
    assert _run(project, "--json", str(out_json), app="answer_case") == 0
    (case,) = json.loads(out_json.read_text())["cases"]
    verdicts = {v["name"]: v["passed"] for v in case["verdicts"]}
    assert verdicts["tier_on_span"] and verdicts["feature_on_span"]
    assert verdicts["documents_from_case"]
    assert case["output"].startswith("Hello from the llmtap devserver!")


def test_bad_input_is_reported_at_once_and_nothing_runs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    golden = project / "golden.jsonl"
    golden.write_text(
        json.dumps({"id": "a", "input": "x"}) + "\n"
        + "not json\n"
        + json.dumps({"id": "b", "input": "y", "evaluators": [{"evaluator": "regexp"}]}) + "\n"
    )  # fmt: skip
    _config(project / "llmtap.yaml", "  thresholds: {nosuch: 0.5}\n")
    config = project / "llmtap.yaml"
    config.write_text(config.read_text().replace("threshold: 0.0", "threshold: 2"))
    code = _run(project, "--evaluator", '{"evaluator": "regex"}')
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("llmtap eval run: nothing was run:\n")
    assert f"{config}:6: eval.evaluators[1].threshold: expected a number between 0 and 1" in err
    assert "--evaluator[0].pattern: required by evaluator regex" in err
    assert f"{golden}:2: not valid JSON" in err
    assert f"{golden}:3: evaluators[0].evaluator: unknown evaluator 'regexp' (did you mean" in err
    assert "eval.thresholds nosuch: no evaluation is named 'nosuch'" in err
    assert not (project / "calls.log").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app", "nodots"], "--app: expected module:function or file.py:function"),
        (["--app", "no_such_module_xyz:f"], "--app: cannot import no_such_module_xyz"),
        (["--app", "missing.py:f"], "--app: missing.py: no such file"),
        (["--baseline", "nope.json"], "--baseline nope.json: no such file"),
    ],
)
def test_app_and_baseline_problems(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    argv = ["eval", "run", str(project / "golden.jsonl"), "--config", str(project / "llmtap.yaml")]
    if "--app" not in args:
        argv += ["--app", f"{project / 'app.py'}:answer"]
    assert main([*argv, *args]) == 2
    assert message in capsys.readouterr().err


def test_the_llm_judge_reads_the_trace(
    project: Path, capsys: pytest.CaptureFixture[str], judge: JudgeServer
) -> None:
    _golden(project / "golden.jsonl", GOLDEN[:2])
    (project / "llmtap.yaml").write_text(textwrap.dedent(f"""
        judge:
          model: {{name: judge-mini, base_url: "{judge.openai_base_url}", api_key: k,
                   timeout_s: 5, max_retries: 0}}
          rules:
            - {{evaluator: faithfulness, when: {{llmtap.feature: never-matches}}, sample: 0.01}}
        eval:
          thresholds: {{faithfulness: 1.0}}
          concurrency: 1
    """))  # fmt: skip
    judge.push_verdict(score=True, label="faithful", explanation="supported")
    judge.push_verdict(score=False, label="unfaithful", explanation="invents a city")
    out_json = project / "r.json"
    assert _run(project, "--json", str(out_json)) == 1  # the judge rule's evaluator, every case
    report = json.loads(out_json.read_text())
    assert report["metrics"]["faithfulness"]["pass_rate"] == 0.5
    by_id = {
        c["id"]: {v["name"]: v for v in c["verdicts"]}["faithfulness"] for c in report["cases"]
    }
    assert by_id["refund"]["passed"] is True and by_id["refund"]["judge_model"] == "judge-mini"
    assert by_id["ship"]["explanation"] == "invents a city"
    first, second = judge.requests
    # the judge saw the retrieved document and the answer from the case's trace
    assert "Annual plans are refundable within 30 days." in first.prompt
    assert "Do you refund annual plans?" in first.prompt
    assert "Orders ship from Rotterdam" in second.prompt
    assert 'You said: "Where do you ship from?"' in second.prompt


def test_app_as_module_function_from_the_current_directory(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "golden_app_mod.py").write_text((project / "app.py").read_text())
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    argv = ["eval", "run", "golden.jsonl", "--app", "golden_app_mod:answer", "--quiet",
            "--config", "llmtap.yaml", "--threshold", "truncation=1",
            "--allow-failures"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "passed: 3 case(s), 0 app error(s), 1 check(s) met, 1 failing case(s) allowed" in out
