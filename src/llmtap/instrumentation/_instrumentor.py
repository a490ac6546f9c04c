"""The shared shape of llmtap's instrumentors: settings and telemetry in, patches out.

``instrument()`` never imports the SDK: each patch is applied when the application imports
the SDK module it belongs to (see ``_patch``), so instrumenting an SDK the app does not use
costs nothing. The SDK's version is checked then too, from the imported module (the base
class would scan the installed distributions at ``instrument()``, and complain about an SDK
that is not installed at all). ``uninstrument()`` restores what was patched, disarms what was
waiting, and lets the spans whose token estimate is still running end first.
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys
from abc import abstractmethod
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from llmtap.config import Settings, current_settings
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._patch import Patcher
from llmtap.pipeline import tokens

_log = logging.getLogger("llmtap")


class SdkInstrumentor(BaseInstrumentor):
    """Subclasses name the SDK range they support and patch through ``self.patcher``."""

    dependencies: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        # BaseInstrumentor is a per-class singleton: a second handle must find the patches.
        if not hasattr(self, "patcher"):
            self.patcher = Patcher(self.sdk_supported)

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.dependencies

    def _check_dependency_conflicts(self) -> Any:
        return None  # done by ``sdk_supported`` once the app imports the SDK

    def sdk_supported(self) -> bool:
        """Whether the SDK the app imported is in ``dependencies`` (asked at the first patch)."""
        from packaging.requirements import Requirement

        for dependency in self.dependencies:
            requirement = Requirement(dependency)
            version = _imported_version(requirement.name)
            if version is not None and not requirement.specifier.contains(version, True):
                _log.warning(
                    "llmtap: %s %s is not supported (%s): not instrumented",
                    requirement.name,
                    version,
                    dependency,
                )
                return False
        return True

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


def _imported_version(package: str) -> str | None:
    """The version of an SDK being imported: its ``_version`` module (the SDKs import it
    first), else the installed distribution's metadata."""
    for name in (f"{package}._version", package):
        version = getattr(sys.modules.get(name), "__version__", None)
        if isinstance(version, str):
            return version
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
