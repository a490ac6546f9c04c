"""deploy/grafana: the dashboards are well-formed, every query parses as PromQL (each one
written as a recording rule and checked by ``promtool check rules``), and every metric and
label a dashboard or alert rule reads is one llmtap really emits, so a renamed metric or
label fails here rather than leaving an empty panel."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import DEPLOY, Catalog
from .names import grafana_to_promql, grouping_labels, metric_names, selector_labels

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yaml"


def _panels(board: dict) -> list[dict]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every dashboard target."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in _panels(board):
            for target in panel.get("targets", []):
                where = f"{path.name}: {panel['title']} [{target['refId']}]"
                out.append((where, grafana_to_promql(target["expr"])))
    return out


def _alert_queries() -> list[tuple[str, str]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    return [(f"alert {r['alert']}", r["expr"]) for g in doc["groups"] for r in g["rules"]]


def test_the_five_dashboards_are_there() -> None:
    assert [p.name for p in DASHBOARDS] == [
        "llmtap-cost.json",
        "llmtap-latency.json",
        "llmtap-prompts.json",
        "llmtap-quality.json",
        "llmtap-service.json",
    ]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    board = json.loads(path.read_text())
    uids = {d["uid"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    assert board["uid"] == path.stem and board["title"]
    panels = _panels(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel.get("description"), panel
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] in uids
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids
            assert target["expr"].strip()
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] in uids
        assert variable["query"]["query"].startswith("label_values(")


def test_every_dashboard_query_parses(promtool: str, tmp_path: Path) -> None:
    queries = _queries()
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_the_parse_check_catches_a_broken_query(promtool: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    expr = "sum by (feature (rate(llmtap_cost_usd_total[5m]))"
    rule = {"record": "dashboard:broken", "expr": expr}
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("where", "expr"), [pytest.param(w, e, id=w) for w, e in _queries() + _alert_queries()]
)
def test_queries_read_only_emitted_metrics_and_labels(
    where: str, expr: str, emitted: Catalog
) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr}"
    unknown = names - set(emitted)
    assert not unknown, f"{where}: metrics llmtap does not emit: {sorted(unknown)}"
    for name, labels in selector_labels(expr).items():
        missing = labels - emitted[name]
        assert not missing, f"{where}: {name} has no label(s) {sorted(missing)}"
    known = set().union(*(emitted[n] for n in names))
    missing = grouping_labels(expr) - known
    assert not missing, f"{where}: grouped by label(s) no metric has: {sorted(missing)}"


def test_names_of_the_app_metrics_in_prometheus(app_metrics: Catalog) -> None:
    """The translated names the dashboards use, from the real instrumentation's metrics."""
    for name in (
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        "gen_ai_client_operation_time_per_output_chunk_seconds_bucket",
        "gen_ai_client_token_usage_bucket",
        "llmtap_cost_USD_total",
        "llmtap_cost_unpriced_total",
    ):
        assert name in app_metrics, sorted(app_metrics)
    assert "error_type" in app_metrics["gen_ai_client_operation_duration_seconds_count"]
    assert "llmtap_feature" in app_metrics["llmtap_cost_USD_total"]
    assert "gen_ai_token_type" in app_metrics["gen_ai_client_token_usage_bucket"]


def test_the_name_check_catches_a_drifted_name(emitted: Catalog) -> None:
    expr = "sum by (feature) (rate(llmtap_cost_total[5m]))"
    assert metric_names(expr) - set(emitted) == {"llmtap_cost_total"}
    assert selector_labels('rate(llmtap_feedback_total{verdict="x"}[5m])') == {
        "llmtap_feedback_total": {"verdict"}
    }
    assert "verdict" not in emitted["llmtap_feedback_total"]


def _prompt_series() -> list[dict[str, str]]:
    """An hour of two prompt versions: v1 10 calls a minute (no errors), 0.0125 USD and 120
    tokens a call, every call 0.16-0.32 s, 9 of 10 verdicts passing; v2 8 calls a minute
    plus 2 failed, 0.025 USD and 250 tokens a call, every call 0.64-1.28 s, no passes."""

    def usage(v: str, **more: str) -> str:
        extra = "".join(f',{k}="{x}"' for k, x in more.items())
        return f'{{model="gpt-4o",feature="support",prompt_version="{v}"{extra}}}'

    def judged(v: str, passed: str) -> str:
        return (
            f'llmtap_judge_verdicts_total{{gen_ai_evaluation_name="faithfulness",'
            f'llmtap_feature="support",llmtap_prompt_version="{v}",'
            f'llmtap_evaluation_passed="{passed}"}}'
        )

    calls = "llmtap_genai_calls_total"
    rows = [
        (calls + usage("v1", error_type=""), "10"),
        (calls + usage("v2", error_type=""), "8"),
        (calls + usage("v2", error_type="RateLimitError"), "2"),
        ("llmtap_cost_usd_total" + usage("v1"), "0.125"),
        ("llmtap_cost_usd_total" + usage("v2"), "0.25"),
        ("llmtap_tokens_total" + usage("v1", type="input"), "1000"),
        ("llmtap_tokens_total" + usage("v1", type="output"), "200"),
        ("llmtap_tokens_total" + usage("v2", type="input"), "2000"),
        ("llmtap_tokens_total" + usage("v2", type="output"), "500"),
        (judged("v1", "true"), "9"),
        (judged("v1", "false"), "1"),
        (judged("v2", "false"), "5"),
        (judged("v2", "unknown"), "3"),
    ]
    for v, bounds, n in (("v1", ("0.16", "0.32"), "10"), ("v2", ("0.64", "1.28"), "8")):
        for le, step in ((bounds[0], "0"), (bounds[1], n), ("+Inf", n)):
            rows.append(("llmtap_genai_duration_seconds_bucket" + usage(v, le=le), step))
    return [{"series": series, "values": f"0+{step}x60"} for series, step in rows]


def test_the_prompt_comparison_computes_per_version(promtool: str, tmp_path: Path) -> None:
    """The side-by-side tables of llmtap-prompts, evaluated by promtool on an hour of series
    shaped as the service writes them: each version gets its own figures, and a version
    with no errors (no passes) gets 0, not a missing cell."""
    board = json.loads((DEPLOY / "grafana" / "dashboards" / "llmtap-prompts.json").read_text())
    tables = {p["title"]: p for p in _panels(board) if p["type"] == "table"}
    side = {t["refId"]: t["expr"] for t in tables["Prompt versions side by side"]["targets"]}
    passes = tables["Pass rate per evaluator and prompt version"]["targets"][0]["expr"]
    expected = {  # refId -> {version: value}; A (calls) is extrapolated by increase(), left out
        "B": {"v1": 0.0125, "v2": 0.025},
        "C": {"v1": 120, "v2": 250},
        "D": {"v1": 0.24, "v2": 0.96},
        "E": {"v1": 0.312, "v2": 1.248},
        "F": {"v1": 0, "v2": 0.2},
    }

    def query(expr: str) -> str:
        return grafana_to_promql(expr).replace("[6h]", "[1h]")

    tests = [
        {
            "expr": query(side[ref]),
            "eval_time": "60m",
            "exp_samples": [
                {"labels": f'{{prompt_version="{v}"}}', "value": value} for v, value in want.items()
            ],
        }
        for ref, want in expected.items()
    ]
    tests.append(
        {
            "expr": query(passes),
            "eval_time": "60m",
            "exp_samples": [
                {
                    "labels": '{gen_ai_evaluation_name="faithfulness",'
                    f'llmtap_prompt_version="{v}"}}',
                    "value": value,
                }
                for v, value in (("v1", 0.9), ("v2", 0))
            ],
        }
    )
    unit = {
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": _prompt_series(), "promql_expr_test": tests}],
    }
    path = tmp_path / "prompts_test.yaml"
    path.write_text(yaml.safe_dump(unit, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
