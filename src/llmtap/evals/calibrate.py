"""``llmtap eval calibrate``: how well an evaluator agrees with human labels.

One labelled example per line::

    {"id": "ex-1", "input": "...", "output": "...", "documents": ["..."],
     "label": "fail"}                      # pass/fail, true/false, good/bad, 1/0
    {"input": "...", "output": "...", "score": 2, "threshold": 3}   # a human score

A human ``score`` passes at or above its line's ``threshold`` (else the run's
``label_threshold``, default 0.5). The evaluator judges each line (``input``, ``output``,
``documents``, ``metadata`` as the evaluator input; there is no span) and its ``passed`` is
compared with the human label. ``positive`` names the class that precision and recall are
about: ``fail`` by default (an evaluator is there to catch bad answers). Lines where the
evaluator gave no pass/fail verdict (errors) are counted apart and left out of the metrics.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llmtap.evals.base import EvalInput, Evaluator, Verdict
from llmtap.evals.golden import GoldenError, case_input_text, context_problems, read_json_lines

__all__ = ["Calibration", "Example", "calibrate", "load_labelled", "render"]

_PASS = {"pass", "passed", "true", "yes", "good", "positive", "1", "ok"}
_FAIL = {"fail", "failed", "false", "no", "bad", "negative", "0"}
_KEYS = ("id", "input", "output", "documents", "metadata", "label", "score", "threshold")


@dataclass
class Example:
    line: int
    id: str
    item: EvalInput
    human: bool  # True: pass


@dataclass
class Disagreement:
    line: int
    id: str
    human: str
    evaluator: str
    score: float | None
    explanation: str | None


@dataclass
class Calibration:
    evaluator: str
    positive: str
    n: int = 0
    errors: int = 0
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    kappa: float | None = None
    #: human label → evaluator label → count
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    error_lines: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _label(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    return True if text in _PASS else False if text in _FAIL else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _human(raw: Mapping[str, Any], threshold: float) -> tuple[bool | None, str | None]:
    if "label" in raw:
        found = _label(raw["label"])
        if found is None:
            return None, f"label: expected pass/fail or true/false, got {raw['label']!r}"
        return found, None
    if "score" in raw:
        if not _number(raw["score"]):
            return None, f"score: expected a number, got {raw['score']!r}"
        limit = raw.get("threshold", threshold)
        if not _number(limit):
            return None, f"threshold: expected a number, got {limit!r}"
        return raw["score"] >= limit, None
    return None, "label: required (pass/fail, true/false), or a score"


def _line_problems(raw: Mapping[str, Any]) -> list[str]:
    out = [f"{k}: unknown key; a line has {', '.join(_KEYS)}" for k in raw if k not in _KEYS]
    if not isinstance(raw.get("output"), str):
        out.append("output: required, a string")
    value = raw.get("input")
    if value is not None and not case_input_text(value):
        out.append("input: expected a string or messages with a user message")
    out.extend(context_problems(raw))
    return out


def load_labelled(path: str | os.PathLike, threshold: float = 0.5) -> list[Example]:
    """Every labelled example; :class:`GoldenError` listing every bad line."""
    source = os.fspath(path)
    rows, problems = read_json_lines(source)
    examples = []
    for number, raw in rows:
        found = _line_problems(raw)
        human, why = _human(raw, threshold)
        if why:
            found.append(why)
        if found:
            problems.extend(f"{source}:{number}: {p}" for p in found)
            continue
        item = EvalInput(
            input_text=case_input_text(raw.get("input") or ""),
            output_text=raw["output"],
            documents=list(raw.get("documents") or []),
            metadata=dict(raw.get("metadata") or {}),
        )
        examples.append(Example(number, str(raw.get("id", f"line {number}")), item, bool(human)))
    if not problems and not examples:
        problems.append(f"{source}: no labelled examples (one JSON object per line)")
    if problems:
        raise GoldenError(problems)
    return examples


async def _judge_all(
    evaluator: Evaluator, examples: Sequence[Example], concurrency: int, timeout: float
) -> list[Verdict]:
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(example: Example) -> Verdict:
        async with gate:
            try:
                return await asyncio.wait_for(evaluator.evaluate(example.item), timeout)
            except asyncio.TimeoutError:
                return Verdict(evaluator.name, error_type="timeout")
            except Exception as exc:
                return Verdict(evaluator.name, error_type=type(exc).__name__,
                               explanation=str(exc))  # fmt: skip

    try:
        return list(await asyncio.gather(*(one(e) for e in examples)))
    finally:
        client = getattr(evaluator, "client", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def calibrate(
    evaluator: Evaluator,
    examples: Sequence[Example],
    *,
    positive: str = "fail",
    concurrency: int = 4,
    timeout_s: float = 300.0,
) -> Calibration:
    """Judge every example and compare with the human labels."""
    verdicts = asyncio.run(_judge_all(evaluator, examples, concurrency, timeout_s))
    return compare(evaluator.name, examples, verdicts, positive=positive)


def compare(
    name: str, examples: Sequence[Example], verdicts: Sequence[Verdict], *, positive: str = "fail"
) -> Calibration:
    """The agreement metrics of ``verdicts`` with the examples' human labels."""
    if positive not in ("pass", "fail"):
        raise ValueError(f"positive: expected pass or fail, got {positive!r}")
    result = Calibration(name, positive)
    result.confusion = {h: {e: 0 for e in ("pass", "fail")} for h in ("pass", "fail")}
    pairs = []
    for example, verdict in zip(examples, verdicts, strict=True):
        if verdict.error_type or verdict.passed is None:
            result.errors += 1
            result.error_lines.append(
                {"line": example.line, "id": example.id,
                 "error": verdict.error_type or "no pass/fail verdict",
                 "explanation": verdict.explanation}
            )  # fmt: skip
            continue
        human = "pass" if example.human else "fail"
        judged = "pass" if verdict.passed else "fail"
        result.confusion[human][judged] += 1
        pairs.append((human, judged))
        if human != judged:
            result.disagreements.append(
                Disagreement(example.line, example.id, human, judged, verdict.score,
                             verdict.explanation)
            )  # fmt: skip
    _metrics(result, pairs)
    return result


def _metrics(result: Calibration, pairs: Sequence[tuple[str, str]]) -> None:
    n = result.n = len(pairs)
    if not n:
        return
    pos = result.positive
    tp = sum(h == pos and e == pos for h, e in pairs)
    fp = sum(h != pos and e == pos for h, e in pairs)
    fn = sum(h == pos and e != pos for h, e in pairs)
    agree = sum(h == e for h, e in pairs)
    result.accuracy = agree / n
    result.precision = _ratio(tp, tp + fp)
    result.recall = _ratio(tp, tp + fn)
    if result.precision is not None and result.recall is not None:
        total = result.precision + result.recall
        result.f1 = 2 * result.precision * result.recall / total if total else 0.0
    human_pass = sum(h == "pass" for h, _ in pairs) / n
    judged_pass = sum(e == "pass" for _, e in pairs) / n
    chance = human_pass * judged_pass + (1 - human_pass) * (1 - judged_pass)
    result.kappa = (result.accuracy - chance) / (1 - chance) if chance < 1 else None


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def render(result: Calibration, *, max_disagreements: int = 20) -> str:
    lines = [
        f"evaluator {result.evaluator}: n={result.n} (errors: {result.errors}); "
        f"positive class: {result.positive}",
        f"accuracy {_show(result.accuracy)}  precision {_show(result.precision)}  "
        f"recall {_show(result.recall)}  F1 {_show(result.f1)}  "
        f"Cohen's kappa {_show(result.kappa)}",
        "",
        f"{'':12}{'evaluator pass':>16}{'evaluator fail':>16}",
    ]
    for human in ("pass", "fail"):
        row = result.confusion.get(human, {})
        lines.append(f"{'human ' + human:12}{row.get('pass', 0):>16}{row.get('fail', 0):>16}")
    if result.disagreements:
        lines += ["", f"disagreements ({len(result.disagreements)}):"]
        for d in result.disagreements[:max_disagreements]:
            score = "" if d.score is None else f", score {d.score:g}"
            why = f": {d.explanation}" if d.explanation else ""
            lines.append(
                f"  line {d.line} ({d.id}): human {d.human}, evaluator {d.evaluator}{score}{why}"
            )
        if len(result.disagreements) > max_disagreements:
            lines.append(f"  ... {len(result.disagreements) - max_disagreements} more")
    for e in result.error_lines[:max_disagreements]:
        lines.append(f"  line {e['line']} ({e['id']}): no verdict: {e['error']}")
    return "\n".join(lines)
