"""Recall and precision per PII type on the labelled Faker corpus (tests/pipeline/pii_corpus.py).

On the default seed every type reaches 1.000 recall and 1.000 precision (3060 samples, 47
locales, 1260 near misses, 120 clean paragraphs). The asserted floors are 0.99 recall per
type and not one finding in a near miss or a clean text, on the default seed and on a
held-out one, so the detectors are not tuned to one draw of the generator. The shapes that
once slipped through (AWS key ids with 0/1/8/9, Bearer tokens without "Authorization:",
12-digit Maestro and dotted card numbers, lower case and dashed IBANs, bare national phone
numbers after a phone word) are counted and scored on their own.

``pytest -s`` prints the per-type tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pii_corpus import (
    ALL_LOCALES,
    AWS_KEY_PREFIXES,
    DEFAULT_SEED,
    MAESTRO_IINS,
    MORE_LOCALES,
    TYPES,
    Sample,
    build_corpus,
    format_scores,
    score,
)

from llmtap.pipeline.detectors import Detectors
from llmtap.pipeline.redact import Redactor

RECALL_FLOOR = 0.99
HELD_OUT_SEED = 7
SEEDS = [DEFAULT_SEED, HELD_OUT_SEED]


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
    assert {s.locale for s in a} == set(ALL_LOCALES)
    for t in TYPES:
        assert sum(1 for s in a for *_, k in s.labels if k == t) >= 240
    assert sum(1 for s in a if s.kind == "near_miss") >= 500
    for s in a:  # labels point at the text
        for start, end, _ in s.labels:
            assert 0 <= start < end <= len(s.text)


@pytest.mark.parametrize("seed", SEEDS)
def test_recall_and_precision_per_type(detectors: Detectors, seed: int) -> None:
    misses: list = []
    scores = score(build_corpus(seed), detectors.find, misses=misses)
    table = format_scores(scores)
    print(f"\nseed {seed}\n{table}")
    for kind, s in scores.items():
        assert s.recall >= RECALL_FLOOR, f"{kind}\n{table}\n{_report(misses)}"
        assert s.fp == 0, f"{kind}\n{table}\n{_report(misses)}"


# The shapes of the detector gaps, told apart by their labelled value.
def _gap_shape(kind: str, value: str, sample: Sample) -> str | None:
    digits = "".join(c for c in value if c.isdigit())
    if kind == "SECRET" and len(value) == 20 and value.startswith(AWS_KEY_PREFIXES):
        return "aws_key_id"
    if kind == "SECRET":
        head = sample.text[: sample.text.find(value)]
        if head.rstrip(" \t'\"").lower().endswith("bearer") and "authorization:" not in (
            head[-30:].lower()
        ):
            return "bearer_no_authorization"
    if kind == "CREDIT_CARD" and len(digits) == 12:
        return "maestro_12"
    if kind == "CREDIT_CARD" and "." in value:
        return "card_dotted"
    if kind == "IBAN" and value.lower() == value:
        return "iban_lower"
    if kind == "IBAN" and "-" in value:
        return "iban_dashed"
    if kind == "PHONE" and value.isdigit():
        return "phone_bare_after_word"
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_gap_shapes_are_in_the_corpus_and_found(detectors: Detectors, seed: int) -> None:
    shapes: dict[str, list[int]] = {}  # shape -> [found, total]
    locales: set[str] = set()
    for sample in build_corpus(seed):
        found = detectors.find(sample.text) if sample.labels else []
        for s, e, kind in sample.labels:
            shape = _gap_shape(kind, sample.text[s:e], sample)
            if shape is None:
                continue
            if shape == "phone_bare_after_word":
                locales.add(sample.locale)
            hit = any(t == kind and fs <= s and e <= fe for fs, fe, t in found)
            counts = shapes.setdefault(shape, [0, 0])
            counts[0] += hit
            counts[1] += 1
    table = "\n".join(f"{k:24} {f:4d}/{n:<4d}" for k, (f, n) in sorted(shapes.items()))
    print(f"\nseed {seed}: gap shapes found/labelled\n{table}")
    assert set(shapes) == {
        "aws_key_id", "bearer_no_authorization", "maestro_12", "card_dotted", "iban_lower",
        "iban_dashed", "phone_bare_after_word",
    }, table  # fmt: skip
    for hit, total in shapes.values():
        assert total >= 10, table
        assert hit == total, table
    assert len(locales) >= 20 and len(locales & set(MORE_LOCALES)) >= 10, sorted(locales)


def test_maestro_labels_use_maestro_iins() -> None:
    for sample in build_corpus():
        for s, e, kind in sample.labels:
            digits = "".join(c for c in sample.text[s:e] if c.isdigit())
            if kind == "CREDIT_CARD" and len(digits) == 12:
                assert digits[:4] in MAESTRO_IINS


def test_default_seed_is_exact(detectors: Detectors) -> None:
    misses: list = []
    scores = score(build_corpus(), detectors.find, misses=misses)
    assert not misses, format_scores(scores) + "\n" + _report(misses)


@pytest.mark.parametrize("seed", SEEDS)
def test_near_misses_are_left_alone(detectors: Detectors, seed: int) -> None:
    found = []
    for sample in build_corpus(seed):
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
