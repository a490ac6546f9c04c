"""OpenAI legacy Completions (``completions.create``): prompt, choices and chunks into the
neutral invocation, as a ``text_completion`` operation."""

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
from llmtap.instrumentation.openai import _chat as chat
from llmtap.instrumentation.openai import _common as common
from llmtap.pipeline import tokens


def _prompts(prompt: Any) -> list[Any]:
    """The request's prompts: each a string or a token array (list of ints)."""
    if not _client.given(prompt) or prompt is None:
        return []
    if isinstance(prompt, str):
        return [prompt]
    items = list(prompt)
    if items and all(isinstance(x, int) for x in items):
        return [items]
    return [item if isinstance(item, str) else list(item) for item in items]


def _prompt_part(prompt: Any) -> dict[str, Any]:
    if isinstance(prompt, str):
        return parts.text(prompt)
    return {"type": "token_ids", "token_ids": [int(t) for t in prompt]}


def _prompt_tokens(prompts: list[Any], model: str | None) -> tuple[int, str]:
    total, method = 0, ""
    for prompt in prompts:
        if isinstance(prompt, str):
            count, method = tokens.count_text(prompt, model)
            total += count
        else:
            total += len(prompt)
    return total, method or "token_ids"


def _output_message(text: Any, finish: Any, default: str = "stop") -> dict[str, Any]:
    body = [parts.text(text)] if text else []
    out = parts.message("assistant", body)
    out["finish_reason"] = parts.finish_reason(finish) if finish else default
    return out


class CompletionsOptions:
    __slots__ = ("hide_usage", "model", "openai_attributes", "prompts")

    def __init__(
        self,
        prompts: list[Any],
        model: str | None,
        hide_usage: bool,
        openai_attributes: bool = True,
    ) -> None:
        self.prompts = prompts
        self.model = model
        self.hide_usage = hide_usage
        self.openai_attributes = openai_attributes


class CompletionsAdapter:
    """``completions.create`` (sync and async, streamed or not); another provider's SDK on
    this wire format sets the class attributes as for ``ChatAdapter``."""

    provider: str | None = None
    openai_attributes = True
    stream_usage = "inject"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def begin(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Call:
        kwargs = parts.materialize(kwargs, "prompt")
        model = kwargs.get("model")
        model = model if isinstance(model, str) else None
        inv = Invocation(semconv.OP_TEXT_COMPLETION, self.provider or "openai", model)
        attrs = inv.attributes
        attrs.update(common.client_attributes(instance, self.provider))
        stream = kwargs.get("stream") is True
        attrs[semconv.REQUEST_STREAM] = stream
        chat.request_attributes(kwargs, attrs, self.openai_attributes)
        prompts = _prompts(kwargs.get("prompt"))
        if self.settings.capture.any:  # each prompt as one user message
            inv.input_messages = [parts.message("user", [_prompt_part(p)]) for p in prompts]
        hide = False
        asks = stream and self.stream_usage == "inject" and chat._wants_no_usage(kwargs)
        if asks and self.settings.inject_stream_usage:
            opts = kwargs.get("stream_options")
            base = dict(opts) if _client.given(opts) and opts else {}
            kwargs = {**kwargs, "stream_options": {**base, "include_usage": True}}
            hide = True
        elif asks and self.settings.estimate_stream_usage:
            tokens.prepare(model)
        options = CompletionsOptions(prompts, model, hide, self.openai_attributes)
        return Call(inv, args, kwargs, options)

    def complete(self, call: Call, result: Any) -> Any:
        inv, attrs = call.inv, call.inv.attributes
        chat._response_fields(attrs, result, self.openai_attributes)
        attrs.update(common.usage_attributes(getattr(result, "usage", None)))
        choices = sorted(getattr(result, "choices", None) or [], key=_index)
        reasons = [getattr(c, "finish_reason", None) or "" for c in choices]
        attrs[semconv.RESPONSE_FINISH_REASONS] = reasons
        if self.settings.capture.any:
            inv.output_messages = [
                _output_message(getattr(c, "text", None), getattr(c, "finish_reason", None))
                for c in choices
            ]
        return result

    def stream(self, call: Call, result: Any) -> CompletionsAccumulator | None:
        if is_stream(result):
            return CompletionsAccumulator(self.settings, call.options)
        return None


def _index(choice: Any) -> int:
    index = getattr(choice, "index", None)
    return index if isinstance(index, int) else 0


class CompletionsAccumulator:
    """Collects a completions stream: text per choice, finish reasons, usage."""

    __slots__ = ("finishes", "head", "options", "settings", "texts", "usage")

    def __init__(self, settings: Settings, options: CompletionsOptions) -> None:
        self.settings = settings
        self.options = options
        self.texts: dict[int, list[str]] = {}
        self.finishes: dict[int, str] = {}
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
        choices = getattr(chunk, "choices", None)
        if not choices:
            return not (usage is not None and self.options.hide_usage)
        for choice in choices:
            index = _index(choice)
            texts = self.texts.setdefault(index, [])
            text = getattr(choice, "text", None)
            if text:
                texts.append(text)
            finish = getattr(choice, "finish_reason", None)
            if finish:
                self.finishes[index] = finish
        return True

    def finish(self, inv: Invocation) -> None:
        attrs = inv.attributes
        if self.head is not None:
            chat._response_fields(attrs, self.head, self.options.openai_attributes)
        order = sorted(self.texts)
        reasons = [self.finishes[i] for i in order if i in self.finishes]
        if reasons:
            attrs[semconv.RESPONSE_FINISH_REASONS] = reasons
        if self.usage is not None:
            attrs.update(common.usage_attributes(self.usage))
        elif self.settings.estimate_stream_usage:
            inv.pending = self._estimate([self.texts[i] for i in order])
        if self.settings.capture.any:
            cut = "error" if attrs.get(semconv.LLMTAP_STREAM_END) == "error" else "stop"
            inv.output_messages = [
                _output_message("".join(self.texts[i]), self.finishes.get(i), cut) for i in order
            ]

    def _estimate(self, outputs: list[list[str]]) -> Callable[[], dict[str, Any]]:
        """The token estimate, run on llmtap's worker like the chat stream's."""
        model, prompts = self.options.model, self.options.prompts

        def estimate() -> dict[str, Any]:
            prompt, method = _prompt_tokens(prompts, model)
            output = 0
            for pieces in outputs:
                if pieces:
                    count, method = tokens.count_text("".join(pieces), model)
                    output += count
            if method == "token_ids":
                method = tokens.encoder_for(model)[1]
            return {
                semconv.USAGE_INPUT_TOKENS: prompt,
                semconv.USAGE_OUTPUT_TOKENS: output,
                semconv.LLMTAP_USAGE_ESTIMATED: True,
                semconv.LLMTAP_USAGE_ESTIMATE_METHOD: method,
            }

        return estimate
