"""The shared shape of llmtap's instrumentors: settings and telemetry in, patches out.

``instrument()`` never imports the SDK: each patch is applied when the application imports
the SDK module it belongs to (see ``_patch``), so instrumenting an SDK the app does not use
costs nothing. ``uninstrument()`` restores what was patched, disarms what was waiting, and
lets the spans whose token estimate is still running end first.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from llmtap.config import Settings, current_settings
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._patch import Patcher
from llmtap.pipeline import tokens


class SdkInstrumentor(BaseInstrumentor):
    """Subclasses name the SDK range they support and patch through ``self.patcher``."""

    dependencies: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        # BaseInstrumentor is a per-class singleton: a second handle must find the patches.
        if not hasattr(self, "patcher"):
            self.patcher = Patcher()

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.dependencies

    def _instrument(self, **kwargs: Any) -> None:
        settings = kwargs.get("settings") or current_settings()
        telemetry = Telemetry(
            settings,
            kwargs.get("tracer_provider"),
            kwargs.get("meter_provider"),
            kwargs.get("logger_provider"),
        )
        self.telemetry = telemetry
        self.patch(settings, telemetry)

    @abstractmethod
    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        """Wrap the SDK's methods through ``self.patcher``."""

    def _uninstrument(self, **kwargs: Any) -> None:
        self.patcher.unpatch()
        telemetry = getattr(self, "telemetry", None)
        if telemetry is not None:
            telemetry.enabled = False
        tokens.flush()
