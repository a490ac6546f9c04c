"""The options of each evaluation sink and the registry of sinks by name (:data:`SINKS`).

An entry of ``service.evaluation_sinks`` names its sink (``sink: phoenix``) and takes the
keys every sink takes (``name``, ``sources``, ``headers``, ``queue_size``, ``batch_size``,
``timeout_s``) and those of its sink. :func:`sink_problems` checks the entries (every problem
at once, each naming its key: ``evaluation_sinks[0].sink: unknown evaluation sink ...``);
:func:`build_sinks` makes the clients. This module imports no HTTP code: ``ServiceConfig``
checks entries with it when the file is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmtap.configuration.factories import Registry
from llmtap.diagnostics import did_you_mean
from llmtap.export.presets import LANGFUSE_REGIONS, DatadogLlmobsOptions, LangfuseOptions

__all__ = [
    "SINKS",
    "SOURCES",
    "DatadogSinkOptions",
    "LangfuseSinkOptions",
    "PhoenixSinkOptions",
    "SinkOptions",
    "build_sinks",
    "sink_problems",
]

#: who gives verdicts (``llmtap.evaluation.source``): LLM judges, rules, users
SOURCES = ("judge", "rule", "user")


def _required(hint: str) -> Any:
    return field(default=None, metadata={"required": hint})


@dataclass
class SinkOptions:
    """The keys every evaluation sink takes."""

    sink: str = field(default="", metadata={"required": "phoenix, langfuse or datadog_llmobs"})
    """the kind of sink: phoenix, langfuse or datadog_llmobs"""
    name: str | None = None
    """the sink's name in logs and metrics (default: the sink)"""
    sources: list[str] = field(default_factory=lambda: list(SOURCES))
    """the verdicts sent: judge (LLM judges), rule (rules without a model), user (user feedback)"""
    headers: dict[str, str] = field(default_factory=dict)
    """sent with every request; never shown in errors"""
    queue_size: int = 10000
    """evaluations waiting to be sent at most; more are dropped and counted"""
    batch_size: int = 100
    """evaluations per request at most (Langfuse takes one per request)"""
    timeout_s: float = 10.0
    """one request at most, in seconds"""

    @property
    def label(self) -> str:
        return self.name or self.sink

    def problems(self) -> list[str]:
        """What is wrong with the options, each as ``key: message``."""
        out = []
        for i, source in enumerate(self.sources):
            if source not in SOURCES:
                hint = did_you_mean(str(source), SOURCES)
                out.append(
                    f"sources[{i}]: expected one of {', '.join(SOURCES)}, got {source!r}{hint}"
                )
        for key in ("queue_size", "batch_size", "timeout_s"):
            if getattr(self, key) <= 0:
                out.append(f"{key}: expected a positive number, got {getattr(self, key)!r}")
        return out


@dataclass
class PhoenixSinkOptions(SinkOptions):
    """Arize Phoenix span annotations."""

    endpoint: str = "http://localhost:6006"
    """Phoenix's URL: its base (``http://localhost:6006``); its ``/v1/traces`` URL is taken too"""
    api_key: str | None = None
    """the Phoenix API key (sent as a bearer token), when it asks for one"""


@dataclass
class LangfuseSinkOptions(SinkOptions):
    """Langfuse scores."""

    endpoint: str | None = None
    """the Langfuse URL, its base (default: the region's)"""
    region: str = "eu"
    """the Langfuse Cloud region when no endpoint is given: eu, us, jp or hipaa"""
    public_key: str | None = _required("e.g. public_key: ${env:LANGFUSE_PUBLIC_KEY}")
    """Langfuse's public key"""
    secret_key: str | None = _required("e.g. secret_key: ${env:LANGFUSE_SECRET_KEY}")
    """Langfuse's secret key"""
    environment: str | None = None
    """the Langfuse environment of the scores (default: none)"""

    def problems(self) -> list[str]:
        out = super().problems()
        if self.endpoint is None:
            out += LangfuseOptions(region=self.region).problems()
        return out


@dataclass
class DatadogSinkOptions(SinkOptions):
    """Datadog LLM Observability evaluations."""

    api_key: str | None = _required("your Datadog API key, e.g. api_key: ${env:DD_API_KEY}")
    """the Datadog API key"""
    site: str = "datadoghq.com"
    """the Datadog site (one that offers LLM Observability, as the datadog_llmobs preset)"""
    ml_app: str | None = None
    """the ML application of the evaluations (default: the evaluated span's service.name)"""
    endpoint: str | None = None
    """where to send (default: ``https://api.<site>``)"""

    def problems(self) -> list[str]:
        return super().problems() + DatadogLlmobsOptions(site=self.site).problems()


def _phoenix(o: PhoenixSinkOptions) -> Any:
    from llmtap.service.sinks.phoenix import PhoenixSink

    return PhoenixSink(o.endpoint, api_key=o.api_key, headers=o.headers, timeout_s=o.timeout_s)


def _langfuse(o: LangfuseSinkOptions) -> Any:
    from llmtap.service.sinks.langfuse import LangfuseSink

    return LangfuseSink(
        o.endpoint or LANGFUSE_REGIONS[o.region],
        public_key=o.public_key or "",
        secret_key=o.secret_key or "",
        environment=o.environment,
        headers=o.headers,
        timeout_s=o.timeout_s,
    )


def _datadog(o: DatadogSinkOptions) -> Any:
    from llmtap.service.sinks.datadog import DatadogSink

    return DatadogSink(
        o.endpoint or f"https://api.{o.site}",
        api_key=o.api_key or "",
        ml_app=o.ml_app,
        headers=o.headers,
        timeout_s=o.timeout_s,
    )


SINKS: Registry[Any] = Registry("evaluation sink")
SINKS.register("phoenix", PhoenixSinkOptions, _phoenix, "Arize Phoenix span annotations")
SINKS.register("langfuse", LangfuseSinkOptions, _langfuse, "Langfuse scores")
SINKS.register(
    "datadog_llmobs", DatadogSinkOptions, _datadog, "Datadog LLM Observability evaluations"
)


def _options(i: int, entry: Any, problems: list[str]) -> SinkOptions | None:
    from llmtap.configuration.builder import FAILED, FILE, structure

    where = f"evaluation_sinks[{i}]"
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: expected a mapping with a sink key, got {entry!r}")
        return None
    kind = entry.get("sink")
    factory = SINKS.get(kind)
    if factory is None:
        required = f"required; one of {', '.join(SINKS.names())}"
        problems.append(f"{where}.sink: {required if kind is None else SINKS.unknown(kind)}")
        return None
    options, found = structure(FILE, factory.options, dict(entry), where)
    problems += [f"{path}: {message}" for path, message in found]
    if options is FAILED:
        return None
    for f_name, hint in _required_keys(factory.options):
        value = getattr(options, f_name)
        if value is None or not str(value).strip():
            state = "is empty" if value is not None else "is missing"
            problems.append(f"{where}.{f_name}: sink {kind!r} needs {f_name} ({hint}); it {state}")
    problems += [f"{where}.{p}" for p in options.problems()]
    return options


def _required_keys(options: type) -> list[tuple[str, str]]:
    from dataclasses import fields

    return [(f.name, f.metadata["required"]) for f in fields(options) if "required" in f.metadata]


def sink_problems(entries: Sequence[Any]) -> list[str]:
    """Every problem of the ``evaluation_sinks`` entries, each as ``key: message``."""
    problems: list[str] = []
    names: dict[str, int] = {}
    for i, entry in enumerate(entries):
        options = _options(i, entry, problems)
        if options is None:
            continue
        if options.label in names:
            problems.append(
                f"evaluation_sinks[{i}].name: {options.label!r} is the name of "
                f"evaluation_sinks[{names[options.label]}] too; give each sink a name"
            )
        names.setdefault(options.label, i)
    return problems


def build_sinks(entries: Sequence[Any]) -> list[tuple[SinkOptions, Any]]:
    """The options and client of each entry; raises ``ValueError`` naming every problem."""
    problems: list[str] = []
    built: list[tuple[SinkOptions, Any]] = []
    for i, entry in enumerate(entries):
        options = _options(i, entry, problems)
        if options is not None and not problems:
            create: Callable[[Any], Any] = SINKS[options.sink].create
            built.append((options, create(options)))
    if problems:
        raise ValueError("\n".join(problems))
    return built
