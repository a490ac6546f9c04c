"""OpenAI Chat Completions: requests, responses and chunks into the neutral invocation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation import _client
from llmtap.instrumentation import _parts as parts
from llmtap.instrumentation._invocation import Invocation
from llmtap.instrumentation._stream import is_stream
from llmtap.instrumentation._wrap import Call
from llmtap.instrumentation.openai import _common as common
from llmtap.pipeline import tokens

# (request field, attribute, type) of the numeric request fields
_NUMBERS = (
    ("temperature", semconv.REQUEST_TEMPERATURE, float),
    ("top_p", semconv.REQUEST_TOP_P, float),
    ("frequency_penalty", semconv.REQUEST_FREQUENCY_PENALTY, float),
    ("presence_penalty", semconv.REQUEST_PRESENCE_PENALTY, float),
    ("seed", semconv.REQUEST_SEED, int),
)


def request_attributes(
    kwargs: dict[str, Any], attrs: dict[str, Any], openai_attributes: bool = True
) -> None:
    get, num, given = kwargs.get, _client.set_number, _client.given
    for name, key, kind in _NUMBERS:
        value = get(name)
        if value is not None:
            num(attrs, key, value, kind)
    max_tokens = get("max_completion_tokens")
    if not given(max_tokens):
        max_tokens = get("max_tokens")
    if max_tokens is not None:
        num(attrs, semconv.REQUEST_MAX_TOKENS, max_tokens, int)
    n = get("n")
    if n is not None and given(n) and n != 1:
        attrs[semconv.REQUEST_CHOICE_COUNT] = int(n)
    stops = get("stop")
    if stops is not None:
        stops = common.stop_sequences(stops)
        if stops:
            attrs[semconv.REQUEST_STOP_SEQUENCES] = stops
    fmt = get("response_format")
    if fmt is not None and given(fmt):
        kind = fmt.get("type") if isinstance(fmt, dict) else "json_schema"
        attrs[semconv.OUTPUT_TYPE] = "text" if kind == "text" else "json"
    tier = get("service_tier")
    if openai_attributes and tier is not None and given(tier) and tier != "auto":
        attrs[semconv.OPENAI_REQUEST_SERVICE_TIER] = tier


# content ---------------------------------------------------------------------------


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [parts.text(content)]
    out = []
    for item in content:
        item = parts.as_dict(item)
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            out.append(parts.text(item.get("text", "")))
        elif kind == "refusal":
            out.append(parts.text(item.get("refusal", "")))
        elif kind == "image_url":
            url = item.get("image_url") or {}
            out.append(parts.media_from_url(str(url.get("url", "")), "image"))
        elif kind == "input_audio":
            audio = item.get("input_audio") or {}
            fmt = audio.get("format")
            blob = {"type": "blob", "modality": "audio", "content": audio.get("data", "")}
            out.append({**blob, "mime_type": f"audio/{fmt}"} if fmt else blob)
        elif kind == "file":
            out.append(_file_part(item.get("file") or {}))
        else:
            out.append({"type": str(kind or "unknown")})
    return out


def _file_part(file: dict[str, Any]) -> dict[str, Any]:
    if file.get("file_id"):
        return {"type": "file", "modality": "document", "file_id": file["file_id"]}
    return {"type": "blob", "modality": "document", "content": file.get("file_data", "")}


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls or ():
        call = parts.as_dict(call)
        fn = call.get("function") or call.get("custom") or {}
        out.append(parts.tool_call(call.get("id"), fn.get("name"), fn.get("arguments")))
    return out


def _function_call(call: Any) -> list[dict[str, Any]]:
    """The legacy ``function_call`` of an assistant message (it has no id) as a tool call."""
    call = parts.as_dict(call)
    if not isinstance(call, dict) or not call:
        return []
    return [parts.tool_call(None, call.get("name"), call.get("arguments"))]


def input_messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for msg in messages or ():
        msg = parts.as_dict(msg)
        if not isinstance(msg, dict):
            continue
        role = msg.get("role") or "user"
        if role == "tool":
            reply = parts.tool_response(msg.get("tool_call_id"), _joined(msg.get("content")))
            out.append(parts.message("tool", [reply]))
            continue
        if role == "function":  # legacy: a function's result, named, without a call id
            reply = parts.tool_response(None, _joined(msg.get("content")))
            out.append(parts.message("tool", [reply], msg.get("name")))
            continue
        body = _content_parts(msg.get("content"))
        calls, function = msg.get("tool_calls"), msg.get("function_call")
        if calls:
            body += _tool_calls(calls)
        if function:
            body += _function_call(function)
        role = "system" if role == "developer" else role
        out.append(parts.message(role, body, msg.get("name")))
    return out


def _joined(content: Any) -> Any:
    if isinstance(content, list):
        return "".join(p.get("content", "") for p in _content_parts(content))
    return content


def tool_definitions(tools: Any, functions: Any = None) -> list[dict[str, Any]] | None:
    """``tools`` and the legacy ``functions`` (plain function definitions), in that order."""
    out = []
    for tool in tools if _client.given(tools) and tools else ():
        tool = parts.as_dict(tool)
        fn = tool.get("function") or tool.get("custom") or {}
        out.append(_definition(tool.get("type", "function"), fn))
    for fn in functions if _client.given(functions) and functions else ():
        out.append(_definition("function", parts.as_dict(fn)))
    return out or None


def _definition(kind: Any, fn: dict[str, Any]) -> dict[str, Any]:
    entry = {"type": kind, "name": fn.get("name", "")}
    if fn.get("description"):
        entry["description"] = fn["description"]
    if fn.get("parameters"):
        entry["parameters"] = fn["parameters"]
    return entry


def _texts(messages: Any) -> list[str]:
    texts = []
    for msg in messages or ():
        msg = parts.as_dict(msg)
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p.get("content", "") for p in _content_parts(content) if "content" in p)
        calls = _tool_calls(msg.get("tool_calls")) + _function_call(msg.get("function_call"))
        for call in calls:
            texts.append(f"{call['name']} {call.get('arguments', '')}")
    return texts


# the adapter -----------------------------------------------------------------------


class ChatOptions:
    __slots__ = ("hide_usage", "messages", "model", "openai_attributes")

    def __init__(
        self, messages: Any, model: Any, hide_usage: bool, openai_attributes: bool = True
    ) -> None:
        self.messages = messages
        self.model = model
        self.hide_usage = hide_usage
        self.openai_attributes = openai_attributes


class ChatAdapter:
    """``chat.completions.create`` / ``parse`` and their async twins.

    Another provider's own SDK speaking this wire format (Groq, Together) subclasses it and
    sets the class attributes below."""

    provider: str | None = None  # None: the OpenAI client's host and class tell
    openai_attributes = True  # the ``openai.*`` attributes (OpenAI's API only)
    stream_usage = "inject"  # or "sent": the provider always ends a stream with its usage

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        kwargs = parts.materialize(kwargs, "messages", "tools", "functions")
        model = kwargs.get("model")
        model = model if isinstance(model, str) else None
        inv = Invocation(semconv.OP_CHAT, self.provider or "openai", model)
        attrs = inv.attributes
        attrs.update(common.client_attributes(instance, self.provider))
        if self.openai_attributes:
            attrs[semconv.OPENAI_API_TYPE] = "chat_completions"
        stream = kwargs.get("stream") is True
        attrs[semconv.REQUEST_STREAM] = stream
        request_attributes(kwargs, attrs, self.openai_attributes)
        if self.settings.capture.any:
            inv.input_messages = input_messages(kwargs.get("messages"))
            inv.tool_definitions = tool_definitions(kwargs.get("tools"), kwargs.get("functions"))
        hide = False
        asks = stream and self.stream_usage == "inject" and _wants_no_usage(kwargs)
        if asks and self.settings.inject_stream_usage:
            opts = kwargs.get("stream_options")
            base = dict(opts) if _client.given(opts) and opts else {}
            kwargs = {**kwargs, "stream_options": {**base, "include_usage": True}}
            hide = True
        elif asks and self.settings.estimate_stream_usage:
            tokens.prepare(model)
        options = ChatOptions(kwargs.get("messages"), model, hide, self.openai_attributes)
        return Call(inv, args, kwargs, options)

    def complete(self, call: Call, result: Any) -> Any:
        inv, attrs = call.inv, call.inv.attributes
        _response_fields(attrs, result, self.openai_attributes)
        attrs.update(common.usage_attributes(getattr(result, "usage", None)))
        choices = getattr(result, "choices", None) or []
        reasons = []
        refusal = False
        for c in choices:
            reasons.append(getattr(c, "finish_reason", None) or "")
            # a choice stopped by the content filter may come with no message at all
            refusal = refusal or bool(getattr(getattr(c, "message", None), "refusal", None))
        attrs[semconv.RESPONSE_FINISH_REASONS] = reasons
        if refusal:
            attrs[semconv.LLMTAP_RESPONSE_REFUSAL] = True
        if self.settings.capture.any:
            inv.output_messages = [_output_message(c) for c in choices]
        return result

    def stream(self, call: Call, result: Any) -> ChatAccumulator | None:
        if is_stream(result):
            return ChatAccumulator(self.settings, call.options)
        return None


def _wants_no_usage(kwargs: dict[str, Any]) -> bool:
    opts = kwargs.get("stream_options")
    return not (_client.given(opts) and opts and opts.get("include_usage"))


_RESPONSE_FIELDS = ((semconv.RESPONSE_ID, "id"), (semconv.RESPONSE_MODEL, "model"))
_OPENAI_RESPONSE_FIELDS = (
    *_RESPONSE_FIELDS,
    (semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT, "system_fingerprint"),
    (semconv.OPENAI_RESPONSE_SERVICE_TIER, "service_tier"),
)


def _response_fields(attrs: dict[str, Any], result: Any, openai_attributes: bool = True) -> None:
    for key, name in _OPENAI_RESPONSE_FIELDS if openai_attributes else _RESPONSE_FIELDS:
        value = getattr(result, name, None)
        if isinstance(value, str) and value:
            attrs[key] = value


def _output_message(choice: Any) -> dict[str, Any]:
    msg = getattr(choice, "message", None)
    body = []
    if msg is not None:
        content = getattr(msg, "content", None)
        if content:
            body.append(parts.text(content))
        if getattr(msg, "refusal", None):
            body.append(parts.text(msg.refusal))
        calls, function = getattr(msg, "tool_calls", None), getattr(msg, "function_call", None)
        if calls:
            body += _tool_calls(calls)
        if function:
            body += _function_call(function)
    out = parts.message("assistant", body)
    out["finish_reason"] = parts.finish_reason(getattr(choice, "finish_reason", None))
    return out


class _Choice:
    __slots__ = ("finish", "function", "refusal", "text", "tools")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.tools: dict[int, list[Any]] = {}
        self.function: list[Any] | None = None  # legacy function_call: [name, [arguments]]
        self.finish: str | None = None

    def calls(self) -> list[tuple[Any, str, list[str]]]:
        """(id, name, argument fragments) of the tool calls, then the legacy function call."""
        out = [tuple(self.tools[i]) for i in sorted(self.tools)]
        if self.function is not None:
            out.append((None, self.function[0], self.function[1]))
        return out  # type: ignore[return-value]


class ChatAccumulator:
    """Collects a chat completion stream: text, tool-call deltas, finish reasons, usage."""

    __slots__ = ("choices", "head", "options", "settings", "usage")

    def __init__(self, settings: Settings, options: ChatOptions) -> None:
        self.settings = settings
        self.options = options
        self.choices: dict[int, _Choice] = {}
        self.head: Any = None
        self.usage: Any = None

    def add(self, chunk: Any) -> bool:
        if self.head is None and getattr(chunk, "id", None):
            self.head = chunk
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        elif self.options.hide_usage:
            getattr(chunk, "__pydantic_fields_set__", set()).discard("usage")
        choices = chunk.choices
        if not choices:
            return not (usage is not None and self.options.hide_usage)
        for choice in choices:
            self._add_choice(choice)
        return True

    def _add_choice(self, choice: Any) -> None:
        acc = self.choices.get(choice.index)
        if acc is None:
            acc = self.choices[choice.index] = _Choice()
        delta = getattr(choice, "delta", None)  # a filtered choice may have none
        if delta is not None:
            text = getattr(delta, "content", None)
            if text:
                acc.text.append(text)
            refusal = getattr(delta, "refusal", None)
            if refusal:
                acc.refusal.append(refusal)
            calls = getattr(delta, "tool_calls", None)
            if calls:
                for call in calls:
                    self._add_tool(acc, call)
            function = getattr(delta, "function_call", None)
            if function is not None:
                self._add_function(acc, function)
        finish = getattr(choice, "finish_reason", None)
        if finish:
            acc.finish = finish

    @staticmethod
    def _add_tool(acc: _Choice, call: Any) -> None:
        slot = acc.tools.get(call.index)
        if slot is None:
            slot = acc.tools[call.index] = [None, "", []]
        if call.id:
            slot[0] = call.id
        fn = call.function
        if fn is not None:
            if fn.name:
                slot[1] += fn.name
            if fn.arguments:
                slot[2].append(fn.arguments)

    @staticmethod
    def _add_function(acc: _Choice, function: Any) -> None:
        if acc.function is None:
            acc.function = ["", []]
        name = getattr(function, "name", None)
        if name:
            acc.function[0] += name
        arguments = getattr(function, "arguments", None)
        if arguments:
            acc.function[1].append(arguments)

    def finish(self, inv: Invocation) -> None:
        attrs = inv.attributes
        if self.head is not None:
            _response_fields(attrs, self.head, self.options.openai_attributes)
        ordered = [self.choices[i] for i in sorted(self.choices)]
        reasons = [c.finish for c in ordered if c.finish]
        if reasons:
            attrs[semconv.RESPONSE_FINISH_REASONS] = reasons
        cut = "error" if attrs.get(semconv.LLMTAP_STREAM_END) == "error" else None
        if any(c.refusal for c in ordered):
            attrs[semconv.LLMTAP_RESPONSE_REFUSAL] = True
        if self.usage is not None:
            attrs.update(common.usage_attributes(self.usage))
        elif self.settings.estimate_stream_usage:
            inv.pending = self._estimate(ordered)
        if self.settings.capture.any:
            inv.output_messages = [self._message(c, cut) for c in ordered]

    def _estimate(self, ordered: list[_Choice]) -> Callable[[], dict[str, Any]]:
        """The token estimate, to run on llmtap's worker (loading a tokenizer takes up to a
        second). Only the prompt texts are taken here: the app may change its messages list
        once the call returned; the stream's choices are no longer written to."""
        model = self.options.model
        prompts = _texts(self.options.messages)

        def estimate() -> dict[str, Any]:
            prompt, method = tokens.count_messages(prompts, model)
            output = 0
            for c in ordered:
                pieces = c.text + c.refusal + [n + "".join(a) for _, n, a in c.calls()]
                output += tokens.count_text("".join(pieces), model)[0] if pieces else 0
            return {
                semconv.USAGE_INPUT_TOKENS: prompt,
                semconv.USAGE_OUTPUT_TOKENS: output,
                semconv.LLMTAP_USAGE_ESTIMATED: True,
                semconv.LLMTAP_USAGE_ESTIMATE_METHOD: method,
            }

        return estimate

    @staticmethod
    def _message(c: _Choice, cut: str | None) -> dict[str, Any]:
        body = [parts.text("".join(c.text))] if c.text else []
        if c.refusal:
            body.append(parts.text("".join(c.refusal)))
        for call_id, name, args in c.calls():
            body.append(parts.tool_call(call_id, name, "".join(args)))
        out = parts.message("assistant", body)
        out["finish_reason"] = parts.finish_reason(c.finish) if c.finish else cut or "stop"
        return out
