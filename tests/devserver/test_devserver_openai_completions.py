"""``POST /v1/completions`` (legacy Completions), JSON and SSE, through the real SDK."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from llmtap.devserver import handle

from .conftest import Backend

MODEL = "gpt-3.5-turbo-instruct"


def test_create_returns_text_usage_and_the_envelope(backend: Backend) -> None:
    client = backend.openai()
    raw = client.completions.with_raw_response.create(model=MODEL, prompt="Tell me about Paris")
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert completion.model == MODEL
    assert completion.system_fingerprint == "fp_llmtap_dev"
    (choice,) = completion.choices
    assert choice.index == 0 and choice.finish_reason == "stop" and choice.logprobs is None
    assert choice.text.startswith(" ") and "Tell me about Paris" in choice.text
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens == 4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    again = client.completions.create(model=MODEL, prompt="Tell me about Paris")
    assert again.id == completion.id and again.choices[0].text == choice.text


def test_prompts_choices_echo_stop_and_max_tokens(backend: Backend) -> None:
    client = backend.openai()
    completion = client.completions.create(
        model=MODEL, prompt=["Paris is", [1820, 374]], n=2, echo=True
    )
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert completion.choices[0].text.startswith("Paris is ")
    assert completion.choices[2].text.startswith("1820 374 ")
    assert "(choice 1)" in completion.choices[1].text
    assert completion.usage is not None and completion.usage.prompt_tokens == 4
    cut = client.completions.create(model=MODEL, prompt="Paris", max_tokens=2)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens == 2
    stopped = client.completions.create(model=MODEL, prompt="Paris", stop="llmtap")
    assert stopped.choices[0].finish_reason == "stop"
    assert "llmtap" not in stopped.choices[0].text
    default = client.completions.create(
        model=MODEL, prompt="one two three four five six seven eight nine ten eleven"
    )
    assert default.choices[0].finish_reason == "stop"  # within the API's default 16 tokens


def test_logprobs_and_content_filter(backend: Backend) -> None:
    client = backend.openai()
    completion = client.completions.create(model=MODEL, prompt="Paris", logprobs=1)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.text_offset
    assert "".join(logprobs.tokens) == completion.choices[0].text
    filtered = client.completions.create(model=MODEL, prompt="Please filter this")
    assert filtered.choices[0].finish_reason == "content_filter"
    assert filtered.choices[0].text == ""


def test_stream_chunks_finish_and_usage(backend: Backend) -> None:
    client = backend.openai()
    plain = client.completions.create(model=MODEL, prompt="Tell me about Paris")
    chunks = list(
        client.completions.create(
            model=MODEL,
            prompt="Tell me about Paris",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "text_completion" for c in chunks)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == plain.choices[0].text
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-2].choices[0].text == ""
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    without = list(client.completions.create(model=MODEL, prompt="Hi", stream=True))
    assert all(c.usage is None and c.choices for c in without)


def test_sse_wire_format() -> None:
    body = {"model": MODEL, "prompt": "Hi", "stream": True}
    reply = handle("POST", "/v1/completions", {}, body)
    assert reply.is_stream and reply.headers["content-type"].startswith("text/event-stream")
    chunks = reply.event_chunks()
    assert chunks[-1] == b"data: [DONE]\n\n"
    first = json.loads(chunks[0].decode()[len("data: ") :])
    assert set(first) == {"id", "object", "created", "model", "system_fingerprint", "choices"}
    assert first["choices"][0] == {
        "text": first["choices"][0]["text"],
        "index": 0,
        "logprobs": None,
        "finish_reason": None,
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "Hi"}, "model"),
        ({"model": MODEL}, "prompt"),
        ({"model": MODEL, "prompt": [{"x": 1}]}, "prompt"),
        ({"model": MODEL, "prompt": "Hi", "n": 3, "best_of": 2}, "best_of"),
    ],
)
def test_invalid_requests(body: dict, param: str) -> None:
    reply = handle("POST", "/v1/completions", {}, body)
    assert reply.status == 400
    assert reply.body["error"]["param"] == param
    assert reply.body["error"]["type"] == "invalid_request_error"


def test_scenarios(backend: Backend) -> None:
    client = backend.openai(max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.completions.create(model="devserver-rate_limit", prompt="Hi")
    with pytest.raises(openai.APIError):
        list(
            client.completions.create(
                model=MODEL,
                prompt="Tell me about Paris",
                stream=True,
                extra_headers={"x-devserver-scenario": "stream_error:2"},
            )
        )


def test_async_stream(backend: Backend) -> None:
    async def run() -> str:
        client = backend.async_openai()
        try:
            stream = await client.completions.create(model=MODEL, prompt="Paris", stream=True)
            return "".join([c.choices[0].text async for c in stream if c.choices])
        finally:
            await client.close()

    text = asyncio.run(run())
    assert text == backend.openai().completions.create(model=MODEL, prompt="Paris").choices[0].text
