"""``llmtap.yaml``: loading, ``${env:...}`` substitution and validation with clear errors.

``load_config()`` reads the file named by its argument, else by ``LLMTAP_CONFIG``, else
returns the defaults. Every string scalar may hold ``${env:VAR}`` or ``${env:VAR:-default}``
(the default applies when VAR is unset or empty, as in the shell; ``$${`` writes a literal
``${``). Values are then checked against the dataclasses below by a generic builder, and
every problem found is reported at once in one :class:`ConfigError`::

    llmtap.yaml:4: redaction.mode: expected one of mask, hash, drop, got 'maks' (did you ...)
    llmtap.yaml:9: export[1].preset: expected one of otlp, jaeger, ..., got 'jeager' (...)
    llmtap.yaml:12: sampling.head.rules[0].ratio: expected a number, got 'ten percent'

The builder (:func:`build`) constructs any dataclass from a mapping by field name and type
hint: ``str``, ``int``, ``float`` (ints accepted), ``bool``, ``Literal[...]``, enums,
``list[X]``/``tuple[X, ...]``, ``dict[str, X]``, ``X | None``, unions, nested dataclasses,
``Any``. Strings are accepted for numbers and booleans (``${env:...}`` always gives a
string). A ``null`` section or list means "the defaults". Unknown keys are rejected with a
did-you-mean suggestion. A dataclass validates its own values in ``__post_init__`` by
raising ``ValueError``; a message line that starts with ``<field>: `` (or a deeper path
such as ``when.llmtap.feature: ``) is reported at that field, and a message may hold several
lines, one problem each.

Secrets: values of keys named like ``*key*``, ``*token*``, ``*secret*``, ``*password*``,
``*auth*`` and everything under ``headers`` are never shown in errors. Literal secrets are
accepted, but each one logs a warning (also in ``LlmtapConfig.warnings``): secrets belong in
the environment, referenced as ``${env:VAR}``, so the file can live in version control.

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
import difflib
import enum
import importlib
import logging
import os
import re
import types as _types
import typing
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from llmtap.config import CAPTURE_ENV, CaptureMode, ContentLimits, Settings

__all__ = [
    "CONFIG_ENV",
    "PATH_KEYS",
    "PRESETS",
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
    "settings_from",
]

_log = logging.getLogger("llmtap")

CONFIG_ENV = "LLMTAP_CONFIG"
_DEFAULT_SOURCE = "llmtap.yaml"


# Errors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where (key path, line) and what."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def format(self, source: str) -> str:
        where = source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ValueError):
    """A configuration that cannot be used; ``problems`` lists every reason, one per line."""

    def __init__(self, problems: Sequence[Problem], source: str = _DEFAULT_SOURCE) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(p.format(source) for p in self.problems))


# Secrets ---------------------------------------------------------------------------------

_SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "bearer",
        "team",  # x-honeycomb-team carries the API key
    }
)
# `input_cost_per_token`, `max_tokens_per_key`...: prices and limits, not secrets;
# `api_key_env`, `tls_key_file`: where a secret is, not the secret
_NOT_SECRET_WORDS = frozenset(
    {"cost", "per", "count", "limit", "max", "min", "env", "file", "path"}
)
_WORD = re.compile(r"[a-z0-9]+")


def _is_secret_name(name: str) -> bool:
    words = set(_WORD.findall(name.lower()))
    if words & _NOT_SECRET_WORDS:
        return False
    return bool(words & _SECRET_WORDS) or any(
        w.endswith(("apikey", "secretkey", "accesskey", "token", "password")) for w in words
    )


def _segments(path: str) -> list[str]:
    return [s for s in re.split(r"\.|\[\d+\]", path) if s]


def _is_secret_path(path: str) -> bool:
    """Whether the value at ``path`` must not be shown: a secret-like key, or a header."""
    parts = _segments(path)
    if not parts:
        return False
    return _is_secret_name(parts[-1]) or "headers" in parts[:-1] or parts[-1] == "headers"


def _show(value: Any, path: str = "") -> str:
    if path and _is_secret_path(path):
        return "(value hidden)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _secret_values(data: Any, path: str = "", out: set[str] | None = None) -> set[str]:
    """Every string under a secret-like key (or a header), to scrub from error messages."""
    out = set() if out is None else out
    if isinstance(data, Mapping):
        for key, value in data.items():
            _secret_values(value, _join(path, str(key)), out)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _secret_values(value, f"{path}[{i}]", out)
    elif isinstance(data, str) and len(data) >= 4 and _is_secret_path(path):
        out.add(data)
    return out


def _scrub(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# The generic builder ---------------------------------------------------------------------

_FAILED: Any = object()
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_PREFIX = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\]|\.[^:\s][^:]*?)*): (.*)", re.S)


class _Builder:
    def __init__(self, types_by_path: Mapping[str, Any] | None = None) -> None:
        self.problems: list[Problem] = []
        self.types_by_path = dict(types_by_path or {})
        self._hints: dict[type, dict[str, Any]] = {}

    def fail(self, path: str, message: str) -> Any:
        self.problems.append(Problem(path, message))
        return _FAILED

    # dataclasses ---------------------------------------------------------------------

    def hints(self, cls: type) -> dict[str, Any] | None:
        if cls not in self._hints:
            try:
                self._hints[cls] = typing.get_type_hints(cls)
            except Exception as exc:  # unresolvable annotations in someone's dataclass
                self.fail("", f"cannot read the type hints of {cls.__qualname__}: {exc}")
                return None
        return self._hints[cls]

    def dataclass(self, cls: type, data: Any, path: str) -> Any:
        if data is None:
            data = {}
        fields = [f for f in dataclasses.fields(cls) if f.init]
        names = [f.name for f in fields]
        if not isinstance(data, Mapping):
            keys = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            return self.fail(
                path, f"expected a mapping (keys: {keys}), got {_kind(data)} {_show(data, path)}"
            )
        hints = self.hints(cls)
        if hints is None:
            return _FAILED
        kwargs: dict[str, Any] = {}
        failed = False  # cannot construct: a required value is missing or wrong
        invalid = False  # can construct (to find more problems), but the result is unusable
        failed_fields: set[str] = set()
        for key in data:
            if not isinstance(key, str):
                self.fail(path, f"keys must be strings, got {_show(key)}")
                invalid = True
            elif key not in names:
                self.fail(_join(path, key), _unknown_key(key, names))
                invalid = True
        for f in fields:
            fpath = _join(path, f.name)
            ftype = self.types_by_path.get(fpath, hints.get(f.name, Any))
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if f.name in data:
                value = self.value(ftype, data[f.name], fpath)
            elif fpath in self.types_by_path and dataclasses.is_dataclass(ftype):
                value = self.dataclass(ftype, {}, fpath)  # a section given its type late
            elif required:
                self.fail(path, f"missing required key {f.name!r}")
                failed = True
                continue
            else:
                continue
            if value is _FAILED:
                failed_fields.add(f.name)
                failed = failed or required
            else:
                kwargs[f.name] = value
        if failed:
            return _FAILED
        # Construct even when some optional fields failed (their defaults stand in) or
        # keys are unknown, so that __post_init__ reports the other fields' problems too.
        try:
            result = cls(**kwargs)
        except (ValueError, TypeError) as exc:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                if line.strip():
                    self._post_init_problem(path, names, line.strip(), failed_fields)
            return _FAILED
        return _FAILED if failed_fields or invalid else result

    def _post_init_problem(
        self, path: str, names: list[str], line: str, skip: set[str] = frozenset()
    ) -> None:
        match = _PREFIX.fullmatch(line)
        if match and match.group(1) in names:
            if match.group(1) in skip:  # about a value already reported (and replaced)
                return
            self.fail(_join(path, match.group(1) + match.group(2)), match.group(3))
        elif not skip:
            self.fail(path, line)

    # values --------------------------------------------------------------------------

    def value(self, tp: Any, data: Any, path: str) -> Any:
        if tp is Any or tp is object:
            return data
        origin = typing.get_origin(tp)
        if origin is typing.Union or origin is _types.UnionType:
            return self.union(typing.get_args(tp), data, path)
        if origin is Literal:
            return self.literal(typing.get_args(tp), data, path)
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, data, path)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self.enum(tp, data, path)
        if tp is bool:
            return self.boolean(data, path)
        if tp is int:
            return self.integer(data, path)
        if tp is float:
            return self.number(data, path)
        if tp is str:
            if isinstance(data, str):
                return data
            hint = " (quote it)" if isinstance(data, (int, float, bool)) else ""
            return self.fail(
                path, f"expected a string, got {_kind(data)} {_show(data, path)}{hint}"
            )
        container = origin or tp
        args = typing.get_args(tp)
        if container in (list, tuple, set, frozenset, Sequence, typing.Sequence):
            return self.sequence(container, args, data, path)
        if container in (dict, Mapping, MutableMapping, typing.Mapping):
            return self.mapping(args, data, path)
        if isinstance(tp, type):
            if isinstance(data, tp):
                return data
            return self.fail(path, f"expected {tp.__name__}, got {_kind(data)}")
        return data  # a hint this builder does not know: pass the value through

    def union(self, args: tuple, data: Any, path: str) -> Any:
        if data is None:
            if type(None) in args:
                return None
            return self.fail(path, f"expected {_describe_union(args)}, got null")
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return self.value(members[0], data, path)
        exact = [a for a in members if _natural(a, data)]
        for candidate in exact + [a for a in members if a not in exact]:
            trial = _Builder(self.types_by_path)
            trial._hints = self._hints
            value = trial.value(candidate, data, path)
            if value is not _FAILED:
                return value
            if candidate in exact and len(exact) == 1:  # the right shape, wrong contents
                self.problems.extend(trial.problems)
                return _FAILED
        return self.fail(
            path,
            f"expected {_describe_union(tuple(members))}, got {_kind(data)} {_show(data, path)}",
        )

    def literal(self, choices: tuple, data: Any, path: str) -> Any:
        if data in choices and type(data) in {type(c) for c in choices}:
            return data
        return self.fail(path, _choice_message(data, [str(c) for c in choices], path))

    def enum(self, tp: type[enum.Enum], data: Any, path: str) -> Any:
        if isinstance(data, tp):
            return data
        values = [str(m.value) for m in tp]
        if isinstance(data, str):
            for member in tp:
                if data.lower() in (str(member.value).lower(), member.name.lower()):
                    return member
        return self.fail(path, _choice_message(data, values, path))

    def boolean(self, data: Any, path: str) -> Any:
        if isinstance(data, bool):
            return data
        if isinstance(data, str):
            text = data.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        return self.fail(path, f"expected true or false, got {_kind(data)} {_show(data, path)}")

    def integer(self, data: Any, path: str) -> Any:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        if isinstance(data, float) and data.is_integer():
            return int(data)
        if isinstance(data, str):
            try:
                return int(data.strip())
            except ValueError:
                pass
        return self.fail(path, f"expected an integer, got {_kind(data)} {_show(data, path)}")

    def number(self, data: Any, path: str) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        if isinstance(data, str):
            try:
                return float(data.strip())
            except ValueError:
                pass
        return self.fail(path, f"expected a number, got {_kind(data)} {_show(data, path)}")

    def sequence(self, container: Any, args: tuple, data: Any, path: str) -> Any:
        if data is None:
            data = []
        if not isinstance(data, (list, tuple)):
            return self.fail(path, f"expected a list, got {_kind(data)} {_show(data, path)}")
        if container is tuple and len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(data)
        elif container is tuple and args:
            if len(args) != len(data):
                return self.fail(path, f"expected a list of {len(args)} items, got {len(data)}")
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(data)
        items = [
            self.value(t, v, f"{path}[{i}]")
            for i, (t, v) in enumerate(zip(item_types, data, strict=True))
        ]
        if any(v is _FAILED for v in items):
            return _FAILED
        if container in (tuple, set, frozenset):
            return container(items)
        return items

    def mapping(self, args: tuple, data: Any, path: str) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            return self.fail(path, f"expected a mapping, got {_kind(data)} {_show(data, path)}")
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        out: dict[Any, Any] = {}
        failed = False
        for key, value in data.items():
            if key_type is str and not isinstance(key, str):
                self.fail(path, f"keys must be strings, got {_show(key)}")
                failed = True
                continue
            built = self.value(value_type, value, _join(path, str(key)))
            if built is _FAILED:
                failed = True
            else:
                out[key] = built
        return _FAILED if failed else out


def _natural(tp: Any, data: Any) -> bool:
    """Whether ``data`` already has the Python type ``tp`` asks for (no coercion needed)."""
    origin = typing.get_origin(tp) or tp
    if origin is bool:
        return isinstance(data, bool)
    if origin is int:
        return isinstance(data, int) and not isinstance(data, bool)
    if origin is float:
        return isinstance(data, (int, float)) and not isinstance(data, bool)
    if origin is str or origin is Literal:
        return isinstance(data, str)
    if dataclasses.is_dataclass(origin) or origin in (dict, Mapping, MutableMapping):
        return isinstance(data, Mapping)
    if origin in (list, tuple, set, frozenset, Sequence):
        return isinstance(data, list)
    return False


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp) or tp
    if origin is Literal:
        return "one of " + ", ".join(str(c) for c in typing.get_args(tp))
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        tuple: "a list",
        dict: "a mapping",
    }
    if origin in names:
        return names[origin]
    if dataclasses.is_dataclass(origin):
        return "a mapping"
    return getattr(origin, "__name__", str(origin))


def _describe_union(args: tuple) -> str:
    return " or ".join(_describe(a) if a is not type(None) else "null" for a in args)


def _unknown_key(key: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    return f"unknown key {key!r}; expected one of: {', '.join(names)}"


def _choice_message(value: Any, choices: Sequence[str], path: str = "") -> str:
    text = f"expected one of {', '.join(choices)}, got {_show(value, path)}"
    if isinstance(value, str) and not _is_secret_path(path):
        close = difflib.get_close_matches(value.lower(), choices, n=1, cutoff=0.6)
        if close:
            text += f" (did you mean {close[0]!r}?)"
    return text


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
    builder = _Builder(types)
    result = builder.dataclass(cls, data, path)
    if builder.problems or result is _FAILED:
        secrets = _secret_values(data, path)
        problems = [
            Problem(
                p.path,
                _scrub(p.message, secrets),
                _line_for(lines, p.path) if lines else None,
            )
            for p in builder.problems
        ]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))  # in file order
        raise ConfigError(problems or [Problem(path, "invalid configuration")], source)
    return result


def _line_for(lines: Mapping[str, int], path: str) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
    return lines.get(path)


# The schema ------------------------------------------------------------------------------

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
    max_attribute_chars: int | None = None
    capture_blobs: bool | None = None

    def __post_init__(self) -> None:
        errors: list[str] = []
        _positive(errors, "max_part_chars", self.max_part_chars)
        _positive(errors, "max_attribute_chars", self.max_attribute_chars)
        _raise(errors)


@dataclass
class StreamsConfig:
    """Streaming usage: estimate it when the provider sends none; ask the provider for it."""

    estimate_usage: bool | None = None
    inject_usage: bool | None = None


PRESETS = (
    "otlp",
    "jaeger",
    "tempo",
    "datadog_agent",
    "datadog_llmobs",
    "langfuse",
    "phoenix",
    "honeycomb",
    "console",
    "file",
)
PROTOCOLS = ("grpc", "http/protobuf")
COMPRESSIONS = ("gzip", "none")
_OTLP_KEYS = frozenset({"endpoint", "protocol", "headers", "insecure", "compression"})
_HTTP_KEYS = frozenset({"endpoint", "protocol", "headers", "compression"})
_COMMON_KEYS = ("preset", "name", "timeout_s", "queue_size", "batch_size")
#: keys each preset uses beyond preset, name, timeout_s, queue_size, batch_size
PRESET_KEYS: dict[str, frozenset[str]] = {
    "otlp": _OTLP_KEYS,
    "jaeger": _OTLP_KEYS,
    "tempo": _OTLP_KEYS,
    "datadog_agent": _OTLP_KEYS,
    "datadog_llmobs": _HTTP_KEYS | {"api_key", "site"},
    "langfuse": _HTTP_KEYS | {"public_key", "secret_key"},
    "phoenix": _HTTP_KEYS | {"api_key"},
    "honeycomb": _HTTP_KEYS | {"api_key"},
    "console": frozenset(),
    "file": frozenset({"path"}),
}
#: keys a preset cannot work without, with a hint for the message
_REQUIRED: dict[str, tuple[tuple[str, str], ...]] = {
    "datadog_llmobs": (("api_key", "your Datadog API key, e.g. api_key: ${env:DD_API_KEY}"),),
    "langfuse": (
        ("public_key", "e.g. public_key: ${env:LANGFUSE_PUBLIC_KEY}"),
        ("secret_key", "e.g. secret_key: ${env:LANGFUSE_SECRET_KEY}"),
    ),
    "honeycomb": (
        ("api_key", "your Honeycomb ingest key, e.g. api_key: ${env:HONEYCOMB_API_KEY}"),
    ),
    "file": (("path", "where to write OTLP JSON lines, e.g. path: spans.jsonl"),),
}
#: presets that only speak OTLP over HTTP
_HTTP_ONLY = ("datadog_llmobs", "langfuse", "phoenix", "honeycomb")


@dataclass
class ExportConfig:
    """One destination of the ``export:`` list (see ``llmtap.export.presets``)."""

    preset: str
    endpoint: str | None = None
    protocol: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None
    public_key: str | None = None
    secret_key: str | None = None
    site: str | None = None
    path: str | None = None
    insecure: bool | None = None
    timeout_s: float = 10.0
    queue_size: int = 2048
    batch_size: int = 512
    name: str | None = None
    compression: str | None = None

    def __post_init__(self) -> None:
        errors: list[str] = []
        if self.preset not in PRESETS:
            errors.append(f"preset: {_choice_message(self.preset, PRESETS)}")
            _raise(errors)
        if self.protocol == "http":
            self.protocol = "http/protobuf"
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            errors.append(f"protocol: {_choice_message(self.protocol, PROTOCOLS)}")
        elif self.protocol == "grpc" and self.preset in _HTTP_ONLY:
            errors.append(
                f"protocol: export preset {self.preset!r} sends OTLP over http/protobuf "
                "only; remove protocol or set it to http/protobuf"
            )
        if self.compression is not None and self.compression not in COMPRESSIONS:
            errors.append(f"compression: {_choice_message(self.compression, COMPRESSIONS)}")
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
        for key, hint in _REQUIRED.get(self.preset, ()):
            value = getattr(self, key)
            if value is None or not str(value).strip():
                state = "is empty" if value is not None else "is missing"
                errors.append(
                    f"{key}: export preset {self.preset!r} needs {key} ({hint}); it {state}"
                )
        allowed = PRESET_KEYS[self.preset]
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
        _raise(errors)

    @property
    def label(self) -> str:
        """The destination's name in logs and metrics."""
        return self.name or self.preset


@dataclass
class HeadRule:
    """``when`` (matcher syntax: ``llmtap.pipeline.sampling``) → keep ``ratio`` of traces."""

    when: dict[str, Any]
    ratio: float
    name: str | None = None

    def __post_init__(self) -> None:
        from llmtap.pipeline.sampling import compile_head_when

        errors: list[str] = []
        if not 0.0 <= self.ratio <= 1.0:
            errors.append(f"ratio: expected a ratio between 0 and 1, got {self.ratio!r}")
        try:
            compile_head_when(self.when, "when")
        except ValueError as exc:
            errors.append(str(exc))
        _raise(errors)


@dataclass
class HeadSamplingConfig:
    default: float = 1.0
    parent_based: bool = True
    rules: list[HeadRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.default <= 1.0:
            raise ValueError(f"default: expected a ratio between 0 and 1, got {self.default!r}")


@dataclass
class SamplingConfig:
    head: HeadSamplingConfig = field(default_factory=HeadSamplingConfig)


@dataclass
class LlmtapConfig:
    """The whole of llmtap.yaml. ``redaction`` and ``pricing`` hold
    ``llmtap.pipeline.redact.RedactionConfig`` and ``llmtap.pipeline.cost.PricingConfig``
    when loaded by :func:`load_config`; ``judge`` stays a raw mapping for the service."""

    service_name: str | None = None
    capture_content: str | bool | None = None
    content: ContentConfig = field(default_factory=ContentConfig)
    streams: StreamsConfig = field(default_factory=StreamsConfig)
    redaction: Any = None
    pricing: Any = None
    export: list[ExportConfig] = field(default_factory=list)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    service: Any = None
    judge: dict[str, Any] | None = None
    eval: Any = None
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
                    f"capture_content: {_choice_message(self.capture_content, _CAPTURE_VALUES)}"
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


# Sections owned by other modules, imported when a file is loaded.
_SECTIONS = {
    "redaction": ("llmtap.pipeline.redact", "RedactionConfig"),
    "pricing": ("llmtap.pipeline.cost", "PricingConfig"),
    "service": ("llmtap.service", "ServiceConfig"),
    "eval": ("llmtap.evals.eval_config", "EvalConfig"),
}


def section_types(overrides: Mapping[str, type] | None = None) -> dict[str, Any]:
    """The dataclass for each late-bound section; a section whose module is not there
    (yet) stays a raw mapping."""
    out: dict[str, Any] = {}
    for name, (module, attr) in _SECTIONS.items():
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

_ENV_REF = re.compile(r"\$(\$?)\{env:([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
            cfg = build(LlmtapConfig, {}, types=types_by_path, source="defaults")
            return Loaded("defaults", cfg, [], {}, {})
        path, from_env = named, True
    source = os.fspath(path)
    try:
        data, lines = _read(source, from_env)
    except ConfigError as exc:
        return Loaded(source, None, exc.problems, {}, {})
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        problem = Problem("", f"expected a mapping of settings at the top level, got {_kind(data)}")
        return Loaded(source, None, [problem], {}, lines)
    substituted: list[Problem] = []
    env_paths: set[str] = set()
    data = _substitute(data, "", env, substituted, env_paths)
    substituted = [dataclasses.replace(p, line=_line_for(lines, p.path)) for p in substituted]
    data = resolve_paths(data, os.path.dirname(os.path.abspath(source)))
    problems = list(substituted)
    cfg: LlmtapConfig | None = None
    try:
        cfg = build(LlmtapConfig, data, types=types_by_path, source=source, lines=lines)
    except ConfigError as exc:
        # a value left empty by a missing variable is reported once, as the variable
        known = {p.path for p in substituted}
        problems += [p for p in exc.problems if not _under(p.path, known)]
    if problems:
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        return Loaded(source, None, problems, data, lines)
    assert cfg is not None
    cfg.source = source
    cfg._lines = lines
    cfg._env_paths = frozenset(env_paths)
    for path_, _ in _literal_secrets(data, "", env_paths):
        line = _line_for(lines, path_)
        where = f"{source}:{line}" if line else source
        cfg.warnings.append(
            f"{where}: {path_}: a literal secret in the config file; reference it from the "
            f"environment instead (${{env:VAR}}) so the file can be shared and versioned"
        )
    return Loaded(source, cfg, [], data, lines)


def _under(path: str, roots: set[str]) -> bool:
    return any(path == r or path.startswith((r + ".", r + "[")) for r in roots)


#: keys whose values name files; a relative path is relative to the config file's folder
#: (``[]``: every item of a list)
PATH_KEYS = (
    "export[].path",
    "pricing.file",
    "judge.review_queue",
    "service.tls_cert_file",
    "service.tls_key_file",
)


def resolve_paths(data: Mapping[str, Any], base_dir: str) -> Mapping[str, Any]:
    """``data`` with every relative path of :data:`PATH_KEYS` joined to ``base_dir`` (``~``
    is expanded); values of the wrong type are left for validation to report."""
    out = dict(data)
    for key in PATH_KEYS:
        _resolve(out, key.split("."), base_dir)
    return out


def _resolve(node: Any, parts: list[str], base_dir: str) -> None:
    if not isinstance(node, dict) or not parts:
        return
    name, rest = parts[0], parts[1:]
    each = name.endswith("[]")
    name = name.removesuffix("[]")
    if name not in node:
        return
    value = node[name]
    if each:
        if isinstance(value, list):
            items = [dict(v) if isinstance(v, Mapping) else v for v in value]
            for item in items:
                _resolve(item, rest, base_dir)
            node[name] = items
        return
    if rest:
        if isinstance(value, Mapping):
            node[name] = dict(value)
            _resolve(node[name], rest, base_dir)
        return
    if isinstance(value, str) and value.strip():
        expanded = os.path.expanduser(value)
        if not os.path.isabs(expanded):
            expanded = os.path.normpath(os.path.join(base_dir, expanded))
        node[name] = expanded


def _read(source: str, from_env: bool) -> tuple[Any, dict[str, int]]:
    origin = f" (from {CONFIG_ENV})" if from_env else ""
    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError([Problem("", f"no such file{origin}")], source) from None
    except IsADirectoryError:
        raise ConfigError([Problem("", f"is a directory, not a file{origin}")], source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("", f"is not valid UTF-8 ({exc.reason})")], source) from None
    except OSError as exc:
        raise ConfigError(
            [Problem("", f"cannot be read: {exc.strerror}{origin}")], source
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        raise ConfigError(
            [
                Problem(
                    "",
                    f"YAML syntax error: {message}",
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                )
            ],
            source,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"YAML error: {exc}")], source) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    duplicates: list[Problem] = []
    if node is not None:
        _index(node, "", lines, duplicates)
    if duplicates:
        raise ConfigError(duplicates, source)
    return data, lines


def _index(node: yaml.Node, path: str, lines: dict[str, int], dups: list[Problem]) -> None:
    """Line numbers of every key path; duplicate keys (YAML would keep the last silently)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key == "<<":
                _index(value_node, path, lines, dups)
                continue
            child = _join(path, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                dups.append(
                    Problem(child, f"duplicate key (first given on line {seen[key]})", line)
                )
            seen.setdefault(key, line)
            lines.setdefault(child, line)
            _index(value_node, child, lines, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines.setdefault(child, item.start_mark.line + 1)
            _index(item, child, lines, dups)


def _substitute(
    data: Any, path: str, env: Mapping[str, str], problems: list[Problem], env_paths: set[str]
) -> Any:
    if isinstance(data, Mapping):
        return {
            k: _substitute(v, _join(path, str(k)), env, problems, env_paths)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [
            _substitute(v, f"{path}[{i}]", env, problems, env_paths) for i, v in enumerate(data)
        ]
    if not isinstance(data, str) or "${" not in data:
        return data

    def replace(match: re.Match) -> str:
        escaped, body = match.group(1), match.group(2)
        if escaped:
            return "${env:" + body + "}"
        name, sep, default = body.partition(":-")
        if not _ENV_NAME.fullmatch(name):
            problems.append(
                Problem(
                    path,
                    f"malformed reference ${{env:{body}}}: expected ${{env:VAR}} or "
                    "${env:VAR:-default}",
                )
            )
            return ""
        env_paths.add(path)
        value = env.get(name)
        if sep:
            return value if value else default
        if value is None:
            problems.append(
                Problem(
                    path,
                    f"environment variable {name} is not set (referenced as ${{env:{name}}}; "
                    f"write ${{env:{name}:-default}} to give a fallback)",
                )
            )
            return ""
        return value

    return _ENV_REF.sub(replace, data)


def _literal_secrets(data: Any, path: str, env_paths: set[str]) -> list[tuple[str, str]]:
    """Secret-like keys (API keys, tokens, auth headers) given a literal value rather than
    an ``${env:...}`` reference; ``when`` conditions are not settings and are skipped."""
    out: list[tuple[str, str]] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            child = _join(path, str(key))
            if key == "when":
                continue
            if isinstance(value, str):
                if value.strip() and child not in env_paths and _is_secret_name(str(key)):
                    out.append((child, value))
            else:
                out.extend(_literal_secrets(value, child, env_paths))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.extend(_literal_secrets(value, f"{path}[{i}]", env_paths))
    return out


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
    return cfg.service_name
