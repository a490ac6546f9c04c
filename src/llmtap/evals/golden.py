"""Golden sets: the cases ``llmtap eval run`` puts through the app, as JSON lines.

One case per line (blank lines and lines starting with ``#`` are skipped)::

    {"id": "refund-window", "input": "How long do refunds take?",
     "expected": {"contains": ["5 business days"]},
     "documents": ["Refunds are issued within 5 business days."],
     "metadata": {"tier": "gold"}, "feature": "support",
     "evaluators": ["faithfulness", {"evaluator": "regex", "pattern": "days", "name": "days"}]}

* ``id`` (string or integer, unique in the file) and ``input`` (a non-empty string, or chat
  messages ``[{"role": "user", "content": "..."}]``) are required;
* ``expected``: the reference the output is checked against by the ``expected`` evaluator
  (:class:`ReferenceEvaluator`): a string (the output contains it), a list of strings (it
  contains each), or a mapping of checks ``equals``, ``contains``, ``not_contains``,
  ``regex``, ``json`` (the output parses as this JSON value). It is also given to the other
  evaluators as ``metadata.expected``, so a ``custom_llm`` rubric can name it;
* ``documents`` (strings): context given to the app with the case, and to the evaluators
  when the app's trace retrieved none;
* ``metadata`` (a mapping) and ``feature`` (a string) are stamped on the app's spans
  (``llmtap.context``) and reach the evaluators as ``metadata``;
* ``evaluators``: evaluator entries of :mod:`llmtap.evals.registry` (names or mappings)
  applied to this case on top of the run's own.

Cases made from the review queue (:func:`review_cases`, ``llmtap golden add``) keep where
they came from under ``metadata.review``: trace and span ids, the flagged output, verdicts.

:func:`load_golden` reads a whole file and reports every bad line at once as
``file:line: what`` in a :class:`GoldenError`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.rules import RuleEvaluator

__all__ = [
    "REFERENCE_NAME",
    "GoldenCase",
    "GoldenError",
    "Harvest",
    "ReferenceEvaluator",
    "append_cases",
    "case_input_text",
    "check_expected",
    "load_golden",
    "read_golden",
    "read_json_lines",
    "review_cases",
]

REFERENCE_NAME = "expected"
_CASE_KEYS = ("id", "input", "expected", "documents", "metadata", "feature", "evaluators")
_EXPECTED_KEYS = ("equals", "contains", "not_contains", "regex", "json")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


class GoldenError(ValueError):
    """Lines of a JSON-lines file that cannot be used, each ``file:line: what``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class GoldenCase:
    id: str
    input: str | list[dict[str, Any]]
    expected: Any = None
    documents: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    feature: str | None = None
    evaluators: list[Any] = field(default_factory=list)
    #: where the case was read (``file:line``), for messages
    where: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "input": self.input}
        if self.expected is not None:
            out["expected"] = self.expected
        for key in ("documents", "metadata", "feature", "evaluators"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


def case_input_text(value: Any) -> str:
    """The text of a case input: the string, or the last user message's content."""
    if isinstance(value, str):
        return value
    for message in reversed(value or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
                return "\n".join(t for t in texts if isinstance(t, str) and t)
    return ""


# reading -----------------------------------------------------------------------------------------


def read_json_lines(path: str | os.PathLike) -> tuple[list[tuple[int, Any]], list[str]]:
    """``(line number, parsed object)`` of every non-blank, non-comment line, and the
    problems (``file:line: what``) of the lines that are not JSON objects."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return [], [f"{source}: no such file"]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{source}: cannot be read: {exc}"]
    rows: list[tuple[int, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            problems.append(f"{source}:{number}: not valid JSON: {exc}")
            continue
        if not isinstance(value, dict):
            problems.append(f"{source}:{number}: expected a JSON object, got {_kind(value)}")
            continue
        rows.append((number, value))
    return rows, problems


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def load_golden(path: str | os.PathLike) -> list[GoldenCase]:
    """Every case of a golden file; a :class:`GoldenError` listing every bad line."""
    cases, problems = read_golden(path)
    if problems:
        raise GoldenError(problems)
    return cases


def read_golden(path: str | os.PathLike) -> tuple[list[GoldenCase], list[str]]:
    """The good cases of a golden file, and a ``file:line: what`` line per problem."""
    source = os.fspath(path)
    rows, problems = read_json_lines(source)
    cases: list[GoldenCase] = []
    seen: dict[str, int] = {}
    for number, raw in rows:
        where = f"{source}:{number}"
        found = _case_problems(raw)
        if found:
            problems.extend(f"{where}: {p}" for p in found)
            continue
        case = _case(raw, where)
        if case.id in seen:
            problems.append(f"{where}: id: {case.id!r} is already the id of line {seen[case.id]}")
            continue
        seen[case.id] = number
        cases.append(case)
    if not problems and not cases:
        problems.append(f"{source}: no cases (one JSON object per line)")
    return cases, problems


def _case(raw: Mapping[str, Any], where: str) -> GoldenCase:
    evaluators = raw.get("evaluators") or []
    return GoldenCase(
        id=str(raw["id"]),
        input=raw["input"],
        expected=raw.get("expected"),
        documents=[str(d) for d in raw.get("documents") or []],
        metadata=dict(raw.get("metadata") or {}),
        feature=raw.get("feature"),
        evaluators=list(evaluators if isinstance(evaluators, list) else [evaluators]),
        where=where,
    )


def _case_problems(raw: Mapping[str, Any]) -> list[str]:
    out = [f"{key}: unknown key; a case has {', '.join(_CASE_KEYS)}" for key in raw
           if key not in _CASE_KEYS]  # fmt: skip
    case_id = raw.get("id")
    if case_id is None:
        out.append("id: required")
    elif isinstance(case_id, bool) or not isinstance(case_id, (str, int)) or case_id == "":
        out.append(f"id: expected a non-empty string or an integer, got {case_id!r}")
    out.extend(_input_problems(raw.get("input")))
    if raw.get("expected") is not None:
        out.extend(f"expected{p}" for p in check_expected(raw["expected"]))
    out.extend(context_problems(raw))
    feature = raw.get("feature")
    if feature is not None and (not isinstance(feature, str) or not feature.strip()):
        out.append("feature: expected a non-empty string")
    evaluators = raw.get("evaluators")
    if evaluators is not None:
        items = evaluators if isinstance(evaluators, list) else [evaluators]
        for i, item in enumerate(items):
            if not (isinstance(item, str) and item) and not isinstance(item, dict):
                out.append(f"evaluators[{i}]: expected an evaluator name or an object")
    return out


def context_problems(raw: Mapping[str, Any]) -> list[str]:
    """Problems of a record's optional ``documents`` and ``metadata``."""
    out = []
    documents = raw.get("documents")
    if documents is not None and not (
        isinstance(documents, list) and all(isinstance(d, str) for d in documents)
    ):
        out.append("documents: expected a list of strings")
    if raw.get("metadata") is not None and not isinstance(raw["metadata"], dict):
        out.append("metadata: expected an object")
    return out


def _input_problems(value: Any) -> list[str]:
    if value is None:
        return ["input: required"]
    if isinstance(value, str):
        return [] if value.strip() else ["input: is empty"]
    if not isinstance(value, list) or not value:
        return ["input: expected a string or a non-empty list of messages"]
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            out.append(f'input[{i}]: expected a message {{"role": ..., "content": ...}}')
        elif not isinstance(message.get("content"), (str, list)):
            out.append(f"input[{i}].content: expected a string or a list of parts")
    if not out and not case_input_text(value):
        out.append("input: has no user message with text")
    return out


def check_expected(value: Any) -> list[str]:
    """Problems of an ``expected`` value, each ``<path suffix>: what`` (``""`` = itself)."""
    if isinstance(value, str):
        return [] if value.strip() else [": is empty"]
    if isinstance(value, list):
        if value and all(isinstance(v, str) and v.strip() for v in value):
            return []
        return [": expected a non-empty list of non-empty strings"]
    if not isinstance(value, dict):
        return [": expected a string, a list of strings or an object of checks"]
    out = []
    for key, item in value.items():
        if key not in _EXPECTED_KEYS:
            out.append(f".{key}: unknown check; one of {', '.join(_EXPECTED_KEYS)}")
        elif key in ("contains", "not_contains"):
            items = [item] if isinstance(item, str) else item
            if not (isinstance(items, list) and items and all(isinstance(v, str) for v in items)):
                out.append(f".{key}: expected a string or a list of strings")
        elif key in ("equals", "regex") and not isinstance(item, str):
            out.append(f".{key}: expected a string")
        elif key == "regex":
            try:
                re.compile(item)
            except re.error as exc:
                out.append(f".regex: not a valid regular expression: {exc}")
    if not value:
        out.append(": has no checks")
    return out


# writing -----------------------------------------------------------------------------------------


def append_cases(path: str | os.PathLike, cases: Iterable[Mapping[str, Any]]) -> int:
    """Append cases as JSON lines (a newline first when the file does not end in one)."""
    source = os.fspath(path)
    lines = [json.dumps(dict(c), ensure_ascii=False) + "\n" for c in cases]
    if not lines:
        return 0
    prefix = ""
    if os.path.exists(source) and os.path.getsize(source) > 0:
        with open(source, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                prefix = "\n"
    with open(source, "a", encoding="utf-8") as fh:
        fh.write(prefix + "".join(lines))
    return len(lines)


# the reference check -----------------------------------------------------------------------------


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def _recall(expected: str, output: str) -> float:
    words = _WORD.findall(expected.casefold())
    if not words:
        return 1.0
    have = set(_WORD.findall(output.casefold()))
    return sum(w in have for w in words) / len(words)


class ReferenceEvaluator(RuleEvaluator):
    """``expected``: the output checked against a case's reference (see the module doc).

    Score: the share of checks that pass; for a plain string, the share of its words found
    in the output (so a near miss scores high but does not pass)."""

    def __init__(self, expected: Any, name: str = REFERENCE_NAME) -> None:
        super().__init__(name)
        problems = check_expected(expected)
        if problems:
            raise ValueError("\n".join(f"expected{p}" for p in problems))
        self.expected = expected

    def check(self, item: EvalInput) -> Verdict:
        output = item.output_text or ""
        expected = self.expected
        if isinstance(expected, str):
            ok = _norm(expected) in _norm(output)
            score = 1.0 if ok else _recall(expected, output)
            why = "the output contains the expected text" if ok else (
                f"the expected text is not in the output ({score:.0%} of its words are)"
            )  # fmt: skip
            return self.verdict(ok, score, "pass" if ok else "fail", why)
        checks = {"contains": expected} if isinstance(expected, list) else expected
        results = [r for key, value in checks.items() for r in _run_check(key, value, output)]
        failed = [why for ok, why in results if not ok]
        score = sum(ok for ok, _ in results) / len(results)
        if failed:
            return self.verdict(False, score, "fail", "; ".join(failed))
        return self.verdict(True, score, "pass", f"all {len(results)} reference check(s) pass")


def _run_check(key: str, value: Any, output: str) -> list[tuple[bool, str]]:
    if key in ("contains", "not_contains"):
        items = [value] if isinstance(value, str) else value
        want = key == "contains"
        return [
            ((_norm(v) in _norm(output)) == want,
             f"{'missing' if want else 'unwanted'} {v!r}")
            for v in items
        ]  # fmt: skip
    if key == "equals":
        return [(_norm(value) == _norm(output), f"the output is not {value!r}")]
    if key == "regex":
        return [(re.search(value, output) is not None, f"no match for /{value}/")]
    try:
        parsed = json.loads(output)
    except ValueError:
        return [(False, "the output is not JSON")]
    return [(parsed == value, "the output's JSON differs from the expected value")]


# from the review queue ---------------------------------------------------------------------------


@dataclass
class Harvest:
    """What ``golden add`` did with the review entries."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    not_selected: int = 0
    already: int = 0
    duplicates: int = 0
    no_input: int = 0

    @property
    def skipped(self) -> int:
        return self.already + self.duplicates + self.no_input


def _selected(entry: Mapping[str, Any], traces: Sequence[str], evaluation: str | None) -> bool:
    if traces:
        trace_id = str(entry.get("trace_id") or "").lower()
        if not any(trace_id.startswith(t.lower()) for t in traces):
            return False
    if evaluation:
        verdicts = entry.get("verdicts") or []
        return any(
            isinstance(v, Mapping) and v.get("name") == evaluation and v.get("passed") is False
            for v in verdicts
        )
    return True


def _source_key(trace_id: Any, span_id: Any) -> tuple[str, str] | None:
    if not trace_id or not span_id:
        return None
    return str(trace_id).lower(), str(span_id).lower()


def _known(rows: Sequence[tuple[int, Any]]) -> tuple[set[str], set[tuple[str, str]], set[str]]:
    ids, sources, inputs = set(), set(), set()
    for _, raw in rows:
        ids.add(str(raw.get("id")))
        review = (raw.get("metadata") or {}).get("review") if isinstance(raw, dict) else None
        if isinstance(review, Mapping):
            key = _source_key(review.get("trace_id"), review.get("span_id"))
            if key:
                sources.add(key)
        text = case_input_text(raw.get("input"))
        if text:
            inputs.add(_norm(text))
    return ids, sources, inputs


def review_cases(
    entries: Sequence[tuple[int, Any]],
    existing: Sequence[tuple[int, Any]] = (),
    *,
    traces: Sequence[str] = (),
    evaluation: str | None = None,
    expected: Any = None,
) -> Harvest:
    """Golden cases from review-queue entries (``llmtap.service.review``): the entries of
    the given traces (id prefixes) and/or with a failing verdict of ``evaluation`` (all
    entries when neither is given), less those already in ``existing`` (same id, same
    source span, or the same input) or repeated in ``entries``."""
    known = _known(existing)
    taken: tuple[set[str], set[tuple[str, str]], set[str]] = (set(), set(), set())
    out = Harvest()
    for _, entry in entries:
        if not _selected(entry, traces, evaluation):
            out.not_selected += 1
            continue
        text = entry.get("input")
        if not isinstance(text, str) or not text.strip():
            out.no_input += 1
            continue
        keys = (_review_id(entry), _source_key(entry.get("trace_id"), entry.get("span_id")),
                _norm(text))  # fmt: skip
        if _seen(keys, known):
            out.already += 1
        elif _seen(keys, taken):
            out.duplicates += 1
        else:
            out.cases.append(_review_case(entry, keys[0], expected))
            _add(keys, taken)
    return out


def _seen(keys: tuple[str, Any, str], sets: tuple[set, set, set]) -> bool:
    return keys[0] in sets[0] or (keys[1] is not None and keys[1] in sets[1]) or keys[2] in sets[2]


def _add(keys: tuple[str, Any, str], sets: tuple[set, set, set]) -> None:
    sets[0].add(keys[0])
    if keys[1] is not None:
        sets[1].add(keys[1])
    sets[2].add(keys[2])


def _review_id(entry: Mapping[str, Any]) -> str:
    span_id = str(entry.get("span_id") or "")
    return f"review-{span_id}" if span_id else f"review-{str(entry.get('trace_id'))[:16]}"


def _review_case(entry: Mapping[str, Any], case_id: str, expected: Any) -> dict[str, Any]:
    review = {
        key: entry.get(key)
        for key in ("trace_id", "span_id", "response_id", "time", "service", "model")
        if entry.get(key) is not None
    }
    review["output"] = entry.get("output")
    review["verdicts"] = [
        {k: v.get(k) for k in ("name", "passed", "score", "label", "explanation")}
        for v in entry.get("verdicts") or []
        if isinstance(v, Mapping)
    ]
    case: dict[str, Any] = {"id": case_id, "input": entry["input"]}
    if expected is not None:
        case["expected"] = expected
    documents = [d for d in entry.get("documents") or [] if isinstance(d, str) and d]
    if documents:
        case["documents"] = documents
    if isinstance(entry.get("feature"), str) and entry["feature"]:
        case["feature"] = entry["feature"]
    case["metadata"] = {"source": "review", "review": review}
    return case
