"""Pinecone instrumentation: the data plane's ``Index.query`` (and ``AsyncIndex.query``) as
``retrieval {index}`` spans.

The HTTP (REST) index of the ``pinecone`` SDK is traced: ``pinecone.Index`` /
``Pinecone(...).Index(...)`` / ``pc.index(...)`` and the asyncio ``AsyncIndex`` (10.x),
``pinecone.db_data`` ``Index`` / ``_IndexAsyncio`` (7.x - 9.x). The gRPC index
(``pinecone[grpc]``) is not. The index name comes from the index host
(``{index}-{project}.svc.{environment}.pinecone.io``; any other host, such as a local one,
is named by its ``host:port``), ``top_k`` is ``gen_ai.request.top_k``, the namespace is
``db.namespace``. A query is a vector, so there is no query text. A match's text is read
from its metadata's first string field among ``text``, ``content``, ``document``,
``page_content``, ``chunk`` (present only with ``include_metadata=True``). Filters are not
recorded.

Pinecone 10.x binds ``query`` on each ``Index`` when it is made (its legacy ``async_req``
shim keeps the method it found then): an index made before ``instrument()`` stays untraced,
so configure llmtap before making indexes (the usual order).
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.pinecone._query import QueryAdapter

_INDEXES = (
    ("pinecone.index", "Index", sync_wrapper),  # 10.x
    ("pinecone.async_client.async_index", "AsyncIndex", async_wrapper),  # 10.x
    ("pinecone.db_data.index", "Index", sync_wrapper),  # 7.x - 9.x
    ("pinecone.db_data.index_asyncio", "_IndexAsyncio", async_wrapper),  # 7.x - 9.x
)


class PineconeInstrumentor(SdkInstrumentor):
    """Turns every Pinecone index query into a GenAI ``retrieval`` span."""

    dependencies = ("pinecone >= 7.0, < 11",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        adapter = QueryAdapter(settings)
        for module, cls, wrapper in _INDEXES:
            self.patcher.wrap(module, f"{cls}.query", wrapper(telemetry, adapter))
