"""The redaction stage: PII and credentials out of every string a span carries.

It sees the span name, every attribute (strings, string arrays, bytes that decode as
UTF-8, and the strings nested in mixed arrays and key-value maps), the attribute keys
themselves, the JSON inside the GenAI content attributes (parsed, string leaves redacted,
re-serialized compactly: still valid JSON of the same structure), the name and attributes
of every span event, the attributes of every link, the status message, the W3C
``tracestate`` of the span and of its links (values through the identifier-safe detectors
below; a member with a finding in drop mode is removed), the resource attributes and the
instrumentation scope (name, version, attributes).

Keys on the allow list hold identifiers, model names, enums and numbers that must stay
machine-readable, but some of them can carry free text (``session.id``,
``gen_ai.conversation.id``, ``server.address``, ``error.type``, ``gen_ai.request.*``): their
string values go through the detectors that never take an identifier for PII (email, card,
SSN, IBAN, secrets, custom patterns), not through phone and IP, which would break
numeric ids and server addresses.

A key with a finding has the finding replaced in the key text itself (``contact.<EMAIL>``),
so the value, redacted on its own, is kept; in drop mode the attribute is removed.

Modes:

- ``mask``: the value becomes a typed placeholder, ``<EMAIL>``, ``<PHONE>``, ...
- ``hash``: ``<EMAIL:3f2a9c1b7d4e>``, an HMAC-SHA256 of the (normalized) value under a key
  from the environment, so equal values give equal tokens and can still be grouped.
- ``drop``: a plain attribute with a finding is removed; inside JSON content only the
  affected string becomes ``<REDACTED>`` (the JSON stays valid); an event attribute is
  removed; the status message becomes ``<REDACTED>``.

The span gets ``llmtap.redaction.count`` (also 0 on a clean span) and a count per type
(``llmtap.redaction.email``, ...); findings in the resource and scope count on every span
that carries them. With a key in ``LLMTAP_REDACTION_KEY`` (``seal_key_env``) the span is
also sealed, ``llmtap.redaction.seal`` (:mod:`llmtap.pipeline.redaction_seal`). A span that
already has the count is left alone in the app; the service (``trust_marks("earned")``)
leaves it alone only when its seal verifies or its sender is trusted, and redacts it
again otherwise.

Budget: a text longer than ``max_value_chars`` is not scanned, nor is one met after the
span's time budget (``budget_s``, or the caller's ``SpanData.deadline`` if earlier) ran
out: it becomes ``<OVER_BUDGET>``, counted in ``llmtap.redaction.over_budget``. Content
is never let through unscanned. If anything fails inside the stage,
the content (every string attribute not on the allow list, every event and link attribute,
the status message, the span name, the trace states, the scope attributes and the
resource's strings not on the allow list) is dropped and ``llmtap.redaction.failed`` is
set: content is never let through unredacted.
"""

import fnmatch
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final

from llmtap import semconv
from llmtap.diagnostics import Once, warn_once
from llmtap.pipeline.detectors import (
    ALL_DETECTORS,
    CREDIT_CARD,
    DETECTOR_TYPES,
    EMAIL,
    IBAN,
    IP,
    PHONE,
    PLACEHOLDER_RE,
    SECRET,
    SSN,
    Detectors,
    is_secret_name,
    looks_secret,
)
from llmtap.pipeline.prefilter import ENGINES, engine_available
from llmtap.pipeline.redaction_seal import read_seal_key, seal, sealed, span_state
from llmtap.pipeline.span import (
    TRUST_ANY,
    TRUST_EARNED,
    TRUST_MODES,
    TRUST_NONE,
    SpanData,
    Stage,
    StageMarks,
)

__all__ = [
    "DEFAULT_ALLOW_KEYS",
    "JSON_ATTRIBUTES",
    "OVER_BUDGET_TEXT",
    "REDACTED",
    "REDACTION_COUNT",
    "REDACTION_FAILED",
    "REDACTION_OVER_BUDGET",
    "REDACTION_SEAL",
    "CustomPattern",
    "RedactionConfig",
    "RedactionConfigError",
    "RedactionStage",
    "Redactor",
    "redact_text",
    "redaction_count_attribute",
]

logger = logging.getLogger(__name__)

# Attribute names (defined in semconv.py).
REDACTION_COUNT: Final = semconv.LLMTAP_REDACTION_COUNT
REDACTION_FAILED: Final = semconv.LLMTAP_REDACTION_FAILED
REDACTION_TYPE_PREFIX: Final = semconv.LLMTAP_REDACTION_TYPE_PREFIX


def redaction_count_attribute(kind: str) -> str:
    """``llmtap.redaction.<type>``: ``email``, ``phone``, ``credit_card``, ``ssn``, ``iban``,
    ``ip``, ``secret``, or a custom pattern's name in lower case."""
    return REDACTION_TYPE_PREFIX + kind.lower()


MODES: Final = ("mask", "hash", "drop")
REDACTED: Final = "<REDACTED>"
#: what a text over the redaction budget (size or time) becomes, unscanned
OVER_BUDGET_TEXT: Final = "<OVER_BUDGET>"
OVER_BUDGET: Final = "OVER_BUDGET"  # its key in a counts dict (not a finding type)
REDACTION_OVER_BUDGET: Final = semconv.LLMTAP_REDACTION_OVER_BUDGET
REDACTION_SEAL: Final = semconv.LLMTAP_REDACTION_SEAL

# Attributes whose value is JSON: parsed, string leaves redacted, written back compactly.
JSON_ATTRIBUTES: Final = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.retrieval.documents",
    }
)

# Identifiers, model names, enums and numbers: never personal data, never redacted.
DEFAULT_ALLOW_KEYS: Final[tuple[str, ...]] = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.*",
    "gen_ai.response.id",
    "gen_ai.response.model",
    "gen_ai.response.finish_reasons",
    "gen_ai.output.type",
    "gen_ai.token.type",
    "gen_ai.conversation.id",
    "gen_ai.agent.id",
    "gen_ai.agent.name",
    "gen_ai.agent.version",
    "gen_ai.tool.name",
    "gen_ai.tool.type",
    "gen_ai.tool.call.id",
    "gen_ai.data_source.id",
    "gen_ai.prompt.name",
    "gen_ai.evaluation.name",
    "gen_ai.evaluation.score.label",
    "openai.*",
    "server.address",
    "server.port",
    "error.type",
    "exception.type",
    "session.id",
    "llmtap.feature",
    "llmtap.prompt.version",
    "llmtap.step.kind",
    "llmtap.stream.*",
    "llmtap.cost.*",
    "llmtap.usage.*",
    "llmtap.content.*",
    "llmtap.redaction.*",
    "llmtap.evaluation.target.*",
)

_CUSTOM_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_RESERVED_NAMES: Final = frozenset(
    [t.lower() for t in DETECTOR_TYPES.values()]
    + list(DETECTOR_TYPES)
    + ["count", "failed", "seal", "over_budget"]
)


class RedactionConfigError(ValueError):
    """A ``redaction:`` setting that cannot work; the message names the key."""


@dataclass
class CustomPattern:
    """A user pattern: ``name`` gives the placeholder (``<EMPLOYEE_ID>``) and the count
    attribute (``llmtap.redaction.employee_id``). If ``regex`` has a group named ``value``,
    only that group is redacted. ``mode`` overrides the config's mode ("" = inherit)."""

    name: str
    """letters, digits and underscores; gives the placeholder (``<NAME>`` in upper case) and the
    count attribute ``llmtap.redaction.<name>``"""
    regex: str
    """what to redact (a Python regex; with a group named value, only that group)"""
    mode: str = ""
    """mask, hash or drop for this pattern; empty: the section's mode"""


@dataclass
class RedactionConfig:
    """``redaction:`` in ``llmtap.yaml``."""

    enabled: bool = True
    """false turns the redaction stage off: content leaves unredacted"""
    mode: str = "mask"
    """what a finding becomes: mask (``<EMAIL>``), hash (``<EMAIL:3f2a9c1b7d4e>``, an HMAC of the
    value) or drop (the attribute is removed)"""
    detectors: list[str] = field(default_factory=lambda: list(ALL_DETECTORS))
    """the built-in detectors that run (default: all): email, phone, credit_card, ssn, iban, ip,
    secrets"""
    custom: list[CustomPattern] = field(default_factory=list)
    """your own patterns, each with a name and a regex (below)"""
    allow_values: list[str] = field(default_factory=list)
    """values never redacted, compared without case (and, for phone, card, SSN and IBAN, without
    spaces, dashes, dots, parentheses and slashes)"""
    allow_keys: list[str] = field(default_factory=lambda: list(DEFAULT_ALLOW_KEYS))
    """attribute names holding identifiers, model names, enums and numbers (globs with *, ? and
    [ ] allowed): their values are scanned only for emails, cards, SSNs, IBANs, secrets and
    custom patterns, never for phone numbers or IPs (values the provider or llmtap writes, such
    as response ids, not at all); giving the list replaces the default"""
    hash_key_env: str = "LLMTAP_REDACTION_HASH_KEY"
    """the environment variable holding the HMAC key, needed when a mode is hash"""
    hash_length: int = 12
    """hex characters of the HMAC kept in a hash token, 4 to 64"""
    seal_key_env: str = "LLMTAP_REDACTION_KEY"
    """the environment variable holding the key (16+ characters) shared with the llmtap service:
    when set, a redacted span is sealed (``llmtap.redaction.seal``) and the service forwards it
    without redacting it again; the service also needs it to verify seals"""
    max_value_chars: int = 1024 * 1024
    """the longest text scanned (attribute value, JSON string, name, message); a longer one is
    replaced unscanned by ``<OVER_BUDGET>`` and counted in ``llmtap.redaction.over_budget``"""
    budget_s: float = 2.0
    """seconds of scanning per span; what is not scanned by then is replaced by
    ``<OVER_BUDGET>`` (in the service the request's budget, ``service.request_budget_s``,
    also applies); 0: no time limit"""
    engine: str = "auto"
    """auto, hyperscan or python: with hyperscan (the ``redaction-fast`` extra) one compiled pass
    over a JSON content attribute tells clean ones, which then skip the detectors, from the
    rest; python checks them in Python; auto is hyperscan when it is installed. The findings
    are the same"""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise RedactionConfigError(
                f"redaction.enabled: expected true or false, got {self.enabled!r}"
            )
        if self.mode not in MODES:
            raise RedactionConfigError(
                f"redaction.mode: expected one of {', '.join(MODES)}, got {self.mode!r}"
            )
        _check_str_list("redaction.detectors", self.detectors)
        for name in self.detectors:
            if name not in DETECTOR_TYPES:
                raise RedactionConfigError(
                    f"redaction.detectors: unknown detector {name!r}; "
                    f"expected some of {', '.join(ALL_DETECTORS)}"
                )
        if not isinstance(self.custom, list):
            raise RedactionConfigError(
                "redaction.custom: expected a list of {name, regex, mode} entries"
            )
        self.custom = [_custom_pattern(i, c) for i, c in enumerate(self.custom)]
        seen: set[str] = set()
        for i, c in enumerate(self.custom):
            where = f"redaction.custom[{i}]"
            if not isinstance(c.name, str) or not _CUSTOM_NAME.match(c.name):
                raise RedactionConfigError(
                    f"{where}.name: expected a name of letters, digits and underscores "
                    f"starting with a letter (it becomes <{str(c.name).upper()}>), "
                    f"got {c.name!r}"
                )
            low = c.name.lower()
            if low in _RESERVED_NAMES or low in seen:
                raise RedactionConfigError(
                    f"{where}.name: {c.name!r} is already used "
                    f"({'a built-in type' if low in _RESERVED_NAMES else 'another pattern'})"
                )
            seen.add(low)
            if c.mode not in ("", *MODES):
                raise RedactionConfigError(
                    f"{where}.mode ({c.name}): expected one of {', '.join(MODES)} "
                    f"or empty, got {c.mode!r}"
                )
            if not isinstance(c.regex, str) or not c.regex:
                raise RedactionConfigError(f"{where}.regex ({c.name}): expected a regex")
            try:
                compiled = re.compile(c.regex)
            except re.error as exc:
                raise RedactionConfigError(
                    f"{where}.regex ({c.name}): {c.regex!r} does not compile: {exc}"
                ) from None
            if compiled.fullmatch(""):
                raise RedactionConfigError(
                    f"{where}.regex ({c.name}): {c.regex!r} matches the empty string"
                )
        _check_str_list("redaction.allow_values", self.allow_values)
        _check_str_list("redaction.allow_keys", self.allow_keys)
        if not isinstance(self.hash_key_env, str) or not self.hash_key_env:
            raise RedactionConfigError(
                "redaction.hash_key_env: expected the name of an environment variable"
            )
        if not isinstance(self.seal_key_env, str) or not self.seal_key_env:
            raise RedactionConfigError(
                "redaction.seal_key_env: expected the name of an environment variable"
            )
        if (
            not isinstance(self.max_value_chars, int)
            or isinstance(self.max_value_chars, bool)
            or self.max_value_chars < 1024
        ):
            raise RedactionConfigError(
                "redaction.max_value_chars: expected an integer of at least 1024, "
                f"got {self.max_value_chars!r}"
            )
        if (
            not isinstance(self.budget_s, (int, float))
            or isinstance(self.budget_s, bool)
            or not 0 <= self.budget_s < float("inf")
        ):
            raise RedactionConfigError(
                f"redaction.budget_s: expected 0 or a positive number of seconds, "
                f"got {self.budget_s!r}"
            )
        if self.engine not in ENGINES:
            raise RedactionConfigError(
                f"redaction.engine: expected one of {', '.join(ENGINES)}, got {self.engine!r}"
            )
        if not engine_available(self.engine):
            raise RedactionConfigError(
                f"redaction.engine: {self.engine} is not installed "
                "(pip install 'llmtap[redaction-fast]'), or use auto or python"
            )
        if (
            not isinstance(self.hash_length, int)
            or isinstance(self.hash_length, bool)
            or not 4 <= self.hash_length <= 64
        ):
            raise RedactionConfigError(
                f"redaction.hash_length: expected an integer from 4 to 64, got {self.hash_length!r}"
            )

    @property
    def uses_hash(self) -> bool:
        return self.mode == "hash" or any(c.mode == "hash" for c in self.custom)


def _check_str_list(key: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RedactionConfigError(f"{key}: expected a list of strings, got {value!r}")


def _custom_pattern(i: int, c: Any) -> CustomPattern:
    if isinstance(c, CustomPattern):
        return c
    if isinstance(c, Mapping):
        unknown = set(c) - {"name", "regex", "mode"}
        if unknown:
            raise RedactionConfigError(
                f"redaction.custom[{i}]: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                "expected name, regex and optionally mode"
            )
        if "name" not in c or "regex" not in c:
            raise RedactionConfigError(f"redaction.custom[{i}]: needs both name and regex")
        return CustomPattern(name=c["name"], regex=c["regex"], mode=c.get("mode") or "")
    raise RedactionConfigError(
        f"redaction.custom[{i}]: expected a mapping with name and regex, got {c!r}"
    )


# ---------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------

_NON_DIGITS: Final = re.compile(r"\D")
_COMPACT: Final = re.compile(r"[\s\-.()/]")
_COMPACT_TYPES: Final = frozenset({PHONE, CREDIT_CARD, SSN, IBAN})


def _normalize(kind: str, value: str) -> str:
    """The form that is hashed, so that one value written two ways gets one token."""
    if kind == EMAIL:
        return value.lower()
    if kind in (CREDIT_CARD, SSN):
        return _NON_DIGITS.sub("", value)
    if kind == PHONE:
        return ("+" if value.startswith("+") else "") + _NON_DIGITS.sub("", value)
    if kind == IBAN:
        return value.replace(" ", "").upper()
    if kind == IP:
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            return value
    return value


def _clean_json(detectors: Detectors, raw: str) -> bool:
    """True when no string inside the JSON text ``raw`` can hold a finding, known without
    parsing it: the detectors' triggers are looked for in the raw text, with the two-char
    escapes turned into spaces first (so ``"call\\n555…"`` is seen as it decodes). A raw
    text with ``\\u`` or ``\\/`` escapes, which can hide what they encode, is not judged."""
    if "\\" in raw:
        if "\\u" in raw or "\\/" in raw:
            return False
        raw = (
            raw.replace("\\\\", "  ")
            .replace('\\"', ' "')
            .replace("\\n", "  ")
            .replace("\\t", "  ")
            .replace("\\r", "  ")
            .replace("\\b", "  ")
            .replace("\\f", "  ")
        )
    return not detectors.may_find(raw)


class Redactor:
    """Detects and replaces values in text and JSON, with the modes and allow-lists of a
    :class:`RedactionConfig`. Raises :class:`RedactionConfigError` when hashing is asked
    for and the key's environment variable is unset or empty."""

    def __init__(self, config: RedactionConfig | None = None) -> None:
        self.config = config = config if config is not None else RedactionConfig()
        custom = [(c.name.upper(), re.compile(c.regex)) for c in config.custom]
        self.detectors = Detectors(config.detectors, custom, config.engine)
        # for allow-listed keys: the detectors that never take an identifier for PII
        self.id_detectors = Detectors(
            [d for d in config.detectors if d not in _ID_UNSAFE_DETECTORS], custom, config.engine
        )
        self.secrets = "secrets" in config.detectors
        self.modes: dict[str, str] = {t: config.mode for t in DETECTOR_TYPES.values()}
        for c in config.custom:
            self.modes[c.name.upper()] = c.mode or config.mode
        self.key: bytes | None = None
        if config.uses_hash:
            key = os.environ.get(config.hash_key_env, "")
            if not key:
                raise RedactionConfigError(
                    f"redaction.mode: hash needs a key in the environment variable "
                    f"{config.hash_key_env} (set by redaction.hash_key_env), which is "
                    "unset or empty"
                )
            self.key = key.encode()
        self.hash_length = config.hash_length
        self.max_chars = config.max_value_chars
        self._local = threading.local()
        self.allow_exact = {v.casefold() for v in config.allow_values}
        self.allow_compact = {_COMPACT.sub("", v).casefold() for v in config.allow_values}
        exact = [k for k in config.allow_keys if not any(c in k for c in "*?[")]
        globs = [k for k in config.allow_keys if k not in exact]
        self._allow_key_exact = frozenset(exact)
        self._allow_key_glob = (
            re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None
        )
        self._key_cache: dict[str, bool] = {}
        # short texts found clean, by detector set: names, model ids, addresses and other
        # values that repeat from span to span are scanned once (no finding: nothing personal
        # is kept); emptied when full
        self._clean: dict[str, None] = {}
        self._clean_ids: dict[str, None] = {}
        self._key_text: dict[str, tuple[str | None, bool, tuple[tuple[str, int], ...]]] = {}
        self._key_infos: dict[str, tuple[bool | None, bool, str | None, bool, tuple[Any, ...]]] = {}

    # -- keys and values -----------------------------------------------------------------

    def key_allowed(self, key: str) -> bool:
        hit = self._key_cache.get(key)
        if hit is None:
            hit = key in self._allow_key_exact or bool(
                self._allow_key_glob and self._allow_key_glob.match(key)
            )
            if len(self._key_cache) < 4096:
                self._key_cache[key] = hit
        return hit

    def _value_allowed(self, kind: str, value: str) -> bool:
        if not self.allow_exact:
            return False
        if value.casefold() in self.allow_exact:
            return True
        return kind in _COMPACT_TYPES and _COMPACT.sub("", value).casefold() in self.allow_compact

    def _token(self, kind: str, value: str) -> str:
        if self.modes[kind] == "hash":
            assert self.key is not None
            digest = hmac.new(self.key, _normalize(kind, value).encode(), hashlib.sha256)
            return f"<{kind}:{digest.hexdigest()[: self.hash_length]}>"
        return f"<{kind}>"

    # -- text --------------------------------------------------------------------------

    def redact(
        self,
        text: str,
        counts: dict[str, int] | None = None,
        detectors: Detectors | None = None,
    ) -> tuple[str, bool]:
        """``(new_text, drop)``: ``new_text is text`` when nothing was found; ``drop`` is
        true when a finding's mode is ``drop`` (the caller removes the whole value). A text
        over ``max_value_chars``, or met once the time budget of the calling thread ran out
        (:meth:`budget`), becomes ``<OVER_BUDGET>`` unscanned."""
        return self._redact(text, counts, detectors, True)

    def _redact(
        self,
        text: str,
        counts: dict[str, int] | None,
        detectors: Detectors | None,
        timed: bool,
    ) -> tuple[str, bool]:
        if detectors is None:
            detectors, clean = self.detectors, self._clean
        else:
            clean = self._clean_ids if detectors is self.id_detectors else None
        if clean is not None and len(text) <= _CLEAN_TEXT_MAX:
            if text in clean:
                return text, False
            if timed and self.out_of_time():
                return self._over(counts)
            found = detectors.find(text)
            if not found:
                if len(clean) >= _CLEAN_CACHE_SIZE:
                    clean.clear()
                clean[text] = None
                return text, False
        else:
            if len(text) > self.max_chars or (timed and self.out_of_time()):
                return self._over(counts)
            found = detectors.find(text)
        if not found:
            return text, False
        parts: list[str] = []
        pos = 0
        drop = False
        for start, end, kind in found:
            value = text[start:end]
            if self._value_allowed(kind, value):
                continue
            if counts is not None:
                counts[kind] = counts.get(kind, 0) + 1
            if self.modes[kind] == "drop":
                drop = True
                continue
            parts.append(text[pos:start])
            parts.append(self._token(kind, value))
            pos = end
        if drop:
            return REDACTED, True
        if not parts:
            return text, False
        parts.append(text[pos:])
        return "".join(parts), False

    def _over(self, counts: dict[str, int] | None) -> tuple[str, bool]:
        if counts is not None:
            counts[OVER_BUDGET] = counts.get(OVER_BUDGET, 0) + 1
        return OVER_BUDGET_TEXT, False

    def budget(self, deadline: float) -> None:
        """Texts met on this thread after ``deadline`` (``time.monotonic()``; 0: none) are
        not scanned but replaced (see :meth:`redact`)."""
        self._local.deadline = deadline

    def out_of_time(self) -> bool:
        deadline = getattr(self._local, "deadline", 0.0)
        return deadline > 0.0 and time.monotonic() > deadline

    def redact_text(self, text: str, counts: dict[str, int] | None = None) -> str:
        """The redacted text; in drop mode a text with a finding becomes ``<REDACTED>``."""
        return self.redact(text, counts)[0]

    # -- JSON --------------------------------------------------------------------------

    def redact_json(self, raw: str, counts: dict[str, int] | None = None) -> tuple[str, bool]:
        """Redact the string leaves of a JSON document; ``(new_raw, drop)``.

        The result is compact JSON of the same structure (keys are kept as they are). A
        value that is not JSON (cut short by a size cap, say), or nests too deeply to parse,
        is redacted as text.
        """
        if self.out_of_time():
            return self._over(counts)
        if _clean_json(self.detectors, raw):
            return raw, False
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            return self.redact(raw, counts)
        if isinstance(doc, str):
            new, _ = self.redact(doc, counts)
            if new is doc:
                return raw, False
            return json.dumps(new, ensure_ascii=False), False
        if not isinstance(doc, (dict, list)):
            return raw, False
        found: dict[str, int] = {}
        try:
            if not self._walk(doc, found):
                return raw, False
            out = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        except RecursionError:
            return self.redact(raw, counts)
        if counts is not None:
            for kind, n in found.items():
                counts[kind] = counts.get(kind, 0) + n
        return out, False

    def _leaf(self, value: str, counts: dict[str, int] | None, key: Any = None) -> str | None:
        """The new value of one string leaf, or None when it stays as it is."""
        if (
            self.secrets
            and isinstance(key, str)
            and is_secret_name(key)
            and looks_secret(value)
            and not PLACEHOLDER_RE.fullmatch(value)
            and not self._value_allowed(SECRET, value)
        ):
            if counts is not None:
                counts[SECRET] = counts.get(SECRET, 0) + 1
            return REDACTED if self.modes[SECRET] == "drop" else self._token(SECRET, value)
        new, _ = self.redact(value, counts)
        return None if new is value else new

    def _walk(self, node: Any, counts: dict[str, int] | None) -> bool:
        changed = False
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, str):
                    new = self._leaf(v, counts, k)
                    if new is not None:
                        node[k] = new
                        changed = True
                elif isinstance(v, (dict, list)) and self._walk(v, counts):
                    changed = True
        else:
            for i, v in enumerate(node):
                if isinstance(v, str):
                    new = self._leaf(v, counts)
                    if new is not None:
                        node[i] = new
                        changed = True
                elif isinstance(v, (dict, list)) and self._walk(v, counts):
                    changed = True
        return changed

    # -- attribute maps ------------------------------------------------------------------

    def redact_key(self, key: str, counts: dict[str, int] | None) -> tuple[str, bool]:
        """``(new_key, drop)`` for an attribute key (``new_key is key`` when clean);
        remembered per key, as keys repeat from span to span."""
        hit = self._key_text.get(key)
        if hit is None:
            found: dict[str, int] = {}
            # untimed: the result is remembered
            new, drop = self._redact(key, found, None, False) if len(key) >= 6 else (key, False)
            # the cache holds no clean key: an equal key is not the same object
            hit = (None if new is key else new, drop, tuple(found.items()))
            if len(self._key_text) < 4096:
                self._key_text[key] = hit
        if hit[2] and counts is not None:
            for kind, n in hit[2]:
                counts[kind] = counts.get(kind, 0) + n
        return (key if hit[0] is None else hit[0]), hit[1]

    def redact_value(
        self, value: Any, counts: dict[str, int] | None, detectors: Detectors | None = None
    ) -> tuple[Any, bool]:
        """``(new_value, drop)`` for an attribute value of any type: strings, bytes that
        decode as UTF-8, and every string inside arrays (``list``/``tuple``) and key-value
        maps (their keys too); ``new_value is value`` when nothing changed; ``drop`` when a
        finding anywhere inside is in drop mode (the caller removes the whole value)."""
        if isinstance(value, str):
            return self.redact(value, counts, detectors)
        if value is None or isinstance(value, (bool, int, float)):
            return value, False
        if isinstance(value, (bytes, bytearray)):
            try:
                text = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                return value, False  # binary: nothing a detector reads
            new, drop = self.redact(text, counts, detectors)
            return (value if new is text else new.encode("utf-8")), drop
        if isinstance(value, (list, tuple)):
            items = []
            drop = changed = False
            for item in value:
                r, d = self.redact_value(item, counts, detectors)
                drop = drop or d
                changed = changed or r is not item
                items.append(r)
            return (type(value)(items) if changed else value), drop
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            drop = changed = False
            for k, v in value.items():
                nk, kd = self.redact_key(k, counts) if isinstance(k, str) else (k, False)
                r, d = self.redact_value(v, counts, detectors)
                drop = drop or d or kd
                changed = changed or r is not v or nk is not k
                out[nk] = r
            return (out if changed else value), drop
        return value, False

    def _key_info(self, key: str) -> tuple[bool | None, bool, str | None, bool, tuple[Any, ...]]:
        """(allowed: True, False, or None for machine-written values never scanned; JSON;
        redacted key or None; drop; findings in the key), per key."""
        info = self._key_infos.get(key)
        if info is None:
            found: dict[str, int] = {}
            new_key, key_drop = self.redact_key(key, found)
            allowed = self.key_allowed(key)
            if allowed and _MACHINE_KEYS.match(key):
                allowed = None  # written by the provider or llmtap: never scanned
            info = (
                allowed,
                key in JSON_ATTRIBUTES,
                None if new_key is key else new_key,
                key_drop,
                tuple(found.items()),
            )
            if len(self._key_infos) < 4096:
                self._key_infos[key] = info
        return info

    def plan(self, attributes: Mapping[str, Any], counts: dict[str, int]) -> dict[str, Any] | None:
        """The changes redaction makes to one attribute map (``_DROP`` removes a key), or
        None when there are none. Nothing is changed yet: the caller commits."""
        updates: dict[str, Any] | None = None
        infos = self._key_infos
        for key, value in attributes.items():
            info = infos.get(key) or self._key_info(key)
            allowed, is_json, new_key, key_drop, found = info
            if found:
                for kind, n in found:
                    counts[kind] = counts.get(kind, 0) + n
            if allowed is None and new_key is None and not key_drop:
                continue
            kind_of = type(value)
            if allowed is None:
                new, drop = value, False
            elif kind_of is str:
                if allowed:
                    new, drop = self.redact(value, counts, self.id_detectors)
                elif is_json:
                    new, drop = self.redact_json(value, counts)
                else:
                    new, drop = self.redact(value, counts)
            elif value is None or kind_of in _SCALARS:
                if new_key is None and not key_drop:
                    continue
                new, drop = value, False
            else:
                new, drop = self.redact_value(value, counts, self.id_detectors if allowed else None)
            if not (drop or key_drop or new is not value or new_key is not None):
                continue
            if updates is None:
                updates = {}
            if drop or key_drop:
                updates[key] = _DROP
            elif new_key is not None:
                updates[key] = _DROP
                if new_key not in attributes:  # never overwrites an attribute of that name
                    updates[new_key] = new
            else:
                updates[key] = new
        return updates

    def redact_map(
        self, attributes: Mapping[str, Any], counts: dict[str, int]
    ) -> Mapping[str, Any] | None:
        """A redacted copy of ``attributes``, or None when nothing changes (for maps shared
        by many spans: the resource, the scope's attributes)."""
        updates = self.plan(attributes, counts)
        if not updates:
            return None
        out = dict(attributes)
        _commit(out, updates)
        return out


_ID_UNSAFE_DETECTORS: Final = frozenset({"phone", "ip"})

# Allow-listed keys whose values the provider or llmtap writes (response ids, models,
# finish reasons, tool call ids, enums, llmtap's own counts): no user text reaches them, so
# they are not scanned at all. Every other allow-listed key (session.id, conversation ids,
# agent and prompt names, server.address, error.type, gen_ai.request.*, llmtap.feature,
# and any key a config adds) holds values an application sets: scanned by the id-safe
# detectors.
_MACHINE_KEYS: Final = re.compile(
    "|".join(
        fnmatch.translate(g)
        for g in (
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.response.*",
            "gen_ai.output.type",
            "gen_ai.token.type",
            "gen_ai.tool.type",
            "gen_ai.tool.call.id",
            "openai.*",
            "server.port",
            "llmtap.step.kind",
            "llmtap.stream.*",
            "llmtap.cost.*",
            "llmtap.usage.*",
            "llmtap.content.*",
            "llmtap.redaction.*",
            "llmtap.evaluation.target.*",  # the judged span's hex ids, written by the judge
        )
    )
)
_CLEAN_TEXT_MAX: Final = 256
_SCALARS: Final = (bool, int, float)
_CLEAN_CACHE_SIZE: Final = 8192


class _Drop:
    def __repr__(self) -> str:
        return "<drop>"


_DROP: Final = _Drop()


def _commit(attributes: MutableMapping[str, Any], updates: Mapping[str, Any] | None) -> None:
    if updates:
        for key, value in updates.items():
            if value is _DROP:
                attributes.pop(key, None)
            else:
                attributes[key] = value


class RedactionStage(Stage):
    """The pipeline stage (see :class:`llmtap.pipeline.span.Stage`)."""

    name = "redact"

    def __init__(self, config: RedactionConfig | None = None) -> None:
        self.config = config if config is not None else RedactionConfig()
        self.redactor = Redactor(self.config)
        try:
            self.seal_key = read_seal_key(self.config.seal_key_env)
        except ValueError as exc:
            raise RedactionConfigError(str(exc)) from None
        self._once = Once()

    #: which marked spans are left alone: any (in the app), earned (in the service: a valid
    #: seal or a trusted sender), none (``service.trust_upstream: false``)
    trust_marker = TRUST_ANY

    def marks(self) -> StageMarks:
        """A redacted span carries the redaction count (or the failure mark), which counts
        only with a valid seal (or from a trusted sender); any span may hold something to
        redact."""
        if not self.config.enabled:
            return StageMarks(needs=())
        return StageMarks(done=(REDACTION_COUNT, REDACTION_FAILED), verify=self._verify)

    def _verify(self, attributes: Any, trace_id: bytes, span_id: bytes) -> bool:
        if self.trust_marker == TRUST_EARNED:
            return sealed(self.seal_key, attributes, trace_id, span_id)
        return self.trust_marker == TRUST_ANY

    def trust_marks(self, trust: str | bool) -> None:
        if isinstance(trust, bool):
            trust = TRUST_ANY if trust else TRUST_NONE
        if trust not in TRUST_MODES:
            raise ValueError(
                f"trust_marks: expected one of {', '.join(TRUST_MODES)}, got {trust!r}"
            )
        self.trust_marker = trust

    def _trusted(self, span: SpanData) -> bool:
        """Whether the marks of a marked span are taken (see :attr:`trust_marker`)."""
        if self.trust_marker != TRUST_EARNED:
            return self.trust_marker == TRUST_ANY
        if span.marks_trusted:
            return True
        ids = _id_bytes(span)
        return ids is not None and sealed(self.seal_key, span.attributes, *ids)

    def apply(self, span: SpanData) -> None:
        if not self.config.enabled:
            return
        attrs = span.attributes
        marked = REDACTION_COUNT in attrs or REDACTION_FAILED in attrs
        if marked and self._trusted(span):
            return  # redacted before, in this process or by a sender that proved it
        r = self.redactor
        try:
            counts: dict[str, int] = {}
            # the shared maps first and untimed: their result is remembered across spans
            resource = self._shared(0, span.resource, counts)
            scope = self._scope(span, counts)
            r.budget(self._deadline(span))
            name = _text(r, span.name, counts)
            updates = r.plan(attrs, counts)
            events = [
                (_text(r, ev.name, counts), r.plan(ev.attributes, counts)) for ev in span.events
            ]
            links = [
                (r.plan(link.attributes, counts), self._trace_state(link.trace_state, counts))
                for link in span.links
            ]
            status = _text(r, span.status_message, counts)
            trace_state = self._trace_state(span.trace_state, counts)
        except Exception:
            self._fail_closed(span)
            return
        finally:
            r.budget(0.0)
        span.name = name  # type: ignore[assignment]
        _commit(attrs, updates)
        for ev, (ev_name, ev_updates) in zip(span.events, events, strict=True):
            ev.name = ev_name  # type: ignore[assignment]
            _commit(ev.attributes, ev_updates)
        for link, (link_updates, link_state) in zip(span.links, links, strict=True):
            _commit(link.attributes, link_updates)
            link.trace_state = link_state
        span.status_message = status
        span.trace_state = trace_state
        if resource is not None:
            span.resource = resource
        if scope is not None:
            span.scope_name, span.scope_version, span.scope_attributes = scope
        over = counts.pop(OVER_BUDGET, 0)
        if over:
            attrs[REDACTION_OVER_BUDGET] = over + _count(attrs, REDACTION_OVER_BUDGET, marked)
        attrs[REDACTION_COUNT] = sum(counts.values()) + _count(attrs, REDACTION_COUNT, marked)
        for kind, n in counts.items():
            key = redaction_count_attribute(kind)
            attrs[key] = n + _count(attrs, key, marked)
        self._seal(span)

    def _deadline(self, span: SpanData) -> float:
        budget = self.config.budget_s
        deadline = time.monotonic() + budget if budget else 0.0
        given = span.deadline
        if given and (not deadline or given < deadline):
            return given
        return deadline

    def _seal(self, span: SpanData) -> None:
        """Seal the span's marks (or remove a seal this stage cannot renew)."""
        attrs = span.attributes
        ids = _id_bytes(span)
        state = span_state(attrs.get(REDACTION_COUNT), attrs.get(REDACTION_FAILED))
        if self.seal_key is None or ids is None or not state:
            attrs.pop(REDACTION_SEAL, None)
            return
        attrs[REDACTION_SEAL] = seal(self.seal_key, *ids, state)

    def _trace_state(self, header: str, counts: dict[str, int]) -> str:
        """A W3C ``tracestate`` with its values redacted by the identifier-safe detectors;
        a member with a finding in its key, in drop mode, or no longer valid is removed."""
        if not header:
            return header
        r = self.redactor
        out: list[str] = []
        changed = False
        for member in header.split(","):
            key, eq, value = member.partition("=")
            if not eq:
                new, drop = r.redact(member, counts)
                if drop or new is not member:
                    changed = True
                if not drop:
                    out.append(new)
                continue
            new_key, key_drop = r.redact(key, counts, r.id_detectors)
            new, drop = r.redact(value, counts, r.id_detectors)
            if new_key is key and new is value:
                out.append(member)
                continue
            changed = True
            if not (key_drop or drop or new_key is not key) and _TRACE_STATE_VALUE.fullmatch(new):
                out.append(f"{key}={new}")
        return ",".join(out) if changed else header

    # the resource and the scope are shared by many spans: their last result is remembered
    # (by identity: the app's spans share one resource object, the service's spans of one
    # ResourceSpans/ScopeSpans one dict), with what it found, counted again on every span
    _cache: tuple[Any, ...] = ((), ())

    def _shared(
        self, slot: int, source: Mapping[str, Any], counts: dict[str, int]
    ) -> Mapping[str, Any] | None:
        if not source:
            return None
        cached = self._cache[slot]
        if cached and cached[0] is source:
            result, found = cached[1], cached[2]
        else:
            found = {}
            result = self.redactor.redact_map(source, found)
            cache = list(self._cache)
            cache[slot] = (source, result, found)
            self._cache = tuple(cache)
        for kind, n in found.items():
            counts[kind] = counts.get(kind, 0) + n
        return result

    def _scope(
        self, span: SpanData, counts: dict[str, int]
    ) -> tuple[str, str, Mapping[str, Any]] | None:
        name, version, source = span.scope_name, span.scope_version, span.scope_attributes
        if not (name or version or source):
            return None
        cached = self._scope_cache
        if cached and cached[0] == name and cached[1] == version and cached[2] is source:
            result, found = cached[3], cached[4]
        else:
            r = self.redactor
            found = {}
            new_name = _text(r, name, found)
            new_version = _text(r, version, found)
            attributes = r.redact_map(source, found) if source else None
            result = None
            if new_name is not name or new_version is not version or attributes is not None:
                result = (new_name, new_version, source if attributes is None else attributes)
            self._scope_cache = (name, version, source, result, found)
        for kind, n in found.items():
            counts[kind] = counts.get(kind, 0) + n
        return result

    _scope_cache: tuple[Any, ...] = ()

    def _fail_closed(self, span: SpanData) -> None:
        message = "llmtap: redaction failed; the span's content was dropped"
        if not warn_once(logger, "failed", message, exc_info=sys.exc_info()[1], once=self._once):
            logger.debug(message)
        attrs = span.attributes
        for key in list(attrs):
            if not self._keep_on_failure(key, attrs[key]):
                del attrs[key]
        for ev in span.events:
            ev.attributes = {}
        for link in span.links:
            link.attributes = {}
            link.trace_state = ""
        span.trace_state = ""
        if span.status_message:
            span.status_message = REDACTED
        span.name = REDACTED
        if span.resource:
            span.resource = {k: v for k, v in span.resource.items() if self._keep_on_failure(k, v)}
        span.scope_attributes = {}
        attrs[REDACTION_FAILED] = True
        try:
            self._seal(span)
        except Exception:
            attrs.pop(REDACTION_SEAL, None)

    def _keep_on_failure(self, key: str, value: Any) -> bool:
        if value is None or isinstance(value, (bool, int, float)):
            return True
        if isinstance(value, (list, tuple)) and all(
            v is None or isinstance(v, (bool, int, float)) for v in value
        ):
            return True
        if not isinstance(value, (str, list, tuple)):
            return False
        try:
            return self.redactor.key_allowed(key) and key not in JSON_ATTRIBUTES
        except Exception:
            return False


def _text(r: Redactor, text: str | None, counts: dict[str, int]) -> Any:
    """A name or message redacted (``<REDACTED>`` in drop mode); None stays None."""
    if not text:
        return text
    new, drop = r.redact(text, counts)
    return REDACTED if drop else new


_default: Redactor | None = None


def redact_text(text: str, config: RedactionConfig | None = None) -> str:
    """Redact one text with ``config`` (default: every detector, mask mode).

    In drop mode a text with a finding comes back as ``<REDACTED>``.
    """
    global _default
    if config is None:
        if _default is None:
            _default = Redactor()
        return _default.redact_text(text)
    return Redactor(config).redact_text(text)


# a W3C tracestate value: printable ASCII but "," and "=", up to 256, not ending in a space
_TRACE_STATE_VALUE: Final = re.compile(
    r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)


def _id_bytes(span: SpanData) -> tuple[bytes, bytes] | None:
    """The span's trace and span ids as the wire has them (None when either is missing)."""
    try:
        if not span.trace_id or not span.span_id:
            return None
        return span.trace_id.to_bytes(16, "big"), span.span_id.to_bytes(8, "big")
    except (OverflowError, AttributeError, TypeError):
        return None


def _count(attrs: Mapping[str, Any], key: str, marked: bool) -> int:
    """The count an earlier redaction left under ``key`` (0 when there was none)."""
    value = attrs.get(key) if marked else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
