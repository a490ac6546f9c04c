"""Metric names in Prometheus: how its OTLP receiver names the apps' metrics, and which
metric names a PromQL expression reads (no tests here).

The translation is Prometheus' ``UnderscoreEscapingWithSuffixes`` strategy (set in
deploy/prometheus/prometheus.yml): name split on every character outside ``[a-zA-Z0-9:]``
and joined with ``_``; the unit's Prometheus word appended unless already a token of the
name (units in braces dropped, unknown units kept as written); ``_total`` for monotonic
counters, ``_ratio`` for gauges of unit ``1``. Attribute keys become labels the same way.
"""

from __future__ import annotations

import re

_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "y": "year"}
_INVALID = re.compile(r"[^a-zA-Z0-9:]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _tokens(text: str) -> list[str]:
    return [t for t in _INVALID.split(text) if t]


def _unit_words(unit: str) -> tuple[str, str]:
    main, _, per = unit.partition("/")
    main, per = main.strip(), per.strip()
    word = "" if not main or "{" in main or "}" in main else _UNITS.get(main, main)
    per_word = "" if not per or "{" in per or "}" in per else _PER_UNITS.get(per, per)
    return "_".join(_tokens(word)), "_".join(_tokens(per_word))


def otlp_metric_name(name: str, unit: str, kind: str) -> str:
    """The Prometheus name of an OTLP metric; ``kind`` is counter, histogram or gauge."""
    tokens = _tokens(name)
    word, per = _unit_words(unit)
    if word and word not in tokens:
        tokens.append(word)
    if per and f"per_{per}" not in "_".join(tokens):
        tokens.append(f"per_{per}")
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if kind == "gauge" and unit == "1":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    return "_".join(tokens)


def otlp_label_name(key: str) -> str:
    label = "_".join(_tokens(key)) if not key.startswith("_") else "key" + key
    return "key_" + label if label[:1].isdigit() else label


def series_names(name: str, kind: str) -> set[str]:
    """The series names one metric family exposes."""
    if kind == "histogram":
        return {name + suffix for suffix in HISTOGRAM_SUFFIXES}
    return {name}


# PromQL ------------------------------------------------------------------------------------

_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "6h",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "inf", "nan"}
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^{}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"')
_GROUP_LABELS = re.compile(r"\b(?:by|without)\s*\(([^()]*)\)", re.IGNORECASE)


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as plain PromQL: Grafana's interval variables become durations and
    dashboard variables (``$feature``) a match-anything regex."""
    for variable, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?[a-zA-Z_]\w*\}?", ".*", expr)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function or aggregation, or an operator keyword
        names.add(word)
    return names


def selector_labels(expr: str) -> dict[str, set[str]]:
    """Per metric name, the label names its matchers use (``{feature=~"..."}``)."""
    out: dict[str, set[str]] = {}
    text = _STRING.sub('""', expr)
    for match in _SELECTOR.finditer(text):
        name = match.group(1)
        if name and name.lower() not in _KEYWORDS:
            out.setdefault(name, set()).update(
                m.group(1) for m in _MATCHER.finditer(match.group(2))
            )
    return out


def grouping_labels(expr: str) -> set[str]:
    """Label names of every ``by (...)``/``without (...)`` clause."""
    labels = set()
    for match in _GROUP_LABELS.finditer(expr):
        labels.update(x.strip() for x in match.group(1).split(",") if x.strip())
    return labels
