"""An ordinary support-bot app: plain OpenAI and Anthropic SDK calls plus pipeline steps.

Nothing here knows about exporters; point it at any OpenAI/Anthropic-compatible server
with OPENAI_BASE_URL / ANTHROPIC_BASE_URL.
"""

from __future__ import annotations

import json
from typing import Any

import llmtap

DOCS = [
    {"id": "kb-12", "score": 0.91, "content": "Refunds are issued within 5 business days."},
    {"id": "kb-40", "score": 0.64, "content": "Orders ship from Rotterdam."},
]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_order_status",
        "description": "Look up an order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}


@llmtap.retrieval("knowledge-base")
def search(question: str) -> list[dict]:
    return DOCS


@llmtap.tool
def get_order_status(order_id: str) -> dict:
    return {"order_id": order_id, "status": "shipped"}


@llmtap.workflow("support-answer")
def answer(openai_client, question: str) -> Any:
    docs = search(question)
    context = "\n".join(d["content"] for d in docs)
    reply = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": f"Answer from these notes:\n{context}"},
            {"role": "user", "content": question},
        ],
    )
    return reply


@llmtap.agent("order-agent")
def order_agent(openai_client, question: str) -> str:
    messages = [{"role": "user", "content": question}]
    first = openai_client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=[WEATHER_TOOL]
    )
    call = first.choices[0].message.tool_calls[0]
    result = get_order_status(**json.loads(call.function.arguments))
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)},
    ]
    final = openai_client.chat.completions.create(model="gpt-4o", messages=messages)
    return final.choices[0].message.content or ""


def stream_reply(openai_client, question: str) -> str:
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}], stream=True
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def run(openai_client, anthropic_client=None) -> list[tuple[str, str, str | None]]:
    """One request per feature, each under its own business context: (feature, answer,
    response id of the answer when it is one model call)."""
    out: list[tuple[str, str, str | None]] = []
    with llmtap.context(user_id="user-7", session_id="s-42", feature="support"):
        reply = answer(
            openai_client,
            "When will my refund arrive? Reach me at jane.doe@example.com or "
            "+44 20 7946 0958; card 4111 1111 1111 1111.",
        )
        out.append(("support", reply.choices[0].message.content or "", reply.id))
    with llmtap.context(user_id="user-7", feature="orders"):
        out.append(("orders", order_agent(openai_client, "Where is order A-1001?"), None))
    with llmtap.context(user_id="user-9", feature="chat-stream"):
        out.append(("chat-stream", stream_reply(openai_client, "Say hello in three words"), None))
    with llmtap.context(feature="search-index"):
        emb = openai_client.embeddings.create(model="text-embedding-3-small", input="refunds")
        out.append(("search-index", f"{len(emb.data[0].embedding)} dimensions", None))
    if anthropic_client is not None:
        with llmtap.context(user_id="user-3", feature="summaries"):
            msg = anthropic_client.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=200,
                messages=[{"role": "user", "content": "Summarise our refund policy."}],
            )
            text = "".join(b.text for b in msg.content if b.type == "text")
            out.append(("summaries", text, msg.id))
    return out
