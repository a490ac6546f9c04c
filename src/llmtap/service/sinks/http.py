"""JSON over one kept-alive HTTP connection per sink, and what an answer means for a sink.

A send delivers (2xx), asks to be retried (a transport error, HTTP 429/502/503/504, after the
server's ``Retry-After`` when it gives one, as span forwarding does) or is refused for good
(any other answer: a wrong key, a body the backend does not take): refused evaluations are
dropped and counted, never retried forever.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmtap.export.retry_after import parse_retry_after

__all__ = ["RETRYABLE", "JsonPoster", "Reply", "SinkResult"]

RETRYABLE = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class Reply:
    """One answer: ``status`` 0 when no answer came (``error`` says why)."""

    status: int
    retry_after_s: float | None = None
    error: str = ""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retry(self) -> bool:
        return self.status == 0 or self.status in RETRYABLE


@dataclass(frozen=True)
class SinkResult:
    """What became of the first ``done`` evaluations of a batch (``rejected`` of them refused
    for good, the rest delivered); with ``retry`` the others are to be sent again later."""

    done: int
    rejected: int = 0
    retry: bool = False
    retry_after_s: float | None = None
    error: str = ""


class JsonPoster:
    """POSTs JSON bodies to one origin; ``target`` (for logs) never holds credentials."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout_s: float) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {base_url!r}")
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port or (443 if self._https else 80)
        self._prefix = parsed.path.rstrip("/")
        host = f"[{self._host}]" if ":" in self._host else self._host
        where = host if parsed.port is None else f"{host}:{parsed.port}"
        self.target = f"{parsed.scheme}://{where}{self._prefix}"
        self.timeout_s = timeout_s
        self._headers = {"Content-Type": "application/json", **headers}
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

    def post(self, path: str, body: Any) -> Reply:
        """POST ``body`` (JSON) to ``path`` under the base URL."""
        payload = json.dumps(body, separators=(",", ":"), default=str).encode()
        for attempt in (0, 1):
            reused = self._conn is not None
            try:
                conn = self._connection()
                conn.request("POST", self._prefix + path, payload, self._headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if attempt == 0 and reused:  # a kept-alive connection the server closed
                    continue
                return Reply(0, error=f"{type(exc).__name__}: {exc}")
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                return Reply(
                    0, error=f"{type(exc).__name__}: {exc}", timed_out=isinstance(exc, TimeoutError)
                )
            if response.will_close:
                self.close()
            if 200 <= response.status < 300:
                return Reply(response.status)
            text = data[:300].decode("utf-8", "replace").strip()
            return Reply(
                response.status,
                retry_after_s=parse_retry_after(dict(response.headers.items())),
                error=f"HTTP {response.status}: {text}",
            )
        return Reply(0, error="connection closed")


def batch_result(reply: Reply, count: int) -> SinkResult:
    """The result of sending ``count`` evaluations in one request."""
    if reply.ok:
        return SinkResult(count)
    if reply.retry:
        return SinkResult(0, retry=True, retry_after_s=reply.retry_after_s, error=reply.error)
    return SinkResult(count, rejected=count, error=reply.error)
