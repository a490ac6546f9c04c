"""Results of an ``llmtap eval run``: metrics per evaluation, threshold and baseline checks,
the terminal table, the JSON report (also the baseline format) and JUnit XML.

Metrics of one evaluation over the cases: ``n`` (verdicts, errors included), ``passed``,
``failed``, ``errors`` (no verdict: the app or the evaluator failed), ``pass_rate``
(``passed / n``: an error never counts as a pass) and ``mean_score`` (over the verdicts with
a score; None when there are none).

A check compares a metric with a minimum: a threshold (``eval.thresholds``, ``--threshold``)
or the baseline's value less the tolerance. An evaluation that neither names gets an
"every case" check (pass rate 1: every case passes it) unless failures are allowed
(``--allow-failures``). The run passes when every check does.
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from llmtap.evals.base import Verdict
from llmtap.evals.eval_config import METRICS
from llmtap.evals.runner import CaseResult, InputError

__all__ = [
    "Check",
    "Metric",
    "build_report",
    "checks",
    "load_baseline",
    "metrics",
    "render_table",
    "write_json",
    "write_junit",
]

REPORT_VERSION = 1
_MAX_TEXT = 2000


@dataclass
class Metric:
    n: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    pass_rate: float | None = None
    mean_score: float | None = None


@dataclass
class Check:
    evaluation: str
    metric: str
    value: float | None
    minimum: float
    source: str  # threshold | baseline | every case
    ok: bool


EVERY_CASE = "every case"


def metrics(results: Sequence[CaseResult]) -> dict[str, Metric]:
    """Metrics per evaluation name, in the order the names first appear."""
    verdicts: dict[str, list[Verdict]] = {}
    for result in results:
        for verdict in result.verdicts:
            verdicts.setdefault(verdict.name, []).append(verdict)
    return {name: _metric(items) for name, items in verdicts.items()}


def _metric(verdicts: Sequence[Verdict]) -> Metric:
    m = Metric(n=len(verdicts))
    scores = []
    for v in verdicts:
        if v.error_type:
            m.errors += 1
            continue
        if v.passed is True:
            m.passed += 1
        elif v.passed is False:
            m.failed += 1
        if v.score is not None:
            scores.append(float(v.score))
    m.pass_rate = m.passed / m.n if m.n else None
    m.mean_score = sum(scores) / len(scores) if scores else None
    return m


def load_baseline(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """``{evaluation: {metric: value}}`` from a report written by ``--json`` or
    ``--save-baseline``; :class:`InputError` when it cannot be read."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"--baseline {source}: no such file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"--baseline {source}: not a JSON report: {exc}") from None
    found = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        raise InputError(f"--baseline {source}: no metrics (write it with --save-baseline)")
    out: dict[str, dict[str, float]] = {}
    for name, values in found.items():
        if isinstance(values, dict):
            out[name] = {
                k: float(values[k])
                for k in METRICS
                if isinstance(values.get(k), (int, float)) and not isinstance(values[k], bool)
            }
    return out


def checks(
    current: Mapping[str, Metric],
    thresholds: Mapping[tuple[str, str], float],
    baseline: Mapping[str, Mapping[str, float]] | None,
    tolerance: float,
    *,
    allow_failures: bool = False,
) -> list[Check]:
    """Threshold and baseline checks; with ``allow_failures`` false, an "every case" check
    of each evaluation that no threshold or baseline covers."""
    out = []
    for (name, metric), minimum in thresholds.items():
        value = getattr(current.get(name, Metric()), metric)
        out.append(Check(name, metric, value, minimum, "threshold", _meets(value, minimum)))
    for name, values in (baseline or {}).items():
        if name not in current:
            continue
        for metric, before in values.items():
            value = getattr(current[name], metric)
            minimum = max(0.0, before - tolerance)
            out.append(Check(name, metric, value, minimum, "baseline", _meets(value, minimum)))
    if not allow_failures:
        covered = {c.evaluation for c in out}
        for name, m in current.items():
            if name not in covered:
                ok = _meets(m.pass_rate, 1.0)
                out.append(Check(name, "pass_rate", m.pass_rate, 1.0, EVERY_CASE, ok))
    return out


def _meets(value: float | None, minimum: float) -> bool:
    return value is not None and value >= minimum - 1e-9


# the report --------------------------------------------------------------------------------------


def _cap(text: Any) -> Any:
    if isinstance(text, str) and len(text) > _MAX_TEXT:
        return text[: _MAX_TEXT - 1] + "…"
    return text


def _verdict(v: Verdict) -> dict[str, Any]:
    return {
        "name": v.name,
        "passed": v.passed,
        "score": v.score,
        "label": v.label,
        "explanation": _cap(v.explanation),
        "error_type": v.error_type,
        "judge_model": v.judge_model,
        "duration_s": round(v.duration_s, 6),
    }


def _case(result: CaseResult) -> dict[str, Any]:
    return {
        "id": result.case.id,
        "input": result.case.input,
        "output": _cap(result.output),
        "error": result.error,
        "trace_id": result.trace_id,
        "span_id": result.span_id,
        "duration_s": round(result.duration_s, 6),
        "passed": result.ok,
        "verdicts": [_verdict(v) for v in result.verdicts],
    }


def build_report(
    *,
    golden: str,
    app: str,
    results: Sequence[CaseResult],
    current: Mapping[str, Metric],
    found: Sequence[Check],
    duration_s: float,
    baseline: str | None = None,
) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "golden": golden,
        "app": app,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(duration_s, 3),
        "baseline": baseline,
        "passed": all(c.ok for c in found),
        "metrics": {name: asdict(m) for name, m in current.items()},
        "checks": [asdict(c) for c in found],
        "cases": [_case(r) for r in results],
    }


def write_json(report: Mapping[str, Any], path: str | os.PathLike) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, ensure_ascii=False, indent=2)
        fh.write("\n")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    first, *rest = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                    enumerate(zip(cells, widths, strict=True)))  # fmt: skip
    return "  ".join([first, *rest])


def render_table(current: Mapping[str, Metric], found: Sequence[Check]) -> str:
    """One row per evaluation, then one line per check that failed."""
    header = ("evaluation", "n", "pass rate", "mean score", "errors", "checks")
    rows = [header]
    for name, m in current.items():
        mine = [c for c in found if c.evaluation == name]
        status = "-" if not mine else "ok" if all(c.ok for c in mine) else "FAIL"
        rows.append((name, str(m.n), _percent(m.pass_rate), _number(m.mean_score),
                     str(m.errors), status))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [_row(r, widths) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for c in found:
        if not c.ok and c.source == EVERY_CASE:
            m = current[c.evaluation]
            lines.append(
                f"FAIL {c.evaluation}: {m.n - m.passed} of {m.n} case(s) did not pass "
                "(no threshold or baseline for it, so every case must)"
            )
        elif not c.ok:
            shown = "none" if c.value is None else _number(c.value)
            lines.append(
                f"FAIL {c.evaluation}.{c.metric} = {shown}, below the {c.source} "
                f"minimum {c.minimum:.3f}"
            )
    return "\n".join(lines)


def write_junit(
    results: Sequence[CaseResult], path: str | os.PathLike, *, name: str = "llmtap eval"
) -> None:
    """One ``testcase`` per case and evaluation (``classname`` = the evaluation): a
    ``failure`` for a failing verdict, an ``error`` when there was no verdict."""
    suite = ET.Element("testsuite", name=name)
    counts = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for result in results:
        for v in result.verdicts:
            counts["tests"] += 1
            total_time += v.duration_s
            case = ET.SubElement(
                suite, "testcase", classname=v.name, name=result.case.id,
                time=f"{v.duration_s:.6f}",
            )  # fmt: skip
            text = _junit_text(result, v)
            if v.error_type:
                counts["errors"] += 1
                error = ET.SubElement(case, "error", type=v.error_type)
                error.set("message", (v.explanation or v.error_type)[:500])
                error.text = text
            elif v.passed is not True:
                counts["failures"] += 1
                failure = ET.SubElement(case, "failure", type=v.label or "fail")
                failure.set("message", (v.explanation or "did not pass")[:500])
                failure.text = text
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{total_time:.6f}")
    tree = ET.ElementTree(ET.Element("testsuites"))
    tree.getroot().append(suite)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _junit_text(result: CaseResult, v: Verdict) -> str:
    lines = [
        f"score: {v.score}",
        f"label: {v.label}",
        f"explanation: {v.explanation}",
        f"trace: {result.trace_id}",
        f"output: {_cap(result.output)}",
    ]
    return "\n".join(lines)
