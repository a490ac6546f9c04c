"""JSON over one kept-alive HTTP connection per sink, and what an answer means for a sink.

A send delivers (2xx), asks to be retried (a transport error, HTTP 429/502/503/504, after the
server's ``Retry-After`` when it gives one, as span forwarding does) or is refused for good
(any other answer: a wrong key, a body the backend does not take): refused evaluations are
dropped and counted, never retried forever.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmtap.export.retry_after import parse_retry_after
from llmtap.service.http_post import KeptAliveConnection

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
        self._http = KeptAliveConnection(parsed, timeout_s)
        self._prefix = parsed.path.rstrip("/")
        self.target = self._http.origin + self._prefix
        self.timeout_s = timeout_s
        self._headers = {"Content-Type": "application/json", **headers}

    def close(self) -> None:
        self._http.close()

    def post(self, path: str, body: Any) -> Reply:
        """POST ``body`` (JSON) to ``path`` under the base URL."""
        payload = json.dumps(body, separators=(",", ":"), default=str).encode()
        answer = self._http.post(self._prefix + path, payload, self._headers)
        if answer.status == 0:
            return Reply(0, error=answer.error, timed_out=answer.timed_out)
        if 200 <= answer.status < 300:
            return Reply(answer.status)
        text = answer.body[:300].decode("utf-8", "replace").strip()
        return Reply(
            answer.status,
            retry_after_s=parse_retry_after(dict(answer.headers.items())),
            error=f"HTTP {answer.status}: {text}",
        )


def batch_result(reply: Reply, count: int) -> SinkResult:
    """The result of sending ``count`` evaluations in one request."""
    if reply.ok:
        return SinkResult(count)
    if reply.retry:
        return SinkResult(0, retry=True, retry_after_s=reply.retry_after_s, error=reply.error)
    return SinkResult(count, rejected=count, error=reply.error)
