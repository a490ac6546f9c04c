"""The OTLP receivers: gRPC ``TraceService/Export`` and HTTP ``POST /v1/traces``.

Both hand the serialized request to an :class:`Intake` (the service) and translate its
answer into the transport's terms:

=====================  ==========================  ===================================
outcome                gRPC                        HTTP
=====================  ==========================  ===================================
accepted               OK (+ partial_success)      200 (+ partial_success)
malformed              INVALID_ARGUMENT            400
too large              RESOURCE_EXHAUSTED          413
wrong/missing token    UNAUTHENTICATED             401
queue full, stopping   UNAVAILABLE + RetryInfo     503 + Retry-After
=====================  ==========================  ===================================

Error bodies on HTTP are a ``google.rpc.Status`` in the request's encoding (protobuf or
JSON), as OTLP/HTTP specifies. On gRPC the retry delay goes both in the standard
``grpc-status-details-bin`` trailer (a ``google.rpc.Status`` carrying ``RetryInfo``, read by
the Collector) and in ``google.rpc.retryinfo-bin`` (read by the Python SDK's exporter).
``GET /health`` on the HTTP port and ``grpc.health.v1.Health/Check`` on the gRPC port say
whether the service accepts data. A request presenting the token of one of
``service.trusted_senders`` is authenticated and handed on with that sender's name (its
spans' redaction marks are taken as they are).

Malformed includes nesting too deep to be safe: OTLP/JSON with arrays and objects more than
200 levels deep (refused before it is parsed) and requests whose messages nest deeper than
protobuf's limit of 100 (``arrayValue``/``kvlistValue`` inside one another); the answer
names the nesting. The HTTP receiver runs a thread per open connection and holds at most
``max_connections`` (``service.http_max_connections``): one more is answered ``503`` with
``Retry-After`` and closed at once (over TLS, just closed). A connection has
``header_timeout_s`` for a request's head (and the TLS handshake), ``body_timeout_s`` for
its body, and is closed after ``idle_timeout_s`` without a request; keep-alive works within
those (see :mod:`llmtap.service.http_connections`).
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import socket
import ssl
import threading
import time
import zlib
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from llmtap.export.otlp_json import OtlpJsonError, parse_otlp_json
from llmtap.service.address import parse_address
from llmtap.service.http_connections import Connections, refuse

__all__ = [
    "EXPORT_METHOD",
    "Accepted",
    "BindError",
    "GrpcReceiver",
    "HttpReceiver",
    "Intake",
    "Rejected",
    "parse_address",
]

_log = logging.getLogger("llmtap.service")

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
_HEALTH_SERVICE = "grpc.health.v1.Health"
_SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}
_NOT_SERVING = b"\x08\x02"

INVALID, TOO_LARGE, UNAUTHENTICATED, UNAVAILABLE = (
    "invalid",
    "too_large",
    "unauthenticated",
    "unavailable",
)
_GRPC_CODES = {
    INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}
_RPC_CODES = {
    INVALID: code_pb2.INVALID_ARGUMENT,
    TOO_LARGE: code_pb2.RESOURCE_EXHAUSTED,
    UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    UNAVAILABLE: code_pb2.UNAVAILABLE,
}
_HTTP_STATUS = {INVALID: 400, TOO_LARGE: 413, UNAUTHENTICATED: 401, UNAVAILABLE: 503}


class Rejected(Exception):
    """A request the service does not take: ``kind`` is ``invalid``, ``too_large``,
    ``unauthenticated`` or ``unavailable`` (retryable, after ``retry_after_s``);
    ``outcome`` names it in the request metrics."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retry_after_s: float | None = None,
        outcome: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after_s = retry_after_s
        self.outcome = outcome or kind


@dataclass(frozen=True)
class Accepted:
    """A request taken: ``rejected`` spans of it were not (invalid), with the reason."""

    spans: int
    rejected: int = 0
    message: str = ""


class Intake(Protocol):
    def ingest(self, request: bytes, transport: str, sender: str | None = None) -> Accepted:
        """Take a serialized ``ExportTraceServiceRequest``; ``sender``: the trusted sender
        whose token authenticated it (None: anyone else); raise :class:`Rejected`."""

    def count_request(self, transport: str, outcome: str) -> None:
        """Count a request answered by the receiver itself (auth, size, format)."""

    def accepting(self) -> bool:
        """Whether the service takes data (health)."""


class BindError(OSError):
    """A listening address that cannot be used (in use, no such interface, bad TLS files)."""


def _authenticate(
    expected: bytes | None, senders: dict[bytes, str], header: str | None
) -> tuple[bool, str | None]:
    """``(accepted, trusted sender)`` for an ``Authorization`` header: a trusted sender's
    token names it; ``auth_token`` (or none configured) lets anyone else in."""
    token = b""
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip().encode()
    if token:
        for known, name in senders.items():
            if hmac.compare_digest(token, known):
                return True, name
    if expected is None:
        return True, None
    return bool(token) and hmac.compare_digest(token, expected), None


def _retry_seconds(value: float | None) -> float:
    return max(float(value or 1.0), 0.0)


# gRPC --------------------------------------------------------------------------------------------


class GrpcReceiver:
    """OTLP/gRPC on ``host:port`` (``grpcio``), raw bytes in and out."""

    def __init__(
        self,
        intake: Intake,
        host: str,
        port: int,
        *,
        auth_token: str | None = None,
        max_message_bytes: int = 16 * 1024 * 1024,
        tls: tuple[bytes, bytes] | None = None,
        workers: int = 8,
        senders: dict[bytes, str] | None = None,
    ) -> None:
        self.intake = intake
        self.host = host
        self._token = auth_token.encode() if auth_token else None
        self._senders = dict(senders or {})
        self.max_message_bytes = max_message_bytes
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),  # a port in use must fail, not be shared
        ]
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmtap-grpc"),
            options=options,
        )
        handlers = {
            "Export": grpc.unary_unary_rpc_method_handler(
                self._export, request_deserializer=None, response_serializer=None
            )
        }
        health = {
            "Check": grpc.unary_unary_rpc_method_handler(
                self._health, request_deserializer=None, response_serializer=None
            )
        }
        self._server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(_SERVICE, handlers),
                grpc.method_handlers_generic_handler(_HEALTH_SERVICE, health),
            )
        )
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if tls is not None:
                creds = grpc.ssl_server_credentials([(tls[1], tls[0])])
                bound = self._server.add_secure_port(where, creds)
            else:
                bound = self._server.add_insecure_port(where)
        except RuntimeError as exc:
            raise BindError(f"cannot listen on {where} (OTLP/gRPC): {exc}") from None
        if not bound:
            raise BindError(f"cannot listen on {where} (OTLP/gRPC): address in use or unavailable")
        self.port = bound
        self.tls = tls is not None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> GrpcReceiver:
        self._server.start()
        return self

    def stop(self, grace_s: float) -> threading.Event:
        """Refuse new calls; calls under way get ``grace_s`` to finish."""
        return self._server.stop(grace_s)

    # handlers

    def _health(self, request: bytes, context: Any) -> bytes:
        return _SERVING if self.intake.accepting() else _NOT_SERVING

    def _export(self, request: bytes, context: Any) -> bytes:
        sender = None
        if self._token is not None or self._senders:
            header = None
            for key, value in context.invocation_metadata():
                if key == "authorization":
                    header = value if isinstance(value, str) else None
                    break
            ok, sender = _authenticate(self._token, self._senders, header)
            if not ok:
                self.intake.count_request("grpc", UNAUTHENTICATED)
                context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "missing or wrong bearer token (metadata 'authorization: Bearer <token>')",
                )
        try:
            result = self.intake.ingest(request, "grpc", sender)
        except Rejected as exc:
            self._abort(context, exc)
        except Exception:
            _log.exception("OTLP/gRPC: the request could not be processed")
            self.intake.count_request("grpc", "error")
            context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log")
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.message
        return response.SerializeToString()

    def _abort(self, context: Any, exc: Rejected) -> None:
        code = _GRPC_CODES.get(exc.kind, grpc.StatusCode.INTERNAL)
        if exc.kind == UNAVAILABLE:
            seconds = _retry_seconds(exc.retry_after_s)
            delay = duration_pb2.Duration(
                seconds=int(seconds), nanos=int((seconds - int(seconds)) * 1e9)
            )
            retry = error_details_pb2.RetryInfo(retry_delay=delay)
            status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=exc.message)
            status.details.add().Pack(retry)
            context.set_trailing_metadata(
                (
                    ("grpc-status-details-bin", status.SerializeToString()),
                    ("google.rpc.retryinfo-bin", retry.SerializeToString()),
                )
            )
        context.abort(code, exc.message)


# HTTP --------------------------------------------------------------------------------------------

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_HEX_DIGITS = re.compile(rb"[0-9a-fA-F]{1,16}")
#: an oversized body up to this many times the limit is read and thrown away, so the
#: client gets its 413 instead of a reset connection; beyond, the connection is closed
_DISCARD_FACTOR = 4


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], receiver: HttpReceiver) -> None:
        self.receiver = receiver
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _HttpHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        receiver = self.receiver
        if not receiver.connections.open(request, receiver.header_timeout_s):
            receiver.refused()
            refuse(request, plain_http=receiver.ssl_context is None)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            receiver.connections.close(request)
            raise

    def finish_request(self, request: Any, client_address: Any) -> None:
        connections = self.receiver.connections
        context = self.receiver.ssl_context
        sock = request
        try:
            if context is not None:
                sock = context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
                connections.swap(request, sock)
                try:
                    sock.do_handshake()
                except (OSError, ssl.SSLError) as exc:
                    _log.debug("OTLP/HTTP: TLS handshake with %s failed: %s", client_address, exc)
                    return
            super().finish_request(sock, client_address)
        finally:
            connections.close(sock)
            if sock is not request:
                sock.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("OTLP/HTTP: connection from %s ended", client_address, exc_info=True)


class _Reply(Exception):
    def __init__(self, kind: str, message: str, outcome: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.outcome = outcome or kind


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer
    server_version = "llmtap"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        self.receiver = self.server.receiver
        self.timeout = self.receiver.idle_timeout_s  # any one read at most
        super().setup()

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection and self._next_request():
            self.handle_one_request()

    def _next_request(self) -> bool:
        """Wait (idle) for the next request on a kept-alive connection; its head is due
        ``header_timeout_s`` after its first byte."""
        receiver = self.receiver
        connections = receiver.connections
        connections.due_in(self.connection, receiver.idle_timeout_s, waiting=True)
        try:
            if not self.rfile.peek(1):
                return False
        except (OSError, ValueError):
            return False
        connections.due_in(self.connection, receiver.header_timeout_s, waiting=True)
        return True

    def _timed_out(self) -> bool:
        return self.receiver.connections.expired(self.connection)

    def do_GET(self) -> None:
        if self._timed_out():
            self.close_connection = True
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/health", "/healthz", ""):
            ok = self.server.receiver.intake.accepting()
            body = b'{"status":"ok"}' if ok else b'{"status":"stopping"}'
            self._send(200 if ok else 503, body, _JSON)
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        receiver = self.receiver
        if self._timed_out():
            self.close_connection = True
            return
        receiver.connections.due_in(self.connection, receiver.body_timeout_s)
        receiver.enter()
        try:
            self._post(receiver)
        finally:
            receiver.leave()

    def _post(self, receiver: HttpReceiver) -> None:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        json_body = content_type == _JSON
        try:
            if self.path.split("?", 1)[0].rstrip("/") != "/v1/traces":
                self._discard_body(receiver.max_message_bytes)
                self._send(404, b"no OTLP endpoint here; traces go to /v1/traces\n", "text/plain")
                receiver.intake.count_request("http", "not_found")
                return
            sender = None
            if receiver.token is not None or receiver.senders:
                ok, sender = _authenticate(
                    receiver.token, receiver.senders, self.headers.get("Authorization")
                )
                if not ok:
                    self._discard_body(receiver.max_message_bytes)
                    raise _Reply(
                        UNAUTHENTICATED,
                        "missing or wrong bearer token (header 'Authorization: Bearer <token>')",
                    )
            if content_type not in (_PROTOBUF, _JSON):
                self._discard_body(receiver.max_message_bytes)
                self._send(
                    415,
                    f"unsupported content type {content_type!r}; send {_PROTOBUF} or "
                    f"{_JSON}\n".encode(),
                    "text/plain",
                )
                receiver.intake.count_request("http", "unsupported")
                return
            body = self._read_body(receiver.max_message_bytes)
            receiver.connections.due_in(self.connection, None)
            payload = _inflate(
                body, self.headers.get("Content-Encoding") or "", receiver.max_message_bytes
            )
            if json_body:
                try:
                    payload = parse_otlp_json(payload, strict_ids=False).SerializeToString()
                except OtlpJsonError as exc:
                    raise _Reply(INVALID, f"cannot decode OTLP/JSON: {exc}") from None
        except _Reply as reply:
            receiver.intake.count_request("http", reply.outcome)
            self._error(reply.kind, reply.message, json_body)
            return
        try:
            result = receiver.intake.ingest(payload, "http", sender)
        except Rejected as exc:
            self._error(exc.kind, exc.message, json_body, exc.retry_after_s)
            return
        except Exception:
            _log.exception("OTLP/HTTP: the request could not be processed")
            receiver.intake.count_request("http", "error")
            self._send(500, b"internal error; see the service log\n", "text/plain")
            return
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.message
        if json_body:
            from google.protobuf import json_format

            self._send(200, json_format.MessageToJson(response, indent=None).encode(), _JSON)
        else:
            self._send(200, response.SerializeToString(), _PROTOBUF)

    # bodies

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        digits = value.strip()
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
            raise _Reply(INVALID, f"bad Content-Length {value[:40]!r}")
        return int(digits)

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length = self._content_length() or 0
        if length > limit:
            self._discard(length, limit)
            raise _Reply(
                TOO_LARGE, f"request body of {length} bytes exceeds the limit of {limit} bytes"
            )
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            self.close_connection = True
            if self._timed_out():
                raise _Reply(INVALID, "request body not received in time", "timeout")
            raise _Reply(INVALID, "request body shorter than its Content-Length")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        data = bytearray()
        while True:
            digits = self.rfile.readline(1024).split(b";")[0].strip()
            if not _HEX_DIGITS.fullmatch(digits):
                self.close_connection = True
                raise _Reply(INVALID, "malformed chunked body")
            size = int(digits, 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            if len(data) + size > limit:
                self.close_connection = True
                raise _Reply(TOO_LARGE, f"request body exceeds the limit of {limit} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(1024).strip():
                self.close_connection = True
                raise _Reply(INVALID, "malformed or truncated chunked body")
            data += chunk

    def _discard(self, length: int, limit: int) -> None:
        if length > limit * _DISCARD_FACTOR:
            self.close_connection = True
            return
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                self.close_connection = True
                return
            left -= len(chunk)

    def _discard_body(self, limit: int) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            return
        try:
            length = self._content_length() or 0
        except _Reply:
            self.close_connection = True
            return
        self._discard(length, limit)

    # answers

    def _error(
        self, kind: str, message: str, json_body: bool, retry_after_s: float | None = None
    ) -> None:
        status = status_pb2.Status(code=_RPC_CODES.get(kind, code_pb2.INTERNAL), message=message)
        headers: dict[str, str] = {}
        if kind == UNAVAILABLE:
            headers["Retry-After"] = str(max(1, math.ceil(_retry_seconds(retry_after_s))))
        if kind == UNAUTHENTICATED:
            headers["WWW-Authenticate"] = "Bearer"
        if json_body:
            body = json.dumps({"code": status.code, "message": message}).encode()
            self._send(_HTTP_STATUS.get(kind, 500), body, _JSON, headers)
        else:
            self._send(_HTTP_STATUS.get(kind, 500), status.SerializeToString(), _PROTOBUF, headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.receiver.connections.due_in(self.connection, self.receiver.idle_timeout_s)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


def _inflate(body: bytes, content_encoding: str, limit: int) -> bytes:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise _Reply(INVALID, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    try:
        try:
            inflater = zlib.decompressobj(wbits)
            out = inflater.decompress(body, limit + 1)
        except zlib.error:
            if encoding != "deflate":
                raise
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
            out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise _Reply(INVALID, f"bad {encoding} body: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _Reply(
            TOO_LARGE, f"decompressed request exceeds the limit of {limit} bytes", "too_large"
        )
    if not inflater.eof:
        raise _Reply(INVALID, f"truncated {encoding} body")
    return out


class HttpReceiver:
    """OTLP/HTTP on ``host:port`` (standard library server): one thread per open connection,
    at most ``max_connections`` of them (more are answered 503 and closed); a connection
    has ``header_timeout_s`` for a request's head (and the TLS handshake), then
    ``body_timeout_s`` for its body, and is closed after ``idle_timeout_s`` without a
    request (or without a byte, mid-request)."""

    def __init__(
        self,
        intake: Intake,
        host: str,
        port: int,
        *,
        auth_token: str | None = None,
        max_message_bytes: int = 16 * 1024 * 1024,
        tls: tuple[bytes, bytes] | None = None,
        tls_files: tuple[str, str] | None = None,
        max_connections: int = 256,
        header_timeout_s: float = 10.0,
        body_timeout_s: float = 60.0,
        idle_timeout_s: float = 60.0,
        senders: dict[bytes, str] | None = None,
    ) -> None:
        self.intake = intake
        self.token = auth_token.encode() if auth_token else None
        self.senders = dict(senders or {})
        self.max_message_bytes = max_message_bytes
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.idle_timeout_s = idle_timeout_s
        tick = min(header_timeout_s, body_timeout_s, idle_timeout_s) / 10
        self.connections = Connections(max_connections, min(max(tick, 0.02), 0.5))
        self._last_refusal_log = 0.0
        self.ssl_context: ssl.SSLContext | None = None
        if tls_files is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                context.load_cert_chain(tls_files[0], tls_files[1])
            except (OSError, ssl.SSLError) as exc:
                raise BindError(f"cannot load the TLS certificate/key: {exc}") from None
            self.ssl_context = context
        try:
            self._server = _HttpServer((host, port), self)
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise BindError(
                f"cannot listen on {where} (OTLP/HTTP): {exc.strerror or exc}"
            ) from None
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="llmtap-http",
            daemon=True,
        )
        self._busy = 0
        self._cond = threading.Condition()

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/v1/traces"

    def start(self) -> HttpReceiver:
        self.connections.start()
        self._thread.start()
        return self

    def refused(self) -> None:
        """A connection over ``max_connections`` was turned away."""
        self.intake.count_request("http", "too_many_connections")
        now = time.monotonic()
        if now - self._last_refusal_log > 10.0:
            self._last_refusal_log = now
            _log.warning(
                "OTLP/HTTP: %d connections open (http_max_connections); refusing new ones",
                self.connections.limit,
            )

    def enter(self) -> None:
        with self._cond:
            self._busy += 1

    def leave(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def stop(self, grace_s: float) -> None:
        """Stop accepting connections; wait up to ``grace_s`` for requests under way."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self.connections.stop(waiting_only=True)
        deadline = time.monotonic() + grace_s
        with self._cond:
            while self._busy and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
        self.connections.stop(waiting_only=False)
