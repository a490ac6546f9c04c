"""The stage registry: every stage under its options' section, in the order they run."""

from __future__ import annotations

from types import SimpleNamespace

from llmtap.pipeline.cost import CostStage, PricingConfig
from llmtap.pipeline.redact import RedactionConfig, RedactionStage
from llmtap.pipeline.stages import build_stages, stage_registry


def test_stages_are_registered_by_section_in_running_order() -> None:
    stages = stage_registry()
    assert list(stages) == ["pricing", "redaction"]
    assert stages["pricing"].options is PricingConfig
    assert stages["redaction"].options is RedactionConfig


def test_no_config_builds_every_stage_with_its_defaults() -> None:
    built = build_stages(None)
    assert [type(s) for s in built] == [CostStage, RedactionStage]
    assert [s.name for s in built] == ["cost", "redact"]


def test_a_section_turned_off_leaves_its_stage_out() -> None:
    cfg = SimpleNamespace(pricing=PricingConfig(enabled=False), redaction=RedactionConfig())
    assert [s.name for s in build_stages(cfg)] == ["redact"]
    cfg = SimpleNamespace(pricing=None, redaction=RedactionConfig(enabled=False))
    assert [s.name for s in build_stages(cfg)] == ["cost"]


def test_the_stage_gets_its_section() -> None:
    redaction = RedactionConfig(mode="drop")
    cfg = SimpleNamespace(pricing=PricingConfig(enabled=False), redaction=redaction)
    (stage,) = build_stages(cfg)
    assert stage.config is redaction
