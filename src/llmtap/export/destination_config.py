"""The options of one ``export:`` destination of ``llmtap.yaml`` (:class:`ExportConfig`).

::

    export:
      - {preset: jaeger, endpoint: "http://localhost:4317"}
      - {preset: datadog_llmobs, api_key: "${env:DD_API_KEY}", site: datadoghq.eu}
      - {preset: file, path: spans.jsonl}

Every preset takes ``preset``, ``name``, ``timeout_s``, ``queue_size``, ``batch_size`` and
``translate`` (:mod:`llmtap.export.translations`);
the keys each one uses beyond those, and those it cannot work without, are its options in
the table of presets (:data:`llmtap.export.presets.DESTINATIONS`, which also builds the
exporters), and a key a preset does not use is an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from llmtap.configuration.problems import choice_message
from llmtap.export.presets import PRESETS, http_only, preset_keys, problems_of, required_keys
from llmtap.export.translations import problems_of_names

__all__ = ["COMPRESSIONS", "PRESETS", "PRESET_KEYS", "PROTOCOLS", "ExportConfig"]

PROTOCOLS = ("grpc", "http/protobuf")
COMPRESSIONS = ("gzip", "none")
_COMMON_KEYS = ("preset", "name", "timeout_s", "queue_size", "batch_size", "translate")
#: keys each preset uses beyond preset, name, timeout_s, queue_size, batch_size, translate
PRESET_KEYS: dict[str, frozenset[str]] = {name: preset_keys(name) for name in PRESETS}


@dataclass
class ExportConfig:
    """One destination of the ``export:`` list (see ``llmtap.export.presets``)."""

    preset: str
    """the kind of destination: otlp, jaeger, tempo, datadog_agent, datadog_llmobs, langfuse,
    phoenix, honeycomb, console or file"""
    endpoint: str | None = None
    """where to send OTLP (default: the preset's)"""
    protocol: str | None = None
    """grpc or http/protobuf (http is taken as http/protobuf)"""
    headers: dict[str, str] = field(default_factory=dict)
    """sent with every export; never shown in errors"""
    api_key: str | None = None
    """the backend's API key (datadog_llmobs, phoenix, honeycomb)"""
    public_key: str | None = None
    """Langfuse's public key"""
    secret_key: str | None = None
    """Langfuse's secret key"""
    site: str | None = None
    """the Datadog site (default datadoghq.com; one that offers LLM Observability)"""
    ml_app: str | None = None
    """the Datadog ML application (default: name, else the service name)"""
    region: str | None = None
    """the backend's region when no endpoint is given: langfuse eu (default), us, jp,
    hipaa; honeycomb us (default), eu"""
    dataset: str | None = None
    """the Honeycomb Classic dataset (x-honeycomb-dataset)"""
    path: str | None = None
    """the file of OTLP JSON lines (file), relative to the config file's folder"""
    insecure: bool | None = None
    """gRPC without TLS"""
    timeout_s: float = 10.0
    """one export at most, in seconds"""
    queue_size: int = 2048
    """spans waiting to be exported at most"""
    batch_size: int = 512
    """spans per export at most"""
    name: str | None = None
    """the destination's name in logs and metrics (default: the preset)"""
    compression: str | None = None
    """gzip or none"""
    project: str | None = None
    """the Phoenix project (phoenix; default: the service name)"""
    translate: list[str] | None = None
    """translations of the spans sent here, for what the backend reads best, applied to this
    destination's copy only: openinference, cost_alias, langfuse (default: the preset's,
    phoenix [openinference], langfuse [langfuse], the others none; [] turns them off)"""

    def __post_init__(self) -> None:
        errors: list[str] = []
        if self.preset not in PRESETS:
            errors.append(f"preset: {choice_message(self.preset, PRESETS)}")
            _raise(errors)
        if self.protocol == "http":
            self.protocol = "http/protobuf"
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            errors.append(f"protocol: {choice_message(self.protocol, PROTOCOLS)}")
        elif self.protocol == "grpc" and http_only(self.preset):
            errors.append(
                f"protocol: export preset {self.preset!r} sends OTLP over http/protobuf "
                "only; remove protocol or set it to http/protobuf"
            )
        if self.compression is not None and self.compression not in COMPRESSIONS:
            errors.append(f"compression: {choice_message(self.compression, COMPRESSIONS)}")
        if self.endpoint is not None:
            if not self.endpoint.strip():
                errors.append("endpoint: is empty")
            elif "://" in self.endpoint and not self.endpoint.startswith(("http://", "https://")):
                errors.append(
                    f"endpoint: expected an http:// or https:// URL, got {self.endpoint!r}"
                )
        _positive(errors, "timeout_s", self.timeout_s)
        _positive(errors, "queue_size", self.queue_size)
        _positive(errors, "batch_size", self.batch_size)
        if self.batch_size > self.queue_size > 0:
            errors.append(
                f"batch_size: {self.batch_size} is larger than queue_size {self.queue_size}"
            )
        for key, hint in required_keys(self.preset):
            value = getattr(self, key)
            if value is None or not str(value).strip():
                state = "is empty" if value is not None else "is missing"
                errors.append(
                    f"{key}: export preset {self.preset!r} needs {key} ({hint}); it {state}"
                )
        if self.translate is not None:
            errors += [f"translate: {p}" for p in problems_of_names(self.translate)]
        errors += self._unused_keys() + problems_of(self)
        _raise(errors)

    def _unused_keys(self) -> list[str]:
        allowed = PRESET_KEYS[self.preset]
        errors = []
        for f in dataclasses.fields(self):
            if f.name in allowed or f.name in _COMMON_KEYS:
                continue
            default = f.default_factory() if callable(f.default_factory) else f.default
            if getattr(self, f.name) != default:
                uses = ", ".join(sorted(allowed)) or "only the common keys"
                errors.append(
                    f"{f.name}: export preset {self.preset!r} does not use {f.name} "
                    f"(it takes {uses}; every preset takes {', '.join(_COMMON_KEYS)})"
                )
        return errors

    @property
    def label(self) -> str:
        """The destination's name in logs and metrics."""
        return self.name or self.preset


def _positive(errors: list[str], name: str, value: float) -> None:
    if value <= 0:
        errors.append(f"{name}: expected a positive number, got {value!r}")


def _raise(errors: list[str]) -> None:
    if errors:
        raise ValueError("\n".join(errors))
