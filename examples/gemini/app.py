"""Gemini with the google-genai SDK: a chat whose model calls a Python function by itself
(automatic function calling), then a streamed summary, printed as a trace tree.

    python examples/gemini/app.py   # offline; with GEMINI_API_KEY (or GOOGLE_API_KEY) set,
                                    # against the Gemini Developer API
"""

import atexit
import os

from google import genai
from google.genai import types

import llmtap
from llmtap.devserver import DevServer
from llmtap.export.console import ConsoleTreeExporter


def get_order_status(order_id: str) -> dict:
    """Look up the shipping status of an order."""
    return {"order_id": order_id, "status": "shipped", "carrier": "DHL"}


def make_client() -> genai.Client:
    key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
    if key:
        return genai.Client(api_key=key)
    server = DevServer().start()  # offline: the loopback model server speaks the Gemini API
    atexit.register(server.stop)
    return genai.Client(api_key="offline", http_options=types.HttpOptions(base_url=server.base_url))


telemetry = llmtap.configure(service_name="example-gemini", span_exporters=[ConsoleTreeExporter()])
client = make_client()

with llmtap.context(user_id="user-1", feature="orders"), llmtap.workflow("order-question"):
    chat = client.chats.create(
        model="gemini-2.5-flash",
        config=types.GenerateContentConfig(
            system_instruction="You are a concise support assistant.",
            tools=[get_order_status],
            temperature=0.2,
        ),
    )
    answer = chat.send_message("Where is my order A-1042? Ask Orders.")
    print(answer.text)
    summary = client.models.generate_content_stream(
        model="gemini-2.5-flash", contents=f"Summarize for the customer: {answer.text}"
    )
    for chunk in summary:  # streamed: time to first chunk, usage from the last chunk
        print(chunk.text or "", end="")
    print()
telemetry.shutdown()
