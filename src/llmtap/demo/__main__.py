"""``python -m llmtap.demo``: run the example app offline and print its traces as trees."""

from __future__ import annotations

import argparse
import os
import sys

from llmtap.demo import app
from llmtap.devserver import DevServer
from llmtap.sdk.console import ConsoleTreeExporter
from llmtap.sdk.setup import configure


def _clients(server: DevServer):
    import openai

    openai_client = openai.OpenAI(
        base_url=os.environ.get("OPENAI_BASE_URL", server.openai_base_url),
        api_key=os.environ.get("OPENAI_API_KEY", "demo-key"),
    )
    try:
        import anthropic
    except ImportError:
        return openai_client, None
    anthropic_client = anthropic.Anthropic(
        base_url=os.environ.get("ANTHROPIC_BASE_URL", server.anthropic_base_url),
        api_key=os.environ.get("ANTHROPIC_API_KEY", "demo-key"),
    )
    return openai_client, anthropic_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmtap demo", description=__doc__)
    parser.add_argument("--otlp-endpoint", help="also export over OTLP (e.g. Jaeger)")
    args = parser.parse_args(argv)
    exporter = ConsoleTreeExporter(sys.stdout)
    with DevServer() as server:
        setup = configure(
            service_name="llmtap-demo",
            span_exporters=[exporter],
            otlp_endpoint=args.otlp_endpoint,
        )
        print(f"model server: {server.base_url} (offline, bundled)\n")
        try:
            answers = app.run(*_clients(server))
        finally:
            setup.shutdown()
    print("answers:")
    for line in answers:
        print(f"  - {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
