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

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.anthropic._common import no_sdk_span, traced
from llmtap.instrumentation.anthropic._manager import manager_wrapper
from llmtap.instrumentation.anthropic._messages import MessagesAdapter

_log = logging.getLogger("llmtap")

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
_BASE_CLIENT = "anthropic._base_client"
_CLASSES = ("Messages", "AsyncMessages")


class AnthropicInstrumentor(SdkInstrumentor):
    """Turns every Anthropic Messages call into a GenAI semantic-convention span with metrics."""

    # instrumented; CI runs the suite on 2.x (the anthropic extra), the GenAI conformance
    # suite checks 0.x
    dependencies = ("anthropic >= 0.50, < 3",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        messages = MessagesAdapter(settings)
        streams = MessagesAdapter(settings, streaming=True)
        wrap = self.patcher.wrap
        for module in (_MESSAGES, _BETA_MESSAGES):
            sync_cls, async_cls = _CLASSES
            for method in ("create", "parse"):
                wrap(module, f"{sync_cls}.{method}", traced(sync_wrapper(telemetry, messages)))
                wrap(module, f"{async_cls}.{method}", traced(async_wrapper(telemetry, messages)))
            wrap(module, f"{sync_cls}.stream", manager_wrapper(telemetry, streams, is_async=False))
            wrap(module, f"{async_cls}.stream", manager_wrapper(telemetry, streams, is_async=True))
        if not wrap(_BASE_CLIENT, "start_api_call_span", no_sdk_span):
            _log.debug("llmtap: the Anthropic SDK's own span, if any, stays (as a child span)")
