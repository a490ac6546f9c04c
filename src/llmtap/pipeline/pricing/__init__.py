"""Model prices: the table shipped with llmtap, user tables, and the lookup of span models.

Prices use LiteLLM's field names, so LiteLLM's own ``model_prices_and_context_window.json``
(or any file in that shape) can be used as is; see :mod:`._table` for the format and
:mod:`._lookup` for how a model name on a span finds its price. Nothing here touches the
network: the bundled table is package data, read on first use.
"""

from llmtap.pipeline.pricing._lookup import (
    BASE_MODEL_SUFFIX,
    OVERRIDE,
    PriceResolver,
    Resolution,
    candidates,
)
from llmtap.pipeline.pricing._table import (
    CACHE_READ,
    CACHE_READ_LEGACY,
    CACHE_WRITE,
    DATA_DIR_ENV,
    INPUT,
    OUTPUT,
    QUERY,
    QUERY_MODES,
    REASONING,
    TOKEN_MODES,
    PriceEntry,
    PricingFileError,
    Problem,
    check_entry,
    check_table,
    data_dir,
    digest,
    entries_from,
    is_cost_field,
    load_bundled,
    load_file,
    parse_document,
    read_document,
    tier_suffix,
    to_table,
    user_table_path,
)

__all__ = [
    "BASE_MODEL_SUFFIX",
    "CACHE_READ",
    "CACHE_READ_LEGACY",
    "CACHE_WRITE",
    "DATA_DIR_ENV",
    "INPUT",
    "OUTPUT",
    "OVERRIDE",
    "QUERY",
    "QUERY_MODES",
    "REASONING",
    "TOKEN_MODES",
    "PriceEntry",
    "PriceResolver",
    "PricingFileError",
    "Problem",
    "Resolution",
    "candidates",
    "check_entry",
    "check_table",
    "data_dir",
    "digest",
    "entries_from",
    "is_cost_field",
    "load_bundled",
    "load_file",
    "parse_document",
    "read_document",
    "tier_suffix",
    "to_table",
    "user_table_path",
]
