"""Exported spans read back for ``llmtap compare``: OTLP JSON-lines files (what the ``file``
export preset and the Collector's ``file`` exporter write, one ``ExportTraceServiceRequest``
a line) and Jaeger's query API (``GET /api/traces``), as
:class:`~llmtap.pipeline.span.SpanData`.

Jaeger's JSON is its own model: ``tags`` for attributes, ``processes`` for the resource,
``startTime``/``duration`` in microseconds, ``references`` for the parent, the OTLP status
as the ``otel.status_code`` tag (``error=true`` on older versions).
"""

from __future__ import annotations

import glob
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmtap.export.file import read_otlp_json_lines
from llmtap.pipeline.span import SpanData

__all__ = ["SpanSourceError", "fetch_jaeger", "parse_lookback", "read_span_files"]

_STATUS_ERROR = 2
_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_LOOKBACK = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class SpanSourceError(ValueError):
    """Spans that cannot be read: a file or pattern, or Jaeger's answer."""


# OTLP JSON lines ---------------------------------------------------------------------------------


def read_span_files(patterns: Sequence[str]) -> tuple[list[SpanData], list[str]]:
    """The spans of every file the paths or glob patterns name, and one problem per line
    that is not an OTLP export request (``path:line: reason``). Raises
    :class:`SpanSourceError` for a pattern that matches no file or a file that cannot be
    read."""
    spans: list[SpanData] = []
    problems: list[str] = []
    for path in _expand(patterns):
        try:
            for number, request, reason in read_otlp_json_lines(path):
                if request is None:
                    problems.append(f"{path}:{number}: {reason}")
                    continue
                spans.extend(_request_spans(request))
        except (OSError, UnicodeDecodeError) as exc:
            raise SpanSourceError(f"{path}: cannot be read: {exc}") from None
    return spans, problems


def _expand(patterns: Sequence[str]) -> list[str]:
    paths: list[str] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not found:
            raise SpanSourceError(f"{pattern}: no file matches")
        for path in found:
            if not os.path.isfile(path):
                raise SpanSourceError(f"{path}: no such file")
            if path not in paths:
                paths.append(path)
    return paths


def _request_spans(request: Any) -> Iterable[SpanData]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield _otlp_span(span, resource, scope_spans.scope.name)


def _otlp_span(span: Any, resource: Mapping[str, Any], scope: str) -> SpanData:
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    kind = span.kind
    return SpanData(
        name=span.name,
        attributes=_attributes(span.attributes),
        status_message=span.status.message or None,
        is_error=span.status.code == _STATUS_ERROR,
        duration_s=(end - start) / 1e9 if end > start else 0.0,
        resource=resource,
        trace_id=int.from_bytes(span.trace_id, "big"),
        span_id=int.from_bytes(span.span_id, "big"),
        parent_span_id=int.from_bytes(span.parent_span_id, "big") if span.parent_span_id else 0,
        kind=_KINDS[kind] if 0 <= kind < len(_KINDS) else "UNSPECIFIED",
        start_ns=start,
        end_ns=end,
        scope_name=scope,
    )


def _attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


# Jaeger ------------------------------------------------------------------------------------------


def parse_lookback(text: str) -> float:
    """``30m``, ``12h``, ``7d``, ``2w`` as seconds; :class:`SpanSourceError` otherwise."""
    match = _LOOKBACK.match(text)
    if not match or float(match.group(1)) <= 0:
        raise SpanSourceError(
            f"--lookback: expected a number and a unit (s, m, h, d, w), e.g. 7d, got {text!r}"
        )
    return float(match.group(1)) * _SECONDS[match.group(2)]


def fetch_jaeger(
    url: str,
    service: str,
    *,
    lookback_s: float,
    limit: int,
    timeout_s: float = 30.0,
    now: float | None = None,
) -> tuple[list[SpanData], list[str]]:
    """The spans of ``service``'s traces that started in the last ``lookback_s`` seconds
    (at most ``limit`` traces), from Jaeger's query API at ``url``, and notes (a trace
    limit reached)."""
    end = time.time() if now is None else now
    query = urllib.parse.urlencode({
        "service": service,
        "start": int((end - lookback_s) * 1e6),
        "end": int(end * 1e6),
        "limit": limit,
    })  # fmt: skip
    address = f"{url.rstrip('/')}/api/traces?{query}"
    document = _get_json(address, timeout_s)
    traces = document.get("data") if isinstance(document, dict) else None
    if not isinstance(traces, list):
        errors = document.get("errors") if isinstance(document, dict) else None
        raise SpanSourceError(f"{address}: not a Jaeger traces answer: {errors or document!r}")
    spans = [s for trace in traces if isinstance(trace, dict) for s in _jaeger_trace(trace)]
    notes = []
    if len(traces) >= limit:
        notes.append(f"Jaeger returned {len(traces)} traces, the --limit: older ones are left out")
    return spans, notes


def _get_json(address: str, timeout_s: float) -> Any:
    request = urllib.request.Request(address, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise SpanSourceError(f"{address}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SpanSourceError(f"{address}: cannot connect: {reason}") from None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise SpanSourceError(f"{address}: not JSON: {exc}") from None


def _jaeger_trace(trace: Mapping[str, Any]) -> Iterable[SpanData]:
    processes = trace.get("processes") or {}
    for span in trace.get("spans") or ():
        if not isinstance(span, dict):
            continue
        process = processes.get(span.get("processID")) or {}
        resource = _tags(process.get("tags"))
        if process.get("serviceName"):
            resource.setdefault("service.name", process["serviceName"])
        yield _jaeger_span(span, resource)


def _jaeger_span(span: Mapping[str, Any], resource: Mapping[str, Any]) -> SpanData:
    tags = _tags(span.get("tags"))
    status = tags.pop("otel.status_code", None)
    description = tags.pop("otel.status_description", None)
    error_flag = tags.pop("error", None)
    kind = str(tags.pop("span.kind", "internal")).upper()
    scope = tags.pop("otel.scope.name", tags.pop("otel.library.name", ""))
    start_us, duration_us = int(span.get("startTime") or 0), int(span.get("duration") or 0)
    parent = next(
        (r.get("spanID") for r in span.get("references") or ()
         if isinstance(r, dict) and r.get("refType") == "CHILD_OF"),
        None,
    )  # fmt: skip
    return SpanData(
        name=str(span.get("operationName") or ""),
        attributes=tags,
        status_message=str(description) if description else None,
        is_error=status == "ERROR" or error_flag is True,
        duration_s=duration_us / 1e6,
        resource=resource,
        trace_id=_hex(span.get("traceID")),
        span_id=_hex(span.get("spanID")),
        parent_span_id=_hex(parent),
        kind=kind if kind in _KINDS else "UNSPECIFIED",
        start_ns=start_us * 1000,
        end_ns=(start_us + duration_us) * 1000,
        scope_name=str(scope),
    )


def _tags(tags: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag in tags or ():
        if isinstance(tag, dict) and isinstance(tag.get("key"), str):
            value = tag.get("value")
            if tag.get("type") == "int64" and isinstance(value, str):
                value = int(value) if value.lstrip("-").isdigit() else value
            out[tag["key"]] = value
    return out


def _hex(value: Any) -> int:
    try:
        return int(str(value), 16) if value else 0
    except ValueError:
        return 0
