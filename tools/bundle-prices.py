#!/usr/bin/env python3
"""Add a provider's models from LiteLLM's price file to llmtap's bundled price table.

    tools/bundle-prices.py LITELLM_JSON --ref REF --as-of YYYY-MM-DD PROVIDER [PROVIDER ...]

Every token-priced or rerank entry of LITELLM_JSON whose ``litellm_provider`` is one of the
PROVIDERs (or starts with ``<PROVIDER>-``, as ``vertex_ai-language-models`` does) and is not in
the bundled table yet is added, converted as ``llmtap pricing update`` converts a file, with
``source`` = ``litellm model_prices_and_context_window.json@REF``. Entries already bundled
keep their prices. Entries priced at zero for output (local models) are left out: the cost
stage marks them itself; embedding and rerank models (no output to price) are kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmtap.pipeline.pricing._table import OUTPUT, to_table

BUNDLED = Path(__file__).resolve().parent.parent / "src/llmtap/pipeline/pricing/prices.json"


def _selected(entry: dict, providers: tuple[str, ...]) -> bool:
    provider = str(entry.get("litellm_provider", ""))
    if not any(provider == p or provider.startswith(f"{p}-") for p in providers):
        return False
    return entry.get("mode") in ("embedding", "rerank") or (entry.get(OUTPUT) or 0) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("litellm_json", type=Path)
    parser.add_argument("--ref", required=True, help="commit or release of the LiteLLM file")
    parser.add_argument("--as-of", required=True, help="the date the prices were taken")
    parser.add_argument("providers", nargs="+")
    args = parser.parse_args()
    source = json.loads(args.litellm_json.read_text())
    table, problems = to_table(
        source,
        source=f"litellm model_prices_and_context_window.json@{args.ref}",
        as_of=args.as_of,
        file=str(args.litellm_json),
    )
    bundled = json.loads(BUNDLED.read_text())
    added = {
        key: entry
        for key, entry in table.items()
        if key not in bundled and _selected(entry, tuple(args.providers))
    }
    merged = dict(sorted({**bundled, **added}.items()))
    BUNDLED.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
    print(f"{len(added)} entries added, {len(merged)} in the table; {len(problems)} problems")


if __name__ == "__main__":
    main()
