"""The pipeline's stages by name, and the stages an ``LlmtapConfig`` asks for.

:func:`stage_registry` is a :class:`~llmtap.configuration.factories.Registry` of every
stage, each under the ``llmtap.yaml`` section that holds its options (``pricing`` makes
the cost stage, ``redaction`` the redaction stage), in the order the stages run: cost
before redaction, so that costs are computed before anything is removed. A factory is
called as ``create(options, meter_provider=...)``, ``options`` being the section (None:
the stage's defaults).

The stage modules are imported on the registry's first use, not when llmtap is imported
(they load price tables and compile detectors). Adding a stage is its module, one import
and one ``register(...)`` in :func:`stage_registry`, and its section in ``LlmtapConfig``.
The app, the service and ``llmtap eval`` all build their stages with :func:`build_stages`.
"""

from __future__ import annotations

import functools
from typing import Any

from llmtap.configuration.factories import Registry
from llmtap.pipeline.span import Stage

__all__ = ["build_stages", "stage_registry"]


@functools.cache
def stage_registry() -> Registry[Stage]:
    """Every stage, by the section of its options, in the order they run."""
    from llmtap.pipeline.cost import CostStage, PricingConfig
    from llmtap.pipeline.redact import RedactionConfig, RedactionStage

    def cost(options: PricingConfig | None, meter_provider: Any = None) -> Stage:
        return CostStage(options, meter_provider=meter_provider)

    def redaction(options: RedactionConfig | None, meter_provider: Any = None) -> Stage:
        return RedactionStage(options)

    stages: Registry[Stage] = Registry("stage")
    stages.register("pricing", PricingConfig, cost, "cost: prices GenAI spans")
    stages.register("redaction", RedactionConfig, redaction, "redact: removes PII and secrets")
    return stages


def build_stages(cfg: Any, meter_provider: Any = None) -> list[Stage]:
    """The stages ``cfg`` (an ``LlmtapConfig``, or None for the defaults) turns on."""
    stages = stage_registry()
    out: list[Stage] = []
    for section in stages:
        options = getattr(cfg, section, None)
        if options is None or getattr(options, "enabled", True):
            out.append(stages[section].create(options, meter_provider=meter_provider))
    return out
