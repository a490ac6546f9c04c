"""The ``when:`` matcher language: rules on span attributes and span facts.

``compile_when(when, where)`` turns one ``when:`` mapping of ``llmtap.yaml`` into a
:class:`Matcher`. The same matcher serves the head sampler (``llmtap.pipeline.sampling``) and the
service's tail and judge rules, so a rule means the same thing everywhere.

Syntax (several keys in one mapping are AND-ed; an empty mapping matches every span)::

    llmtap.feature: autocomplete          # equals
    gen_ai.request.model: [gpt-4o, o3]    # shorthand for {in: [...]}
    gen_ai.provider.name: {in: [openai, anthropic]}
    gen_ai.request.model: {regex: "gpt-4o(-mini)?(-.*)?"}   # FULL match (anchored)
    gen_ai.usage.input_tokens: {gt: 1000, lte: 8000}        # gt, gte, lt, lte
    user.id: {exists: true}
    gen_ai.output.messages: {contains: "I'm sorry"}         # substring
    llmtap.feature: {not: {in: [internal, test]}}           # negation
    llmtap.feature: {eq: autocomplete}                       # explicit equals
    status: error                          # span status: error | ok | unset (or a list)
    duration: {gt: 2.5}                    # seconds; gt, gte, lt, lte
    name: {regex: "chat .*"}               # span name (any condition above)
    kind: client                           # span kind: internal|server|client|producer|consumer
    any: [{llmtap.feature: support}, {status: error}]        # OR of whole `when` mappings
    all: [{...}, {...}]                                      # AND of whole `when` mappings
    not: {llmtap.feature: test}                               # negation of a whole mapping

Semantics:

* ``status``, ``duration``, ``name``, ``kind``, ``any``, ``all`` and ``not`` are reserved
  words at the level of a ``when`` mapping; every other key is an attribute name, taken
  literally (dots included: ``llmtap.feature`` is one attribute, not a nested path).
* Equality is type-aware but forgiving where types cannot be confused: a number matches
  an equal number (``1 == 1.0``) or a string that parses to it (``"500"``); ``true`` matches
  the boolean or the string ``"true"`` (any case); a string matches the attribute's text.
* ``regex`` is a **full match** (anchored at both ends, as in Prometheus label matchers):
  write ``".*refund.*"`` to find a word anywhere. Patterns are compiled once.
* Numeric comparisons apply to numbers and to strings that parse as numbers; anything else
  does not match.
* An attribute that holds an array (``gen_ai.response.finish_reasons``) matches a value
  condition when any element does.
* An absent attribute matches nothing except ``{exists: false}`` and ``not``: ``not`` is
  true when its inner condition is false, including when the attribute is absent.
* ``status`` with only ``status_error`` known: ``ok`` and ``unset`` both mean "not an
  error" (instrumentations rarely set OK explicitly); pass ``status_code`` to tell them
  apart. When the status or the duration is unknown (``None``) a condition on it is false.

A bad mapping raises ``ValueError`` naming the path of each problem, one per line, e.g.
``sampling.head.rules[2].when.llmtap.feature: regex does not compile: ...``.

Matching a one- or two-condition rule against a 20-attribute dict takes about a
microsecond: conditions are compiled to closures with fast paths for string attributes.

A leaf module: it imports nothing of llmtap's but :mod:`llmtap.diagnostics`, so the
pipeline, the service and the config reader can all use it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from llmtap.diagnostics import did_you_mean, shown

__all__ = ["OPERATORS", "Matcher", "compile_head_when", "compile_when"]

_MISSING: Any = object()
# facts: (status, duration_s, name, kind); status is "error", "ok", "unset", "not_error", None
_Facts = tuple
_Check = Callable[[Mapping[str, Any], _Facts], bool]
_Pred = Callable[[Any], bool]

OPERATORS = ("eq", "in", "regex", "contains", "gt", "gte", "lt", "lte", "exists", "not")
_SPECIAL = ("status", "duration", "name", "kind", "any", "all", "not")
_STATUSES = ("error", "ok", "unset")
_KINDS = ("internal", "server", "client", "producer", "consumer")
_COMPARE = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
_SEQ = (list, tuple)


class Matcher:
    """A compiled ``when`` mapping. Build it with :func:`compile_when`."""

    __slots__ = ("_check", "uses", "when", "where")

    def __init__(self, check: _Check, when: Mapping[str, Any], where: str, uses: frozenset):
        self._check = check
        self.when = when
        self.where = where
        #: which span facts beyond attributes the rule looks at: status, duration, name, kind
        self.uses: frozenset[str] = uses

    @property
    def check(self) -> _Check:
        """The compiled test ``check(attrs, facts)`` for hot loops, with ``facts`` the tuple
        ``(status, duration_s, name, kind)``; status is "error", "ok", "unset", "not_error"
        or None."""
        return self._check

    def matches(
        self,
        attrs: Mapping[str, Any],
        *,
        status_error: bool | None = None,
        duration_s: float | None = None,
        name: str | None = None,
        kind: SpanKind | str | None = None,
        status_code: str | None = None,
    ) -> bool:
        """Whether a span with these attributes (and status, duration, name, kind) matches.

        ``status_code`` ("ok", "error", "unset") is more precise than ``status_error`` and
        wins when both are given.
        """
        if status_code is not None:
            status: str | None = status_code.lower()
        elif status_error is None:
            status = None
        else:
            status = "error" if status_error else "not_error"
        return self._check(attrs, (status, duration_s, name, kind))

    def matches_span(self, span: Any) -> bool:
        """Match a ``llmtap.pipeline.span.SpanData``-like record (attributes, is_error,
        duration_s, name)."""
        return self._check(
            span.attributes,
            ("error" if span.is_error else "not_error", span.duration_s, span.name, None),
        )

    def describe(self) -> str:
        return json.dumps(self.when, separators=(",", ":"), default=str, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"Matcher({self.describe()})"


def compile_when(when: Mapping[str, Any], where: str = "when") -> Matcher:
    """Compile a ``when`` mapping (syntax in the module docstring).

    Raises ``ValueError`` whose message has one line per problem, each starting with the
    path of the offending key under ``where``.
    """
    return _compile(when, where, head=False)


def compile_head_when(when: Mapping[str, Any], where: str = "when") -> Matcher:
    """Compile a head-sampling ``when``: like :func:`compile_when`, but rejects conditions
    on what is unknown at span start (status, duration)."""
    return _compile(when, where, head=True)


def _compile(when: Mapping[str, Any], where: str, head: bool) -> Matcher:
    problems: list[str] = []
    uses: dict[str, str] = {}  # fact -> path of its first condition
    check = _compile_mapping(when, where, problems, uses)
    if head:
        problems.extend(
            f"{path}: the head sampler decides at span start and cannot see the span's "
            f"{what}; put rules on {what} in the service's tail rules"
            for what, path in uses.items()
            if what in ("status", "duration")
        )
    if problems:
        raise ValueError("\n".join(problems))
    return Matcher(check, when, where, frozenset(uses))


def _always(attrs: Mapping[str, Any], facts: _Facts) -> bool:
    return True


def _all_of(checks: Sequence[_Check]) -> _Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks

        def both(attrs: Mapping[str, Any], facts: _Facts) -> bool:
            return first(attrs, facts) and second(attrs, facts)

        return both
    checks = tuple(checks)

    def every(attrs: Mapping[str, Any], facts: _Facts) -> bool:
        for check in checks:  # noqa: SIM110 - a plain loop is faster than all(<genexpr>)
            if not check(attrs, facts):
                return False
        return True

    return every


def _any_of(checks: Sequence[_Check]) -> _Check:
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks

        def either(attrs: Mapping[str, Any], facts: _Facts) -> bool:
            return first(attrs, facts) or second(attrs, facts)

        return either
    checks = tuple(checks)

    def some(attrs: Mapping[str, Any], facts: _Facts) -> bool:
        for check in checks:  # noqa: SIM110 - a plain loop is faster than any(<genexpr>)
            if check(attrs, facts):
                return True
        return False

    return some


def _negate(check: _Check) -> _Check:
    def negated(attrs: Mapping[str, Any], facts: _Facts) -> bool:
        return not check(attrs, facts)

    return negated


def _compile_mapping(when: Any, where: str, problems: list[str], uses: dict[str, str]) -> _Check:
    if not isinstance(when, Mapping):
        problems.append(f"{where}: expected a mapping of conditions, got {shown(when)}")
        return _always
    checks: list[_Check] = []
    for key, cond in when.items():
        if not isinstance(key, str):
            problems.append(f"{where}: condition keys must be strings, got {shown(key)}")
            continue
        path = f"{where}.{key}"
        if key in ("any", "all"):
            checks.append(_compile_group(key, cond, path, problems, uses))
        elif key == "not":
            checks.append(_negate(_compile_mapping(cond, path, problems, uses)))
        elif key == "status":
            uses.setdefault("status", path)
            checks.append(_compile_status(cond, path, problems))
        elif key == "duration":
            uses.setdefault("duration", path)
            checks.append(_compile_duration(cond, path, problems))
        elif key == "name":
            uses.setdefault("name", path)
            checks.append(_compile_condition(_name_value, cond, path, problems))
        elif key == "kind":
            uses.setdefault("kind", path)
            checks.append(_compile_kind(cond, path, problems))
        else:
            checks.append(_compile_condition(_attr_value(key), cond, path, problems))
    return _all_of(checks)


def _compile_group(
    word: str, cond: Any, path: str, problems: list[str], uses: dict[str, str]
) -> _Check:
    if not isinstance(cond, list) or not cond:
        problems.append(f"{path}: expected a non-empty list of conditions, got {shown(cond)}")
        return _always
    parts = [_compile_mapping(c, f"{path}[{i}]", problems, uses) for i, c in enumerate(cond)]
    return _all_of(parts) if word == "all" else _any_of(parts)


# How a condition finds its value: an attribute, or the span name.
_Getter = Callable[[Mapping[str, Any], _Facts], Any]


def _attr_value(key: str) -> _Getter:
    def get(attrs: Mapping[str, Any], facts: _Facts) -> Any:
        return attrs.get(key, _MISSING)

    get.key = key  # type: ignore[attr-defined]
    return get


def _name_value(attrs: Mapping[str, Any], facts: _Facts) -> Any:
    name = facts[2]
    return _MISSING if name is None else name


def _compile_condition(get: _Getter, cond: Any, path: str, problems: list[str]) -> _Check:
    """One key's condition: a scalar (equals), a list (in) or a mapping of operators."""
    if isinstance(cond, Mapping):
        if not cond:
            problems.append(
                f"{path}: empty condition; expected a value or one of the "
                f"operators {', '.join(OPERATORS)}"
            )
            return _always
        checks: list[_Check] = []
        for op, arg in cond.items():
            check = _compile_operator(get, op, arg, path, problems)
            if check is not None:
                checks.append(check)
        return _all_of(checks)
    if isinstance(cond, list):
        return _compile_operator(get, "in", cond, path, problems) or _always
    if cond is None:
        problems.append(
            f"{path}: a null value matches nothing; write {{exists: false}} for an absent attribute"
        )
        return _always
    return _compile_operator(get, "eq", cond, path, problems) or _always


def _compile_operator(
    get: _Getter, op: Any, arg: Any, path: str, problems: list[str]
) -> _Check | None:
    if op == "exists":
        if not isinstance(arg, bool):
            problems.append(f"{path}: exists: expected true or false, got {shown(arg)}")
            return None
        return _exists(get, arg)
    if op == "not":
        return _negate(_compile_condition(get, arg, path, problems))
    if op == "eq":
        if not _is_scalar(arg):
            problems.append(f"{path}: eq: expected a string, number or boolean, got {shown(arg)}")
            return None
        return _eq_fast(get, arg) or _value_check(get, _eq(arg))
    if op == "in":
        if not isinstance(arg, list) or not arg or not all(_is_scalar(v) for v in arg):
            problems.append(
                f"{path}: in: expected a non-empty list of strings, numbers or booleans, "
                f"got {shown(arg)}"
            )
            return None
        return _in_fast(get, arg) or _value_check(get, _in(arg))
    if op == "regex":
        if not isinstance(arg, str):
            problems.append(f"{path}: regex: expected a string, got {shown(arg)}")
            return None
        try:
            rx = re.compile(arg)
        except re.error as exc:
            problems.append(f"{path}: regex does not compile: {exc} (pattern {arg!r})")
            return None
        fullmatch = rx.fullmatch
        return _value_check(
            get,
            lambda v: fullmatch(_text(v)) is not None,
            lambda v: fullmatch(v) is not None,
        )
    if op == "contains":
        if not isinstance(arg, str):
            problems.append(f"{path}: contains: expected a string, got {shown(arg)}")
            return None
        return _value_check(get, lambda v: arg in _text(v), lambda v: arg in v)
    if op in _COMPARE:
        if not _is_number(arg):
            problems.append(f"{path}: {op}: expected a number, got {shown(arg)}")
            return None
        compare, bound = _COMPARE[op], arg

        def pred(v: Any) -> bool:
            num = _as_number(v)
            return num is not None and compare(num, bound)

        return _value_check(get, pred)
    problems.append(
        f"{path}: unknown operator {op!r}{did_you_mean(str(op), OPERATORS)}; "
        f"operators: {', '.join(OPERATORS)}"
    )
    return None


def _exists(get: _Getter, flag: bool) -> _Check:
    key = getattr(get, "key", None)
    if key is not None:
        if flag:
            return lambda attrs, facts: key in attrs
        return lambda attrs, facts: key not in attrs
    return lambda attrs, facts: (get(attrs, facts) is not _MISSING) is flag


def _value_check(get: _Getter, pred: _Pred, on_str: _Pred | None = None) -> _Check:
    """Apply ``pred`` to the value (to each element of an array); ``on_str`` is a faster
    predicate for the common case of a string attribute."""
    key = getattr(get, "key", None)
    str_pred = on_str or pred
    if key is not None:

        def check_attr(attrs: Mapping[str, Any], facts: _Facts) -> bool:
            value = attrs.get(key, _MISSING)
            if value.__class__ is str:
                return str_pred(value)
            if value is _MISSING:
                return False
            if value.__class__ in _SEQ:
                return any(pred(v) for v in value)
            return pred(value)

        return check_attr

    def check(attrs: Mapping[str, Any], facts: _Facts) -> bool:
        value = get(attrs, facts)
        if value is _MISSING:
            return False
        if value.__class__ in _SEQ:
            return any(pred(v) for v in value)
        return pred(value)

    return check


def _eq_fast(get: _Getter, target: Any) -> _Check | None:
    """Equality on an attribute against a string: one dict lookup and a compare."""
    key = getattr(get, "key", None)
    if key is None or not isinstance(target, str):
        return None
    slow = _eq(target)

    def check(attrs: Mapping[str, Any], facts: _Facts) -> bool:
        value = attrs.get(key, _MISSING)
        if value.__class__ is str:
            return value == target
        if value is _MISSING:
            return False
        if value.__class__ in _SEQ:
            return any(slow(v) for v in value)
        return slow(value)

    return check


def _in_fast(get: _Getter, targets: list[Any]) -> _Check | None:
    key = getattr(get, "key", None)
    if key is None or not all(isinstance(t, str) for t in targets):
        return None
    strings = frozenset(targets)
    slow = _in(targets)

    def check(attrs: Mapping[str, Any], facts: _Facts) -> bool:
        value = attrs.get(key, _MISSING)
        if value.__class__ is str:
            return value in strings
        if value is _MISSING:
            return False
        if value.__class__ in _SEQ:
            return any(slow(v) for v in value)
        return slow(value)

    return check


def _eq(target: Any) -> _Pred:
    if isinstance(target, bool):
        text = "true" if target else "false"

        def eq_bool(v: Any) -> bool:
            if v is True or v is False:
                return v is target
            return isinstance(v, str) and v.strip().lower() == text

        return eq_bool
    if isinstance(target, (int, float)):

        def eq_number(v: Any) -> bool:
            num = _as_number(v)
            return num is not None and num == target

        return eq_number
    number = _as_number(target)  # a string target that reads as a number

    def eq_text(v: Any) -> bool:
        if isinstance(v, str):
            return v == target
        if v is True or v is False:
            return target.strip().lower() == ("true" if v else "false")
        if isinstance(v, (int, float)):
            return number is not None and v == number
        return False

    return eq_text


def _in(targets: list[Any]) -> _Pred:
    preds = tuple(_eq(t) for t in targets)
    strings = frozenset(t for t in targets if isinstance(t, str))

    def is_in(v: Any) -> bool:
        if v.__class__ is str and v in strings:
            return True
        return any(p(v) for p in preds)

    return is_in


def _compile_status(cond: Any, path: str, problems: list[str]) -> _Check:
    wanted = cond if isinstance(cond, list) else [cond]
    bad = [w for w in wanted if not isinstance(w, str) or w.lower() not in _STATUSES]
    if not wanted or bad:
        problems.append(
            f"{path}: expected error, ok or unset (or a list of them), got {shown(cond)}"
            + (did_you_mean(str(bad[0]).lower(), _STATUSES) if bad else "")
        )
        return _always
    accepted = frozenset(w.lower() for w in wanted)
    if accepted & {"ok", "unset"}:
        accepted |= {"not_error"}

    def check(attrs: Mapping[str, Any], facts: _Facts) -> bool:
        return facts[0] in accepted

    return check


def _compile_kind(cond: Any, path: str, problems: list[str]) -> _Check:
    wanted = cond if isinstance(cond, list) else [cond]
    bad = [w for w in wanted if not isinstance(w, str) or w.lower() not in _KINDS]
    if not wanted or bad:
        problems.append(
            f"{path}: expected one of {', '.join(_KINDS)} (or a list of them), got "
            f"{shown(cond)}" + (did_you_mean(str(bad[0]).lower(), _KINDS) if bad else "")
        )
        return _always
    accepted = frozenset(w.lower() for w in wanted)

    def check(attrs: Mapping[str, Any], facts: _Facts) -> bool:
        kind = facts[3]
        if kind is None:
            return False
        text = kind.name.lower() if isinstance(kind, SpanKind) else str(kind).lower()
        return text.removeprefix("span_kind_") in accepted

    return check


def _compile_duration(cond: Any, path: str, problems: list[str]) -> _Check:
    if not isinstance(cond, Mapping) or not cond:
        problems.append(
            f"{path}: expected a comparison in seconds such as {{gt: 2.5}}, got {shown(cond)}"
        )
        return _always
    checks: list[_Check] = []
    for op, bound in cond.items():
        if op not in _COMPARE:
            problems.append(
                f"{path}: unknown operator {op!r}{did_you_mean(str(op), _COMPARE)}; "
                f"duration takes gt, gte, lt, lte"
            )
            continue
        if not _is_number(bound):
            problems.append(f"{path}: {op}: expected a number of seconds, got {shown(bound)}")
            continue

        def check(attrs: Mapping[str, Any], facts: _Facts, _c=_COMPARE[op], _b=bound) -> bool:
            duration = facts[1]
            return duration is not None and _c(duration, _b)

        checks.append(check)
    return _all_of(checks)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_number(value: Any) -> float | int | None:
    cls = value.__class__
    if cls is int or cls is float:
        return value
    if cls is bool:
        return None
    if isinstance(value, str):
        try:
            num = float(value)
        except ValueError:
            return None
        return None if math.isnan(num) else num
    if isinstance(value, (int, float)):
        return value
    return None


def _text(value: Any) -> str:
    if value.__class__ is str:
        return value
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)
