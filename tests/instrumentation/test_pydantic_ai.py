"""PydanticAI's own spans, switched on by llmtap, against the real PydanticAI, the real openai
and anthropic SDKs and the devserver (nothing mocked).

PydanticAI makes the spans (``invoke_agent`` → ``chat`` / ``execute_tool``); llmtap's provider
instrumentation merges into its ``chat`` span (one inference span per model call), and llmtap's
pipeline (cost, redaction, head sampling) and the judge's ``extract_input`` work on them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from packaging.version import Version
from pydantic_ai import Agent
from pydantic_ai import __version__ as pydantic_ai_version
from pydantic_ai.capabilities import Instrumentation
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from llmtap import semconv
from llmtap.config import CaptureMode, ContentLimits, Settings
from llmtap.evals.extract import extract_input
from llmtap.export.readable import to_span_data
from llmtap.instrumentation.pydantic_ai import instrumentation_settings
from llmtap.pipeline.cost import CostStage
from llmtap.pipeline.redact import RedactionStage
from llmtap.pipeline.sampling import RuleSampler
from llmtap.pipeline.sampling_config import HeadRule, HeadSamplingConfig
from llmtap.sdk.processor import PipelineProcessor, exporter_queue

from .test_openai_support import data_points

TARGET = "llmtap.instrumentation.pydantic_ai:PydanticAIInstrumentor"
MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
QUESTION = "Write to jane.doe@example.com: what is the weather in Paris?"
EMAIL = "jane.doe@example.com"
TOOL_RESULT = "sunny in Paris"
ANSWER = f'The tool returned: "{TOOL_RESULT}". That completes the request.'
NOISY = "noisy"  # the head sampler's rule keeps none of this agent's runs
# names PydanticAI writes that v1.41 deprecates (gen_ai.system) or never registered
UNREGISTERED = {"gen_ai.system", "operation.cost", "model_name", "agent_name", "final_result"}
UNREGISTERED_PREFIXES = (
    "logfire.",
    "pydantic_ai.",
    "gen_ai.aggregated_usage.",
    "gen_ai.usage.details.",
)


# the providers: the test exporter beside llmtap's pipeline, behind llmtap's head sampler ------


@pytest.fixture
def pipeline_exporter() -> InMemorySpanExporter:
    """What llmtap's pipeline (cost, redaction) hands its destinations."""
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(
    span_exporter: InMemorySpanExporter, pipeline_exporter: InMemorySpanExporter
) -> Iterator[TracerProvider]:
    rule = HeadRule(when={semconv.AGENT_NAME: NOISY}, ratio=0.0, name="noisy agent")
    provider = TracerProvider(
        resource=Resource.create({"service.name": "llmtap-tests"}),
        sampler=RuleSampler(HeadSamplingConfig(rules=[rule])),
    )
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    stages = [CostStage(), RedactionStage()]
    provider.add_span_processor(
        PipelineProcessor(stages, [exporter_queue("memory", pipeline_exporter)])
    )
    yield provider
    provider.shutdown()


@pytest.fixture(autouse=True)
def agent_default() -> Iterator[None]:
    """Every test starts and ends with PydanticAI's class-wide default untouched."""
    before = Agent._instrument_default
    yield
    Agent.instrument_all(before)


@pytest.fixture
def pydantic_ai(instrument: Any) -> Any:
    return instrument(TARGET, capture="span_only")


@pytest.fixture
def both(instrument_openai: Any, pydantic_ai: Any) -> Any:
    """llmtap's OpenAI instrumentation under PydanticAI's spans (the usual setup)."""
    instrument_openai(capture="span_only")
    return pydantic_ai


def openai_model(devserver: Any) -> OpenAIChatModel:
    provider = OpenAIProvider(base_url=devserver.openai_base_url, api_key="test-key")
    return OpenAIChatModel(MODEL, provider=provider)


def weather_agent(model: Any, name: str = "weather") -> Agent:
    agent = Agent(model, name=name, instructions="Answer in one sentence.")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    return agent


def tree(spans: Any) -> list[tuple[str, SpanKind, str | None]]:
    """(name, kind, parent's name) of each span, in start order."""
    names = {s.context.span_id: s.name for s in spans}
    ordered = sorted(spans, key=lambda s: s.start_time)
    return [(s.name, s.kind, names.get(s.parent.span_id) if s.parent else None) for s in ordered]


def by_start(spans: Any) -> list[Any]:
    return sorted(spans, key=lambda s: s.start_time)


def messages(span: Any, key: str) -> list[dict[str, Any]]:
    return json.loads(span.attributes[key])


RUN_TREE = [
    ("invoke_agent weather", SpanKind.INTERNAL, None),
    (f"chat {MODEL}", SpanKind.CLIENT, "invoke_agent weather"),
    ("execute_tool get_weather", SpanKind.INTERNAL, "invoke_agent weather"),
    (f"chat {MODEL}", SpanKind.CLIENT, "invoke_agent weather"),
]


# one span per model call ------------------------------------------------------------------------


def test_an_agent_run_with_a_tool_has_one_chat_span_per_model_call(
    both, devserver, span_exporter
) -> None:
    result = weather_agent(openai_model(devserver)).run_sync(QUESTION)

    assert result.output == ANSWER
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == RUN_TREE
    # every span is PydanticAI's: llmtap's OpenAI instrumentation opened none of its own
    assert {s.instrumentation_scope.name for s in spans} == {"pydantic-ai"}
    run, ask, tool, answer = by_start(spans)
    assert run.attributes[semconv.OPERATION] == semconv.OP_INVOKE_AGENT
    assert run.attributes[semconv.AGENT_NAME] == "weather"
    # the run's usage, PydanticAI's gen_ai.aggregated_usage.*, in the registered names
    for key in (semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS):
        assert run.attributes[key] == ask.attributes[key] + answer.attributes[key]
    # the run's history as v1.41's invoke_agent span records it
    assert [m["role"] for m in messages(run, semconv.INPUT_MESSAGES)] == [
        "user",
        "assistant",
        "tool",
    ]
    (said,) = messages(run, semconv.OUTPUT_MESSAGES)
    assert said["parts"] == [{"type": "text", "content": ANSWER}]
    for span in spans:  # deprecated and Logfire-only names, renamed or dropped
        left = [k for k in span.attributes if k in UNREGISTERED]
        left += [k for k in span.attributes if k.startswith(UNREGISTERED_PREFIXES)]
        assert left == [], span.name
    for chat in (ask, answer):
        assert chat.attributes[semconv.OPERATION] == semconv.OP_CHAT
        assert chat.attributes[semconv.PROVIDER] == "openai"
        assert chat.attributes[semconv.REQUEST_MODEL] == MODEL
        assert chat.attributes[semconv.RESPONSE_MODEL] == MODEL
        assert chat.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
        # written by llmtap's OpenAI adapter, merged into PydanticAI's span
        assert chat.attributes["openai.api.type"] == "chat_completions"
        assert chat.attributes[semconv.REQUEST_STREAM] is False
        assert chat.status.status_code is StatusCode.UNSET
    (call,) = messages(ask, semconv.OUTPUT_MESSAGES)[0]["parts"]
    assert call["type"] == "tool_call" and call["name"] == "get_weather"
    assert tool.attributes[semconv.OPERATION] == semconv.OP_EXECUTE_TOOL
    assert tool.attributes[semconv.TOOL_NAME] == "get_weather"
    assert tool.attributes[semconv.TOOL_CALL_ID] == call["id"]
    assert json.loads(tool.attributes[semconv.TOOL_CALL_ARGUMENTS]) == {"city": "Paris"}
    assert tool.attributes[semconv.TOOL_CALL_RESULT] == TOOL_RESULT
    # version 6: the tool result goes back to the model in a `tool` message
    roles = [m["role"] for m in messages(answer, semconv.INPUT_MESSAGES)]
    assert roles == ["user", "assistant", "tool"]
    assert ask.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert answer.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)


def test_token_usage_is_recorded_once_per_model_call(both, devserver, metric_reader) -> None:
    weather_agent(openai_model(devserver)).run_sync(QUESTION)

    points = data_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
    # PydanticAI records it through llmtap's meter provider; llmtap's adapter, merged into
    # PydanticAI's span, records none: two calls, input and output each, once
    assert sorted((p.attributes[semconv.TOKEN_TYPE], p.count) for p in points) == [
        ("input", 2),
        ("output", 2),
    ]


def test_each_model_call_records_its_duration_once(both, devserver, metric_reader) -> None:
    weather_agent(openai_model(devserver)).run_sync(QUESTION)

    points = data_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    # PydanticAI records none of its own; llmtap's adapter, merged into PydanticAI's span,
    # neither: llmtap records it as PydanticAI's chat span ends, once per model call
    assert len(points) == 1 and points[0].count == 2
    assert dict(points[0].attributes) == {
        semconv.OPERATION: semconv.OP_CHAT,
        semconv.PROVIDER: "openai",
        semconv.REQUEST_MODEL: MODEL,
        semconv.RESPONSE_MODEL: MODEL,
        semconv.SERVER_ADDRESS: "127.0.0.1",
        semconv.SERVER_PORT: devserver.port,
    }
    assert 0 < points[0].sum < 30


def test_a_failed_model_calls_duration_carries_its_error_type(
    both, devserver, metric_reader
) -> None:
    provider = OpenAIProvider(base_url=devserver.openai_base_url, api_key="test-key")
    agent = Agent(OpenAIChatModel("devserver-server_error", provider=provider), retries=0)
    agent.model.client.max_retries = 0  # type: ignore[attr-defined]

    with pytest.raises(Exception, match="500") as raised:
        agent.run_sync("hello")

    (point,) = data_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert point.count == 1
    # PydanticAI's own class (ModelServerError; ModelHTTPError in older releases)
    assert point.attributes[semconv.ERROR_TYPE] == type(raised.value).__name__
    assert type(raised.value).__name__ in ("ModelServerError", "ModelHTTPError")


@pytest.mark.skipif(
    Version(pydantic_ai_version) < Version("2.60"),
    reason="PydanticAI's AnthropicModel works with the anthropic 2.x SDK from 2.60 on (before: "
    "httpx clients, then TypeError: Cannot instantiate typing.Union), llmtap or not",
)
def test_an_anthropic_model_has_one_chat_span_and_its_first_attempt_is_no_error(
    instrument_anthropic, pydantic_ai, devserver, span_exporter
) -> None:
    instrument_anthropic(capture="span_only")
    provider = AnthropicProvider(base_url=devserver.anthropic_base_url, api_key="test-key")
    agent = weather_agent(AnthropicModel(CLAUDE, provider=provider))

    result = agent.run_sync(QUESTION)

    assert result.output == ANSWER
    spans = span_exporter.get_finished_spans()
    chat = f"chat {CLAUDE}"
    assert tree(spans) == [
        ("invoke_agent weather", SpanKind.INTERNAL, None),
        (chat, SpanKind.CLIENT, "invoke_agent weather"),
        ("execute_tool get_weather", SpanKind.INTERNAL, "invoke_agent weather"),
        (chat, SpanKind.CLIENT, "invoke_agent weather"),
    ]
    for span in spans:
        if span.name == chat:
            assert span.attributes[semconv.PROVIDER] == "anthropic"
            # PydanticAI asks without streaming first; the SDK refuses before sending (a
            # long max_tokens must stream) and PydanticAI streams instead: that refused
            # attempt, which llmtap's adapter saw, fails neither the span nor its status
            assert span.attributes[semconv.REQUEST_STREAM] is True
            assert semconv.ERROR_TYPE not in span.attributes
            assert span.status.status_code is StatusCode.UNSET
            assert span.attributes[semconv.USAGE_INPUT_TOKENS] > 0


def test_a_failed_model_call_fails_pydantic_ais_chat_span_once(
    both, devserver, span_exporter
) -> None:
    provider = OpenAIProvider(base_url=devserver.openai_base_url, api_key="test-key")
    broken = OpenAIChatModel("devserver-server_error", provider=provider)
    agent = Agent(broken, name="weather", retries=0)
    agent.model.client.max_retries = 0  # type: ignore[attr-defined]

    with pytest.raises(Exception, match="500") as raised:
        agent.run_sync("hello")

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == [
        ("invoke_agent weather", SpanKind.INTERNAL, None),
        ("chat devserver-server_error", SpanKind.CLIENT, "invoke_agent weather"),
    ]
    run, chat = by_start(spans)
    # PydanticAI, the span's owner, fails it; llmtap's merged adapter leaves it to it
    assert chat.status.status_code is StatusCode.ERROR
    assert run.status.status_code is StatusCode.ERROR
    assert [e.name for e in chat.events] == ["exception"]
    # PydanticAI records no error.type: llmtap names the type of the exception PydanticAI
    # recorded (its own, which carries the status code in its message)
    # (ModelServerError; ModelHTTPError in releases before ModelServerError existed)
    assert type(raised.value).__name__ in ("ModelServerError", "ModelHTTPError")
    assert chat.attributes[semconv.ERROR_TYPE] == type(raised.value).__name__
    assert run.attributes[semconv.ERROR_TYPE] == type(raised.value).__name__


# streams --------------------------------------------------------------------------------------


def test_run_stream_has_one_chat_span_per_model_call(both, devserver, span_exporter) -> None:
    agent = weather_agent(openai_model(devserver))

    async def go() -> list[str]:
        async with agent.run_stream(QUESTION) as stream:
            return [text async for text in stream.stream_text(delta=True)]

    assert "".join(asyncio.run(go())) == ANSWER
    spans = span_exporter.get_finished_spans()
    assert tree(spans) == RUN_TREE
    _, ask, _, answer = by_start(spans)
    for chat in (ask, answer):
        assert chat.attributes[semconv.REQUEST_STREAM] is True
        assert chat.attributes["llmtap.stream.end"] == "completed"
        assert chat.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
    assert messages(answer, semconv.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "text", "content": ANSWER}
    ]


# llmtap changes nothing the app sees ------------------------------------------------------------


def _outcome(output: Any, result: Any) -> tuple[Any, ...]:
    parts = [
        (type(p).__name__, getattr(p, "content", None), getattr(p, "args", None))
        for message in result.all_messages()
        for p in message.parts
    ]
    usage = result.usage  # a method before PydanticAI 2.x made it a property
    if not hasattr(usage, "input_tokens"):
        usage = usage()
    return output, parts, usage.input_tokens, usage.output_tokens, usage.requests


def _run_outcome(agent: Agent) -> tuple[Any, ...]:
    result = agent.run_sync(QUESTION)
    return _outcome(result.output, result)


def _stream_outcome(agent: Agent) -> tuple[Any, ...]:
    async def go() -> tuple[Any, ...]:
        async with agent.run_stream(QUESTION) as stream:
            chunks = [text async for text in stream.stream_text(delta=True)]
            return chunks, _outcome(await stream.get_output(), stream)

    return asyncio.run(go())


def test_results_are_the_same_with_llmtap_on_and_off(
    instrument_openai, instrument, devserver, span_exporter
) -> None:
    agent = weather_agent(openai_model(devserver))
    off = _run_outcome(agent), _stream_outcome(agent)
    assert span_exporter.get_finished_spans() == ()

    instrument_openai(capture="span_and_event")
    instrument(TARGET, capture="span_and_event")
    on = _run_outcome(agent), _stream_outcome(agent)

    assert on == off
    assert len(span_exporter.get_finished_spans()) == 8


# content --------------------------------------------------------------------------------------


def _all_text(spans: Any) -> str:
    return repr([dict(s.attributes) for s in spans])


def test_no_content_unless_llmtap_captures_it(
    instrument_openai, instrument, devserver, span_exporter
) -> None:
    instrument_openai(capture="no_content")
    instrument(TARGET, capture="no_content")

    weather_agent(openai_model(devserver)).run_sync(QUESTION)

    spans = span_exporter.get_finished_spans()
    assert tree(spans) == RUN_TREE
    text = _all_text(spans)
    for content in ("Paris", "one sentence", "sunny"):
        assert content not in text
    tool = by_start(spans)[2]
    assert semconv.TOOL_CALL_ARGUMENTS not in tool.attributes
    assert semconv.TOOL_CALL_RESULT not in tool.attributes


def test_event_only_capture_keeps_content_off_pydantic_ais_spans(
    instrument_openai, instrument, devserver, span_exporter, log_exporter
) -> None:
    instrument_openai(capture="event_only")
    instrument(TARGET, capture="event_only")

    weather_agent(openai_model(devserver)).run_sync(QUESTION)

    spans = span_exporter.get_finished_spans()
    assert "Paris" not in _all_text(spans)
    # the chat content is on llmtap's OpenAI adapter's event, tied to PydanticAI's chat span
    events = [r.log_record for r in log_exporter.get_finished_logs()]
    assert [e.event_name for e in events] == [semconv.EVENT_INFERENCE_DETAILS] * 2
    chats = [s for s in by_start(spans) if s.name.startswith("chat ")]
    assert [e.span_id for e in events] == [s.context.span_id for s in chats]
    assert "Paris" in str(events[0].attributes[semconv.INPUT_MESSAGES])


def test_instrumentation_settings_follow_llmtap_settings() -> None:
    spans = instrumentation_settings(Settings(capture=CaptureMode.SPAN_ONLY))
    assert spans.version == 6  # the newest format PydanticAI offers
    assert spans.include_content is True
    assert spans.include_binary_content is False
    assert spans.include_model_request_parameters is False
    assert spans.use_aggregated_usage_attribute_names is True
    blobs = Settings(capture=CaptureMode.SPAN_AND_EVENT, limits=ContentLimits(capture_blobs=True))
    assert instrumentation_settings(blobs).include_binary_content is True
    for mode in (CaptureMode.NO_CONTENT, CaptureMode.EVENT_ONLY):
        assert instrumentation_settings(Settings(capture=mode)).include_content is False


# the app's own choice ---------------------------------------------------------------------------


def test_the_apps_own_instrument_all_is_left_alone(instrument, devserver, span_exporter) -> None:
    own = InMemorySpanExporter()
    own_provider = TracerProvider()
    own_provider.add_span_processor(SimpleSpanProcessor(own))
    mine = InstrumentationSettings(tracer_provider=own_provider, version=5)
    Agent.instrument_all(mine)

    instrumentor = instrument(TARGET, capture="span_only")
    weather_agent(openai_model(devserver)).run_sync(QUESTION)

    assert Agent._instrument_default is mine
    assert span_exporter.get_finished_spans() == ()
    assert [s.name for s in by_start(own.get_finished_spans())][:2] == [
        "invoke_agent weather",
        f"chat {MODEL}",
    ]
    instrumentor.uninstrument()
    assert Agent._instrument_default is mine


def test_a_later_choice_of_the_app_wins_and_uninstrument_keeps_it(instrument) -> None:
    instrumentor = instrument(TARGET, capture="span_only")
    ours = Agent._instrument_default
    assert isinstance(ours, InstrumentationSettings)
    Agent.instrument_all(False)  # the app turns it off after llmtap started

    instrumentor.uninstrument()
    assert Agent._instrument_default is False
    instrumentor.instrument(settings=Settings())
    assert isinstance(Agent._instrument_default, InstrumentationSettings)
    instrumentor.uninstrument()
    assert Agent._instrument_default is False


def test_a_per_agent_choice_wins_over_llmtaps_default(
    pydantic_ai, devserver, span_exporter
) -> None:
    silent = weather_agent(openai_model(devserver))
    silent.instrument = False
    silent.run_sync(QUESTION)
    assert span_exporter.get_finished_spans() == ()

    own = InMemorySpanExporter()
    own_provider = TracerProvider()
    own_provider.add_span_processor(SimpleSpanProcessor(own))
    agent = Agent(
        openai_model(devserver),
        name="own",
        capabilities=[Instrumentation(InstrumentationSettings(tracer_provider=own_provider))],
    )
    agent.run_sync("hello")
    assert span_exporter.get_finished_spans() == ()  # not twice: only the app's capability
    assert [s.name for s in by_start(own.get_finished_spans())] == [
        "invoke_agent own",
        f"chat {MODEL}",
    ]


def test_uninstrument_turns_pydantic_ais_spans_off(pydantic_ai, devserver, span_exporter) -> None:
    pydantic_ai.uninstrument()
    assert Agent._instrument_default is False

    weather_agent(openai_model(devserver)).run_sync(QUESTION)
    assert span_exporter.get_finished_spans() == ()


# llmtap's pipeline and judge on PydanticAI's spans ------------------------------------------


def _piped(tracer_provider: TracerProvider, exporter: InMemorySpanExporter) -> list[Any]:
    tracer_provider.force_flush()
    return by_start(exporter.get_finished_spans())


def test_the_pipeline_costs_and_redacts_pydantic_ais_spans(
    both, devserver, tracer_provider, pipeline_exporter
) -> None:
    weather_agent(openai_model(devserver)).run_sync(QUESTION)

    spans = _piped(tracer_provider, pipeline_exporter)
    assert tree(spans) == RUN_TREE
    run, ask, tool, answer = spans
    for chat in (ask, answer):
        cost = chat.attributes[semconv.LLMTAP_COST_TOTAL]
        assert cost > 0
        assert chat.attributes[semconv.LLMTAP_COST_PRICE_MODEL] == MODEL
        assert chat.attributes[semconv.LLMTAP_COST_CURRENCY] == "USD"
    # the run's usage is aggregated_usage.*: not costed a second time
    assert semconv.LLMTAP_COST_TOTAL not in run.attributes
    assert semconv.LLMTAP_COST_TOTAL not in tool.attributes
    # the e-mail in the question, in PydanticAI's own attributes too
    assert EMAIL not in _all_text(spans)
    assert EMAIL.split("@")[0] not in _all_text(spans)
    question = messages(ask, semconv.INPUT_MESSAGES)[0]["parts"][0]["content"]
    assert question == QUESTION.replace(EMAIL, "<EMAIL>")
    assert "<EMAIL>" in run.attributes[semconv.INPUT_MESSAGES]
    assert ask.attributes["llmtap.redaction.email"] == 1


def test_a_head_sampling_rule_on_the_agent_name_drops_its_runs(
    both, devserver, tracer_provider, span_exporter, pipeline_exporter
) -> None:
    model = openai_model(devserver)
    # the rules decide root spans: the runs start in an empty context, whatever an earlier
    # test left current
    token = otel_context.attach(otel_context.Context())
    try:
        weather_agent(model, name=NOISY).run_sync(QUESTION)
        assert span_exporter.get_finished_spans() == ()

        weather_agent(model).run_sync(QUESTION)
    finally:
        otel_context.detach(token)
    assert tree(span_exporter.get_finished_spans()) == RUN_TREE
    assert tree(_piped(tracer_provider, pipeline_exporter)) == RUN_TREE


def test_the_judge_finds_question_answer_and_tool_result(
    both, devserver, tracer_provider, pipeline_exporter
) -> None:
    weather_agent(openai_model(devserver)).run_sync(QUESTION)

    trace = [to_span_data(s) for s in _piped(tracer_provider, pipeline_exporter)]
    run, ask, _, answer = trace
    found = extract_input(answer, trace)
    assert found.input_text == QUESTION.replace(EMAIL, "<EMAIL>")
    assert found.output_text == ANSWER
    assert found.documents == [TOOL_RESULT]  # the execute_tool span's result
    assert extract_input(ask, trace).input_text == found.input_text
    # the run span: its history (PydanticAI's pydantic_ai.all_messages) as
    # gen_ai.input/output.messages, so a judge rule on the root span reads the same
    at_root = extract_input(run, trace)
    assert (at_root.input_text, at_root.output_text) == (found.input_text, ANSWER)
    assert at_root.documents == [TOOL_RESULT]


LAZY_APP = """
import json, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from llmtap.config import Settings
from llmtap.instrumentation.pydantic_ai import PydanticAIInstrumentor

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
PydanticAIInstrumentor().instrument(settings=Settings(), tracer_provider=provider)
loaded = "pydantic_ai" in sys.modules

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(base_url=sys.argv[1], api_key="k"))
Agent(model, name="late").run_sync("hello")
names = [s.name for s in exporter.get_finished_spans()]
print(json.dumps({"loaded": loaded, "names": names}))
"""


def test_pydantic_ai_imported_after_llmtap_is_instrumented_on_import(devserver) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", LAZY_APP, devserver.openai_base_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"loaded": False, "names": [f"chat {MODEL}", "invoke_agent late"]}


def test_a_run_without_an_answer_keeps_its_history_as_input_messages() -> None:
    from llmtap.instrumentation.pydantic_ai._spans import split_messages, tidy

    asked = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    history = json.dumps(asked)
    # a failed run ends on the request it sent: no answer to call output
    assert split_messages(history) == {semconv.INPUT_MESSAGES: history}
    assert split_messages("not json") == {}
    # gen_ai.system only where no provider name is set: PydanticAI's or an adapter's wins
    assert tidy({"gen_ai.system": "openai"}) == {semconv.PROVIDER: "openai"}
    assert tidy({"gen_ai.system": "x"}, {semconv.PROVIDER: "openai"}) == {}
    assert tidy({"logfire.msg": "run", "gen_ai.agent.name": "a"}) == {semconv.AGENT_NAME: "a"}


def test_a_tidied_span_used_as_a_context_manager_still_fills_in_error_type(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """PydanticAI ends its spans through ``use_span``; a ``with span:`` ends them through the
    wrapper too (the real OpenTelemetry SDK underneath; no PydanticAI needed for this)."""
    from llmtap.instrumentation.pydantic_ai import tidy_provider

    tracer = tidy_provider(tracer_provider).get_tracer("pydantic-ai")
    with (
        pytest.raises(KeyError),
        tracer.start_span("invoke_agent a", attributes={"agent_name": "a"}),
    ):
        raise KeyError("boom")

    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "KeyError"
    assert "agent_name" not in span.attributes
