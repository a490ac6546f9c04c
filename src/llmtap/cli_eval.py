"""``llmtap eval run``, ``llmtap eval calibrate`` and ``llmtap golden add``.

Exit codes: 0 when everything meets its thresholds and baseline and every case passes the
evaluations that have neither, 1 on a failure (a metric below its threshold or below the
baseline less the tolerance; a failing case, unless ``--allow-failures``), 2 on bad input
(golden file, config, app, evaluator, flags); with bad input nothing runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

EXIT_OK, EXIT_REGRESSION, EXIT_INPUT = 0, 1, 2


def add_parser(sub: Any) -> None:
    evaluate = sub.add_parser("eval", help="run a golden set through the app; calibrate judges")
    actions = evaluate.add_subparsers(dest="eval_command", required=True)
    _add_run(actions)
    _add_calibrate(actions)
    golden = sub.add_parser("golden", help="grow a golden set from the review queue")
    golden_actions = golden.add_subparsers(dest="golden_command", required=True)
    _add_golden_add(golden_actions)


def _evaluator(text: str) -> Any:
    """An evaluator name, or a registry entry as JSON."""
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError("expected a JSON object")
        return value
    if not text:
        raise argparse.ArgumentTypeError("expected an evaluator name or a JSON entry")
    return text


def _threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not sep or not name.strip() or not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE with VALUE from 0 to 1 (NAME.mean_score=VALUE for the mean "
            f"score), got {text!r}"
        )
    return name.strip(), number


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return int(text)


def _add_run(actions: Any) -> None:
    p = actions.add_parser(
        "run",
        help="run a golden set through the app and judge it",
        description="Run every case of GOLDEN through the app with llmtap tracing on, judge "
        "each case's trace with the configured evaluators and its expected value, and fail "
        "(exit 1) when a metric is below its threshold or its baseline, or when a case fails "
        "an evaluation that has no threshold or baseline (unless --allow-failures).",
    )
    p.add_argument("golden", metavar="GOLDEN.jsonl")
    p.add_argument("--app", required=True, metavar="MODULE:FUNCTION",
                   help="the app callable (sync or async); it gets the case input, or the "
                   "case when it has a parameter named case")  # fmt: skip
    p.add_argument("--config", metavar="FILE", help="llmtap.yaml (default: $LLMTAP_CONFIG)")
    p.add_argument("--evaluator", action="append", type=_evaluator, default=[],
                   metavar="NAME|JSON", help="an evaluator of every case (repeatable)")  # fmt: skip
    p.add_argument("--threshold", action="append", type=_threshold, default=[],
                   metavar="NAME=VALUE", help="minimum pass rate of an evaluation, or "
                   "NAME.mean_score=VALUE (repeatable)")  # fmt: skip
    p.add_argument("--baseline", metavar="FILE", help="fail when a metric falls below this "
                   "earlier report")  # fmt: skip
    p.add_argument("--save-baseline", metavar="FILE", help="write this run's report as a baseline")
    p.add_argument("--tolerance", type=_ratio, help="how far below the baseline is allowed "
                   "(default: eval.tolerance, 0)")  # fmt: skip
    p.add_argument("--allow-failures", action="store_true", help="report failing cases "
                   "without failing the run (thresholds and baselines still apply); by "
                   "default a case that fails an evaluation with no threshold or baseline "
                   "fails the run")  # fmt: skip
    p.add_argument("--json", metavar="OUT", help="write the JSON report")
    p.add_argument("--junit", metavar="OUT", help="write JUnit XML")
    p.add_argument("--concurrency", type=_positive_int, metavar="N", help="cases at once")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(handler=run_command)


def _add_calibrate(actions: Any) -> None:
    p = actions.add_parser(
        "calibrate",
        help="measure an evaluator's agreement with human labels",
        description="Judge every labelled example with one evaluator and report accuracy, "
        "precision, recall, F1 and Cohen's kappa against the human labels.",
    )
    p.add_argument("labelled", metavar="LABELLED.jsonl")
    p.add_argument("--evaluator", required=True, type=_evaluator, metavar="NAME|JSON",
                   help="an evaluation named in the config, an evaluator name, or a JSON "
                   "entry")  # fmt: skip
    p.add_argument("--config", metavar="FILE", help="llmtap.yaml (default: $LLMTAP_CONFIG)")
    p.add_argument("--positive", choices=("fail", "pass"), default="fail",
                   help="the class precision and recall are about (default: fail)")  # fmt: skip
    p.add_argument("--label-threshold", type=float, default=0.5, metavar="X",
                   help="a human score at or above X is a pass (default 0.5)")  # fmt: skip
    p.add_argument("--concurrency", type=_positive_int, default=4, metavar="N")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    p.set_defaults(handler=calibrate_command)


def _add_golden_add(actions: Any) -> None:
    p = actions.add_parser(
        "add",
        help="turn review-queue entries into golden cases",
        description="Append the selected entries of a review queue (llmtap serve's "
        "judge.review_queue) to a golden set, skipping cases it already has.",
    )
    p.add_argument("review", metavar="REVIEW.jsonl")
    p.add_argument("--to", required=True, metavar="GOLDEN.jsonl", help="the golden set")
    p.add_argument("--trace", action="append", default=[], metavar="ID",
                   help="take the entries of this trace (an id prefix; repeatable)")  # fmt: skip
    p.add_argument("--evaluation", metavar="NAME",
                   help="take the entries this evaluation failed")  # fmt: skip
    p.add_argument("--all", action="store_true", help="take every entry")
    p.add_argument("--expected", metavar="TEXT|JSON",
                   help="the expected value of the new cases (default: none)")  # fmt: skip
    p.set_defaults(handler=golden_add_command)


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return EXIT_INPUT


# eval run ----------------------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    from llmtap.evals import report
    from llmtap.evals.runner import InputError, prepare, run_cases

    started = time.perf_counter()
    try:
        run = prepare(
            args.golden,
            args.app,
            config=args.config,
            evaluators=args.evaluator,
            thresholds=dict(args.threshold),
            tolerance=args.tolerance,
            concurrency=args.concurrency,
        )
        baseline = report.load_baseline(args.baseline) if args.baseline else None
    except InputError as exc:
        return _fail(f"llmtap eval run: nothing was run:\n{exc}")
    progress = None if args.quiet else sys.stderr
    if progress is not None:
        print(f"llmtap eval: {len(run.cases)} case(s) through {run.app_name}", file=progress)
    results = run_cases(run, progress=progress)
    current = report.metrics(results)
    found = report.checks(
        current, run.thresholds, baseline, run.tolerance, allow_failures=args.allow_failures
    )
    data = report.build_report(
        golden=args.golden,
        app=args.app,
        results=results,
        current=current,
        found=found,
        duration_s=time.perf_counter() - started,
        baseline=args.baseline,
    )
    print(report.render_table(current, found))
    for path, write in ((args.json, report.write_json), (args.save_baseline, report.write_json)):
        if path:
            write(data, path)
    if args.junit:
        report.write_junit(results, args.junit)
    print(_outcome(args, results, found))
    return EXIT_OK if data["passed"] else EXIT_REGRESSION


def _outcome(args: argparse.Namespace, results: list[Any], found: list[Any]) -> str:
    """The last line: passed, or what failed and where the details are."""
    from llmtap.evals.report import EVERY_CASE

    errors = sum(r.error is not None for r in results)
    summary = f"{len(results)} case(s), {errors} app error(s)"
    failing = [r.case.id for r in results if not r.ok]
    if all(c.ok for c in found):
        allowed = f", {len(failing)} failing case(s) allowed" if failing else ""
        return f"passed: {summary}, {len(found)} check(s) met{allowed}"
    reports = [f"{what} {path}" for what, path in (("report", args.json), ("JUnit", args.junit))
               if path]  # fmt: skip
    where = "; details in the table above" + (", the " + ", the ".join(reports) if reports else "")
    if any(c.source == EVERY_CASE and not c.ok for c in found):
        shown = ", ".join(failing[:10]) + (", ..." if len(failing) > 10 else "")
        return (
            f"FAILED: {len(failing)} of {len(results)} case(s) failed ({shown}); {summary}"
            f"{where}. Set a threshold, or pass --allow-failures, to accept failing cases"
        )
    failed = sum(not c.ok for c in found)
    return f"REGRESSION: {failed} of {len(found)} check(s) failed; {summary}{where}"


# eval calibrate ----------------------------------------------------------------------------------


def _calibration_evaluator(spec: Any, cfg: Any) -> Any:
    from llmtap.evals.eval_config import EvalConfig
    from llmtap.evals.runner import EvaluatorBuilder, evaluator_specs, judge_model

    eval_config = cfg.eval if isinstance(cfg.eval, EvalConfig) else EvalConfig()
    where = "--evaluator"
    if isinstance(spec, str):
        for place, entry in evaluator_specs(cfg, eval_config):
            named = entry.get("name", entry.get("evaluator")) if isinstance(entry, dict) else entry
            if named == spec:
                spec, where = entry, place
                break
    builder = EvaluatorBuilder(cfg, judge_model(cfg, eval_config))
    evaluator = builder.build(spec, where)
    if evaluator is None:
        raise ValueError("\n".join(builder.problems))
    return evaluator


def calibrate_command(args: argparse.Namespace) -> int:
    from llmtap.config_file import ConfigError, load_config
    from llmtap.evals.calibrate import calibrate, load_labelled, render
    from llmtap.evals.golden import GoldenError

    try:
        cfg = load_config(args.config)
        examples = load_labelled(args.labelled, args.label_threshold)
        evaluator = _calibration_evaluator(args.evaluator, cfg)
    except (ConfigError, GoldenError, ValueError) as exc:
        return _fail(f"llmtap eval calibrate: nothing was run:\n{exc}")
    result = calibrate(evaluator, examples, positive=args.positive, concurrency=args.concurrency)
    print(render(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result.to_json(), fh, ensure_ascii=False, indent=2)
            fh.write("\n")
    return EXIT_OK


# golden add --------------------------------------------------------------------------------------


def _expected(text: str | None) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (dict, list)) else text


def golden_add_command(args: argparse.Namespace) -> int:
    from llmtap.evals.golden import append_cases, check_expected, read_json_lines, review_cases

    if not (args.all or args.trace or args.evaluation):
        return _fail(
            "llmtap golden add: choose the entries: --trace ID, --evaluation NAME or --all"
        )
    if args.all and (args.trace or args.evaluation):
        return _fail("llmtap golden add: --all takes every entry; leave out --trace/--evaluation")
    expected = _expected(args.expected)
    problems = [f"--expected{p}" for p in check_expected(expected)] if expected is not None else []
    entries, bad = read_json_lines(args.review)
    existing, bad_golden = read_json_lines(args.to)
    if bad_golden and bad_golden[0].endswith("no such file"):
        bad_golden = []  # a new golden set
    problems += bad + bad_golden
    if problems:
        return _fail("llmtap golden add: nothing was added:\n" + "\n".join(problems))
    harvest = review_cases(
        entries, existing, traces=args.trace, evaluation=args.evaluation, expected=expected
    )
    added = append_cases(args.to, harvest.cases)
    print(
        f"added {added} case(s) to {args.to}; skipped {harvest.skipped} "
        f"({harvest.already} already in the golden set, {harvest.duplicates} repeated in the "
        f"review queue, {harvest.no_input} without an input); "
        f"{harvest.not_selected} entr{'y' if harvest.not_selected == 1 else 'ies'} not selected"
    )
    return EXIT_OK
