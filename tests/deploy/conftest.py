"""Fixtures of the deploy/ checks: paths, ``promtool``, and the metric names (with their
labels) the project really emits: the llmtap service's, read from a running service's
``/metrics`` and its registry, and the apps', recorded by the real SDK instrumentation and
named as Prometheus' OTLP receiver names them."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmtap
from llmtap.cli_serve import _judging
from llmtap.config_file import load_config
from llmtap.devserver import DevServer
from llmtap.service.app import ServiceApp
from support.binaries import require_binary

from .names import otlp_label_name, otlp_metric_name, series_names

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# labels Prometheus adds to every series: the scrape target's, and the OTLP receiver's
# (job/instance from service.name/service.instance.id, plus promote_resource_attributes)
TARGET_LABELS = {"job", "instance"}
OTLP_RESOURCE_LABELS = {"job", "instance", "service_name", "deployment_environment_name"}

Catalog = dict[str, set[str]]


@pytest.fixture(scope="session")
def promtool() -> str:
    """Built by tools/build-otel-binaries.sh; skips when missing (fails in CI)."""
    return str(require_binary("promtool"))


@pytest.fixture(scope="session")
def service_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """Series name -> label names of the llmtap service as ``llmtap serve`` runs it with
    deploy/llmtap.yaml (judge included; the durable queues in a temporary directory)."""
    env = {
        "LLMTAP_GRPC_ADDRESS": "127.0.0.1:0",
        "LLMTAP_HTTP_ADDRESS": "127.0.0.1:0",
        "LLMTAP_METRICS_ADDRESS": "127.0.0.1:0",
        "LLMTAP_QUEUE_DIR": str(tmp_path_factory.mktemp("queue")),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        cfg = load_config(str(DEPLOY / "llmtap.yaml"))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    app = ServiceApp(cfg)
    assert _judging(cfg, app) is not None
    app.start()
    try:
        assert app.metrics_server is not None
        with urllib.request.urlopen(app.metrics_server.url, timeout=10) as response:
            text = response.read().decode()
        catalog: Catalog = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                metric = app.metrics.get(name)
                assert metric is not None, name
                labels = set(metric.label_names) | TARGET_LABELS
                for series in series_names(name, kind):
                    catalog[series] = labels | ({"le"} if series.endswith("_bucket") else set())
        yield catalog
    finally:
        app.stop(2)


def _app_calls(client: openai.OpenAI) -> None:
    with llmtap.context(feature="support", user_id="user-1"):
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass
        client.chat.completions.create(
            model="model-without-a-price", messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="devserver-bad_request", messages=[{"role": "user", "content": "?"}]
            )


@pytest.fixture(scope="session")
def app_metrics() -> Catalog:
    """Series name -> label names of the apps' metrics in Prometheus (via OTLP), from a
    streamed, an unpriced and a failing call through ``llmtap.configure``."""
    reader = InMemoryMetricReader()
    with DevServer() as server:
        setup = llmtap.configure(
            service_name="deploy-check",
            span_exporters=[InMemorySpanExporter()],
            metric_readers=[reader],
            set_global=False,
        )
        try:
            client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
            _app_calls(client)
            setup.tracer_provider.force_flush()
            data = reader.get_metrics_data()
        finally:
            setup.shutdown()
    catalog: Catalog = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = list(metric.data.data_points)
                if isinstance(points[0], HistogramDataPoint):
                    kind = "histogram"
                else:
                    kind = "counter" if getattr(metric.data, "is_monotonic", False) else "gauge"
                name = otlp_metric_name(metric.name, metric.unit or "", kind)
                labels = {otlp_label_name(k) for p in points for k in p.attributes}
                labels |= OTLP_RESOURCE_LABELS
                for series in series_names(name, kind):
                    catalog.setdefault(series, set()).update(
                        labels | ({"le"} if series.endswith("_bucket") else set())
                    )
    return catalog


@pytest.fixture(scope="session")
def emitted(service_metrics: Catalog, app_metrics: Catalog) -> Catalog:
    """Every series name llmtap emits, with its labels."""
    assert not set(service_metrics) & set(app_metrics), "a name is both a service and app one"
    return {**service_metrics, **app_metrics, "up": {"job", "instance"}}
