"""Plain chat: one traced OpenAI call, printed as a trace tree.

python examples/chat/app.py     # offline; with OPENAI_API_KEY set, against OpenAI
"""

from openai import OpenAI

import llmtap
from llmtap.devserver import offline_unless_keyed
from llmtap.export.console import ConsoleTreeExporter

offline_unless_keyed()
telemetry = llmtap.configure(service_name="example-chat", span_exporters=[ConsoleTreeExporter()])
client = OpenAI()

with llmtap.context(user_id="user-1", feature="chat"):
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What is OpenTelemetry, in one sentence?"},
        ],
        temperature=0.2,
    )
print(reply.choices[0].message.content)
telemetry.shutdown()
