"""The instrumentor registry: the same instrumentors as the installed entry points, each
loadable and naming the SDK it declares in its dependencies."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys

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


@pytest.mark.parametrize("entry", INSTRUMENTATIONS, ids=lambda i: i.name)
def test_each_module_is_the_one_its_distribution_installs(entry: Instrumentation) -> None:
    # the distribution's own files (packages_distributions() misses wheels without a
    # top_level.txt on Python 3.10)
    files = importlib.metadata.distribution(entry.distribution).files or []
    tops = {f.parts[0] for f in files if len(f.parts) > 1 and ".dist-info" not in f.parts[0]}
    assert entry.module.partition(".")[0] in tops
    assert importlib.util.find_spec(entry.module) is not None


def test_configure_loads_no_adapter_for_an_sdk_that_is_not_installed() -> None:
    # a subprocess where cohere cannot be found (sys.modules[name] = None hides it from
    # find_spec and import alike), the other SDKs as installed
    code = """
import sys
sys.modules["cohere"] = None
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import llmtap
done = llmtap.configure(span_exporters=[InMemorySpanExporter()])
names = {type(i).__name__ for i in done.instrumentors}
print("cohere-adapter" if "llmtap.instrumentation.cohere" in sys.modules else "no-cohere-adapter")
print("CohereInstrumentor" in names, "OpenAIInstrumentor" in names)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTAP_"))}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["no-cohere-adapter", "False True"]
