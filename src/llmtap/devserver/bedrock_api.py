"""The Amazon Bedrock runtime as the devserver speaks it (REST, as botocore calls it).

``POST /model/{modelId}/converse`` and ``/converse-stream`` (the Converse API), and
``/model/{modelId}/invoke`` and ``/invoke-with-response-stream`` (each vendor's own body
format, chosen by the model id: Anthropic, Amazon Nova, Titan text and embeddings, Meta
Llama, Mistral, Cohere command and embed; a model id that names no vendor, such as a
provisioned-model ARN, is matched by the shape of the body). The model id is URL-encoded in
the path and may be an inference-profile or provisioned-model ARN.

Streams use AWS event-stream binary framing (``application/vnd.amazon.eventstream``: a
prelude with lengths and a CRC32, typed headers ``:event-type``, ``:content-type``,
``:message-type``, the JSON payload, a message CRC32); invoke streams carry ``chunk``
events whose ``bytes`` are the base64 of the vendor's chunk JSON. Errors are AWS's JSON
shape (``{"message": ...}``) with the code in ``x-amzn-errortype``; ``stream_error``
sends a ``modelStreamErrorException`` event mid-stream.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from . import content as c
from .protocol import WireProtocol
from .reply import Reply, dumps, json_reply
from .scenarios import Context

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"

_ROUTE = re.compile(
    r"^/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$"
)


# event-stream framing -------------------------------------------------------------------


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack("!B", len(raw_name)) + raw_name + b"\x07" + struct.pack("!H", len(raw_value))
    ) + raw_value


@dataclass(frozen=True)
class Frame:
    """One event-stream message (stands where the SSE protocols put an ``SSEEvent``)."""

    headers: tuple[tuple[str, str], ...]
    payload: bytes

    @classmethod
    def event(cls, event_type: str, payload: dict[str, Any]) -> Frame:
        headers = (
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        )
        return cls(headers, dumps(payload).encode())

    @classmethod
    def exception(cls, exception_type: str, message: str) -> Frame:
        headers = (
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        )
        return cls(headers, dumps({"message": message}).encode())

    def encode(self) -> bytes:
        headers = b"".join(_header(name, value) for name, value in self.headers)
        total = 12 + len(headers) + len(self.payload) + 4
        prelude = struct.pack("!II", total, len(headers))
        prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
        message = prelude + headers + self.payload
        return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def decode_frames(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """(headers, payload) of each message in ``data`` (for tests; CRCs are checked)."""
    out = []
    while data:
        total, header_len, prelude_crc = struct.unpack("!III", data[:12])
        if binascii.crc32(data[:8]) & 0xFFFFFFFF != prelude_crc:
            raise ValueError("prelude CRC mismatch")
        message = data[:total]
        if binascii.crc32(message[:-4]) & 0xFFFFFFFF != struct.unpack("!I", message[-4:])[0]:
            raise ValueError("message CRC mismatch")
        raw, headers = message[12 : 12 + header_len], {}
        while raw:
            name_len = raw[0]
            name = raw[1 : 1 + name_len].decode()
            value_len = struct.unpack("!H", raw[2 + name_len : 4 + name_len])[0]
            headers[name] = raw[4 + name_len : 4 + name_len + value_len].decode()
            raw = raw[4 + name_len + value_len :]
        out.append((headers, message[12 + header_len : -4]))
        data = data[total:]
    return out


def _stream(frames: list[Frame]) -> Reply:
    return Reply(status=200, headers={"content-type": EVENTSTREAM_CONTENT_TYPE}, events=frames)


# errors -------------------------------------------------------------------------------

_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (
        429,
        "ThrottlingException",
        "Too many requests, please wait before trying again.",
    ),
    "flaky": (429, "ThrottlingException", "Too many requests (flaky scenario)."),
    "server_error": (500, "InternalServerException", "The server encountered an internal error."),
    "bad_request": (
        400,
        "ValidationException",
        "Malformed input request: rejected by the devserver.",
    ),
    "auth": (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    "permission": (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    "not_found": (
        404,
        "ResourceNotFoundException",
        "Could not resolve the foundation model from the provided model identifier: {model}",
    ),
    "overloaded": (503, "ServiceUnavailableException", "The service is temporarily unavailable."),
}


def aws_error(status: int, code: str, message: str, ctx: Context) -> Reply:
    reply = json_reply({"message": message}, status)
    reply.headers["x-amzn-errortype"] = (
        f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    )
    reply.headers["x-amzn-requestid"] = ctx.request_id
    return reply


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    status, code, message = _ERRORS[kind]
    reply = aws_error(status, code, message.format(model=model), ctx)
    if kind == "rate_limit":
        reply.headers["retry-after"] = "1"
    return reply


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    if status == 404:
        return aws_error(404, "UnknownOperationException", message, ctx)
    return aws_error(status, "ValidationException", message, ctx)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {"x-amzn-requestid": request_id}


# what to answer, vendor-neutral -------------------------------------------------------


@dataclass
class Plan:
    pieces: list[str]
    stop: str  # "end", "length", "tool"
    input_tokens: int
    tool: dict[str, Any] | None = None  # {"id", "name", "input"}
    cache_read: int = 0
    cache_write: int = 0
    cached: bool = False  # the request marked a cache point

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        tool = c.count_tokens(dumps(self.tool["input"])) + 8 if self.tool else 0
        return len(self.pieces) + tool


@dataclass
class Ask:
    """What a request asks, read from any vendor's body."""

    prompt: str = ""
    last_role: str = "user"
    tool_result: str | None = None
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, schema)
    max_tokens: Any = None
    tokens: int = 0
    cached_prefix: int = 0
    cached: bool = False


def plan(ask: Ask, body: dict[str, Any], ctx: Context) -> Plan:
    written = ask.cached_prefix if ctx.is_("cache_write") else 0
    base = {
        "input_tokens": ask.tokens - ask.cached_prefix,
        "cache_read": ask.cached_prefix - written,
        "cache_write": written,
        "cached": ask.cached,
    }
    if ask.tool_result is not None:
        return Plan(c.split_pieces(c.tool_result_answer(ask.tool_result)), "end", **base)
    if ask.tools and ask.last_role == "user":
        name, schema = ask.tools[0]
        arguments = c.fill_schema(schema or {"type": "object"}, c.topic_word(ask.prompt))
        tool = {"id": c.stable_id("tooluse_", body, length=22), "name": name}
        tool["input"] = arguments if isinstance(arguments, dict) else {}
        return Plan(c.split_pieces(f"I'll use the {name} tool."), "tool", tool=tool, **base)
    pieces, cut = c.truncate(c.split_pieces(c.answer_text(ask.prompt)), ask.max_tokens)
    return Plan(pieces, "length" if cut else "end", **base)


# the Converse API ---------------------------------------------------------------------

_CONVERSE_STOPS = {"end": "end_turn", "length": "max_tokens", "tool": "tool_use"}


def _converse_ask(body: dict[str, Any], max_tokens: Any) -> Ask:
    ask = Ask(max_tokens=max_tokens)
    segments: list[tuple[int, bool]] = []
    for block in body.get("system") or []:
        if isinstance(block, dict):
            segments.append((c.count_tokens(str(block.get("text") or "")), "cachePoint" in block))
    tool_config = body.get("toolConfig") if isinstance(body.get("toolConfig"), dict) else {}
    for tool in tool_config.get("tools") or []:
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict):
            schema = (spec.get("inputSchema") or {}).get("json")
            ask.tools.append((str(spec.get("name")), schema if isinstance(schema, dict) else {}))
            segments.append((c.count_tokens(dumps(spec)), False))
        elif isinstance(tool, dict) and "cachePoint" in tool:
            segments.append((0, True))
    if (tool_config.get("toolChoice") or {}).get("none") is not None:
        ask.tools = []
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    for message in messages:
        segments.append((3, False))
        for block in message.get("content") or []:
            if isinstance(block, dict):
                segments.append((c.count_tokens(c.text_of(block)), "cachePoint" in block))
    if messages:
        last = messages[-1]
        ask.last_role = str(last.get("role") or "user")
        blocks = [b for b in last.get("content") or [] if isinstance(b, dict)]
        results = [b["toolResult"] for b in blocks if isinstance(b.get("toolResult"), dict)]
        if results:
            ask.tool_result = c.text_of(results[-1].get("content"))
        ask.prompt = " ".join(str(b["text"]) for b in blocks if isinstance(b.get("text"), str))
    _count(ask, segments)
    return ask


def _count(ask: Ask, segments: list[tuple[int, bool]]) -> None:
    running = 0
    for tokens, cache_point in segments:
        running += tokens
        if cache_point:
            ask.cached_prefix, ask.cached = running, True
    ask.tokens = max(1, running)


def _converse_usage(p: Plan) -> dict[str, Any]:
    usage = {
        "inputTokens": p.input_tokens,
        "outputTokens": p.output_tokens,
        "totalTokens": p.input_tokens + p.output_tokens + p.cache_read + p.cache_write,
    }
    if p.cached:
        usage["cacheReadInputTokens"] = p.cache_read
        usage["cacheWriteInputTokens"] = p.cache_write
    return usage


def _converse_plan(body: dict[str, Any], ctx: Context) -> Plan | None:
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return None
    config = body.get("inferenceConfig") if isinstance(body.get("inferenceConfig"), dict) else {}
    return plan(_converse_ask(body, config.get("maxTokens")), body, ctx)


def converse(body: dict[str, Any], ctx: Context) -> Reply:
    p = _converse_plan(body, ctx)
    if p is None:
        return aws_error(
            400, "ValidationException", "A conversation must start with a user message.", ctx
        )
    content: list[dict[str, Any]] = [{"text": p.text}] if p.pieces else []
    if p.tool:
        content.append(
            {
                "toolUse": {
                    "toolUseId": p.tool["id"],
                    "name": p.tool["name"],
                    "input": p.tool["input"],
                }
            }
        )
    return json_reply(
        {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": _CONVERSE_STOPS[p.stop],
            "usage": _converse_usage(p),
            "metrics": {"latencyMs": 42},
        }
    )


def converse_stream(body: dict[str, Any], ctx: Context) -> Reply:
    p = _converse_plan(body, ctx)
    if p is None:
        return aws_error(
            400, "ValidationException", "A conversation must start with a user message.", ctx
        )
    frames = [Frame.event("messageStart", {"role": "assistant"})]
    index = 0
    if p.pieces:
        for piece in p.pieces:
            delta = {"delta": {"text": piece}, "contentBlockIndex": index}
            frames.append(Frame.event("contentBlockDelta", delta))
        frames.append(Frame.event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if p.tool:
        start = {"toolUse": {"toolUseId": p.tool["id"], "name": p.tool["name"]}}
        frames.append(
            Frame.event("contentBlockStart", {"start": start, "contentBlockIndex": index})
        )
        for fragment in c.split_fragments(dumps(p.tool["input"])):
            delta = {"delta": {"toolUse": {"input": fragment}}, "contentBlockIndex": index}
            frames.append(Frame.event("contentBlockDelta", delta))
        frames.append(Frame.event("contentBlockStop", {"contentBlockIndex": index}))
    frames.append(Frame.event("messageStop", {"stopReason": _CONVERSE_STOPS[p.stop]}))
    metadata = {"usage": _converse_usage(p), "metrics": {"latencyMs": 42}}
    frames.append(Frame.event("metadata", metadata))
    return _stream(_with_stream_error(frames, ctx))


def _with_stream_error(frames: list[Frame], ctx: Context) -> list[Frame]:
    if not ctx.is_("stream_error"):
        return frames
    keep = int(ctx.scenario.number(3)) if ctx.scenario else 3
    error = Frame.exception("modelStreamErrorException", "The model stream failed (devserver).")
    return [*frames[:keep], error]


# InvokeModel: one translator per vendor -----------------------------------------------


def vendor_of(model: str, body: dict[str, Any]) -> str | None:
    """The body format a model id (or, failing that, a body) speaks."""
    name = model.rsplit("/", 1)[-1].lower()
    for prefix, vendor in _VENDOR_PREFIXES:
        if re.search(rf"(^|\.){re.escape(prefix)}", name):
            return vendor
    return _sniff(body)


_VENDOR_PREFIXES = (
    ("anthropic.", "anthropic"),
    ("amazon.nova", "nova"),
    ("amazon.titan-embed", "titan_embed"),
    ("amazon.titan-", "titan_text"),
    ("meta.", "llama"),
    ("mistral.", "mistral"),
    ("cohere.embed", "cohere_embed"),
    ("cohere.command-r", "cohere_chat"),
    ("cohere.command", "cohere_text"),
)


def _sniff(body: dict[str, Any]) -> str | None:
    if "anthropic_version" in body:
        return "anthropic"
    if "schemaVersion" in body or ("messages" in body and "inferenceConfig" in body):
        return "nova"
    if "textGenerationConfig" in body:
        return "titan_text"
    if "inputText" in body:
        return "titan_embed"
    if "max_gen_len" in body:
        return "llama"
    if "texts" in body:
        return "cohere_embed"
    if "message" in body:
        return "cohere_chat"
    if "prompt" in body:
        return "mistral" if "top_k" in body or "stop" in body else "cohere_text"
    if "messages" in body:
        return "mistral"
    return None


def _anthropic_ask(body: dict[str, Any]) -> Ask:
    ask = Ask(max_tokens=body.get("max_tokens"))
    segments: list[tuple[int, bool]] = []
    system = body.get("system")
    for block in [{"text": system}] if isinstance(system, str) else system or []:
        if isinstance(block, dict):
            segments.append((c.count_tokens(c.text_of(block)), bool(block.get("cache_control"))))
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            ask.tools.append((str(tool.get("name")), tool.get("input_schema") or {}))
            segments.append((c.count_tokens(dumps(tool)), bool(tool.get("cache_control"))))
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    for message in messages:
        segments.append((3, False))
        blocks = message.get("content")
        for block in [{"text": blocks}] if isinstance(blocks, str) else blocks or []:
            if isinstance(block, dict):
                segments.append(
                    (c.count_tokens(c.text_of(block)), bool(block.get("cache_control")))
                )
    if messages:
        last = messages[-1]
        ask.last_role = str(last.get("role") or "user")
        blocks = last.get("content")
        blocks = [{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks or []
        results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            ask.tool_result = c.text_of(results[-1].get("content"))
        ask.prompt = " ".join(
            str(b.get("text")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"
        )
    _count(ask, segments)
    return ask


def _nova_ask(body: dict[str, Any]) -> Ask:
    config = body.get("inferenceConfig") if isinstance(body.get("inferenceConfig"), dict) else {}
    limit = config.get("max_new_tokens", config.get("maxTokens"))
    return _converse_ask(body, limit)


def _prompt_ask(prompt: Any, limit: Any) -> Ask:
    text = str(prompt or "")
    ask = Ask(prompt=text, max_tokens=limit)
    ask.tokens = max(1, c.count_tokens(text))
    return ask


def _mistral_ask(body: dict[str, Any]) -> Ask:
    if isinstance(body.get("messages"), list):
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        users = [m for m in messages if m.get("role") == "user"]
        ask = _prompt_ask(
            c.text_of(users[-1].get("content")) if users else "", body.get("max_tokens")
        )
        ask.tokens = max(1, sum(c.count_tokens(c.text_of(m.get("content"))) + 3 for m in messages))
        return ask
    return _prompt_ask(body.get("prompt"), body.get("max_tokens"))


def _ask_for(vendor: str, body: dict[str, Any]) -> Ask:
    if vendor == "anthropic":
        return _anthropic_ask(body)
    if vendor == "nova":
        return _nova_ask(body)
    if vendor == "titan_text":
        config = body.get("textGenerationConfig") or {}
        return _prompt_ask(body.get("inputText"), config.get("maxTokenCount"))
    if vendor == "llama":
        return _prompt_ask(body.get("prompt"), body.get("max_gen_len"))
    if vendor == "mistral":
        return _mistral_ask(body)
    if vendor == "cohere_chat":
        return _prompt_ask(body.get("message"), body.get("max_tokens"))
    return _prompt_ask(body.get("prompt"), body.get("max_tokens"))


def _invoke_problem(vendor: str | None, body: dict[str, Any]) -> str | None:
    required = {
        "anthropic": ("messages", "max_tokens", "anthropic_version"),
        "nova": ("messages",),
        "titan_text": ("inputText",),
        "titan_embed": ("inputText",),
        "llama": ("prompt",),
        "cohere_text": ("prompt",),
        "cohere_chat": ("message",),
        "cohere_embed": ("texts",),
    }
    if vendor is None:
        return "The provided model identifier is invalid."
    if vendor == "mistral":
        missing = [] if "prompt" in body or "messages" in body else ["prompt"]
    else:
        missing = [key for key in required[vendor] if key not in body]
    if missing:
        return f"Malformed input request: #: required key [{missing[0]}] not found"
    return None


_STOPS = {
    "anthropic": {"end": "end_turn", "length": "max_tokens", "tool": "tool_use"},
    "nova": {"end": "end_turn", "length": "max_tokens", "tool": "tool_use"},
    "titan_text": {"end": "FINISH", "length": "LENGTH", "tool": "FINISH"},
    "llama": {"end": "stop", "length": "length", "tool": "stop"},
    "mistral": {"end": "stop", "length": "length", "tool": "stop"},
    "cohere_text": {"end": "COMPLETE", "length": "MAX_TOKENS", "tool": "COMPLETE"},
    "cohere_chat": {"end": "COMPLETE", "length": "MAX_TOKENS", "tool": "COMPLETE"},
}


def _embed(text: str, dimensions: int) -> list[float]:
    digest = c.stable_id("", text, length=64)
    return [round((int(digest[i % 64], 16) - 7.5) / 7.5, 4) for i in range(dimensions)]


def _invoke_body(vendor: str, body: dict[str, Any], p: Plan, model: str) -> dict[str, Any]:
    stop = _STOPS[vendor][p.stop]
    if vendor == "anthropic":
        blocks: list[dict[str, Any]] = [{"type": "text", "text": p.text}] if p.pieces else []
        if p.tool:
            blocks.append({"type": "tool_use", **p.tool})
        return {
            "id": c.stable_id("msg_bdrk_", body, length=24),
            "type": "message",
            "role": "assistant",
            "model": re.sub(r"-v\d+(:\d+)?$", "", model.rsplit("/", 1)[-1].split("anthropic.")[-1]),
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": _anthropic_usage(p),
        }
    if vendor == "nova":
        content: list[dict[str, Any]] = [{"text": p.text}] if p.pieces else []
        if p.tool:
            content.append(
                {
                    "toolUse": {
                        "toolUseId": p.tool["id"],
                        "name": p.tool["name"],
                        "input": p.tool["input"],
                    }
                }
            )
        usage = {
            "inputTokens": p.input_tokens,
            "outputTokens": p.output_tokens,
            "totalTokens": p.input_tokens + p.output_tokens,
            "cacheReadInputTokenCount": p.cache_read,
            "cacheWriteInputTokenCount": p.cache_write,
        }
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": usage,
        }
    if vendor == "titan_text":
        result = {"tokenCount": p.output_tokens, "outputText": p.text, "completionReason": stop}
        return {"inputTextTokenCount": p.input_tokens, "results": [result]}
    if vendor == "llama":
        return {
            "generation": p.text,
            "prompt_token_count": p.input_tokens,
            "generation_token_count": p.output_tokens,
            "stop_reason": stop,
        }
    if vendor == "mistral":
        if "messages" in body:
            message = {"role": "assistant", "content": p.text}
            return {"choices": [{"index": 0, "message": message, "stop_reason": stop}]}
        return {"outputs": [{"text": p.text, "stop_reason": stop}]}
    if vendor == "cohere_chat":
        return {
            "response_id": c.stable_id("", body, "r", length=32),
            "text": p.text,
            "generation_id": c.stable_id("", body, "g", length=32),
            "chat_history": [
                {"role": "USER", "message": str(body.get("message"))},
                {"role": "CHATBOT", "message": p.text},
            ],
            "finish_reason": stop,
        }
    generation = {
        "id": c.stable_id("", body, "g", length=32),
        "text": p.text,
        "finish_reason": stop,
    }
    return {
        "id": c.stable_id("", body, length=32),
        "generations": [generation],
        "prompt": body.get("prompt"),
    }


def _anthropic_usage(p: Plan) -> dict[str, Any]:
    return {
        "input_tokens": p.input_tokens,
        "cache_creation_input_tokens": p.cache_write,
        "cache_read_input_tokens": p.cache_read,
        "output_tokens": p.output_tokens,
    }


def _embeddings(vendor: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    if vendor == "titan_embed":
        text = str(body.get("inputText"))
        dimensions = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 1024
        tokens = max(1, c.count_tokens(text))
        return {"embedding": _embed(text, dimensions), "inputTextTokenCount": tokens}, tokens
    texts = [str(t) for t in body.get("texts") or []]
    out = {
        "id": c.stable_id("", body, length=32),
        "embeddings": [_embed(text, 1024) for text in texts],
        "response_type": "embeddings_floats",
        "texts": texts,
    }
    return out, max(1, sum(c.count_tokens(t) for t in texts))


def _invocation_metrics(p: Plan) -> dict[str, Any]:
    return {
        "inputTokenCount": p.input_tokens,
        "outputTokenCount": p.output_tokens,
        "invocationLatency": 42,
        "firstByteLatency": 21,
    }


def _token_headers(input_tokens: int, output_tokens: int | None) -> dict[str, str]:
    headers = {
        "x-amzn-bedrock-input-token-count": str(input_tokens),
        "x-amzn-bedrock-invocation-latency": "42",
    }
    if output_tokens is not None:
        headers["x-amzn-bedrock-output-token-count"] = str(output_tokens)
    return headers


def _read_invoke(
    body: dict[str, Any], ctx: Context
) -> tuple[str, str, dict[str, Any], Reply | None]:
    body = dict(body)
    model = str(body.pop("model", ""))
    vendor = vendor_of(model, body)
    problem = _invoke_problem(vendor, body)
    if problem:
        return "", model, body, aws_error(400, "ValidationException", problem, ctx)
    return str(vendor), model, body, None


def invoke(body: dict[str, Any], ctx: Context) -> Reply:
    vendor, model, body, error = _read_invoke(body, ctx)
    if error is not None:
        return error
    if vendor in ("titan_embed", "cohere_embed"):
        out, tokens = _embeddings(vendor, body)
        reply = json_reply(out)
        reply.headers.update(_token_headers(tokens, None))
        return reply
    p = plan(_ask_for(vendor, body), body, ctx)
    reply = json_reply(_invoke_body(vendor, body, p, model))
    reply.headers.update(_token_headers(p.input_tokens, p.output_tokens))
    return reply


def _chunk(payload: dict[str, Any]) -> Frame:
    data = base64.b64encode(dumps(payload).encode()).decode()
    return Frame.event("chunk", {"bytes": data})


def invoke_stream(body: dict[str, Any], ctx: Context) -> Reply:
    vendor, model, body, error = _read_invoke(body, ctx)
    if error is not None:
        return error
    if vendor in ("titan_embed", "cohere_embed"):
        return aws_error(400, "ValidationException", "The model does not support streaming.", ctx)
    p = plan(_ask_for(vendor, body), body, ctx)
    chunks = _STREAMERS[vendor](body, p, model)
    chunks[-1] = {**chunks[-1], "amazon-bedrock-invocationMetrics": _invocation_metrics(p)}
    return _stream(_with_stream_error([_chunk(chunk) for chunk in chunks], ctx))


def _anthropic_chunks(body: dict[str, Any], p: Plan, model: str) -> list[dict[str, Any]]:
    final = _invoke_body("anthropic", body, p, model)
    start = {
        **final,
        "content": [],
        "stop_reason": None,
        "usage": {**final["usage"], "output_tokens": 1},
    }
    chunks: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    index = 0
    if p.pieces:
        chunks.append(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        )
        for piece in p.pieces:
            chunks.append(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                }
            )
        chunks.append({"type": "content_block_stop", "index": 0})
        index = 1
    if p.tool:
        block = {"type": "tool_use", "id": p.tool["id"], "name": p.tool["name"], "input": {}}
        chunks.append({"type": "content_block_start", "index": index, "content_block": block})
        for fragment in c.split_fragments(dumps(p.tool["input"])):
            delta = {"type": "input_json_delta", "partial_json": fragment}
            chunks.append({"type": "content_block_delta", "index": index, "delta": delta})
        chunks.append({"type": "content_block_stop", "index": index})
    delta = {"stop_reason": final["stop_reason"], "stop_sequence": None}
    chunks.append(
        {"type": "message_delta", "delta": delta, "usage": {"output_tokens": p.output_tokens}}
    )
    chunks.append({"type": "message_stop"})
    return chunks


def _nova_chunks(body: dict[str, Any], p: Plan, model: str) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
    for piece in p.pieces:
        chunks.append({"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": 0}})
    chunks.append({"contentBlockStop": {"contentBlockIndex": 0}})
    if p.tool:
        start = {"toolUse": {"toolUseId": p.tool["id"], "name": p.tool["name"]}}
        chunks.append({"contentBlockStart": {"start": start, "contentBlockIndex": 1}})
        delta = {"toolUse": {"input": dumps(p.tool["input"])}}
        chunks.append({"contentBlockDelta": {"delta": delta, "contentBlockIndex": 1}})
        chunks.append({"contentBlockStop": {"contentBlockIndex": 1}})
    chunks.append({"messageStop": {"stopReason": _STOPS["nova"][p.stop]}})
    usage = {
        "inputTokens": p.input_tokens,
        "outputTokens": p.output_tokens,
        "cacheReadInputTokenCount": p.cache_read,
        "cacheWriteInputTokenCount": p.cache_write,
    }
    chunks.append({"metadata": {"usage": usage, "metrics": {}, "trace": {}}})
    return chunks


def _titan_chunks(body: dict[str, Any], p: Plan, model: str) -> list[dict[str, Any]]:
    stop = _STOPS["titan_text"][p.stop]
    chunks = []
    for i, piece in enumerate(p.pieces or [""]):
        last = i == max(0, len(p.pieces) - 1)
        chunks.append(
            {
                "outputText": piece,
                "index": 0,
                "totalOutputTextTokenCount": i + 1 if last else None,
                "completionReason": stop if last else None,
                "inputTextTokenCount": p.input_tokens if i == 0 else None,
            }
        )
    return chunks


def _llama_chunks(body: dict[str, Any], p: Plan, model: str) -> list[dict[str, Any]]:
    chunks = []
    for i, piece in enumerate(p.pieces or [""]):
        last = i == max(0, len(p.pieces) - 1)
        chunks.append(
            {
                "generation": piece,
                "prompt_token_count": p.input_tokens if i == 0 else None,
                "generation_token_count": i + 1,
                "stop_reason": _STOPS["llama"][p.stop] if last else None,
            }
        )
    return chunks


def _mistral_chunks(body: dict[str, Any], p: Plan, model: str) -> list[dict[str, Any]]:
    chunks = []
    for i, piece in enumerate(p.pieces or [""]):
        stop = _STOPS["mistral"][p.stop] if i == max(0, len(p.pieces) - 1) else None
        if "messages" in body:
            chunks.append(
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": piece},
                            "stop_reason": stop,
                        }
                    ]
                }
            )
        else:
            chunks.append({"outputs": [{"text": piece, "stop_reason": stop}]})
    return chunks


def _cohere_chunks(body: dict[str, Any], p: Plan, model: str) -> list[dict[str, Any]]:
    stop = _STOPS["cohere_text"][p.stop]
    if "message" in body:
        chunks: list[dict[str, Any]] = [
            {
                "is_finished": False,
                "event_type": "stream-start",
                "generation_id": c.stable_id("", body, "g", length=32),
            }
        ]
        chunks += [
            {"is_finished": False, "event_type": "text-generation", "text": piece}
            for piece in p.pieces
        ]
        final = _invoke_body("cohere_chat", body, p, model)
        chunks.append(
            {
                "is_finished": True,
                "event_type": "stream-end",
                "finish_reason": stop,
                "response": final,
            }
        )
        return chunks
    chunks = [{"text": piece, "is_finished": False} for piece in p.pieces]
    chunks.append({"is_finished": True, "finish_reason": stop, "text": ""})
    return chunks


_STREAMERS = {
    "anthropic": _anthropic_chunks,
    "nova": _nova_chunks,
    "titan_text": _titan_chunks,
    "llama": _llama_chunks,
    "mistral": _mistral_chunks,
    "cohere_text": _cohere_chunks,
    "cohere_chat": _cohere_chunks,
}

_ENDPOINTS = {
    "converse": converse,
    "converse-stream": converse_stream,
    "invoke": invoke,
    "invoke-with-response-stream": invoke_stream,
}


def _match(route: str) -> tuple[Any, dict[str, Any]] | None:
    found = _ROUTE.match(route)
    if found is None:
        return None
    return _ENDPOINTS[found.group(2)], {"model": unquote(found.group(1))}


PROTOCOL = WireProtocol(
    name="bedrock",
    routes={},
    models=(
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "amazon.nova-lite-v1:0",
        "amazon.titan-text-express-v1",
        "amazon.titan-embed-text-v2:0",
        "meta.llama3-1-8b-instruct-v1:0",
        "mistral.mistral-7b-instruct-v0:2",
        "cohere.command-r-v1:0",
        "cohere.embed-english-v3",
    ),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
    match=_match,
)
