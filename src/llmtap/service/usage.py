"""Usage metrics of a request: cost, tokens, call durations, calls and errors and feedback of
its GenAI spans, by model, feature and prompt version, summed per request before they touch
the shared metrics. A span counts as a GenAI call when it reports usage (cost or tokens) or
when it is a model call (``chat``, ``text_completion``, ``generate_content``,
``embeddings``) that failed (``error.type``, with a ``gen_ai.request.model``); the prompt
version label
is capped (``service.max_prompt_versions``, see :class:`~llmtap.service.metrics.CappedValues`).

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

__all__ = ["Usage", "UsageRow", "is_call", "usage_from_data", "usage_from_wire", "user_label"]

_COST = semconv.LLMTAP_COST_TOTAL
_LEGACY_COST = semconv.USAGE_COST  # an older llmtap's or another SDK's name of the total
_INPUT = semconv.USAGE_INPUT_TOKENS
_OUTPUT = semconv.USAGE_OUTPUT_TOKENS
_REQUEST_MODEL = semconv.REQUEST_MODEL
_RESPONSE_MODEL = semconv.RESPONSE_MODEL
_FEATURE = semconv.LLMTAP_FEATURE
_USER = semconv.USER_ID
_FEEDBACK = semconv.LLMTAP_FEEDBACK_LABEL
_VERSION = semconv.LLMTAP_PROMPT_VERSION
_ERROR = semconv.ERROR_TYPE
_OPERATION = semconv.OPERATION
#: operations whose failed spans count as failed model calls
_MODEL_CALLS = frozenset(
    {
        semconv.OP_CHAT,
        semconv.OP_TEXT_COMPLETION,
        semconv.OP_GENERATE_CONTENT,
        semconv.OP_EMBEDDINGS,
    }
)


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


# (model, feature, prompt version, user, cost, input tokens, output tokens, error type)
UsageRow = tuple[str, str, str, str, float, float, float, str]


def is_call(attrs: Any) -> bool:
    """Whether a span's attributes (a mapping or the wire's map) make it a GenAI call: it
    reports usage, or it is a model call (chat, completion, embeddings; not an agent or a
    tool, whose failure is its model call's) that failed."""
    if _COST in attrs or _LEGACY_COST in attrs or _INPUT in attrs or _OUTPUT in attrs:
        return True
    if _ERROR not in attrs or _REQUEST_MODEL not in attrs:
        return False
    operation = attrs.get(_OPERATION)
    if operation is not None and not isinstance(operation, str):
        operation = _wire_text(operation)
    return operation in _MODEL_CALLS


def usage_from_data(attrs: Mapping[str, Any]) -> UsageRow | None:
    if not is_call(attrs):
        return None
    cost = attrs.get(_COST)
    if cost is None:
        cost = attrs.get(_LEGACY_COST)
    model = attrs.get(_REQUEST_MODEL) or attrs.get(_RESPONSE_MODEL) or ""
    return (
        str(model),
        str(attrs.get(_FEATURE) or ""),
        str(attrs.get(_VERSION) or ""),
        user_label(str(attrs.get(_USER) or "")),
        _number(cost),
        _number(attrs.get(_INPUT)),
        _number(attrs.get(_OUTPUT)),
        str(attrs.get(_ERROR) or ""),
    )


def usage_from_wire(attrs: Any) -> UsageRow | None:
    if not is_call(attrs):
        return None
    get = attrs.get
    cost = get(_COST)
    if cost is None:
        cost = get(_LEGACY_COST)
    model = _wire_text(get(_REQUEST_MODEL)) or _wire_text(get(_RESPONSE_MODEL))
    return (
        model,
        _wire_text(get(_FEATURE)),
        _wire_text(get(_VERSION)),
        user_label(_wire_text(get(_USER))),
        _wire_number(cost),
        _wire_number(get(_INPUT)),
        _wire_number(get(_OUTPUT)),
        _wire_text(get(_ERROR)),
    )


class Usage:
    """Usage and feedback of one request, summed before touching the shared metrics."""

    __slots__ = ("calls", "durations", "feedback", "totals", "users")

    def __init__(self) -> None:
        # keyed by (model, feature, prompt version); calls also by error type
        self.totals: dict[tuple[str, str, str], list[float]] = {}
        self.users: dict[tuple[str, str], float] = {}
        self.durations: dict[tuple[str, str, str], list[float]] = {}
        self.calls: dict[tuple[str, str, str, str], int] = {}
        self.feedback: dict[tuple[str, str], int] = {}

    def add(self, row: UsageRow, seconds: float) -> None:
        model, feature, version, user, cost, tin, tout, error = row
        key = (model, feature, version)
        calls = (model, feature, version, error)
        self.calls[calls] = self.calls.get(calls, 0) + 1
        if error and not (cost or tin or tout):
            return  # a failed call without usage: counted, no cost, tokens or duration
        acc = self.totals.get(key)
        if acc is None:
            self.totals[key] = [cost, tin, tout]
        else:
            acc[0] += cost
            acc[1] += tin
            acc[2] += tout
        if cost:
            self.users[(user, feature)] = self.users.get((user, feature), 0.0) + cost
        if seconds >= 0:
            found = self.durations.get(key)
            if found is None:
                self.durations[key] = [seconds]
            else:
                found.append(seconds)

    def add_feedback(self, attrs: Any) -> None:
        key = (_wire_text(attrs.get(_FEEDBACK)), _wire_text(attrs.get(_FEATURE)))
        self.feedback[key] = self.feedback.get(key, 0) + 1

    def record(self, m: ServiceMetrics) -> None:
        version = m.prompt_version
        cost: dict[tuple[str, ...], float] = {}
        tokens: dict[tuple[str, ...], float] = {}
        for (model, feature, v), (dollars, tin, tout) in self.totals.items():
            v = version(v)
            if dollars:
                _add(cost, (model, feature, v), dollars)
            if tin:
                _add(tokens, (model, feature, v, "input"), tin)
            if tout:
                _add(tokens, (model, feature, v, "output"), tout)
        calls: dict[tuple[str, ...], float] = {}
        for (model, feature, v, error), n in self.calls.items():
            _add(calls, (model, feature, version(v), error), n)
        m.cost.inc_many(cost)
        m.tokens.inc_many(tokens)
        m.calls.inc_many(calls)
        m.user_cost.inc_many(self.users)
        for (model, feature, v), seconds in self.durations.items():
            m.call_duration.observe_many(
                seconds, model=model, feature=feature, prompt_version=version(v)
            )
        m.feedback.inc_many(self.feedback)


def _add(into: dict[tuple[str, ...], float], key: tuple[str, ...], amount: float) -> None:
    """Sum ``amount`` into ``key`` (versions past the cap share the ``other`` key)."""
    into[key] = into.get(key, 0.0) + amount
