"""The HTTP client the LLM judge talks through: one chat call, made robustly.

``JudgeClient(settings).complete(system, messages)`` sends one chat request to an
OpenAI-compatible ``/chat/completions`` endpoint (``api: openai``, the default: OpenAI,
Azure's OpenAI-compatible routes, vLLM, Ollama, LiteLLM, OpenRouter, ...) or to Anthropic's
``/v1/messages`` (``api: anthropic``), and returns the reply text, the model that answered
and the token usage. It is built on ``httpx2`` (the HTTP library under the ``openai`` and
``anthropic`` SDKs), not on the SDKs themselves, so the judge's calls never go through
llmtap's SDK instrumentation; the OpenTelemetry suppression keys are also set around each
request, so no HTTP-level instrumentation records them either.

What it does for each call:

* temperature 0 (configurable) and the configured model;
* a per-attempt timeout (``timeout_s``) that bounds the whole request, and an overall
  deadline for the call with its retries (``deadline_s``);
* retries on 408/409/429/5xx, connection failures and timeouts, up to ``max_retries``
  times, waiting ``Retry-After``/``retry-after-ms`` when the server sends one (up to
  ``max_retry_after_s``) and otherwise an exponential backoff with full jitter
  (a random wait between 0 and ``min(backoff_max_s, backoff_base_s * 2**attempt)``);
  other 4xx answers are not retried (the request itself is wrong);
* a circuit breaker shared by every call of the client: after ``breaker_threshold``
  consecutive failed attempts that look like the judge being down (5xx, connection
  failures, timeouts), it opens and calls fail at once with ``circuit_open``; after
  ``breaker_cooldown_s`` one probe call is let through (half-open): success closes the
  circuit, failure opens it for another cool-down.

Failures raise :class:`JudgeError` with a low-cardinality ``error_type``: ``timeout``,
``rate_limited``, ``server_error``, ``connection_error``, ``client_error``,
``invalid_response``, ``circuit_open``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry import context as otel_context

from llmtap.export.retry_after import parse_retry_after

__all__ = [
    "CircuitBreaker",
    "JudgeClient",
    "JudgeError",
    "JudgeResponse",
    "JudgeSettings",
]

TIMEOUT = "timeout"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
CONNECTION_ERROR = "connection_error"
CLIENT_ERROR = "client_error"
INVALID_RESPONSE = "invalid_response"
CIRCUIT_OPEN = "circuit_open"

_RETRY_STATUSES = frozenset({408, 409, 429})
# Failures that say "the judge is down" and move the circuit breaker.
_BREAKER_ERRORS = frozenset({TIMEOUT, SERVER_ERROR, CONNECTION_ERROR})

_DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}
_DEFAULT_KEY_ENVS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
ANTHROPIC_VERSION = "2023-06-01"


# Settings -----------------------------------------------------------------------------------------


@dataclass
class JudgeSettings:
    """The judge model and how to call it: ``judge.model`` in ``llmtap.yaml``.

    ``name``: the model. ``base_url``: the API root as the SDKs take it (OpenAI style with
    ``/v1``: ``http://host:8000/v1``; Anthropic without: ``https://api.anthropic.com``).
    ``api_key``, else the variable ``api_key_env`` (default ``OPENAI_API_KEY`` /
    ``ANTHROPIC_API_KEY``); none is fine for local servers. ``headers`` are sent on every
    request (``api-key`` for Azure, say). ``provider`` is the ``gen_ai.provider.name`` used
    to price the judge's tokens (default: ``api``). ``json_mode`` asks OpenAI-compatible
    endpoints for ``response_format: json_object`` (dropped automatically, once, if the
    server rejects it). ``max_tokens_param`` is ``max_tokens`` or ``max_completion_tokens``
    (newer OpenAI models want the latter); ``temperature: null`` leaves it out (reasoning
    models accept no other value than their default).
    """

    name: str = ""
    """the judge model, as the API names it (required)"""
    base_url: str | None = None
    """the API root as the SDKs take it: with /v1 for OpenAI-style servers, without for Anthropic
    (unset: the api's public endpoint)"""
    api: Literal["openai", "anthropic"] = "openai"
    """the wire protocol: openai (/chat/completions, also Azure, vLLM, Ollama, LiteLLM, OpenRouter)
    or anthropic (/v1/messages)"""
    api_key: str | None = field(default=None, repr=False)
    """the API key (never printed); unset: read from api_key_env"""
    api_key_env: str | None = None
    """the environment variable holding the key (unset: OPENAI_API_KEY or ANTHROPIC_API_KEY, by
    api); no key is fine for local servers"""
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    """HTTP headers sent on every request (api-key for Azure, say); never printed"""
    provider: str | None = None
    """the gen_ai.provider.name the judge's tokens are priced under (unset: api)"""
    temperature: float | None = 0.0
    """sampling temperature; null leaves it out (reasoning models accept only their default)"""
    max_tokens: int = 1024
    """the longest reply, in tokens"""
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """the request field that carries max_tokens (newer OpenAI models want max_completion_tokens)"""
    json_mode: bool = True
    """ask OpenAI-style servers for a JSON object reply (dropped, once, if the server rejects it)"""
    timeout_s: float = 30.0
    """one attempt at most, the whole request, in seconds"""
    deadline_s: float = 120.0
    """one call at most, retries and waits included, in seconds"""
    max_retries: int = 3
    """retries after the first attempt (0: none), on 408, 409, 429, 5xx, connection failures and
    timeouts"""
    backoff_base_s: float = 0.5
    """the first retry's backoff ceiling in seconds, doubled each retry (waits are random below)"""
    backoff_max_s: float = 20.0
    """the highest backoff ceiling, in seconds"""
    max_retry_after_s: float = 60.0
    """the longest Retry-After honoured, in seconds; a longer one is ignored for the backoff"""
    breaker_threshold: int = 5
    """consecutive failed attempts (5xx, connection failures, timeouts) that open the circuit, after
    which calls fail at once"""
    breaker_cooldown_s: float = 30.0
    """how long an open circuit stays open before one probe call is let through, in seconds"""

    def __post_init__(self) -> None:
        errors: list[str] = []
        if not isinstance(self.name, str) or not self.name.strip():
            errors.append("name: the judge model name is required")
        if self.api not in ("openai", "anthropic"):
            errors.append(f"api: expected openai or anthropic, got {self.api!r}")
        if self.base_url is not None and not str(self.base_url).startswith(("http://", "https://")):
            errors.append(f"base_url: expected an http:// or https:// URL, got {self.base_url!r}")
        positive = ("timeout_s", "deadline_s", "backoff_base_s", "backoff_max_s")
        for key in positive:
            value = getattr(self, key)
            if not _number(value) or value <= 0:
                errors.append(f"{key}: expected a number of seconds above 0, got {value!r}")
        for key in ("max_retry_after_s", "breaker_cooldown_s"):
            value = getattr(self, key)
            if not _number(value) or value < 0:
                errors.append(f"{key}: expected a number of seconds, 0 or more, got {value!r}")
        for key, low in (("max_retries", 0), ("breaker_threshold", 1), ("max_tokens", 1)):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                errors.append(f"{key}: expected a whole number of {low} or more, got {value!r}")
        if self.temperature is not None and (not _number(self.temperature) or self.temperature < 0):
            errors.append(f"temperature: expected a number of 0 or more, got {self.temperature!r}")
        if errors:
            raise ValueError("\n".join(errors))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "judge.model") -> JudgeSettings:
        """Build from a raw config mapping, by the config builder; errors name
        ``where.<key>``, one line each. Values are taken as written (``__post_init__``
        checks them); unknown keys are reported alone."""
        from llmtap.configuration.builder import structure

        settings, problems = structure(_settings_dialect(), cls, raw, where)
        if problems:
            raise ValueError("\n".join(f"{path}: {message}" for path, message in problems))
        return settings

    @property
    def url(self) -> str:
        base = (self.base_url or _DEFAULT_BASE_URLS[self.api]).rstrip("/")
        if self.api == "anthropic":
            return base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        return base + "/chat/completions"

    def resolved_api_key(self, env: Mapping[str, str] | None = None) -> str | None:
        if self.api_key:
            return self.api_key
        env = os.environ if env is None else env
        return env.get(self.api_key_env or _DEFAULT_KEY_ENVS[self.api]) or None


@functools.cache
def _settings_dialect() -> Any:
    """How :meth:`JudgeSettings.from_mapping` words its problems (built on first use, so
    that importing the client does not import the config builder)."""
    from llmtap.configuration.builder import Dialect, Invalid

    class SettingsDialect(Dialect):
        null_is_empty = False
        unknown_keys_alone = True
        values_as_written = True

        def not_a_mapping(self, data: Any, names: Sequence[str]) -> Invalid:
            return Invalid(f"expected a mapping with at least name, got {data!r}")

        def unknown_key(self, key: str, names: Sequence[str]) -> Invalid:
            return Invalid(f"unknown setting; expected one of {', '.join(sorted(names))}", key)

        def unknown_keys(self, data: Mapping, names: Sequence[str]) -> list[Invalid]:
            unknown = sorted(str(key) for key in data if key not in names)
            return [self.unknown_key(key, names) for key in unknown]

    return SettingsDialect()


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Results and errors -------------------------------------------------------------------------------


@dataclass
class JudgeResponse:
    text: str
    model: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    response_id: str | None = None
    finish_reason: str | None = None
    attempts: int = 1
    duration_s: float = 0.0


class JudgeError(Exception):
    """A judge call that did not produce a reply; ``error_type`` is low-cardinality."""

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        status: int | None = None,
        attempts: int = 0,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status
        self.attempts = attempts
        self.retry_after_s = retry_after_s


# Circuit breaker ----------------------------------------------------------------------------------

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Closed → (``threshold`` consecutive failures) → open → (``cooldown_s``) → half-open:
    one probe call at a time; its success closes the circuit, its failure re-opens it.

    Runs on one event loop (no locks needed: there is no ``await`` between a check and the
    state change it makes). ``on_change(old, new)`` is called on every transition.
    """

    def __init__(
        self,
        threshold: int = 5,
        cooldown_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.threshold = max(1, threshold)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.on_change = on_change
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened_count = 0

    @property
    def state(self) -> str:
        if self._state == OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            return HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in(self) -> float:
        """Seconds until the circuit lets a probe through (0 when it does now)."""
        if self._state != OPEN:
            return 0.0
        return max(0.0, self.cooldown_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call (attempt) go out now? In half-open, only one probe at a time."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self._probing:
            self._set(HALF_OPEN)
            self._probing = True
            return True
        return False

    def is_probe(self) -> bool:
        return self._probing

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        if self._state != CLOSED:
            self._set(CLOSED)

    def failure(self) -> None:
        self._failures += 1
        if self._probing or (self._state == CLOSED and self._failures >= self.threshold):
            self._probing = False
            self._opened_at = self._clock()
            self.opened_count += 1
            self._set(OPEN)

    def release(self) -> None:
        """A probe that ended neither in success nor in a judge-down failure (a 4xx, say):
        let the next call probe."""
        self._probing = False

    def _set(self, new: str) -> None:
        old = self._state
        self._state = new
        if old != new and self.on_change is not None:
            with contextlib.suppress(Exception):  # a metrics hook must not break judging
                self.on_change(old, new)


# The client ---------------------------------------------------------------------------------------


Message = Mapping[str, str]


#: connections per pool, and pools per client (see ``JudgeClient._pick``)
POOL_SIZE = 4
MAX_POOLS = 64


class JudgeClient:
    """Chat calls to the judge model, with timeouts, retries and a circuit breaker.

    Create one per judge endpoint and share it among evaluators (they then share its
    connection pool and breaker). Use it on one event loop; ``await aclose()`` at the end
    (or ``async with``). ``transport`` (an ``httpx2`` async transport) is for tests;
    ``sleep``/``rng`` let tests observe the backoff.
    """

    def __init__(
        self,
        settings: JudgeSettings,
        *,
        transport: Any = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        on_breaker_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.breaker = CircuitBreaker(
            settings.breaker_threshold,
            settings.breaker_cooldown_s,
            clock=clock,
            on_change=on_breaker_change,
        )
        self._transport = transport
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._http: list[Any] = []
        self._in_flight: list[int] = []
        self._json_mode = settings.json_mode

    @property
    def model(self) -> str:
        return self.settings.name

    @property
    def provider(self) -> str:
        return self.settings.provider or self.settings.api

    @property
    def api(self) -> str:
        return self.settings.api

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._http, self._in_flight = self._http, [], []
        for http in clients:
            await http.aclose()

    def _pick(self) -> int:
        """The index of the connection pool for the next request: the least busy one, or a
        new one when all are full. ``httpx`` scans every connection of a pool on each
        request, so one pool of hundreds of connections costs milliseconds per call; pools
        of :data:`POOL_SIZE` keep that scan short at any concurrency."""
        if self._in_flight:
            index = min(range(len(self._in_flight)), key=self._in_flight.__getitem__)
            if self._in_flight[index] < POOL_SIZE or len(self._http) >= MAX_POOLS:
                return index
        self._http.append(self._new_client())
        self._in_flight.append(0)
        return len(self._http) - 1

    def _new_client(self) -> Any:
        import httpx2

        return httpx2.AsyncClient(
            timeout=httpx2.Timeout(self.settings.timeout_s),
            transport=self._transport,
            limits=httpx2.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
            follow_redirects=False,
        )

    # -- one call with retries ----------------------------------------------------------

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        system: str | None = None,
        model: str | None = None,
        json_mode: bool = True,
    ) -> JudgeResponse:
        """One chat completion: ``messages`` are ``{"role": "user"|"assistant", "content":
        str}``. Raises :class:`JudgeError`."""
        s = self.settings
        started = self._clock()
        deadline = started + s.deadline_s
        attempt = 0
        last: JudgeError | None = None
        while True:
            if not self.breaker.allow():
                wait = self.breaker.retry_in()
                if last is not None:
                    raise JudgeError(
                        CIRCUIT_OPEN,
                        f"the judge circuit opened while retrying ({last}); "
                        f"next probe in {wait:.1f}s",
                        attempts=attempt,
                    )
                raise JudgeError(
                    CIRCUIT_OPEN,
                    f"the judge at {s.url} is failing; calls are paused for {wait:.1f}s more",
                )
            probe = self.breaker.is_probe()
            attempt += 1
            timeout = min(s.timeout_s, max(deadline - self._clock(), 0.001))
            try:
                response = await self._attempt(
                    messages, system, model or s.name, json_mode, timeout
                )
            except JudgeError as exc:
                error = exc
            except BaseException:  # cancelled: a probe must not leave the circuit half-open
                if probe:
                    self.breaker.release()
                raise
            else:
                self.breaker.success()
                response.attempts = attempt
                response.duration_s = self._clock() - started
                return response
            error.attempts = attempt
            if error.error_type in _BREAKER_ERRORS:
                self.breaker.failure()
            elif probe:
                self.breaker.release()
            last = error
            if probe or not _retryable(error) or attempt > s.max_retries:
                if attempt > 1 and _retryable(error):
                    error.args = (f"{error.args[0]} (after {attempt} attempts)",)
                raise error
            delay = self._delay(attempt, error.retry_after_s)
            if self._clock() + delay >= deadline:
                error.args = (
                    f"{error.args[0]} (gave up after {attempt} attempts: the next retry "
                    f"would pass the {s.deadline_s:g}s deadline)",
                )
                raise error
            await self._sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None and retry_after <= s.max_retry_after_s:
            return retry_after
        ceiling = min(s.backoff_max_s, s.backoff_base_s * (2 ** (attempt - 1)))
        return self._rng() * ceiling

    async def _attempt(
        self,
        messages: Sequence[Message],
        system: str | None,
        model: str,
        json_mode: bool,
        timeout: float,
    ) -> JudgeResponse:
        s = self.settings
        use_json = json_mode and self._json_mode and s.api == "openai"
        body = self._body(messages, system, model, use_json)
        try:
            return await self._post(body, model, timeout)
        except JudgeError as exc:
            if use_json and exc.status == 400 and "response_format" in str(exc):
                self._json_mode = False  # this server does not know JSON mode: ask in words
                body = self._body(messages, system, model, False)
                return await self._post(body, model, timeout)
            raise

    def _body(
        self, messages: Sequence[Message], system: str | None, model: str, use_json: bool
    ) -> dict[str, Any]:
        s = self.settings
        chat = [{"role": m["role"], "content": m["content"]} for m in messages]
        body: dict[str, Any] = {"model": model}
        if s.api == "anthropic":
            if system:
                body["system"] = system
            body["messages"] = chat
            body["max_tokens"] = s.max_tokens
        else:
            body["messages"] = ([{"role": "system", "content": system}] if system else []) + chat
            body[s.max_tokens_param] = s.max_tokens
            if use_json:
                body["response_format"] = {"type": "json_object"}
        if s.temperature is not None:
            body["temperature"] = s.temperature
        return body

    def _headers(self) -> dict[str, str]:
        s = self.settings
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = s.resolved_api_key()
        if s.api == "anthropic":
            headers["anthropic-version"] = ANTHROPIC_VERSION
            if key:
                headers["x-api-key"] = key
        elif key:
            headers["authorization"] = f"Bearer {key}"
        headers.update(s.headers or {})
        return headers

    async def _post(self, body: dict[str, Any], model: str, timeout: float) -> JudgeResponse:
        import httpx2

        s = self.settings
        # Never recorded as application traffic, by llmtap or any OTel HTTP instrumentation.
        ctx = otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True)
        ctx = otel_context.set_value(otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, ctx)
        token = otel_context.attach(ctx)
        index = self._pick()
        client = self._http[index]
        self._in_flight[index] += 1
        try:
            response = await asyncio.wait_for(
                client.post(s.url, content=json.dumps(body), headers=self._headers()),
                timeout=timeout,
            )
        except (asyncio.TimeoutError, httpx2.TimeoutException):
            raise JudgeError(TIMEOUT, f"no answer from the judge within {timeout:g}s") from None
        except httpx2.TransportError as exc:
            raise JudgeError(
                CONNECTION_ERROR, f"could not reach the judge at {s.url}: {type(exc).__name__}"
            ) from None
        finally:
            if index < len(self._in_flight) and self._http[index] is client:
                self._in_flight[index] -= 1
            otel_context.detach(token)
        status = response.status_code
        if status >= 400:
            raise _status_error(response)
        try:
            data = response.json()
        except ValueError:
            raise JudgeError(
                INVALID_RESPONSE, f"the judge answered HTTP {status} with a body that is not JSON"
            ) from None
        if s.api == "anthropic":
            return _anthropic_reply(data, model)
        return _openai_reply(data, model)


def _retryable(exc: JudgeError) -> bool:
    return exc.error_type in (TIMEOUT, RATE_LIMITED, SERVER_ERROR, CONNECTION_ERROR) or (
        exc.status in _RETRY_STATUSES
    )


def _status_error(response: Any) -> JudgeError:
    status = response.status_code
    retry_after = parse_retry_after(response.headers)
    detail = _error_detail(response)
    if status == 429:
        kind = RATE_LIMITED
    elif status >= 500:
        kind = SERVER_ERROR
    elif status == 408:
        kind = TIMEOUT
    else:
        kind = CLIENT_ERROR
    message = f"the judge answered HTTP {status}"
    if detail:
        message += f": {detail}"
    return JudgeError(kind, message, status=status, retry_after_s=retry_after)


def _error_detail(response: Any) -> str:
    try:
        data = response.json()
    except Exception:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        return str(message)[:300] if message else ""
    if isinstance(error, str):
        return error[:300]
    return ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _openai_reply(data: Any, model: str) -> JudgeResponse:
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise JudgeError(INVALID_RESPONSE, "the judge's reply has no choices[0].message") from None
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        refusal = message.get("refusal") if isinstance(message, dict) else None
        raise JudgeError(
            INVALID_RESPONSE,
            "the judge refused to answer" if refusal else "the judge's reply has no text",
        )
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
    return JudgeResponse(
        text=content,
        model=data.get("model") if isinstance(data.get("model"), str) else model,
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        cache_read_tokens=cached,
        response_id=data.get("id") if isinstance(data.get("id"), str) else None,
        finish_reason=choice.get("finish_reason"),
    )


def _anthropic_reply(data: Any, model: str) -> JudgeResponse:
    blocks = data.get("content") if isinstance(data, dict) else None
    if not isinstance(blocks, list):
        raise JudgeError(INVALID_RESPONSE, "the judge's reply has no content blocks")
    text = "".join(
        b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"
    )
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    uncached = _int(usage.get("input_tokens"))
    read = _int(usage.get("cache_read_input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    total_in = None if uncached is None else uncached + (read or 0) + (written or 0)
    return JudgeResponse(
        text=text,
        model=data.get("model") if isinstance(data.get("model"), str) else model,
        input_tokens=total_in,
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_tokens=read,
        cache_creation_tokens=written,
        response_id=data.get("id") if isinstance(data.get("id"), str) else None,
        finish_reason=data.get("stop_reason"),
    )
