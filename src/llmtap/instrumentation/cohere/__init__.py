"""Cohere SDK instrumentation: the v2 client (``chat``, ``chat_stream``, ``embed``, ``rerank``).

``cohere.ClientV2`` / ``cohere.AsyncClientV2`` and the ``.v2`` of ``cohere.Client`` /
``cohere.AsyncClient`` all run the methods of ``cohere.v2.client.V2Client`` /
``AsyncV2Client``, which are the ones wrapped; they call the raw client (not wrapped), so
each call makes one span. The raw client's methods are wrapped as well, for clients made
before ``instrument()`` (``cohere.Client.__init__`` binds ``chat`` / ``chat_stream`` onto the
instance) and ``with_raw_response``; inside an llmtap span they stand aside. Rerank calls are
``rerank`` step spans (see ``_rerank``).
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.cohere._chat import ChatAdapter
from llmtap.instrumentation.cohere._embed import EmbedAdapter
from llmtap.instrumentation.cohere._rerank import RerankAdapter
from llmtap.instrumentation.cohere._streams import (
    RawResponses,
    raw_stream_wrapper,
    stream_wrapper,
)

_V2 = "cohere.v2.client"
_SYNC, _ASYNC = "V2Client", "AsyncV2Client"
_RAW = "cohere.v2.raw_client"  # cohere >= 5.16
_RAW_SYNC, _RAW_ASYNC = "RawV2Client", "AsyncRawV2Client"


class CohereInstrumentor(SdkInstrumentor):
    """Turns every Cohere v2 call into a GenAI semantic-convention span with metrics."""

    # 5.16 brought the raw client (needed for clients made before instrument())
    dependencies = ("cohere >= 5.16, < 8",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        wrap = self.patcher.wrap
        for method, adapter in (
            ("chat", ChatAdapter(settings)),
            ("embed", EmbedAdapter(settings)),
            ("rerank", RerankAdapter(settings)),
        ):
            wrap(_V2, f"{_SYNC}.{method}", sync_wrapper(telemetry, adapter))
            wrap(_V2, f"{_ASYNC}.{method}", async_wrapper(telemetry, adapter))
            if method == "rerank":
                # not a model call, so an llmtap span does not make inner layers stand aside;
                # rerank is never bound onto the instance either
                continue
            raw = RawResponses(adapter)
            wrap(_RAW, f"{_RAW_SYNC}.{method}", sync_wrapper(telemetry, raw))
            wrap(_RAW, f"{_RAW_ASYNC}.{method}", async_wrapper(telemetry, raw))
        streams = ChatAdapter(settings, streaming=True)
        wrap(_V2, f"{_SYNC}.chat_stream", stream_wrapper(telemetry, streams, is_async=False))
        wrap(_V2, f"{_ASYNC}.chat_stream", stream_wrapper(telemetry, streams, is_async=True))
        for cls in (_RAW_SYNC, _RAW_ASYNC):
            wrap(_RAW, f"{cls}.chat_stream", raw_stream_wrapper(telemetry, streams))
