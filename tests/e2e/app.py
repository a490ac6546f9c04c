"""An instrumented application for the end-to-end tests, run in its own process.

``llmtap.configure()`` (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``LLMTAP_CONFIG`` and
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` from the environment) traces each
request: a ``workflow`` span with a ``retrieval`` step and an OpenAI chat call (the real
``openai`` SDK against ``--base-url``) whose prompt carries planted PII. Prints one JSON line
per request: ``{"trace_id", "response_id", "feature"}``.

``--feedback SCORE`` sends end-user feedback on each answer through
``llmtap.record_feedback(response_id=..., score=SCORE)`` (``down``/``up``, a number).

    python tests/e2e/app.py --base-url http://127.0.0.1:PORT/v1 --requests 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import openai
from opentelemetry import trace

import llmtap

EMAIL = "jane.doe@example.com"
PHONE = "+1 415 555 0132"
CARD = "4111 1111 1111 1111"
PLANTED_PII = (EMAIL, PHONE, CARD)

SYSTEM = "You are the support assistant of a bookshop. Answer in one sentence."
DOCUMENT = "Refunds are accepted within 30 days with the receipt."


def question(index: int) -> str:
    return (
        f"{EMAIL} here, phone {PHONE}: my card {CARD} was charged twice for order "
        f"{1000 + index}. Can I get a refund?"
    )


def send_feedback(reply: Any, score: str) -> None:
    """End-user feedback on ``reply`` (an extension point of the end-to-end tests)."""
    value: str | float = float(score) if score.lstrip("-").replace(".", "", 1).isdigit() else score
    llmtap.record_feedback(response_id=reply.id, score=value)


def one_request(
    client: openai.OpenAI, index: int, args: argparse.Namespace, flush: Any
) -> dict[str, Any]:
    text = question(index)
    with (
        llmtap.context(feature=args.feature, user_id=f"user-{index}", session_id="e2e"),
        llmtap.workflow("answer_question"),
    ):
        with llmtap.retrieval("kb", query=text) as found:
            found.documents([{"id": "policy-1", "score": 0.9, "content": DOCUMENT}])
        reply = client.chat.completions.create(
            model=args.model,
            messages=[
                {"role": "system", "content": f"{SYSTEM}\nContext: {DOCUMENT}"},
                {"role": "user", "content": text},
            ],
        )
        trace_id = trace.get_current_span().get_span_context().trace_id
    if args.feedback:
        flush()  # the answer's spans leave now
        time.sleep(args.feedback_delay)  # the user answers later: the trace is decided by then
        send_feedback(reply, args.feedback)
    return {"trace_id": f"{trace_id:032x}", "response_id": reply.id, "feature": args.feature}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible API root (/v1)")
    parser.add_argument("--requests", type=int, default=1)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--feature", default="support")
    parser.add_argument("--feedback", metavar="SCORE", help="send user feedback on each answer")
    parser.add_argument(
        "--feedback-delay", type=float, default=0.0, metavar="S", help="seconds before feedback"
    )
    args = parser.parse_args(argv)

    configured = llmtap.configure(service_name="e2e-app")
    client = openai.OpenAI(base_url=args.base_url, api_key="test-key", max_retries=0)
    try:
        for index in range(args.requests):
            print(json.dumps(one_request(client, index, args, configured.force_flush)), flush=True)
    finally:
        client.close()
        configured.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
