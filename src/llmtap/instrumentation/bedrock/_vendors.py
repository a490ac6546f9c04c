"""InvokeModel bodies, one small translator per vendor, chosen by the model id.

A model id names its vendor after an optional region prefix (``us.anthropic.claude-...``)
or as the last part of an inference-profile ARN; a provisioned-model ARN names none, and
then the request body's shape tells. Each translator reads the request body (parameters,
content), the response body and the stream chunks into the invocation and an ``Outcome``.
"""

from __future__ import annotations

import re
from typing import Any

from llmtap import semconv
from llmtap.instrumentation import _client
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation.anthropic import _common as anthropic_common
from llmtap.instrumentation.anthropic import _messages as anthropic_messages
from llmtap.instrumentation.bedrock import _converse as converse
from llmtap.instrumentation.bedrock._outcome import Outcome


class Vendor:
    """A body format. The base reads nothing: an unknown format still gets a span."""

    name = "unknown"
    operation = semconv.OP_CHAT

    def operation_for(self, body: dict[str, Any]) -> str:
        return self.operation

    def request(self, body: dict[str, Any], inv: Invocation, capture: bool) -> None:
        pass

    def response(self, body: dict[str, Any], into: Outcome) -> None:
        pass

    def chunk(self, payload: dict[str, Any], into: Outcome) -> None:
        pass


def _user_prompt(inv: Invocation, prompt: Any, capture: bool) -> None:
    if capture and isinstance(prompt, str):
        inv.input_messages = [parts.message("user", [parts.text(prompt)])]


def _stops(attrs: dict[str, Any], stops: Any) -> None:
    if isinstance(stops, list | tuple) and stops:
        attrs[semconv.REQUEST_STOP_SEQUENCES] = [str(s) for s in stops]


class Anthropic(Vendor):
    """The Messages API body (``anthropic_version: bedrock-2023-05-31``)."""

    name = "anthropic"

    def request(self, body: dict[str, Any], inv: Invocation, capture: bool) -> None:
        anthropic_messages.request_attributes(body, inv.attributes)
        if capture:
            inv.system_instructions = anthropic_messages.system_instructions(body.get("system"))
            inv.input_messages = anthropic_messages.input_messages(body.get("messages"))
            inv.tool_definitions = anthropic_messages.tool_definitions(body.get("tools"))

    def _usage(self, usage: Any, into: Outcome) -> None:
        counts = anthropic_common.usage_counts(usage)
        for key, name in (
            ("input", "input_tokens"),
            ("output", "output_tokens"),
            ("cache_read", "cache_read_input_tokens"),
            ("cache_write", "cache_creation_input_tokens"),
        ):
            into.count(key, counts.get(name))

    def _block(self, index: Any, block: Any, into: Outcome) -> None:
        if not isinstance(block, dict):
            return
        kind = block.get("type")
        if kind == "text":
            into.add_text(index, block.get("text"))
        elif kind == "thinking":
            into.add_text(index, block.get("thinking"), "reasoning")
        elif kind == "tool_use":
            arguments = block.get("input") or None  # a stream's start block has {}
            into.add_tool(index, block.get("id"), block.get("name"), arguments)

    def response(self, body: dict[str, Any], into: Outcome) -> None:
        if isinstance(body.get("id"), str):
            into.response_id = body["id"]
        if isinstance(body.get("model"), str):
            into.response_model = body["model"]
        for index, block in enumerate(body.get("content") or ()):
            self._block(index, block, into)
        if isinstance(body.get("stop_reason"), str):
            into.stop = body["stop_reason"]
        self._usage(body.get("usage"), into)

    def chunk(self, payload: dict[str, Any], into: Outcome) -> None:
        kind = payload.get("type")
        if kind == "content_block_delta":
            delta = payload.get("delta") if isinstance(payload.get("delta"), dict) else {}
            index = payload.get("index")
            if delta.get("type") == "text_delta":
                into.add_text(index, delta.get("text"))
            elif delta.get("type") == "thinking_delta":
                into.add_text(index, delta.get("thinking"), "reasoning")
            elif delta.get("type") == "input_json_delta":
                piece = delta.get("partial_json")
                if isinstance(piece, str):
                    into.block(index, "tool_call").pieces.append(piece)
        elif kind == "content_block_start":
            self._block(payload.get("index"), payload.get("content_block"), into)
        elif kind == "message_start":
            message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
            self.response({k: v for k, v in message.items() if k != "content"}, into)
        elif kind == "message_delta":
            delta = payload.get("delta") if isinstance(payload.get("delta"), dict) else {}
            if isinstance(delta.get("stop_reason"), str):
                into.stop = delta["stop_reason"]
            self._usage(payload.get("usage"), into)


class Nova(Vendor):
    """Amazon Nova: the Converse shapes in a body (``schemaVersion: messages-v1``)."""

    name = "nova"

    def request(self, body: dict[str, Any], inv: Invocation, capture: bool) -> None:
        converse.inference_attributes(body.get("inferenceConfig"), inv.attributes)
        if capture:
            inv.system_instructions = converse.system_instructions(body.get("system"))
            inv.input_messages = converse.input_messages(body.get("messages"))
            inv.tool_definitions = converse.tool_definitions(body.get("toolConfig"))

    def response(self, body: dict[str, Any], into: Outcome) -> None:
        converse.read_message(body, into)

    def chunk(self, payload: dict[str, Any], into: Outcome) -> None:
        converse.read_event(payload, into)


class TitanText(Vendor):
    name = "titan_text"
    operation = semconv.OP_TEXT_COMPLETION

    def request(self, body: dict[str, Any], inv: Invocation, capture: bool) -> None:
        config = body.get("textGenerationConfig")
        config = config if isinstance(config, dict) else {}
        num, attrs = _client.set_number, inv.attributes
        num(attrs, semconv.REQUEST_MAX_TOKENS, config.get("maxTokenCount"), int)
        num(attrs, semconv.REQUEST_TEMPERATURE, config.get("temperature"), float)
        num(attrs, semconv.REQUEST_TOP_P, config.get("topP"), float)
        _stops(attrs, config.get("stopSequences"))
        _user_prompt(inv, body.get("inputText"), capture)

    def response(self, body: dict[str, Any], into: Outcome) -> None:
        into.count("input", body.get("inputTextTokenCount"))
        for result in body.get("results") or ():
            if isinstance(result, dict):
                into.add_text(0, result.get("outputText"))
                into.count("output", result.get("tokenCount"))
                if isinstance(result.get("completionReason"), str):
                    into.stop = result["completionReason"]

    def chunk(self, payload: dict[str, Any], into: Outcome) -> None:
        into.add_text(0, payload.get("outputText"))
        into.count("input", payload.get("inputTextTokenCount"))
        into.count("output", payload.get("totalOutputTextTokenCount"))
        if isinstance(payload.get("completionReason"), str):
            into.stop = payload["completionReason"]


class Llama(Vendor):
    name = "llama"
    operation = semconv.OP_TEXT_COMPLETION

    def request(self, body: dict[str, Any], inv: Invocation, capture: bool) -> None:
        num, attrs = _client.set_number, inv.attributes
        num(attrs, semconv.REQUEST_MAX_TOKENS, body.get("max_gen_len"), int)
        num(attrs, semconv.REQUEST_TEMPERATURE, body.get("temperature"), float)
        num(attrs, semconv.REQUEST_TOP_P, body.get("top_p"), float)
        _user_prompt(inv, body.get("prompt"), capture)

    def response(self, body: dict[str, Any], into: Outcome) -> None:
        into.add_text(0, body.get("generation"))
        into.count("input", body.get("prompt_token_count"))
        into.count("output", body.get("generation_token_count"))
        if isinstance(body.get("stop_reason"), str):
            into.stop = body["stop_reason"]

    chunk = response  # every chunk is a body with a piece of the generation


class Mistral(Vendor):
    """A ``prompt`` (instruct models) or ``messages`` (Mistral Large) body."""

    name = "mistral"

    def operation_for(self, body: dict[str, Any]) -> str:
        chat = isinstance(body.get("messages"), list)
        return semconv.OP_CHAT if chat else semconv.OP_TEXT_COMPLETION

    def request(self, body: dict[str, Any], inv: Invocation, capture: bool) -> None:
        num, attrs = _client.set_number, inv.attributes
        num(attrs, semconv.REQUEST_MAX_TOKENS, body.get("max_tokens"), int)
        num(attrs, semconv.REQUEST_TEMPERATURE, body.get("temperature"), float)
        num(attrs, semconv.REQUEST_TOP_P, body.get("top_p"), float)
        num(attrs, semconv.REQUEST_TOP_K, body.get("top_k"), float)
        _stops(attrs, body.get("stop"))
        if not isinstance(body.get("messages"), list):
            _user_prompt(inv, body.get("prompt"), capture)
            return
        if capture:
            inv.input_messages = [
                parts.message(str(m.get("role") or "user"), [parts.text(m.get("content") or "")])
                for m in body["messages"]
                if isinstance(m, dict)
            ]

    def response(self, body: dict[str, Any], into: Outcome) -> None:
        for item in [*(body.get("outputs") or ()), *(body.get("choices") or ())]:
            if not isinstance(item, dict):
                continue
            message = item.get("message") if isinstance(item.get("message"), dict) else item
            into.add_text(0, message.get("content", message.get("text")))
            for offset, call in enumerate(message.get("tool_calls") or (), start=1):
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    arguments = parts.parse_arguments(function.get("arguments"))
                    into.add_tool(offset, call.get("id"), function.get("name"), arguments)
            if isinstance(item.get("stop_reason"), str):
                into.stop = item["stop_reason"]

    chunk = response


class CohereText(Vendor):
    """Cohere Command (``prompt``); Command R and R+ bodies are ``CohereChat``."""

    name = "cohere_text"
    operation = semconv.OP_TEXT_COMPLETION

    def _params(self, body: dict[str, Any], attrs: dict[str, Any]) -> None:
        num = _client.set_number
        num(attrs, semconv.REQUEST_MAX_TOKENS, body.get("max_tokens"), int)
        num(attrs, semconv.REQUEST_TEMPERATURE, body.get("temperature"), float)
        num(attrs, semconv.REQUEST_TOP_P, body.get("p"), float)
        num(attrs, semconv.REQUEST_TOP_K, body.get("k"), float)
        _stops(attrs, body.get("stop_sequences"))

    def request(self, body: dict[str, Any], inv: Invocation, capture: bool) -> None:
        self._params(body, inv.attributes)
        _user_prompt(inv, body.get("prompt"), capture)

    def response(self, body: dict[str, Any], into: Outcome) -> None:
        if isinstance(body.get("id"), str):
            into.response_id = body["id"]
        for generation in body.get("generations") or ():
            if isinstance(generation, dict):
                into.add_text(0, generation.get("text"))
                if isinstance(generation.get("finish_reason"), str):
                    into.stop = generation["finish_reason"]

    def chunk(self, payload: dict[str, Any], into: Outcome) -> None:
        into.add_text(0, payload.get("text"))
        if isinstance(payload.get("finish_reason"), str):
            into.stop = payload["finish_reason"]


class CohereChat(CohereText):
    name = "cohere_chat"
    operation = semconv.OP_CHAT

    def request(self, body: dict[str, Any], inv: Invocation, capture: bool) -> None:
        self._params(body, inv.attributes)
        if not capture:
            return
        roles = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system"}
        history = [
            parts.message(roles.get(str(m.get("role")), "user"), [parts.text(m.get("message", ""))])
            for m in body.get("chat_history") or ()
            if isinstance(m, dict)
        ]
        message = body.get("message")
        if isinstance(message, str):
            history.append(parts.message("user", [parts.text(message)]))
        inv.input_messages = history
        if isinstance(body.get("preamble"), str):
            inv.system_instructions = [parts.text(body["preamble"])]
        tools = [
            {
                "type": "function",
                "name": str(t.get("name", "")),
                "description": t.get("description", ""),
            }
            for t in body.get("tools") or ()
            if isinstance(t, dict)
        ]
        inv.tool_definitions = tools or None

    def response(self, body: dict[str, Any], into: Outcome) -> None:
        if isinstance(body.get("response_id"), str):
            into.response_id = body["response_id"]
        into.add_text(0, body.get("text"))
        for offset, call in enumerate(body.get("tool_calls") or (), start=1):
            if isinstance(call, dict):
                into.add_tool(offset, None, call.get("name"), call.get("parameters"))
        if isinstance(body.get("finish_reason"), str):
            into.stop = body["finish_reason"]

    def chunk(self, payload: dict[str, Any], into: Outcome) -> None:
        kind = payload.get("event_type")
        if kind == "text-generation":
            into.add_text(0, payload.get("text"))
        elif kind == "stream-end":
            if isinstance(payload.get("finish_reason"), str):
                into.stop = payload["finish_reason"]
            final = payload.get("response")
            if isinstance(final, dict) and isinstance(final.get("response_id"), str):
                into.response_id = final["response_id"]


class Embeddings(Vendor):
    """Titan and Cohere embedding bodies."""

    operation = semconv.OP_EMBEDDINGS

    def __init__(self, name: str) -> None:
        self.name = name

    def request(self, body: dict[str, Any], inv: Invocation, capture: bool) -> None:
        _client.set_number(
            inv.attributes, semconv.EMBEDDINGS_DIMENSION_COUNT, body.get("dimensions"), int
        )

    def embedded(self, body: dict[str, Any], inv: Invocation) -> None:
        vectors = body.get("embeddings")
        if isinstance(vectors, dict):  # Cohere with embedding_types: {"float": [[...]]}
            vectors = next(iter(vectors.values()), None)
        first = vectors[0] if isinstance(vectors, list) and vectors else body.get("embedding")
        if isinstance(first, list) and first:
            inv.attributes.setdefault(semconv.EMBEDDINGS_DIMENSION_COUNT, len(first))
        _client.set_number(
            inv.attributes, semconv.USAGE_INPUT_TOKENS, body.get("inputTextTokenCount"), int
        )
        if isinstance(body.get("id"), str):
            inv.attributes[semconv.RESPONSE_ID] = body["id"]


_UNKNOWN = Vendor()
_VENDORS: dict[str, Vendor] = {
    v.name: v
    for v in (
        Anthropic(),
        Nova(),
        TitanText(),
        Llama(),
        Mistral(),
        CohereText(),
        CohereChat(),
        Embeddings("titan_embed"),
        Embeddings("cohere_embed"),
    )
}
_PREFIXES = (
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
_PATTERNS = tuple((re.compile(rf"(?:^|\.){re.escape(p)}"), name) for p, name in _PREFIXES)


def _sniff(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    keys = body.keys()
    for name, marks in (
        ("anthropic", ("anthropic_version",)),
        ("nova", ("schemaVersion", "inferenceConfig")),
        ("titan_text", ("textGenerationConfig",)),
        ("titan_embed", ("inputText",)),
        ("llama", ("max_gen_len",)),
        ("cohere_embed", ("texts",)),
        ("cohere_chat", ("message", "chat_history", "preamble")),
        ("mistral", ("messages",)),
    ):
        if any(mark in keys for mark in marks):
            return name
    if "prompt" in keys:
        return "mistral" if "top_k" in keys or "stop" in keys else "cohere_text"
    return None


def vendor_for(model: Any, body: Any) -> Vendor:
    """The translator of a model id; the body's shape when the id names no vendor."""
    if isinstance(model, str):
        name = model.rsplit("/", 1)[-1].lower()
        for pattern, vendor in _PATTERNS:
            if pattern.search(name):
                return _VENDORS[vendor]
    return _VENDORS.get(_sniff(body) or "", _UNKNOWN)
