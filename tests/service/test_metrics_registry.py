"""The service's Prometheus registry: batched updates equal one-by-one updates."""

from __future__ import annotations

import pytest

from llmtap.service.metrics import MetricsRegistry


def _lines(registry: MetricsRegistry) -> list[str]:
    return [line for line in registry.render().splitlines() if not line.startswith("#")]


def test_inc_many_and_observe_many_render_as_single_updates_do() -> None:
    one, many = MetricsRegistry(), MetricsRegistry()
    values = [0.004, 0.02, 0.02, 0.7, 3.0, 99.0]
    amounts = {("gpt-4o", "support"): 0.25, ("gpt-4o-mini", ""): 1.5}
    for registry in (one, many):
        registry.counter("cost_total", "c", ("model", "feature"), max_series=2)
        registry.histogram("d_seconds", "d", ("model",), buckets=(0.01, 0.1, 1.0, 5.0))
    for (model, feature), amount in amounts.items():
        one.get("cost_total").inc(amount, model=model, feature=feature)
    for value in values:
        one.get("d_seconds").observe(value, model="gpt-4o")
    many.get("cost_total").inc_many(amounts)
    many.get("d_seconds").observe_many(values, model="gpt-4o")
    assert _lines(one) == _lines(many)
    assert 'd_seconds_bucket{le="0.1",model="gpt-4o"} 3.0' in _lines(many)


def test_inc_many_respects_the_series_cap_and_refuses_bad_increments() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("users_total", "u", ("user",), max_series=2)
    counter.inc_many({("a",): 1, ("b",): 1, ("c",): 1, ("d",): 2})
    assert counter.value(user="a") == 1
    assert counter.value(user="other") == 3
    with pytest.raises(ValueError):
        counter.inc_many({("a",): -1})
    with pytest.raises(ValueError):
        counter.inc_many({("a", "extra"): 1})
