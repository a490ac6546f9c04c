"""A local HTTP server that records the JSON requests it gets and answers as scripted (no tests
here): the stand-in for the evaluation APIs (Phoenix, Langfuse, Datadog) the sink tests check
request shapes against, since those backends do not run here."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class RecordingServer:
    """``answers`` (``script``) are (status, headers) pairs used in order, then ``status``;
    ``hold`` makes every request wait (a backend that does not answer) until released."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[Request] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.hold = threading.Event()
        self.hold.set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                server.hold.wait(30)
                with server._lock:
                    server.requests.append(
                        Request("POST", self.path, dict(self.headers.items()), json.loads(raw))
                    )
                    status, headers = (
                        server.script.popleft() if server.script else (server.status, {})
                    )
                body = b'{"data": []}' if status < 300 else b'{"message": "scripted"}'
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.hold.set()
        self._server.shutdown()
        self._server.server_close()

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.body for r in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} request(s), got {len(self.requests)}")
