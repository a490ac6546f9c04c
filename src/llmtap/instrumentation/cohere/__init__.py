"""Cohere SDK instrumentation: the v2 client (``chat``, ``chat_stream``, ``embed``, ``rerank``).

``cohere.ClientV2`` / ``cohere.AsyncClientV2`` and the ``.v2`` of ``cohere.Client`` /
``cohere.AsyncClient`` all run the methods of ``cohere.v2.client.V2Client`` /
``AsyncV2Client``, which are the ones wrapped; they call the raw client (not wrapped), so
each call makes one span. Rerank calls are ``rerank`` step spans (see ``_rerank``).
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.cohere._chat import ChatAdapter
from llmtap.instrumentation.cohere._embed import EmbedAdapter
from llmtap.instrumentation.cohere._rerank import RerankAdapter
from llmtap.instrumentation.cohere._streams import stream_wrapper

_V2 = "cohere.v2.client"
_SYNC, _ASYNC = "V2Client", "AsyncV2Client"


class CohereInstrumentor(SdkInstrumentor):
    """Turns every Cohere v2 call into a GenAI semantic-convention span with metrics."""

    dependencies = ("cohere >= 5.13, < 8",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        wrap = self.patcher.wrap
        for method, adapter in (
            ("chat", ChatAdapter(settings)),
            ("embed", EmbedAdapter(settings)),
            ("rerank", RerankAdapter(settings)),
        ):
            wrap(_V2, f"{_SYNC}.{method}", sync_wrapper(telemetry, adapter))
            wrap(_V2, f"{_ASYNC}.{method}", async_wrapper(telemetry, adapter))
        streams = ChatAdapter(settings, streaming=True)
        wrap(_V2, f"{_SYNC}.chat_stream", stream_wrapper(telemetry, streams, is_async=False))
        wrap(_V2, f"{_ASYNC}.chat_stream", stream_wrapper(telemetry, streams, is_async=True))
