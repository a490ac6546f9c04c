"""``llmtap.yaml``: the file's sections, loading, and the settings it gives.

``load_config()`` reads the file named by its argument, else by ``LLMTAP_CONFIG``, else
returns the defaults. Every string scalar may hold ``${env:VAR}`` or ``${env:VAR:-default}``
(the default applies when VAR is unset or empty, as in the shell; ``$${`` writes a literal
``${``: :mod:`llmtap.configuration.yaml_source`). Values are then built into the options
dataclasses of each component by the one builder (:mod:`llmtap.configuration.builder`),
and every problem found is reported at once in one :class:`ConfigError`::

    llmtap.yaml:4: redaction.mode: expected one of mask, hash, drop, got 'maks' (did you ...)
    llmtap.yaml:9: export[1].preset: expected one of otlp, jaeger, ..., got 'jeager' (...)
    llmtap.yaml:12: sampling.head.rules[0].ratio: expected a number, got 'ten percent'

Each section's options belong to the component that uses them: ``export[]`` is
:class:`llmtap.export.destination_config.ExportConfig`, ``sampling`` is
:mod:`llmtap.pipeline.sampling_config`; the stages' sections (``redaction``, ``pricing``:
:mod:`llmtap.pipeline.stages`) and those of :data:`SECTIONS` (``service``, ``eval``) are
imported when a file is loaded, so that an app reading the file does not import the
service. ``judge`` stays a raw mapping here; the service builds it with
:meth:`LlmtapConfig.section` (same file positions in errors).
``docs/config-reference.md`` lists every key; it is generated from these types
(``python -m llmtap.configuration.reference``).

Secrets: values of keys named like secrets (:mod:`llmtap.secret_names`) and everything under
``headers`` are never shown in errors. Literal secrets are accepted, but each one logs a
warning (also in ``LlmtapConfig.warnings``): secrets belong in the environment, referenced
as ``${env:VAR}``, so the file can live in version control.

Paths: a relative path in the file (``export[].path``, ``pricing.file``,
``judge.review_queue``, ``service.tls_cert_file``/``tls_key_file``: :data:`PATH_KEYS`) is
relative to the folder of the file, not to the current directory, so the same file works
from wherever the app or ``llmtap serve`` is started.

:func:`read_config` does what :func:`load_config` does but returns every problem instead of
raising (``llmtap config check``); a missing ``${env:VAR}`` is reported together with the
file's other mistakes.

Precedence: standard ``OTEL_*`` variables and llmtap's own ``LLMTAP_*`` variables keep their
meaning and win over the file where both are set (:func:`settings_from`,
:func:`effective_service_name`).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmtap.config import CAPTURE_ENV, CaptureMode, ContentLimits, Settings
from llmtap.configuration.problems import (
    ConfigError,
    Problem,
    choice_message,
    kind,
    line_for,
    scrub,
    secret_values,
)
from llmtap.configuration.yaml_source import (
    CONFIG_ENV,
    PATH_KEYS,
    literal_secrets,
    read_yaml,
    resolve_paths,
    substitute,
)
from llmtap.export.destination_config import PRESETS, ExportConfig
from llmtap.pipeline.sampling_config import HeadRule, HeadSamplingConfig, SamplingConfig

__all__ = [
    "CONFIG_ENV",
    "PATH_KEYS",
    "PRESETS",
    "SECTIONS",
    "ConfigError",
    "ContentConfig",
    "ExportConfig",
    "HeadRule",
    "HeadSamplingConfig",
    "LlmtapConfig",
    "Loaded",
    "Problem",
    "SamplingConfig",
    "StreamsConfig",
    "build",
    "effective_service_name",
    "load_config",
    "read_config",
    "resolve_paths",
    "section_types",
    "settings_from",
]

_log = logging.getLogger("llmtap")

#: where a file position is looked up by key path (kept for callers of the old name)
_line_for = line_for


def build(
    cls: type,
    data: Any,
    path: str = "",
    *,
    types: Mapping[str, Any] | None = None,
    source: str = "config",
    lines: Mapping[str, int] | None = None,
) -> Any:
    """Construct dataclass ``cls`` from ``data`` (a mapping), validating it entirely.

    ``path`` prefixes every reported key path; ``types`` gives the type of a field by its
    path where the dataclass leaves it open (``{"redaction": RedactionConfig}``); ``lines``
    maps key paths to line numbers of the source file. Raises one :class:`ConfigError`
    listing every problem.
    """
    from llmtap.configuration.builder import FAILED, FILE, structure

    found: list[tuple[str, str]] = []
    given = _late_sections(data, path, types, found) if types else data
    result, problems = structure(FILE, cls, given, path)
    found += problems
    if found or result is FAILED:
        secrets = secret_values(data, path)
        out = [
            Problem(where, scrub(message, secrets), line_for(lines, where) if lines else None)
            for where, message in found
        ]
        out.sort(key=lambda p: (p.line is None, p.line or 0))  # in file order
        raise ConfigError(out or [Problem(path, "invalid configuration")], source)
    return result


def _late_sections(
    data: Any, path: str, types: Mapping[str, Any], found: list[tuple[str, str]]
) -> Any:
    """``data`` with the sections whose type is given late (``types``) built already; a
    section that fails is left out (its problems are in ``found``)."""
    from llmtap.configuration.builder import FAILED, FILE, structure

    if data is not None and not isinstance(data, Mapping):
        return data
    out = dict(data or {})
    for where, tp in types.items():
        prefix = f"{path}." if path else ""
        if not where.startswith(prefix) or "." in where[len(prefix) :]:
            continue
        key = where[len(prefix) :]
        if key not in out and not dataclasses.is_dataclass(tp):
            continue
        value, problems = structure(FILE, tp, out.get(key), where)
        found += problems
        if value is FAILED:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# The file's own sections -------------------------------------------------------------------

_CAPTURE_VALUES = tuple(m.value for m in CaptureMode)


def _positive(errors: list[str], name: str, value: int | float | None) -> None:
    if value is not None and value <= 0:
        errors.append(f"{name}: expected a positive number, got {value!r}")


def _raise(errors: list[str]) -> None:
    if errors:
        raise ValueError("\n".join(errors))


@dataclass
class ContentConfig:
    """Caps on recorded message content (``llmtap.config.ContentLimits``); unset keeps the
    environment's value or the default."""

    max_part_chars: int | None = None
    """characters kept of one message part (the rest is cut)"""
    max_attribute_chars: int | None = None
    """characters kept of one span attribute holding messages"""
    capture_blobs: bool | None = None
    """record images, audio and files given inline (base64)"""

    def __post_init__(self) -> None:
        errors: list[str] = []
        _positive(errors, "max_part_chars", self.max_part_chars)
        _positive(errors, "max_attribute_chars", self.max_attribute_chars)
        _raise(errors)


@dataclass
class StreamsConfig:
    """Streaming usage: estimate it when the provider sends none; ask the provider for it."""

    estimate_usage: bool | None = None
    """count tokens of a stream that reports no usage (marked as an estimate)"""
    inject_usage: bool | None = None
    """ask OpenAI-compatible providers for usage at the end of a stream"""


@dataclass
class FrameworksConfig:
    """Agent frameworks (LangChain, LangGraph, ...): which of their runs become spans."""

    internal_spans: bool | None = None
    """also trace internal runs (prompt templates, output parsers, routing lambdas)"""


@dataclass
class LlmtapConfig:
    """The whole of llmtap.yaml. ``redaction`` and ``pricing`` hold
    ``llmtap.pipeline.redact.RedactionConfig`` and ``llmtap.pipeline.cost.PricingConfig``
    when loaded by :func:`load_config`; ``judge`` stays a raw mapping for the service."""

    service_name: str | None = None
    """the service.name resource attribute (OTEL_SERVICE_NAME wins)"""
    capture_content: str | bool | None = None
    """record prompts and replies: no_content, span_only, event_only, span_and_event (true is
    span_only); the OpenTelemetry capture variable wins"""
    content: ContentConfig = field(default_factory=ContentConfig)
    """caps on recorded content"""
    streams: StreamsConfig = field(default_factory=StreamsConfig)
    """token usage of streams"""
    frameworks: FrameworksConfig = field(default_factory=FrameworksConfig)
    """agent frameworks' runs"""
    redaction: Any = None
    """PII and secret redaction (llmtap.pipeline.redact.RedactionConfig)"""
    pricing: Any = None
    """cost of calls (llmtap.pipeline.cost.PricingConfig)"""
    export: list[ExportConfig] = field(default_factory=list)
    """destinations of spans (llmtap.export.destination_config.ExportConfig)"""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """which traces are kept"""
    service: Any = None
    """what llmtap serve runs (llmtap.service.ServiceConfig)"""
    judge: dict[str, Any] | None = None
    """the service's LLM judge (llmtap.evals.judge_config.JudgeConfig)"""
    eval: Any = None
    """what llmtap eval run applies (llmtap.evals.eval_config.EvalConfig)"""
    #: the file this came from (None: defaults)
    source: str | None = field(default=None, init=False, compare=False)
    #: non-fatal findings (literal secrets), also logged
    warnings: list[str] = field(default_factory=list, init=False, compare=False, repr=False)
    _lines: dict[str, int] = field(default_factory=dict, init=False, compare=False, repr=False)
    _env_paths: frozenset = field(default=frozenset(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        errors: list[str] = []
        if self.service_name is not None and not self.service_name.strip():
            errors.append("service_name: is empty")
        if isinstance(self.capture_content, bool):
            self.capture_content = "span_only" if self.capture_content else "no_content"
        elif self.capture_content is not None:
            text = self.capture_content.strip().lower()
            if text in ("true", "false"):
                text = "span_only" if text == "true" else "no_content"
            if text not in _CAPTURE_VALUES:
                errors.append(
                    f"capture_content: {choice_message(self.capture_content, _CAPTURE_VALUES)}"
                )
            else:
                self.capture_content = text
        seen: dict[str, int] = {}
        for i, dest in enumerate(self.export or ()):
            if dest.name is None:
                continue
            if dest.name in seen:
                errors.append(
                    f"export[{i}].name: {dest.name!r} is already the name of export"
                    f"[{seen[dest.name]}]; give each destination its own name"
                )
            seen.setdefault(dest.name, i)
        _raise(errors)

    @property
    def capture_mode(self) -> CaptureMode | None:
        """The file's capture mode, or None when the file does not set one."""
        return None if self.capture_content is None else CaptureMode(self.capture_content)

    def section(self, key: str, cls: type) -> Any:
        """Build another dataclass from a raw section (``judge``) with this file's line
        numbers in errors: ``cfg.section("judge", JudgeConfig)``."""
        raw = getattr(self, key)
        return build(cls, raw, key, source=self.source or "config", lines=self._lines)


#: sections owned by other modules, imported by name when a file is loaded (the stages'
#: sections, ``redaction`` and ``pricing``, come from :mod:`llmtap.pipeline.stages`)
SECTIONS = {
    "service": ("llmtap.service", "ServiceConfig"),
    "eval": ("llmtap.evals.eval_config", "EvalConfig"),
}


def section_types(overrides: Mapping[str, type] | None = None) -> dict[str, Any]:
    """The dataclass for each late-bound section: each stage's options, then
    :data:`SECTIONS` (a section whose module is not there (yet) stays a raw mapping)."""
    from llmtap.pipeline.stages import stage_registry

    stages = stage_registry()
    out: dict[str, Any] = {name: stages[name].options for name in stages}
    if overrides:
        out.update((name, tp) for name, tp in overrides.items() if name in out)
    for name, (module, attr) in SECTIONS.items():
        if overrides and name in overrides:
            out[name] = overrides[name]
            continue
        try:
            cls = getattr(importlib.import_module(module), attr, None)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            cls = None
        out[name] = cls if cls is not None else (dict[str, Any] | None)
    return out


# Loading ---------------------------------------------------------------------------------


def load_config(
    path: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    *,
    sections: Mapping[str, type] | None = None,
) -> LlmtapConfig:
    """Load and validate llmtap.yaml; the defaults when no file is named.

    ``path`` else ``$LLMTAP_CONFIG`` names the file. ``env`` (default ``os.environ``)
    serves ``${env:...}`` references. ``sections`` overrides the dataclass of a section
    (``{"redaction": MyRedactionConfig}``). Relative paths in the file (:data:`PATH_KEYS`)
    are taken relative to the file's folder. Raises :class:`ConfigError` listing every
    problem found.
    """
    loaded = read_config(path, env, sections=sections)
    if loaded.problems:
        raise ConfigError(loaded.problems, loaded.source)
    assert loaded.config is not None
    for message in loaded.config.warnings:
        _log.warning("%s", message)
    return loaded.config


@dataclass
class Loaded:
    """What :func:`read_config` found: the configuration (None when it has problems), every
    problem, and the raw data and line numbers (for checking late-bound sections such as
    ``judge`` with the same file positions)."""

    source: str
    config: LlmtapConfig | None
    problems: list[Problem]
    data: Mapping[str, Any]
    lines: dict[str, int]

    def messages(self) -> list[str]:
        """Every problem as ``file:line: key: message``, in file order."""
        return [p.format(self.source) for p in self.problems]


def read_config(
    path: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    *,
    sections: Mapping[str, type] | None = None,
) -> Loaded:
    """Like :func:`load_config`, but never raises for a bad file: returns every problem
    (a missing ``${env:...}`` variable and the file's other mistakes together), and the
    literal-secret warnings in ``config.warnings`` without logging them."""
    env = os.environ if env is None else env
    types_by_path = section_types(sections)
    from_env = False
    if path is None:
        named = env.get(CONFIG_ENV, "").strip()
        if not named:
            return Loaded("defaults", _defaults(types_by_path), [], {}, {})
        path, from_env = named, True
    source = os.fspath(path)
    try:
        data, lines = read_yaml(source, from_env)
    except ConfigError as exc:
        return Loaded(source, None, exc.problems, {}, {})
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        problem = Problem("", f"expected a mapping of settings at the top level, got {kind(data)}")
        return Loaded(source, None, [problem], {}, lines)
    substituted: list[Problem] = []
    env_paths: set[str] = set()
    data = substitute(data, "", env, substituted, env_paths)
    substituted = [dataclasses.replace(p, line=line_for(lines, p.path)) for p in substituted]
    data = resolve_paths(data, os.path.dirname(os.path.abspath(source)))
    problems = list(substituted)
    cfg: LlmtapConfig | None = None
    try:
        cfg = build(LlmtapConfig, data, types=types_by_path, source=source, lines=lines)
    except ConfigError as exc:
        # a value left empty by a missing variable is reported once, as the variable
        known = {p.path for p in substituted}
        problems += [p for p in exc.problems if not _under(p.path, known)]
    if cfg is not None:
        problems += _unresolved_export_keys(cfg, env, lines)
    if problems:
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        return Loaded(source, None, problems, data, lines)
    assert cfg is not None
    cfg.source = source
    cfg._lines = lines
    cfg._env_paths = frozenset(env_paths)
    for path_, _ in literal_secrets(data, "", env_paths):
        line = line_for(lines, path_)
        where = f"{source}:{line}" if line else source
        cfg.warnings.append(
            f"{where}: {path_}: a literal secret in the config file; reference it from the "
            f"environment instead (${{env:VAR}}) so the file can be shared and versioned"
        )
    return Loaded(source, cfg, [], data, lines)


def _unresolved_export_keys(
    cfg: LlmtapConfig, env: Mapping[str, str], lines: Mapping[str, int]
) -> list[Problem]:
    """The keys an ``export:`` entry needs that neither it nor the service name gives
    (``datadog_llmobs``'s ``ml_app``)."""
    from llmtap.export.presets import unresolved_keys

    service_name = effective_service_name(cfg, env)
    out = []
    for i, export in enumerate(cfg.export or ()):
        for key, hint in unresolved_keys(export, service_name):
            path = f"export[{i}].{key}"
            message = f"export preset {export.preset!r} needs {key} ({hint})"
            out.append(Problem(path, message, line_for(lines, path)))
    return out


def _under(path: str, roots: set[str]) -> bool:
    return any(path == r or path.startswith((r + ".", r + "[")) for r in roots)


def _defaults(types_by_path: Mapping[str, Any]) -> LlmtapConfig:
    """The configuration without a file: every section's defaults (no builder needed)."""
    sections = {k: t() for k, t in types_by_path.items() if dataclasses.is_dataclass(t)}
    return LlmtapConfig(**sections)


# Settings from the file and the environment ----------------------------------------------


def _set(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name)
    return value is not None and bool(value.strip())


def settings_from(cfg: LlmtapConfig, env: Mapping[str, str] | None = None) -> Settings:
    """The in-process ``Settings``: each environment variable wins where it is set, then
    the file, then the default."""
    env = os.environ if env is None else env
    base = Settings.from_env(dict(env))

    def pick(var: str, from_env: Any, from_file: Any) -> Any:
        return from_env if _set(env, var) or from_file is None else from_file

    content = cfg.content
    limits = ContentLimits(
        max_part_chars=pick(
            "LLMTAP_CONTENT_MAX_PART_CHARS", base.limits.max_part_chars, content.max_part_chars
        ),
        max_attribute_chars=pick(
            "LLMTAP_CONTENT_MAX_ATTRIBUTE_CHARS",
            base.limits.max_attribute_chars,
            content.max_attribute_chars,
        ),
        capture_blobs=pick(
            "LLMTAP_CONTENT_CAPTURE_BLOBS", base.limits.capture_blobs, content.capture_blobs
        ),
    )
    return Settings(
        capture=pick(CAPTURE_ENV, base.capture, cfg.capture_mode),
        limits=limits,
        estimate_stream_usage=pick(
            "LLMTAP_ESTIMATE_STREAM_USAGE", base.estimate_stream_usage, cfg.streams.estimate_usage
        ),
        inject_stream_usage=pick(
            "LLMTAP_INJECT_STREAM_USAGE", base.inject_stream_usage, cfg.streams.inject_usage
        ),
        framework_internal_spans=pick(
            "LLMTAP_FRAMEWORK_INTERNAL_SPANS",
            base.framework_internal_spans,
            cfg.frameworks.internal_spans,
        ),
    )


def effective_service_name(cfg: LlmtapConfig, env: Mapping[str, str] | None = None) -> str | None:
    """``OTEL_SERVICE_NAME``, else ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, else the
    file's ``service_name``."""
    env = os.environ if env is None else env
    if _set(env, "OTEL_SERVICE_NAME"):
        return env["OTEL_SERVICE_NAME"].strip()
    for item in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip() == "service.name" and value.strip():
            return value.strip()
    return getattr(cfg, "service_name", None)
