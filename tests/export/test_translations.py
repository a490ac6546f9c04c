"""Per-destination translations (``llmtap.export.translations``): what each one adds to a
span, the trace memory that gives a workflow root its input and output, the presets'
defaults, the ``translate:`` errors, and that a failing translation never raises.

The spans here are ``SpanData`` records as the pipeline hands them over; the names asserted
are OpenInference's (Arize-ai/openinference spec/semantic_conventions.md: span kinds,
``input.value``, ``llm.token_count.*``, ``llm.cost.*``, ``llm.input_messages``,
``retrieval.documents``, ``openinference.project.name``) and Langfuse's
(``langfuse.trace.input``/``output``, ``langfuse.observation.input``/``output``,
``gen_ai.usage.cost``).
"""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pytest

from llmtap import semconv
from llmtap.config_file import read_config
from llmtap.export.destination_config import ExportConfig
from llmtap.export.presets import build_translator_for, default_translations, translation_names
from llmtap.export.translations import TRANSLATIONS, Translation, Translator, build_translator
from llmtap.export.translations._io import TraceIO
from llmtap.pipeline.span import EventData, SpanData

TRACE = 0xABC
ROOT = 1

MESSAGES_IN = json.dumps(
    [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]},
    ]
)
MESSAGES_OUT = json.dumps(
    [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Let me look."},
                {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"id": 7}},
            ],
            "finish_reason": "tool_call",
        }
    ]
)


def chat(span_id: int = 2, parent: int = ROOT, start: int = 10, end: int = 20, **extra) -> SpanData:
    attrs = {
        semconv.OPERATION: "chat",
        semconv.PROVIDER: "openai",
        semconv.REQUEST_MODEL: "gpt-4o-mini",
        semconv.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        semconv.USAGE_INPUT_TOKENS: 100,
        semconv.USAGE_OUTPUT_TOKENS: 20,
        semconv.USAGE_CACHE_READ_INPUT_TOKENS: 40,
        semconv.LLMTAP_COST_TOTAL: 0.0003,
        semconv.LLMTAP_COST_INPUT: 0.0001,
        semconv.LLMTAP_COST_CACHED_INPUT: 0.00005,
        semconv.LLMTAP_COST_OUTPUT: 0.00015,
        semconv.INPUT_MESSAGES: MESSAGES_IN,
        semconv.OUTPUT_MESSAGES: MESSAGES_OUT,
        **extra,
    }
    return SpanData(
        "chat gpt-4o-mini",
        attrs,
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        start_ns=start,
        end_ns=end,
        resource={"service.name": "support-bot"},
    )


def step(name: str, span_id: int, parent: int = 0, **attrs) -> SpanData:
    return SpanData(
        name,
        dict(attrs),
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        start_ns=0,
        end_ns=100,
        resource={"service.name": "support-bot"},
    )


def workflow() -> SpanData:
    return step(
        "invoke_workflow answer",
        ROOT,
        **{semconv.OPERATION: "invoke_workflow", semconv.WORKFLOW_NAME: "answer"},
    )


def translated(names: list[str], *spans: SpanData, **kw) -> list[SpanData]:
    translator = build_translator(names, **kw)
    assert translator is not None
    for span in spans:
        translator.span(span)
    return list(spans)


# openinference --------------------------------------------------------------------------------


def test_openinference_model_call() -> None:
    (span,) = translated(["openinference"], chat())
    attrs = span.attributes
    assert attrs["openinference.span.kind"] == "LLM"
    assert attrs["llm.model_name"] == "gpt-4o-mini-2024-07-18"
    assert attrs["llm.provider"] == "openai"
    assert attrs["llm.token_count.prompt"] == 100
    assert attrs["llm.token_count.completion"] == 20
    assert attrs["llm.token_count.total"] == 120
    assert attrs["llm.token_count.prompt_details.cache_read"] == 40
    assert attrs["llm.cost.total"] == 0.0003
    assert attrs["llm.cost.prompt"] == pytest.approx(0.00015)
    assert attrs["llm.cost.completion"] == pytest.approx(0.00015)
    assert attrs["input.value"] == MESSAGES_IN and attrs["input.mime_type"] == "application/json"
    assert attrs["output.value"] == MESSAGES_OUT
    assert attrs["llm.input_messages.0.message.role"] == "system"
    assert attrs["llm.input_messages.1.message.content"] == "Where is my order?"
    assert attrs["llm.output_messages.0.message.content"] == "Let me look."
    call = "llm.output_messages.0.message.tool_calls.0.tool_call"
    assert attrs[f"{call}.function.name"] == "lookup"
    assert json.loads(attrs[f"{call}.function.arguments"]) == {"id": 7}
    # llmtap's own attributes stay as they were
    assert attrs[semconv.LLMTAP_COST_TOTAL] == 0.0003
    assert semconv.USAGE_COST not in attrs


def test_openinference_reads_content_recorded_on_the_event_only() -> None:
    span = chat()
    content = {k: span.attributes.pop(k) for k in (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES)}
    span.events.append(EventData(semconv.EVENT_INFERENCE_DETAILS, content))
    translated(["openinference"], span)
    assert span.attributes["input.value"] == MESSAGES_IN
    assert span.attributes["output.value"] == MESSAGES_OUT


def test_openinference_embedding_counts_tokens_and_names_the_model() -> None:
    span = step(
        "embeddings text-embedding-3-small",
        5,
        ROOT,
        **{
            semconv.OPERATION: "embeddings",
            semconv.PROVIDER: "azure.ai.openai",
            semconv.REQUEST_MODEL: "text-embedding-3-small",
            semconv.USAGE_INPUT_TOKENS: 8,
            semconv.USAGE_COST: 1.6e-7,  # costed by another SDK
        },
    )
    attrs = translated(["openinference"], span)[0].attributes
    assert attrs["openinference.span.kind"] == "EMBEDDING"
    assert attrs["embedding.model_name"] == "text-embedding-3-small"
    assert attrs["llm.provider"] == "azure"
    assert attrs["llm.token_count.prompt"] == 8 and attrs["llm.token_count.total"] == 8
    assert attrs["llm.cost.total"] == 1.6e-7


@pytest.mark.parametrize(
    ("attrs", "name", "kind"),
    [
        ({semconv.OPERATION: "retrieval"}, "retrieval kb", "RETRIEVER"),
        ({semconv.OPERATION: "rerank"}, "rerank rerank-v3.5", "RERANKER"),
        ({semconv.LLMTAP_STEP_KIND: "rerank"}, "rerank docs", "RERANKER"),
        ({semconv.OPERATION: "execute_tool"}, "execute_tool lookup", "TOOL"),
        ({semconv.OPERATION: "invoke_agent"}, "invoke_agent triage", "AGENT"),
        ({semconv.OPERATION: "invoke_workflow"}, "invoke_workflow answer", "CHAIN"),
        ({semconv.LLMTAP_STEP_KIND: "guardrail"}, "guardrail pii", "GUARDRAIL"),
        ({semconv.LLMTAP_STEP_KIND: "node"}, "node plan", "CHAIN"),
        ({semconv.EVALUATION_NAME: "faithfulness"}, "evaluate faithfulness", "EVALUATOR"),
        ({"http.request.method": "POST"}, "POST /ask", "CHAIN"),
    ],
)
def test_openinference_span_kinds(attrs, name, kind) -> None:
    span = translated(["openinference"], step(name, 7, ROOT, **attrs))[0]
    assert span.attributes["openinference.span.kind"] == kind


def test_openinference_tool_and_documents() -> None:
    tool = step(
        "execute_tool lookup",
        3,
        ROOT,
        **{
            semconv.OPERATION: "execute_tool",
            semconv.TOOL_NAME: "lookup",
            semconv.TOOL_CALL_ARGUMENTS: '{"id": 7}',
            semconv.TOOL_CALL_RESULT: "shipped",
        },
    )
    docs = [{"id": "d1", "score": 0.9, "content": "Orders ship in 2 days."}, "plain text"]
    retrieval = step(
        "retrieval kb",
        4,
        ROOT,
        **{
            semconv.OPERATION: "retrieval",
            semconv.RETRIEVAL_QUERY_TEXT: "shipping time",
            semconv.RETRIEVAL_DOCUMENTS: json.dumps(docs),
        },
    )
    translated(["openinference"], tool, retrieval)
    assert tool.attributes["tool.name"] == "lookup"
    assert tool.attributes["input.value"] == '{"id": 7}'
    assert tool.attributes["input.mime_type"] == "application/json"
    assert tool.attributes["output.value"] == "shipped"
    assert tool.attributes["output.mime_type"] == "text/plain"
    got = retrieval.attributes
    assert got["input.value"] == "shipping time"
    assert got["retrieval.documents.0.document.id"] == "d1"
    assert got["retrieval.documents.0.document.score"] == 0.9
    assert got["retrieval.documents.0.document.content"] == "Orders ship in 2 days."
    assert got["retrieval.documents.1.document.content"] == "plain text"


def test_openinference_verdict_is_an_evaluator_with_its_result_as_output() -> None:
    verdict = step(
        "evaluate faithfulness",
        9,
        2,
        **{
            semconv.EVALUATION_NAME: "faithfulness",
            semconv.EVALUATION_SCORE_LABEL: "fail",
            semconv.EVALUATION_SCORE_VALUE: 0.2,
            semconv.EVALUATION_EXPLANATION: "claims an unsupported date",
        },
    )
    attrs = translated(["openinference"], verdict)[0].attributes
    assert attrs["openinference.span.kind"] == "EVALUATOR"
    assert json.loads(attrs["output.value"]) == {
        "label": "fail",
        "score": 0.2,
        "explanation": "claims an unsupported date",
    }


def test_a_workflow_root_gets_the_traces_first_input_and_last_output() -> None:
    first = chat(span_id=2, start=10, end=20)
    second = chat(span_id=3, start=30, end=40)
    second.attributes[semconv.INPUT_MESSAGES] = '[{"role": "user", "parts": []}]'
    second.attributes[semconv.OUTPUT_MESSAGES] = '"final answer"'
    root = workflow()
    translator = build_translator(["openinference"])
    assert translator is not None
    for span in (second, first, root):  # children end, and pass, before their root
        translator.span(span)
    assert root.attributes["input.value"] == MESSAGES_IN  # the first call's (by start)
    assert root.attributes["output.value"] == '"final answer"'  # the last call's (by end)
    assert translator.trace.pending == 0  # forgotten once the root passed


def test_a_root_first_in_its_batch_gets_what_its_children_later_in_the_batch_carry() -> None:
    first = chat(span_id=2, start=10, end=20)
    second = chat(span_id=3, start=30, end=40)
    second.attributes[semconv.OUTPUT_MESSAGES] = '"final answer"'
    root = workflow()
    translator = build_translator(["openinference", "langfuse"])
    assert translator is not None
    translator.spans([root, second, first])  # e.g. the root's scope first in a request
    assert root.attributes["input.value"] == MESSAGES_IN
    assert root.attributes["output.value"] == '"final answer"'
    assert root.attributes["langfuse.trace.input"] == MESSAGES_IN
    assert first.attributes["input.value"] == MESSAGES_IN  # each child keeps its own
    assert second.attributes["output.value"] == '"final answer"'
    assert translator.trace.pending == 0


def test_a_root_is_not_given_what_arrives_after_it() -> None:
    root = workflow()
    translator = build_translator(["openinference"])
    assert translator is not None
    translator.spans([root])
    late = chat(span_id=2)
    translator.spans([late])
    assert "input.value" not in root.attributes and "output.value" not in root.attributes
    assert late.attributes["input.value"] == MESSAGES_IN
    assert translator.trace.pending == 0  # the trace's root has gone: nothing is kept


def test_a_root_with_its_own_input_keeps_it() -> None:
    root = chat(parent=0)
    root.attributes[semconv.INPUT_MESSAGES] = '"own"'
    child = step("execute_tool x", 5, root.span_id, **{semconv.TOOL_CALL_ARGUMENTS: "child"})
    translated(["openinference"], child, root)
    assert root.attributes["input.value"] == '"own"'


def test_the_trace_memory_is_bounded() -> None:
    memory = TraceIO(max_traces=3)
    for trace in range(10):
        span = step("execute_tool x", 5, ROOT, **{semconv.TOOL_CALL_ARGUMENTS: "a"})
        span.trace_id = trace + 1
        memory.remember(span)
    assert memory.pending == 3


def test_openinference_project_is_a_resource_attribute() -> None:
    by_service = translated(["openinference"], chat())[0]
    assert by_service.resource["openinference.project.name"] == "support-bot"
    assert "openinference.project.name" not in by_service.attributes
    named = translated(["openinference"], chat(), project="checkout")[0]
    assert named.resource["openinference.project.name"] == "checkout"


def test_the_translated_resource_is_one_object_per_resource() -> None:
    translator = build_translator(["openinference"])
    assert translator is not None
    resource = {"service.name": "a"}
    first, second = chat(), chat(span_id=3)
    first.resource = second.resource = resource
    translator.span(first)
    translator.span(second)
    assert first.resource is second.resource
    assert resource == {"service.name": "a"}  # the original is never changed


def test_a_resource_no_translation_changes_stays_the_same_object() -> None:
    span = chat()
    resource = span.resource
    translated(["langfuse"], span)
    assert span.resource is resource


def test_cost_alias_alone_does_not_look_for_inputs_and_outputs() -> None:
    translator = build_translator(["cost_alias"])
    assert translator is not None
    translator.span(chat(parent=0))
    assert translator.trace.input is None and translator.trace.trace_input is None


def test_openinference_metadata_and_prompt_version() -> None:
    span = chat(
        **{
            "llmtap.metadata.tenant": "acme",
            semconv.LLMTAP_FEATURE: "support",
            semconv.LLMTAP_PROMPT_VERSION: "v3",
        }
    )
    attrs = translated(["openinference"], span)[0].attributes
    assert json.loads(attrs["metadata"]) == {"tenant": "acme", "feature": "support"}
    assert attrs["llm.prompt_template.version"] == "v3"


# cost_alias and langfuse -------------------------------------------------------------------------


def test_cost_alias_adds_the_name_langfuse_and_openlit_read() -> None:
    attrs = translated(["cost_alias"], chat())[0].attributes
    assert attrs[semconv.USAGE_COST] == attrs[semconv.LLMTAP_COST_TOTAL] == 0.0003
    unpriced = step("chat x", 4, ROOT, **{semconv.LLMTAP_COST_UNKNOWN_MODEL: True})
    assert semconv.USAGE_COST not in translated(["cost_alias"], unpriced)[0].attributes


def test_langfuse_trace_input_and_output_on_the_root() -> None:
    child, root = chat(), workflow()
    tool = step(
        "execute_tool lookup",
        3,
        ROOT,
        **{
            semconv.OPERATION: "execute_tool",
            semconv.TOOL_CALL_ARGUMENTS: '{"id": 7}',
            semconv.TOOL_CALL_RESULT: "shipped",
        },
    )
    tool.start_ns, tool.end_ns = 25, 26
    translated(["langfuse"], child, tool, root)
    assert root.attributes["langfuse.trace.input"] == MESSAGES_IN
    assert root.attributes["langfuse.trace.output"] == "shipped"  # ended last
    assert "langfuse.trace.input" not in child.attributes
    # Langfuse maps the GenAI messages itself; a tool's arguments it does not
    assert "langfuse.observation.input" not in child.attributes
    assert tool.attributes["langfuse.observation.input"] == '{"id": 7}'
    assert tool.attributes["langfuse.observation.output"] == "shipped"
    assert child.attributes[semconv.USAGE_COST] == 0.0003


# the translator: order, failures ------------------------------------------------------------------


class Exploding(Translation):
    name = "exploding"

    def span(self, span: SpanData, trace: TraceIO) -> None:
        raise RuntimeError("bug in a translation")


def test_a_failing_translation_is_logged_once_and_never_raises(caplog) -> None:
    translator = Translator([Exploding()], "phoenix")
    spans = ["untranslated"]
    with caplog.at_level(logging.WARNING, logger="llmtap"):
        for _ in range(3):
            result = translator.guard(lambda: [translator.span(chat())], spans)
            assert result is spans
    warnings = [r for r in caplog.records if "translating spans for phoenix" in r.getMessage()]
    assert len(warnings) == 1


def test_no_translations_no_translator() -> None:
    assert build_translator([]) is None
    assert build_translator_for(ExportConfig(preset="jaeger")) is None
    assert build_translator_for(ExportConfig(preset="phoenix", translate=[])) is None


def test_registered_translations() -> None:
    assert set(TRANSLATIONS) >= {"openinference", "cost_alias", "langfuse"}
    assert all(TRANSLATIONS[name].description for name in TRANSLATIONS)


# presets and configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "names"),
    [
        ("phoenix", ("openinference",)),
        ("langfuse", ("langfuse",)),
        ("datadog_llmobs", ()),
        ("jaeger", ()),
        ("otlp", ()),
        ("file", ()),
        ("console", ()),
    ],
)
def test_preset_defaults(preset, names) -> None:
    assert default_translations(preset) == names


def test_translate_replaces_the_presets_default() -> None:
    cfg = ExportConfig(preset="phoenix", translate=["cost_alias"])
    assert translation_names(cfg) == ["cost_alias"]
    assert translation_names(ExportConfig(preset="otlp", translate=["openinference"])) == [
        "openinference"
    ]


def config_problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "llmtap.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return [line.split("llmtap.yaml", 1)[1] for line in read_config(path, {}).messages()]


def test_an_unknown_translation_is_an_error_naming_the_key(tmp_path) -> None:
    lines = config_problems(
        tmp_path,
        """
        export:
          - {preset: jaeger}
          - {preset: phoenix, translate: [openinferense]}
        """,
    )
    assert len(lines) == 1
    assert lines[0].startswith(":3: export[1].translate: unknown translation 'openinferense'")
    assert "(did you mean 'openinference'?)" in lines[0]


def test_translate_must_be_a_list(tmp_path) -> None:
    lines = config_problems(
        tmp_path,
        """
        export:
          - {preset: phoenix, translate: openinference}
        """,
    )
    assert len(lines) == 1 and "export[0].translate" in lines[0]


def test_project_is_a_phoenix_key(tmp_path) -> None:
    assert config_problems(tmp_path, "export: [{preset: phoenix, project: shop}]\n") == []
    lines = config_problems(tmp_path, "export: [{preset: jaeger, project: shop}]\n")
    assert len(lines) == 1 and "export[0].project: export preset 'jaeger' does not use" in lines[0]
