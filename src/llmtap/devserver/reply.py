"""Transport-neutral description of a dev server reply (JSON body, SSE or NDJSON stream)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_CONTENT_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
NDJSON_CONTENT_TYPE = "application/x-ndjson"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event; `data` is the raw data string (usually JSON)."""

    data: str
    event: str | None = None

    @classmethod
    def of(cls, payload: Any, event: str | None = None) -> SSEEvent:
        return cls(dumps(payload), event)

    def json(self) -> Any:
        return json.loads(self.data)

    def encode(self) -> bytes:
        head = f"event: {self.event}\n" if self.event else ""
        lines = "".join(f"data: {line}\n" for line in self.data.split("\n"))
        return f"{head}{lines}\n".encode()


@dataclass(frozen=True)
class JSONLine:
    """One line of a newline-delimited JSON stream (Ollama's); a stream event like `SSEEvent`."""

    data: str

    @classmethod
    def of(cls, payload: Any) -> JSONLine:
        return cls(dumps(payload))

    def json(self) -> Any:
        return json.loads(self.data)

    def encode(self) -> bytes:
        return f"{self.data}\n".encode()


@dataclass
class Reply:
    """What to send back: a JSON `body` or a list of SSE `events`.

    `cut_after`: for streams, send that many events then cut the connection; for
    JSON replies, drop the connection without sending any response at all.
    Delays are in milliseconds: `delay_ms` before the status line,
    `first_event_delay_ms` before the first event, `chunk_delay_ms` between events.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    events: list[SSEEvent] | list[JSONLine] | None = None
    cut_after: int | None = None
    delay_ms: float = 0.0
    first_event_delay_ms: float = 0.0
    chunk_delay_ms: float = 0.0

    @property
    def is_stream(self) -> bool:
        return self.events is not None

    @property
    def drops_connection(self) -> bool:
        return not self.is_stream and self.cut_after is not None

    def body_bytes(self) -> bytes:
        return b"" if self.body is None else dumps(self.body).encode()

    def sent_events(self) -> list[SSEEvent] | list[JSONLine]:
        events = self.events or []
        return events if self.cut_after is None else events[: self.cut_after]

    def event_chunks(self) -> list[bytes]:
        return [event.encode() for event in self.sent_events()]


def json_reply(body: Any, status: int = 200) -> Reply:
    return Reply(status=status, headers={"content-type": JSON_CONTENT_TYPE}, body=body)


def stream_reply(events: list[SSEEvent]) -> Reply:
    headers = {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache"}
    return Reply(status=200, headers=headers, events=events)


def ndjson_reply(lines: list[JSONLine]) -> Reply:
    return Reply(status=200, headers={"content-type": NDJSON_CONTENT_TYPE}, events=lines)
