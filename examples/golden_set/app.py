"""A support bot that searches its knowledge base through a tool call, and the golden set
that guards it: ``llmtap eval run`` puts every case of ``golden.jsonl`` through
:func:`answer`, judges each trace with the evaluators of ``llmtap.yaml`` and each case's
``expected`` value, and fails the build when a metric falls below its threshold.

    python examples/golden_set/app.py              # offline; runs the golden set
    llmtap eval run examples/golden_set/golden.jsonl \\
        --app examples/golden_set/app.py:answer --config examples/golden_set/llmtap.yaml

``answer_with_broken_ranker`` is the same bot with a ranking bug (it picks the least
relevant document): run it with ``--app ...:answer_with_broken_ranker`` to see the run fail.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from openai import OpenAI

import llmtap
from llmtap.devserver import offline_unless_keyed

HERE = Path(__file__).resolve().parent
MODEL = "gpt-4o-mini"
KNOWLEDGE_BASE = [
    {"id": "kb-1", "keys": {"refund", "annual"},
     "content": "Annual plans are refundable within 30 days."},
    {"id": "kb-2", "keys": {"refund", "refundable", "monthly", "renews"},
     "content": "Monthly plans cannot be refunded after renewal."},
    {"id": "kb-3", "keys": {"ship", "orders", "from"},
     "content": "Orders ship from Rotterdam within two business days."},
    {"id": "kb-4", "keys": {"delivery", "germany"},
     "content": "Delivery to Germany takes three to five days."},
    {"id": "kb-5", "keys": {"password", "reset"},
     "content": "Passwords can be reset from the login page."},
    {"id": "kb-6", "keys": {"support", "available", "hours"},
     "content": "Support answers weekdays from 9 to 17 CET."},
    {"id": "kb-7", "keys": {"invoices", "invoice", "arrive"},
     "content": "Invoices are emailed on each month's first day."},
    {"id": "kb-8", "keys": {"delete", "account"},
     "content": "Accounts can be deleted under Settings, then Privacy."},
]  # fmt: skip
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_knowledge_base",
        "description": "Search the help-centre articles",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}
SYSTEM = "You are a support assistant. Search the knowledge base, then answer from it only."

_client: OpenAI | None = None


def client() -> OpenAI:
    global _client
    if _client is None:
        offline_unless_keyed()
        _client = OpenAI(max_retries=0)
    return _client


def _question(value: Any) -> str:
    """The case input: a question, or chat messages whose last user message is one."""
    if isinstance(value, str):
        return value
    return next(m["content"] for m in reversed(value) if m.get("role") == "user")


def _ranked(question: str) -> list[dict]:
    words = set(re.findall(r"[a-z]+", question.lower()))
    hits = [(len(words & d["keys"]), d) for d in KNOWLEDGE_BASE]
    return [d for n, d in sorted(hits, key=lambda p: -p[0]) if n]


def _search(question: str, *, broken: bool = False) -> list[dict]:
    with llmtap.retrieval("help-centre", query=question) as step:
        found = _ranked(question)
        if broken:
            found = [d for d in KNOWLEDGE_BASE if d not in found[:1]][-1:]
        documents = [{"id": d["id"], "content": d["content"]} for d in found[:1]]
        step.documents(documents)
    return documents


def _answer(question_or_messages: Any, *, broken: bool) -> str:
    question = _question(question_or_messages)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": question},
    ]
    first = client().chat.completions.create(model=MODEL, messages=messages, tools=[SEARCH_TOOL])
    message = first.choices[0].message
    if not message.tool_calls:
        return message.content or ""
    call = message.tool_calls[0]
    documents = _search(question, broken=broken)
    notes = " ".join(d["content"] for d in documents) or "Nothing found."
    messages.append(message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": notes})
    final = client().chat.completions.create(model=MODEL, messages=messages)
    return final.choices[0].message.content or ""


@llmtap.workflow("support-answer")
def answer(question: Any) -> str:
    return _answer(question, broken=False)


@llmtap.workflow("support-answer")
def answer_with_broken_ranker(question: Any) -> str:
    return _answer(question, broken=True)


def main(argv: list[str]) -> int:
    from llmtap.cli import main as llmtap_main

    app = "answer_with_broken_ranker" if "--broken" in argv else "answer"
    return llmtap_main([
        "eval", "run", str(HERE / "golden.jsonl"),
        "--app", f"{HERE / 'app.py'}:{app}",
        "--config", str(HERE / "llmtap.yaml"),
    ])  # fmt: skip


if __name__ == "__main__":
    if "--ask" in sys.argv:  # one question, no evaluation
        print(json.dumps(answer(sys.argv[-1])))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
