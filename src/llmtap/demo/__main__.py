"""``llmtap demo``: the whole loop, offline, on embedded defaults.

1. a support app (RAG with PII in the question, an agent, a stream, embeddings, Anthropic)
   runs against the bundled loopback model server, traced by llmtap: cost, tokens, latency,
   time to first chunk, and PII redacted before anything leaves the process;
2. its spans go over OTLP to an llmtap service started in this process, which assembles the
   traces and judges them with rule evaluators (and the LLM judge when ``--judge-base-url``
   is given);
3. the user gives the support answer a thumbs down (``llmtap.record_feedback``): the
   feedback lands in the same trace, and the service judges the trace again;
4. the traces come back from the service and print as trees, verdicts under the spans they
   judge: the judge writes them in evaluation traces of their own, linked to those spans
   (``judge.verdicts: linked``, marked ``⇢``), so a request's trace keeps its own duration;
   the user's feedback is a child of the answer's span. Failing verdicts are in the review
   queue, ready for ``llmtap golden add``.

The demo turns on what it needs itself: message content on spans (``span_only``, unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says otherwise) so that the judge
and the review queue have the questions and answers, and it ignores ``LLMTAP_CONFIG``.
With ``--jaeger http://localhost:4317`` the service also forwards everything to Jaeger, with
``--phoenix http://localhost:6006/v1/traces`` to Arize Phoenix, with the verdicts and the
feedback as Phoenix span annotations of the judged spans. ``--ui`` starts Phoenix
itself (SQLite in the demo's folder), sends it the traces, prints their pages in Phoenix's UI
and keeps it running until Ctrl-C: the traces in a browser, without Docker.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from llmtap.demo import app
from llmtap.demo.loop import DemoService, demo_config, summary
from llmtap.devserver import DevServer
from llmtap.export.console import render
from llmtap.pipeline.span import SpanData


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


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="llmtap demo", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jaeger", metavar="URL", help="also forward to Jaeger (OTLP/gRPC)")
    parser.add_argument(
        "--phoenix",
        metavar="URL",
        help="also forward to Arize Phoenix, to its OTLP/HTTP URL\n"
        "(e.g. http://localhost:6006/v1/traces)",
    )
    parser.add_argument(
        "--judge-base-url",
        metavar="URL",
        default=os.environ.get("LLMTAP_JUDGE_BASE_URL"),
        help="an OpenAI-compatible endpoint for the LLM judge (default: $LLMTAP_JUDGE_BASE_URL)",
    )
    parser.add_argument(
        "--judge-model",
        default=os.environ.get("LLMTAP_JUDGE_MODEL", "gpt-4o-mini"),
        help="the judge model (default: $LLMTAP_JUDGE_MODEL or gpt-4o-mini)",
    )
    parser.add_argument(
        "--ui",
        action="store_true",
        help="start Arize Phoenix locally (installed apart, e.g. pipx install arize-phoenix),\n"
        "send it the demo's traces and keep it running, with its URL, until Ctrl-C",
    )
    parser.add_argument(
        "--keep", metavar="DIR", help="keep traces.jsonl and review.jsonl (and --ui's Phoenix) here"
    )
    return parser.parse_args(argv)


def _run_app(service: DemoService) -> list[tuple[str, str, str | None]]:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    import llmtap
    from llmtap.config import CAPTURE_ENV, Settings
    from llmtap.config_file import load_config

    env = dict(os.environ)
    env.setdefault(CAPTURE_ENV, "span_only")  # the judge and the review queue need content
    exporter = OTLPSpanExporter(endpoint=service.otlp_endpoint, insecure=True)
    setup = llmtap.configure(
        load_config(None, {}),  # the demo's own defaults, whatever LLMTAP_CONFIG says
        service_name="llmtap-demo",
        span_exporters=[exporter],
        settings=Settings.from_env(env),
    )
    try:
        with DevServer() as server:
            print(f"model server  {server.base_url} (offline, bundled)")
            answers = app.run(*_clients(server))
        response_id = next(rid for feature, _, rid in answers if feature == "support")
        setup.force_flush()
        service.wait_judged()
        llmtap.record_feedback(
            response_id=response_id, score="down", comment="It did not say when the refund comes."
        )
    finally:
        setup.shutdown()
    return answers


LINKED_LEGEND = (
    "⇢ a verdict in an evaluation trace of its own, linked to the span it judged "
    "(judge.verdicts: linked); the request's trace keeps its own duration"
)


def next_steps(folder: Path, review_entries: int) -> list[str]:
    """What to run next; every command runs as printed (from any directory)."""
    review = folder / "review.jsonl"
    if not review_entries:
        return [f"review queue: empty ({review}); every verdict passed"]
    entries = f"{review_entries} entr{'y' if review_entries == 1 else 'ies'}"
    return [
        f"review queue: {entries} in {review}; make them golden cases with:",
        f"  llmtap golden add {shlex.quote(str(review))} --to golden.jsonl --all",
    ]


def _folder(keep: str | None) -> Path:
    folder = Path(keep or tempfile.mkdtemp(prefix="llmtap-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("traces.jsonl", "review.jsonl"):  # a kept folder: this run's only
        (folder / name).unlink(missing_ok=True)
    return folder


def _demo(args: argparse.Namespace, folder: Path, phoenix: str | None) -> list[SpanData]:
    """Run the app through the in-process service and print what it recorded; its spans."""
    judge = (
        {"name": args.judge_model, "base_url": args.judge_base_url} if args.judge_base_url else None
    )
    config = demo_config(folder, jaeger=args.jaeger, phoenix=phoenix, judge=judge)
    service = DemoService.start(config)
    also = [f"Jaeger at {args.jaeger}"] if args.jaeger else []
    also += [f"Phoenix at {phoenix} (verdicts as span annotations)"] if phoenix else []
    forwarding = f", forwarding to {' and '.join(also)}" if also else ""
    print(f"llmtap service {service.otlp_endpoint} (in this process), judging with "
          f"{len(service.judging.rules)} rules{forwarding}")  # fmt: skip
    try:
        answers = _run_app(service)
        service.wait_judged()
    finally:
        service.stop()
    return _show(service, answers, folder)


def _show(
    service: DemoService, answers: list[tuple[str, str, str | None]], folder: Path
) -> list[SpanData]:
    """Print the traces, the totals, the answers and what to run next; the spans."""
    spans = service.spans()
    print()
    print(render(spans))
    print(LINKED_LEGEND)
    print()
    print("\n".join(summary(spans)))
    print("\nanswers:")
    for feature, text, _ in answers:
        print(f"  - [{feature}] {text}")
    review = service.review_entries()
    print()
    print("\n".join(next_steps(folder, len(review))))
    return spans


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.ui and args.phoenix:
        print("llmtap demo: --ui starts a Phoenix of its own; leave out --phoenix", file=sys.stderr)
        return 2
    folder = _folder(args.keep)
    if args.ui:
        from llmtap.demo.ui import run_with_phoenix

        return run_with_phoenix(folder, lambda url: _demo(args, folder, phoenix=url))
    _demo(args, folder, phoenix=args.phoenix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
