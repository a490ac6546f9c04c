"""Mistral SDK (``mistralai``) instrumentation: chat, agents and FIM completions (plain and
streamed, sync and async) and embeddings.

``chat.complete`` / ``stream`` and their ``_async`` twins are ``chat`` spans (``parse`` and
``parse_stream`` go through them), ``agents.*`` too (with ``gen_ai.agent.id``; the request
names no model), ``fim.*`` are ``text_completion`` and ``embeddings.create`` an
``embeddings`` span; the provider is ``mistral_ai``. Streams reach the application behind a
proxy that keeps the SDK stream's whole surface (iteration, context manager, ``close``) and
reads the usage of the last chunk.

The SDK traces its own HTTP calls (a GenAI span per request) once OpenTelemetry is set up
(SDK 1.x, 2.x) or its telemetry is turned on (3.x). Inside llmtap's span that would be a
second span for the same call, so while llmtap handles a call the SDK's tracing hook gets
no span to start (``get_traced_request_and_span`` answers as when tracing is off) and the
request carries llmtap's trace context instead of the SDK span's. Nothing here goes on the
network; the SDK needs no setting to stay offline (the tests point ``server_url`` at the
loopback devserver).

SDK layouts: 2.x and 3.x (``mistralai.client.*``), 1.x (``mistralai.*``).
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.mistralai._chat import ChatAdapter
from llmtap.instrumentation.mistralai._common import no_sdk_span
from llmtap.instrumentation.mistralai._embeddings import EmbeddingsAdapter

# the package holding the SDK's resources: 2.x and 3.x, then 1.x
_PACKAGES = ("mistralai.client", "mistralai")


class MistralInstrumentor(SdkInstrumentor):
    """Turns every Mistral chat, agents, FIM and embeddings call into a GenAI
    semantic-convention span with metrics."""

    # verified: 1.3 (the first with stream context managers) under Python 3.10, 3.7 here
    dependencies = ("mistralai >= 1.3, < 4",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        wrap = self.patcher.wrap
        for package in _PACKAGES:
            for module, cls, kind in (
                ("chat", "Chat", "chat"),
                ("agents", "Agents", "agents"),
                ("fim", "Fim", "fim"),
            ):
                plain = ChatAdapter(settings, kind=kind)
                streams = ChatAdapter(settings, kind=kind, streaming=True)
                path = f"{package}.{module}"
                wrap(path, f"{cls}.complete", sync_wrapper(telemetry, plain))
                wrap(path, f"{cls}.complete_async", async_wrapper(telemetry, plain))
                wrap(path, f"{cls}.stream", sync_wrapper(telemetry, streams))
                wrap(path, f"{cls}.stream_async", async_wrapper(telemetry, streams))
            embeddings = EmbeddingsAdapter(settings)
            path = f"{package}.embeddings"
            wrap(path, "Embeddings.create", sync_wrapper(telemetry, embeddings))
            wrap(path, "Embeddings.create_async", async_wrapper(telemetry, embeddings))
            wrap(f"{package}._hooks.tracing", "get_traced_request_and_span", no_sdk_span)
