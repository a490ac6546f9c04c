"""Export presets: a named block of ``export:`` in llmtap.yaml becomes a span exporter.

:data:`DESTINATIONS` is the one table of presets: for each name, a
:class:`~llmtap.configuration.factories.Registry` entry with its options (a dataclass of the
keys the preset uses beyond the common ones, with the backend's defaults; a key the preset
cannot work without carries the hint of its message as ``required`` in its metadata), the
factory of its span exporter (called with the whole ``export:`` entry,
:class:`~llmtap.export.destination_config.ExportConfig`) and a description. The entry is
checked against these options by ``ExportConfig``; adding a destination is its options
and one ``register(...)`` below. The service forwards every OTLP preset through
:func:`target_for` as well, so an OTLP preset needs nothing more; one that is not OTLP also
needs its exporter in this package and its forwarder in the service.

Every preset but ``console`` and ``file`` is OTLP with the backend's defaults filled in
(its options resolve to a :class:`Target`). Secrets (API keys, Langfuse keys) come from
the configuration, which takes them from the environment; they are put in headers and never
logged.
"""

from __future__ import annotations

import base64
import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from llmtap.configuration.factories import Registry

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "DESTINATIONS",
    "PRESETS",
    "Target",
    "build_exporter",
    "destination_name",
    "http_only",
    "options_of",
    "preset_keys",
    "required_keys",
    "target_for",
]


@dataclass(frozen=True)
class Target:
    """Where and how a preset sends OTLP."""

    endpoint: str
    protocol: str  # "grpc" or "http/protobuf"
    headers: dict[str, str] = field(default_factory=dict)


def _get(cfg: Any, name: str, default: Any = None) -> Any:
    value = getattr(cfg, name, default)
    return default if value is None else value


def _required(hint: str) -> Any:
    return field(default=None, metadata={"required": hint})


# The options of each preset ---------------------------------------------------------------


@dataclass
class _OtlpOptions(ABC):
    """The keys of a preset that sends OTLP; :meth:`target` says where and how."""

    #: the preset sends OTLP over http/protobuf only (``protocol: grpc`` is an error)
    http_only: ClassVar[bool] = True

    endpoint: str | None = None
    """where to send OTLP"""
    protocol: str = "http/protobuf"
    """http/protobuf, the only protocol this preset sends (http is taken as http/protobuf)"""
    headers: dict[str, str] = field(default_factory=dict)
    """sent with every export; never shown in errors"""
    compression: str | None = None
    """gzip or none"""

    @abstractmethod
    def target(self, name: str | None) -> Target:
        """The endpoint, protocol and headers (before the entry's own ``headers``)."""


@dataclass
class OtlpOptions(_OtlpOptions):
    """OTLP to a collector or a backend that takes it (gRPC by default)."""

    http_only: ClassVar[bool] = False

    endpoint: str = "http://localhost:4317"
    """where to send OTLP"""
    protocol: str = "grpc"
    """grpc or http/protobuf (http is taken as http/protobuf)"""
    insecure: bool | None = None
    """gRPC without TLS (default: when the endpoint is http://)"""

    def target(self, name: str | None) -> Target:
        return Target(self.endpoint, self.protocol)


@dataclass
class DatadogLlmobsOptions(_OtlpOptions):
    """Datadog LLM Observability, straight to Datadog's OTLP intake."""

    endpoint: str | None = None
    """where to send OTLP (default: ``https://otlp.<site>/v1/traces``)"""
    api_key: str | None = _required("your Datadog API key, e.g. api_key: ${env:DD_API_KEY}")
    """the Datadog API key"""
    site: str = "datadoghq.com"
    """the Datadog site"""

    def target(self, name: str | None) -> Target:
        url = self.endpoint if self.endpoint is not None else f"https://otlp.{self.site}/v1/traces"
        headers = {"dd-api-key": self.api_key or "", "dd-otlp-source": "llmobs"}
        if name:
            headers["dd-ml-app"] = name
        return Target(url, "http/protobuf", headers)


@dataclass
class LangfuseOptions(_OtlpOptions):
    """Langfuse (cloud or self-hosted), by its OTLP endpoint."""

    endpoint: str = "https://cloud.langfuse.com"
    """the Langfuse base URL (or its full ``.../v1/traces`` URL)"""
    public_key: str | None = _required("e.g. public_key: ${env:LANGFUSE_PUBLIC_KEY}")
    """Langfuse's public key"""
    secret_key: str | None = _required("e.g. secret_key: ${env:LANGFUSE_SECRET_KEY}")
    """Langfuse's secret key"""

    def target(self, name: str | None) -> Target:
        base = self.endpoint.rstrip("/")
        token = f"{self.public_key or ''}:{self.secret_key or ''}"
        auth = "Basic " + base64.b64encode(token.encode()).decode()
        url = base if base.endswith("/v1/traces") else f"{base}/api/public/otel/v1/traces"
        return Target(url, "http/protobuf", {"Authorization": auth})


@dataclass
class PhoenixOptions(_OtlpOptions):
    """Arize Phoenix, local or hosted."""

    endpoint: str = "http://localhost:6006/v1/traces"
    """where to send OTLP"""
    api_key: str | None = None
    """the Phoenix API key (sent as a bearer token), when it asks for one"""

    def target(self, name: str | None) -> Target:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return Target(self.endpoint, "http/protobuf", headers)


@dataclass
class HoneycombOptions(_OtlpOptions):
    """Honeycomb."""

    endpoint: str = "https://api.honeycomb.io/v1/traces"
    """where to send OTLP"""
    api_key: str | None = _required(
        "your Honeycomb ingest key, e.g. api_key: ${env:HONEYCOMB_API_KEY}"
    )
    """the Honeycomb ingest key"""

    def target(self, name: str | None) -> Target:
        return Target(self.endpoint, "http/protobuf", {"x-honeycomb-team": self.api_key or ""})


@dataclass
class ConsoleOptions:
    """Trees of spans on stdout, for development."""


@dataclass
class FileOptions:
    """OTLP JSON lines in a file."""

    path: str | None = _required("where to write OTLP JSON lines, e.g. path: spans.jsonl")
    """the file, relative to the config file's folder"""


# The exporters -----------------------------------------------------------------------------


def _otlp_exporter(cfg: Any) -> SpanExporter:
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


def _console_exporter(cfg: Any) -> SpanExporter:
    from llmtap.export.console import ConsoleTreeExporter

    return ConsoleTreeExporter()


def _file_exporter(cfg: Any) -> SpanExporter:
    from llmtap.export.file import JsonLinesSpanExporter

    return JsonLinesSpanExporter(cfg.path)


# The table -----------------------------------------------------------------------------------

#: every export preset, by name: options, exporter factory, description
DESTINATIONS: Registry[SpanExporter] = Registry("export preset")
_register = DESTINATIONS.register
_register("otlp", OtlpOptions, _otlp_exporter, "OTLP to any collector or backend")
_register("jaeger", OtlpOptions, _otlp_exporter, "Jaeger, by its OTLP port")
_register("tempo", OtlpOptions, _otlp_exporter, "Grafana Tempo, by its OTLP port")
_register("datadog_agent", OtlpOptions, _otlp_exporter, "a Datadog Agent's OTLP port")
_register(
    "datadog_llmobs",
    DatadogLlmobsOptions,
    _otlp_exporter,
    "Datadog LLM Observability, straight to Datadog's OTLP intake",
)
_register("langfuse", LangfuseOptions, _otlp_exporter, "Langfuse, cloud or self-hosted")
_register("phoenix", PhoenixOptions, _otlp_exporter, "Arize Phoenix, local or hosted")
_register("honeycomb", HoneycombOptions, _otlp_exporter, "Honeycomb")
_register("console", ConsoleOptions, _console_exporter, "span trees on stdout, for development")
_register("file", FileOptions, _file_exporter, "OTLP JSON lines in a file")

#: the preset names, in the table's order
PRESETS = tuple(DESTINATIONS)


def preset_keys(preset: str) -> frozenset[str]:
    """The keys ``preset`` uses beyond the common ones."""
    return frozenset(f.name for f in dataclasses.fields(DESTINATIONS[preset].options))


def required_keys(preset: str) -> tuple[tuple[str, str], ...]:
    """The keys ``preset`` cannot work without, each with the hint of its message."""
    fields = dataclasses.fields(DESTINATIONS[preset].options)
    return tuple((f.name, f.metadata["required"]) for f in fields if "required" in f.metadata)


def http_only(preset: str) -> bool:
    """Whether ``preset`` sends OTLP over http/protobuf only (``protocol: grpc`` is wrong)."""
    return bool(getattr(DESTINATIONS[preset].options, "http_only", False))


def options_of(cfg: Any) -> Any:
    """The options of ``cfg``'s preset, from the entry's keys that are set."""
    options = DESTINATIONS[cfg.preset].options
    given = {f.name: getattr(cfg, f.name, None) for f in dataclasses.fields(options)}
    return options(**{k: v for k, v in given.items() if v is not None})


def target_for(cfg: Any) -> Target:
    """The OTLP endpoint, protocol and headers a preset resolves to."""
    preset = cfg.preset
    factory = DESTINATIONS.get(preset)
    if factory is None or not issubclass(factory.options, _OtlpOptions):
        raise ValueError(f"export preset {preset!r} is not OTLP; expected one of {PRESETS}")
    target = options_of(cfg).target(_get(cfg, "name"))
    extra = _get(cfg, "headers", {})
    if extra:
        target = Target(target.endpoint, target.protocol, {**target.headers, **extra})
    return target


def build_exporter(cfg: Any) -> SpanExporter:
    """The span exporter of one ``export:`` entry."""
    factory = DESTINATIONS.get(cfg.preset)
    return _otlp_exporter(cfg) if factory is None else factory.create(cfg)


def destination_name(cfg: Any, index: int) -> str:
    return _get(cfg, "name") or f"{cfg.preset}#{index}"
