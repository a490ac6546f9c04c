"""OpenAI legacy ``POST /v1/completions`` emulation (JSON and SSE).

``prompt`` is a string, a list of strings, a token array or a list of token arrays; every
prompt gets ``n`` choices, indexed ``prompt_index * n + choice``. The text continues the
prompt deterministically (``echo`` puts the prompt in front), is cut by ``max_tokens`` (the
API's default is 16: finish reason ``length``) and by the first ``stop`` sequence it contains.
A prompt containing "please filter" gets an empty ``content_filter`` choice. Streams send one
chunk per word, then a last chunk with an empty text and the finish reason, per choice; with
``stream_options.include_usage`` every chunk has ``"usage": null`` and a last chunk with no
choices carries the usage, then ``[DONE]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import content as c
from .openai_chat import FILTER_TRIGGER
from .reply import Reply, SSEEvent, json_reply, stream_reply
from .scenarios import Context, openai_error_body

DEFAULT_MAX_TOKENS = 16


@dataclass
class _Choice:
    index: int
    pieces: list[str]
    finish_reason: str
    echo: str = ""

    @property
    def text(self) -> str:
        return self.echo + "".join(self.pieces)


def completions(body: dict[str, Any], ctx: Context) -> Reply:
    problem = _validate(body)
    if problem:
        return json_reply(openai_error_body(problem[1], "invalid_request_error", problem[0]), 400)
    prompts = _prompts(body["prompt"])
    n = body.get("n") if isinstance(body.get("n"), int) else 1
    choices = [
        _choice(body, text, index * n + k, k, n)
        for index, text in enumerate(prompts)
        for k in range(n)
    ]
    if body.get("stream"):
        return stream_reply(_stream_events(body, prompts, choices, ctx))
    return json_reply(_completion(body, prompts, choices, ctx))


def _validate(body: dict[str, Any]) -> tuple[str, str] | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model", "you must provide a model parameter"
    if "prompt" not in body or _prompts(body["prompt"]) is None:
        return "prompt", "'prompt' must be a string, an array of strings or of token arrays"
    n, best_of = body.get("n"), body.get("best_of")
    if n is not None and (not isinstance(n, int) or n < 1):
        return "n", "'n' must be a positive integer"
    if isinstance(best_of, int) and isinstance(n, int) and best_of < n:
        return "best_of", "best_of must be greater than or equal to n"
    return None


def _prompts(raw: Any) -> list[str] | None:
    """Each prompt as text (token arrays as their numbers); None when the shape is invalid."""
    if raw is None:
        return [""]
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not raw:
        return None
    if all(isinstance(x, int) for x in raw):
        return [" ".join(map(str, raw))]
    out = []
    for item in raw:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, list) and all(isinstance(x, int) for x in item):
            out.append(" ".join(map(str, item)))
        else:
            return None
    return out


def _continuation(prompt: str, k: int, n: int) -> str:
    said = c.first_words(prompt, 4) if prompt.strip() else "nothing"
    text = f'continues "{said}" for the llmtap devserver.'
    return text + (f" (choice {k})" if n > 1 else "")


def _stops(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop or [] if isinstance(s, str) and s]


def _choice(body: dict[str, Any], prompt: str, index: int, k: int, n: int) -> _Choice:
    echo = prompt if body.get("echo") else ""
    if FILTER_TRIGGER in prompt.lower():
        return _Choice(index, [], "content_filter", echo)
    text = _continuation(prompt, k, n)
    stopped = False
    for stop in _stops(body):
        at = text.find(stop)
        if at >= 0:
            text, stopped = text[:at], True
    limit = body.get("max_tokens", DEFAULT_MAX_TOKENS)
    pieces, cut = c.truncate(c.split_pieces(text), limit)
    if pieces:  # a completion goes on from the prompt: it starts with a space
        pieces[0] = " " + pieces[0]
    finish = "length" if cut else "stop"
    return _Choice(index, pieces, "stop" if stopped and not cut else finish, echo)


def _logprobs(body: dict[str, Any], choice: _Choice) -> dict[str, Any] | None:
    top = body.get("logprobs")
    if not isinstance(top, int) or isinstance(top, bool):
        return None
    offsets, at = [], len(choice.echo)
    for piece in choice.pieces:
        offsets.append(at)
        at += len(piece)
    return {
        "tokens": list(choice.pieces),
        "token_logprobs": [-0.25 for _ in choice.pieces],
        "top_logprobs": [{piece: -0.25} for piece in choice.pieces] if top > 0 else None,
        "text_offset": offsets,
    }


def _prompt_tokens(prompts: list[str]) -> int:
    return sum(c.count_tokens(p) for p in prompts)


def _usage(prompts: list[str], choices: list[_Choice]) -> dict[str, Any]:
    prompt = _prompt_tokens(prompts)
    completion = sum(len(ch.pieces) for ch in choices)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _envelope(body: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {
        "id": c.stable_id("cmpl-", body, length=29),
        "object": "text_completion",
        "created": ctx.created,
        "model": body["model"],
        "system_fingerprint": c.SYSTEM_FINGERPRINT,
    }


def _completion(
    body: dict[str, Any], prompts: list[str], choices: list[_Choice], ctx: Context
) -> dict[str, Any]:
    return {
        **_envelope(body, ctx),
        "choices": [
            {
                "text": ch.text,
                "index": ch.index,
                "logprobs": _logprobs(body, ch),
                "finish_reason": ch.finish_reason,
            }
            for ch in choices
        ],
        "usage": _usage(prompts, choices),
    }


def _chunk_choice(index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}


def _stream_events(
    body: dict[str, Any], prompts: list[str], choices: list[_Choice], ctx: Context
) -> list[SSEEvent]:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = _envelope(body, ctx)
    if include_usage:
        base["usage"] = None
    chunks: list[dict[str, Any]] = []
    for ch in choices:
        texts = ([ch.echo] if ch.echo else []) + ch.pieces
        for text in texts:
            chunks.append({**base, "choices": [_chunk_choice(ch.index, text, None)]})
        chunks.append({**base, "choices": [_chunk_choice(ch.index, "", ch.finish_reason)]})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _usage(prompts, choices)})
    events = [SSEEvent.of(chunk) for chunk in chunks]
    if ctx.is_("stream_error"):
        keep = int(ctx.scenario.number(3)) if ctx.scenario else 3
        message = "The server had an error while processing your request. Sorry about that!"
        return [*events[:keep], SSEEvent.of(openai_error_body(message, "server_error"))]
    return [*events, SSEEvent("[DONE]")]
