"""``examples/golden_set``: ``llmtap eval run`` in a subprocess, as CI would run it, on the
example's golden set; the bot passes, the same bot with a ranking bug fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "golden_set"


def _eval(tmp_path: Path, app: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "LLMTAP_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "llmtap", "eval", "run", str(EXAMPLE / "golden.jsonl"),
         "--app", f"{EXAMPLE / 'app.py'}:{app}", "--config", str(EXAMPLE / "llmtap.yaml"),
         *extra],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def test_the_example_golden_set_passes_and_catches_a_regression(tmp_path: Path) -> None:
    report, junit, baseline = tmp_path / "r.json", tmp_path / "r.xml", tmp_path / "base.json"
    good = _eval(tmp_path, "answer", "--json", str(report), "--junit", str(junit),
                 "--save-baseline", str(baseline))  # fmt: skip
    assert good.returncode == 0, good.stdout + good.stderr
    assert "[8/8]" in good.stderr
    data = json.loads(report.read_text())
    assert data["passed"] is True and len(data["cases"]) == 8
    assert {c["id"]: c["passed"] for c in data["cases"]} == dict.fromkeys(
        ["refund-annual", "refund-monthly", "shipping-origin", "delivery-germany",
         "password-reset", "support-hours", "invoices", "delete-account"], True
    )  # fmt: skip
    metrics = data["metrics"]
    assert metrics["expected"]["pass_rate"] == 1.0
    assert metrics["lexical_groundedness"]["pass_rate"] == 1.0
    assert metrics["settings_path"]["n"] == 1  # a case's own evaluator
    refund = next(c for c in data["cases"] if c["id"] == "refund-annual")
    assert "30 days" in refund["output"]  # the final answer quotes the retrieved article
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("33", "0", "0")

    broken = _eval(tmp_path, "answer_with_broken_ranker", "--baseline", str(baseline),
                   "--json", str(report), "--junit", str(junit))  # fmt: skip
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "FAIL expected.pass_rate = 0.000, below the threshold minimum 1.000" in broken.stdout
    assert "below the baseline minimum" in broken.stdout
    data = json.loads(report.read_text())
    assert data["passed"] is False
    suite = ET.parse(junit).getroot().find("testsuite")
    assert int(suite.get("failures")) >= 8


def test_bad_input_exits_2(tmp_path: Path) -> None:
    result = _eval(tmp_path, "no_such_function")
    assert result.returncode == 2
    assert "has no no_such_function" in result.stderr
