"""The redaction budget: a text over ``max_value_chars`` or met after the time budget ran
out is replaced unscanned by ``<OVER_BUDGET>`` (never forwarded as it was) and counted in
``llmtap.redaction.over_budget``; choosing among a dense text's findings is linear."""

from __future__ import annotations

import json
import random
import time

import pytest

from llmtap.pipeline.detectors import Detectors
from llmtap.pipeline.redact import (
    OVER_BUDGET_TEXT,
    REDACTION_OVER_BUDGET,
    RedactionConfig,
    RedactionConfigError,
    RedactionStage,
)
from llmtap.pipeline.span import EventData, SpanData

EMAIL = "jane.doe@example.com"


def dense(chars: int) -> str:
    text = "".join(f"user{i}.name@example{i % 97}.com wrote " for i in range(chars // 20 + 1))
    return text[:chars]


def test_a_value_over_the_size_cap_is_replaced_and_counted() -> None:
    span = SpanData(
        name="op",
        attributes={"big": dense(5000), "small": f"mail {EMAIL}", "n": 3},
    )
    RedactionStage(RedactionConfig(max_value_chars=4096)).apply(span)
    attrs = span.attributes
    assert attrs["big"] == OVER_BUDGET_TEXT
    assert attrs["small"] == "mail <EMAIL>"
    assert attrs[REDACTION_OVER_BUDGET] == 1
    assert attrs["llmtap.redaction.count"] == 1  # findings only, not the dropped value


def test_a_json_attribute_keeps_its_structure_and_loses_only_the_long_leaf() -> None:
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": dense(3000)}]},
        {"role": "assistant", "parts": [{"type": "text", "content": f"to {EMAIL}"}]},
    ]
    span = SpanData(name="chat", attributes={"gen_ai.input.messages": json.dumps(messages)})
    RedactionStage(RedactionConfig(max_value_chars=2048)).apply(span)
    doc = json.loads(span.attributes["gen_ai.input.messages"])
    assert doc[0]["parts"][0]["content"] == OVER_BUDGET_TEXT
    assert doc[1]["parts"][0]["content"] == "to <EMAIL>"
    assert span.attributes[REDACTION_OVER_BUDGET] == 1


def test_content_met_after_the_time_budget_is_replaced_never_kept() -> None:
    span = SpanData(
        name=f"lookup {EMAIL}",
        attributes={f"v{i}": f"row {i}: {EMAIL} {dense(400)}" for i in range(20)},
        events=[EventData("e", {"note": f"call {EMAIL}"})],
        status_message=f"quota for {EMAIL}",
        deadline=time.monotonic() - 1,  # the caller's deadline has passed already
    )
    RedactionStage().apply(span)
    values = [*span.attributes.values(), span.name, span.status_message]
    values += list(span.events[0].attributes.values())
    assert not any(EMAIL in str(v) for v in values)
    # 20 values, the span name, the event name and attribute, the status message
    assert span.attributes[REDACTION_OVER_BUDGET] == 24
    assert span.name == OVER_BUDGET_TEXT


def test_the_budget_is_per_thread_and_reset_after_the_span() -> None:
    stage = RedactionStage()
    late = SpanData(name="a", attributes={"x": f"mail {EMAIL}"}, deadline=time.monotonic() - 1)
    stage.apply(late)
    assert late.attributes["x"] == OVER_BUDGET_TEXT
    fresh = SpanData(name="b", attributes={"x": f"mail {EMAIL}"})
    stage.apply(fresh)
    assert fresh.attributes["x"] == "mail <EMAIL>"
    assert REDACTION_OVER_BUDGET not in fresh.attributes


def _greedy(found: list, prio: dict) -> list:
    """The choice among overlapping findings, done the plain way (the reference)."""
    kept: list = []
    for f in sorted(set(found), key=lambda f: (-prio.get(f[2], 0), f[0] - f[1], f[0])):
        if all(f[1] <= k[0] or k[1] <= f[0] for k in kept):
            kept.append(f)
    return sorted(kept)


def test_overlapping_findings_are_resolved_as_before() -> None:
    d = Detectors()
    rng = random.Random(11)
    types = ["EMAIL", "PHONE", "IP", "SECRET", "CREDIT_CARD"]
    for _ in range(200):
        spans = {}  # one type per place: no ties for the order to break
        for _ in range(rng.randint(2, 30)):
            start = rng.randint(0, 200)
            spans[(start, start + rng.randint(1, 25))] = rng.choice(types)
        found = [(s, e, kind) for (s, e), kind in spans.items()]
        assert d._resolve(found) == _greedy(found, d.priority)


def test_many_findings_are_resolved_in_linear_time() -> None:
    """A dense 10 MB text has ~300,000 findings; choosing among them used to be quadratic
    (6 s for 200,000 here), which held a service worker for a minute."""
    rng = random.Random(3)
    found, pos = [], 0
    for _ in range(200_000):
        n = rng.randint(7, 30)
        found.append((pos, pos + n, "EMAIL"))
        pos += n + 1
    rng.shuffle(found)
    start = time.perf_counter()
    kept = Detectors()._resolve(found)
    assert time.perf_counter() - start < 2.0
    assert kept == sorted(found)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"max_value_chars": 10}, "redaction.max_value_chars"),
        ({"budget_s": -1}, "redaction.budget_s"),
        ({"seal_key_env": ""}, "redaction.seal_key_env"),
    ],
)
def test_bad_budget_settings_name_the_key(settings: dict, key: str) -> None:
    with pytest.raises(RedactionConfigError, match=key):
        RedactionConfig(**settings)
