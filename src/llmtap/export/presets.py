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
from llmtap.diagnostics import did_you_mean
from llmtap.export.translations import Translator, build_translator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "DESTINATIONS",
    "PRESETS",
    "Target",
    "build_exporter",
    "build_translator_for",
    "default_translations",
    "destination_name",
    "http_only",
    "options_of",
    "preset_keys",
    "problems_of",
    "required_keys",
    "target_for",
    "translation_names",
    "unresolved_keys",
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


def _choice(key: str, value: str, choices: tuple[str, ...], note: str) -> list[str]:
    """The problem of ``key`` when ``value`` is not one of ``choices``, as ``key: message``."""
    if value in choices:
        return []
    hint = did_you_mean(value.lower(), choices) if isinstance(value, str) else ""
    return [f"{key}: expected one of {', '.join(choices)} ({note}), got {value!r}{hint}"]


def _host(hosts: dict[str, str], region: str, problems: list[str]) -> str:
    if region not in hosts:
        raise ValueError("\n".join(problems))
    return hosts[region]


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

    #: the translations a destination of this preset gets unless it sets ``translate``
    translations: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def target(self, name: str | None, service_name: str | None = None) -> Target:
        """The endpoint, protocol and headers (before the entry's own ``headers``), for the
        destination named ``name`` of the app or service named ``service_name``."""

    def problems(self) -> list[str]:
        """What is wrong with the options, each as ``key: message``."""
        return []

    def unresolved(self, name: str | None, service_name: str | None) -> list[tuple[str, str]]:
        """The keys that are needed and cannot be determined, each with the hint of its
        message (``name`` and ``service_name`` as for :meth:`target`)."""
        return []


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

    def target(self, name: str | None, service_name: str | None = None) -> Target:
        return Target(self.endpoint, self.protocol)


#: the Datadog sites that offer LLM Observability: every site but US1-FED (ddog-gov.com), per
#: ``unsupported_sites: llm_observability: [gov]`` and ``allowedRegions`` in
#: DataDog/documentation config/_default/params.yaml
LLMOBS_SITES = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
)
_ML_APP_HINT = (
    "the application LLM Observability groups the spans under: set ml_app, or name, or "
    "service_name (or OTEL_SERVICE_NAME)"
)


@dataclass
class DatadogLlmobsOptions(_OtlpOptions):
    """Datadog LLM Observability, straight to Datadog's OTLP intake."""

    endpoint: str | None = None
    """where to send OTLP (default: ``https://otlp.<site>/v1/traces``)"""
    api_key: str | None = _required("your Datadog API key, e.g. api_key: ${env:DD_API_KEY}")
    """the Datadog API key"""
    site: str = "datadoghq.com"
    """the Datadog site: datadoghq.com, us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu,
    ap1.datadoghq.com or ap2.datadoghq.com (LLM Observability is not offered on ddog-gov.com)"""
    ml_app: str | None = None
    """the ML application the spans are grouped under (``dd-ml-app``); default: the
    destination's ``name``, else the service name (``service_name`` or ``OTEL_SERVICE_NAME``);
    one of them is needed"""

    def problems(self) -> list[str]:
        if isinstance(self.site, str) and self.site.endswith("ddog-gov.com"):
            return [
                f"site: Datadog does not offer LLM Observability on {self.site!r} (a government "
                f"site); expected one of {', '.join(LLMOBS_SITES)}"
            ]
        return _choice("site", self.site, LLMOBS_SITES, "the sites that offer LLM Observability")

    def unresolved(self, name: str | None, service_name: str | None) -> list[tuple[str, str]]:
        return [] if self.ml_app or name or service_name else [("ml_app", _ML_APP_HINT)]

    def target(self, name: str | None, service_name: str | None = None) -> Target:
        _raise_unresolved("datadog_llmobs", self.unresolved(name, service_name))
        url = self.endpoint if self.endpoint is not None else f"https://otlp.{self.site}/v1/traces"
        # headers of Datadog's LLM Observability OpenTelemetry page (otel_instrumentation)
        headers = {
            "dd-api-key": self.api_key or "",
            "dd-otlp-source": "llmobs",
            "dd-ml-app": self.ml_app or name or service_name or "",
        }
        return Target(url, "http/protobuf", headers)


#: Langfuse Cloud's data regions (langfuse.com/integrations/native/opentelemetry)
LANGFUSE_REGIONS = {
    "eu": "https://cloud.langfuse.com",
    "us": "https://us.cloud.langfuse.com",
    "jp": "https://jp.cloud.langfuse.com",
    "hipaa": "https://hipaa.cloud.langfuse.com",
}
_LANGFUSE_OTEL = "/api/public/otel"
#: Langfuse's API reference: "Direct OpenTelemetry exporters must send the
#: `x-langfuse-ingestion-version: 4` header" (its server refuses versions above 4)
LANGFUSE_INGESTION_VERSION = "4"


@dataclass
class LangfuseOptions(_OtlpOptions):
    """Langfuse (cloud or self-hosted), by its OTLP endpoint."""

    translations: ClassVar[tuple[str, ...]] = ("langfuse",)

    endpoint: str | None = None
    """the Langfuse URL: its base (``https://cloud.langfuse.com``), its OpenTelemetry URL
    (``.../api/public/otel``) or its full ``.../v1/traces`` URL (default: the region's)"""
    region: str = "eu"
    """the Langfuse Cloud region when no endpoint is given: eu (cloud.langfuse.com), us
    (us.cloud.langfuse.com), jp (jp.cloud.langfuse.com) or hipaa (hipaa.cloud.langfuse.com)"""
    public_key: str | None = _required("e.g. public_key: ${env:LANGFUSE_PUBLIC_KEY}")
    """Langfuse's public key"""
    secret_key: str | None = _required("e.g. secret_key: ${env:LANGFUSE_SECRET_KEY}")
    """Langfuse's secret key"""

    def problems(self) -> list[str]:
        note = "Langfuse Cloud's regions; for a self-hosted Langfuse set endpoint"
        return _choice("region", self.region, tuple(LANGFUSE_REGIONS), note)

    def target(self, name: str | None, service_name: str | None = None) -> Target:
        base = self.endpoint or _host(LANGFUSE_REGIONS, self.region, self.problems())
        token = f"{self.public_key or ''}:{self.secret_key or ''}"
        headers = {
            "Authorization": "Basic " + base64.b64encode(token.encode()).decode(),
            "x-langfuse-ingestion-version": LANGFUSE_INGESTION_VERSION,
        }
        return Target(_langfuse_traces_url(base), "http/protobuf", headers)


def _langfuse_traces_url(endpoint: str) -> str:
    """``.../api/public/otel/v1/traces`` from the base URL, the OpenTelemetry URL or the
    traces URL itself."""
    url = endpoint.rstrip("/")
    if url.endswith("/v1/traces"):
        return url
    if url.endswith(_LANGFUSE_OTEL):
        return url + "/v1/traces"
    return url + _LANGFUSE_OTEL + "/v1/traces"


@dataclass
class PhoenixOptions(_OtlpOptions):
    """Arize Phoenix, local or hosted."""

    translations: ClassVar[tuple[str, ...]] = ("openinference",)

    endpoint: str = "http://localhost:6006/v1/traces"
    """where to send OTLP"""
    api_key: str | None = None
    """the Phoenix API key (sent as a bearer token), when it asks for one"""
    project: str | None = None
    """the Phoenix project the spans are filed under (the resource's
    openinference.project.name, set by the openinference translation); default: the
    service name of each span's resource"""

    def target(self, name: str | None, service_name: str | None = None) -> Target:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return Target(self.endpoint, "http/protobuf", headers)


#: Honeycomb's instances; the key goes in ``x-honeycomb-team``, a Classic dataset in
#: ``x-honeycomb-dataset`` ("Send Data with OpenTelemetry", docs.honeycomb.io)
HONEYCOMB_REGIONS = {"us": "https://api.honeycomb.io", "eu": "https://api.eu1.honeycomb.io"}


@dataclass
class HoneycombOptions(_OtlpOptions):
    """Honeycomb."""

    endpoint: str | None = None
    """where to send OTLP (default: the region's ``/v1/traces`` URL)"""
    region: str = "us"
    """Honeycomb's instance when no endpoint is given: us (api.honeycomb.io) or eu
    (api.eu1.honeycomb.io)"""
    api_key: str | None = _required(
        "your Honeycomb ingest key, e.g. api_key: ${env:HONEYCOMB_API_KEY}"
    )
    """the Honeycomb ingest key"""
    dataset: str | None = None
    """Honeycomb Classic only: the dataset the spans go to (``x-honeycomb-dataset``); an
    environment's key needs none (Honeycomb takes the dataset from ``service.name``)"""

    def problems(self) -> list[str]:
        note = "Honeycomb's US and EU instances"
        return _choice("region", self.region, tuple(HONEYCOMB_REGIONS), note)

    def target(self, name: str | None, service_name: str | None = None) -> Target:
        url = self.endpoint or _host(HONEYCOMB_REGIONS, self.region, self.problems()) + "/v1/traces"
        headers = {"x-honeycomb-team": self.api_key or ""}
        if self.dataset:
            headers["x-honeycomb-dataset"] = self.dataset
        return Target(url, "http/protobuf", headers)


@dataclass
class ConsoleOptions:
    """Trees of spans on stdout, for development."""


@dataclass
class FileOptions:
    """OTLP JSON lines in a file."""

    path: str | None = _required("where to write OTLP JSON lines, e.g. path: spans.jsonl")
    """the file, relative to the config file's folder"""


# The exporters -----------------------------------------------------------------------------


def _otlp_exporter(cfg: Any, service_name: str | None = None) -> SpanExporter:
    target = target_for(cfg, service_name)
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


def _console_exporter(cfg: Any, service_name: str | None = None) -> SpanExporter:
    from llmtap.export.console import ConsoleTreeExporter

    return ConsoleTreeExporter()


def _file_exporter(cfg: Any, service_name: str | None = None) -> SpanExporter:
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


def problems_of(cfg: Any) -> list[str]:
    """What is wrong with the values of ``cfg``'s preset options, each as ``key: message``."""
    return list(getattr(options_of(cfg), "problems", list)())


def unresolved_keys(cfg: Any, service_name: str | None = None) -> list[tuple[str, str]]:
    """The keys ``cfg`` needs that neither it nor ``service_name`` gives, each with a hint."""
    options = options_of(cfg)
    if not isinstance(options, _OtlpOptions):
        return []
    return options.unresolved(_get(cfg, "name"), service_name)


def _raise_unresolved(preset: str, missing: list[tuple[str, str]]) -> None:
    if missing:
        raise ValueError(
            "\n".join(
                f"{key}: export preset {preset!r} needs {key} ({hint})" for key, hint in missing
            )
        )


def target_for(cfg: Any, service_name: str | None = None) -> Target:
    """The OTLP endpoint, protocol and headers a preset resolves to, for the app or service
    named ``service_name``."""
    preset = cfg.preset
    factory = DESTINATIONS.get(preset)
    if factory is None or not issubclass(factory.options, _OtlpOptions):
        raise ValueError(f"export preset {preset!r} is not OTLP; expected one of {PRESETS}")
    target = options_of(cfg).target(_get(cfg, "name"), service_name)
    extra = _get(cfg, "headers", {})
    if extra:
        target = Target(target.endpoint, target.protocol, {**target.headers, **extra})
    return target


def build_exporter(cfg: Any, service_name: str | None = None) -> SpanExporter:
    """The span exporter of one ``export:`` entry, for the app named ``service_name``."""
    factory = DESTINATIONS.get(cfg.preset)
    if factory is None:
        return _otlp_exporter(cfg, service_name)
    return factory.create(cfg, service_name=service_name)


def destination_name(cfg: Any, index: int) -> str:
    return _get(cfg, "name") or f"{cfg.preset}#{index}"


def default_translations(preset: str) -> tuple[str, ...]:
    """The translations a destination of ``preset`` gets when it does not set ``translate``
    (Phoenix reads OpenInference's names, Langfuse its own; the others read the GenAI
    conventions as llmtap writes them)."""
    factory = DESTINATIONS.get(preset)
    return tuple(getattr(factory.options, "translations", ())) if factory else ()


def translation_names(cfg: Any) -> list[str]:
    """The translations of one ``export:`` entry: its ``translate``, else its preset's."""
    names = getattr(cfg, "translate", None)
    return list(default_translations(cfg.preset) if names is None else names)


def build_translator_for(
    cfg: Any, service_name: str | None = None, destination: str = ""
) -> Translator | None:
    """The translator of one ``export:`` entry (None: it sends spans as they are)."""
    return build_translator(
        translation_names(cfg),
        project=_get(cfg, "project"),
        service_name=service_name,
        destination=destination or _get(cfg, "name") or cfg.preset,
    )
