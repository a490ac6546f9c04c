"""Chroma instrumentation: ``Collection.query`` (and ``AsyncCollection.query``) as
``retrieval {collection}`` spans.

One span per ``query`` call, also with several query texts or embeddings: ``n_results`` is
``gen_ai.request.top_k`` (per query), the documents of every query are recorded in query
order in one ``gen_ai.retrieval.documents`` list, and several query texts are recorded as a
JSON list of strings in ``gen_ai.retrieval.query.text`` (one text: the text itself). The
``score`` of a document is the distance Chroma reports (lower is closer), as Chroma returns
it. ``where`` / ``where_document`` filters are not recorded. ``Collection.get`` is a lookup,
not a retrieval, and is not traced. The embedding function Chroma calls for
``query_texts`` runs inside the span, so an instrumented embeddings call (OpenAI, ...)
nests under it.
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.chromadb._query import QueryAdapter

_SYNC = "chromadb.api.models.Collection"
_ASYNC = "chromadb.api.models.AsyncCollection"


class ChromaInstrumentor(SdkInstrumentor):
    """Turns every Chroma collection query into a GenAI ``retrieval`` span."""

    dependencies = ("chromadb >= 1.0, < 2",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        adapter = QueryAdapter(settings)
        self.patcher.wrap(_SYNC, "Collection.query", sync_wrapper(telemetry, adapter))
        self.patcher.wrap(_ASYNC, "AsyncCollection.query", async_wrapper(telemetry, adapter))
