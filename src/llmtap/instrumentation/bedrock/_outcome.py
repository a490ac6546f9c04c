"""What a Bedrock reply carried, whichever API or vendor format it came in, and how it lands
in the invocation: response fields, finish reason, usage, output message."""

from __future__ import annotations

import json
from typing import Any

from llmtap import semconv
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation

PROVIDER = "aws.bedrock"
GUARDRAIL_ID = "aws.bedrock.guardrail.id"  # semconv registry: aws.bedrock.*

# Stop reasons of the Converse API and of each vendor's body, beyond the shared table.
_FINISH = {
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
    "FINISH": "stop",
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "USER_CANCEL": "stop",
    "LENGTH": "length",
    "MAX_TOKENS": "length",
    "CONTENT_FILTERED": "content_filter",
    "ERROR_TOXIC": "content_filter",
    "ERROR_LIMIT": "length",
    "ERROR": "error",
    "TOOL_CALL": "tool_call",
}


def finish_reason(raw: str | None) -> str:
    if raw and raw in _FINISH:
        return _FINISH[raw]
    return parts.finish_reason(raw)


def number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Block:
    """One output block: text, reasoning, or a tool call (arguments whole or in pieces)."""

    __slots__ = ("arguments", "call_id", "kind", "name", "pieces")

    def __init__(self, kind: str, call_id: Any = None, name: Any = None) -> None:
        self.kind = kind
        self.call_id = call_id
        self.name = name
        self.pieces: list[str] = []
        self.arguments: Any = None

    def part(self) -> dict[str, Any]:
        joined = "".join(self.pieces)
        if self.kind == "tool_call":
            arguments = self.arguments
            if arguments is None and joined.strip():
                try:
                    arguments = json.loads(joined)
                except ValueError:
                    arguments = joined
            return parts.tool_call(self.call_id, self.name, arguments)
        if self.kind == "reasoning":
            return {"type": "reasoning", "content": joined}
        return parts.text(joined)


class Outcome:
    """A reply's fields, filled from a whole response or stream event by event.

    ``usage`` keys: ``input`` (fresh input, as Bedrock counts it: cached tokens excluded),
    ``cache_read``, ``cache_write``, ``output``.
    """

    __slots__ = ("blocks", "response_id", "response_model", "stop", "usage")

    def __init__(self) -> None:
        self.blocks: dict[int, Block] = {}
        self.stop: str | None = None
        self.usage: dict[str, int] = {}
        self.response_id: str | None = None
        self.response_model: str | None = None

    def block(self, index: Any, kind: str) -> Block:
        key = index if isinstance(index, int) else len(self.blocks)
        found = self.blocks.get(key)
        if found is None:
            found = self.blocks[key] = Block(kind)
        return found

    def add_text(self, index: Any, text: Any, kind: str = "text") -> None:
        if isinstance(text, str) and text:
            self.block(index, kind).pieces.append(text)

    def add_tool(self, index: Any, call_id: Any, name: Any, arguments: Any = None) -> None:
        block = self.block(index, "tool_call")
        block.kind, block.call_id, block.name = "tool_call", call_id, name
        if arguments is not None:
            block.arguments = arguments

    def count(self, key: str, value: Any, *, keep: bool = False) -> None:
        """Record a token count; ``keep``: only when none was recorded (a fallback source)."""
        value = number(value)
        if value is not None and not (keep and key in self.usage):
            self.usage[key] = value

    def finish(self, inv: Invocation, capture: bool) -> None:
        attrs = inv.attributes
        if self.response_id:
            attrs[semconv.RESPONSE_ID] = self.response_id
        if self.response_model:
            attrs[semconv.RESPONSE_MODEL] = self.response_model
        if self.stop:
            attrs[semconv.RESPONSE_FINISH_REASONS] = [self.stop]
        attrs.update(usage_attributes(self.usage))
        if capture and (self.blocks or self.stop):
            body = [self.blocks[i].part() for i in sorted(self.blocks)]
            message = parts.message("assistant", body)
            message["finish_reason"] = finish_reason(self.stop)
            if not self.stop and attrs.get(semconv.LLMTAP_STREAM_END) == "error":
                message["finish_reason"] = "error"
            inv.output_messages = [message]


def usage_attributes(usage: dict[str, int]) -> dict[str, int]:
    """Semconv usage: input tokens include the cached ones (Bedrock reports them apart)."""
    out: dict[str, int] = {}
    fresh, read, written = usage.get("input"), usage.get("cache_read"), usage.get("cache_write")
    if fresh is not None or read is not None or written is not None:
        out[semconv.USAGE_INPUT_TOKENS] = (fresh or 0) + (read or 0) + (written or 0)
    if "output" in usage:
        out[semconv.USAGE_OUTPUT_TOKENS] = usage["output"]
    if read is not None:
        out[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = read
    if written is not None:
        out[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS] = written
    return out


def request_id(response: Any) -> str | None:
    """The AWS request id of a botocore response dict."""
    meta = response.get("ResponseMetadata") if isinstance(response, dict) else None
    rid = meta.get("RequestId") if isinstance(meta, dict) else None
    return rid if isinstance(rid, str) and rid else None


def http_headers(response: Any) -> dict[str, Any]:
    meta = response.get("ResponseMetadata") if isinstance(response, dict) else None
    headers = meta.get("HTTPHeaders") if isinstance(meta, dict) else None
    return headers if isinstance(headers, dict) else {}
