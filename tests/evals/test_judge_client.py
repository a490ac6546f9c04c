"""The judge's HTTP client against a scripted loopback server: request shape, retries with
backoff and Retry-After, timeouts, dropped connections, the circuit breaker, and the
guarantee that judge calls are never traced as application traffic."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import httpx2
import pytest
from opentelemetry import context as otel_context

from llmtap.evals.base import EvalInput
from llmtap.evals.judge_client import CircuitBreaker, JudgeError, JudgeSettings
from llmtap.evals.llm_judge import LLMJudge
from llmtap.evals.rubrics import get_rubric
from llmtap.export.retry_after import parse_retry_after

from .conftest import JUDGE_MODEL

ASK = [{"role": "user", "content": "Grade this. Reply in JSON."}]


# request shape ------------------------------------------------------------------------------------


async def test_openai_request_shape_and_reply(judge, make_client) -> None:
    judge.push_verdict(score=True, label="pass", explanation="fine")
    client = make_client()
    reply = await client.complete(ASK, system="You are a judge.")
    assert reply.text == '{"score": true, "label": "pass", "explanation": "fine"}'
    assert reply.model == JUDGE_MODEL
    assert (reply.input_tokens, reply.output_tokens) == (120, 30)
    assert reply.attempts == 1
    (req,) = judge.requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer test-key"
    assert req.body["model"] == JUDGE_MODEL
    assert req.body["temperature"] == 0
    assert req.body["response_format"] == {"type": "json_object"}
    assert req.body["max_tokens"] == 1024
    assert req.body["messages"][0] == {"role": "system", "content": "You are a judge."}
    assert req.body["messages"][1] == ASK[0]


async def test_anthropic_messages_request_shape(judge, make_client) -> None:
    judge.push_verdict(score=0.5, label="x", explanation="y", model="claude-judge-1")
    client = make_client(api="anthropic", name="claude-judge")
    reply = await client.complete(ASK, system="You are a judge.")
    assert reply.model == "claude-judge-1"
    assert (reply.input_tokens, reply.output_tokens) == (120, 30)
    (req,) = judge.requests
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == "test-key"
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in req.headers
    assert req.body["system"] == "You are a judge."
    assert req.body["messages"] == ASK
    assert req.body["temperature"] == 0
    assert req.body["max_tokens"] == 1024
    assert "response_format" not in req.body


async def test_settings_options_reach_the_request(judge, make_client) -> None:
    client = make_client(
        temperature=None,
        max_tokens_param="max_completion_tokens",
        max_tokens=64,
        json_mode=False,
        headers={"api-key": "azure-style"},
    )
    await client.complete(ASK, model="other-model")
    (req,) = judge.requests
    assert "temperature" not in req.body
    assert "response_format" not in req.body
    assert req.body["max_completion_tokens"] == 64
    assert req.body["model"] == "other-model"
    assert req.headers["api-key"] == "azure-style"


async def test_json_mode_dropped_once_when_the_server_rejects_it(judge, make_client) -> None:
    judge.push_status(400, message="Unknown parameter: response_format")
    client = make_client()
    await client.complete(ASK)
    await client.complete(ASK)
    first, second, third = judge.requests
    assert first.body["response_format"] == {"type": "json_object"}
    assert "response_format" not in second.body
    assert "response_format" not in third.body  # remembered


def test_api_key_from_environment_and_not_in_repr(monkeypatch) -> None:
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-from-env")
    settings = JudgeSettings(name="m", api_key_env="MY_JUDGE_KEY")
    assert settings.resolved_api_key() == "sk-from-env"
    secret = JudgeSettings(name="m", api_key="sk-literal", headers={"api-key": "h"})
    assert "sk-literal" not in repr(secret) and "'h'" not in repr(secret)
    assert JudgeSettings(name="m").url == "https://api.openai.com/v1/chat/completions"
    assert JudgeSettings(name="m", api="anthropic").url == "https://api.anthropic.com/v1/messages"


# retries ------------------------------------------------------------------------------------------


async def test_429_then_success_honours_retry_after_seconds(judge, make_client) -> None:
    judge.push_status(429, retry_after="1")
    judge.push_verdict(score=True, explanation="ok")
    client = make_client()
    started = time.monotonic()
    reply = await client.complete(ASK)
    elapsed = time.monotonic() - started
    assert reply.attempts == 2
    first, second = judge.requests
    assert second.at - first.at >= 0.95
    assert elapsed < 2.5


async def test_retry_after_ms_is_preferred_and_honoured(judge, make_client) -> None:
    judge.push_status(503, retry_after="30", retry_after_ms=300)
    judge.push_verdict(score=True, explanation="ok")
    client = make_client()
    reply = await client.complete(ASK)
    assert reply.attempts == 2
    first, second = judge.requests
    assert 0.28 <= second.at - first.at < 1.5


async def test_retry_after_beyond_the_cap_falls_back_to_backoff(judge, make_client) -> None:
    judge.push_status(429, retry_after="3600")
    client = make_client(max_retry_after_s=5)
    started = time.monotonic()
    await client.complete(ASK)
    assert time.monotonic() - started < 1.0


async def test_500_until_retries_run_out(judge, make_client) -> None:
    for _ in range(3):
        judge.push_status(500)
    client = make_client(max_retries=2)
    with pytest.raises(JudgeError) as info:
        await client.complete(ASK)
    assert info.value.error_type == "server_error"
    assert info.value.status == 500
    assert info.value.attempts == 3
    assert "after 3 attempts" in str(info.value)
    assert len(judge.requests) == 3


async def test_backoff_is_exponential_with_full_jitter(judge, make_client) -> None:
    for _ in range(4):
        judge.push_status(502)
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    client = make_client(
        max_retries=4,
        backoff_base_s=1.0,
        backoff_max_s=3.0,
        client_kw={"sleep": record, "rng": lambda: 0.5},
    )
    await client.complete(ASK)
    # ceilings 1, 2, 4->3 (capped), 8->3; a random fraction of each (0.5 here)
    assert waits == [0.5, 1.0, 1.5, 1.5]


async def test_client_errors_are_not_retried(judge, make_client) -> None:
    judge.push_status(401, message="bad key")
    client = make_client()
    with pytest.raises(JudgeError) as info:
        await client.complete(ASK)
    assert info.value.error_type == "client_error"
    assert "401" in str(info.value) and "bad key" in str(info.value)
    assert len(judge.requests) == 1


async def test_timeout(judge, make_client) -> None:
    judge.push_verdict(score=True, explanation="late", delay=2.0)
    client = make_client(timeout_s=0.3, max_retries=0)
    started = time.monotonic()
    with pytest.raises(JudgeError) as info:
        await client.complete(ASK)
    assert info.value.error_type == "timeout"
    assert time.monotonic() - started < 1.5


async def test_slow_reply_then_retry_succeeds(judge, make_client) -> None:
    judge.push_verdict(score=True, explanation="late", delay=1.0)
    judge.push_verdict(score=False, explanation="on time")
    client = make_client(timeout_s=0.3, max_retries=1)
    reply = await client.complete(ASK)
    assert '"on time"' in reply.text
    assert reply.attempts == 2


async def test_dropped_connection_is_retried(judge, make_client) -> None:
    judge.push_close()
    judge.push_verdict(score=True, explanation="ok")
    client = make_client()
    reply = await client.complete(ASK)
    assert reply.attempts == 2


async def test_connection_refused(make_client) -> None:
    client = make_client(base_url="http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(JudgeError) as info:
        await client.complete(ASK)
    assert info.value.error_type == "connection_error"


async def test_body_that_is_not_json(judge, make_client) -> None:
    judge.push_raw(200, b"<html>gateway</html>")
    client = make_client()
    with pytest.raises(JudgeError) as info:
        await client.complete(ASK)
    assert info.value.error_type == "invalid_response"


async def test_deadline_stops_retries(judge, make_client) -> None:
    judge.push_status(429, retry_after="2")
    client = make_client(deadline_s=1.0)
    started = time.monotonic()
    with pytest.raises(JudgeError) as info:
        await client.complete(ASK)
    assert info.value.error_type == "rate_limited"
    assert "deadline" in str(info.value)
    assert time.monotonic() - started < 0.5  # does not sleep into a retry it cannot make


def test_parse_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    now = time.time()
    date = email.utils.formatdate(now + 10, usegmt=True)
    assert 8 <= parse_retry_after({"retry-after": date}, now=now) <= 11


# circuit breaker ----------------------------------------------------------------------------------


async def test_breaker_opens_fails_fast_then_half_opens(judge, make_client) -> None:
    judge.default = judge.default.__class__(status=500)
    changes: list[tuple[str, str]] = []
    client = make_client(
        max_retries=0,
        breaker_threshold=3,
        breaker_cooldown_s=1.5,
        client_kw={"on_breaker_change": lambda old, new: changes.append((old, new))},
    )
    for _ in range(3):
        with pytest.raises(JudgeError) as info:
            await client.complete(ASK)
        assert info.value.error_type == "server_error"
    assert client.breaker.state == "open"
    assert len(judge.requests) == 3

    judge_ = LLMJudge("answer_relevance", get_rubric("answer_relevance"), client)
    started = time.monotonic()
    verdict = await judge_.evaluate(EvalInput(input_text="q", output_text="a"))
    assert verdict.error_type == "circuit_open"
    assert verdict.score is None and verdict.passed is None
    assert time.monotonic() - started < 0.5
    assert len(judge.requests) == 3  # nothing sent while open

    await asyncio.sleep(1.6)
    assert client.breaker.state == "half_open"
    # the probe fails: open again at once, after a single request
    with pytest.raises(JudgeError) as info:
        await client.complete(ASK)
    assert info.value.error_type == "server_error"
    assert len(judge.requests) == 4
    assert client.breaker.state == "open"

    await asyncio.sleep(1.6)
    judge.default = judge.default.__class__(text='{"score": 0.9, "explanation": "ok"}')
    verdict = await judge_.evaluate(EvalInput(input_text="q", output_text="a"))
    assert verdict.error_type is None and verdict.score == 0.9
    assert client.breaker.state == "closed"
    assert changes == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


async def test_breaker_opening_stops_a_call_that_is_retrying(judge, make_client) -> None:
    judge.default = judge.default.__class__(status=503)
    client = make_client(max_retries=10, breaker_threshold=3, breaker_cooldown_s=30)
    with pytest.raises(JudgeError) as info:
        await client.complete(ASK)
    assert info.value.error_type == "circuit_open"
    assert len(judge.requests) == 3


async def test_rate_limits_and_client_errors_do_not_open_the_breaker(judge, make_client) -> None:
    client = make_client(max_retries=0, breaker_threshold=2)
    for status in (429, 400, 429, 404):
        judge.push_status(status)
        with pytest.raises(JudgeError):
            await client.complete(ASK)
    assert client.breaker.state == "closed"


def test_breaker_lets_one_probe_through_when_half_open() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown_s=10, clock=lambda: now[0])
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    assert breaker.retry_in() == 10
    now[0] = 10.0
    assert breaker.state == "half_open"
    assert breaker.allow() and breaker.is_probe()
    assert not breaker.allow()  # a second caller while the probe is out
    breaker.release()  # the probe ended without telling (a 4xx): the next one may probe
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.consecutive_failures == 0


async def test_cancelled_probe_does_not_wedge_the_breaker(judge, make_client) -> None:
    judge.default = judge.default.__class__(status=500)
    client = make_client(max_retries=0, breaker_threshold=1, breaker_cooldown_s=0.1)
    with pytest.raises(JudgeError):
        await client.complete(ASK)
    await asyncio.sleep(0.15)
    judge.push_verdict(score=True, explanation="slow", delay=2.0)
    task = asyncio.create_task(client.complete(ASK))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    judge.default = judge.default.__class__(text='{"score": true, "explanation": "ok"}')
    reply = await client.complete(ASK)
    assert reply.attempts == 1
    assert client.breaker.state == "closed"


# never traced as application traffic --------------------------------------------------------------


class _RecordingTransport(httpx2.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.suppressed: list[Any] = []

    async def handle_async_request(self, request: Any) -> Any:
        self.suppressed.append(
            (
                otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY),
                otel_context.get_value(otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY),
            )
        )
        return await super().handle_async_request(request)


async def test_suppression_keys_are_set_during_the_request_only(judge, make_client) -> None:
    transport = _RecordingTransport()
    client = make_client(client_kw={"transport": transport})
    await client.complete(ASK)
    assert transport.suppressed == [(True, True)]
    assert otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY) is None


async def test_no_llmtap_span_for_judge_calls_with_openai_instrumented(
    judge, make_client, instrument_openai, span_exporter, devserver
) -> None:
    import openai

    instrument_openai()
    # the application's own call is traced ...
    app = openai.AsyncOpenAI(base_url=devserver.openai_base_url, api_key="k", max_retries=0)
    await app.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    await app.close()
    app_spans = [s.name for s in span_exporter.get_finished_spans()]
    assert app_spans == ["chat gpt-4o-mini"]
    # ... the judge's are not
    judge.push_verdict(score=0.8, label="relevant", explanation="ok")
    client = make_client(name="judge-model")
    evaluator = LLMJudge("answer_relevance", get_rubric("answer_relevance"), client)
    verdict = await evaluator.evaluate(EvalInput(input_text="q", output_text="a"))
    assert verdict.error_type is None
    assert len(judge.requests) == 1
    assert [s.name for s in span_exporter.get_finished_spans()] == app_spans
