"""The instrumentor registry: the same instrumentors as the installed entry points, each
loadable and naming the SDK it declares in its dependencies."""

from __future__ import annotations

import importlib.metadata

import pytest
from packaging.requirements import Requirement

from llmtap.instrumentation.registry import INSTRUMENTATIONS, Instrumentation


def test_the_entry_points_name_the_registered_instrumentors() -> None:
    entry_points = importlib.metadata.distribution("llmtap").entry_points
    installed = {e.name: e.value for e in entry_points if e.group == "opentelemetry_instrumentor"}
    assert installed == {i.name: i.target for i in INSTRUMENTATIONS}


@pytest.mark.parametrize("entry", INSTRUMENTATIONS, ids=lambda i: i.name)
def test_each_instrumentor_loads_and_instruments_its_distribution(entry: Instrumentation) -> None:
    cls = entry.load()
    assert cls.__name__ == entry.class_name
    names = {Requirement(d).name for d in cls().instrumentation_dependencies()}
    assert names == {entry.distribution}
