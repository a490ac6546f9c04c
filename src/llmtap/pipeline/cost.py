"""The cost stage: what each GenAI call cost, on the span and as a metric.

For a span with a model and token usage (or rerank search units), the stage finds the model's
price (see :mod:`llmtap.pipeline.pricing`) and sets:

* ``llmtap.cost.total``: the total in USD (a destination whose backend reads
  ``gen_ai.usage.cost``, as Langfuse and OpenLIT do, gets that name too at export: the
  ``cost_alias`` translation, :mod:`llmtap.export.translations`);
* ``llmtap.cost.input`` (uncached input), ``llmtap.cost.cached_input`` (cache reads),
  ``llmtap.cost.cache_write`` (cache creation), ``llmtap.cost.output`` (output other than
  reasoning), ``llmtap.cost.reasoning``, ``llmtap.cost.currency`` (``USD``);
* ``llmtap.cost.price_source``: the table the price came from (``bundled:<as_of>``,
  ``file:<name>``, ``override``; ``+base-model`` when a fine-tune is priced at its base
  model's rate) and ``llmtap.cost.price_model``: the table entry used;
* ``llmtap.cost.estimated``: true when the token counts were estimated
  (``llmtap.usage.estimated``): the cost is then as good as the estimate, and is kept,
  because an estimated cost is more useful than none.

Token accounting follows the GenAI conventions: ``gen_ai.usage.input_tokens`` includes
cache reads and cache writes, ``gen_ai.usage.output_tokens`` includes reasoning tokens.
So uncached input = input - cache read - cache write, priced at ``input_cost_per_token``;
cache reads at ``cache_read_input_token_cost`` (else the input rate), cache writes at
``cache_creation_input_token_cost`` (else the input rate), reasoning at
``output_cost_per_reasoning_token`` (else the output rate), the rest of the output at
``output_cost_per_token``; nothing is counted twice. (When cache reads and writes exceed
the input count, the sender counted them apart, as Anthropic's API does: the input count
is then taken as the uncached part.) A prompt longer than a tier's threshold
(``*_above_Nk_tokens``) is priced at that tier's rates as a whole, as the providers bill.
``openai.response.service_tier`` ``priority``/``flex`` selects ``*_priority``/``*_flex``
rates where the table has them. Embeddings are priced on input only. A rerank call billed in
search units (``llmtap.usage.search_units``, Cohere's ``meta.billed_units.search_units``) is
priced per search at the model's ``input_cost_per_query`` (LiteLLM's field for rerank
models), all of it as ``llmtap.cost.input``.

Models of local providers (:data:`LOCAL_PROVIDERS`: ``ollama``) run on the user's own
hardware: they cost 0 with ``llmtap.cost.price_source`` ``local`` (the price model is the
span's model), unless ``pricing.overrides`` prices the model (the override wins); table
entries (bundled or a file) are not used for them, since a local model's name may also be
the name of a hosted model with a price.

Any other unknown model is never costed at $0: the span gets ``llmtap.cost.unknown_model`` and no
cost attributes, the ``llmtap.cost.unpriced`` counter goes up, and the model is kept in an
in-process registry (:func:`unpriced_models`). A span that already carries a total,
``llmtap.cost.total`` or ``gen_ai.usage.cost`` (costed here before, by an older llmtap, or
by another SDK such as OpenLIT), is left alone; :func:`cost_total` reads either.

Metric ``llmtap.cost`` (USD) counts spend by ``gen_ai.provider.name``,
``gen_ai.request.model`` (else the response model) and ``llmtap.feature``; after
``max_series`` distinct attribute sets, new models and features are counted as ``other``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from llmtap import semconv
from llmtap.diagnostics import Once, did_you_mean, warn_once
from llmtap.pipeline.pricing import (
    CACHE_READ,
    CACHE_READ_LEGACY,
    CACHE_WRITE,
    INPUT,
    OUTPUT,
    OVERRIDE,
    QUERY,
    QUERY_MODES,
    REASONING,
    PriceEntry,
    PriceResolver,
    PricingFileError,
    Resolution,
    load_file,
    tier_suffix,
    user_table_path,
)
from llmtap.pipeline.span import SpanData, Stage, StageMarks

_log = logging.getLogger("llmtap")

# Attribute names (llmtap.* ones to be registered in semconv/) -----------------------------
COST_TOTAL: Final = semconv.LLMTAP_COST_TOTAL
#: every name a cost total is read under, the preferred one first
COST_TOTAL_NAMES: Final = semconv.COST_TOTAL_NAMES
COST_INPUT: Final = semconv.LLMTAP_COST_INPUT
COST_CACHED_INPUT: Final = semconv.LLMTAP_COST_CACHED_INPUT
COST_CACHE_WRITE: Final = semconv.LLMTAP_COST_CACHE_WRITE
COST_OUTPUT: Final = semconv.LLMTAP_COST_OUTPUT
COST_REASONING: Final = semconv.LLMTAP_COST_REASONING
COST_CURRENCY: Final = semconv.LLMTAP_COST_CURRENCY
COST_PRICE_SOURCE: Final = semconv.LLMTAP_COST_PRICE_SOURCE
COST_PRICE_MODEL: Final = semconv.LLMTAP_COST_PRICE_MODEL
COST_UNKNOWN_MODEL: Final = semconv.LLMTAP_COST_UNKNOWN_MODEL
COST_ESTIMATED: Final = semconv.LLMTAP_COST_ESTIMATED
METRIC_COST: Final = semconv.METRIC_LLMTAP_COST
METRIC_UNPRICED: Final = semconv.METRIC_LLMTAP_COST_UNPRICED

#: gen_ai.provider.name values of providers whose models run locally: priced at 0 (price
#: source ``local``) unless ``pricing.overrides`` prices the model
LOCAL_PROVIDERS: Final = frozenset({"ollama"})
LOCAL_PRICE_SOURCE: Final = "local"

PRICING_FILE_ENV: Final = "LLMTAP_PRICING_FILE"
CURRENCY: Final = "USD"
OTHER: Final = "other"
#: decimals kept on costs: far below a cent, above float noise
PRECISION: Final = 12

_PRICE_FIELD = re.compile(
    r"^(?:input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|"
    r"cache_creation_input_token_cost|output_cost_per_reasoning_token|"
    r"input_cost_per_token_cache_hit|input_cost_per_query)(?:_above_\d+(?:\.\d+)?k_tokens)?(?:_priority|_flex)?$"
)
_DESCRIPTIVE_FIELDS = ("litellm_provider", "mode", "source", "as_of")
_EXAMPLE_FIELDS = (
    INPUT,
    OUTPUT,
    CACHE_READ,
    CACHE_WRITE,
    REASONING,
    QUERY,
    "input_cost_per_token_above_200k_tokens",
    "output_cost_per_token_above_200k_tokens",
    *_DESCRIPTIVE_FIELDS,
)
_SERVICE_TIERS = ("priority", "flex")


@dataclass
class PricingConfig:
    """The ``pricing:`` section of ``llmtap.yaml``.

    ``overrides``: model name -> LiteLLM price fields (dollars per token;
    ``input_cost_per_query``: dollars per rerank search), laid over the
    bundled/file entry of that name or added as a new model; an ``ft:`` name also prices
    the fine-tunes it is a prefix of. ``file``: a LiteLLM-format JSON table loaded on top of
    the bundled one (``$LLMTAP_PRICING_FILE`` wins; without either, the table written by
    ``llmtap pricing update`` is used when there is one). ``deployments``: Azure deployment
    name -> model. ``fine_tunes``: fine-tune name or name prefix -> the model whose price it
    has.
    """

    enabled: bool = True
    """false turns the cost stage off: spans get no llmtap.cost.total"""
    overrides: dict[str, dict[str, float | str]] = field(default_factory=dict)
    """model name: LiteLLM price fields in dollars per token (input_cost_per_query: per rerank
    search), laid over that model's entry or added as a new model (an ft: name also prices the
    fine-tunes it prefixes)"""
    file: str | None = None
    """a LiteLLM-format JSON price table loaded over the bundled one, relative to this file's folder
    ($LLMTAP_PRICING_FILE wins; unset: the table llmtap pricing update wrote, if any)"""
    deployments: dict[str, str] = field(default_factory=dict)
    """Azure deployment name: the model it runs, for its price"""
    fine_tunes: dict[str, str] = field(default_factory=dict)
    """fine-tune name or name prefix: the model whose price it has"""

    def __post_init__(self) -> None:
        errors: list[str] = []
        overrides: dict[str, dict[str, float | str]] = {}
        for model, fields in (self.overrides or {}).items():
            if not isinstance(fields, Mapping):
                errors.append(
                    f"overrides.{model}: expected a mapping of price fields such as "
                    f"{INPUT}, got {fields!r}"
                )
                continue
            overrides[model] = _check_override(model, fields, errors)
        self.overrides = overrides
        for section in ("deployments", "fine_tunes"):
            for name, target in (getattr(self, section) or {}).items():
                if not isinstance(target, str) or not target.strip():
                    errors.append(f"{section}.{name}: expected a model name, got {target!r}")
        if self.file is not None and not str(self.file).strip():
            errors.append("file: is empty")
        if errors:
            raise ValueError("\n".join(errors))


def is_price_field(name: str) -> bool:
    """A LiteLLM per-token price field this stage uses (with tier and service suffixes)."""
    return bool(_PRICE_FIELD.match(name))


def _check_override(model: str, fields: Mapping[str, Any], errors: list[str]) -> dict:
    out: dict[str, float | str] = {}
    for name, value in fields.items():
        where = f"overrides.{model}.{name}"
        if isinstance(name, str) and _PRICE_FIELD.match(name):
            number = _as_price(value)
            if number is None:
                unit = "search" if name == QUERY else "token"
                errors.append(
                    f"{where}: expected a price in dollars per {unit} (a number of 0 "
                    f"or more), got {value!r}"
                )
            else:
                out[name] = number
        elif name in _DESCRIPTIVE_FIELDS:
            if not isinstance(value, str):
                errors.append(f"{where}: expected a string, got {value!r}")
            else:
                out[name] = value
        else:
            hint = did_you_mean(str(name), _EXAMPLE_FIELDS, quoted=False)
            errors.append(
                f"{where}: not a price field{hint}; use LiteLLM's names: {INPUT}, {OUTPUT}, "
                f"{CACHE_READ}, {CACHE_WRITE}, {REASONING}, {QUERY} (rerank, per search), "
                "*_above_<N>k_tokens tiers"
            )
    return out


def _as_price(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


# Cost arithmetic ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class CostBreakdown:
    input: float
    cached_input: float
    cache_write: float
    output: float
    reasoning: float
    total: float
    #: the prompt-size threshold whose rates applied (tokens), if any
    tier: int | None = None
    service_tier: str | None = None


def compute_cost(
    entry: PriceEntry,
    usage: Usage,
    *,
    embedding: bool = False,
    service_tier: str | None = None,
) -> CostBreakdown:
    """The cost of ``usage`` at ``entry``'s prices (see the module doc for the rules)."""
    cached = max(usage.cache_read_tokens, 0)
    written = max(usage.cache_creation_tokens, 0)
    prompt = max(usage.input_tokens, 0)
    if cached + written > prompt:  # counted apart from the input: input is uncached only
        uncached = prompt
        prompt += cached + written
    else:
        uncached = prompt - cached - written
    tier = next((t for t in entry.tiers if prompt > t), None)
    svc = service_tier if service_tier in _SERVICE_TIERS else None
    rates = _rates(entry, tier, svc)
    if embedding:
        parts = (prompt * rates.input, 0.0, 0.0, 0.0, 0.0)
    else:
        output = max(usage.output_tokens, 0)
        reasoning = min(max(usage.reasoning_tokens, 0), output)
        parts = (
            uncached * rates.input,
            cached * rates.cache_read,
            written * rates.cache_write,
            (output - reasoning) * rates.output,
            reasoning * rates.reasoning,
        )
    rounded = [round(p, PRECISION) for p in parts]
    return CostBreakdown(*rounded, round(sum(parts), PRECISION), tier, svc)


def _per_search(entry: PriceEntry) -> float | None:
    """The price of one search of a model billed per search (a rerank model, or an entry
    with a per-search price and no token price), else None."""
    if entry.mode in QUERY_MODES or entry.rate(INPUT) is None:
        return entry.rate(QUERY)
    return None


def search_cost(per_search: float, searches: int) -> CostBreakdown:
    """The cost of a rerank call billed in search units, all of it input."""
    total = round(max(searches, 0) * per_search, PRECISION)
    return CostBreakdown(total, 0.0, 0.0, 0.0, 0.0, total)


class _Rates(NamedTuple):
    input: float
    cache_read: float
    cache_write: float
    output: float
    reasoning: float


@functools.lru_cache(maxsize=4096)
def _rates(entry: PriceEntry, tier: int | None, svc: str | None) -> _Rates:
    """Per-token rates for a prompt-size tier and service tier, with the fallbacks: a tier's
    (and service tier's) own field, else the plain field; cache reads and writes at the
    input rate, reasoning at the output rate when the entry has no rate of their own."""

    def rate(name: str) -> float | None:
        names = []
        if tier is not None:
            if svc:
                names.append(f"{name}{tier_suffix(tier)}_{svc}")
            names.append(name + tier_suffix(tier))
        if svc:
            names.append(f"{name}_{svc}")
        names.append(name)
        for candidate in names:
            value = entry.rate(candidate)
            if value is not None:
                return value
        return None

    input_rate = _first(rate(INPUT), 0.0)
    output_rate = _first(rate(OUTPUT), 0.0)
    return _Rates(
        input_rate,
        _first(rate(CACHE_READ), rate(CACHE_READ_LEGACY), input_rate),
        _first(rate(CACHE_WRITE), input_rate),
        output_rate,
        _first(rate(REASONING), output_rate),
    )


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return value
    return 0.0


# Resolver from configuration ---------------------------------------------------------------


def pricing_file(config: PricingConfig | None, env: Mapping[str, str] | None = None) -> str | None:
    """The user table to load: ``$LLMTAP_PRICING_FILE``, else ``pricing.file``, else the
    table ``llmtap pricing update`` wrote (when it exists)."""
    env = os.environ if env is None else env
    named = (env.get(PRICING_FILE_ENV) or "").strip()
    if named:
        return os.path.expanduser(named)
    if config is not None and config.file:
        return os.path.expanduser(config.file)
    default = user_table_path(env)
    return str(default) if default.is_file() else None


def build_resolver(
    config: PricingConfig | None = None, env: Mapping[str, str] | None = None
) -> PriceResolver:
    """Bundled prices + the user's table + the configured overrides and mappings. A table
    that cannot be read is reported and left out (the bundled prices still apply)."""
    config = config if config is not None else PricingConfig()
    path = pricing_file(config, env)
    file_entries = None
    if path:
        try:
            file_entries = load_file(path)
        except PricingFileError as exc:
            _log.warning("llmtap pricing: %s; using the bundled prices", exc)
            path = None
    resolver = PriceResolver(
        file_entries=file_entries,
        overrides=config.overrides,
        deployments=config.deployments,
        fine_tunes=config.fine_tunes,
        file_name=path,
    )
    for key, entry in resolver.entries.items():
        if entry.origin == "override" and entry.rate(INPUT) is None and entry.rate(QUERY) is None:
            _log.warning(
                "llmtap pricing: override %r has no %s and is not a known model; spans of "
                "it are priced with input at 0",
                key,
                INPUT,
            )
    return resolver


# Unpriced models, process-wide ------------------------------------------------------------

_UNPRICED_LIMIT = 1000
_unpriced: dict[tuple[str, str], dict[str, Any]] = {}
_unpriced_lock = threading.Lock()


def _note_unpriced(provider: str | None, model: str) -> bool:
    """Count a span of an unpriced model; True the first time the model is seen."""
    key = (provider or "", model)
    now = time.time()
    with _unpriced_lock:
        seen = _unpriced.get(key)
        if seen is not None:
            seen["count"] += 1
            seen["last_seen"] = now
            return False
        if len(_unpriced) >= _UNPRICED_LIMIT:
            return False
        _unpriced[key] = {
            "provider": provider,
            "model": model,
            "count": 1,
            "first_seen": now,
            "last_seen": now,
        }
        return True


def unpriced_models() -> list[dict[str, Any]]:
    """Models seen in this process without a price, most frequent first: ``provider``,
    ``model``, ``count`` (spans), ``first_seen``/``last_seen`` (Unix time)."""
    with _unpriced_lock:
        rows = [dict(row) for row in _unpriced.values()]
    return sorted(rows, key=lambda r: (-r["count"], r["model"], r["provider"] or ""))


def reset_unpriced_models() -> None:
    with _unpriced_lock:
        _unpriced.clear()


# The stage --------------------------------------------------------------------------------


class _Capped:
    """Attribute sets of one instrument, at most ``limit`` distinct ones."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()

    def admit(self, key: tuple) -> bool:
        with self._lock:
            if key in self._seen:
                return True
            if len(self._seen) >= self.limit:
                return False
            self._seen.add(key)
            return True


class CostStage(Stage):
    """Stage ``cost``: prices GenAI spans (see the module doc). Idempotent."""

    name = "cost"

    def __init__(
        self,
        config: PricingConfig | None = None,
        meter_provider: Any = None,
        *,
        resolver: PriceResolver | None = None,
        max_series: int = 500,
        max_unpriced_series: int = 200,
    ) -> None:
        self.config = config if config is not None else PricingConfig()
        self._resolver = resolver
        self._resolver_lock = threading.Lock()
        if meter_provider is None:
            from opentelemetry import metrics

            meter_provider = metrics.get_meter_provider()
        from llmtap.version import __version__

        meter = meter_provider.get_meter("llmtap", __version__)
        self._cost_counter = meter.create_counter(
            METRIC_COST, unit=CURRENCY, description="Cost of GenAI calls, in USD"
        )
        self._unpriced_counter = meter.create_counter(
            METRIC_UNPRICED,
            unit="{span}",
            description="GenAI spans whose model has no price",
        )
        self._series = _Capped(max_series)
        self._unpriced_series = _Capped(max_unpriced_series)
        self._once = Once()

    @property
    def resolver(self) -> PriceResolver:
        """The price lookup, built (and the tables read) on first use."""
        if self._resolver is None:
            with self._resolver_lock:
                if self._resolver is None:
                    self._resolver = build_resolver(self.config)
        return self._resolver

    def marks(self) -> StageMarks:
        """A priced span carries the cost; a span without token counts has nothing to price."""
        if not self.config.enabled:
            return StageMarks(needs=())
        return StageMarks(
            done=COST_TOTAL_NAMES,
            needs=(
                semconv.USAGE_INPUT_TOKENS,
                semconv.USAGE_OUTPUT_TOKENS,
                semconv.LLMTAP_USAGE_SEARCH_UNITS,
            ),
        )

    def apply(self, span: SpanData) -> None:
        if not self.config.enabled:
            return
        try:
            self._apply(span)
        except Exception:  # never break the export path
            message = "llmtap: the cost stage failed on a span"
            if not warn_once(_log, "failed", message, exc_info=sys.exc_info()[1], once=self._once):
                _log.debug(message, exc_info=True)

    def _apply(self, span: SpanData) -> None:
        attrs = span.attributes
        if attrs.get(COST_UNKNOWN_MODEL) is True or any(k in attrs for k in COST_TOTAL_NAMES):
            return
        usage = usage_of(attrs)
        searches = _count(attrs.get(semconv.LLMTAP_USAGE_SEARCH_UNITS))
        if usage is None and searches is None:
            return
        response_model = _text(attrs.get(semconv.RESPONSE_MODEL))
        request_model = _text(attrs.get(semconv.REQUEST_MODEL))
        models = [m for m in dict.fromkeys((response_model, request_model)) if m]
        if not models:
            return
        provider = _text(attrs.get(semconv.PROVIDER))
        if provider in LOCAL_PROVIDERS:
            resolution = self._local(models)
        else:
            resolution = None
            for model in models:
                resolution = self.resolver.resolve(model, provider)
                if resolution is not None:
                    break
        if resolution is None:
            self._unpriced(attrs, provider, models[0])
            return
        entry = resolution.entry
        per_search = _per_search(entry)
        if per_search is not None and searches is not None:
            cost = search_cost(per_search, searches)
        elif per_search is not None or usage is None:  # the price and the usage do not meet
            self._unpriced(attrs, provider, models[0])
            return
        else:
            embedding = (
                attrs.get(semconv.OPERATION) == semconv.OP_EMBEDDINGS or entry.mode == "embedding"
            )
            service_tier = _text(attrs.get(semconv.OPENAI_RESPONSE_SERVICE_TIER)) or _text(
                attrs.get(semconv.OPENAI_REQUEST_SERVICE_TIER)
            )
            cost = compute_cost(entry, usage, embedding=embedding, service_tier=service_tier)
        attrs[COST_TOTAL] = cost.total
        attrs[COST_INPUT] = cost.input
        attrs[COST_CACHED_INPUT] = cost.cached_input
        attrs[COST_CACHE_WRITE] = cost.cache_write
        attrs[COST_OUTPUT] = cost.output
        attrs[COST_REASONING] = cost.reasoning
        attrs[COST_CURRENCY] = CURRENCY
        attrs[COST_PRICE_SOURCE] = resolution.price_source
        attrs[COST_PRICE_MODEL] = resolution.key
        if attrs.get(semconv.LLMTAP_USAGE_ESTIMATED) is True:
            attrs[COST_ESTIMATED] = True
        if cost.total > 0:
            self._record(cost.total, provider, request_model or response_model, attrs)

    def _local(self, models: list[str]) -> Resolution:
        """A local model's price: the user's override if there is one, else zero."""
        for model in models:
            found = self.resolver.resolve(model, None)
            if found is not None and found.price_source == OVERRIDE:
                return found
        return _local(models[0])

    def _record(self, total: float, provider: str | None, model: str | None, attrs: dict) -> None:
        feature = _text(attrs.get(semconv.LLMTAP_FEATURE))
        key = (provider, model, feature)
        if not self._series.admit(key):
            key = (provider, OTHER if model else None, OTHER if feature else None)
        self._cost_counter.add(total, _metric_attributes(*key))

    def _unpriced(self, attrs: dict, provider: str | None, model: str) -> None:
        attrs[COST_UNKNOWN_MODEL] = True
        if _note_unpriced(provider, model):
            _log.warning(
                "llmtap: no price for model %r (provider %s); its spans get %s and no cost. "
                "Add it under pricing.overrides in llmtap.yaml, or refresh the table with "
                "`llmtap pricing update`",
                model,
                provider or "unknown",
                COST_UNKNOWN_MODEL,
            )
        key = (provider, model)
        if not self._unpriced_series.admit(key):
            key = (provider, OTHER)
        self._unpriced_counter.add(1, _metric_attributes(key[0], key[1], None))


def _local(model: str) -> Resolution:
    """A local provider's model, at zero price (see the module doc)."""
    fields = MappingProxyType({INPUT: 0.0, OUTPUT: 0.0, "source": LOCAL_PRICE_SOURCE})
    entry = PriceEntry(model, fields, LOCAL_PRICE_SOURCE)
    return Resolution(model, entry, LOCAL_PRICE_SOURCE, LOCAL_PRICE_SOURCE)


def _metric_attributes(provider: str | None, model: str | None, feature: str | None) -> dict:
    out = {}
    if provider:
        out[semconv.PROVIDER] = provider
    if model:
        out[semconv.REQUEST_MODEL] = model
    if feature:
        out[semconv.LLMTAP_FEATURE] = feature
    return out


def usage_of(attrs: Mapping[str, Any]) -> Usage | None:
    """Token counts of a span; None when it reports neither input nor output tokens."""
    input_tokens = _count(attrs.get(semconv.USAGE_INPUT_TOKENS))
    output_tokens = _count(attrs.get(semconv.USAGE_OUTPUT_TOKENS))
    if input_tokens is None and output_tokens is None:
        return None
    return Usage(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        cache_read_tokens=_count(attrs.get(semconv.USAGE_CACHE_READ_INPUT_TOKENS)) or 0,
        cache_creation_tokens=_count(attrs.get(semconv.USAGE_CACHE_CREATION_INPUT_TOKENS)) or 0,
        reasoning_tokens=_count(attrs.get(semconv.USAGE_REASONING_OUTPUT_TOKENS)) or 0,
    )


def cost_total(attrs: Mapping[str, Any]) -> float | None:
    """A span's cost total in USD: ``llmtap.cost.total``, else ``gen_ai.usage.cost`` (spans
    of older llmtap apps and other SDKs); None when neither is a finite number."""
    for key in COST_TOTAL_NAMES:
        value = _amount(attrs.get(key))
        if value is not None:
            return value
    return None


def _amount(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: Any) -> int | None:
    """A token count from an attribute value (ints, floats, numeric strings from OTLP)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return int(value)
    return None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


__all__ = [
    "COST_CACHED_INPUT",
    "COST_CACHE_WRITE",
    "COST_CURRENCY",
    "COST_ESTIMATED",
    "COST_INPUT",
    "COST_OUTPUT",
    "COST_PRICE_MODEL",
    "COST_PRICE_SOURCE",
    "COST_REASONING",
    "COST_TOTAL",
    "COST_TOTAL_NAMES",
    "COST_UNKNOWN_MODEL",
    "CURRENCY",
    "LOCAL_PRICE_SOURCE",
    "LOCAL_PROVIDERS",
    "METRIC_COST",
    "METRIC_UNPRICED",
    "PRICING_FILE_ENV",
    "CostBreakdown",
    "CostStage",
    "PricingConfig",
    "Usage",
    "build_resolver",
    "compute_cost",
    "cost_total",
    "is_price_field",
    "pricing_file",
    "reset_unpriced_models",
    "search_cost",
    "unpriced_models",
    "usage_of",
]
