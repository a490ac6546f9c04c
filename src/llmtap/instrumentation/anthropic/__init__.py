"""Anthropic SDK instrumentation (Messages: create, parse, stream; beta included).

The SDK (2.x) emits its own span, ``anthropic.messages.create``, whenever a tracer provider
is available. Inside llmtap's span it would be a second GenAI span for the same call, so
while llmtap handles a call the SDK's ``start_api_call_span`` (as ``anthropic._base_client``
imports it) answers ``None``, the SDK's own "this call has no span" path; all other SDK
spans (tool runner, count_tokens, ...) are left alone. With no SDK span the SDK sends no
trace headers, so llmtap merges the current trace context into ``extra_headers`` itself
(never replacing a header the application set) unless the client's ``open_telemetry``
option turns propagation off. An SDK without that function keeps its span, as a child.
Result: one span per call, ``chat {model}``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from llmtap.config import Settings
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._patch import Patcher
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.anthropic._common import no_sdk_span, traced
from llmtap.instrumentation.anthropic._manager import manager_wrapper
from llmtap.instrumentation.anthropic._messages import MessagesAdapter

_log = logging.getLogger("llmtap")

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
_BASE_CLIENT = "anthropic._base_client"
_CLASSES = ("Messages", "AsyncMessages")


class AnthropicInstrumentor(BaseInstrumentor):
    """Turns every Anthropic Messages call into a GenAI semantic-convention span with metrics."""

    def __init__(self) -> None:
        super().__init__()
        self._patcher = Patcher()

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 0.50, < 3",)

    def _instrument(self, **kwargs: Any) -> None:
        settings = kwargs.get("settings") or Settings.from_env()
        telemetry = Telemetry(
            settings,
            kwargs.get("tracer_provider"),
            kwargs.get("meter_provider"),
            kwargs.get("logger_provider"),
        )
        messages = MessagesAdapter(settings)
        streams = MessagesAdapter(settings, streaming=True)
        wrap = self._patcher.wrap
        for module in (_MESSAGES, _BETA_MESSAGES):
            sync_cls, async_cls = _CLASSES
            for method in ("create", "parse"):
                wrap(module, f"{sync_cls}.{method}", traced(sync_wrapper(telemetry, messages)))
                wrap(module, f"{async_cls}.{method}", traced(async_wrapper(telemetry, messages)))
            wrap(module, f"{sync_cls}.stream", manager_wrapper(telemetry, streams, is_async=False))
            wrap(module, f"{async_cls}.stream", manager_wrapper(telemetry, streams, is_async=True))
        if not wrap(_BASE_CLIENT, "start_api_call_span", no_sdk_span):
            _log.debug("llmtap: the Anthropic SDK's own span, if any, stays (as a child span)")

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patcher.unpatch()
