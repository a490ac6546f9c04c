"""The OTLP/HTTP receiver's connections: a cap on how many are open (one thread each), and
deadlines for slow senders; kept-alive connections go on working."""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmtap.service import ServiceConfig
from support.running_service import (
    http_post,
    http_url,
    metric_value,
    metrics_text,
    running_service,
    simple_spans,
    span_request,
    wait_until,
)

PROTOBUF = {"Content-Type": "application/x-protobuf"}
BODY = span_request(simple_spans(1)).SerializeToString()
HEAD = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"


def _closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``within_s``; what it sends
    first (a 503) is read and skipped."""
    deadline = time.monotonic() + within_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


@contextlib.contextmanager
def _sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(HEAD[:1])
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _post_to(url: str) -> int | None:
    try:
        return http_post(url, BODY, PROTOBUF)[0]
    except OSError:
        return None


def _requests(app: Any, outcome: str) -> float:
    text = metrics_text(app)
    return metric_value(text, "llmtap_service_requests_total", transport="http", outcome=outcome)


def _drip(socks: list[socket.socket], position: int) -> None:
    """One more byte of the request's head on each socket still open."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.send(HEAD[position % len(HEAD) : position % len(HEAD) + 1])


def test_slow_senders_hold_at_most_the_cap_and_are_closed_at_the_deadline(
    tmp_path: Path,
) -> None:
    cap, slow = 32, 300
    with running_service(tmp_path, http_max_connections=cap, http_header_timeout_s=1.5) as app:
        port = app.http.port  # type: ignore[union-attr]
        url = http_url(app)

        def _post() -> int | None:
            return _post_to(url)

        baseline = threading.active_count()
        with _sockets(port, slow) as socks:
            peak = threading.active_count()
            for position in range(1, 6):  # a byte of the head every 0.1 s
                _drip(socks, position)
                peak = max(peak, threading.active_count())
                time.sleep(0.1)
            assert peak <= baseline + cap
            # while every slot is taken a client is turned away at once (a 503, or the
            # connection closed under its request: OTLP exporters retry both), not queued
            started = time.monotonic()
            assert _post() in (503, None)
            assert time.monotonic() - started < 1.0
            # served as soon as the slow senders' deadlines free the slots
            wait_until(lambda: _post() == 200, timeout=5, what="a normal client served")
            closed = [_closed_by_server(s, within_s=3.0) for s in socks]
            assert all(closed), f"{closed.count(False)} slow sockets still open"
        wait_until(lambda: threading.active_count() <= baseline, 5, "handler threads ended")
        refused = _requests(app, "too_many_connections")
    assert refused >= slow - 3 * cap  # most were refused, not given a thread


def test_kept_alive_connections_are_reused_then_closed_when_idle(tmp_path: Path) -> None:
    with running_service(tmp_path, http_idle_timeout_s=0.6) as app:
        conn = http.client.HTTPConnection("127.0.0.1", app.http.port, timeout=5)  # type: ignore[union-attr]
        for _ in range(3):
            conn.request("POST", "/v1/traces", BODY, PROTOBUF)
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection") != "close"
            if _ == 0:
                first = conn.sock
            assert conn.sock is first  # the same connection
            time.sleep(0.2)  # less than the idle timeout
        assert len(app.http.connections) == 1  # type: ignore[union-attr]
        assert _closed_by_server(conn.sock, within_s=2.0)
        wait_until(lambda: len(app.http.connections) == 0, 2, "idle connection forgotten")  # type: ignore[union-attr]
        conn.close()


def test_a_slow_body_is_cut_off_and_counted(tmp_path: Path) -> None:
    with running_service(tmp_path, http_body_timeout_s=0.5) as app:
        sock = socket.create_connection(("127.0.0.1", app.http.port), timeout=5)  # type: ignore[union-attr]
        sock.sendall(HEAD + b"Content-Length: 1000\r\n\r\n" + b"\x0a")
        started = time.monotonic()
        for _ in range(3):
            time.sleep(0.1)
            sock.sendall(b"\x00")
        assert _closed_by_server(sock, within_s=2.0)
        assert time.monotonic() - started < 1.5
        sock.close()
        wait_until(lambda: _requests(app, "timeout") == 1, 2, "the timeout counted")
        assert http_post(http_url(app), BODY, PROTOBUF)[0] == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_stalled_tls_handshake_is_cut_off_at_the_header_deadline(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with running_service(
        tmp_path,
        tls_cert_file=str(cert),
        tls_key_file=str(key),
        http_max_connections=4,
        http_header_timeout_s=0.5,
    ) as app:
        port = app.http.port  # type: ignore[union-attr]
        stalled = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
        for sock in stalled:
            sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and no more
        started = time.monotonic()
        assert all(_closed_by_server(sock, within_s=2.0) for sock in stalled)
        assert time.monotonic() - started < 1.5
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
        for _ in range(2):  # kept alive over TLS too
            conn.request("POST", "/v1/traces", BODY, PROTOBUF)
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        conn.close()
        for sock in stalled:
            sock.close()


def _handler_threads() -> int:
    """The HTTP server's connection threads (``process_request_thread``): other threads of
    the test process come and go and must not count."""
    return sum("process_request_thread" in t.name for t in threading.enumerate())


def test_stop_closes_idle_connections(tmp_path: Path) -> None:
    with running_service(tmp_path) as app:
        baseline = _handler_threads()
        conns = []
        for _ in range(5):
            conn = http.client.HTTPConnection("127.0.0.1", app.http.port, timeout=5)  # type: ignore[union-attr]
            conn.request("POST", "/v1/traces", BODY, PROTOBUF)
            conn.getresponse().read()
            conns.append(conn)
        assert _handler_threads() >= baseline + 5
    wait_until(lambda: _handler_threads() <= baseline, 3, "handler threads ended")
    for conn in conns:
        assert _closed_by_server(conn.sock, within_s=1.0)
        conn.close()


@pytest.mark.parametrize(
    "setting",
    [
        {"http_max_connections": 0},
        {"http_header_timeout_s": 0},
        {"http_body_timeout_s": -1},
        {"http_idle_timeout_s": 0},
    ],
)
def test_connection_settings_are_checked(setting: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(setting))):
        ServiceConfig(**setting)
