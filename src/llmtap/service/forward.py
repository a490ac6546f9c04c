"""Forwarding: one :class:`Destination` per ``export:`` entry, each with its own bounded
queue (:class:`~llmtap.export.queue.DestinationQueue`) and worker, sending OTLP protobuf.

Queued items are :data:`~llmtap.service.spans.SpanItem` (scope group, field header, span): a
span is serialized once however many destinations it goes to, and a batch becomes an
``ExportTraceServiceRequest`` by joining bytes. A batch larger than
:data:`MAX_REQUEST_BYTES` goes as several requests (receivers commonly refuse more than
4 MiB); after a failure only the requests not yet delivered are sent again.

Forwarders:

- :class:`GrpcForwarder`: OTLP/gRPC (``grpcio``), headers as metadata, optional gzip;
- :class:`HttpForwarder`: OTLP/HTTP protobuf over one kept-alive connection
  (``http.client``), optional gzip;
- :class:`FileForwarder`: OTLP JSON lines, one request per line (as the app's ``file``
  preset writes);
- :class:`ConsoleForwarder`: one line per span on stdout.

A send either delivers, asks to be retried (transport errors, gRPC UNAVAILABLE and the
other retryable codes, HTTP 429/502/503/504; the server's RetryInfo/Retry-After is honoured
up to :data:`MAX_RETRY_WAIT_S`), or fails for good (any other answer: a misconfigured key,
a request the backend refuses): those spans are dropped, counted with reason
``rejected`` and logged, rather than blocking the queue forever. Spans a backend reports
as rejected in a partial success are counted the same way.
"""

from __future__ import annotations

import gzip
import logging
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmtap.export.queue import DestinationQueue
from llmtap.export.retry_after import parse_retry_after
from llmtap.pipeline.cost import cost_total
from llmtap.service.http_post import KeptAliveConnection
from llmtap.service.spans import SpanItem, decode_items, encode_request, encode_requests
from llmtap.service.wal import WriteAheadLog

__all__ = [
    "MAX_REQUEST_BYTES",
    "ConsoleForwarder",
    "Destination",
    "FileForwarder",
    "Forwarder",
    "GrpcForwarder",
    "HttpForwarder",
    "SendResult",
    "build_forwarder",
]

_log = logging.getLogger("llmtap.service")

MAX_REQUEST_BYTES = 4 * 1024 * 1024
MIN_REQUEST_BYTES = 16 * 1024
MAX_RETRY_WAIT_S = 5.0
_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_RETRYABLE_GRPC = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})

Item = SpanItem


@dataclass(frozen=True)
class SendResult:
    """``retry``: try this request again later (after ``retry_after_s`` when the server
    said); otherwise it is done, with ``rejected`` of its spans refused by the backend."""

    retry: bool = False
    retry_after_s: float | None = None
    rejected: int = 0
    error: str = ""
    timed_out: bool = False


_OK = SendResult()


class Forwarder(Protocol):
    kind: str
    target: str

    def send(self, request: bytes, spans: int) -> SendResult: ...

    def close(self) -> None: ...


def _partial(response: ExportTraceServiceResponse, spans: int) -> SendResult:
    if response.HasField("partial_success") and response.partial_success.rejected_spans:
        rejected = min(int(response.partial_success.rejected_spans), spans)
        return SendResult(rejected=rejected, error=response.partial_success.error_message)
    return _OK


# OTLP/gRPC -------------------------------------------------------------------------------------


def _retry_delay(error: grpc.RpcError) -> float | None:
    from google.rpc import error_details_pb2, status_pb2

    try:
        trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    except Exception:
        return None
    raw = trailers.get("google.rpc.retryinfo-bin")
    info = error_details_pb2.RetryInfo()
    try:
        if raw:
            info.ParseFromString(raw)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        raw = trailers.get("grpc-status-details-bin")
        if raw:
            status = status_pb2.Status.FromString(raw)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    detail.Unpack(info)
                    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    except Exception:
        return None
    return None


class GrpcForwarder:
    kind = "otlp/grpc"

    def __init__(
        self,
        endpoint: str,
        *,
        headers: dict[str, str] | None = None,
        insecure: bool | None = None,
        timeout_s: float = 10.0,
        compression: str | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
        if insecure is None:
            insecure = parsed.scheme == "http"
        host = parsed.hostname or "localhost"
        port = parsed.port or (4317 if insecure or parsed.scheme != "https" else 443)
        self.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.timeout_s = timeout_s
        self._metadata = tuple((k.lower(), v) for k, v in (headers or {}).items()) or None
        self._compression = grpc.Compression.Gzip if compression == "gzip" else None
        options = [
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ("grpc.enable_retries", 0),  # the queue retries
            # reconnect within a second of a backend coming back, however long it was down
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 500),
        ]
        if insecure:
            self._channel = grpc.insecure_channel(self.target, options=options)
        else:
            creds = grpc.ssl_channel_credentials()
            self._channel = grpc.secure_channel(self.target, creds, options=options)
        self._export = self._channel.unary_unary(
            _EXPORT_METHOD, request_serializer=None, response_deserializer=None
        )

    def send(self, request: bytes, spans: int) -> SendResult:
        try:
            raw = self._export(
                request,
                timeout=self.timeout_s,
                metadata=self._metadata,
                compression=self._compression,
            )
        except grpc.RpcError as error:
            code = error.code()  # type: ignore[attr-defined]
            details = error.details() or ""  # type: ignore[attr-defined]
            delay = _retry_delay(error)
            if code in _RETRYABLE_GRPC or (
                code is grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None
            ):
                return SendResult(
                    retry=True,
                    retry_after_s=delay,
                    error=f"{code.name}: {details}",
                    timed_out=code is grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            return SendResult(rejected=spans, error=f"{code.name}: {details}")
        try:
            return _partial(ExportTraceServiceResponse.FromString(raw or b""), spans)
        except Exception:
            return _OK

    def close(self) -> None:
        self._channel.close()


# OTLP/HTTP -------------------------------------------------------------------------------------


class HttpForwarder:
    kind = "otlp/http"

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        compression: str | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"expected an http:// or https:// endpoint, got {url!r}")
        self._http = KeptAliveConnection(parsed, timeout_s)
        path = parsed.path if parsed.path not in ("", "/") else "/v1/traces"
        self._path = path + (f"?{parsed.query}" if parsed.query else "")
        # shown in logs and metrics: never the credentials of a user:password@ URL
        self.target = f"{self._http.origin}{self._path.split('?')[0]}"
        self._gzip = compression == "gzip"
        self._headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        if parsed.username and not any(k.lower() == "authorization" for k in self._headers):
            import base64

            user = urllib.parse.unquote(parsed.username)
            secret = urllib.parse.unquote(parsed.password or "")
            token = base64.b64encode(f"{user}:{secret}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"

    @property
    def timeout_s(self) -> float:
        return self._http.timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self._http.timeout_s = value

    def send(self, request: bytes, spans: int) -> SendResult:
        body = gzip.compress(request, compresslevel=1) if self._gzip else request
        answer = self._http.post(self._path, body, self._headers)
        status = answer.status
        if status == 0:
            return SendResult(retry=True, error=answer.error, timed_out=answer.timed_out)
        if 200 <= status < 300:
            try:
                return _partial(ExportTraceServiceResponse.FromString(answer.body), spans)
            except Exception:
                return _OK
        error = f"HTTP {status}: {_status_text(answer.body)}"
        if status in _RETRYABLE_HTTP:
            delay = parse_retry_after(answer.headers)
            return SendResult(retry=True, retry_after_s=delay, error=error)
        return SendResult(rejected=spans, error=error)

    def close(self) -> None:
        self._http.close()


def _status_text(data: bytes) -> str:
    """The message of an OTLP/HTTP error body (a google.rpc.Status), else the text."""
    from google.rpc import status_pb2

    try:
        status = status_pb2.Status.FromString(data)
        if status.message:
            return status.message[:300]
    except Exception:
        pass
    return data[:300].decode("utf-8", "replace").strip()


# file and console ------------------------------------------------------------------------------


class FileForwarder:
    kind = "file"

    def __init__(self, path: str | os.PathLike) -> None:
        self.target = os.fspath(path)
        directory = os.path.dirname(self.target)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._fh = open(self.target, "a", encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def send(self, request: bytes, spans: int) -> SendResult:
        from llmtap.export.otlp_json import otlp_json

        line = otlp_json(ExportTraceServiceRequest.FromString(request))
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()
        return _OK

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class ConsoleForwarder:
    kind = "console"
    target = "stdout"

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, request: bytes, spans: int) -> SendResult:
        from llmtap.service.spans import attributes_of

        message = ExportTraceServiceRequest.FromString(request)
        lines = []
        for rs in message.resource_spans:
            service = next(
                (
                    kv.value.string_value
                    for kv in rs.resource.attributes
                    if kv.key == "service.name"
                ),
                "",
            )
            for ss in rs.scope_spans:
                for span in ss.spans:
                    attrs = attributes_of(span.attributes)
                    ms = max(span.end_time_unix_nano - span.start_time_unix_nano, 0) / 1e6
                    cost = cost_total(attrs)
                    extra = f" ${cost:.6f}" if isinstance(cost, float) else ""
                    lines.append(
                        f"{span.trace_id.hex()} {span.span_id.hex()} [{service}] {span.name} "
                        f"{ms:.1f} ms{extra}"
                    )
        out = self._out or sys.stdout
        with self._lock:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
        return _OK

    def close(self) -> None:
        return None


def build_forwarder(cfg: Any, service_name: str | None = None) -> Forwarder:
    """The forwarder for one ``export:`` entry (``ExportConfig``); ``service_name`` is the
    fallback of presets that name the app (``datadog_llmobs``'s ``ml_app``)."""
    preset = cfg.preset
    if preset == "console":
        return ConsoleForwarder()
    if preset == "file":
        return FileForwarder(cfg.path)
    from llmtap.export.presets import target_for

    target = target_for(cfg, service_name)
    timeout = float(getattr(cfg, "timeout_s", None) or 10.0)
    compression = getattr(cfg, "compression", None)
    if target.protocol.startswith("http"):
        return HttpForwarder(
            target.endpoint, headers=target.headers, timeout_s=timeout, compression=compression
        )
    return GrpcForwarder(
        target.endpoint,
        headers=target.headers,
        insecure=getattr(cfg, "insecure", None),
        timeout_s=timeout,
        compression=compression,
    )


# The destination -------------------------------------------------------------------------------


class _Counts(Protocol):
    def forwarded(self, destination: str, spans: int) -> None: ...

    def dropped(self, destination: str, reason: str, spans: int) -> None: ...

    def send_failed(self, destination: str) -> None: ...

    def resent(self, destination: str, reason: str, spans: int) -> None: ...


class _NoCounts:
    def forwarded(self, destination: str, spans: int) -> None:
        pass

    def dropped(self, destination: str, reason: str, spans: int) -> None:
        pass

    def send_failed(self, destination: str) -> None:
        pass

    def resent(self, destination: str, reason: str, spans: int) -> None:
        pass


class QueueWriteError(OSError):
    """The durable queue of a destination could not be written (e.g. the disk is full)."""


def items_size(items: Sequence[Item]) -> int:
    """The bytes ``items`` hold (their serialized spans)."""
    return sum(len(header) + len(body) for _, header, body in items)


class Destination:
    """A forwarder behind its own bounded queue.

    ``capacity`` spans and ``max_bytes`` bytes of spans may wait. A *strict* destination
    (the default) never drops for lack of room: the service checks :meth:`has_room` for the
    whole request before taking it and otherwise answers with a retryable error. A
    *best-effort* destination (``best_effort=True``) takes what fits and drops (and counts)
    the rest, so a slow backend of lesser importance never pushes back on senders.

    With ``translate`` (the destination's translations,
    :func:`llmtap.service.translate.request_translator`) each request is translated just
    before it is sent; what is queued and written to disk stays as received.

    With a ``wal`` (:class:`~llmtap.service.wal.WriteAheadLog`) every span taken is written
    to disk before :meth:`offer` returns, what was not delivered at the last stop or crash
    is queued again first, and spans still queued at :meth:`close` stay on disk (``kept``)
    instead of being dropped.
    """

    def __init__(
        self,
        name: str,
        forwarder: Forwarder,
        *,
        capacity: int = 16384,
        max_bytes: int = 128 << 20,
        batch_size: int = 512,
        best_effort: bool = False,
        counts: _Counts | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        description: str = "",
        wal: WriteAheadLog | None = None,
        translate: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.name = name
        self.translate = translate
        # the last request and its translation: a request retried is not translated again
        self._translated: tuple[bytes, bytes] | None = None
        self.forwarder = forwarder
        self.capacity = max(1, capacity)
        self.max_bytes = max(1, max_bytes)
        self.best_effort = best_effort
        self.description = description or f"{forwarder.kind} {forwarder.target}"
        self.max_request_bytes = max_request_bytes
        self.wal = wal
        self.kept = 0  # spans left on disk at close, sent after the next start
        self._counts: _Counts = counts or _NoCounts()
        self._closing = threading.Event()
        self._pending: Sequence[Item] | None = None
        self._progress = 0
        self._held = 0  # spans offered and not yet delivered or dropped
        self._held_bytes = 0
        self._held_lock = threading.Lock()
        self._last_error_log = 0.0
        self._errors_since_log = 0
        self._request_bytes = max_request_bytes
        self._successes = 0
        self._base_timeout_s: float | None = getattr(forwarder, "timeout_s", None)
        self.queue: DestinationQueue[Item] = DestinationQueue(
            name,
            self._send,
            max_items=1 << 62,
            batch_size=max(1, batch_size),
            delay_s=0.05,
            max_backoff_s=1.0,
            on_drop=self._on_drop,
        )
        if wal is not None:
            self._replay(wal)

    def count_with(self, counts: _Counts) -> None:
        """Report forwarded/dropped spans to ``counts`` (the service's metrics), unless the
        destination was given its own."""
        if isinstance(self._counts, _NoCounts):
            self._counts = counts

    def _replay(self, wal: WriteAheadLog) -> None:
        replayed = 0
        for record in wal.recover():
            items = decode_items(record.payload)[record.skip :]
            self._hold(items)
            self.queue.offer(items)
            replayed += len(items)
        if replayed:
            self._counts.resent(self.name, "replay", replayed)
            _log.info(
                "%s: %d span(s) from the queue directory are sent again",
                self.name,
                replayed,
                extra={"fields": {"destination": self.name, "spans": replayed}},
            )

    # producer side

    def depth(self) -> int:
        """Spans waiting, and being sent (or retried)."""
        return self._held

    def depth_bytes(self) -> int:
        return self._held_bytes

    def full(self) -> bool:
        return self._held >= self.capacity or self._held_bytes >= self.max_bytes

    def has_room(self, spans: int, size: int = 0) -> bool:
        """Whether a request of ``spans`` spans and ``size`` bytes fits (an empty queue
        takes a request of any size)."""
        return self._held == 0 or (
            self._held + spans <= self.capacity and self._held_bytes + size <= self.max_bytes
        )

    def offer(self, items: Sequence[Item]) -> int:
        """Queue ``items``; the number dropped (only a best-effort destination drops).
        Raises :class:`QueueWriteError` when the durable queue cannot be written."""
        taken = self._fit(items) if self.best_effort else items
        if taken and self.wal is not None:
            try:
                self.wal.append(encode_request(taken), len(taken))
            except OSError as exc:
                raise QueueWriteError(
                    f"cannot write the queue of {self.name} in {self.wal.directory}: "
                    f"{exc.strerror or exc}"
                ) from None
        self._hold(taken)
        self.queue.offer(taken)
        dropped = len(items) - len(taken)
        if dropped:
            self._counts.dropped(self.name, "queue_full", dropped)
        return dropped

    def _fit(self, items: Sequence[Item]) -> Sequence[Item]:
        if self._held == 0:
            return items
        spans = max(0, self.capacity - self._held)
        room = self.max_bytes - self._held_bytes
        taken = 0
        for _, header, body in items[:spans]:
            room -= len(header) + len(body)
            if room < 0:
                break
            taken += 1
        return items[:taken]

    def _hold(self, items: Sequence[Item]) -> None:
        size = items_size(items)
        with self._held_lock:
            self._held += len(items)
            self._held_bytes += size

    def _release(self, spans: int, size: int) -> None:
        with self._held_lock:
            self._held = max(0, self._held - spans)
            self._held_bytes = max(0, self._held_bytes - size)

    # worker side

    def _on_drop(self, name: str, count: int) -> None:
        # the queue drops only while stopping: what was queued and not sent
        if self.wal is not None:
            self.kept += count
        else:
            self._counts.dropped(self.name, "shutdown", count)

    def _send(self, batch: Sequence[Item]) -> bool:
        done = self._progress if self._pending is batch else 0
        for payload, spans in encode_requests(batch[done:], self._request_bytes):
            result = self._send_request(payload, spans)
            if result.retry:
                self._pending, self._progress = batch, done
                self._retry_later(result, spans)
                return False
            self._grow_requests()
            if result.rejected:
                self._counts.dropped(self.name, "rejected", result.rejected)
                self._log_error(
                    f"the backend refused {result.rejected} span(s): {result.error}",
                    spans,
                    level=logging.ERROR,
                )
            if spans > result.rejected:
                self._counts.forwarded(self.name, spans - result.rejected)
            done += spans
        self._pending, self._progress = None, 0
        self._release(len(batch), items_size(batch))
        if self.wal is not None:
            self.wal.delivered(len(batch))
        return True

    def _send_request(self, payload: bytes, spans: int) -> SendResult:
        if self.translate is None:
            return self._forward(payload, spans)
        result = self._forward(self._translate(payload), spans)
        if not result.retry:
            self._translated = None
        return result

    def _forward(self, payload: bytes, spans: int) -> SendResult:
        try:
            return self.forwarder.send(payload, spans)
        except Exception as exc:  # a forwarder bug must not kill the worker
            _log.debug("forwarding to %s failed", self.name, exc_info=True)
            return SendResult(retry=True, error=f"{type(exc).__name__}: {exc}")

    def _translate(self, payload: bytes) -> bytes:
        last = self._translated
        if last is not None and last[0] == payload:
            return last[1]
        out = self.translate(payload)  # type: ignore[misc]
        self._translated = (payload, out)
        return out

    def _retry_later(self, result: SendResult, spans: int) -> None:
        self._counts.send_failed(self.name)
        if result.timed_out:  # the backend may have taken them: sent again, so counted
            self._counts.resent(self.name, "timeout", spans)
            self._shrink_requests()
        self._log_error(f"retrying: {result.error}", spans)
        if result.retry_after_s and not self._closing.is_set():
            self._closing.wait(min(result.retry_after_s, MAX_RETRY_WAIT_S))

    def _shrink_requests(self) -> None:
        """After a timeout: half as much per request, and (up to 4x the configured
        timeout) more time for each."""
        self._request_bytes = max(MIN_REQUEST_BYTES, self._request_bytes // 2)
        self._successes = 0
        base = self._base_timeout_s
        if base is not None:
            current = getattr(self.forwarder, "timeout_s", base)
            self.forwarder.timeout_s = min(base * 4, current * 1.5)  # type: ignore[attr-defined]

    def _grow_requests(self) -> None:
        if self._request_bytes >= self.max_request_bytes:
            return
        self._successes += 1
        if self._successes >= 8:
            self._successes = 0
            self._request_bytes = min(self.max_request_bytes, self._request_bytes * 2)
            if self._request_bytes == self.max_request_bytes and self._base_timeout_s:
                self.forwarder.timeout_s = self._base_timeout_s  # type: ignore[attr-defined]

    def _log_error(self, message: str, spans: int, level: int = logging.WARNING) -> None:
        self._errors_since_log += 1
        now = time.monotonic()
        if now - self._last_error_log < 10.0:
            return
        _log.log(
            level,
            "forwarding to %s (%s): %s",
            self.name,
            self.description,
            message,
            extra={
                "fields": {
                    "destination": self.name,
                    "spans": spans,
                    "errors_since_last_log": self._errors_since_log,
                }
            },
        )
        self._last_error_log = now
        self._errors_since_log = 0

    # lifecycle

    def flush(self, timeout_s: float) -> bool:
        return self.queue.flush(timeout_s)

    def close(self, timeout_s: float) -> None:
        """Send what is queued within ``timeout_s``; the rest is dropped and counted, or,
        with a durable queue, kept on disk for the next start."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        self.queue.flush(max(timeout_s, 0.0))
        self._closing.set()
        self.queue.close(max(0.05, min(1.0, deadline - time.monotonic())))
        with self._held_lock:
            self._held = self._held_bytes = 0
        if self.wal is not None:
            self.wal.close()
            if self.kept:
                _log.info(
                    "%s: %d span(s) not yet sent stay in %s, sent after the next start",
                    self.name,
                    self.kept,
                    self.wal.directory,
                    extra={"fields": {"destination": self.name, "spans": self.kept}},
                )
        try:
            self.forwarder.close()
        except Exception:
            _log.debug("closing the forwarder of %s failed", self.name, exc_info=True)
