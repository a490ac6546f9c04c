"""The ``llmtap`` command."""

from __future__ import annotations

import argparse
import os
import sys

from llmtap.cli_compare import add_parser as add_compare
from llmtap.cli_config import add_parser as add_config
from llmtap.cli_eval import add_parser as add_eval
from llmtap.cli_pricing import add_parser as add_pricing
from llmtap.cli_serve import add_parser as add_serve
from llmtap.version import __version__

#: commands that parse their own arguments: everything after the command name is theirs
_PASS_THROUGH = ("demo", "devserver")
#: exit status after the reader of stdout went away (``llmtap pricing show | head``): what a
#: shell reports for a program ended by SIGPIPE
EXIT_BROKEN_PIPE = 128 + 13


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="llmtap", description="LLM observability on OpenTelemetry"
    )
    parser.add_argument("--version", action="version", version=f"llmtap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the offline demo app and print its traces", add_help=False)
    sub.add_parser(
        "devserver", help="run the local OpenAI/Anthropic-compatible server", add_help=False
    )
    add_pricing(sub)
    add_serve(sub)
    add_eval(sub)
    add_compare(sub)
    add_config(sub)
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


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()
    return code


def _reader_gone() -> int:
    """stdout's reader closed the pipe: stop quietly. Point stdout at /dev/null so that the
    interpreter's final flush does not fail (and print a traceback) too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
