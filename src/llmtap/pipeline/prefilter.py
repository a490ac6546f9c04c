"""A compiled pre-filter for the redaction detectors: one pass of a multi-pattern engine
over a text says whether any detector can find anything in it.

Each built-in detector (:mod:`llmtap.pipeline.detectors`) starts from a local trigger: an
"@", a run of 7+ digits, a dotted number, two capitals and two digits, a colon pair, a long
token with a capital or a digit, a ``-----BEGIN`` line, a credential word ending a name.
:func:`trigger_patterns` writes those triggers as regexes, each matching wherever the
detector's own trigger does (wider where that is simpler, never narrower), on the text's
Latin-1 form (:func:`llmtap.pipeline.detectors._latin1`: one byte per character, every
trigger is ASCII). When none matches, no detector can find anything, so the text is clean
without running them; when one matches, the detectors run as they always do. The findings
are the same with and without the pre-filter: it only decides what need not be scanned.

The engine is `hyperscan <https://pypi.org/project/hyperscan/>`_ (the ``redaction-fast``
extra: wheels for Linux, macOS and Windows), which runs all the patterns in one pass at
memory speed; without it there is no pre-filter and the detectors gate themselves as
before.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

__all__ = ["ENGINES", "Prefilter", "engine_available", "make_prefilter", "trigger_patterns"]

logger = logging.getLogger(__name__)

#: ``redaction.engine`` values: auto (hyperscan when installed), python (never)
ENGINES: Final = ("auto", "python", "hyperscan")

# Characters of a long token (detectors._TOKEN_CHARS).
TOKEN_CHARS: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.+/="
)
_TOK: Final = rb"[A-Za-z0-9_\-.+/=]"
# The separators allowed inside a run of digits (detectors._NUM_RUN).
_SEP: Final = rb"[ .()/+\-]"

# A run of 7+ digits with at most 3 separators between two of them: where phones, cards,
# SSNs, IPv4 addresses in long runs and lower case IBANs are looked for.
_RUN7: Final = rb"[0-9](?:" + _SEP + rb"{0,3}[0-9]){6}"
# A dot between two digits, among a run's separators: every run holding a dot (the IPv4
# candidates among short runs) has one.
_DOTTED: Final = rb"[0-9]" + _SEP + rb"{0,2}\." + _SEP + rb"{0,2}[0-9]"
# 16 token characters: every long token (generated key material, bearer tokens, JWTs,
# PEM bodies). The detector takes only those with a capital or a digit; saying so here
# (16 alternatives) makes the pass several times slower, for a few more clean texts.
_LONG_TOKEN: Final = _TOK + rb"{16}"
# A credential word ending a name (llmtap.secret_names.SECRET_KEY_NAME ends each of its
# words with: the end of the name, one of _-. or a space, or a change of case; all are
# bytes other than a lower case letter or a digit), or "authorization" ending a name.
_SECRET_WORD: Final = (
    rb"(?i:passw(?:or)?d|passphrase|pass|secret|signature|sig|key|token|credentials?|"
    rb"authorization)(?:[^a-z0-9]|$)"
)
# Characters that Python's case-insensitive matching takes for ASCII letters (U+0130,
# U+0131, U+017F long s, U+212A Kelvin sign): SECRET_KEY_NAME sees a credential word in
# "pa\u017f\u017fword", which the Latin-1 form loses. A text holding one is scanned with
# each written as that letter in lower case (which, like the character itself and unlike
# the Latin-1 replacement "?", ends no credential word).
_FOLDS_TO_ASCII: Final = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}
_FOLD: Final = str.maketrans(_FOLDS_TO_ASCII)


def trigger_patterns(enabled: Iterable[str]) -> list[bytes]:
    """The trigger regexes of the enabled built-in detectors (names as in the config)."""
    on = set(enabled)
    out: list[bytes] = []
    if on & {"email", "secrets"}:
        out.append(rb"@")  # emails, and passwords in URLs (user:pass@host)
    if "ip" in on:
        out.append(rb":[0-9A-Fa-f]{0,4}:")  # IPv6
        out.append(_DOTTED)  # IPv4
    if on & {"phone", "credit_card", "ssn", "ip", "iban"}:
        out.append(_RUN7)
    if "iban" in on:
        out.append(rb"[A-Z]{2}[0-9]{2}")
        out.append(rb"[a-z]{2}[0-9]{2}")
    if "secrets" in on:
        out.append(_LONG_TOKEN)
        out.append(rb"-----BEGIN")
        out.append(_SECRET_WORD)
    return out


def engine_available(engine: str) -> bool:
    """Whether ``engine`` can be used here (``python`` and ``auto`` always can)."""
    if engine in ("python", "auto"):
        return True
    try:
        import hyperscan  # noqa: F401
    except Exception:  # not installed, or its library does not load here
        return False
    return True


class Prefilter:
    """``may_match(text, raw)``: False when no trigger of the enabled detectors is in
    ``text``. The patterns are compiled on first use (tens of milliseconds, once per
    process and set of patterns), on the thread that redacts, not at configuration."""

    def __init__(self, patterns: list[bytes]) -> None:
        self.patterns = patterns
        self._scan: Callable[[bytes], bool] | None = None

    def may_match(self, text: str, raw: bytes) -> bool:
        """``raw`` is ``text`` in its Latin-1 form (detectors._latin1)."""
        if not text.isascii() and any(c in text for c in _FOLDS_TO_ASCII):
            folded = text.translate(_FOLD)
            raw = folded.encode("latin-1", "replace")
        scan = self._scan
        if scan is None:
            scan = self._scan = _compiled(tuple(self.patterns))
        return scan(raw)


_compile_lock = threading.Lock()
_databases: dict[tuple[bytes, ...], Callable[[bytes], bool]] = {}


def _compiled(patterns: tuple[bytes, ...]) -> Callable[[bytes], bool]:
    """The scan for ``patterns``; if hyperscan cannot build it here, one that passes every
    text to the detectors (as without the pre-filter), with a warning."""
    with _compile_lock:
        scan = _databases.get(patterns)
        if scan is None:
            try:
                scan = _hyperscan_scan(list(patterns))
            except Exception:
                logger.warning(
                    "llmtap: the hyperscan pre-filter of the redaction stage could not be "
                    "built; every text goes through the detectors",
                    exc_info=True,
                )
                scan = _pass_all
            _databases[patterns] = scan
        return scan


def _pass_all(raw: bytes) -> bool:
    return True


def _hyperscan_scan(patterns: list[bytes]) -> Callable[[bytes], bool]:
    import hyperscan

    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    flags = hyperscan.HS_FLAG_SINGLEMATCH
    db.compile(expressions=patterns, ids=list(range(len(patterns))), flags=[flags] * len(patterns))
    prototype = hyperscan.Scratch(db)
    local = threading.local()  # a scratch space is for one scan at a time: one per thread

    def stop(*_: Any) -> bool:
        return True  # the first match is enough: stop scanning

    def scan(raw: bytes) -> bool:
        scratch = getattr(local, "scratch", None)
        if scratch is None:
            scratch = local.scratch = prototype.clone()
        try:
            db.scan(raw, match_event_handler=stop, scratch=scratch)
        except hyperscan.ScanTerminated:
            return True
        return False

    return scan


def _installed() -> bool:
    """Whether hyperscan is installed, without importing it (tens of ms, paid on first use)."""
    try:
        return importlib.util.find_spec("hyperscan") is not None
    except (ImportError, ValueError):
        return False


def make_prefilter(engine: str, enabled: Iterable[str]) -> Prefilter | None:
    """The pre-filter for ``engine`` (None for python, or auto without hyperscan: the
    detectors then run on every text, as they would with it)."""
    if engine == "python" or (engine == "auto" and not _installed()):
        return None
    enabled = list(enabled)
    patterns = trigger_patterns(enabled)
    return Prefilter(patterns) if patterns else None
