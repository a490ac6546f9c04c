"""Usage metrics of a request: cost, tokens, call durations and feedback of its GenAI spans,
summed per request before they touch the shared metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmtap import semconv

if TYPE_CHECKING:
    from llmtap.service.service_metrics import ServiceMetrics

__all__ = ["Usage", "UsageRow", "usage_from_data", "usage_from_wire"]

_COST = semconv.USAGE_COST
_INPUT = semconv.USAGE_INPUT_TOKENS
_OUTPUT = semconv.USAGE_OUTPUT_TOKENS
_REQUEST_MODEL = semconv.REQUEST_MODEL
_RESPONSE_MODEL = semconv.RESPONSE_MODEL
_FEATURE = semconv.LLMTAP_FEATURE
_USER = semconv.USER_ID
_FEEDBACK = semconv.LLMTAP_FEEDBACK_LABEL


def _number(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number > 0 else 0.0


def _wire_number(value: Any) -> float:
    """A number from a wire ``AnyValue`` (double or int; anything else counts 0)."""
    if value is None:
        return 0.0
    number = value.double_value or value.int_value
    return float(number) if number > 0 else 0.0


def _wire_text(value: Any) -> str:
    return value.string_value if value is not None else ""


# (model, feature, user, cost, input tokens, output tokens)
UsageRow = tuple[str, str, str, float, float, float]


def usage_from_data(attrs: Mapping[str, Any]) -> UsageRow | None:
    if _COST not in attrs and _INPUT not in attrs and _OUTPUT not in attrs:
        return None
    model = attrs.get(_REQUEST_MODEL) or attrs.get(_RESPONSE_MODEL) or ""
    return (
        str(model),
        str(attrs.get(_FEATURE) or ""),
        str(attrs.get(_USER) or ""),
        _number(attrs.get(_COST)),
        _number(attrs.get(_INPUT)),
        _number(attrs.get(_OUTPUT)),
    )


def usage_from_wire(attrs: Any) -> UsageRow | None:
    get = attrs.get
    cost, tin, tout = get(_COST), get(_INPUT), get(_OUTPUT)
    if cost is None and tin is None and tout is None:
        return None
    model = _wire_text(get(_REQUEST_MODEL)) or _wire_text(get(_RESPONSE_MODEL))
    return (
        model,
        _wire_text(get(_FEATURE)),
        _wire_text(get(_USER)),
        _wire_number(cost),
        _wire_number(tin),
        _wire_number(tout),
    )


class Usage:
    """Usage and feedback of one request, summed before touching the shared metrics."""

    __slots__ = ("durations", "feedback", "totals", "users")

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], list[float]] = {}
        self.users: dict[tuple[str, str], float] = {}
        self.durations: dict[tuple[str, str], list[float]] = {}
        self.feedback: dict[tuple[str, str], int] = {}

    def add(self, row: UsageRow, seconds: float) -> None:
        model, feature, user, cost, tin, tout = row
        acc = self.totals.get((model, feature))
        if acc is None:
            self.totals[(model, feature)] = [cost, tin, tout]
        else:
            acc[0] += cost
            acc[1] += tin
            acc[2] += tout
        if cost:
            self.users[(user, feature)] = self.users.get((user, feature), 0.0) + cost
        if seconds >= 0:
            found = self.durations.get((model, feature))
            if found is None:
                self.durations[(model, feature)] = [seconds]
            else:
                found.append(seconds)

    def add_feedback(self, attrs: Any) -> None:
        key = (_wire_text(attrs.get(_FEEDBACK)), _wire_text(attrs.get(_FEATURE)))
        self.feedback[key] = self.feedback.get(key, 0) + 1

    def record(self, m: ServiceMetrics) -> None:
        cost: dict[tuple[str, ...], float] = {}
        tokens: dict[tuple[str, ...], float] = {}
        for (model, feature), (dollars, tin, tout) in self.totals.items():
            if dollars:
                cost[(model, feature)] = dollars
            if tin:
                tokens[(model, feature, "input")] = tin
            if tout:
                tokens[(model, feature, "output")] = tout
        m.cost.inc_many(cost)
        m.tokens.inc_many(tokens)
        m.user_cost.inc_many(self.users)
        for (model, feature), seconds in self.durations.items():
            m.call_duration.observe_many(seconds, model=model, feature=feature)
        m.feedback.inc_many(self.feedback)
