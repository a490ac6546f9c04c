"""A scriptable loopback judge: OpenAI-compatible ``POST /v1/chat/completions`` and
Anthropic ``POST /v1/messages`` on 127.0.0.1, stdlib ``http.server`` only.

The test queues what the next requests get, in order::

    with JudgeServer() as judge:
        judge.push_verdict(score=True, label="faithful", explanation="all supported")
        judge.push_text("not json at all")              # garbage from the model
        judge.push_status(429, retry_after="1")           # Retry-After: 1
        judge.push_status(429, retry_after_ms=200)        # retry-after-ms: 200
        judge.push_status(500)
        judge.push_verdict(score=0.9, delay=2.0)          # a slow reply
        judge.push_close()                                # close the connection, no reply
        judge.push_raw(200, b"<html>")                    # a body that is not JSON

When the queue is empty the server answers with ``judge.default`` (a verdict of ``true``
unless set: ``judge.default = Reply(status=500)`` makes a judge that is down).

Every request is recorded (``judge.requests``: path, headers, parsed JSON body, arrival
time) so tests can check the prompt, the model, the temperature and ``response_format``.
``JudgeServer.openai_base_url`` ends in ``/v1`` (as the OpenAI SDK wants);
``anthropic_base_url`` does not.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Reply:
    """One scripted answer. ``text`` is the model's message content; ``status`` != 200
    gives an error body; ``close`` drops the connection without answering; ``body`` sends
    raw bytes as they are; ``delay`` waits before answering."""

    status: int = 200
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    close: bool = False
    body: bytes | None = None
    model: str | None = None
    input_tokens: int = 120
    output_tokens: int = 30


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def system(self) -> str:
        """The system prompt, wherever the API puts it."""
        if "system" in self.body:
            return str(self.body["system"])
        return "\n".join(m["content"] for m in self.messages if m.get("role") == "system")

    @property
    def prompt(self) -> str:
        """System prompt and every message's text, joined."""
        texts = [self.system] + [m["content"] for m in self.messages if m.get("role") != "system"]
        return "\n".join(t for t in texts if isinstance(t, str))

    @property
    def user_text(self) -> str:
        """The first user message."""
        return next(m["content"] for m in self.messages if m.get("role") == "user")


def verdict_text(**fields: Any) -> str:
    return json.dumps(fields)


class JudgeServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.default = Reply(text=verdict_text(score=True, label="pass", explanation="ok"))
        self.requests: list[Request] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- script -------------------------------------------------------------------------

    def push(self, reply: Reply) -> JudgeServer:
        with self._lock:
            self._queue.append(reply)
        return self

    def push_verdict(self, *, delay: float = 0.0, model: str | None = None, **fields: Any):
        return self.push(Reply(text=verdict_text(**fields), delay=delay, model=model))

    def push_text(self, text: str, **kw: Any) -> JudgeServer:
        return self.push(Reply(text=text, **kw))

    def push_status(
        self,
        status: int,
        *,
        retry_after: str | None = None,
        retry_after_ms: float | None = None,
        message: str = "scripted failure",
    ) -> JudgeServer:
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        body = json.dumps({"error": {"message": message, "type": "scripted"}}).encode()
        return self.push(Reply(status=status, headers=headers, body=body))

    def push_close(self) -> JudgeServer:
        return self.push(Reply(close=True))

    def push_raw(self, status: int, body: bytes, **kw: Any) -> JudgeServer:
        return self.push(Reply(status=status, body=body, **kw))

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next(self) -> Reply:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    def start(self) -> JudgeServer:
        server = ThreadingHTTPServer((self.host, 0), _Handler)
        server.daemon_threads = True
        server.judge = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> JudgeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        judge: JudgeServer = self.server.judge  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        judge._record(
            Request(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
            )
        )
        reply = judge._next()
        if reply.delay and judge._stopping.wait(reply.delay):
            return
        if reply.close:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.body is not None:
            payload = reply.body
        elif reply.status != 200:
            payload = json.dumps({"error": {"message": f"HTTP {reply.status}"}}).encode()
        elif self.path.rstrip("/").endswith("/messages"):
            payload = json.dumps(_anthropic(body, reply)).encode()
        else:
            payload = json.dumps(_openai(body, reply)).encode()
        self.send_response(reply.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(payload)


def _openai(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "id": "chatcmpl-judge-" + str(int(time.monotonic() * 1e6)),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or request.get("model", "judge"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text or ""},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
        },
    }


def _anthropic(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "id": "msg_judge_" + str(int(time.monotonic() * 1e6)),
        "type": "message",
        "role": "assistant",
        "model": reply.model or request.get("model", "judge"),
        "content": [{"type": "text", "text": reply.text or ""}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }
