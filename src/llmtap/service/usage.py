"""Usage metrics of a request: cost, tokens, call durations and feedback of its GenAI spans,
summed per request before they touch the shared metrics.

A ``user.id`` holding personal data (an email, a phone number, ... : anything the
redaction detectors find) never becomes a Prometheus label: :func:`user_label` puts
``user:<16 hex>`` in its place, an HMAC-SHA256 of the value under the redaction hash key
(``LLMTAP_REDACTION_HASH_KEY``; without it a random key of this process), so one user's
costs still add up in one series. Plain ids (and redaction placeholders) stay as they are.
This also covers spans that reach the metrics unredacted (redaction off, or trusted
upstream marks).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmtap import semconv
from llmtap.pipeline.detectors import Detectors

if TYPE_CHECKING:
    from llmtap.service.service_metrics import ServiceMetrics

__all__ = ["Usage", "UsageRow", "usage_from_data", "usage_from_wire", "user_label"]

_COST = semconv.LLMTAP_COST_TOTAL
_LEGACY_COST = semconv.USAGE_COST  # an older llmtap's or another SDK's name of the total
_INPUT = semconv.USAGE_INPUT_TOKENS
_OUTPUT = semconv.USAGE_OUTPUT_TOKENS
_REQUEST_MODEL = semconv.REQUEST_MODEL
_RESPONSE_MODEL = semconv.RESPONSE_MODEL
_FEATURE = semconv.LLMTAP_FEATURE
_USER = semconv.USER_ID
_FEEDBACK = semconv.LLMTAP_FEEDBACK_LABEL


_HASH_KEY_ENV = "LLMTAP_REDACTION_HASH_KEY"
_labels: dict[str, str] = {}
_label_state: list[Any] = []  # [Detectors, key], made on first use


def user_label(user: str) -> str:
    """The ``user`` label for a ``user.id``: the id itself, or ``user:<hmac>`` when it holds
    personal data (see the module doc)."""
    if not user:
        return user
    label = _labels.get(user)
    if label is None:
        if not _label_state:
            key = os.environ.get(_HASH_KEY_ENV, "").encode() or os.urandom(32)
            _label_state[:] = [Detectors(), key]
        detectors, key = _label_state
        label = user
        if detectors.find(user):
            label = "user:" + hmac.new(key, user.encode(), hashlib.sha256).hexdigest()[:16]
        if len(_labels) < 8192:
            _labels[user] = label
    return label


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
    cost = attrs.get(_COST)
    if cost is None:
        cost = attrs.get(_LEGACY_COST)
    if cost is None and _INPUT not in attrs and _OUTPUT not in attrs:
        return None
    model = attrs.get(_REQUEST_MODEL) or attrs.get(_RESPONSE_MODEL) or ""
    return (
        str(model),
        str(attrs.get(_FEATURE) or ""),
        user_label(str(attrs.get(_USER) or "")),
        _number(cost),
        _number(attrs.get(_INPUT)),
        _number(attrs.get(_OUTPUT)),
    )


def usage_from_wire(attrs: Any) -> UsageRow | None:
    get = attrs.get
    cost, tin, tout = get(_COST), get(_INPUT), get(_OUTPUT)
    if cost is None:
        cost = get(_LEGACY_COST)
    if cost is None and tin is None and tout is None:
        return None
    model = _wire_text(get(_REQUEST_MODEL)) or _wire_text(get(_RESPONSE_MODEL))
    return (
        model,
        _wire_text(get(_FEATURE)),
        user_label(_wire_text(get(_USER))),
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
