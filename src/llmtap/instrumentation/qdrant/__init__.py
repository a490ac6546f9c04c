"""Qdrant instrumentation: ``QdrantClient`` / ``AsyncQdrantClient`` queries as
``retrieval {collection}`` spans.

``query_points``, ``search`` (releases that still have it) and ``query_batch_points`` (one
span per call; ``gen_ai.request.top_k`` is the first request's limit, the documents of every
request are recorded in request order in one list). ``limit`` is ``gen_ai.request.top_k``;
a ``models.Document`` query (inference) is the query text. A point's text is read from its
payload's first string field among ``text``, ``content``, ``document``, ``page_content``,
``chunk``. Filters are not recorded. Local mode (``QdrantClient(":memory:")``) and the
remote REST/gRPC clients are all traced the same way, at the client's methods.
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.qdrant._query import BatchAdapter, PointsAdapter, SearchAdapter

_CLIENTS = (
    ("qdrant_client.qdrant_client", "QdrantClient", sync_wrapper),
    ("qdrant_client.async_qdrant_client", "AsyncQdrantClient", async_wrapper),
)


class QdrantInstrumentor(SdkInstrumentor):
    """Turns every Qdrant point query into a GenAI ``retrieval`` span."""

    dependencies = ("qdrant-client >= 1.12, < 2",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        adapters = {
            "query_points": PointsAdapter(settings),
            "search": SearchAdapter(settings),
            "query_batch_points": BatchAdapter(settings),
        }
        for module, cls, wrapper in _CLIENTS:
            for method, adapter in adapters.items():
                self.patcher.wrap(module, f"{cls}.{method}", wrapper(telemetry, adapter))
