"""A RAG pipeline: retrieval and rerank steps, then a grounded answer, under one workflow
span. The retrieved documents are recorded on the retrieval span, where the judge's
faithfulness rubric finds them.

    python examples/rag/app.py     # offline; with OPENAI_API_KEY set, against OpenAI
"""

from openai import OpenAI

import llmtap
from llmtap.devserver import offline_unless_keyed
from llmtap.export.console import ConsoleTreeExporter

KNOWLEDGE_BASE = [
    {"id": "kb-1", "content": "Annual plans can be refunded in full within 30 days."},
    {"id": "kb-2", "content": "Monthly plans are not refundable."},
    {"id": "kb-3", "content": "Orders ship from Rotterdam within two business days."},
]


@llmtap.retrieval("knowledge-base")
def retrieve(question: str) -> list[dict]:
    words = set(question.lower().split())
    scored = [(len(words & set(d["content"].lower().split())), d) for d in KNOWLEDGE_BASE]
    return [dict(d, score=s) for s, d in sorted(scored, key=lambda p: -p[0]) if s]


@llmtap.rerank("overlap-reranker")
def rerank(question: str, documents: list[dict], top_n: int = 2) -> list[dict]:
    return sorted(documents, key=lambda d: -d["score"])[:top_n]


@llmtap.workflow("answer-question")
def answer(client: OpenAI, question: str) -> str:
    documents = rerank(question, retrieve(question))
    notes = "\n".join(f"[{d['id']}] {d['content']}" for d in documents)
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": f"Answer only from these notes:\n{notes}"},
            {"role": "user", "content": question},
        ],
    )
    return reply.choices[0].message.content or ""


if __name__ == "__main__":
    offline_unless_keyed()
    telemetry = llmtap.configure(service_name="example-rag", span_exporters=[ConsoleTreeExporter()])
    with llmtap.context(user_id="user-3", session_id="s-9", feature="support"):
        print(answer(OpenAI(), "Can annual plans be refunded?"))
    telemetry.shutdown()
