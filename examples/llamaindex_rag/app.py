"""A LlamaIndex RAG app: an in-memory vector index over a few documents (embedded by Ollama),
a query engine that retrieves, reranks (a similarity cutoff) and asks Claude. llmtap traces
it through LlamaIndex's instrumentation dispatcher: one ``invoke_workflow`` span for the
query, its ``retrieval`` (query, documents, scores), ``rerank`` and ``chat`` spans; the
embedding and chat calls merge with llmtap's Ollama and Anthropic instrumentations
underneath (one span per model call).

    python examples/llamaindex_rag/app.py   # offline; with ANTHROPIC_API_KEY set, against
                                            # Anthropic (and Ollama on localhost:11434)
"""

import typing

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.embeddings.ollama import OllamaEmbedding
from llama_index.llms.anthropic import Anthropic
from llama_index.llms.anthropic import utils as anthropic_utils

import llmtap
from llmtap.devserver import offline_unless_keyed
from llmtap.export.console import ConsoleTreeExporter
from llmtap.instrumentation.llama_index import LlamaIndexInstrumentor

DOCUMENTS = [
    "Orders ship within 2 business days from our Leipzig warehouse.",
    "Returns are free within 30 days; start one from the Orders page.",
    "Express delivery costs 9 EUR and arrives the next business day.",
]

# llama-index-llms-anthropic 0.12 builds messages with anthropic 1.x's MessageParam class,
# a type alias since anthropic 2: build them as the dicts they are
if typing.get_origin(anthropic_utils.MessageParam) is typing.Union:
    anthropic_utils.MessageParam = dict


def build_engine(ollama_url: str) -> object:
    embed = OllamaEmbedding(model_name="nomic-embed-text", base_url=ollama_url)
    index = VectorStoreIndex.from_documents(
        [Document(text=text, id_=f"faq-{i}") for i, text in enumerate(DOCUMENTS)],
        embed_model=embed,
    )
    # a model LlamaIndex sends no temperature for (anthropic 2 takes none)
    llm = Anthropic(model="claude-opus-4-7", max_tokens=256)
    return index.as_query_engine(
        llm=llm,
        similarity_top_k=2,
        node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=0.0)],
    )


if __name__ == "__main__":
    server = offline_unless_keyed()
    telemetry = llmtap.configure(
        service_name="example-llamaindex-rag", span_exporters=[ConsoleTreeExporter()]
    )
    llama_index = LlamaIndexInstrumentor()
    if not llama_index.is_instrumented_by_opentelemetry:  # configure() does it once registered
        llama_index.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    engine = build_engine(server.base_url if server else "http://localhost:11434")
    with llmtap.context(user_id="user-3", feature="support"):
        answer = engine.query("How fast do orders ship?")
    print(answer)
    telemetry.shutdown()
