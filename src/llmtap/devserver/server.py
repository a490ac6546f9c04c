"""Threaded HTTP/1.1 socket server (stdlib only) serving the dev server replies on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .reply import Reply
from .router import handle


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RequestLog:
    """Thread-safe record of the last requests seen (newest last)."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._items: deque[ReceivedRequest] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._items.append(request)

    def all(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class DevServer:
    """Local OpenAI/Anthropic-compatible model server.

    ``with DevServer() as srv: OpenAI(base_url=srv.openai_base_url, api_key="x")``
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = 0.0,
        chunk_latency_ms: float | None = None,
        log_requests: bool = False,
    ) -> None:
        self.latency_ms = latency_ms
        self.chunk_latency_ms = chunk_latency_ms
        self.requests = RequestLog()
        self._address = (host, port)
        self._log_requests = log_requests
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server().server_address[0])

    @property
    def port(self) -> int:
        return int(self._server().server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    def start(self) -> DevServer:
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(
            self._address, _Handler, owner=self, log_requests=self._log_requests
        )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="llmtap-devserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def wait(self) -> None:
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        self.requests.add(ReceivedRequest(method, path, headers, body))
        return handle(
            method,
            path,
            headers,
            body,
            latency_ms=self.latency_ms,
            chunk_latency_ms=self.chunk_latency_ms,
        )

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _server(self) -> _HTTPServer:
        if self._httpd is None:
            raise RuntimeError(
                "DevServer is not running; call start() or use it as a context manager"
            )
        return self._httpd


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self, address: tuple[str, int], handler: Any, *, owner: DevServer, log_requests: bool
    ) -> None:
        self.owner = owner
        self.log_requests = log_requests
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, conn: socket.socket, *, active: bool) -> None:
        with self._connections_lock:
            if active:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown(conn)


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, active=True)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self.connection, active=False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        body = self._read_body()
        headers = {key.lower(): value for key, value in self.headers.items()}
        reply = self.server.owner.respond(self.command, self.path, headers, body)
        try:
            _sleep_ms(reply.delay_ms)
            if reply.drops_connection:
                self._drop()
            elif reply.is_stream:
                self._send_stream(reply)
            else:
                self._send_json(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()

    def _start(self, reply: Reply, extra: dict[str, str]) -> None:
        self.send_response(reply.status)
        for key, value in {**reply.headers, **extra}.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_json(self, reply: Reply) -> None:
        payload = reply.body_bytes()
        self._start(reply, {"content-length": str(len(payload))})
        self.wfile.write(payload)

    def _send_stream(self, reply: Reply) -> None:
        self._start(reply, {"transfer-encoding": "chunked"})
        for index, chunk in enumerate(reply.event_chunks()):
            _sleep_ms(reply.first_event_delay_ms if index == 0 else reply.chunk_delay_ms)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if reply.cut_after is not None:
            self._drop()
        else:
            self.wfile.write(b"0\r\n\r\n")

    def _drop(self) -> None:
        self.close_connection = True
        _shutdown(self.connection)


def _sleep_ms(ms: float) -> None:
    if ms > 0:
        time.sleep(ms / 1000)
