"""LiteLLM instrumentation against the real LiteLLM talking to the dev server (nothing mocked).

LiteLLM has no wire protocol of its own: it is pointed at the dev server's OpenAI
(``openai/...`` with ``api_base=<devserver>/v1``; LiteLLM calls the ``openai`` SDK),
Anthropic (``anthropic/...``; LiteLLM's own HTTP client) and Gemini protocols.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv
from llmtap.config import CaptureMode
from llmtap.instrumentation.litellm import _providers

from .litellm_support import (
    ANTHROPIC_MODEL,
    EMBED_MODEL,
    FRESH_ANTHROPIC_FIELDS,
    KEY,
    MODEL,
    OPENAI_TARGET,
    TARGET,
    WEATHER_TOOL,
    anthropic_args,
    comparable,
    content,
    litellm,
    metric_points,
    only_span,
    openai_args,
    ours,
    output_text,
    text_of,
    user,
)


@pytest.fixture
def instrumented(instrument: Any) -> Any:
    return instrument(TARGET, capture="span_only")


@pytest.fixture
def both(instrument: Any) -> Any:
    """llmtap's LiteLLM and OpenAI instrumentors, both active (LiteLLM calls the OpenAI SDK)."""
    instrument(OPENAI_TARGET, capture="span_only")
    return instrument(TARGET, capture="span_only")


def _router(devserver: Any, **kwargs: Any) -> Any:
    model_list = [
        {"model_name": "grp", "litellm_params": openai_args(devserver)},
        {"model_name": "embed-grp", "litellm_params": openai_args(devserver, EMBED_MODEL)},
        {
            "model_name": "broken",
            "litellm_params": openai_args(devserver, "openai/devserver-server_error"),
        },
        {"model_name": "claude", "litellm_params": anthropic_args(devserver)},
        {  # a stream cut before its first event
            "model_name": "cut",
            "litellm_params": openai_args(devserver, "openai/devserver-broken_stream:0"),
        },
    ]
    return litellm.Router(model_list=model_list, num_retries=0, **kwargs)


# completion ---------------------------------------------------------------------------------


def test_completion(instrumented, devserver, span_exporter):
    response = litellm.completion(
        **openai_args(devserver), messages=user("hello"), temperature=0.5, max_tokens=64
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert attrs[semconv.OPERATION] == "chat"
    assert attrs[semconv.PROVIDER] == "openai"
    assert attrs[semconv.REQUEST_MODEL] == MODEL  # as the app named it
    assert attrs[semconv.RESPONSE_MODEL] == response.model == "gpt-4o-mini"
    assert attrs[semconv.RESPONSE_ID] == response.id
    assert attrs[semconv.REQUEST_TEMPERATURE] == 0.5 and attrs[semconv.REQUEST_MAX_TOKENS] == 64
    assert attrs[semconv.REQUEST_STREAM] is False
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens > 0
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens > 0
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[semconv.SERVER_PORT] == devserver.port
    assert "openai.api.type" not in attrs  # LiteLLM's span, not the OpenAI SDK's
    assert span.status.status_code is StatusCode.UNSET
    assert output_text(span) == response.choices[0].message.content
    assert content(span, semconv.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
    ]


def test_completion_positional_arguments(instrumented, devserver, span_exporter):
    args = openai_args(devserver)
    response = litellm.completion(
        args.pop("model"), user("positional"), api_base=args["api_base"], api_key=KEY
    )
    span = only_span(span_exporter)
    assert span.attributes[semconv.REQUEST_MODEL] == MODEL
    assert "positional" in response.choices[0].message.content
    assert content(span, semconv.INPUT_MESSAGES)[0]["parts"][0]["content"] == "positional"


def test_acompletion(instrumented, devserver, span_exporter):
    response = asyncio.run(litellm.acompletion(**openai_args(devserver), messages=user("async")))
    span = only_span(span_exporter)  # acompletion runs completion inside: still one span
    assert span.attributes[semconv.PROVIDER] == "openai"
    assert span.attributes[semconv.RESPONSE_ID] == response.id
    assert output_text(span) == response.choices[0].message.content


def test_anthropic_through_litellm(instrumented, devserver, span_exporter):
    response = litellm.completion(
        **anthropic_args(devserver),
        messages=[{"role": "system", "content": "Be brief."}, *user("hi")],
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"chat {ANTHROPIC_MODEL}"
    assert attrs[semconv.PROVIDER] == "anthropic"
    assert attrs[semconv.RESPONSE_MODEL] == "claude-sonnet-4-6" == response.model
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    roles = [m["role"] for m in content(span, semconv.INPUT_MESSAGES)]
    assert roles == ["system", "user"]


CACHED_SYSTEM = {
    "role": "system",
    "content": [
        {
            "type": "text",
            "text": "You are a helpful assistant. " * 20,
            "cache_control": {"type": "ephemeral"},
        }
    ],
}


@pytest.mark.parametrize(
    ("model", "read", "written"),
    [(ANTHROPIC_MODEL, True, False), ("anthropic/devserver-cache_write", False, True)],
)
def test_anthropic_cache_usage(instrumented, devserver, span_exporter, model, read, written):
    response = litellm.completion(
        **anthropic_args(devserver, model), messages=[CACHED_SYSTEM, *user("cached")]
    )
    usage = response.usage
    attrs = only_span(span_exporter).attributes
    assert attrs[semconv.USAGE_INPUT_TOKENS] == usage.prompt_tokens  # cached tokens included
    cached = attrs.get(semconv.USAGE_CACHE_READ_INPUT_TOKENS)
    created = attrs.get(semconv.USAGE_CACHE_CREATION_INPUT_TOKENS)
    assert cached == (usage.cache_read_input_tokens if read else None)
    assert created == (usage.cache_creation_input_tokens if written else None)
    assert (cached or created) > 0


def test_gemini_through_litellm(instrumented, devserver, span_exporter):
    response = litellm.completion(
        model="gemini/gemini-2.0-flash",
        api_base=devserver.base_url,
        api_key=KEY,
        messages=user("gemini"),
    )
    span = only_span(span_exporter)
    assert span.attributes[semconv.PROVIDER] == "gcp.gemini"
    assert span.attributes[semconv.RESPONSE_MODEL] == response.model == "gemini-2.0-flash"
    assert span.attributes[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens


def test_mistral_through_litellm(instrumented, devserver, span_exporter):
    # LiteLLM speaks Mistral's OpenAI-shaped chat API (POST /v1/chat/completions)
    response = litellm.completion(
        model="mistral/mistral-small-latest",
        api_base=devserver.openai_base_url,
        api_key=KEY,
        messages=user("mistral"),
    )
    span = only_span(span_exporter)
    assert span.attributes[semconv.PROVIDER] == "mistral_ai"
    assert span.attributes[semconv.RESPONSE_MODEL] == response.model


@pytest.mark.skipif(
    importlib.util.find_spec("llmtap.devserver.ollama_api") is None,
    reason="the dev server has no Ollama protocol in this checkout",
)
def test_ollama_through_litellm(instrumented, devserver, span_exporter):
    response = litellm.completion(
        model="ollama_chat/llama3", api_base=devserver.base_url, messages=user("ollama")
    )
    span = only_span(span_exporter)
    assert span.attributes[semconv.PROVIDER] == "ollama"
    assert output_text(span) == response.choices[0].message.content


# provider names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kwargs", "provider"),
    [
        ("openai/gpt-4o-mini", {}, "openai"),
        ("gpt-4o-mini", {}, "openai"),
        ("anthropic/claude-sonnet-4-6", {}, "anthropic"),
        ("gemini/gemini-2.0-flash", {}, "gcp.gemini"),
        ("vertex_ai/gemini-2.0-flash", {}, "gcp.vertex_ai"),
        ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", {}, "aws.bedrock"),
        ("mistral/mistral-large-latest", {}, "mistral_ai"),
        ("cohere_chat/command-r", {}, "cohere"),
        ("groq/llama3-8b-8192", {}, "groq"),
        ("azure/my-deployment", {}, "azure.ai.openai"),
        ("azure_ai/mistral-large", {}, "azure.ai.inference"),
        ("deepseek/deepseek-chat", {}, "deepseek"),
        ("xai/grok-2", {}, "x_ai"),
        ("perplexity/sonar", {}, "perplexity"),
        ("watsonx/ibm/granite-13b-chat-v2", {}, "ibm.watsonx.ai"),
        ("ollama/llama3", {}, "ollama"),
        ("together_ai/meta-llama/Llama-3-8b-chat-hf", {}, "together_ai"),  # LiteLLM's name
        ("my-model", {"custom_llm_provider": "anthropic"}, "anthropic"),
    ],
)
def test_provider_names(model, kwargs, provider):
    assert _providers.resolve(model, kwargs)[0] == provider


def test_unknown_provider_is_litellm_and_the_call_fails_as_without_llmtap(
    instrumented, span_exporter
):
    with pytest.raises(litellm.BadRequestError):
        litellm.completion(model="no-such-model-xyz", messages=user(), api_key=KEY)
    span = only_span(span_exporter)
    assert span.attributes[semconv.PROVIDER] == "litellm"
    assert span.attributes[semconv.ERROR_TYPE] == "BadRequestError"


# one span with the OpenAI instrumentor active ------------------------------------------------


def test_the_openai_sdk_call_inside_litellm_is_instrumented_alone(
    instrument, devserver, span_exporter
):
    """The control for the tests below: LiteLLM's text completions go through the instrumented
    ``completions.create`` of the OpenAI SDK (its chat completions do too up to 1.108; later
    releases post to the SDK client's lower layer, which llmtap does not wrap)."""
    instrument(OPENAI_TARGET, capture="span_only")
    litellm.text_completion(**openai_args(devserver, "openai/gpt-3.5-turbo-instruct"), prompt="a")
    span = only_span(span_exporter)
    assert span.name == "text_completion gpt-3.5-turbo-instruct"  # the SDK's view of the call


def test_one_text_completion_span_with_the_openai_instrumentor(both, devserver, span_exporter):
    litellm.text_completion(**openai_args(devserver, "openai/gpt-3.5-turbo-instruct"), prompt="a")
    span = only_span(span_exporter)
    assert span.parent is None  # the whole tree: LiteLLM's span alone
    assert span.name == "text_completion openai/gpt-3.5-turbo-instruct"  # LiteLLM's view


def test_one_span_with_the_openai_instrumentor(both, devserver, span_exporter):
    litellm.completion(**openai_args(devserver), messages=user())
    span = only_span(span_exporter)
    assert span.parent is None  # the whole tree: one root span, no child
    assert span.attributes[semconv.REQUEST_MODEL] == MODEL
    assert semconv.OPENAI_API_TYPE not in span.attributes


def test_one_span_with_the_openai_instrumentor_async_stream_embedding(
    both, devserver, span_exporter
):
    async def run() -> None:
        await litellm.acompletion(**openai_args(devserver), messages=user())
        stream = await litellm.acompletion(**openai_args(devserver), messages=user(), stream=True)
        async for _ in stream:
            pass
        await litellm.aembedding(**openai_args(devserver, EMBED_MODEL), input=["a"])

    asyncio.run(run())
    litellm.embedding(**openai_args(devserver, EMBED_MODEL), input=["b"])
    for _ in litellm.completion(**openai_args(devserver), messages=user(), stream=True):
        pass
    spans = span_exporter.get_finished_spans()
    # (a stream's span whose usage is estimated ends on llmtap's worker: order by name)
    assert sorted((s.name, s.parent) for s in spans) == [
        (f"chat {MODEL}", None),
        (f"chat {MODEL}", None),
        (f"chat {MODEL}", None),
        (f"embeddings {EMBED_MODEL}", None),
        (f"embeddings {EMBED_MODEL}", None),
    ]
    assert all(semconv.OPENAI_API_TYPE not in s.attributes for s in spans)


def test_inner_retries_are_no_spans(both, devserver, span_exporter):
    with pytest.raises(litellm.InternalServerError):
        litellm.completion(
            **openai_args(devserver, "openai/devserver-server_error"),
            messages=user(),
            num_retries=1,
        )
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == "InternalServerError"


# streams ------------------------------------------------------------------------------------


def test_stream_with_usage(instrumented, devserver, span_exporter):
    stream = litellm.completion(
        **openai_args(devserver),
        messages=user("stream"),
        stream=True,
        stream_options={"include_usage": True},
    )
    assert isinstance(stream, litellm.CustomStreamWrapper)  # the proxy keeps the type checks
    chunks = list(stream)
    usage = chunks[-1].usage
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.REQUEST_STREAM] is True
    assert attrs[semconv.LLMTAP_STREAM_END] == "completed"
    assert attrs[semconv.USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage.completion_tokens
    assert semconv.LLMTAP_USAGE_ESTIMATED not in attrs
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.RESPONSE_ID] == chunks[0].id
    assert output_text(span) == text_of(chunks)


def test_stream_without_usage_is_estimated(instrumented, devserver, span_exporter):
    chunks = list(litellm.completion(**openai_args(devserver), messages=user(), stream=True))
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.LLMTAP_USAGE_ESTIMATED] is True
    assert attrs[semconv.USAGE_INPUT_TOKENS] > 0 and attrs[semconv.USAGE_OUTPUT_TOKENS] > 0
    assert output_text(span) == text_of(chunks)


def test_async_stream(instrumented, devserver, span_exporter):
    async def run() -> list[Any]:
        stream = await litellm.acompletion(
            **anthropic_args(devserver), messages=user("async stream"), stream=True
        )
        return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    span = only_span(span_exporter)
    assert span.attributes[semconv.PROVIDER] == "anthropic"
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert span.attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert output_text(span) == text_of(chunks)


def test_stream_abandoned_ends_the_span(instrumented, devserver, span_exporter):
    stream = litellm.completion(**openai_args(devserver), messages=user(), stream=True)
    next(iter(stream))
    del stream
    import gc

    gc.collect()
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "abandoned"


def test_broken_stream(instrumented, devserver, span_exporter):
    stream = litellm.completion(
        **openai_args(devserver, "openai/devserver-broken_stream:3"),
        messages=user(),
        stream=True,
    )
    with pytest.raises(Exception) as raised:
        list(stream)
    span = only_span(span_exporter)
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "error"
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert span.status.status_code is StatusCode.ERROR


# embeddings and text completions -------------------------------------------------------------


def test_embedding(instrumented, devserver, span_exporter):
    response = litellm.embedding(**openai_args(devserver, EMBED_MODEL), input=["a", "b"])
    span = only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"embeddings {EMBED_MODEL}"
    assert attrs[semconv.OPERATION] == "embeddings"
    assert attrs[semconv.PROVIDER] == "openai"
    assert attrs[semconv.RESPONSE_MODEL] == response.model
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == len(response.data[0]["embedding"])
    assert semconv.USAGE_OUTPUT_TOKENS not in attrs


def test_aembedding(instrumented, devserver, span_exporter):
    asyncio.run(litellm.aembedding(**openai_args(devserver, EMBED_MODEL), input="a"))
    span = only_span(span_exporter)
    assert span.attributes[semconv.OPERATION] == "embeddings"


def test_text_completion(instrumented, devserver, span_exporter):
    response = litellm.text_completion(
        **openai_args(devserver, "openai/gpt-3.5-turbo-instruct"), prompt="Say hi"
    )
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.OPERATION] == "text_completion"
    assert attrs[semconv.PROVIDER] == "openai"
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    assert output_text(span) == response.choices[0].text
    assert content(span, semconv.INPUT_MESSAGES)[0]["parts"][0]["content"] == "Say hi"


# tools --------------------------------------------------------------------------------------


def test_tools(instrumented, devserver, span_exporter):
    response = litellm.completion(
        **openai_args(devserver), messages=user("Weather in Paris?"), tools=[WEATHER_TOOL]
    )
    call = response.choices[0].message.tool_calls[0]
    span = only_span(span_exporter)
    assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    (definition,) = content(span, semconv.TOOL_DEFINITIONS)
    assert definition["name"] == "get_weather" and definition["type"] == "function"
    (message,) = content(span, semconv.OUTPUT_MESSAGES)
    assert message["finish_reason"] == "tool_call"
    assert message["parts"] == [
        {
            "type": "tool_call",
            "name": "get_weather",
            "id": call.id,
            "arguments": {"city": "Paris"},
        }
    ]


def test_tools_stream_and_tool_result(instrumented, devserver, span_exporter):
    chunks = list(
        litellm.completion(
            **anthropic_args(devserver),
            messages=user("Weather in Paris?"),
            tools=[WEATHER_TOOL],
            stream=True,
        )
    )
    assert chunks
    first = only_span(span_exporter)
    (message,) = content(first, semconv.OUTPUT_MESSAGES)
    (part,) = [p for p in message["parts"] if p["type"] == "tool_call"]
    assert part["name"] == "get_weather" and part["arguments"] == {"city": "Paris"}
    span_exporter.clear()
    history = [
        *user("Weather in Paris?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": part["id"],
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": part["id"], "content": "sunny"},
    ]
    litellm.completion(**anthropic_args(devserver), messages=history, tools=[WEATHER_TOOL])
    inputs = content(only_span(span_exporter), semconv.INPUT_MESSAGES)
    assert inputs[-1] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "response": "sunny", "id": part["id"]}],
    }


# errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("rate_limit", "RateLimitError"),
        ("auth", "AuthenticationError"),
        ("bad_request", "BadRequestError"),
        ("not_found", "NotFoundError"),
        ("server_error", "InternalServerError"),
    ],
)
def test_errors(instrumented, devserver, span_exporter, scenario, error):
    with pytest.raises(Exception) as raised:
        litellm.completion(
            **openai_args(devserver, f"openai/devserver-{scenario}"), messages=user(), max_retries=0
        )
    assert type(raised.value).__module__ == "litellm.exceptions"  # what LiteLLM raises, as is
    assert type(raised.value).__qualname__ == error
    span = only_span(span_exporter)
    assert span.attributes[semconv.ERROR_TYPE] == error
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_anthropic_error(instrumented, devserver, span_exporter):
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(
            **anthropic_args(devserver, "anthropic/devserver-rate_limit"), messages=user()
        )
    span = only_span(span_exporter)
    assert span.attributes[semconv.PROVIDER] == "anthropic"
    assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"


# the Router ---------------------------------------------------------------------------------


def test_router_completion(both, devserver, span_exporter):
    response = _router(devserver).completion(model="grp", messages=user("router"))
    span = only_span(span_exporter)  # with the OpenAI instrumentor active as well
    attrs = span.attributes
    assert span.name == "chat grp"
    assert attrs[semconv.REQUEST_MODEL] == "grp"  # the model group the app named
    assert attrs[semconv.PROVIDER] == "openai"  # the deployment's
    assert attrs[semconv.RESPONSE_MODEL] == response.model == "gpt-4o-mini"
    assert attrs[semconv.SERVER_PORT] == devserver.port
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens


def test_router_acompletion_and_stream(both, devserver, span_exporter):
    router = _router(devserver)

    async def run() -> list[Any]:
        await router.acompletion(model="claude", messages=user())
        stream = await router.acompletion(model="grp", messages=user(), stream=True)
        return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    first, second = span_exporter.get_finished_spans()
    assert first.attributes[semconv.PROVIDER] == "anthropic"
    assert first.attributes[semconv.REQUEST_MODEL] == "claude"
    assert second.attributes[semconv.PROVIDER] == "openai"
    assert second.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert output_text(second) == text_of(chunks)


def test_router_sync_stream(both, devserver, span_exporter):
    chunks = list(_router(devserver).completion(model="grp", messages=user(), stream=True))
    span = only_span(span_exporter)
    assert span.attributes[semconv.REQUEST_STREAM] is True
    assert output_text(span) == text_of(chunks)


def test_router_fallback_is_one_span_with_the_deployment_that_answered(
    both, devserver, span_exporter
):
    router = _router(devserver, fallbacks=[{"broken": ["claude"]}])
    response = router.completion(model="broken", messages=user())
    span = only_span(span_exporter)
    attrs = span.attributes
    assert attrs[semconv.REQUEST_MODEL] == "broken"
    assert attrs[semconv.PROVIDER] == "anthropic"  # the fallback deployment's
    assert attrs[semconv.RESPONSE_MODEL] == response.model == "claude-sonnet-4-6"
    assert span.status.status_code is StatusCode.UNSET


def test_router_stream_fallback_before_the_first_chunk(both, devserver, span_exporter):
    router = _router(devserver, fallbacks=[{"cut": ["claude"]}])
    chunks = list(router.completion(model="cut", messages=user(), stream=True))
    span = only_span(span_exporter)
    assert span.attributes[semconv.PROVIDER] == "anthropic"
    assert span.attributes[semconv.LLMTAP_STREAM_END] == "completed"
    assert output_text(span) == text_of(chunks)


def test_router_error(both, devserver, span_exporter):
    with pytest.raises(litellm.InternalServerError):
        _router(devserver).completion(model="broken", messages=user())
    span = only_span(span_exporter)
    assert span.attributes[semconv.PROVIDER] == "openai"
    assert span.attributes[semconv.ERROR_TYPE] == "InternalServerError"


def test_router_embedding(both, devserver, span_exporter):
    router = _router(devserver)
    router.embedding(model="embed-grp", input=["a"])
    asyncio.run(router.aembedding(model="embed-grp", input=["b"]))
    spans = span_exporter.get_finished_spans()
    assert [s.name for s in spans] == ["embeddings embed-grp"] * 2
    assert all(s.attributes[semconv.PROVIDER] == "openai" for s in spans)


# content capture ----------------------------------------------------------------------------


def test_capture_no_content(instrument, devserver, span_exporter, log_exporter):
    instrument(TARGET, capture=CaptureMode.NO_CONTENT)
    litellm.completion(**openai_args(devserver), messages=user(), tools=[WEATHER_TOOL])
    span = only_span(span_exporter)
    for key in (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.TOOL_DEFINITIONS):
        assert key not in span.attributes
    assert log_exporter.get_finished_logs() == ()


def test_capture_event_only(instrument, devserver, span_exporter, log_exporter):
    instrument(TARGET, capture=CaptureMode.EVENT_ONLY)
    litellm.completion(**openai_args(devserver), messages=user("event"))
    span = only_span(span_exporter)
    assert semconv.INPUT_MESSAGES not in span.attributes
    (record,) = log_exporter.get_finished_logs()
    assert record.log_record.event_name == semconv.EVENT_INFERENCE_DETAILS
    assert record.log_record.span_id == span.get_span_context().span_id
    assert record.log_record.attributes[semconv.PROVIDER] == "openai"
    assert "event" in record.log_record.attributes[semconv.INPUT_MESSAGES]


def test_capture_span_and_event(instrument, devserver, span_exporter, log_exporter):
    instrument(TARGET, capture=CaptureMode.SPAN_AND_EVENT)
    litellm.completion(**openai_args(devserver), messages=user("both"))
    span = only_span(span_exporter)
    (record,) = log_exporter.get_finished_logs()
    assert (
        record.log_record.attributes[semconv.OUTPUT_MESSAGES]
        == span.attributes[semconv.OUTPUT_MESSAGES]
    )


# metrics ------------------------------------------------------------------------------------


def test_metrics(instrumented, devserver, metric_reader):
    response = litellm.completion(**openai_args(devserver), messages=user("metrics"))
    tokens = metric_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
    by_type = {p.attributes[semconv.TOKEN_TYPE]: p for p in tokens}
    assert by_type["input"].sum == response.usage.prompt_tokens
    assert by_type["output"].sum == response.usage.completion_tokens
    for point in tokens:
        assert point.attributes[semconv.PROVIDER] == "openai"
        assert point.attributes[semconv.REQUEST_MODEL] == MODEL
    (duration,) = metric_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 1 and duration.attributes[semconv.OPERATION] == "chat"


def test_stream_metrics(instrumented, devserver, metric_reader):
    list(
        litellm.completion(
            **openai_args(devserver),
            messages=user(),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    (ttfc,) = metric_points(metric_reader, semconv.METRIC_TIME_TO_FIRST_CHUNK)
    assert ttfc.count == 1 and ttfc.attributes[semconv.PROVIDER] == "openai"
    (gaps,) = metric_points(metric_reader, semconv.METRIC_TIME_PER_OUTPUT_CHUNK)
    assert gaps.count > 1


# differential: what the app receives ---------------------------------------------------------


def _received(devserver: Any) -> list[Any]:
    """Every kind of call, as the app sees it (``FRESH_*`` fields dropped: LiteLLM sets them
    anew on each call, llmtap or not)."""
    chat = litellm.completion(**openai_args(devserver), messages=user("diff"), seed=1)
    tools = litellm.completion(
        **openai_args(devserver), messages=user("Weather in Paris?"), tools=[WEATHER_TOOL]
    )
    claude = litellm.completion(**anthropic_args(devserver), messages=user("diff"))
    stream = litellm.completion(
        **openai_args(devserver),
        messages=user("diff"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [comparable(c) for c in stream]
    embedding = litellm.embedding(**openai_args(devserver, EMBED_MODEL), input=["diff"])
    with pytest.raises(litellm.RateLimitError) as raised:
        litellm.completion(
            **openai_args(devserver, "openai/devserver-rate_limit"), messages=[], max_retries=0
        )
    routed = _router(devserver).completion(model="grp", messages=user("diff"))
    return [
        comparable(chat),
        comparable(tools),
        comparable(claude, FRESH_ANTHROPIC_FIELDS),
        chunks,
        comparable(embedding),
        (type(raised.value), raised.value.status_code, str(raised.value)),
        comparable(routed),
    ]


def test_differential(instrument, devserver, span_exporter):
    without = _received(devserver)
    instrument(OPENAI_TARGET, capture="span_and_event")
    instrument(TARGET, capture="span_and_event")
    with_llmtap = _received(devserver)
    assert with_llmtap == without
    assert len(ours(span_exporter)) == 7


def test_llmtap_failure_never_breaks_the_call(instrumented, devserver, span_exporter, monkeypatch):
    # Nothing real makes llmtap's own request translation fail, so one of its functions is
    # replaced by one that raises: the call must go on, uninstrumented.
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("llmtap bug")

    monkeypatch.setattr(_providers, "call_attributes", broken)
    response = litellm.completion(**openai_args(devserver), messages=user("still works"))
    assert "still works" in response.choices[0].message.content
    assert span_exporter.get_finished_spans() == ()


def test_uninstrument_restores_litellm(instrument):
    original = litellm.completion
    instrumentor = instrument(TARGET)
    assert litellm.completion is not original
    instrumentor.uninstrument()
    assert litellm.completion is original
    instrumentor.instrument()  # the fixture uninstruments (and checks for leftovers) at teardown
