"""The ``llmtap`` command."""

from __future__ import annotations

import argparse
import sys

from llmtap.cli_eval import add_parser as add_eval
from llmtap.cli_pricing import add_parser as add_pricing
from llmtap.cli_serve import add_parser as add_serve

#: commands that parse their own arguments: everything after the command name is theirs
_PASS_THROUGH = ("demo", "devserver")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="llmtap", description="LLM observability on OpenTelemetry"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the offline demo app and print its traces", add_help=False)
    sub.add_parser(
        "devserver", help="run the local OpenAI/Anthropic-compatible server", add_help=False
    )
    add_pricing(sub)
    add_serve(sub)
    add_eval(sub)
    args, rest = parser.parse_known_args(argv)
    if args.command not in _PASS_THROUGH:
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return args.handler(args)
    if args.command == "demo":
        from llmtap.demo.__main__ import main as demo

        return demo(rest)
    from llmtap.devserver.__main__ import main as devserver

    return devserver(rest)


if __name__ == "__main__":
    sys.exit(main())
