"""``llmtap config check FILE``: validate an llmtap.yaml the way the app and the service will.

    llmtap config check llmtap.yaml
    llmtap config reference > docs/config-reference.md   # every key, from the options types

Checks everything start-up checks: YAML syntax, unknown keys (with a suggestion), types and
allowed values, ``${env:VAR}`` references against the current environment, every section
(``export``, ``sampling``, ``redaction``, ``pricing``, ``service``, ``eval``, ``judge``) and
the evaluators of the judge rules and the eval section. Exit 0 with one ``OK`` line; exit 2
with every problem, one per line, as ``file:line: key: message`` (stdout), then a count on
stderr. Literal secrets in the file are warnings: printed, exit 0. Nothing is started and
nothing touches the network.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

EXIT_OK, EXIT_PROBLEMS = 0, 2


def add_parser(sub: Any) -> None:
    config = sub.add_parser("config", help="check an llmtap.yaml")
    actions = config.add_subparsers(dest="config_command", required=True)
    check = actions.add_parser(
        "check",
        help="validate a config file: exit 0 when it is usable, 2 with every problem",
        description=__doc__.split("\n\n")[2].replace("\n", " "),
    )
    check.add_argument("file", metavar="FILE", help="the llmtap.yaml to check")
    check.set_defaults(handler=check_command)
    reference = actions.add_parser(
        "reference",
        help="print the Markdown reference of every llmtap.yaml key (docs/config-reference.md)",
    )
    reference.set_defaults(handler=reference_command)


def reference_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the reference generated from the options types."""
    from llmtap.config_reference import render

    (out or sys.stdout).write(render())
    return EXIT_OK


@contextlib.contextmanager
def _quiet_llmtap_logs() -> Iterator[None]:
    """Building evaluators may log; the command prints its own findings instead."""
    logger = logging.getLogger("llmtap")
    handler = logging.NullHandler()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def check(path: str, env: Mapping[str, str] | None = None) -> tuple[list[str], list[str], Any]:
    """(problems, warnings, config) of the file at ``path``; each problem a line
    ``file:line: key: message``, in file order. ``config`` is None when there are problems."""
    from llmtap.config_file import ConfigError, read_config

    loaded = read_config(path, env)
    problems = loaded.messages()
    raw_judge = loaded.data.get("judge") if isinstance(loaded.data, Mapping) else None
    model, rules = None, []
    if raw_judge is not None:
        try:
            judge = _judge_section(raw_judge, loaded)
            model, rules = judge.model, list(judge.rules)
        except ConfigError as exc:
            problems += [p.format(loaded.source) for p in exc.problems]
            model, rules = _usable_parts(raw_judge)  # to check their evaluators all the same
    try:
        problems += _evaluator_problems(loaded, model, rules)
    except ImportError as exc:  # pragma: no cover - the evaluators are part of llmtap
        problems.append(f"{loaded.source}: evaluators not checked: {exc}")
    problems = sorted(dict.fromkeys(problems), key=lambda line: _line_of(line, loaded.source))
    warnings = list(loaded.config.warnings) if loaded.config is not None else []
    return problems, warnings, (loaded.config if not problems else None)


def _line_of(text: str, source: str) -> tuple[int, int]:
    rest = text[len(source) + 1 :] if text.startswith(source + ":") else ""
    number = rest.split(":", 1)[0]
    return (0, int(number)) if number.isdigit() else (1, 0)


def _judge_section(raw: Any, loaded: Any) -> Any:
    from llmtap.config_file import build
    from llmtap.evals.judge_config import JudgeConfig

    return build(JudgeConfig, raw, "judge", source=loaded.source, lines=loaded.lines)


def _usable_parts(raw: Any) -> tuple[Any, list[tuple[int, Any]]]:
    """The judge model and the rules that are valid on their own, from a judge section that
    is not (their problems are reported already)."""
    from llmtap.config_file import ConfigError, build
    from llmtap.evals.judge_client import JudgeSettings
    from llmtap.evals.judge_config import JudgeRule

    if not isinstance(raw, Mapping):
        return None, []
    model = None
    if raw.get("model") is not None:
        with contextlib.suppress(ConfigError):
            model = build(JudgeSettings, raw["model"], "judge.model")
    rules: list[tuple[int, Any]] = []
    raw_rules = raw.get("rules")
    for i, rule in enumerate(raw_rules if isinstance(raw_rules, list) else ()):
        with contextlib.suppress(ValueError):
            rules.append((i, JudgeRule.from_mapping(rule)))
    return model, rules


def _evaluator_problems(loaded: Any, model: Any, rules: list[Any]) -> list[str]:
    """Build every evaluator the service (judge rules) and ``llmtap eval`` (eval section)
    would build, without calling any model."""
    from llmtap.evals.eval_config import EvalConfig
    from llmtap.evals.runner import EvaluatorBuilder

    cfg = loaded.config
    if cfg is None:  # the file's other problems: only its source and lines are needed
        cfg = _Located(loaded.source, loaded.lines)
    problems: list[str] = []
    numbered = [r if isinstance(r, tuple) else (i, r) for i, r in enumerate(rules)]
    if numbered:
        builder = EvaluatorBuilder(cfg, model)
        for i, rule in numbered:
            builder.build(rule.spec(), f"judge.rules[{i}]")
        problems += builder.problems
    eval_config = getattr(cfg, "eval", None)
    if isinstance(eval_config, EvalConfig) and eval_config.evaluators is not None:
        builder = EvaluatorBuilder(cfg, eval_config.model if eval_config.model else model)
        for i, entry in enumerate(eval_config.evaluators):
            builder.build(entry, f"eval.evaluators[{i}]")
        problems += builder.problems
    return problems


class _Located:
    """Enough of a config for locating evaluator problems in the file."""

    def __init__(self, source: str, lines: dict[str, int]) -> None:
        self.source = source
        self._lines = lines
        self.eval = None


def _summary(cfg: Any) -> str:
    parts = [f"{len(cfg.export)} export destination{'s' if len(cfg.export) != 1 else ''}"]
    judge = cfg.judge or {}
    rules = judge.get("rules") if isinstance(judge, Mapping) else None
    if rules:
        parts.append(f"{len(rules)} judge rule{'s' if len(rules) != 1 else ''}")
    return ", ".join(parts)


def check_command(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    with _quiet_llmtap_logs():
        problems, warnings, cfg = check(args.file)
    for line in problems:
        print(line, file=out)
    for line in warnings:
        print(f"warning: {line}", file=out)
    if problems:
        count = len(problems)
        print(f"llmtap config check: {count} problem{'s' if count != 1 else ''} in {args.file}",
              file=err)  # fmt: skip
        return EXIT_PROBLEMS
    note = f"; {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""
    print(f"{args.file}: OK ({_summary(cfg)}{note})", file=out)
    return EXIT_OK
