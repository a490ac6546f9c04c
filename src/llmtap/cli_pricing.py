"""``llmtap pricing``: show, check and update model prices; find unpriced models in spans.

    llmtap pricing show [MODEL] [--provider NAME] [--json]
    llmtap pricing check FILE
    llmtap pricing update --from FILE_OR_URL [--out PATH]
    llmtap pricing unpriced --spans FILE [--json]

``show`` and ``unpriced`` use the same tables as the app: the bundled prices, the user's
table (``--prices``, else ``$LLMTAP_PRICING_FILE``, else ``pricing.file``, else the table
``update`` wrote) and the ``pricing:`` section of ``llmtap.yaml`` (``--config``, else
``$LLMTAP_CONFIG``). ``update`` is the only command that may use the network, and only to
fetch the URL it is given.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from llmtap import semconv
from llmtap.pipeline.cost import (
    COST_TOTAL_NAMES,
    COST_UNKNOWN_MODEL,
    PRICING_FILE_ENV,
    PricingConfig,
    build_resolver,
    is_price_field,
    usage_of,
)
from llmtap.pipeline.pricing import (
    QUERY,
    PriceResolver,
    PricingFileError,
    check_table,
    digest,
    parse_document,
    read_document,
    to_table,
    user_table_path,
)

MAX_DOWNLOAD = 64 * 1024 * 1024
_PRICE_ORDER = (
    "input_cost_per_token",
    "cache_read_input_token_cost",
    "input_cost_per_token_cache_hit",
    "cache_creation_input_token_cost",
    "output_cost_per_token",
    "output_cost_per_reasoning_token",
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``pricing`` to the ``llmtap`` command; ``args.handler(args)`` runs it."""
    parser = subparsers.add_parser(
        "pricing",
        help="show, check and update model prices",
        description=__doc__.split("\n\n")[0],
    )
    _configure(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmtap pricing", description=__doc__.split("\n\n")[0])
    _configure(parser)
    args = parser.parse_args(argv)
    return handle(args)


def _configure(parser: argparse.ArgumentParser) -> None:
    tables = argparse.ArgumentParser(add_help=False)
    tables.add_argument(
        "--config", metavar="FILE", help="llmtap.yaml to read pricing: from ($LLMTAP_CONFIG)"
    )
    tables.add_argument(
        "--prices",
        metavar="FILE",
        help=f"a price table on top of the bundled one (${PRICING_FILE_ENV}, pricing.file, "
        "or the table `update` wrote)",
    )
    sub = parser.add_subparsers(dest="pricing_command", metavar="COMMAND", required=True)
    show = sub.add_parser(
        "show", parents=[tables], help="a model's price and its source, or the tables' summary"
    )
    show.add_argument("model", nargs="?", help="model name as on spans (gen_ai.*.model)")
    show.add_argument("--provider", help="gen_ai.provider.name, e.g. azure.ai.openai")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    check = sub.add_parser("check", help="validate a LiteLLM-format price file")
    check.add_argument("file", metavar="FILE")
    update = sub.add_parser(
        "update", help="install a LiteLLM-format price table from a file or URL"
    )
    update.add_argument("--from", dest="source", required=True, metavar="FILE_OR_URL")
    update.add_argument(
        "--out", metavar="PATH", help=f"where to write (default {user_table_path()})"
    )
    update.add_argument("--timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    unpriced = sub.add_parser(
        "unpriced", parents=[tables], help="models without a price in an OTLP JSON-lines file"
    )
    unpriced.add_argument("--spans", required=True, metavar="FILE")
    unpriced.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def handle(
    args: argparse.Namespace,
    *,
    config: PricingConfig | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run a parsed ``pricing`` command; ``config`` (else llmtap.yaml) gives overrides."""
    out = out or sys.stdout
    err = err or sys.stderr
    command = args.pricing_command
    try:
        if command == "check":
            return _check(args.file, out, err)
        if command == "update":
            return _update(args.source, args.out, args.timeout, out, err)
        resolver = _resolver(args, config)
        if command == "show":
            return _show(resolver, args.model, args.provider, args.json, out)
        return _unpriced(resolver, args.spans, args.json, out, err)
    except _Failure as exc:
        print(f"llmtap pricing {command}: error: {exc}", file=err)
        return exc.code


class _Failure(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _resolver(args: argparse.Namespace, config: PricingConfig | None) -> PriceResolver:
    if config is None:
        config = _config_from_file(getattr(args, "config", None))
    env = dict(os.environ)
    if getattr(args, "prices", None):
        if not os.path.isfile(args.prices):
            raise _Failure(f"{args.prices}: no such file")
        env[PRICING_FILE_ENV] = args.prices
    try:
        return build_resolver(config, env)
    except PricingFileError as exc:
        raise _Failure(str(exc)) from None


def _config_from_file(path: str | None) -> PricingConfig | None:
    if path is None and not os.environ.get("LLMTAP_CONFIG", "").strip():
        return None
    try:
        from llmtap.config_file import load_config
    except ImportError:  # pragma: no cover - the config loader ships with llmtap
        return None
    try:
        cfg = load_config(path)
    except ValueError as exc:  # ConfigError: file, line, key, expected
        raise _Failure(str(exc)) from None
    pricing = getattr(cfg, "pricing", None)
    return pricing if isinstance(pricing, PricingConfig) else None


# show ---------------------------------------------------------------------------------------


def _show(
    resolver: PriceResolver, model: str | None, provider: str | None, as_json: bool, out: TextIO
) -> int:
    if model is None:
        return _summary(resolver, as_json, out)
    found = resolver.resolve(model, provider)
    if found is None:
        if as_json:
            print(json.dumps({"model": model, "provider": provider, "price": None}), file=out)
        else:
            print(
                f"No price for {model!r}{f' (provider {provider})' if provider else ''}.\n"
                "Add it under pricing.overrides in llmtap.yaml, or install a newer table with "
                "`llmtap pricing update --from FILE_OR_URL`.",
                file=out,
            )
        return 1
    entry = found.entry
    if as_json:
        print(
            json.dumps(
                {
                    "model": model,
                    "provider": provider,
                    "price_model": entry.key,
                    "price_source": found.price_source,
                    "match": found.match,
                    "price": dict(entry.fields),
                },
                indent=2,
            ),
            file=out,
        )
        return 0
    lines = [
        f"{model}{f' (provider {provider})' if provider else ''}",
        f"  price entry   {entry.key} ({found.match})",
        f"  price source  {found.price_source}",
    ]
    if entry.source:
        lines.append(f"  taken from    {entry.source}")
    if entry.as_of:
        lines.append(f"  as of         {entry.as_of}")
    lines.append(f"  provider      {entry.provider or '-'}, mode {entry.mode or '-'}")
    fields = _price_fields(entry.fields)
    per_token = [n for n in fields if n != QUERY]
    if per_token:
        lines.append("  USD per 1M tokens:")
        for name in per_token:
            lines.append(f"    {name:<52} {_per_million(entry.fields[name])}")
    if QUERY in fields:
        lines.append("  USD per search (rerank: one query with its documents):")
        lines.append(f"    {QUERY:<52} ${entry.fields[QUERY]:.6g}")
    print("\n".join(lines), file=out)
    return 0


def _price_fields(fields: Mapping[str, Any]) -> list[str]:
    names = [n for n in fields if is_price_field(n)]

    def order(name: str) -> tuple[int, str]:
        for i, base in enumerate(_PRICE_ORDER):
            if name.startswith(base):
                return i, name
        return len(_PRICE_ORDER), name

    return sorted(names, key=order)


def _per_million(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return repr(value)
    return f"${value * 1_000_000:.6g}"


def _summary(resolver: PriceResolver, as_json: bool, out: TextIO) -> int:
    entries = resolver.entries
    by_origin = Counter(e.origin.split(":", 1)[0] for e in entries.values())
    by_provider = Counter(e.provider or "-" for e in entries.values())
    sources = Counter(e.source for e in entries.values() if e.origin.startswith("bundled"))
    dates = sorted({e.as_of for e in entries.values() if e.as_of})
    if as_json:
        print(
            json.dumps(
                {
                    "models": len(entries),
                    "bundled": resolver.bundled_count,
                    "file": resolver.file_name,
                    "file_models": resolver.file_count,
                    "overrides": resolver.override_count,
                    "by_origin": dict(by_origin),
                    "by_provider": dict(by_provider.most_common()),
                    "bundled_sources": dict(sources),
                },
                indent=2,
            ),
            file=out,
        )
        return 0
    lines = [f"{len(entries)} models priced (later tables win):"]
    lines.append(f"  bundled     {resolver.bundled_count:>4} models")
    for source, count in sources.most_common():
        lines.append(f"              {count:>4} from {source}")
    if dates:
        span = dates[0] if len(dates) == 1 else f"{dates[0]} .. {dates[-1]}"
        lines.append(f"              prices as of {span}")
    if resolver.file_name:
        lines.append(f"  file        {resolver.file_count:>4} models from {resolver.file_name}")
    else:
        lines.append("  file           - (none; `llmtap pricing update` installs one)")
    lines.append(f"  overrides   {resolver.override_count:>4} (pricing.overrides)")
    lines.append("by litellm_provider:")
    for provider, count in by_provider.most_common():
        lines.append(f"  {provider:<28} {count:>4}")
    lines.append("A model's price: llmtap pricing show MODEL [--provider NAME]")
    print("\n".join(lines), file=out)
    return 0


# check --------------------------------------------------------------------------------------


def _check(path: str, out: TextIO, err: TextIO) -> int:
    try:
        data = read_document(path)
    except PricingFileError as exc:
        raise _Failure(str(exc)) from None
    problems = check_table(data, path)
    errors = [p for p in problems if p.level == "error"]
    warnings = [p for p in problems if p.level != "error"]
    for problem in errors + warnings:
        print(str(problem), file=out)
    if isinstance(data, Mapping):
        table, _ = to_table(data, source="check", as_of="-", file=path)
        models = sum(1 for k in data if k != "sample_spec")
        print(
            f"{path}: {models} entries, {len(table)} priced per token; "
            f"{len(errors)} errors, {len(warnings)} warnings",
            file=out,
        )
    return 1 if errors else 0


# update -------------------------------------------------------------------------------------


def _update(source: str, out_path: str | None, timeout: float, out: TextIO, err: TextIO) -> int:
    raw = _fetch(source, timeout)
    try:
        data = parse_document(raw.decode("utf-8-sig"), source)
    except UnicodeDecodeError as exc:
        raise _Failure(f"{source}: not UTF-8 text ({exc.reason})") from None
    except PricingFileError as exc:
        raise _Failure(str(exc)) from None
    if not isinstance(data, Mapping):
        raise _Failure(str(check_table(data, source)[0]))
    today = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    label = f"{source} sha256:{digest(raw)}"
    table, problems = to_table(data, source=label, as_of=today, file=source)
    errors = [p for p in problems if p.level == "error"]
    for problem in errors:
        print(f"skipped: {problem}", file=err)
    if not table:
        raise _Failure(f"{source}: no entries with usable token prices; nothing written", 1)
    target = out_path or str(user_table_path())
    if os.path.isdir(target):
        raise _Failure(f"{target}: is a directory; give a file name with --out")
    _write_atomic(target, json.dumps(table, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(table)} model prices to {target}", file=out)
    print(f"  from {label}, as of {today}", file=out)
    if errors:
        print(f"  {len(errors)} problems in entries that were skipped (see above)", file=out)
    if out_path is None:
        print(
            f"  llmtap uses it from now on (unless ${PRICING_FILE_ENV} or pricing.file names "
            "another table)",
            file=out,
        )
    else:
        print(f"  use it with {PRICING_FILE_ENV}={target} or pricing.file: {target}", file=out)
    return 0


def _fetch(source: str, timeout: float) -> bytes:
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"User-Agent": "llmtap-pricing"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = response.read(MAX_DOWNLOAD + 1)
        except urllib.error.HTTPError as exc:
            raise _Failure(f"{source}: the server answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Failure(f"{source}: cannot be fetched: {reason}") from None
        if len(data) > MAX_DOWNLOAD:
            raise _Failure(f"{source}: larger than {MAX_DOWNLOAD // (1024 * 1024)} MiB")
        return data
    try:
        with open(source, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise _Failure(f"{source}: no such file") from None
    except OSError as exc:
        raise _Failure(f"{source}: cannot be read: {exc.strerror or exc}") from None


def _write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".prices-", suffix=".json", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise _Failure(f"{path}: cannot be written: {exc.strerror or exc}") from None


# unpriced -----------------------------------------------------------------------------------


def _unpriced(resolver: PriceResolver, path: str, as_json: bool, out: TextIO, err: TextIO) -> int:
    seen = Counter()
    now_priced = 0
    genai = 0
    bad_lines = 0
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                request = _request(line, f"{path}:{number}", err)
                if request is None:
                    bad_lines += 1
                    continue
                for attrs in _spans(request):
                    state = _price_state(resolver, attrs)
                    if state is None:
                        continue
                    genai += 1
                    if isinstance(state, tuple):
                        seen[state] += 1
                    elif state == "now-priced":
                        now_priced += 1
    except FileNotFoundError:
        raise _Failure(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _Failure(f"{path}: cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    rows = [
        {"provider": p or None, "model": m, "spans": n}
        for (p, m), n in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0]))
    ]
    if as_json:
        print(
            json.dumps(
                {"file": path, "genai_spans": genai, "unpriced": rows, "now_priced": now_priced},
                indent=2,
            ),
            file=out,
        )
    elif rows:
        print(f"{len(rows)} models without a price in {path} ({genai} GenAI spans):", file=out)
        print(f"  {'spans':>6}  {'provider':<20} model", file=out)
        for row in rows:
            print(f"  {row['spans']:>6}  {row['provider'] or '-':<20} {row['model']}", file=out)
        print(
            "Price them under pricing.overrides in llmtap.yaml, or install a newer table with "
            "`llmtap pricing update --from FILE_OR_URL`.",
            file=out,
        )
    else:
        print(f"Every GenAI span in {path} has a price ({genai} spans).", file=out)
    if now_priced and not as_json:
        print(f"({now_priced} spans were recorded without a price but have one now.)", file=out)
    return 1 if bad_lines else 0


def _request(line: str, where: str, err: TextIO) -> Mapping[str, Any] | None:
    try:
        request = json.loads(line)
    except json.JSONDecodeError as exc:
        print(f"{where}: skipped: not valid JSON ({exc.msg})", file=err)
        return None
    if not isinstance(request, Mapping):
        print(f"{where}: skipped: expected an OTLP ExportTraceServiceRequest object", file=err)
        return None
    return request


def _price_state(resolver: PriceResolver, attrs: Mapping[str, Any]) -> Any:
    """None: not a GenAI span with usage; "priced"/"now-priced"; or (provider, model)."""
    if usage_of(attrs) is None and semconv.LLMTAP_USAGE_SEARCH_UNITS not in attrs:
        return None
    models = [
        m
        for m in (attrs.get(semconv.RESPONSE_MODEL), attrs.get(semconv.REQUEST_MODEL))
        if isinstance(m, str) and m.strip()
    ]
    if not models:
        return None
    if any(key in attrs for key in COST_TOTAL_NAMES):
        return "priced"
    provider = attrs.get(semconv.PROVIDER)
    provider = provider if isinstance(provider, str) else None
    if any(resolver.resolve(m, provider) for m in models):
        return "now-priced" if attrs.get(COST_UNKNOWN_MODEL) is True else "priced"
    return (provider or "", models[0])


def _spans(request: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Attribute dicts of the spans of one OTLP JSON ExportTraceServiceRequest."""
    for resource_spans in _get(request, "resourceSpans") or ():
        for scope_spans in _get(resource_spans, "scopeSpans") or ():
            for span in _get(scope_spans, "spans") or ():
                if isinstance(span, Mapping):
                    yield _attributes(_get(span, "attributes") or ())


def _get(obj: Any, camel: str) -> Any:
    if not isinstance(obj, Mapping):
        return None
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake)


def _attributes(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("key"), str):
            out[item["key"]] = _value(item.get("value"))
    return out


def _value(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return None
    for camel, convert in (
        ("stringValue", str),
        ("boolValue", bool),
        ("intValue", int),
        ("doubleValue", float),
    ):
        raw = _get(value, camel)
        if raw is not None:
            try:
                return convert(raw)
            except (TypeError, ValueError):
                return None
    array = _get(value, "arrayValue")
    if isinstance(array, Mapping):
        return [_value(v) for v in array.get("values") or ()]
    return None


if __name__ == "__main__":
    sys.exit(main())
