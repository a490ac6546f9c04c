"""Recall and precision per PII type on the labelled Faker corpus (tests/pipeline/pii_corpus.py).

On the default seed every type reaches 1.000 recall and 1.000 precision (2580 samples, 14
locales, 780 near misses). The asserted floor is 0.98, and a second, held-out seed must
clear it too, so the detectors are not tuned to one draw of the generator.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pii_corpus import (
    DEFAULT_SEED,
    LOCALES,
    TYPES,
    build_corpus,
    format_scores,
    score,
)

from llmtap.pipeline.detectors import Detectors
from llmtap.pipeline.redact import Redactor

FLOOR = 0.98
HELD_OUT_SEED = 7


@pytest.fixture(scope="module")
def detectors() -> Detectors:
    return Detectors()


def _report(misses: list) -> str:
    lines = []
    for kind, sample, (s, e, t) in misses[:25]:
        lines.append(f"{kind} {t} {sample.text[s:e]!r} in {sample.text[max(0, s - 40) : e + 40]!r}")
    return "\n".join(lines)


def test_corpus_is_deterministic_and_broad() -> None:
    a = build_corpus()
    b = build_corpus.__wrapped__()  # a fresh build, not the cached one
    assert [s.text for s in a] == [s.text for s in b]
    assert [s.labels for s in a] == [s.labels for s in b]
    kinds = {t for s in a for *_, t in s.labels}
    assert kinds == set(TYPES)
    assert {s.locale for s in a} == set(LOCALES)
    for t in TYPES:
        assert sum(1 for s in a for *_, k in s.labels if k == t) >= 240
    assert sum(1 for s in a if s.kind == "near_miss") >= 500
    for s in a:  # labels point at the text
        for start, end, _ in s.labels:
            assert 0 <= start < end <= len(s.text)


@pytest.mark.parametrize("seed", [DEFAULT_SEED, HELD_OUT_SEED])
def test_recall_and_precision_per_type(detectors: Detectors, seed: int) -> None:
    misses: list = []
    scores = score(build_corpus(seed), detectors.find, misses=misses)
    table = format_scores(scores)
    for kind, s in scores.items():
        assert s.recall >= FLOOR and s.precision >= FLOOR, f"{kind}\n{table}\n{_report(misses)}"


def test_default_seed_is_exact(detectors: Detectors) -> None:
    misses: list = []
    scores = score(build_corpus(), detectors.find, misses=misses)
    assert not misses, format_scores(scores) + "\n" + _report(misses)


def test_near_misses_are_left_alone(detectors: Detectors) -> None:
    found = []
    for sample in build_corpus():
        if sample.kind in ("near_miss", "clean"):
            for s, e, t in detectors.find(sample.text):
                found.append((t, sample.text[s:e], sample.text))
    assert not found, found[:10]


def test_redacted_text_leaks_no_labelled_value() -> None:
    redactor = Redactor()
    leaks = []
    for sample in build_corpus():
        out = redactor.redact_text(sample.text)
        for s, e, t in sample.labels:
            if sample.text[s:e] in out:
                leaks.append((t, sample.text[s:e]))
    assert not leaks, leaks[:10]


def test_text_redaction_is_idempotent() -> None:
    redactor = Redactor()
    for sample in build_corpus()[::5]:
        once = redactor.redact_text(sample.text)
        counts: dict[str, int] = {}
        assert redactor.redact_text(once, counts) == once
        assert counts == {}
