"""deploy/prometheus: the alert rules and the Prometheus config pass ``promtool`` checks,
the rules' unit tests (alerts_test.yaml) pass, and every alert is tested both firing and
staying silent. ``promtool`` is built by tools/build-otel-binaries.sh."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from .conftest import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=PROMETHEUS)


def _alerts() -> dict[str, dict]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def test_alert_rules_pass_promtool_check(promtool: str) -> None:
    result = _run(promtool, "check", "rules", "--lint=all", "--lint-fatal", "alerts.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_alert_rule_unit_tests_pass(promtool: str) -> None:
    result = _run(promtool, "test", "rules", "alerts_test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_expectation_fails_the_unit_tests(promtool: str, tmp_path) -> None:
    """The unit tests compare what fires: a wrong expected label makes them fail."""
    text = (PROMETHEUS / "alerts_test.yaml").read_text()
    broken = text.replace("{severity: warning, feature: support}", "{severity: page, feature: x}")
    assert broken != text
    (tmp_path / "alerts.yaml").write_text((PROMETHEUS / "alerts.yaml").read_text())
    (tmp_path / "alerts_test.yaml").write_text(broken)
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "LlmtapLatencyBudgetExceeded" in result.stdout + result.stderr


def test_prometheus_config_passes_promtool_check(promtool: str) -> None:
    result = _run(promtool, "check", "config", "--syntax-only", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    full = _run(promtool, "check", "config", "prometheus.yml")  # rule files too
    assert full.returncode == 0, full.stdout + full.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yaml").read_text())
    fired: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = set(_alerts())
    assert alerts - fired == set(), "alerts never expected to fire"
    assert alerts - silent == set(), "alerts never expected to stay silent"
    assert fired | silent <= alerts, "tests of alerts that do not exist"


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_alerts_carry_severity_and_text(name: str) -> None:
    rule = _alerts()[name]
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()
    assert rule.get("for"), "an alert without `for` pages on one bad scrape"


def test_config_uses_the_translation_the_dashboards_assume() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["otlp"]["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert config["rule_files"] == ["alerts.yaml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # LlmtapServiceDown reads up{job="llmtap-service"}
    assert 'up{job="llmtap-service"}' in _alerts()["LlmtapServiceDown"]["expr"]
    assert jobs["llmtap-service"]["static_configs"][0]["targets"] == ["llmtap:9464"]
