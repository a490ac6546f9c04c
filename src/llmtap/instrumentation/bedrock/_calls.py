"""The four model operations of the ``bedrock-runtime`` client as core adapters.

``begin`` gets ``(operation_name, api_params)``, the arguments of botocore's
``_make_api_call``; ``complete`` the response dict; ``stream`` an accumulator for the
response's event stream (``stream`` of ConverseStream, ``body`` of
InvokeModelWithResponseStream), which ``_hook`` wraps.
"""

from __future__ import annotations

import contextlib
import io
import json
import weakref
from typing import Any
from urllib.parse import urlsplit

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation._invocation import Invocation, log_once
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.bedrock import _converse as converse
from llmtap.instrumentation.bedrock._outcome import (
    GUARDRAIL_ID,
    PROVIDER,
    Outcome,
    http_headers,
    request_id,
)
from llmtap.instrumentation.bedrock._vendors import Embeddings, Vendor, vendor_for

_servers: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def server_attributes(client: Any) -> dict[str, Any]:
    """``server.address`` / ``server.port`` of the client's endpoint (cached per client)."""
    try:
        return _servers[client]
    except (KeyError, TypeError):
        pass
    url = urlsplit(str(getattr(getattr(client, "meta", None), "endpoint_url", "") or ""))
    attrs: dict[str, Any] = {}
    if url.hostname:
        attrs[semconv.SERVER_ADDRESS] = url.hostname
        attrs[semconv.SERVER_PORT] = url.port or (443 if url.scheme == "https" else 80)
    with contextlib.suppress(TypeError):
        _servers[client] = attrs
    return attrs


def _invocation(operation: str, client: Any, params: dict[str, Any], streaming: bool):
    model = params.get("modelId")
    inv = Invocation(operation, PROVIDER, model if isinstance(model, str) else None)
    inv.attributes.update(server_attributes(client))
    if streaming:
        inv.attributes[semconv.REQUEST_STREAM] = True
    return inv


class _Accumulator:
    """Reads each event of a stream into an ``Outcome``."""

    __slots__ = ("capture", "outcome", "read")

    def __init__(self, read: Any, capture: bool, response: Any) -> None:
        self.read = read
        self.capture = capture
        self.outcome = Outcome()
        self.outcome.response_id = request_id(response)

    def add(self, event: Any) -> bool:
        self.read(event, self.outcome)
        return True

    def finish(self, inv: Invocation) -> None:
        self.outcome.finish(inv, self.capture)


class ConverseAdapter:
    """``converse`` and ``converse_stream``."""

    stream_key = "stream"

    def __init__(self, settings: Settings, *, streaming: bool = False) -> None:
        self.settings = settings
        self.streaming = streaming

    def begin(self, client: Any, args: tuple, kwargs: dict[str, Any]) -> Call | None:
        params = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        inv = _invocation(semconv.OP_CHAT, client, params, self.streaming)
        converse.request(params, inv, self.settings.capture.any)
        return Call(inv, args, kwargs)

    def complete(self, call: Call, result: Any) -> Any:
        outcome = Outcome()
        outcome.response_id = request_id(result)
        if isinstance(result, dict):
            converse.read_message(result, outcome)
        outcome.finish(call.inv, self.settings.capture.any)
        return result

    def stream(self, call: Call, result: Any) -> _Accumulator | None:
        if not self.streaming:
            return None
        return _Accumulator(converse.read_event, self.settings.capture.any, result)


def _body_of(params: dict[str, Any]) -> dict[str, Any] | None:
    """The request body as JSON, without consuming a file-like body (seekable ones are read
    and rewound; others are left alone)."""
    raw = params.get("body")
    if hasattr(raw, "read"):
        try:
            position = raw.tell()
            data = raw.read()
            raw.seek(position)
        except Exception:
            return None
        raw = data
    if isinstance(raw, bytes | bytearray | str):
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
    return None


def _chunk_reader(vendor: Vendor) -> Any:
    def read(event: Any, into: Outcome) -> None:
        chunk = event.get("chunk") if isinstance(event, dict) else None
        data = chunk.get("bytes") if isinstance(chunk, dict) else None
        if not isinstance(data, bytes | bytearray | str):
            return
        payload = json.loads(data)
        if not isinstance(payload, dict):
            return
        vendor.chunk(payload, into)
        metrics = payload.get("amazon-bedrock-invocationMetrics")
        if isinstance(metrics, dict):
            into.count("input", metrics.get("inputTokenCount"), keep=True)
            into.count("output", metrics.get("outputTokenCount"), keep=True)

    return read


class BodyReadFailed(Exception):
    """The response body could not be read: the call fails as the app's own read will."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _FailedBody:
    """The raw stream of a body whose read failed inside llmtap: the app's read fails too."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def read(self, *args: Any) -> bytes:
        raise self.error

    def close(self) -> None:
        pass


def rewrap_body(result: dict[str, Any]) -> bytes:
    """Read the response's ``StreamingBody`` and put an equal one, over those bytes, in its
    place, so the application still reads the whole body. A failed read raises here (for
    the span) and again when the application reads."""
    from botocore.response import StreamingBody

    body = result.get("body")
    try:
        data = body.read()
    except Exception as exc:
        result["body"] = StreamingBody(_FailedBody(exc), None)
        raise BodyReadFailed(exc) from exc
    result["body"] = StreamingBody(io.BytesIO(data), len(data))
    return data


class InvokeAdapter:
    """``invoke_model`` and ``invoke_model_with_response_stream``, through the vendor's
    translator."""

    stream_key = "body"

    def __init__(self, settings: Settings, *, streaming: bool = False) -> None:
        self.settings = settings
        self.streaming = streaming

    def begin(self, client: Any, args: tuple, kwargs: dict[str, Any]) -> Call | None:
        params = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        body = _body_of(params)
        vendor = vendor_for(params.get("modelId"), body)
        operation = vendor.operation_for(body or {})
        inv = _invocation(operation, client, params, self.streaming)
        guard = params.get("guardrailIdentifier")
        if isinstance(guard, str) and guard:
            inv.attributes[GUARDRAIL_ID] = guard
        if body is not None:
            vendor.request(body, inv, self.settings.capture.any)
        return Call(inv, args, kwargs, vendor)

    def complete(self, call: Call, result: Any) -> Any:
        if not isinstance(result, dict) or not hasattr(result.get("body"), "read"):
            return result
        data = rewrap_body(result)
        vendor: Vendor = call.options
        inv = call.inv
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        headers = http_headers(result)
        if isinstance(vendor, Embeddings):
            if isinstance(body, dict):
                vendor.embedded(body, inv)
            count = _header_count(headers, "x-amzn-bedrock-input-token-count")
            if count is not None:
                inv.attributes.setdefault(semconv.USAGE_INPUT_TOKENS, count)
            inv.attributes.setdefault(semconv.RESPONSE_ID, request_id(result))
            return result
        outcome = Outcome()
        outcome.response_id = request_id(result)
        if isinstance(body, dict):
            try:
                vendor.response(body, outcome)
            except Exception as exc:
                log_once(f"bedrock {vendor.name} response", exc)
        outcome.count(
            "input", _header_count(headers, "x-amzn-bedrock-input-token-count"), keep=True
        )
        outcome.count(
            "output", _header_count(headers, "x-amzn-bedrock-output-token-count"), keep=True
        )
        outcome.finish(inv, self.settings.capture.any)
        return result

    def stream(self, call: Call, result: Any) -> _Accumulator | None:
        if not self.streaming:
            return None
        return _Accumulator(_chunk_reader(call.options), self.settings.capture.any, result)


def _header_count(headers: dict[str, Any], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, TypeError, ValueError):
        return None
