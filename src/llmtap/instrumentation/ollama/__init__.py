"""Ollama SDK instrumentation: ``Client`` and ``AsyncClient`` chat, generate, embed, embeddings.

The module-level functions (``ollama.chat``, ``ollama.generate``, ``ollama.embed``,
``ollama.embeddings``) are methods of a default client, bound when ``ollama`` is imported:
imported after ``instrument()`` they already go through the patched methods (and are bound
to the originals again at ``uninstrument()``); imported before, they are bound to the
originals, so they are wrapped too (the patched method inside then stands aside: one span
per call either way).

Provider name ``ollama`` (not a well-known value of ``gen_ai.provider.name``; the
conventions allow a custom one), server address and port from the client's host. Nothing
here talks to the network; the SDK sends requests only to the host it was given.
"""

from __future__ import annotations

import sys
from typing import Any

import wrapt

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.ollama._adapter import OllamaAdapter

_CLIENT = "ollama._client"
_METHODS = ("chat", "generate", "embed", "embeddings")


class OllamaInstrumentor(SdkInstrumentor):
    """Turns every Ollama chat, generate and embed call into a GenAI span with metrics."""

    dependencies = ("ollama >= 0.4, < 1",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        wrap = self.patcher.wrap
        for method in _METHODS:
            adapter = OllamaAdapter(settings, method)
            wrap(_CLIENT, f"Client.{method}", sync_wrapper(telemetry, adapter))
            wrap(_CLIENT, f"AsyncClient.{method}", async_wrapper(telemetry, adapter))
            if "ollama" in sys.modules:
                # bound to the default client before the patch: wrapped where they are
                wrap("ollama", method, sync_wrapper(telemetry, adapter))

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        _rebind_module_functions()


def _rebind_module_functions() -> None:
    """``ollama.chat`` and the others, bound to the patched methods when ``ollama`` was
    imported after ``instrument()``, are bound to the default client's methods as they are
    now (as a fresh import would bind them)."""
    module = sys.modules.get("ollama")
    if module is None:
        return
    for method in _METHODS:
        bound = module.__dict__.get(method)
        client = getattr(bound, "__self__", None)
        if isinstance(bound, wrapt.BoundFunctionWrapper) and client is not None:
            setattr(module, method, getattr(client, method))
