"""A chat endpoint that returns the model's answer with its response id, and a feedback
endpoint that turns the end user's thumbs or stars into an ``evaluate user_feedback`` span
in the answer's trace (``llmtap.record_feedback``), where the llmtap service's
``feedback: negative`` judge rules find it.

    pip install "llmtap[examples]"
    python examples/feedback_endpoint/app.py            # offline; serves on 127.0.0.1:8000
    curl -s localhost:8000/chat -H 'content-type: application/json' \\
         -d '{"message": "Where is my parcel?"}'
    curl -s localhost:8000/feedback -H 'content-type: application/json' \\
         -d '{"response_id": "<from /chat>", "score": "down", "comment": "wrong parcel"}'

Spans print as trees in the terminal; set OTEL_EXPORTER_OTLP_ENDPOINT to send them on.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from openai import OpenAI
from pydantic import BaseModel

import llmtap
from llmtap.devserver import offline_unless_keyed
from llmtap.export.console import ConsoleTreeExporter
from llmtap.feedback import lookup_response


class ChatRequest(BaseModel):
    message: str
    user_id: str | None = None


class FeedbackRequest(BaseModel):
    response_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    score: bool | int | float | str | None = None
    scale: str | None = None  # "stars" for 1-5
    label: str | None = None
    comment: str | None = None


def create_app(client: OpenAI) -> FastAPI:
    app = FastAPI(title="support bot with feedback")

    @app.post("/chat")
    def chat(request: ChatRequest) -> dict[str, Any]:
        with llmtap.context(user_id=request.user_id, feature="support"):
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": request.message}]
            )
        answer: dict[str, Any] = {
            "answer": reply.choices[0].message.content,
            "response_id": reply.id,
        }
        traced = lookup_response(reply.id)  # the chat span, for clients that keep trace ids
        if traced is not None:
            answer["trace_id"] = f"{traced.trace_id:032x}"
            answer["span_id"] = f"{traced.span_id:016x}"
        return answer

    @app.post("/feedback")
    def feedback(request: FeedbackRequest) -> dict[str, Any]:
        try:
            record = llmtap.record_feedback(**request.model_dump(exclude_none=True))
        except llmtap.FeedbackError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        # resolved is False for a response id this worker did not serve: the llmtap
        # service moves that feedback into the answer's trace
        return {"recorded": record.span_context is not None,
                "label": record.attributes.get("llmtap.feedback.label"),
                "resolved": record.resolved}  # fmt: skip

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="chat + feedback endpoints")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    offline_unless_keyed()
    telemetry = llmtap.configure(
        service_name="example-feedback", span_exporters=[ConsoleTreeExporter()]
    )
    try:
        uvicorn.run(create_app(OpenAI()), host=args.host, port=args.port, log_level="warning")
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
