"""From the model name on a span to a price entry.

The merged table is: the bundled prices, replaced per model by a user's file, with the
configured overrides laid over both (an override of a known model changes only the fields
it names). A name is looked up as given first, then in ever more general forms, and the
first entry found wins:

* the provider's own spelling first (``gen_ai.provider.name`` ``azure.ai.openai`` tries
  ``azure/<model>``, ``aws.bedrock`` tries ``anthropic.<model>-v1:0``, ``gcp.gemini`` tries
  ``gemini/<model>``...), and among the forms of one name an entry of the span's provider
  is preferred to another provider's;
* provider prefixes dropped one at a time (``openrouter/openai/gpt-4o`` -> ``openai/gpt-4o``
  -> ``gpt-4o``), an AWS ARN reduced to its model id;
* Bedrock ids: the cross-region prefix (``us.``, ``eu.``, ``apac.``, ``global.``...), the
  version (``-v1:0``) and the vendor (``anthropic.``) dropped in turn;
* dated snapshots and revisions: ``-2024-08-06``, ``-20250929``, ``@20251001``, ``-0709``,
  ``-001`` and ``-latest`` dropped, so a snapshot missing from the table costs what its
  family costs (a snapshot that is in the table keeps its own price).

Azure deployment names are mapped to models by configuration. Fine-tunes
(``ft:gpt-4o-mini-2024-07-18:org::id``, Azure ``<model>.ft-<id>``) are priced by an override
or ``fine_tunes`` entry for the name (or a prefix of it), else at the table's fine-tune rate
(``ft:<base>``), else at the base model's rate, and then ``price_source`` says so
(``...+base-model``).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from llmtap.pipeline.pricing._table import PriceEntry, load_bundled

OVERRIDE = "override"
BASE_MODEL_SUFFIX = "+base-model"

#: gen_ai.provider.name -> table prefixes to try first
_PROVIDER_PREFIXES: dict[str, tuple[str, ...]] = {
    "azure.ai.openai": ("azure/",),
    "azure.ai.inference": ("azure_ai/", "azure/"),
    "gcp.gemini": ("gemini/",),
    "gcp.vertex_ai": ("vertex_ai/",),
    "gcp.gen_ai": ("gemini/", "vertex_ai/"),
    "groq": ("groq/",),
    "mistral_ai": ("mistral/",),
    "deepseek": ("deepseek/",),
    "x_ai": ("xai/",),
    "openrouter": ("openrouter/",),
    "together_ai": ("together_ai/",),
    "cohere": ("cohere/",),
}
#: gen_ai.provider.name -> litellm_provider values of that provider's entries (prefixes)
_PROVIDER_FAMILIES: dict[str, tuple[str, ...]] = {
    "openai": ("openai", "text-completion-openai"),
    "anthropic": ("anthropic",),
    "aws.bedrock": ("bedrock",),
    "azure.ai.openai": ("azure",),
    "azure.ai.inference": ("azure",),
    "gcp.gemini": ("gemini",),
    "gcp.vertex_ai": ("vertex_ai",),
    "gcp.gen_ai": ("gemini", "vertex_ai"),
    "groq": ("groq",),
    "mistral_ai": ("mistral",),
    "deepseek": ("deepseek",),
    "x_ai": ("xai",),
    "openrouter": ("openrouter",),
    "cohere": ("cohere",),
    "together_ai": ("together_ai",),
}
_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|au|jp|ca|global|us-gov)\.(?=[a-z0-9-]+\.)")
_BEDROCK_VERSION = re.compile(r"(?:-v\d+(?::\d+)?|:\d+)$")
_BEDROCK_VENDOR = re.compile(
    r"^(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer|google|"
    r"nvidia|moonshot|moonshotai|zai|minimax)\."
)
_SNAPSHOT = (
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # gpt-4o-2024-08-06
    re.compile(r"[-@]\d{8}$"),  # claude-sonnet-4-5-20250929, claude-haiku-4-5@20251001
    re.compile(r"-\d{4}$"),  # grok-4-0709, gpt-4-0613, mistral-large-2411
    re.compile(r"-\d{3}$"),  # gemini-2.0-flash-001
    re.compile(r"-latest$"),
)
_MAX_CANDIDATES = 64


@dataclass(frozen=True)
class Resolution:
    """A model name resolved to a price entry."""

    model: str
    entry: PriceEntry
    #: the table it came from: ``bundled:<date>``, ``file:<name>``, ``override``; a
    #: fine-tune priced at its base model's rate gets ``+base-model``
    price_source: str
    #: how it was found: exact, normalised, deployment, fine-tune, fine-tune-base
    match: str

    @property
    def key(self) -> str:
        return self.entry.key


def _strip_prefix(name: str) -> str | None:
    return name.split("/", 1)[1] if "/" in name.strip("/") else None


def _arn(name: str) -> str | None:
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") and "/" in name else None


def _region(name: str) -> str | None:
    stripped = _BEDROCK_REGION.sub("", name, count=1)
    return stripped if stripped != name else None


def _version(name: str) -> str | None:
    if "." not in name and ":" not in name:
        return None
    stripped = _BEDROCK_VERSION.sub("", name, count=1)
    return stripped if stripped != name else None


def _vendor(name: str) -> str | None:
    stripped = _BEDROCK_VENDOR.sub("", name, count=1)
    return stripped if stripped != name else None


def _vertex_at(name: str) -> str | None:
    """Vertex AI's ``claude-sonnet-4-5@20250929`` is Anthropic's ``claude-sonnet-4-5-20250929``."""
    return name.replace("@", "-") if "@" in name else None


def _snapshot(name: str) -> str | None:
    for pattern in _SNAPSHOT:
        stripped = pattern.sub("", name, count=1)
        if stripped != name and stripped:
            return stripped
    return None


_TRANSFORMS = (_arn, _strip_prefix, _region, _version, _vendor, _vertex_at, _snapshot)


def candidates(model: str, provider: str | None = None) -> Iterator[str]:
    """Names to look up for ``model``, most specific first (bounded)."""
    seen: set[str] = set()
    queue = [model.strip()]
    done: set[str] = set()
    produced = 0
    while queue and produced < _MAX_CANDIDATES:
        name = queue.pop(0)
        if not name or name in done:
            continue
        done.add(name)
        for candidate in (*_provider_forms(name, provider), name):
            if candidate not in seen:
                seen.add(candidate)
                produced += 1
                yield candidate
        for transform in _TRANSFORMS:
            derived = transform(name)
            if derived and derived not in done:
                queue.append(derived)


def _provider_forms(name: str, provider: str | None) -> list[str]:
    if not provider:
        return []
    forms = [p + name for p in _PROVIDER_PREFIXES.get(provider, ()) if not name.startswith(p)]
    if provider == "aws.bedrock" and name.startswith("claude"):
        forms += [f"anthropic.{name}-v1:0", f"anthropic.{name}"]
    return forms


def _fine_tune_base(model: str) -> str | None:
    """``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` -> ``gpt-4o-mini-2024-07-18``;
    Azure's ``gpt-4o-mini-2024-07-18.ft-0123abcd`` likewise."""
    if model.startswith("ft:"):
        base = model[3:].split(":", 1)[0]
        return base or None
    if ".ft-" in model:
        return model.split(".ft-", 1)[0] or None
    return None


class PriceResolver:
    """Resolves (provider, model) to a price, with a bounded cache of resolutions."""

    def __init__(
        self,
        *,
        bundled: Mapping[str, PriceEntry] | None = None,
        file_entries: Mapping[str, PriceEntry] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        deployments: Mapping[str, str] | None = None,
        fine_tunes: Mapping[str, str] | None = None,
        file_name: str | None = None,
        cache_size: int = 4096,
    ) -> None:
        base = dict(load_bundled() if bundled is None else bundled)
        self.bundled_count = len(base)
        self.file_name = file_name
        self.file_count = len(file_entries or {})
        base.update(file_entries or {})
        for key, fields in (overrides or {}).items():
            merged = dict(base[key].fields) if key in base else {}
            merged.pop("as_of", None)
            merged.update(fields)
            if "source" not in fields:
                merged["source"] = "pricing.overrides"
            base[key] = PriceEntry(key, MappingProxyType(merged), OVERRIDE)
        self.override_count = len(overrides or {})
        self._entries: Mapping[str, PriceEntry] = MappingProxyType(base)
        self._lower: dict[str, str] = {}
        for key in base:
            self._lower.setdefault(key.lower(), key)
        self._deployments = dict(deployments or {})
        self._fine_tunes = sorted((fine_tunes or {}).items(), key=lambda kv: -len(kv[0]))
        self._ft_overrides = sorted(
            (k for k, e in base.items() if e.origin == OVERRIDE and k.startswith("ft:")),
            key=len,
            reverse=True,
        )
        self._cache: OrderedDict[tuple[str | None, str], Resolution | None] = OrderedDict()
        self._cache_size = max(1, cache_size)
        self._lock = threading.Lock()

    @property
    def entries(self) -> Mapping[str, PriceEntry]:
        return self._entries

    def get(self, key: str) -> PriceEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            exact = self._lower.get(key.lower())
            entry = self._entries.get(exact) if exact else None
        return entry

    def resolve(self, model: str | None, provider: str | None = None) -> Resolution | None:
        """The price of ``model`` as served by ``provider``; None when it is unknown."""
        if not model or not isinstance(model, str) or not model.strip():
            return None
        key = (provider, model)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        found = self._resolve(model.strip(), provider)
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return found

    def cache_info(self) -> tuple[int, int]:
        return len(self._cache), self._cache_size

    # ---------------------------------------------------------------------------------

    def _resolve(
        self, model: str, provider: str | None, deployment: bool = True
    ) -> Resolution | None:
        target = self._deployments.get(model) if deployment else None
        if target and target != model:
            found = self._resolve(target, provider, deployment=False)
            if found is not None:
                return Resolution(model, found.entry, found.price_source, "deployment")
        fine_tune = _fine_tune_base(model) is not None
        if fine_tune or self._fine_tunes:
            exact = self.get(model)
            if exact is not None and fine_tune:
                return Resolution(model, exact, exact.origin, "fine-tune")
            if exact is None:
                found = self._fine_tune(model, provider, fine_tune)
                if found is not None or fine_tune:
                    return found
        return self._lookup(model, provider)

    def _lookup(self, model: str, provider: str | None) -> Resolution | None:
        families = _PROVIDER_FAMILIES.get(provider or "")
        first: tuple[str, PriceEntry] | None = None
        for candidate in candidates(model, provider):
            entry = self.get(candidate)
            if entry is None:
                continue
            if first is None:
                first = (candidate, entry)
                if not families or self._matches(entry, families):
                    break
            elif self._matches(entry, families or ()):
                first = (candidate, entry)
                break
        if first is None:
            return None
        candidate, entry = first
        exact = candidate == model or candidate.lower() == model.lower()
        return Resolution(model, entry, entry.origin, "exact" if exact else "normalised")

    @staticmethod
    def _matches(entry: PriceEntry, families: tuple[str, ...]) -> bool:
        provider = entry.provider
        return provider is None or provider.startswith(families)

    def _fine_tune(self, model: str, provider: str | None, ft: bool) -> Resolution | None:
        if ft:
            for prefix in self._ft_overrides:  # an override for a family of fine-tunes
                if model.startswith(prefix):
                    entry = self._entries[prefix]
                    return Resolution(model, entry, entry.origin, "fine-tune")
        for prefix, target in self._fine_tunes:  # configured: name or prefix -> model
            if model.startswith(prefix) and target != model:
                found = self._lookup(target, provider)
                if found is not None:
                    return self._fine_tune_result(model, found.entry)
        base = _fine_tune_base(model)
        if base is None:
            return None
        for candidate in candidates(base, None):  # the table's fine-tune rate: ft:<base>
            entry = self.get(f"ft:{candidate}")
            if entry is not None:
                return Resolution(model, entry, entry.origin, "fine-tune")
        found = self._lookup(base, provider)
        return None if found is None else self._fine_tune_result(model, found.entry)

    @staticmethod
    def _fine_tune_result(model: str, entry: PriceEntry) -> Resolution:
        if entry.origin == OVERRIDE or entry.key.startswith("ft:"):
            return Resolution(model, entry, entry.origin, "fine-tune")
        return Resolution(model, entry, entry.origin + BASE_MODEL_SUFFIX, "fine-tune-base")
