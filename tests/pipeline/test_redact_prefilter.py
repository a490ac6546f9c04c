"""The compiled pre-filter of the redaction detectors (llmtap.pipeline.prefilter).

It may only ever say "nothing here" for a text in which the detectors find nothing: each
trigger pattern is checked against the detectors themselves on generated texts (hypothesis)
and on the labelled corpus, and the redaction results are compared with and without it
(the same Redactor built with engine python and engine hyperscan) on JSON documents and
plain texts. These tests need hyperscan (the ``redaction-fast`` extra, in ``dev``).
"""

from __future__ import annotations

import json
import random
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pii_corpus import build_corpus

from llmtap.pipeline import detectors as detectors_module
from llmtap.pipeline import prefilter as prefilter_module
from llmtap.pipeline.detectors import ALL_DETECTORS, Detectors, _latin1
from llmtap.pipeline.prefilter import TOKEN_CHARS, make_prefilter, trigger_patterns
from llmtap.pipeline.redact import RedactionConfig, RedactionConfigError, Redactor

pytest.importorskip("hyperscan", reason="the pre-filter's engine (llmtap[redaction-fast])")

# Every detector alone, the identifier-safe set, and all of them.
DETECTOR_SETS = [[d] for d in ALL_DETECTORS] + [
    ["email", "credit_card", "ssn", "iban", "secrets"],
    list(ALL_DETECTORS),
]

LONG_S_PASSWORD = "pa\u017f\u017fword"

# Pieces that make the detectors' triggers and their near misses likely in generated text.
FRAGMENTS = [
    "@", "a@b.co", "x.y@mail.example.com", ":", "::", "=", ":=", '"', "'", "\\", " ", "  ",
    "\n", "\t", ".", "-", "(", ")", "/", "+", "#", "0", "1", "7", "9", "12", "555", "0412",
    "2001:db8", "fe80::1", "192.168.", "10.0.0.1", "4111 1111 1111 1111", "4111111111111111",
    "078-05-1120", "123-45-6789", "DE89", "de89", "GB82WEST12345698765432",
    "3704 0044 0532 0130 00",
    "+49 30 1234567", "(555) 123-4567", "call", "phone", "tel", "電話", "ssn", "card",
    "sk-", "sk-proj-", "AKIA", "ghp_", "xoxb-", "eyJ", "AIza", "Bearer ", "bearer",
    "-----BEGIN", "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
    "password", "Password", "PASSWORD", "passwd", "pass", "secret", "api_key", "apiKey",
    "API-KEY", "x-api-key", "token", "accessToken", "credentials", "sig", "signature",
    "Authorization", "authorization", "design", "keyboard", "passed", LONG_S_PASSWORD,
    "\u0130", "\u0131", "\u212a", "\u017fecret", "\uff21\uff22", "١٢٣", "é", "日本",
    "abcdefghijklmnop", "ABCDEFGHIJKLMNOP",
    "Zx9Qw8Er7Ty6Ui5Op4As", "postgres://u:pa55w0rd@db", "://", "hooks.slack.com/services/T1/B2/c3",
]  # fmt: skip

texts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), min_size=1, max_size=24
).map("".join)


@pytest.fixture(scope="module")
def filters() -> dict[tuple[str, ...], Any]:
    return {tuple(s): make_prefilter("hyperscan", s) for s in DETECTOR_SETS}


def _silent(d: Detectors, f: Any, text: str) -> bool:
    """The pre-filter says nothing is here while the detectors find something."""
    return bool(d.find(text)) and not f.may_match(text, _latin1(text))


_SETS = [(Detectors(s), make_prefilter("hyperscan", s), Detectors(s, engine="hyperscan"))
         for s in DETECTOR_SETS]  # fmt: skip


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_the_prefilter_passes_every_text_the_detectors_find_something_in(text: str) -> None:
    for d, f, fast in _SETS:
        assert f is not None
        assert not _silent(d, f, text), (d, text, d.find(text))
        # may_find with the pre-filter keeps its promise too (find finds nothing on False)
        if d.find(text):
            assert fast.may_find(text)


def test_the_prefilter_passes_every_corpus_text_with_a_finding(filters: dict) -> None:
    corpus = build_corpus()
    for enabled in DETECTOR_SETS:
        d = Detectors(enabled)
        f = filters[tuple(enabled)]
        missed = [s.text for s in corpus if _silent(d, f, s.text)]
        assert not missed, (enabled, missed[:5])


def test_the_prefilter_says_nothing_is_here_in_plain_prose(filters: dict) -> None:
    """It is worth having: most clean paragraphs of the corpus need no detector."""
    clean = [s.text for s in build_corpus() if s.kind == "clean"]
    f = filters[tuple(ALL_DETECTORS)]
    passed = sum(f.may_match(t, _latin1(t)) for t in clean)
    assert passed < len(clean) / 4, passed


def _docs(seed: int, n: int) -> list[str]:
    corpus = build_corpus()
    rng = random.Random(seed)
    keys = ["content", "password", LONG_S_PASSWORD, "my api key", "Authorization", "note", "apiKey"]
    docs = []
    for _ in range(n):
        texts = [rng.choice(corpus).text for _ in range(rng.randrange(1, 4))]
        parts = [{"type": "text", "content": t} for t in texts]
        doc: list[Any] = [{"role": "user", "parts": parts}]
        if rng.random() < 0.3:
            doc.append({rng.choice(keys): "Pa55word!x", "args": json.dumps({"q": texts[0]})})
        docs.append(json.dumps(doc, ensure_ascii=rng.random() < 0.2))
    return docs


@pytest.mark.parametrize("enabled", [list(ALL_DETECTORS), ["secrets"], ["phone", "ip"]])
def test_redaction_is_the_same_with_and_without_the_prefilter(enabled: list[str]) -> None:
    python = Redactor(RedactionConfig(engine="python", detectors=enabled))
    fast = Redactor(RedactionConfig(engine="hyperscan", detectors=enabled))
    assert python.detectors.prefilter is None and fast.detectors.prefilter is not None
    docs = _docs(5, 500)
    counts_py: dict[str, int] = {}
    counts_fast: dict[str, int] = {}
    assert [python.redact_json(d, counts_py) for d in docs] == [
        fast.redact_json(d, counts_fast) for d in docs
    ]
    assert counts_py == counts_fast
    texts = [s.text for s in build_corpus()]
    assert [python.redact_text(t) for t in texts] == [fast.redact_text(t) for t in texts]


def test_json_keys_that_name_a_secret_in_other_scripts_are_still_seen() -> None:
    """Python's case-insensitive matching takes the long s (U+017F) for "s": the key
    below names a password for the JSON walk, though its Latin-1 form does not spell one."""
    fast = Redactor(RedactionConfig(engine="hyperscan"))
    out, _ = fast.redact_json(json.dumps({LONG_S_PASSWORD: "Pa55word!x"}), {})
    assert json.loads(out) == {LONG_S_PASSWORD: "<SECRET>"}


def test_a_private_key_block_with_a_plain_body_is_found_in_json() -> None:
    """A PEM block whose body has no capital or digit (cut short, or a test key) is found
    in JSON content with either engine: the raw-text pre-check counts "-----BEGIN"."""
    text = "-----BEGIN PRIVATE KEY----- abcdefghijklmnopqrstu -----END PRIVATE KEY-----"
    raw = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])
    for engine in ("python", "hyperscan"):
        out, _ = Redactor(RedactionConfig(engine=engine)).redact_json(raw, {})
        assert "<SECRET>" in out and "abcdefghijklmnopqrstu" not in out, engine


def test_a_quoted_name_is_read_as_find_reads_it_by_the_python_pre_check() -> None:
    """No opening quote before the name: find() reads the identifier before the quote,
    and so does may_find now (it used to read the whole text before it)."""
    text = '\x1bpassword"://2001:db8'
    for engine in ("python", "hyperscan"):
        d = Detectors(engine=engine)
        assert d.find(text) and d.may_find(text), engine


def test_the_patterns_follow_the_enabled_detectors() -> None:
    assert TOKEN_CHARS == detectors_module._TOKEN_CHARS
    assert trigger_patterns(["email"]) == [b"@"]
    assert len(trigger_patterns(["phone"])) == 1  # runs of 7+ digits
    assert make_prefilter("hyperscan", []) is None
    assert make_prefilter("python", ALL_DETECTORS) is None
    assert Detectors(custom=[("X", __import__("re").compile("x"))], engine="hyperscan").may_find(
        "nothing"
    )  # custom patterns are not pre-filtered


def test_one_prefilter_scans_from_many_threads() -> None:
    f = make_prefilter("hyperscan", ALL_DETECTORS)
    assert f is not None
    texts = ["write to a@b.co", "nothing to see here, just prose", "key 4111 1111 1111 1111"]
    expected = [f.may_match(t, _latin1(t)) for t in texts]
    assert expected == [True, False, True]
    results: list[list[bool]] = []

    def run() -> None:
        results.append([f.may_match(t, _latin1(t)) for t in texts * 200][:3])

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 8


def test_engine_is_checked_with_the_key_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RedactionConfigError, match=r"redaction\.engine: expected one of"):
        RedactionConfig(engine="re2")
    # hyperscan missing: only our own availability check is replaced here
    monkeypatch.setattr(prefilter_module, "engine_available", lambda engine: engine != "hyperscan")
    monkeypatch.setattr(
        sys.modules["llmtap.pipeline.redact"], "engine_available", prefilter_module.engine_available
    )
    with pytest.raises(
        RedactionConfigError, match=r"redaction\.engine: hyperscan is not installed"
    ):
        RedactionConfig(engine="hyperscan")
    monkeypatch.setattr(prefilter_module, "_installed", lambda: False)
    r = Redactor(RedactionConfig(engine="auto"))  # auto falls back to the detectors alone
    assert r.detectors.prefilter is None
    assert r.redact_text("mail a@b.co") == "mail <EMAIL>"


def test_a_prefilter_that_cannot_be_built_passes_every_text(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """hyperscan installed but failing to load or compile here: a warning, and the
    detectors judge every text (our own builder is replaced to fail, as a broken install
    would)."""

    def broken(patterns: list[bytes]) -> Any:
        raise OSError("libhs.so: cannot open shared object file")

    monkeypatch.setattr(prefilter_module, "_hyperscan_scan", broken)
    monkeypatch.setattr(prefilter_module, "_databases", {})
    d = Detectors(["email"], engine="auto")
    with caplog.at_level("WARNING", logger="llmtap.pipeline.prefilter"):
        assert d.may_find("mail a@b.co") and not d.may_find("plain prose, nothing here")
    assert "could not be built" in caplog.text
