"""Price tables in LiteLLM's field names: reading, checking, converting.

A table is a JSON object mapping a model name to an entry of LiteLLM fields
(``input_cost_per_token``, ``output_cost_per_token``, ``cache_read_input_token_cost``,
``*_above_Nk_tokens`` tiers, ``litellm_provider``, ``mode`` ...). llmtap's own tables add
two fields to each entry: ``source`` (where the price was taken from) and ``as_of`` (the
date it was taken). LiteLLM's ``model_prices_and_context_window.json`` is read as is; its
``sample_spec`` entry and entries without token prices (images, audio, search) are left out,
except rerank models (``mode: rerank``), priced per search (``input_cost_per_query``) or per
input token.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

_log = logging.getLogger("llmtap")

#: modes whose requests are priced per token
TOKEN_MODES = frozenset({"chat", "completion", "responses", "embedding"})
#: modes whose requests may be priced per search (a query with its documents)
QUERY_MODES = frozenset({"rerank"})
#: LiteLLM's documentation entry, not a model
SAMPLE_SPEC = "sample_spec"
BUNDLED_RESOURCE = "prices.json"
DATA_DIR_ENV = "LLMTAP_DATA_DIR"
USER_TABLE_NAME = "prices.json"

INPUT = "input_cost_per_token"
OUTPUT = "output_cost_per_token"
CACHE_READ = "cache_read_input_token_cost"
CACHE_READ_LEGACY = "input_cost_per_token_cache_hit"  # DeepSeek entries
CACHE_WRITE = "cache_creation_input_token_cost"
REASONING = "output_cost_per_reasoning_token"
QUERY = "input_cost_per_query"

_COST_FIELD = re.compile(r"(^|_)cost(_|$)")
_TIER_FIELD = re.compile(r"_above_(\d+(?:\.\d+)?)k_tokens")
#: fields kept when a LiteLLM file is converted to llmtap's table (besides *cost* fields)
_KEPT_FIELDS = (
    "litellm_provider",
    "mode",
    "max_input_tokens",
    "max_output_tokens",
    "deprecation_date",
)


class PricingFileError(ValueError):
    """A price file that cannot be used at all; the message names the file and the cause."""


@dataclass(frozen=True)
class Problem:
    """One finding about a price table: ``file: key: field: message``."""

    file: str
    key: str
    field: str
    message: str
    level: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}"
        if self.field:
            where += f": {self.field}"
        return f"{where}: {self.level}: {self.message}"


@dataclass(frozen=True, eq=False)
class PriceEntry:
    """The price of one model, and where it came from (compared and hashed by identity).

    ``origin`` names the table: ``bundled:<as_of>``, ``file:<name>`` or ``override``.
    """

    key: str
    fields: Mapping[str, Any]
    origin: str

    def rate(self, name: str) -> float | None:
        value = self.fields.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    @property
    def provider(self) -> str | None:
        value = self.fields.get("litellm_provider")
        return value if isinstance(value, str) else None

    @property
    def mode(self) -> str | None:
        value = self.fields.get("mode")
        return value if isinstance(value, str) else None

    @property
    def source(self) -> str | None:
        value = self.fields.get("source")
        return value if isinstance(value, str) else None

    @property
    def as_of(self) -> str | None:
        value = self.fields.get("as_of")
        return value if isinstance(value, str) else None

    @functools.cached_property
    def tiers(self) -> tuple[int, ...]:
        """Prompt-size thresholds (in tokens) with their own rates, highest first."""
        found: set[int] = set()
        for name in self.fields:
            match = _TIER_FIELD.search(name)
            if match and self.rate(name) is not None:
                found.add(round(float(match.group(1)) * 1000))
        return tuple(sorted(found, reverse=True))


def is_cost_field(name: str) -> bool:
    return bool(_COST_FIELD.search(name))


def tier_suffix(threshold: int) -> str:
    """``200000`` -> ``_above_200k_tokens`` (LiteLLM's spelling)."""
    k = threshold / 1000
    text = str(int(k)) if k == int(k) else f"{k:g}"
    return f"_above_{text}k_tokens"


def _bad_number(value: Any) -> str | None:
    """Why ``value`` is not a usable price, or None when it is one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {json.dumps(value)[:60]}"
    if math.isnan(value) or math.isinf(value):
        return f"expected a finite number, got {value}"
    if value < 0:
        return f"expected a price of 0 or more, got {value}"
    return None


def check_entry(key: str, entry: Any, file: str) -> list[Problem]:
    """Everything wrong with one entry (errors make it unusable; warnings do not)."""
    if not isinstance(entry, Mapping):
        return [Problem(file, key, "", f"expected an object of prices, got {_kind(entry)}")]
    problems: list[Problem] = []
    for name, value in entry.items():
        if not isinstance(name, str) or not is_cost_field(name):
            continue
        if isinstance(value, Mapping):  # LiteLLM: search_context_cost_per_query {size: $}
            for sub, subvalue in value.items():
                why = _bad_number(subvalue)
                if why:
                    problems.append(Problem(file, key, f"{name}.{sub}", why))
            continue
        if isinstance(value, list):  # LiteLLM: tiered_pricing for search tools
            continue
        why = _bad_number(value)
        if why:
            problems.append(Problem(file, key, name, why))
    mode = entry.get("mode")
    if mode is not None and not isinstance(mode, str):
        problems.append(Problem(file, key, "mode", f"expected a string, got {_kind(mode)}"))
        mode = None
    token_priced = mode in TOKEN_MODES or (
        mode is None and any(isinstance(n, str) and n.endswith("_per_token") for n in entry)
    )
    if mode in QUERY_MODES and QUERY not in entry and INPUT not in entry:
        problems.append(Problem(file, key, QUERY, "missing: the model cannot be priced", "warning"))
    if token_priced:
        if INPUT not in entry:
            problems.append(
                Problem(file, key, INPUT, "missing: the model cannot be priced", "warning")
            )
        elif OUTPUT not in entry and mode != "embedding":
            problems.append(
                Problem(file, key, OUTPUT, "missing: output tokens are priced at 0", "warning")
            )
    provider = entry.get("litellm_provider")
    if provider is not None and not isinstance(provider, str):
        problems.append(
            Problem(file, key, "litellm_provider", f"expected a string, got {_kind(provider)}")
        )
    return problems


def check_table(data: Any, file: str) -> list[Problem]:
    """Check a whole table (a parsed JSON document)."""
    if not isinstance(data, Mapping):
        return [
            Problem(
                file,
                "(document)",
                "",
                f"expected a JSON object mapping model names to prices, got {_kind(data)}",
            )
        ]
    problems: list[Problem] = []
    for key, entry in data.items():
        if key == SAMPLE_SPEC:
            continue
        problems.extend(check_entry(key, entry, file))
    return problems


def usable(key: str, entry: Any, file: str) -> bool:
    """A token-priced entry, or a rerank entry with a per-search price, without errors."""
    if key == SAMPLE_SPEC or not isinstance(entry, Mapping):
        return False
    mode = entry.get("mode")
    if mode in QUERY_MODES:  # per search, or per token (Together's and newer Cohere rerankers)
        priced = any(_bad_number(entry.get(name)) is None for name in (QUERY, INPUT))
    else:
        priced = (mode is None or mode in TOKEN_MODES) and _bad_number(entry.get(INPUT)) is None
    if not priced:
        return False
    return not any(p.level == "error" for p in check_entry(key, entry, file))


def entries_from(data: Any, origin: str | None, file: str) -> dict[str, PriceEntry]:
    """The usable entries of a table; ``origin`` None: ``bundled:<as_of>`` per entry."""
    if not isinstance(data, Mapping):
        raise PricingFileError(check_table(data, file)[0].__str__())
    out: dict[str, PriceEntry] = {}
    skipped = 0
    for key, entry in data.items():
        if not isinstance(key, str) or not usable(key, entry, file):
            skipped += key != SAMPLE_SPEC
            continue
        fields = MappingProxyType(dict(entry))
        where = origin or f"bundled:{entry.get('as_of') or 'unknown'}"
        out[key] = PriceEntry(key, fields, where)
    if skipped:
        _log.debug("llmtap pricing: %s: %d entries without token prices left out", file, skipped)
    return out


def read_document(path: str | os.PathLike) -> Any:
    """Parse a JSON file, with the file and the cause in any error."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise PricingFileError(f"{name}: no such file") from None
    except OSError as exc:
        raise PricingFileError(f"{name}: cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PricingFileError(f"{name}: not UTF-8 text ({exc.reason})") from None
    return parse_document(text, name)


def parse_document(text: str | bytes, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PricingFileError(
            f"{name}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    except UnicodeDecodeError as exc:
        raise PricingFileError(f"{name}: not UTF-8 text ({exc.reason})") from None


def load_file(path: str | os.PathLike) -> dict[str, PriceEntry]:
    """A user's table (LiteLLM's file or llmtap's format): its usable entries."""
    name = os.fspath(path)
    data = read_document(name)
    if not isinstance(data, Mapping):
        raise PricingFileError(str(check_table(data, name)[0]))
    return entries_from(data, f"file:{os.path.basename(name)}", name)


@functools.lru_cache(maxsize=1)
def load_bundled() -> Mapping[str, PriceEntry]:
    """The prices shipped with llmtap, read from package data on first use."""
    # next to this module in every install (importlib.resources would cost ~8 ms of imports)
    text = Path(__file__).with_name(BUNDLED_RESOURCE).read_text(encoding="utf-8")
    data = parse_document(text, f"{__package__}/{BUNDLED_RESOURCE}")
    return MappingProxyType(entries_from(data, None, BUNDLED_RESOURCE))


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ``llmtap pricing update`` writes by default: ``$LLMTAP_DATA_DIR``, else the
    platform's user data directory (``$XDG_DATA_HOME/llmtap``, ``~/.local/share/llmtap``,
    ``%LOCALAPPDATA%\\llmtap``)."""
    env = os.environ if env is None else env
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]).expanduser()
    if sys.platform == "win32" and env.get("LOCALAPPDATA"):
        return Path(env["LOCALAPPDATA"]) / "llmtap"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "llmtap"
    base = env.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "llmtap"


def user_table_path(env: Mapping[str, str] | None = None) -> Path:
    return data_dir(env) / USER_TABLE_NAME


def to_table(data: Any, *, source: str, as_of: str, file: str) -> tuple[dict, list[Problem]]:
    """Convert a LiteLLM-format document to llmtap's table: usable entries only, their cost
    fields and a few descriptive ones, plus ``source`` and ``as_of`` (kept when present,
    as in a table llmtap wrote). Returns the table and the problems found."""
    problems = check_table(data, file)
    if not isinstance(data, Mapping):
        return {}, problems
    table: dict[str, dict] = {}
    for key in sorted(k for k in data if isinstance(k, str)):
        entry = data[key]
        if not usable(key, entry, file):
            continue
        out = {
            name: value
            for name, value in entry.items()
            if is_cost_field(name) and not isinstance(value, (Mapping, list))
        }
        out.update({name: entry[name] for name in _KEPT_FIELDS if name in entry})
        # LiteLLM's own "source" is the provider's pricing page
        url = entry.get("source")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            out["doc_url"] = url
        elif isinstance(entry.get("doc_url"), str):
            out["doc_url"] = entry["doc_url"]
        own = isinstance(url, str) and not url.startswith(("http://", "https://"))
        out["source"] = url if own else source
        out["as_of"] = entry["as_of"] if own and isinstance(entry.get("as_of"), str) else as_of
        table[key] = dict(sorted(out.items()))
    return table, problems


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
