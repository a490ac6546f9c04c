"""Amazon Bedrock: a Converse call, a ConverseStream read to the end, and an InvokeModel
call in Anthropic's body format, each one traced span, printed as a trace tree.

    python examples/bedrock/app.py     # offline; with AWS credentials in the environment
                                       # (AWS_ACCESS_KEY_ID or AWS_PROFILE), against Bedrock

Offline, the boto3 client talks to the bundled loopback model server (which speaks the
Bedrock runtime's REST and event-stream protocols) with dummy keys: no AWS credential is
looked up and nothing leaves the machine.
"""

import json
import os

import boto3

import llmtap
from llmtap.devserver import DevServer
from llmtap.export.console import ConsoleTreeExporter

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"

telemetry = llmtap.configure(service_name="example-bedrock", span_exporters=[ConsoleTreeExporter()])

if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
    server = None
    client = boto3.client("bedrock-runtime", region_name=os.environ.get("AWS_REGION", "us-east-1"))
else:
    server = DevServer().start()
    client = boto3.client(  # created after configure(): llmtap hooks the client class
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.base_url,
        aws_access_key_id="offline",
        aws_secret_access_key="offline",
    )

question = [{"role": "user", "content": [{"text": "What is OpenTelemetry, in one sentence?"}]}]
with llmtap.context(user_id="user-1", feature="bedrock"):
    reply = client.converse(
        modelId=MODEL,
        messages=question,
        system=[{"text": "You are a concise assistant."}],
        inferenceConfig={"maxTokens": 200, "temperature": 0.2},
    )
    print(reply["output"]["message"]["content"][0]["text"])

    stream = client.converse_stream(modelId=MODEL, messages=question)
    for event in stream["stream"]:
        if "contentBlockDelta" in event:
            print(event["contentBlockDelta"]["delta"].get("text", ""), end="", flush=True)
    print()

    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Name one tracing backend."}],
    }
    response = client.invoke_model(modelId=MODEL, body=json.dumps(body))
    print(json.loads(response["body"].read())["content"][0]["text"])

telemetry.shutdown()
if server is not None:
    server.stop()
