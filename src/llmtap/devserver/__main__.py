"""``python -m llmtap.devserver [--port 0]``: run the dev server; prints its base URL on stdout."""

from __future__ import annotations

import argparse
import signal
import sys

from .server import DevServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmtap.devserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay per request and per stream chunk"
    )
    parser.add_argument(
        "--chunk-latency-ms", type=float, default=None, help="per-chunk delay (default: latency)"
    )
    parser.add_argument("--log-requests", action="store_true")
    args = parser.parse_args(argv)
    server = DevServer(
        args.host,
        args.port,
        latency_ms=args.latency_ms,
        chunk_latency_ms=args.chunk_latency_ms,
        log_requests=args.log_requests,
    ).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.base_url, flush=True)
    print(f"OPENAI_BASE_URL={server.openai_base_url}", file=sys.stderr, flush=True)
    print(f"ANTHROPIC_BASE_URL={server.anthropic_base_url}", file=sys.stderr, flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
