"""The one builder: raw config mappings into typed options dataclasses, every problem at once.

Every component owns a plain dataclass of its options (``ExportConfig``, ``RedactionConfig``,
``HeadSamplingConfig``, an evaluator's options, ...) with defaults, and checks its values in
``__post_init__`` by raising ``ValueError``. :func:`structure` builds such a dataclass from a
mapping by field name and type hint: ``str``, ``int``, ``float`` (ints accepted), ``bool``,
``Literal[...]``, enums, ``list[X]``/``tuple[X, ...]``, ``dict[str, X]``, ``X | None``,
unions, nested dataclasses, ``Any``. Strings are accepted for numbers and booleans
(``${env:...}`` always gives a string). A ``null`` section or list means "the defaults".
A field's metadata may hold a ``check``: a function of the converted value that returns a
problem (or None), reported at the field in field order; ``present: True`` asks for the key
to be written even though the field has a default. A ``__post_init__`` message line
that starts with ``<field>: `` (or a deeper path such as
``when.llmtap.feature: ``) is reported at that field; a message may hold several lines.
When some optional fields are wrong the dataclass is still constructed (their defaults
stand in), so that its own checks report the other fields' problems in the same run.

The typed conversion is cattrs (``cattrs.Converter`` with detailed validation): it
converts into the plain dataclasses the code already has (no base class, no schema
language), collects every problem of a value at once as exception groups that carry the
path of each (attribute and index notes), is pure Python, and is kept by the attrs
project. What no library does is kept here: the problems' wording (``expected an integer,
got string 'lots'``), did-you-mean on unknown keys and choices, secrets never shown (a
message is worded once its whole path is known), and the per-family wording of a
:class:`Dialect` (the ``llmtap.yaml`` sections use :data:`FILE`; the evaluator registry
and the judge's settings word their problems as they always have, the latter with its
values as written and unknown keys reported alone). ``file:line`` positions and
``${env:...}`` are the loader's (:mod:`llmtap.config_file`).

cattrs is imported here only; :mod:`llmtap.config_file` imports this module when it has a
file to read, so an app without a config file does not pay for the import.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types as _types
import typing
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any, Literal

import cattrs
from cattrs.cols import list_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_mapping_structure_fn

from llmtap.configuration.problems import choice_message, join, kind, show
from llmtap.diagnostics import did_you_mean

__all__ = ["FAILED", "FILE", "Dialect", "FileDialect", "Invalid", "describe", "structure"]

#: the result of a build that found problems
FAILED: Any = object()

Wording = Callable[[str, Any], str]


class Invalid(ValueError):
    """One problem with a value. ``path`` is relative to the value (``when.status``);
    ``message`` is a text, or a function of the absolute path and the caller's context
    (so that a value under a secret key is hidden, or the wording names the component)."""

    def __init__(self, message: str | Wording, path: str = "") -> None:
        super().__init__(message if isinstance(message, str) else "invalid value")
        self.message = message
        self.path = path

    def text(self, where: str, context: Any) -> str:
        return self.message if isinstance(self.message, str) else self.message(where, context)


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or origin is _types.UnionType


_SEQUENCES = (list, tuple, set, frozenset, Sequence, typing.Sequence)
_MAPPINGS = (dict, Mapping, MutableMapping, typing.Mapping)
_PREFIX = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\]|\.[^:\s][^:]*?)*): (.*)", re.S)


class Dialect:
    """One family of options: a cattrs converter with the hooks of its scalars, and the
    wording of its problems. The scalars here are strict (a string is a string); subclasses
    change the wording and the scalar hooks; the walk over dataclasses, lists, mappings and
    unions is the same for every family."""

    #: report unknown keys (else the caller does, after its own checks)
    report_unknown_keys = True
    #: report unknown keys before the fields' problems (else after them)
    unknown_keys_first = True
    #: a key given as null takes the field's default (else null is a value)
    null_is_missing = False
    #: keys of an entry that belong to something around the options (not unknown)
    ignored_keys: frozenset[str] = frozenset()
    #: a null mapping means the defaults (else it is reported as not a mapping)
    null_is_empty = True
    #: unknown keys are reported alone, without reading the fields (else with their problems)
    unknown_keys_alone = False
    #: the fields' values go to the dataclass as written, unconverted: it checks them
    #: itself, and its messages show them as written (``got -1``, not ``got -1.0``)
    values_as_written = False

    def __init__(self) -> None:
        self.converter = cattrs.Converter(
            detailed_validation=True, structure_fallback_factory=lambda _: _passthrough
        )
        c = self.converter
        c.register_structure_hook_func(lambda t: isinstance(t, type), self._other_class)
        c.register_structure_hook_func(lambda t: t is Any or t is object, _passthrough)
        c.register_structure_hook_factory(
            lambda t: (typing.get_origin(t) or t) in _SEQUENCES, self._sequence_hook
        )
        c.register_structure_hook_factory(
            lambda t: (typing.get_origin(t) or t) in _MAPPINGS, self._mapping_hook
        )
        c.register_structure_hook_func(lambda t: typing.get_origin(t) is Literal, self.literal)
        c.register_structure_hook_factory(_is_union, self._union_hook)
        c.register_structure_hook_factory(dataclasses.is_dataclass, self._dataclass_hook)
        c.register_structure_hook(enum.Enum, self.enum)
        c.register_structure_hook(str, self.string)
        c.register_structure_hook(int, self.integer)
        c.register_structure_hook(float, self.number)
        c.register_structure_hook(bool, self.boolean)

    # wording ---------------------------------------------------------------------------

    def missing(self, name: str, metadata: Mapping[str, Any]) -> Invalid:
        return Invalid(f"missing required key {name!r}")

    def unknown_key(self, key: str, names: Sequence[str]) -> Invalid:
        hint = did_you_mean(key, names)
        if hint:
            return Invalid(f"unknown key {key!r}{hint}", key)
        return Invalid(f"unknown key {key!r}; expected one of: {', '.join(names)}", key)

    def not_a_mapping(self, data: Any, names: Sequence[str]) -> Invalid:
        keys = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        return self.mismatch(f"a mapping (keys: {keys})", data)

    def key_not_a_string(self, key: Any) -> Invalid:
        return Invalid(f"keys must be strings, got {show(key)}")

    def mismatch(self, expected: str, data: Any, hint: str = "") -> Invalid:
        return Invalid(lambda p, _: f"expected {expected}, got {kind(data)} {show(data, p)}{hint}")

    def unknown_keys(self, data: Mapping, names: Sequence[str]) -> list[Invalid]:
        """A problem for each key of ``data`` that is not one of ``names`` (nor ignored)."""
        return [
            self.key_not_a_string(key) if not isinstance(key, str) else self.unknown_key(key, names)
            for key in data
            if not isinstance(key, str) or (key not in names and key not in self.ignored_keys)
        ]

    # scalars ---------------------------------------------------------------------------

    def string(self, data: Any, _: type) -> str:
        if isinstance(data, str):
            return data
        raise self.mismatch("a string", data)

    def integer(self, data: Any, _: type) -> int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        raise self.mismatch("an integer", data)

    def number(self, data: Any, _: type) -> float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        raise self.mismatch("a number", data)

    def boolean(self, data: Any, _: type) -> bool:
        if isinstance(data, bool):
            return data
        raise self.mismatch("true or false", data)

    def literal(self, data: Any, tp: Any) -> Any:
        choices = typing.get_args(tp)
        if data in choices and type(data) in {type(c) for c in choices}:
            return data
        raise Invalid(lambda p, _: choice_message(data, [str(c) for c in choices], p))

    def enum(self, data: Any, tp: type[enum.Enum]) -> enum.Enum:
        if isinstance(data, tp):
            return data
        if isinstance(data, str):
            for member in tp:
                if data.lower() in (str(member.value).lower(), member.name.lower()):
                    return member
        values = [str(m.value) for m in tp]
        raise Invalid(lambda p, _: choice_message(data, values, p))

    def _other_class(self, data: Any, tp: type) -> Any:
        if isinstance(data, tp):
            return data
        raise Invalid(f"expected {tp.__name__}, got {kind(data)}")

    # containers ------------------------------------------------------------------------

    def _sequence_hook(self, tp: Any) -> Callable[[Any, Any], Any]:
        container = typing.get_origin(tp) or tp
        args = typing.get_args(tp)
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return self._fixed_tuple_hook(args)
        item = args[0] if args else Any
        items = list_structure_factory(list[item], self.converter)  # type: ignore[valid-type]
        make = container if container in (tuple, set, frozenset) else list

        def structure_sequence(data: Any, _: Any) -> Any:
            if data is None:
                data = []
            if not isinstance(data, (list, tuple)):
                raise self.mismatch("a list", data)
            built = items(data, list[item])  # type: ignore[valid-type]
            return built if make is list else make(built)

        return structure_sequence

    def _fixed_tuple_hook(self, args: tuple) -> Callable[[Any, Any], Any]:
        def structure_tuple(data: Any, tp: Any) -> tuple:
            if not isinstance(data, (list, tuple)):
                raise self.mismatch("a list", data)
            if len(args) != len(data):
                raise Invalid(f"expected a list of {len(args)} items, got {len(data)}")
            out, errors = [], []
            for i, (t, v) in enumerate(zip(args, data, strict=True)):
                try:
                    out.append(self.converter.structure(v, t))
                except Exception as exc:
                    exc.__notes__ = [*getattr(exc, "__notes__", []), _index_note(i, t)]
                    errors.append(exc)
            if errors:
                raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
            return tuple(out)

        return structure_tuple

    def _mapping_hook(self, tp: Any) -> Callable[[Any, Any], Any]:
        args = typing.get_args(tp)
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        items = make_mapping_structure_fn(dict[key_type, value_type], self.converter)  # type: ignore[valid-type]

        def structure_mapping(data: Any, _: Any) -> dict:
            if data is None:
                data = {}
            if not isinstance(data, Mapping):
                raise self.mismatch("a mapping", data)
            if key_type is str and not all(isinstance(k, str) for k in data):
                raise self._bad_keys(items, data)
            return items(data, dict)

        return structure_mapping

    def _bad_keys(self, items: Callable[[Any, Any], Any], data: Mapping) -> Exception:
        """Keys that are not strings are reported instead of their values, in key order."""
        by_key: dict[Any, list[Exception]] = {}
        try:
            items({k: v for k, v in data.items() if isinstance(k, str)}, dict)
        except IterableValidationError as exc:
            for sub in exc.exceptions:
                notes = [n for n in getattr(sub, "__notes__", ()) if isinstance(n, _NOTES)]
                by_key.setdefault(notes[-1].index if notes else None, []).append(sub)
        errors: list[Exception] = []
        for key in data:
            errors += by_key.get(key, []) if isinstance(key, str) else [self.key_not_a_string(key)]
        return IterableValidationError("While structuring a mapping", errors, dict)

    def _union_hook(self, tp: Any) -> Callable[[Any, Any], Any]:
        args = typing.get_args(tp)
        members = tuple(a for a in args if a is not type(None))
        nullable = len(members) < len(args)

        def structure_union(data: Any, _: Any) -> Any:
            if data is None:
                if nullable:
                    return None
                raise Invalid(f"expected {describe_union(args)}, got null")
            if len(members) == 1:
                return self.converter.structure(data, members[0])
            exact = [a for a in members if _natural(a, data)]
            for candidate in exact + [a for a in members if a not in exact]:
                try:
                    return self.converter.structure(data, candidate)
                except Exception:
                    if candidate in exact and len(exact) == 1:  # the right shape, wrong contents
                        raise
            raise self.mismatch(describe_union(members), data)

        return structure_union

    # dataclasses -----------------------------------------------------------------------

    def _dataclass_hook(self, cls: type) -> Callable[[Any, Any], Any]:
        fields = [f for f in dataclasses.fields(cls) if f.init]
        names = [f.name for f in fields]
        try:
            hints = typing.get_type_hints(cls)
        except Exception as exc:  # unresolvable annotations in someone's dataclass
            message = f"cannot read the type hints of {cls.__qualname__}: {exc}"

            def unreadable(data: Any, _: Any) -> Any:
                raise Invalid(message)

            return unreadable
        plan = [
            (
                f.name,
                hints.get(f.name, Any),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                f.metadata,
            )
            for f in fields
        ]

        def structure_dataclass(data: Any, _: Any) -> Any:
            return self._build(cls, names, plan, data)

        return structure_dataclass

    def _build(self, cls: type, names: list[str], plan: list, data: Any) -> Any:
        if data is None and self.null_is_empty:
            data = {}
        if not isinstance(data, Mapping):
            raise self.not_a_mapping(data, names)
        errors: list[Exception] = []
        unknown = self.unknown_keys(data, names) if self.report_unknown_keys else []
        if unknown and self.unknown_keys_alone:
            raise ClassValidationError(f"While structuring {cls.__name__}", unknown, cls)
        if self.unknown_keys_first:
            errors += unknown
        kwargs: dict[str, Any] = {}
        failed = False  # cannot construct: a required value is missing or wrong
        failed_fields: set[str] = set()
        for name, tp, required, metadata in plan:
            given = name in data and not (self.null_is_missing and data[name] is None)
            if not given:
                if required or (metadata.get("present") and name not in data):
                    errors.append(self.missing(name, metadata))
                    failed = failed or required
                continue
            try:
                value = data[name]
                if not self.values_as_written:
                    value = self.converter.structure(value, tp)
                kwargs[name] = value
                problem = metadata["check"](value) if "check" in metadata else None
                if problem is not None:
                    del kwargs[name]
                    raise Invalid(problem)
            except Exception as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    AttributeValidationNote(f"Structuring field {name}", name, tp),
                ]
                errors.append(exc)
                failed_fields.add(name)
                failed = failed or required
        result = FAILED
        if not failed:
            # Construct even when some optional fields failed (their defaults stand in) or
            # keys are unknown, so that __post_init__ reports the other fields' problems too.
            try:
                result = cls(**kwargs)
            except (ValueError, TypeError) as exc:
                for line in str(exc).splitlines() or [type(exc).__name__]:
                    if line.strip():
                        errors.extend(_post_init_problem(names, line.strip(), failed_fields))
        if not self.unknown_keys_first:
            errors += unknown
        if errors:
            raise ClassValidationError(f"While structuring {cls.__name__}", errors, cls)
        return result


def _passthrough(data: Any, _: Any = None) -> Any:
    return data


def _index_note(index: int, tp: Any) -> IterableValidationNote:
    return IterableValidationNote(f"Structuring item @ index {index}", index, tp)


def _post_init_problem(names: list[str], line: str, skip: set[str]) -> list[Invalid]:
    match = _PREFIX.fullmatch(line)
    if match and match.group(1) in names:
        if match.group(1) in skip:  # about a value already reported (and replaced)
            return []
        return [Invalid(match.group(3), match.group(1) + match.group(2))]
    return [] if skip else [Invalid(line)]


class FileDialect(Dialect):
    """The wording and leniency of ``llmtap.yaml``: values from ``${env:...}`` are strings,
    so numbers and booleans are read from strings too."""

    _TRUE = frozenset({"true", "yes", "on", "1"})
    _FALSE = frozenset({"false", "no", "off", "0"})

    def string(self, data: Any, _: type) -> str:
        if isinstance(data, str):
            return data
        hint = " (quote it)" if isinstance(data, (int, float, bool)) else ""
        raise self.mismatch("a string", data, hint)

    def integer(self, data: Any, _: type) -> int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        if isinstance(data, float) and data.is_integer():
            return int(data)
        if isinstance(data, str):
            try:
                return int(data.strip())
            except ValueError:
                pass
        raise self.mismatch("an integer", data)

    def number(self, data: Any, _: type) -> float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        if isinstance(data, str):
            try:
                return float(data.strip())
            except ValueError:
                pass
        raise self.mismatch("a number", data)

    def boolean(self, data: Any, _: type) -> bool:
        if isinstance(data, bool):
            return data
        if isinstance(data, str):
            text = data.strip().lower()
            if text in self._TRUE:
                return True
            if text in self._FALSE:
                return False
        raise self.mismatch("true or false", data)


FILE = FileDialect()


def structure(
    dialect: Dialect, cls: Any, data: Any, path: str = "", context: Any = None
) -> tuple[Any, list[tuple[str, str]]]:
    """``cls`` built from ``data`` by ``dialect``, and every problem as (key path, message);
    the result is :data:`FAILED` when there are problems. ``path`` prefixes the key paths;
    ``context`` is handed to the dialect's wording."""
    try:
        return dialect.converter.structure(data, cls), []
    except Exception as exc:
        found: list[tuple[str, Invalid]] = []
        _collect(dialect, exc, path, found)
        return FAILED, [(where, problem.text(where, context)) for where, problem in found]


def _collect(dialect: Dialect, exc: BaseException, path: str, out: list) -> None:
    if isinstance(exc, Invalid):
        out.append((_extend(path, exc.path), exc))
        return
    if not isinstance(exc, BaseValidationError):
        out.append((path, Invalid(str(exc) or type(exc).__name__)))
        return
    mapping = (typing.get_origin(exc.cl) or exc.cl) in _MAPPINGS
    for sub in exc.exceptions:
        where = path
        notes = [n for n in getattr(sub, "__notes__", ()) if isinstance(n, _NOTES)]
        note = notes[-1] if notes else None  # the last one: added by this group's builder
        if isinstance(note, AttributeValidationNote):
            where = join(path, note.name)
        elif isinstance(note, IterableValidationNote):
            if mapping and str(note).startswith("Structuring mapping key"):
                out.append((path, dialect.key_not_a_string(note.index)))
                continue
            where = join(path, str(note.index)) if mapping else f"{path}[{note.index}]"
        _collect(dialect, sub, where, out)


_NOTES = (AttributeValidationNote, IterableValidationNote)


def _extend(path: str, sub: str) -> str:
    if not sub:
        return path
    return f"{path}{sub}" if sub.startswith("[") else join(path, sub)


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


def describe(tp: Any) -> str:
    """How a message names what ``tp`` expects: ``a string``, ``one of a, b``, ..."""
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


def describe_union(args: tuple) -> str:
    return " or ".join(describe(a) if a is not type(None) else "null" for a in args)
