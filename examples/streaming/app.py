"""Streaming: a chat stream read chunk by chunk (time to first chunk, usage from the final
chunk) and one left early (the span still ends, marked ``closed``).

    python examples/streaming/app.py     # offline; with OPENAI_API_KEY set, against OpenAI
"""

from openai import OpenAI

import llmtap
from llmtap.devserver import offline_unless_keyed
from llmtap.export.console import ConsoleTreeExporter

offline_unless_keyed()
telemetry = llmtap.configure(
    service_name="example-streaming", span_exporters=[ConsoleTreeExporter()]
)
client = OpenAI()
question = [{"role": "user", "content": "Write a haiku about tracing."}]

with llmtap.context(user_id="user-2", feature="haiku"):
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=question,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()

    with client.chat.completions.create(model="gpt-4o-mini", messages=question, stream=True) as s:
        first = next(iter(s))
        print("first chunk only:", first.choices[0].delta.role if first.choices else "-")
telemetry.shutdown()
