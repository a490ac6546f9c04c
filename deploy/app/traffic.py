"""Example traffic for deploy/compose.yaml: the demo support bot, in a loop, against
``llmtap devserver``, with traces and metrics sent over OTLP to the collector, and a
thumbs-up or thumbs-down on some answers.

    OPENAI_BASE_URL=http://devserver:8000/v1 ANTHROPIC_BASE_URL=http://devserver:8000 \
    OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 python traffic.py --every 2

Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import threading

import anthropic
import openai

import llmtap
from llmtap.demo import app
from llmtap.feedback import record_feedback


def _clients() -> tuple[openai.OpenAI, anthropic.Anthropic]:
    key = os.environ.get("OPENAI_API_KEY", "demo-key")
    return (
        openai.OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=key),
        anthropic.Anthropic(
            base_url=os.environ["ANTHROPIC_BASE_URL"],
            api_key=os.environ.get("ANTHROPIC_API_KEY", "demo-key"),
        ),
    )


def _feedback(client: openai.OpenAI, rng: random.Random) -> None:
    with llmtap.context(user_id=f"user-{rng.randrange(20)}", feature="support"):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Is my refund late?"}]
        )
    record_feedback(response_id=reply.id, score=rng.random() > 0.3)


def _failing_call(client: openai.OpenAI) -> None:
    """A request the devserver answers with 400 (its ``devserver-bad_request`` model)."""
    with llmtap.context(feature="support"), contextlib.suppress(openai.BadRequestError):
        client.chat.completions.create(
            model="devserver-bad_request", messages=[{"role": "user", "content": "?"}]
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=2.0, help="seconds between rounds")
    args = parser.parse_args(argv)
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317")
    setup = llmtap.configure(service_name="support-bot", otlp_endpoint=endpoint)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    openai_client, anthropic_client = _clients()
    rng = random.Random(7)
    rounds = 0
    try:
        while not stop.is_set():
            try:
                app.run(openai_client, anthropic_client)
                _feedback(openai_client, rng)
                if rounds % 10 == 0:
                    _failing_call(openai_client)
                rounds += 1
            except (openai.APIError, anthropic.APIError) as exc:
                print(f"round failed: {exc}", flush=True)
            stop.wait(args.every)
    finally:
        setup.shutdown()
    print(f"{rounds} rounds sent", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
