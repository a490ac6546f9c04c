"""The OTLP/HTTP receiver's open connections: a cap on how many, and a deadline for each.

Every connection the HTTP receiver serves has one handler thread, so the number of threads
is the number of open connections, capped at ``limit``; a connection beyond it is answered
``503`` (plain text, ``Retry-After``; over TLS nothing) and closed at once by the accepting
thread. Each open connection has a deadline for what it is doing (the TLS handshake and the
request's head, its body, waiting idle for the next request); a watchdog thread shuts a
connection whose deadline passed, which ends its handler. While a request is being
processed it has none.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

__all__ = ["Connections", "refuse"]

_BUSY = b"too many open connections; retry in a moment\n"
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s" % (len(_BUSY), _BUSY)
)


class Connections:
    """Open connections (sockets) and their deadlines (``time.monotonic()`` values, or None
    while the service works on a request)."""

    def __init__(self, limit: int, tick_s: float) -> None:
        self.limit = limit
        self._tick_s = tick_s
        self._lock = threading.Lock()
        self._deadlines: dict[socket.socket, float | None] = {}
        self._expired: set[socket.socket] = set()
        self._waiting: set[socket.socket] = set()  # for a request (idle, or reading its head)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="llmtap-http-deadlines", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def __len__(self) -> int:
        return len(self._deadlines)

    def open(self, sock: socket.socket, timeout_s: float) -> bool:
        """Take a new connection with ``timeout_s`` to its first request's head; False when
        ``limit`` connections are open already."""
        with self._lock:
            if len(self._deadlines) >= self.limit:
                return False
            self._deadlines[sock] = time.monotonic() + timeout_s
            self._waiting.add(sock)
            return True

    def swap(self, old: socket.socket, new: socket.socket) -> None:
        """``new`` (a TLS socket) stands for ``old`` from now on."""
        with self._lock:
            if old in self._deadlines:
                self._deadlines[new] = self._deadlines.pop(old)
            for marks in (self._expired, self._waiting):
                if old in marks:
                    marks.discard(old)
                    marks.add(new)

    def close(self, sock: socket.socket) -> None:
        """Forget ``sock``; call before closing it, so that it is never shut after."""
        with self._lock:
            self._deadlines.pop(sock, None)
            self._expired.discard(sock)
            self._waiting.discard(sock)

    def due_in(
        self, sock: socket.socket, timeout_s: float | None, *, waiting: bool = False
    ) -> None:
        """``sock`` must be done within ``timeout_s`` (None: no deadline); ``waiting``: for a
        request, not in one."""
        with self._lock:
            if sock in self._deadlines:
                self._deadlines[sock] = None if timeout_s is None else time.monotonic() + timeout_s
                (self._waiting.add if waiting else self._waiting.discard)(sock)

    def expired(self, sock: socket.socket) -> bool:
        """Whether the watchdog shut ``sock`` (its sender was too slow)."""
        return sock in self._expired

    def stop(self, waiting_only: bool) -> None:
        """Shut the connections waiting for a request (``waiting_only``), or all of them;
        the watchdog ends with the latter."""
        with self._lock:
            for sock in list(self._waiting if waiting_only else self._deadlines):
                self._shut(sock)
        if not waiting_only:
            self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(self._tick_s):
            now = time.monotonic()
            with self._lock:
                for sock, deadline in self._deadlines.items():
                    if deadline is not None and deadline <= now:
                        self._shut(sock)

    def _shut(self, sock: socket.socket) -> None:
        # called with the lock held; the base class's shutdown, not SSLSocket's (which would
        # drop its TLS state under the handler's feet): the handler's read returns at once
        self._deadlines[sock] = None
        self._expired.add(sock)
        self._waiting.discard(sock)
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def refuse(sock: socket.socket, plain_http: bool) -> None:
    """Answer a connection over the limit without blocking (TLS ones are just closed)."""
    if not plain_http:
        return
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.recv(65536)  # what the client sent already: closing over it resets
        sock.send(_REFUSED)
