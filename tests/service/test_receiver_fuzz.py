"""Fuzzing both OTLP receivers (gRPC ``Export``; HTTP ``POST /v1/traces`` with protobuf and
JSON bodies) with mutated valid requests, OTLP-shaped JSON and broken framing: every answer
is a documented one, and afterwards the service still serves, its threads are back near
where they were, its memory has not run away, and every span it took was forwarded.

Bounded and reproducible: fixed example counts, derandomized, no example database
(Hypothesis prints the failing example and how to reproduce it).
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmtap.export.otlp_json import otlp_json
from llmtap.service.app import ServiceApp
from support.nested_otlp import json_request, json_value, wire_request, wire_value
from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    EMAIL,
    EXPORT,
    grpc_export,
    grpc_target,
    ids,
    running_service,
    simple_spans,
    span_request,
    wait_until,
)

TOKEN = "fuzz-token"
LIMIT = 64 * 1024
WORKERS = 4
HTTP_STATUSES = {200, 400, 401, 413, 415, 503}
GRPC_CODES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNAVAILABLE,
}
FUZZ = settings(
    max_examples=300,
    deadline=5000,  # ms; any answer takes milliseconds, a hang takes the socket timeout
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seed_request() -> ExportTraceServiceRequest:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.input.messages": json.dumps([{"role": "user", "content": f"I am {EMAIL}"}]),
        "nested": [1, "two", {"k": [True, 2.5, b"\x00\xff"]}],
    }
    request = span_request(simple_spans(2, seed=3, **attributes))
    (first_trace, first_span), *_ = ids(1, seed=3)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.parent_span_id = first_span[::-1]
    event = span.events.add(name="gen_ai.choice", time_unix_nano=5)
    event.attributes.add(key="note", value={"string_value": f"to {EMAIL}"})
    span.links.add(trace_id=first_trace, span_id=first_span[::-1])
    span.status.code = 2
    span.status.message = f"quota for {EMAIL}"
    return request


SEED = _seed_request()
SEED_BYTES = SEED.SerializeToString()
SEED_JSON = otlp_json(SEED)
VALID = span_request(simple_spans(1, seed=99)).SerializeToString()


# strategies ---------------------------------------------------------------------------------


@st.composite
def mutated(draw: Any, seed: bytes) -> bytes:
    """``seed`` after a few byte-level edits: overwrites, inserts, cuts, copies, runs of
    0xff (over-long varints and lengths)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate", "copy", "ff"]))
        at = draw(st.integers(0, len(data)))
        if op == "set" and data:
            data[at % len(data)] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 32))]
        elif op == "truncate":
            del data[at:]
        elif op == "copy":
            data[at:at] = data[at : at + draw(st.integers(1, 256))]
        elif op == "ff":
            data[at:at] = b"\xff" * draw(st.integers(1, 11))
    return bytes(data)


_KEYS = [
    *("resourceSpans", "resource", "attributes", "scopeSpans", "scope", "name", "version"),
    *("spans", "traceId", "spanId", "parentSpanId", "kind", "startTimeUnixNano"),
    *("endTimeUnixNano", "status", "code", "message", "events", "timeUnixNano", "links"),
    *("key", "value", "stringValue", "intValue", "doubleValue", "boolValue", "bytesValue"),
    *("arrayValue", "kvlistValue", "values", "flags", "traceState", "schemaUrl", "x"),
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=24)
    | st.sampled_from(["0" * 32, "ab" * 16, "ab" * 8, "q83v", "STATUS_CODE_ERROR", "-1", "1e30"])
)
_JSON_LIKE = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5)
    ),
    max_leaves=40,
)


@st.composite
def grafted(draw: Any) -> str:
    """The seed's OTLP/JSON with one value somewhere in it replaced by random JSON."""
    doc = json.loads(SEED_JSON)
    node: Any = doc
    for _ in range(draw(st.integers(0, 12))):
        children = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not children:
            break
        key = draw(st.sampled_from(children))
        if not isinstance(node[key], (dict, list)) or draw(st.integers(0, 3)) == 0:
            node[key] = draw(_JSON_LIKE)
            break
        node = node[key]
    return json.dumps(doc)


_DEPTHS = st.integers(1, 3000)
_NESTING = st.sampled_from(["array", "kvlist"])
PROTOBUF_BODIES = (
    mutated(SEED_BYTES)
    | st.binary(max_size=256)
    | st.just(SEED_BYTES)
    | st.builds(lambda depth, kind: wire_request(wire_value(depth, kind)), _DEPTHS, _NESTING)
)
JSON_BODIES = (
    grafted().map(str.encode)
    | _JSON_LIKE.map(lambda doc: json.dumps(doc).encode())
    | mutated(SEED_JSON.encode())
    | st.just(SEED_JSON.encode())
    | st.builds(lambda depth, kind: json_request(json_value(depth, kind)), _DEPTHS, _NESTING)
    | st.integers(1, 100_000).map(lambda depth: b"[" * depth)
)


@st.composite
def http_requests(draw: Any, bodies: Any, content_type: str) -> tuple[bytes, bool]:
    """A raw HTTP request around a drawn body, with drawn headers; and whether it is over
    the size limit (answered 413 and closed unread, so the answer may be lost to a reset)."""
    body = draw(bodies)
    encoding = draw(st.sampled_from([None, None, "gzip", "deflate", "identity", "br", "gzip, x"]))
    if encoding in ("gzip", "deflate"):
        packed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
        body = draw(
            st.sampled_from(
                [packed, packed[: len(packed) // 2], packed + b"trailing", body, b"\x1f\x8b\x08"]
            )
        )
    oversized = draw(st.integers(0, 20)) == 0  # over the size limit, on the wire or inflated
    if oversized:
        big = b"\x0a" + b"\xff" * LIMIT
        body = gzip.compress(big) if encoding == "gzip" else big
    kind = draw(
        st.sampled_from(
            [content_type] * 6
            + [f"{content_type}; charset=utf-8", content_type.upper(), "text/plain", ""]
        )
    )
    auth = draw(
        st.sampled_from([f"Bearer {TOKEN}"] * 16 + [None, "Bearer wrong", f"Basic {TOKEN}"])
    )
    framing = draw(
        st.sampled_from(
            ["length"] * 6
            + ["chunked", "bad chunk", "no length", "longer", "shorter", "not a number", "huge"]
        )
    )
    headers = [b"POST /v1/traces HTTP/1.1", b"Host: fuzz"]
    if kind:
        headers.append(b"Content-Type: " + kind.encode())
    if encoding:
        headers.append(b"Content-Encoding: " + encoding.encode())
    if auth:
        headers.append(b"Authorization: " + auth.encode())
    lengths = {
        "length": len(body),
        "longer": len(body) + draw(st.integers(1, 64)),
        "shorter": max(0, len(body) - draw(st.integers(1, 64))),
        "huge": LIMIT * 100,
    }
    if framing in lengths:
        headers.append(b"Content-Length: %d" % lengths[framing])
    elif framing == "not a number":
        bad = draw(st.sampled_from([b"-1", b"1_0", b"+5", b"x", b"9" * 5000]))
        headers.append(b"Content-Length: " + bad)
    elif framing in ("chunked", "bad chunk"):
        headers.append(b"Transfer-Encoding: chunked")
        cut = draw(st.integers(1, max(1, len(body))))
        head, tail = body[:cut], body[cut:]
        size = b"%x" % len(head)
        if framing == "bad chunk":
            size = draw(st.sampled_from([b"-5", b"zz", b"%x" % (len(head) + 9), b"", b"1_0"]))
        body = size + b"\r\n" + head + b"\r\n"
        if tail:
            body += b"%x\r\n" % len(tail) + tail + b"\r\n"
        body += b"0\r\n\r\n"
    return b"\r\n".join(headers) + b"\r\n\r\n" + body, oversized or framing == "huge"


# the running service ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceApp]:
    with (
        OtlpReceiver() as backend,
        running_service(
            tmp_path_factory.mktemp("fuzz"),
            [grpc_export(backend)],
            auth_token=TOKEN,
            max_message_bytes=LIMIT,
            workers=WORKERS,
            http_header_timeout_s=2.0,
            http_body_timeout_s=2.0,
            http_idle_timeout_s=2.0,
        ) as app,
    ):
        app.on_spans(lambda spans: None)  # every span is decoded for the hooks too
        yield app
        # every span taken was forwarded, none dropped
        wait_until(
            lambda: app.counters()["forwarded"] == {"otlp#0": app.counters()["accepted"]},
            10,
            "every accepted span forwarded",
        )
        assert app.counters()["dropped"] == {"otlp#0": 0}


def _http_answer(app: ServiceApp, raw: bytes) -> int | None:
    """The status the HTTP receiver answers ``raw`` with (None: the connection closed)."""
    assert app.http is not None
    with socket.create_connection(("127.0.0.1", app.http.port), timeout=4) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)  # a body shorter than announced ends here
        except OSError:
            pass  # answered and closed before all was sent: read the answer
        try:
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            return response.status
        except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
            return None


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def _survived(app: ServiceApp, threads_before: int, rss_before: float) -> None:
    raw = (
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
        % (TOKEN.encode(), len(VALID), VALID)
    )
    assert _http_answer(app, raw) == 200
    with grpc.insecure_channel(grpc_target(app)) as channel:
        channel.unary_unary(EXPORT)(
            VALID, timeout=5, metadata=[("authorization", f"Bearer {TOKEN}")]
        )
    wait_until(
        lambda: threading.active_count() <= threads_before + WORKERS,
        5,
        f"threads back near {threads_before} (now {threading.active_count()})",
    )
    assert _rss_mb() - rss_before < 150


# the fuzz tests -------------------------------------------------------------------------------


@FUZZ
@given(request=http_requests(PROTOBUF_BODIES, "application/x-protobuf"))
def _fuzz_http_protobuf(app: ServiceApp, seen: Counter[Any], request: tuple[bytes, bool]) -> None:
    raw, oversized = request
    status = _http_answer(app, raw)
    seen[status] += 1
    assert status in HTTP_STATUSES or (status is None and oversized), status


@FUZZ
@given(request=http_requests(JSON_BODIES, "application/json"))
def _fuzz_http_json(app: ServiceApp, seen: Counter[Any], request: tuple[bytes, bool]) -> None:
    raw, oversized = request
    status = _http_answer(app, raw)
    seen[status] += 1
    assert status in HTTP_STATUSES or (status is None and oversized), status


@FUZZ
@given(
    body=PROTOBUF_BODIES | st.just(b"\x0a" + b"\xff" * LIMIT),
    auth=st.sampled_from([f"Bearer {TOKEN}"] * 16 + [None, "Bearer wrong", TOKEN]),
)
def _fuzz_grpc(channel: grpc.Channel, seen: Counter[Any], body: bytes, auth: str | None) -> None:
    metadata = [("authorization", auth)] if auth else None
    try:
        channel.unary_unary(EXPORT)(body, timeout=5, metadata=metadata)
        code = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code = exc.code()
    seen[code] += 1
    assert code in GRPC_CODES, code


@pytest.mark.parametrize("fuzz", [_fuzz_http_protobuf, _fuzz_http_json], ids=["protobuf", "json"])
def test_http_receiver_fuzzed(service: ServiceApp, fuzz: Any) -> None:
    threads, rss, seen = threading.active_count(), _rss_mb(), Counter[Any]()
    started = time.perf_counter()
    fuzz(service, seen)
    print(f"{sum(seen.values())} examples in {time.perf_counter() - started:.1f} s: {seen}")
    assert {200, 400, 401, 413, 415} <= set(seen)  # every path reached
    _survived(service, threads, rss)


def test_grpc_receiver_fuzzed(service: ServiceApp) -> None:
    threads, rss, seen = threading.active_count(), _rss_mb(), Counter[Any]()
    started = time.perf_counter()
    with grpc.insecure_channel(grpc_target(service)) as channel:
        _fuzz_grpc(channel, seen)
    print(f"{sum(seen.values())} examples in {time.perf_counter() - started:.1f} s: {seen}")
    codes = grpc.StatusCode
    assert {codes.OK, codes.INVALID_ARGUMENT, codes.RESOURCE_EXHAUSTED} <= set(seen)
    assert codes.UNAUTHENTICATED in seen
    _survived(service, threads, rss)


def test_broken_requests_leak_no_memory(service: ServiceApp) -> None:
    """The same broken requests, over and over: what they leave behind stops growing."""
    corpus = [
        SEED_BYTES[: len(SEED_BYTES) // 2],
        b"\x0a\xff\xff\xff\xff\x0f",
        b"[" * 5000,
        SEED_JSON.encode()[:-3],
        gzip.compress(SEED_BYTES)[:20],
    ]
    raws = [
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n%sAuthorization: Bearer %s"
        b"\r\nContent-Length: %d\r\n\r\n%s" % (kind, encoding, TOKEN.encode(), len(body), body)
        for body in corpus
        for kind in (b"application/x-protobuf", b"application/json")
        for encoding in (b"", b"Content-Encoding: gzip\r\n")
    ]

    def round_() -> None:
        with grpc.insecure_channel(grpc_target(service)) as channel:
            call = channel.unary_unary(EXPORT)
            for body in corpus:
                with pytest.raises(grpc.RpcError):
                    call(body, timeout=5, metadata=[("authorization", f"Bearer {TOKEN}")])
        for raw in raws:
            assert _http_answer(service, raw) == 400

    round_()  # warm: caches, metric series, first-use allocations
    tracemalloc.start()
    try:
        round_()
        time.sleep(0.2)  # handler threads finish
        after_one = tracemalloc.get_traced_memory()[0]
        for _ in range(4):
            round_()
        time.sleep(0.2)
        after_five = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after_five - after_one < 256 * 1024, after_five - after_one


def test_the_seed_is_a_valid_request(service: ServiceApp) -> None:
    """The fuzzers start from a request the service takes whole."""
    with grpc.insecure_channel(grpc_target(service)) as channel:
        raw = channel.unary_unary(EXPORT)(
            SEED_BYTES, timeout=5, metadata=[("authorization", f"Bearer {TOKEN}")]
        )
    assert raw == b""  # no partial success: every span taken
