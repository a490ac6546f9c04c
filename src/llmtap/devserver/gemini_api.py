"""The Gemini API as the devserver speaks it, as the ``google-genai`` SDK calls it.

Gemini Developer API (``/v1beta/models/{model}:...``, or ``/v1/...`` as SDK 3.x calls it) and
Vertex AI
(``/v1beta1/[projects/{p}/locations/{l}/]publishers/google/models/{model}:...``):

- ``:generateContent``: one ``GenerateContentResponse``;
- ``:streamGenerateContent?alt=sse``: SSE ``data:`` lines, each a ``GenerateContentResponse``
  with the next text piece and the running ``usageMetadata``; the last one carries
  ``finishReason``;
- ``:batchEmbedContents`` / ``:embedContent`` / ``:predict`` (Vertex text-embedding models).

A function declared in ``tools`` is called (a ``functionCall`` part) when the last turn is the
user's text and ``toolConfig`` does not say ``NONE``; a ``functionResponse`` turn gets a text
answer. Errors use Google's body: ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from . import content as c
from .protocol import Endpoint, WireProtocol
from .reply import Reply, SSEEvent, dumps, json_reply, stream_reply
from .scenarios import Context

_ROUTE_RE = re.compile(
    r"^(?:/v1beta1?|/v1)?/(?:projects/[^/]+/locations/[^/]+/)?"
    r"(?:publishers/[^/]+/)?(?:models|tunedModels)/(?P<model>[^/]+):(?P<method>\w+)$"
)
_EMBED_DIMENSIONS = 768
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_ERRORS: dict[str, tuple[int, str]] = {
    "rate_limit": (429, "Resource has been exhausted (e.g. check quota)."),
    "flaky": (429, "Resource has been exhausted (flaky scenario)."),
    "server_error": (500, "An internal error has occurred. Please retry or report."),
    "bad_request": (400, "Request contains an invalid argument."),
    "auth": (401, "API key not valid. Please pass a valid API key."),
    "permission": (403, "The caller does not have permission."),
    "not_found": (404, "models/{model} is not found for API version v1beta."),
    "overloaded": (503, "The model is overloaded. Please try again later."),
}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


# requests --------------------------------------------------------------------------------


def _parts_text(parts: Any) -> str:
    texts = [
        p["text"] for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    return " ".join(texts)


def _contents(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("contents") or [] if isinstance(m, dict)]


def _prompt(contents: list[dict[str, Any]]) -> str:
    for turn in reversed(contents):
        text = _parts_text(turn.get("parts"))
        if turn.get("role", "user") == "user" and text:
            return text
    return ""


def _function_responses(turn: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for part in turn.get("parts") or []:
        if isinstance(part, dict) and isinstance(part.get("functionResponse"), dict):
            found.append(part["functionResponse"])
    return found


def _declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            out += [d for d in tool.get("functionDeclarations") or [] if isinstance(d, dict)]
    return out


def _pick_function(body: dict[str, Any]) -> dict[str, Any] | None:
    declarations = _declarations(body)
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if not declarations or str(config.get("mode", "AUTO")).upper() == "NONE":
        return None
    allowed = config.get("allowedFunctionNames") or []
    return next((d for d in declarations if d.get("name") in allowed), declarations[0])


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI-style schema (``"type": "OBJECT"``) as plain JSON Schema."""
    if isinstance(schema, dict):
        out = {k: _lower_types(v) for k, v in schema.items()}
        if isinstance(out.get("type"), str):
            out["type"] = out["type"].lower()
        return out
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _schema(container: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if isinstance(container.get(key), dict):
            return _lower_types(container[key])
    return None


def _config(body: dict[str, Any]) -> dict[str, Any]:
    config = body.get("generationConfig")
    return config if isinstance(config, dict) else {}


def _thinking(config: dict[str, Any]) -> tuple[int, bool]:
    """(thought tokens, whether thought summaries are returned)."""
    thinking = config.get("thinkingConfig")
    if not isinstance(thinking, dict):
        return 0, False
    # the API takes proto JSON: camelCase or the snake_case names (SDK 3.x sends those here)
    budget = thinking.get("thinkingBudget", thinking.get("thinking_budget"))
    include = bool(thinking.get("includeThoughts", thinking.get("include_thoughts")))
    if budget == 0:
        return 0, False
    return 16, include


def _count(value: Any) -> int:
    return c.count_tokens(dumps(value)) if value else 0


def _prompt_tokens(body: dict[str, Any]) -> int:
    total = sum(_count(turn.get("parts")) + 3 for turn in _contents(body))
    total += _count((body.get("systemInstruction") or {}).get("parts"))
    return total + _count(body.get("tools"))


# generateContent ---------------------------------------------------------------------------


class _Plan:
    __slots__ = ("finish", "parts", "pieces", "thoughts")

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self.pieces: list[str] = []  # the text part, as streamed
        self.finish = "STOP"
        self.thoughts = 0


def _plan(body: dict[str, Any]) -> _Plan:
    plan = _Plan()
    contents = _contents(body)
    last = contents[-1] if contents else {}
    prompt = _prompt(contents)
    config = _config(body)
    plan.thoughts, include_thoughts = _thinking(config)
    if include_thoughts:
        plan.parts.append({"text": c.thinking_text(prompt), "thought": True})
    responses = _function_responses(last)
    function = None if responses else _pick_function(body)
    if c.is_refusal(prompt):
        plan.finish = "SAFETY"
        plan.parts = []
        return plan
    if responses:
        text = c.tool_result_answer(dumps(responses[-1].get("response")))
    elif function is not None:
        schema = _schema(
            function, "parametersJsonSchema", "parameters_json_schema", "parameters"
        ) or {"type": "object"}
        args = c.fill_schema(schema, c.topic_word(prompt))
        call = {"name": function.get("name", ""), "args": args if isinstance(args, dict) else {}}
        plan.parts.append({"functionCall": call})
        return plan
    elif str(config.get("responseMimeType", "")).startswith("application/json"):
        schema = _schema(config, "responseJsonSchema", "response_json_schema", "responseSchema")
        text = c.json_text(c.fill_schema(schema, c.topic_word(prompt)) if schema else {})
    else:
        text = c.answer_text(prompt)
    pieces, cut = c.truncate(c.split_pieces(text), config.get("maxOutputTokens"))
    plan.pieces = pieces
    plan.parts.append({"text": "".join(pieces)})
    if cut:
        plan.finish = "MAX_TOKENS"
    return plan


def _usage(body: dict[str, Any], plan: _Plan, output: int) -> dict[str, Any]:
    prompt = _prompt_tokens(body)
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output + plan.thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if plan.thoughts:
        usage["thoughtsTokenCount"] = plan.thoughts
    if body.get("cachedContent"):
        usage["cachedContentTokenCount"] = prompt // 2
    return usage


def _output_tokens(plan: _Plan) -> int:
    calls = [p for p in plan.parts if "functionCall" in p]
    return len(plan.pieces) + sum(_count(p["functionCall"]) for p in calls)


def _response_id(body: dict[str, Any]) -> str:
    return c.stable_id("", body, length=22)


def _candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def _response(body: dict[str, Any], candidate: dict[str, Any], usage: dict[str, Any]) -> dict:
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": body["model"],
        "responseId": _response_id(body),
    }


def generate_content(body: dict[str, Any], ctx: Context) -> Reply:
    if not _contents(body):
        return json_reply(
            error_body(400, "* GenerateContentRequest.contents: contents is not specified"), 400
        )
    plan = _plan(body)
    usage = _usage(body, plan, _output_tokens(plan))
    return json_reply(_response(body, _candidate(plan.parts, plan.finish), usage))


def stream_generate_content(body: dict[str, Any], ctx: Context) -> Reply:
    if not _contents(body):
        return json_reply(
            error_body(400, "* GenerateContentRequest.contents: contents is not specified"), 400
        )
    plan = _plan(body)
    chunks: list[list[dict[str, Any]]] = [
        [p] for p in plan.parts if "text" not in p or p.get("thought")
    ]
    chunks += [[{"text": piece}] for piece in plan.pieces]
    chunks = chunks or [[]]
    events, produced = [], 0
    calls = 0
    for index, chunk_parts in enumerate(chunks):
        last = index == len(chunks) - 1
        produced += sum(1 for p in chunk_parts if "text" in p and not p.get("thought"))
        calls += sum(_count(p["functionCall"]) for p in chunk_parts if "functionCall" in p)
        usage = _usage(body, plan, produced + calls)
        candidate = _candidate(chunk_parts, plan.finish if last else None)
        events.append(SSEEvent.of(_response(body, candidate, usage)))
    if ctx.is_("stream_error"):
        keep = int(ctx.scenario.number(3)) if ctx.scenario else 3
        error = error_body(503, "The model is overloaded. Please try again later.")
        return stream_reply([*events[:keep], SSEEvent.of(error)])
    return stream_reply(events)


# embeddings --------------------------------------------------------------------------------


def _vector(text: str, dimensions: Any) -> list[float]:
    size = (
        dimensions if isinstance(dimensions, int) and 0 < dimensions <= 4096 else _EMBED_DIMENSIONS
    )
    seed = hashlib.sha256(text.encode()).digest()
    return [round((seed[i % len(seed)] - 128) / 128, 6) for i in range(size)]


def _embed_text(content: Any) -> str:
    if isinstance(content, dict):
        return _parts_text(content.get("parts"))
    return c.text_of(content)


def batch_embed_contents(body: dict[str, Any], ctx: Context) -> Reply:
    requests = [r for r in body.get("requests") or [] if isinstance(r, dict)]
    if not requests:
        return json_reply(error_body(400, "* BatchEmbedContentsRequest.requests: required"), 400)
    texts = [_embed_text(r.get("content")) for r in requests]
    embeddings = [
        {"values": _vector(t, r.get("outputDimensionality"))}
        for t, r in zip(texts, requests, strict=True)
    ]
    tokens = sum(c.count_tokens(t) for t in texts)
    return json_reply({"embeddings": embeddings, "usageMetadata": {"promptTokenCount": tokens}})


def embed_content(body: dict[str, Any], ctx: Context) -> Reply:
    text = _embed_text(body.get("content"))
    dims = body.get("outputDimensionality") or (body.get("embedContentConfig") or {}).get(
        "outputDimensionality"
    )
    tokens = c.count_tokens(text)
    return json_reply(
        {
            "embedding": {"values": _vector(text, dims)},
            "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
        }
    )


def predict(body: dict[str, Any], ctx: Context) -> Reply:
    instances = [i for i in body.get("instances") or [] if isinstance(i, dict)]
    if not instances:
        return json_reply(error_body(400, "instances: required"), 400)
    dims = (body.get("parameters") or {}).get("outputDimensionality")
    predictions = []
    for instance in instances:
        text = c.text_of(instance.get("content"))
        stats = {"token_count": c.count_tokens(text), "truncated": False}
        predictions.append({"embeddings": {"values": _vector(text, dims), "statistics": stats}})
    chars = sum(len(c.text_of(i.get("content"))) for i in instances)
    return json_reply({"predictions": predictions, "metadata": {"billableCharacterCount": chars}})


_METHODS: dict[str, Endpoint] = {
    "generateContent": generate_content,
    "streamGenerateContent": stream_generate_content,
    "batchEmbedContents": batch_embed_contents,
    "embedContent": embed_content,
    "predict": predict,
}


def _match(route: str) -> tuple[Endpoint, dict[str, Any]] | None:
    found = _ROUTE_RE.match(route)
    if found is None or found["method"] not in _METHODS:
        return None
    return _METHODS[found["method"]], {"model": found["model"]}


def _scenario_error(kind: str, model: Any, ctx: Context) -> Reply:
    status, message = _ERRORS[kind]
    reply = json_reply(error_body(status, message.format(model=model)), status)
    if kind in ("rate_limit", "flaky"):
        reply.headers["retry-after"] = "1"
    return reply


def _request_error(status: int, message: str, ctx: Context) -> Reply:
    return json_reply(error_body(status, message), status)


def _headers(request_id: str, delay_ms: float) -> dict[str, str]:
    return {"x-request-id": request_id, "server-timing": f"gfet4t7; dur={int(delay_ms)}"}


PROTOCOL = WireProtocol(
    name="gemini",
    routes={},
    models=("gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"),
    scenario_error=_scenario_error,
    request_error=_request_error,
    headers=_headers,
    match=_match,
)
