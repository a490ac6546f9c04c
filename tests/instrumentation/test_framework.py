"""RunSpans: framework runs become spans by run id, and a chat-model run merges with the
provider call underneath (the real OpenAI SDK and llmtap's OpenAI instrumentation against the
devserver), so a model call has exactly one inference span and its metrics are recorded once."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation._framework import RunSpans, step_invocation
from llmtap.instrumentation._invocation import Invocation, Telemetry

from .test_openai_support import data_points

USER = [{"role": "user", "content": "Say hi"}]


def _runs(tracer_provider: Any, meter_provider: Any) -> RunSpans:
    return RunSpans(Telemetry(Settings(), tracer_provider, meter_provider))


def _chat_run() -> Invocation:
    inv = Invocation(semconv.OP_CHAT, "openai", "gpt-4o-mini")
    return inv


def test_runs_nest_by_parent_id_and_runs_without_a_span_are_looked_through(
    tracer_provider, meter_provider, span_exporter
) -> None:
    runs = _runs(tracer_provider, meter_provider)
    runs.open("graph", None, step_invocation("workflow", "support"))
    runs.skip("template", "graph")
    runs.open("tool", "template", step_invocation("tool", "lookup"))
    runs.close("tool")
    runs.close("template")
    runs.close("graph")

    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert sorted(spans) == ["execute_tool lookup", "invoke_workflow support"]
    tool, graph = spans["execute_tool lookup"], spans["invoke_workflow support"]
    assert tool.parent.span_id == graph.context.span_id
    assert tool.attributes[semconv.TOOL_NAME] == "lookup"
    assert graph.attributes[semconv.OPERATION] == semconv.OP_INVOKE_WORKFLOW
    assert semconv.PROVIDER not in graph.attributes
    assert len(runs) == 0


def test_a_run_without_a_known_parent_goes_under_the_current_span(
    tracer_provider, meter_provider, span_exporter
) -> None:
    runs = _runs(tracer_provider, meter_provider)
    with tracer_provider.get_tracer("app").start_as_current_span("request"):
        runs.open("agent", "unknown-parent", step_invocation("agent", "planner"))
        runs.close("agent")
    agent, request = span_exporter.get_finished_spans()
    assert agent.parent.span_id == request.context.span_id
    assert agent.kind is SpanKind.INTERNAL


def test_close_ends_once_and_records_the_error(
    tracer_provider, meter_provider, span_exporter
) -> None:
    runs = _runs(tracer_provider, meter_provider)
    runs.open("tool", None, step_invocation("tool", "lookup"))
    assert runs.close("tool", ValueError("no such city")) is not None
    assert runs.close("tool") is None
    assert runs.close("never-opened") is None
    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ValueError"


def test_a_chat_run_merges_with_the_instrumented_provider_call(
    tracer_provider,
    meter_provider,
    metric_reader,
    span_exporter,
    instrument_openai,
    openai_client,
) -> None:
    instrument_openai()
    runs = _runs(tracer_provider, meter_provider)
    runs.open("agent", None, step_invocation("agent", "helper"))
    runs.open("llm", "agent", _chat_run(), attach=True)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert runs.merged("llm")
    runs.close("llm")
    runs.close("agent")

    spans = span_exporter.get_finished_spans()
    chats = [s for s in spans if s.attributes.get(semconv.OPERATION) == semconv.OP_CHAT]
    assert len(chats) == 1, [s.name for s in spans]
    (chat,) = chats
    agent = next(s for s in spans if s.name == "invoke_agent helper")
    assert chat.parent.span_id == agent.context.span_id
    assert chat.kind is SpanKind.CLIENT
    # the provider adapter recorded the response on the framework's span
    assert chat.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0
    assert chat.attributes[semconv.RESPONSE_ID]
    (duration,) = data_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 1
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_a_chat_run_with_no_provider_underneath_records_its_own_metrics(
    tracer_provider, meter_provider, metric_reader, span_exporter
) -> None:
    runs = _runs(tracer_provider, meter_provider)
    inv = runs.open("llm", None, _chat_run(), attach=True)
    inv.attributes[semconv.USAGE_INPUT_TOKENS] = 5
    inv.attributes[semconv.USAGE_OUTPUT_TOKENS] = 2
    assert not runs.merged("llm")
    runs.close("llm")

    (span,) = span_exporter.get_finished_spans()
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == 2
    (duration,) = data_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 1
    assert sum(p.count for p in data_points(metric_reader, semconv.METRIC_TOKEN_USAGE)) == 2


def test_an_attached_run_ended_in_another_thread_leaves_that_context_alone(
    tracer_provider, meter_provider, span_exporter
) -> None:
    # in a copy of the context: the span stays current in this thread by design
    contextvars.copy_context().run(_end_elsewhere, tracer_provider, meter_provider, span_exporter)
    assert trace.get_current_span() is trace.INVALID_SPAN


def _end_elsewhere(tracer_provider: Any, meter_provider: Any, span_exporter: Any) -> None:
    runs = _runs(tracer_provider, meter_provider)
    inv = runs.open("llm", None, _chat_run(), attach=True)
    assert trace.get_current_span() is inv.span
    seen: list[Any] = []

    def elsewhere() -> None:
        runs.close("llm")
        seen.append(trace.get_current_span())

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join()
    assert seen == [trace.INVALID_SPAN]
    assert len(span_exporter.get_finished_spans()) == 1


def test_attached_runs_in_concurrent_tasks_keep_their_own_parents(
    tracer_provider, meter_provider, span_exporter
) -> None:
    runs = _runs(tracer_provider, meter_provider)

    async def branch(name: str) -> None:
        runs.open(name, "graph", step_invocation("agent", name), attach=True)
        await asyncio.sleep(0.01)
        child = tracer_provider.get_tracer("app").start_span(f"inside {name}")
        child.end()
        runs.close(name)

    async def graph() -> None:
        runs.open("graph", None, step_invocation("workflow", "fanout"))
        await asyncio.gather(branch("a"), branch("b"))
        runs.close("graph")

    asyncio.run(graph())
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    for name in ("a", "b"):
        assert (
            spans[f"inside {name}"].parent.span_id == spans[f"invoke_agent {name}"].context.span_id
        )
        assert (
            spans[f"invoke_agent {name}"].parent.span_id
            == spans["invoke_workflow fanout"].context.span_id
        )


def test_attach_makes_an_open_run_current_once_until_release(
    tracer_provider, meter_provider, span_exporter
) -> None:
    runs = _runs(tracer_provider, meter_provider)
    before = trace.get_current_span()
    runs.open("a", None, _chat_run())
    runs.open("b", None, _chat_run())
    assert runs.attach("a") is True
    assert trace.get_current_span() is runs.get("a").span
    assert runs.attach("a") is False  # current already
    runs.release("a")
    assert trace.get_current_span() is before
    assert runs.attach("missing") is False
    runs.close("a")
    runs.close("b")
    assert len(span_exporter.get_finished_spans()) == 2
