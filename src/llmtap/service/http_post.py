"""POSTs over one kept-alive HTTP(S) connection to one origin.

Shared by the OTLP/HTTP forwarder (:mod:`llmtap.service.forward`) and the evaluation sinks
(:mod:`llmtap.service.sinks.http`): each turns an :class:`Answer` into its own result. A
kept-alive connection the server closed between two requests is opened again once; any
other transport error is an answer with ``status`` 0 and the error's text.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Answer", "KeptAliveConnection"]

_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class Answer:
    """The server's answer, or ``status`` 0 when none came (``error`` says why)."""

    status: int
    body: bytes = b""
    headers: Any = field(default_factory=dict)
    error: str = ""
    timed_out: bool = False


class KeptAliveConnection:
    """One origin (scheme, host, port) of a parsed URL; ``origin`` (for logs) never holds
    credentials. ``timeout_s`` applies to the connections opened after it is set."""

    def __init__(self, parsed: urllib.parse.SplitResult, timeout_s: float) -> None:
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname or "localhost"
        self._port = parsed.port or (443 if self._https else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        where = host if parsed.port is None else f"{host}:{parsed.port}"
        self.origin = f"{parsed.scheme}://{where}"
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._ssl = ssl.create_default_context() if self._https else None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout_s, context=self._ssl
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout_s
                )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        for attempt in (0, 1):
            reused = self._conn is not None
            try:
                conn = self._connection()
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                data = response.read()
            except _STALE as exc:
                self.close()
                if attempt == 0 and reused:  # a kept-alive connection the server closed
                    continue
                return Answer(0, error=f"{type(exc).__name__}: {exc}")
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                timed_out = isinstance(exc, TimeoutError)
                return Answer(0, error=f"{type(exc).__name__}: {exc}", timed_out=timed_out)
            if response.will_close:
                self.close()
            return Answer(response.status, data, response.headers)
        return Answer(0, error="connection closed")
