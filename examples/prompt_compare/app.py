"""Did prompt v2 help or hurt? A support bot answers the same questions with two prompt
versions, users give thumbs up or down, an llmtap service judges every answer, and
``llmtap compare`` reads the exported spans back and compares the versions metric by
metric, with confidence intervals.

    python examples/prompt_compare/app.py               # offline, against the dev server
    python examples/prompt_compare/app.py --keep out/   # keep spans.jsonl in out/

Prompt v2 trims the system prompt and caps ``max_tokens`` to cut cost: calls get cheaper,
but long answers are cut off, the ``truncation`` evaluator fails them and users say so.
Each call carries its version with ``llmtap.context(prompt_version=...)``; the service's
``file`` export preset writes every span, verdicts and feedback included, to
``spans.jsonl``; then::

    llmtap compare spans.jsonl                          # the two most recent versions
    llmtap compare spans.jsonl --baseline 1 --candidate 2 --fail-on-worse
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml
from openai import OpenAI
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

import llmtap
from llmtap.cli import main as llmtap_main
from llmtap.demo.loop import DemoService
from llmtap.devserver import DevServer

MODEL = "gpt-4o-mini"
PROMPTS = {  # version: system prompt and request settings
    "1": {
        "system": "You are a support assistant for an online shop. Answer politely and only "
        "from the shop's policies; say so when you do not know.",
        "max_tokens": 200,
    },
    "2": {  # cheaper: a shorter system prompt, and answers capped at 16 tokens
        "system": "Shop support. Be brief.",
        "max_tokens": 16,
    },
}
QUESTIONS = [
    "Where is my order?",
    "Can I return these shoes?",
    "How long does delivery to Germany take for a large parcel?",
    "Do you ship abroad?",
    "My invoice shows the wrong billing address, how can I change it?",
    "Is there a discount?",
    "Why was my card declined when I paid for the order yesterday evening?",
    "Can I cancel?",
    "How do I reset my password if I no longer have the email account?",
    "Which sizes do you stock?",
]
ROUNDS = 4  # every question asked this many times per version


def service_config(folder: Path) -> Path:
    """An llmtap service on loopback: rule evaluators, every span to spans.jsonl."""
    config = {
        "service_name": "prompt-compare",
        "export": [{"preset": "file", "path": str(folder / "spans.jsonl")}],
        "service": {"grpc_address": "127.0.0.1:0", "http_address": "off",
                    "metrics_address": "off"},
        "judge": {"trace_idle_s": 0.3, "trace_max_wait_s": 3.0,
                  "rules": [{"evaluator": "truncation"}, {"evaluator": "refusal"}]},
    }  # fmt: skip
    path = folder / "llmtap.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def ask(client: OpenAI, version: str, question: str, grumpy: bool) -> None:
    prompt = PROMPTS[version]
    with llmtap.context(feature="support", prompt_name="answer", prompt_version=version):
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": prompt["system"]},
                      {"role": "user", "content": question}],
            max_tokens=prompt["max_tokens"],
        )  # fmt: skip
    # the user's thumbs: down for an answer cut off, and from a grumpy user anyway
    unhappy = grumpy or reply.choices[0].finish_reason == "length"
    llmtap.record_feedback(response_id=reply.id, score="down" if unhappy else "up")


def run(folder: Path) -> Path:
    service = DemoService.start(service_config(folder))
    setup = llmtap.configure(
        service_name="support-bot",
        span_exporters=[OTLPSpanExporter(endpoint=service.otlp_endpoint, insecure=True)],
    )
    try:
        with DevServer() as server:
            client = OpenAI(base_url=server.openai_base_url, api_key="example-key", max_retries=0)
            client.models.list()  # the first request sets up the connection: not timed
            for n in range(ROUNDS * len(QUESTIONS)):  # the versions take turns
                for version in PROMPTS:
                    ask(client, version, QUESTIONS[n % len(QUESTIONS)], grumpy=n % 8 == 3)
        setup.force_flush()
        service.wait_judged()
    finally:
        setup.shutdown()
        service.stop()
    return folder / "spans.jsonl"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="compare two prompt versions, offline")
    parser.add_argument("--keep", metavar="DIR", help="write spans.jsonl here")
    args = parser.parse_args(argv)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="llmtap-prompt-compare-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spans.jsonl").unlink(missing_ok=True)
    spans = run(folder)
    print(f"spans: {spans}\n$ llmtap compare {spans}\n")
    return llmtap_main(["compare", str(spans)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
