"""docs/judges.md, as written: its Ollama and vLLM judge configurations run the documented
rubric evaluator against the devserver's OpenAI-compatible ``/v1/chat/completions`` (the
route Ollama and vLLM serve), and its ``llmtap eval calibrate`` command, on its labelled
lines, prints the agreement figures. The model answers with a scripted verdict (the
devserver's ``reply`` scenario, chosen by the model name through ``JUDGE_MODEL``, a variable
the documented configuration reads); no model runs here."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmtap.cli import main
from llmtap.config_file import load_config
from llmtap.devserver import DevServer
from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.judge_config import load_judge_config
from llmtap.evals.registry import build_evaluator

DOC = Path(__file__).resolve().parents[2] / "docs" / "judges.md"
VERDICT = {
    "explanation": 'The answer says "30 days"; the documents say 5 business days.',
    "label": "unfaithful",
    "score": False,
}
SCRIPTED = "devserver-reply:" + json.dumps(VERDICT)


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _blocks(title: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", _section(title), re.S)


def _config(tmp_path: Path, title: str) -> Path:
    (block,) = _blocks(title, "yaml")
    path = tmp_path / "llmtap.yaml"
    path.write_text(block)
    return path


@pytest.fixture
def devserver(monkeypatch: pytest.MonkeyPatch) -> Any:
    with DevServer() as server:
        monkeypatch.setenv("JUDGE_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("JUDGE_MODEL", SCRIPTED)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        yield server


def _judge(config: Path) -> Verdict:
    judge = load_judge_config(load_config(str(config)))
    assert judge is not None and judge.model is not None
    evaluator = build_evaluator(judge.rules[0].spec(), judge.model)
    item = EvalInput(
        input_text="How long do refunds take?",
        output_text="Refunds take 30 days.",
        documents=["Refunds are paid within 5 business days."],
    )

    async def run() -> Verdict:
        try:
            return await evaluator.evaluate(item)
        finally:
            await evaluator.client.aclose()

    return asyncio.run(run())


def _chat_requests(server: DevServer) -> list[Any]:
    return [r for r in server.requests.all() if r.path == "/v1/chat/completions"]


def test_the_ollama_judge_config(tmp_path: Path, devserver: DevServer) -> None:
    verdict = _judge(_config(tmp_path, "Ollama"))
    assert verdict.error_type is None, verdict.explanation
    assert verdict.name == "faithfulness" and verdict.passed is False
    assert verdict.explanation == VERDICT["explanation"]
    assert verdict.judge_model == SCRIPTED
    assert verdict.input_tokens and verdict.output_tokens
    assert verdict.cost_usd == 0  # provider: ollama
    (request,) = _chat_requests(devserver)
    body = json.loads(request.body)
    assert body["model"] == SCRIPTED and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert "authorization" not in {k.lower() for k in request.headers}  # no key needed


def test_the_vllm_judge_config(
    tmp_path: Path, devserver: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "vllm-test-key")
    verdict = _judge(_config(tmp_path, "vLLM"))
    assert verdict.error_type is None, verdict.explanation
    assert verdict.passed is False and verdict.explanation == VERDICT["explanation"]
    assert verdict.input_tokens and verdict.cost_usd is None  # unpriced, tokens counted
    (request,) = _chat_requests(devserver)
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["authorization"] == "Bearer vllm-test-key"


def test_the_documented_calibrate_command(
    tmp_path: Path,
    devserver: DevServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    section = "How good is the judge? `llmtap eval calibrate`"
    (lines,) = _blocks(section, "json")
    (command,) = _blocks(section, "sh")
    labelled = [json.loads(line) for line in lines.splitlines()]
    assert [x["label"] for x in labelled] == ["pass", "fail"]
    _config(tmp_path, "Ollama")  # llmtap.yaml
    (tmp_path / "labelled.jsonl").write_text(lines)
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(command)
    assert argv[0] == "llmtap"
    assert main([*argv[1:], "--json", "calibration.json"]) == 0
    out = capsys.readouterr().out
    # the scripted judge fails both answers: it agrees on r2 and not on r1
    assert "evaluator faithfulness: n=2 (errors: 0); positive class: fail" in out
    assert "accuracy 0.500  precision 0.500  recall 1.000  F1 0.667  Cohen's kappa 0.000" in out
    assert re.search(r"human pass\s+0\s+1\n", out) and re.search(r"human fail\s+0\s+1\n", out)
    result = json.loads((tmp_path / "calibration.json").read_text())
    assert [d["id"] for d in result["disagreements"]] == ["r1"]
    assert result["disagreements"][0]["explanation"] == VERDICT["explanation"]
    assert len(_chat_requests(devserver)) == 2


def test_the_doc_configs_are_valid_yaml_with_a_rule() -> None:
    for title in ("Ollama", "vLLM"):
        (block,) = _blocks(title, "yaml")
        judge = yaml.safe_load(block)["judge"]
        assert judge["rules"][0]["evaluator"] == "faithfulness"
        assert judge["model"]["base_url"].endswith("/v1}")
