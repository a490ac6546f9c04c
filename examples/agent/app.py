"""An agent with tool calls: the model asks for a tool, the tool runs (its own span), the
result goes back, and the model answers; the loop stops at a final answer or 5 turns.

    python examples/agent/app.py     # offline; with OPENAI_API_KEY set, against OpenAI
"""

import json

from openai import OpenAI

import llmtap
from llmtap.devserver import offline_unless_keyed
from llmtap.export.console import ConsoleTreeExporter

ORDER_STATUS = {
    "type": "function",
    "function": {
        "name": "get_order_status",
        "description": "Look up the shipping status of an order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}


@llmtap.tool
def get_order_status(order_id: str) -> dict:
    return {"order_id": order_id, "status": "shipped", "carrier": "DHL"}


TOOLS = {"get_order_status": get_order_status}


@llmtap.agent("order-agent")
def run_agent(client: OpenAI, question: str, max_turns: int = 5) -> str:
    messages: list[dict] = [{"role": "user", "content": question}]
    for _ in range(max_turns):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=[ORDER_STATUS]
        )
        message = reply.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            result = TOOLS[call.function.name](**json.loads(call.function.arguments))
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
            )
    return "no answer within the turn limit"


if __name__ == "__main__":
    offline_unless_keyed()
    telemetry = llmtap.configure(
        service_name="example-agent", span_exporters=[ConsoleTreeExporter()]
    )
    with llmtap.context(user_id="user-4", feature="orders"):
        print(run_agent(OpenAI(), "Where is order A-1001?"))
    telemetry.shutdown()
