"""Export presets: a named block of ``export:`` in llmtap.yaml becomes a span exporter.

Every preset but ``console`` and ``file`` is OTLP with the backend's defaults filled in.
Secrets (API keys, Langfuse keys) come from the configuration, which takes them from the
environment; they are put in headers and never logged.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter


@dataclass(frozen=True)
class Target:
    """Where and how a preset sends OTLP."""

    endpoint: str
    protocol: str  # "grpc" or "http/protobuf"
    headers: dict[str, str] = field(default_factory=dict)


def _get(cfg: Any, name: str, default: Any = None) -> Any:
    value = getattr(cfg, name, default)
    return default if value is None else value


def _langfuse(cfg: Any) -> Target:
    base = _get(cfg, "endpoint", "https://cloud.langfuse.com").rstrip("/")
    token = f"{_get(cfg, 'public_key', '')}:{_get(cfg, 'secret_key', '')}"
    auth = "Basic " + base64.b64encode(token.encode()).decode()
    url = base if base.endswith("/v1/traces") else f"{base}/api/public/otel/v1/traces"
    return Target(url, "http/protobuf", {"Authorization": auth})


def _datadog_llmobs(cfg: Any) -> Target:
    site = _get(cfg, "site", "datadoghq.com")
    url = _get(cfg, "endpoint", f"https://otlp.{site}/v1/traces")
    headers = {"dd-api-key": _get(cfg, "api_key", ""), "dd-otlp-source": "llmobs"}
    ml_app = _get(cfg, "name")
    if ml_app:
        headers["dd-ml-app"] = ml_app
    return Target(url, "http/protobuf", headers)


def _phoenix(cfg: Any) -> Target:
    url = _get(cfg, "endpoint", "http://localhost:6006/v1/traces")
    key = _get(cfg, "api_key")
    return Target(url, "http/protobuf", {"Authorization": f"Bearer {key}"} if key else {})


def _honeycomb(cfg: Any) -> Target:
    url = _get(cfg, "endpoint", "https://api.honeycomb.io/v1/traces")
    return Target(url, "http/protobuf", {"x-honeycomb-team": _get(cfg, "api_key", "")})


def _otlp_default(default: str) -> Any:
    def build(cfg: Any) -> Target:
        return Target(_get(cfg, "endpoint", default), _get(cfg, "protocol", "grpc"))

    return build


_TARGETS = {
    "otlp": _otlp_default("http://localhost:4317"),
    "jaeger": _otlp_default("http://localhost:4317"),
    "tempo": _otlp_default("http://localhost:4317"),
    "datadog_agent": _otlp_default("http://localhost:4317"),
    "datadog_llmobs": _datadog_llmobs,
    "langfuse": _langfuse,
    "phoenix": _phoenix,
    "honeycomb": _honeycomb,
}
PRESETS = (*_TARGETS, "console", "file")


def target_for(cfg: Any) -> Target:
    """The OTLP endpoint, protocol and headers a preset resolves to."""
    preset = cfg.preset
    if preset not in _TARGETS:
        raise ValueError(f"export preset {preset!r} is not OTLP; expected one of {PRESETS}")
    target = _TARGETS[preset](cfg)
    extra = _get(cfg, "headers", {})
    if extra:
        target = Target(target.endpoint, target.protocol, {**target.headers, **extra})
    return target


def build_exporter(cfg: Any) -> SpanExporter:
    preset = cfg.preset
    if preset == "console":
        from llmtap.export.console import ConsoleTreeExporter

        return ConsoleTreeExporter()
    if preset == "file":
        from llmtap.export.file import JsonLinesSpanExporter

        return JsonLinesSpanExporter(cfg.path)
    target = target_for(cfg)
    timeout = float(_get(cfg, "timeout_s", 10.0))
    if target.protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        compression = Compression.Gzip if _get(cfg, "compression") == "gzip" else None
        return OTLPSpanExporter(
            endpoint=target.endpoint,
            headers=target.headers or None,
            timeout=timeout,
            compression=compression,
        )
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

    insecure = _get(cfg, "insecure")
    if insecure is None:
        insecure = target.endpoint.startswith("http://")
    return Grpc(
        endpoint=target.endpoint,
        headers=tuple(target.headers.items()) or None,
        timeout=timeout,
        insecure=insecure,
    )


def destination_name(cfg: Any, index: int) -> str:
    return _get(cfg, "name") or f"{cfg.preset}#{index}"
