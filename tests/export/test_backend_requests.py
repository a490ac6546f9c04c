"""What the Langfuse, Datadog LLM Observability and Honeycomb presets send: the URL and the
headers each one resolves to, and real requests from both senders (the app's span exporter
and the service's forwarder) to a local OTLP receiver that records each request's path and
headers.

No Langfuse, Datadog or Honeycomb server runs here. The hosts, paths and header names
asserted are those of the backends' public references, cited next to the constants in
``llmtap.export.presets``: Langfuse's OpenTelemetry page and API reference
(``/api/public/otel``, ``x-langfuse-ingestion-version: 4``, its regions' hosts), Datadog's
LLM Observability OpenTelemetry page and its documentation's site table (``dd-api-key``,
``dd-otlp-source: llmobs``, ``dd-ml-app``, no LLM Observability on ddog-gov.com), and
Honeycomb's OpenTelemetry page (``api.eu1.honeycomb.io``, ``x-honeycomb-team``,
``x-honeycomb-dataset``).
"""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from llmtap.config_file import read_config
from llmtap.export.destination_config import ExportConfig
from llmtap.export.presets import LLMOBS_SITES, build_exporter, target_for
from llmtap.sdk import build as sdk_build
from llmtap.service.app import ServiceApp
from llmtap.service.forward import build_forwarder
from support.otlp_receiver import ExportRequest, OtlpReceiver

LANGFUSE_CLOUD = "https://cloud.langfuse.com/api/public/otel/v1/traces"
BASIC_PK_SK = "Basic " + base64.b64encode(b"pk-lf-1:sk-lf-2").decode()


def langfuse(**keys: Any) -> ExportConfig:
    return ExportConfig(preset="langfuse", public_key="pk-lf-1", secret_key="sk-lf-2", **keys)


def send_from_both_senders(cfg: ExportConfig, service_name: str | None = None) -> None:
    """One span through the app's exporter, one request through the service's forwarder."""
    exporter = build_exporter(cfg, service_name)
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("chat gpt-4o") as span:
        pass
    try:
        assert exporter.export([span]) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    forwarder = build_forwarder(cfg, service_name)
    try:
        assert forwarder.send(_one_span_request(), 1).error == ""
    finally:
        forwarder.close()


def _one_span_request() -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x02" * 8, "chat gpt-4o"
    return request.SerializeToString()


def only_traces(rx: OtlpReceiver, count: int) -> list[ExportRequest]:
    requests = rx.requests()
    assert [r.signal for r in requests] == ["traces"] * count
    return requests


def problems_of_file(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "llmtap.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return [line.split("llmtap.yaml", 1)[1] for line in read_config(path, env or {}).messages()]


# Langfuse ----------------------------------------------------------------------------------


def test_langfuse_sends_basic_auth_and_the_ingestion_version() -> None:
    target = target_for(langfuse())
    assert target.endpoint == LANGFUSE_CLOUD
    assert target.protocol == "http/protobuf"
    assert target.headers == {"Authorization": BASIC_PK_SK, "x-langfuse-ingestion-version": "4"}


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("https://cloud.langfuse.com", LANGFUSE_CLOUD),
        ("https://cloud.langfuse.com/", LANGFUSE_CLOUD),
        ("https://cloud.langfuse.com/api/public/otel", LANGFUSE_CLOUD),
        ("https://cloud.langfuse.com/api/public/otel/", LANGFUSE_CLOUD),
        ("https://cloud.langfuse.com/api/public/otel/v1/traces", LANGFUSE_CLOUD),
        ("http://localhost:3000", "http://localhost:3000/api/public/otel/v1/traces"),
    ],
)
def test_langfuse_endpoint_in_any_documented_form_is_never_doubled(endpoint, url) -> None:
    assert target_for(langfuse(endpoint=endpoint)).endpoint == url


@pytest.mark.parametrize(
    ("region", "host"),
    [
        (None, "cloud.langfuse.com"),
        ("eu", "cloud.langfuse.com"),
        ("us", "us.cloud.langfuse.com"),
        ("jp", "jp.cloud.langfuse.com"),
        ("hipaa", "hipaa.cloud.langfuse.com"),
    ],
)
def test_langfuse_region_sets_the_cloud_host(region, host) -> None:
    url = f"https://{host}/api/public/otel/v1/traces"
    assert target_for(langfuse(region=region)).endpoint == url


def test_langfuse_endpoint_given_wins_over_region() -> None:
    cfg = langfuse(region="us", endpoint="https://langfuse.internal")
    assert target_for(cfg).endpoint == "https://langfuse.internal/api/public/otel/v1/traces"


def test_langfuse_unknown_region_is_an_error_naming_the_key(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"^region: expected one of eu, us, jp, hipaa .*'ap'"):
        langfuse(region="ap")
    lines = problems_of_file(
        tmp_path,
        """
        export:
          - {preset: langfuse, public_key: pk, secret_key: sk, region: EU}
        """,
    )
    assert len(lines) == 1
    assert lines[0].startswith(":2: export[0].region: expected one of eu, us, jp, hipaa")
    assert lines[0].endswith("got 'EU' (did you mean 'eu'?)")


def test_langfuse_requests_reach_the_otel_path_with_the_headers() -> None:
    with OtlpReceiver(http_path_prefix="/api/public/otel") as rx:
        forms = [rx.http_endpoint, rx.http_endpoint + "/api/public/otel", rx.http_url("traces")]
        for endpoint in forms:
            send_from_both_senders(langfuse(endpoint=endpoint))
        requests = only_traces(rx, 2 * len(forms))
    for request in requests:
        assert request.path == "/api/public/otel/v1/traces"
        assert request.headers["authorization"] == BASIC_PK_SK
        assert request.headers["x-langfuse-ingestion-version"] == "4"


# Datadog LLM Observability -------------------------------------------------------------------


def datadog(**keys: Any) -> ExportConfig:
    return ExportConfig(preset="datadog_llmobs", api_key="dd-key", **keys)


def test_datadog_ml_app_is_explicit_then_the_name_then_the_service_name() -> None:
    assert target_for(datadog(ml_app="bot", name="dd"), "svc").headers["dd-ml-app"] == "bot"
    assert target_for(datadog(name="dd"), "svc").headers["dd-ml-app"] == "dd"
    assert target_for(datadog(), "svc").headers == {
        "dd-api-key": "dd-key",
        "dd-otlp-source": "llmobs",
        "dd-ml-app": "svc",
    }
    with pytest.raises(ValueError, match=r"^ml_app: export preset 'datadog_llmobs' needs ml_app"):
        target_for(datadog())


def test_datadog_without_any_ml_app_is_a_config_error(tmp_path) -> None:
    entry = "export:\n  - {preset: datadog_llmobs, api_key: k}\n"
    lines = problems_of_file(tmp_path, entry)
    assert lines == [
        ":2: export[0].ml_app: export preset 'datadog_llmobs' needs ml_app (the application "
        "LLM Observability groups the spans under: set ml_app, or name, or service_name (or "
        "OTEL_SERVICE_NAME))"
    ]
    assert problems_of_file(tmp_path, entry, {"OTEL_SERVICE_NAME": "support-bot"}) == []
    assert problems_of_file(tmp_path, "service_name: support-bot\n" + entry) == []


@pytest.mark.parametrize("site", LLMOBS_SITES)
def test_datadog_sites_with_llm_observability(site) -> None:
    assert target_for(datadog(site=site, ml_app="a")).endpoint == f"https://otlp.{site}/v1/traces"


def test_datadog_sites_without_llm_observability_are_refused(tmp_path) -> None:
    assert LLMOBS_SITES == (
        "datadoghq.com",
        "us3.datadoghq.com",
        "us5.datadoghq.com",
        "datadoghq.eu",
        "ap1.datadoghq.com",
        "ap2.datadoghq.com",
    )
    with pytest.raises(ValueError) as info:
        datadog(site="ddog-gov.com", ml_app="a")
    assert str(info.value) == (
        "site: Datadog does not offer LLM Observability on 'ddog-gov.com' (a government site); "
        "expected one of " + ", ".join(LLMOBS_SITES)
    )
    lines = problems_of_file(
        tmp_path,
        """
        export:
          - {preset: datadog_llmobs, api_key: k, ml_app: a, site: datadoghq.con}
        """,
    )
    assert lines == [
        ":2: export[0].site: expected one of " + ", ".join(LLMOBS_SITES) + " (the sites that "
        "offer LLM Observability), got 'datadoghq.con' (did you mean 'datadoghq.com'?)"
    ]


def test_datadog_requests_carry_the_llmobs_headers() -> None:
    with OtlpReceiver() as rx:
        send_from_both_senders(datadog(endpoint=rx.http_url("traces")), "support-bot")
        requests = only_traces(rx, 2)
    for request in requests:
        assert request.path == "/v1/traces"
        assert request.headers["dd-api-key"] == "dd-key"
        assert request.headers["dd-otlp-source"] == "llmobs"
        assert request.headers["dd-ml-app"] == "support-bot"


def test_app_and_service_fall_back_to_the_files_service_name(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    with OtlpReceiver() as rx:
        path = tmp_path / "llmtap.yaml"
        url = rx.http_url("traces")
        path.write_text(
            "service_name: support-bot\n"
            f"export: [{{preset: datadog_llmobs, api_key: k, endpoint: '{url}'}}]\n"
        )
        loaded = read_config(path, {})
        assert loaded.messages() == []
        built: list[str | None] = []
        monkeypatch.setattr(
            sdk_build, "build_exporter", lambda cfg, name=None: built.append(name) or object()
        )
        monkeypatch.setattr(sdk_build, "exporter_queue", lambda *a, **k: None)
        sdk_build.build_destinations(loaded.config)
        assert built == ["support-bot"]
        app = ServiceApp(loaded.config)
        try:
            assert app.destinations[0].forwarder.send(_one_span_request(), 1).error == ""
        finally:
            app.destinations[0].forwarder.close()
        (request,) = only_traces(rx, 1)
    assert request.headers["dd-ml-app"] == "support-bot"


# Honeycomb ---------------------------------------------------------------------------------


def honeycomb(**keys: Any) -> ExportConfig:
    return ExportConfig(preset="honeycomb", api_key="hc-key", **keys)


def test_honeycomb_region_and_dataset() -> None:
    us = target_for(honeycomb())
    assert us.endpoint == "https://api.honeycomb.io/v1/traces"
    assert us.headers == {"x-honeycomb-team": "hc-key"}
    eu = target_for(honeycomb(region="eu", dataset="llm-calls"))
    assert eu.endpoint == "https://api.eu1.honeycomb.io/v1/traces"
    assert eu.headers == {"x-honeycomb-team": "hc-key", "x-honeycomb-dataset": "llm-calls"}
    custom = target_for(honeycomb(region="eu", endpoint="https://refinery:8080/v1/traces"))
    assert custom.endpoint == "https://refinery:8080/v1/traces"
    with pytest.raises(ValueError, match=r"^region: expected one of us, eu .*'eu1'"):
        honeycomb(region="eu1")


def test_region_and_dataset_belong_to_their_presets() -> None:
    with pytest.raises(ValueError, match=r"^dataset: export preset 'langfuse' does not use"):
        langfuse(dataset="x")
    with pytest.raises(ValueError, match=r"^region: export preset 'datadog_llmobs' does not"):
        datadog(region="eu", ml_app="a")


def test_honeycomb_requests_carry_the_team_and_dataset() -> None:
    with OtlpReceiver() as rx:
        send_from_both_senders(honeycomb(endpoint=rx.http_url("traces"), dataset="llm-calls"))
        requests = only_traces(rx, 2)
    for request in requests:
        assert request.path == "/v1/traces"
        assert request.headers["x-honeycomb-team"] == "hc-key"
        assert request.headers["x-honeycomb-dataset"] == "llm-calls"
