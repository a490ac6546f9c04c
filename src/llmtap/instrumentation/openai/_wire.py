"""The instrumentor of an SDK on OpenAI's wire format that is not the openai package (Groq,
Together): each target class's ``create`` is wrapped with an OpenAI adapter subclass, and
the ``with_raw_response`` accessors the app built before instrumenting are patched too."""

from __future__ import annotations

from typing import Any, ClassVar

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.openai._accessors import AccessorPatches, response_factories

#: (module, (sync class, async class), adapter class)
Target = tuple[str, tuple[str, str], type]


class OpenAIWireInstrumentor(SdkInstrumentor):
    """Subclasses name the SDK's ``package`` and its ``targets``."""

    package: ClassVar[str]
    targets: ClassVar[tuple[Target, ...]]

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        if not hasattr(self, "accessors"):
            self.accessors = AccessorPatches(response_factories(self.package))
        for module, (sync_cls, async_cls), adapter_cls in self.targets:
            adapter = adapter_cls(settings)
            self.patcher.wrap(module, f"{sync_cls}.create", sync_wrapper(telemetry, adapter))
            self.patcher.wrap(module, f"{async_cls}.create", async_wrapper(telemetry, adapter))
            self.accessors.install(module, sync_cls, "create")
            self.accessors.install(module, async_cls, "create")

    def _uninstrument(self, **kwargs: Any) -> None:
        accessors = getattr(self, "accessors", None)
        if accessors is not None:
            accessors.remove()
        super()._uninstrument(**kwargs)
