"""``llmtap serve``: run the service (OTLP in, pipeline, forward to every destination).

::

    llmtap serve --config llmtap.yaml
    llmtap serve --config llmtap.yaml --grpc-address 0.0.0.0:4317 --http-address off

Prints where it listens and where it forwards (stdout), logs JSON lines (stderr), stops
on SIGTERM/SIGINT: refuses new data, sends what is queued within
``service.shutdown_timeout_s`` and exits 0 (a second signal while it drains exits at once,
with 1). Exits 2 on a
bad configuration and 1 when it cannot listen (port in use, bad TLS files).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
from typing import Any

__all__ = ["add_parser", "main", "run"]

EXIT_OK, EXIT_LISTEN, EXIT_CONFIG = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``llmtap`` command's subparsers (handler in ``args.handler``)."""
    parser = subparsers.add_parser(
        "serve",
        help="run the llmtap service (OTLP receiver, pipeline, forwarding)",
        description=(
            "Receive OTLP traces over gRPC and HTTP, run the cost and redaction stages, and "
            "forward every span to the export destinations of the config file."
        ),
    )
    _arguments(parser)
    parser.set_defaults(handler=run)
    return parser


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="llmtap.yaml (default: $LLMTAP_CONFIG; without either, the defaults)",
    )
    parser.add_argument(
        "--grpc-address", metavar="HOST:PORT", help="OTLP/gRPC listen address, or 'off'"
    )
    parser.add_argument(
        "--http-address", metavar="HOST:PORT", help="OTLP/HTTP listen address, or 'off'"
    )
    parser.add_argument(
        "--metrics-address", metavar="HOST:PORT", help="Prometheus /metrics address, or 'off'"
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LLMTAP_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="log level of the JSON logs on stderr (default: info)",
    )


def _fail(code: int, message: str) -> int:
    print(f"llmtap serve: {message}", file=sys.stderr, flush=True)
    return code


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from llmtap.config_file import load_config
    from llmtap.service.app import service_config_of

    cfg = load_config(args.config)
    service = service_config_of(cfg)
    overrides = {
        name: value
        for name, value in (
            ("grpc_address", args.grpc_address),
            ("http_address", args.http_address),
            ("metrics_address", args.metrics_address),
        )
        if value is not None
    }
    if overrides:
        try:
            service = dataclasses.replace(service, **overrides)
        except ValueError as exc:
            lines = [f"--{line.replace('_', '-', 1)}" for line in str(exc).splitlines()]
            raise _CliConfigError("\n".join(lines)) from None
    return cfg, service


class _CliConfigError(Exception):
    pass


def _judging(cfg: Any, app: Any) -> Any:
    """The judge (``judge:`` with rules), fed by the service's ``on_spans`` hook, its results
    forwarded with ``submit`` and its metrics on the service's registry; None without one."""
    if not getattr(cfg, "judge", None):
        return None
    try:
        from llmtap.service.judging import Judging
    except ImportError as exc:  # pragma: no cover - the judge side is not installed
        logging.getLogger("llmtap.service").warning("judge: not available (%s); not judging", exc)
        return None
    sinks = getattr(app, "evaluation_sinks", None)
    judging = Judging.from_config(
        cfg,
        emit=app.submit,
        on_verdict=sinks.on_verdict if sinks is not None else None,
        metrics_registry=app.metrics,
    )
    if judging is not None:
        app.on_spans(judging.on_spans)
    return judging


def _describe(app: Any, out: Any, judging: Any = None) -> None:
    lines = ["llmtap service"]
    if app.grpc is not None:
        tls = " (TLS)" if app.grpc.tls else ""
        lines.append(f"  OTLP/gRPC  listening on {app.grpc.address}{tls}")
    if app.http is not None:
        lines.append(f"  OTLP/HTTP  listening on {app.http.url}")
    if app.metrics_server is not None:
        lines.append(f"  metrics    {app.metrics_server.url}")
    if app.service.auth_token:
        lines.append("  auth       bearer token required")
    if judging is not None:
        rules = len(getattr(judging, "rules", ()) or ())
        lines.append(f"  judging    {rules} rule(s) from the judge: section")
    if app.destinations:
        for dest in app.destinations:
            mode = " (best effort)" if dest.best_effort else ""
            lines.append(f"  forwarding to {dest.name}: {dest.description}{mode}")
    else:
        lines.append("  forwarding to nothing (no export destinations in the config)")
    sinks = getattr(app, "evaluation_sinks", None)
    for name, where in (sinks.describe() if sinks is not None else {}).items():
        lines.append(f"  evaluations to {name}: {where}")
    out.write("\n".join(lines) + "\n")
    out.flush()


def _say(write: Any) -> None:
    """Print to stdout; a reader that went away (``llmtap serve | head``) does not stop the
    service, which keeps running and logging on stderr."""
    try:
        write()
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


def run(args: argparse.Namespace) -> int:
    """The ``serve`` command; returns the exit code."""
    from llmtap.config_file import ConfigError
    from llmtap.service.app import ServiceApp
    from llmtap.service.logs import configure_logging
    from llmtap.service.receiver import BindError

    configure_logging(args.log_level.upper())
    try:
        cfg, service = _load(args)
        app = ServiceApp(cfg, service)
        judging = _judging(cfg, app)
    except ConfigError as exc:
        return _fail(EXIT_CONFIG, f"invalid configuration:\n{exc}")
    except (_CliConfigError, ValueError) as exc:
        return _fail(EXIT_CONFIG, f"invalid configuration: {exc}")
    except OSError as exc:  # a file destination that cannot be opened, ...
        return _fail(EXIT_CONFIG, f"cannot set up the export destinations: {exc}")

    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(signum: int, frame: Any) -> None:
        signals["count"] += 1
        if signals["count"] > 1 and stop.is_set():
            print("llmtap serve: forced exit; spans still queued are lost", file=sys.stderr)
            os._exit(EXIT_LISTEN)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            app.start()
        except BindError as exc:
            app.stop(0)
            return _fail(EXIT_LISTEN, str(exc))
        if judging is not None:
            judging.start()
            app.on_stop(lambda seconds: judging.stop(seconds))
        _say(lambda: _describe(app, sys.stdout, judging))
        while not stop.wait(0.5):
            pass
        logging.getLogger("llmtap.service").info("stopping (signal received)")
        report = app.stop()
        counters = app.counters()
        _say(
            lambda: print(
                f"llmtap service stopped: {counters['accepted']} spans accepted, forwarded "
                f"{counters['forwarded']}, dropped {report.dropped}",
                flush=True,
            )
        )
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="llmtap serve", description="Run the llmtap service (OTLP in, forward out)."
    )
    _arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
