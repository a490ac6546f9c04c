"""The kept-alive POST connection the OTLP/HTTP forwarder and the evaluation sinks share,
against real sockets: a connection the server closed after its answer is opened again once,
a refused connection and a server that never answers are answers with status 0."""

from __future__ import annotations

import socket
import threading
import urllib.parse
from collections.abc import Iterator

import pytest

from llmtap.service.http_post import KeptAliveConnection


class ClosingServer:
    """Answers each request with 200 and then closes the connection without saying so
    (no ``Connection: close``), as a server whose idle timeout ran out does."""

    def __init__(self, answer: bool = True) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.answer = answer
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            if not self.answer:
                self.held.append(conn)  # never answers
                continue
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def closing() -> Iterator[ClosingServer]:
    server = ClosingServer()
    yield server
    server.close()


def connection(port: int, timeout_s: float = 5.0) -> KeptAliveConnection:
    return KeptAliveConnection(urllib.parse.urlsplit(f"http://127.0.0.1:{port}/x"), timeout_s)


def test_a_connection_the_server_closed_is_opened_again(closing: ClosingServer) -> None:
    http = connection(closing.port)
    answers = [http.post("/x", b"{}", {}) for _ in range(3)]
    assert [(a.status, a.body) for a in answers] == [(200, b"ok")] * 3
    assert closing.accepted == 3
    http.close()


def test_a_refused_connection_is_status_0_with_the_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    answer = connection(port).post("/x", b"{}", {})
    assert answer.status == 0
    assert "ConnectionRefusedError" in answer.error
    assert not answer.timed_out


def test_a_server_that_never_answers_times_out() -> None:
    server = ClosingServer(answer=False)
    try:
        answer = connection(server.port, timeout_s=0.3).post("/x", b"{}", {})
    finally:
        server.close()
    assert answer.status == 0
    assert answer.timed_out


def test_the_origin_never_holds_credentials() -> None:
    parsed = urllib.parse.urlsplit("https://user:secret@[::1]:8443/v1/traces")
    assert KeptAliveConnection(parsed, 1.0).origin == "https://[::1]:8443"
