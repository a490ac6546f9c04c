from __future__ import annotations

import asyncio
import time

import anthropic
import openai
import pytest

from llmtap.devserver import SCENARIO_HEADER
from support.sdk_releases import (
    ANTHROPIC_MID_STREAM_ERROR,
    OPENAI_MID_STREAM_ERROR,
    OPENAI_MID_STREAM_TIMEOUT,
)

from .conftest import Backend

GPT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-6"
USER = [{"role": "user", "content": "hi"}]


def _scenario(name: str) -> dict[str, str]:
    return {SCENARIO_HEADER: name}


OPENAI_ERRORS = [
    ("rate_limit", openai.RateLimitError, 429, "requests"),
    ("server_error", openai.InternalServerError, 500, "server_error"),
    ("bad_request", openai.BadRequestError, 400, "invalid_request_error"),
    ("auth", openai.AuthenticationError, 401, "invalid_request_error"),
    ("permission", openai.PermissionDeniedError, 403, "invalid_request_error"),
    ("not_found", openai.NotFoundError, 404, "invalid_request_error"),
    ("overloaded", openai.InternalServerError, 503, "server_error"),
]
ANTHROPIC_ERRORS = [
    ("rate_limit", anthropic.RateLimitError, 429, "rate_limit_error"),
    ("server_error", anthropic.InternalServerError, 500, "api_error"),
    ("bad_request", anthropic.BadRequestError, 400, "invalid_request_error"),
    ("auth", anthropic.AuthenticationError, 401, "authentication_error"),
    ("permission", anthropic.PermissionDeniedError, 403, "permission_error"),
    ("not_found", anthropic.NotFoundError, 404, "not_found_error"),
    ("overloaded", anthropic.OverloadedError, 529, "overloaded_error"),
]


@pytest.mark.parametrize(("scenario", "exc", "status", "type_"), OPENAI_ERRORS)
def test_openai_error_scenarios(
    backend: Backend, scenario: str, exc: type, status: int, type_: str
) -> None:
    client = backend.openai(max_retries=0)
    with pytest.raises(exc) as info:
        client.chat.completions.create(model=GPT, messages=USER, extra_headers=_scenario(scenario))
    err = info.value
    assert err.status_code == status
    assert isinstance(err.body, dict) and err.body["type"] == type_ and err.body["message"]
    assert set(err.body) == {"message", "type", "param", "code"}
    assert err.request_id and err.request_id.startswith("req_")
    if scenario == "rate_limit":
        assert err.response.headers["retry-after"] == "1"
        assert err.code == "rate_limit_exceeded"


@pytest.mark.parametrize(("scenario", "exc", "status", "type_"), ANTHROPIC_ERRORS)
def test_anthropic_error_scenarios(
    backend: Backend, scenario: str, exc: type, status: int, type_: str
) -> None:
    client = backend.anthropic(max_retries=0)
    with pytest.raises(exc) as info:
        client.messages.create(
            model=CLAUDE, max_tokens=10, messages=USER, extra_headers=_scenario(scenario)
        )
    err = info.value
    assert err.status_code == status
    assert err.body["type"] == "error" and err.body["error"]["type"] == type_
    assert err.response.headers["request-id"].startswith("req_")
    if scenario == "rate_limit":
        assert err.response.headers["retry-after"] == "1"


def test_model_name_trigger_and_other_endpoints(backend: Backend) -> None:
    client = backend.openai(max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="devserver-rate_limit", input="x")
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="devserver-server_error", input="x")
    with pytest.raises(anthropic.OverloadedError):
        backend.anthropic(max_retries=0).messages.create(
            model="devserver-overloaded", max_tokens=5, messages=USER
        )


def test_unknown_scenario_header_is_bad_request(backend: Backend) -> None:
    with pytest.raises(openai.BadRequestError, match="unknown devserver scenario"):
        backend.openai(max_retries=0).chat.completions.create(
            model=GPT, messages=USER, extra_headers=_scenario("nope")
        )


def test_rate_limit_retry_after_ms_and_flaky_retries(backend: Backend) -> None:
    client = backend.openai(max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model=GPT, messages=USER, extra_headers=_scenario("rate_limit:2500")
        )
    assert info.value.response.headers["retry-after-ms"] == "2500"
    assert info.value.response.headers["retry-after"] == "2"
    retrying = backend.openai(max_retries=2)
    ok = retrying.chat.completions.create(
        model=GPT, messages=USER, extra_headers=_scenario("flaky:2")
    )
    assert ok.choices[0].finish_reason == "stop"
    with pytest.raises(openai.RateLimitError):
        backend.openai(max_retries=1).chat.completions.create(
            model=GPT, messages=USER, extra_headers=_scenario("flaky:2")
        )
    claude = backend.anthropic(max_retries=1)
    message = claude.messages.create(
        model=CLAUDE, max_tokens=50, messages=USER, extra_headers=_scenario("flaky")
    )
    assert message.stop_reason == "end_turn"


def test_openai_broken_stream(backend: Backend) -> None:
    client = backend.openai(max_retries=0)
    received = []
    with pytest.raises(OPENAI_MID_STREAM_ERROR):
        stream = client.chat.completions.create(
            model=GPT, messages=USER, stream=True, extra_headers=_scenario("broken_stream:2")
        )
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(
            model=GPT, messages=USER, extra_headers=_scenario("broken_stream")
        )


def test_openai_responses_broken_stream_async(backend: Backend) -> None:
    async def run() -> int:
        count = 0
        async with backend.async_openai(max_retries=0) as client:
            stream = await client.responses.create(
                model=GPT, input="x", stream=True, extra_headers=_scenario("broken_stream:4")
            )
            with pytest.raises(OPENAI_MID_STREAM_ERROR):
                async for _ in stream:
                    count += 1
        return count

    assert asyncio.run(run()) == 4


def test_anthropic_broken_stream(backend: Backend) -> None:
    client = backend.anthropic(max_retries=0)
    seen = []
    broken = _scenario("broken_stream:3")
    with (
        pytest.raises(ANTHROPIC_MID_STREAM_ERROR),
        client.messages.stream(
            model=CLAUDE, max_tokens=100, messages=USER, extra_headers=broken
        ) as stream,
    ):
        for event in stream:
            seen.append(event.type)
    assert seen[0] == "message_start" and "message_stop" not in seen


def test_openai_stream_error_event(backend: Backend) -> None:
    client = backend.openai(max_retries=0)
    stream = client.chat.completions.create(
        model=GPT, messages=USER, stream=True, extra_headers=_scenario("stream_error:2")
    )
    with pytest.raises(openai.APIError, match="server had an error") as info:
        list(stream)
    assert not isinstance(info.value, openai.APIStatusError)
    events = list(
        client.responses.create(
            model=GPT, input="x", stream=True, extra_headers=_scenario("stream_error:3")
        )
    )
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1].response.status == "failed"


def test_anthropic_stream_error_event(backend: Backend) -> None:
    client = backend.anthropic(max_retries=0)
    failing = _scenario("stream_error")
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(
            model=CLAUDE, max_tokens=100, messages=USER, extra_headers=failing
        ) as stream,
    ):
        stream.until_done()
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_slow_first_chunk(backend: Backend) -> None:
    client = backend.openai(max_retries=0)
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=GPT, messages=USER, stream=True, extra_headers=_scenario("slow_first_chunk:150")
    )
    first = next(iter(stream))
    assert time.perf_counter() - started >= 0.15
    assert first.choices[0].delta.role == "assistant"
    stream.close()


def test_slow_first_chunk_times_out_on_socket(devserver: object) -> None:
    from llmtap.devserver import DevServer

    assert isinstance(devserver, DevServer)
    client = openai.OpenAI(
        base_url=devserver.openai_base_url, api_key="x", max_retries=0, timeout=0.2
    )
    with pytest.raises(OPENAI_MID_STREAM_TIMEOUT):
        stream = client.chat.completions.create(
            model=GPT, messages=USER, stream=True, extra_headers=_scenario("slow_first_chunk:600")
        )
        list(stream)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model=GPT, messages=USER, extra_headers=_scenario("slow:600")
        )
    client.close()
