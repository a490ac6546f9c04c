"""Scriptable scenarios (errors, broken streams, delays) and provider error bodies.

A scenario is chosen by the request header ``x-devserver-scenario: NAME[:ARG]`` or,
when no header is sent, by the model name ``devserver-NAME[:ARG]``. Names:

- ``rate_limit[:MS]`` 429 with ``retry-after`` (and ``retry-after-ms`` when MS given)
- ``server_error`` 500, ``bad_request`` 400, ``auth`` 401, ``permission`` 403,
  ``not_found`` 404, ``overloaded`` (Anthropic 529, OpenAI 503)
- ``flaky[:N]`` 429 (``retry-after-ms: 10``) while ``x-stainless-retry-count`` < N (default 1)
- ``broken_stream[:N]`` send N events (default 3) then cut the connection;
  non-streaming requests get the connection dropped with no response
- ``stream_error[:N]`` after N events (default 3) send the provider's in-stream error event
- ``slow:MS`` delay the response; ``slow_first_chunk:MS`` delay the first SSE event
  (non-streaming: the response)
- ``cache_write`` Anthropic: report cached prefix as cache creation instead of cache read
- ``reply:TEXT`` OpenAI chat completions (``/v1/chat/completions``, the route Ollama and
  vLLM serve too): the assistant's message is TEXT as given (a judge's JSON verdict, say)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .reply import Reply, json_reply

SCENARIO_HEADER = "x-devserver-scenario"
MODEL_PREFIX = "devserver-"

ERROR_SCENARIOS = frozenset(
    {"rate_limit", "server_error", "bad_request", "auth", "permission", "not_found", "overloaded"}
)
SCENARIOS = ERROR_SCENARIOS | {
    "flaky",
    "broken_stream",
    "stream_error",
    "slow",
    "slow_first_chunk",
    "cache_write",
    "reply",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    arg: str | None = None

    def number(self, default: float) -> float:
        try:
            return float(self.arg) if self.arg else default
        except ValueError:
            return default


@dataclass(frozen=True)
class Context:
    """Per-request facts handed to the endpoint emulations."""

    request_id: str
    created: int
    scenario: Scenario | None = None

    def is_(self, name: str) -> bool:
        return self.scenario is not None and self.scenario.name == name


def parse_scenario(headers: Mapping[str, str], model: Any) -> Scenario | None:
    """Raises ValueError for an unknown scenario named in the header."""
    raw = headers.get(SCENARIO_HEADER, "").strip()
    from_header = bool(raw)
    if not raw and isinstance(model, str) and model.startswith(MODEL_PREFIX):
        raw = model[len(MODEL_PREFIX) :]
    if not raw:
        return None
    name, _, arg = raw.partition(":")
    name = name.strip().lower().replace("-", "_")
    if name not in SCENARIOS:
        if from_header:
            raise ValueError(
                f"unknown devserver scenario {raw!r}; known: {', '.join(sorted(SCENARIOS))}"
            )
        return None
    return Scenario(name, arg.strip() or None)


def error_kind(scenario: Scenario | None, headers: Mapping[str, str]) -> str | None:
    """The error to answer with instead of content, if the scenario asks for one."""
    if scenario is None:
        return None
    if scenario.name in ERROR_SCENARIOS:
        return scenario.name
    if scenario.name == "flaky":
        attempt = Scenario("retry", headers.get("x-stainless-retry-count")).number(0)
        return "flaky" if attempt < scenario.number(1) else None
    return None


_OPENAI_ERRORS: dict[str, tuple[int, str, str | None, str | None, str]] = {
    "rate_limit": (
        429,
        "requests",
        None,
        "rate_limit_exceeded",
        "Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, Requested 1.",
    ),
    "flaky": (
        429,
        "requests",
        None,
        "rate_limit_exceeded",
        "Rate limit reached for {model} (flaky scenario).",
    ),
    "server_error": (
        500,
        "server_error",
        None,
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "bad_request": (
        400,
        "invalid_request_error",
        "messages",
        None,
        "Invalid value for 'messages': rejected by the devserver.",
    ),
    "auth": (
        401,
        "invalid_request_error",
        None,
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key in your account settings.",
    ),
    "permission": (
        403,
        "invalid_request_error",
        None,
        "unsupported_country_region_territory",
        "Access denied.",
    ),
    "not_found": (
        404,
        "invalid_request_error",
        None,
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    "overloaded": (
        503,
        "server_error",
        None,
        None,
        "The engine is currently overloaded, please try again later.",
    ),
}

_ANTHROPIC_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute.",
    ),
    "flaky": (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit (flaky scenario).",
    ),
    "server_error": (500, "api_error", "Internal server error"),
    "bad_request": (400, "invalid_request_error", "messages: rejected by the devserver"),
    "auth": (401, "authentication_error", "invalid x-api-key"),
    "permission": (
        403,
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    "not_found": (404, "not_found_error", "model: {model}"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
}


def openai_error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def anthropic_error_body(type_: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": type_, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def openai_error(kind: str, model: Any, scenario: Scenario | None = None) -> Reply:
    status, type_, param, code, message = _OPENAI_ERRORS[kind]
    body = openai_error_body(message.format(model=model), type_, param, code)
    return _with_retry_headers(json_reply(body, status), kind, scenario)


def anthropic_error(kind: str, model: Any, ctx: Context) -> Reply:
    status, type_, message = _ANTHROPIC_ERRORS[kind]
    body = anthropic_error_body(type_, message.format(model=model), ctx.request_id)
    return _with_retry_headers(json_reply(body, status), kind, ctx.scenario)


def _with_retry_headers(reply: Reply, kind: str, scenario: Scenario | None) -> Reply:
    if kind == "flaky":
        reply.headers.update({"retry-after": "1", "retry-after-ms": "10"})
    elif kind == "rate_limit":
        reply.headers["retry-after"] = "1"
        if scenario is not None and scenario.arg:
            ms = scenario.number(1000)
            reply.headers["retry-after"] = str(max(1, round(ms / 1000)))
            reply.headers["retry-after-ms"] = str(int(ms))
    return reply
