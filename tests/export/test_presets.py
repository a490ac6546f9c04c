"""The table of export presets: one registry gives each preset's keys, needs and exporter."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

from llmtap import config_file
from llmtap.export import destination_config
from llmtap.export.console import ConsoleTreeExporter
from llmtap.export.destination_config import ExportConfig
from llmtap.export.file import JsonLinesSpanExporter
from llmtap.export.presets import (
    DESTINATIONS,
    PRESETS,
    build_exporter,
    http_only,
    options_of,
    preset_keys,
    required_keys,
)


def test_one_table_of_presets() -> None:
    assert tuple(DESTINATIONS) == PRESETS
    assert destination_config.PRESETS is PRESETS
    assert config_file.PRESETS is PRESETS
    assert set(destination_config.PRESET_KEYS) == set(PRESETS)
    assert all(DESTINATIONS[name].description for name in PRESETS)


def test_keys_and_needs_come_from_each_preset_options() -> None:
    assert preset_keys("console") == frozenset()
    assert preset_keys("file") == {"path"}
    assert "insecure" in preset_keys("jaeger") and "insecure" not in preset_keys("langfuse")
    assert [k for k, _ in required_keys("langfuse")] == ["public_key", "secret_key"]
    assert required_keys("otlp") == ()
    assert http_only("phoenix") and not http_only("tempo") and not http_only("file")


def test_options_fill_in_the_backends_defaults() -> None:
    options = options_of(ExportConfig(preset="honeycomb", api_key="k"))
    assert (options.endpoint, options.region, options.api_key) == (None, "us", "k")
    assert options_of(ExportConfig(preset="phoenix")).endpoint == "http://localhost:6006/v1/traces"


def test_each_preset_builds_its_exporter(tmp_path) -> None:
    cases = [
        (ExportConfig(preset="console"), ConsoleTreeExporter),
        (ExportConfig(preset="file", path=str(tmp_path / "s.jsonl")), JsonLinesSpanExporter),
        (ExportConfig(preset="tempo"), Grpc),
        (ExportConfig(preset="phoenix"), Http),
    ]
    for cfg, kind in cases:
        exporter = build_exporter(cfg)
        try:
            assert isinstance(exporter, kind), cfg.preset
        finally:
            exporter.shutdown()
