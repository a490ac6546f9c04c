"""Two destinations of one app, one translated and one not: spans made through the app's
real pipeline (``llmtap.yaml`` -> stages -> one queue per destination) reach two real OTLP
receivers, the ``phoenix`` destination with OpenInference's names (its preset's default
translation) and the other one with llmtap's spans as they are."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from llmtap import semconv
from llmtap.config_file import load_config
from llmtap.pipeline.stages import build_stages
from llmtap.sdk.build import build_destinations
from llmtap.sdk.processor import PipelineProcessor
from support.otlp_receiver import OtlpReceiver

MESSAGES = '[{"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}]'
ANSWER = '[{"role": "assistant", "parts": [{"type": "text", "content": "Shipped."}]}]'


def _config(tmp_path: Path, phoenix: OtlpReceiver, plain: OtlpReceiver, extra: str = "") -> Path:
    path = tmp_path / "llmtap.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            service_name: support-bot
            export:
              - {{preset: phoenix, endpoint: "{phoenix.http_url("traces")}"{extra}}}
              - {{preset: otlp, endpoint: "{plain.grpc_endpoint}", protocol: grpc}}
            """
        ).lstrip()
    )
    return path


def _record(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("app")
    root_attrs = {semconv.OPERATION: "invoke_workflow", semconv.WORKFLOW_NAME: "answer"}
    with tracer.start_as_current_span("invoke_workflow answer", attributes=root_attrs):
        chat = {
            semconv.OPERATION: "chat",
            semconv.PROVIDER: "openai",
            semconv.REQUEST_MODEL: "gpt-4o-mini",
            semconv.USAGE_INPUT_TOKENS: 1000,
            semconv.USAGE_OUTPUT_TOKENS: 200,
            semconv.INPUT_MESSAGES: MESSAGES,
            semconv.OUTPUT_MESSAGES: ANSWER,
        }
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=chat):
            pass


def _run(config: Path) -> None:
    cfg = load_config(config)
    stages = build_stages(cfg, meter_provider=NoOpMeterProvider())
    pipeline = PipelineProcessor(stages, build_destinations(cfg))
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(pipeline)
    _record(provider)
    provider.force_flush()
    provider.shutdown()


def test_one_destination_translated_the_other_as_llmtap_made_it(tmp_path) -> None:
    with OtlpReceiver() as phoenix, OtlpReceiver() as plain:
        _run(_config(tmp_path, phoenix, plain))
        translated = {s.name: s for s in phoenix.wait_for_spans(2)}
        untouched = {s.name: s for s in plain.wait_for_spans(2)}
    chat, root = translated["chat gpt-4o-mini"], translated["invoke_workflow answer"]
    assert chat.attributes["openinference.span.kind"] == "LLM"
    assert chat.attributes["llm.model_name"] == "gpt-4o-mini"
    assert chat.attributes["llm.token_count.total"] == 1200
    cost = chat.attributes[semconv.LLMTAP_COST_TOTAL]  # by the cost stage, before the queues
    assert cost > 0 and chat.attributes["llm.cost.total"] == cost
    assert chat.attributes["input.value"] == MESSAGES
    assert root.attributes["openinference.span.kind"] == "CHAIN"
    assert root.attributes["input.value"] == MESSAGES  # the trace's, on the workflow root
    assert root.attributes["output.value"] == ANSWER
    assert root.attributes["output.mime_type"] == "application/json"
    assert chat.resource["openinference.project.name"] == "support-bot"
    # the other destination: the same spans, without any of it
    for name, span in untouched.items():
        assert not any(
            k.startswith(("openinference.", "llm.", "input.", "output.")) for k in span.attributes
        )
        assert "openinference.project.name" not in span.resource
        assert span.span_id == translated[name].span_id
    assert untouched["chat gpt-4o-mini"].attributes[semconv.LLMTAP_COST_TOTAL] == cost
    assert semconv.USAGE_COST not in untouched["chat gpt-4o-mini"].attributes


def test_translate_empty_sends_phoenix_the_spans_as_they_are(tmp_path) -> None:
    with OtlpReceiver() as phoenix, OtlpReceiver() as plain:
        _run(_config(tmp_path, phoenix, plain, ", translate: []"))
        spans = phoenix.wait_for_spans(2)
    assert all("openinference.span.kind" not in s.attributes for s in spans)


def test_project_names_the_phoenix_project(tmp_path) -> None:
    with OtlpReceiver() as phoenix, OtlpReceiver() as plain:
        _run(_config(tmp_path, phoenix, plain, ", project: checkout"))
        spans = phoenix.wait_for_spans(2)
    assert {s.resource["openinference.project.name"] for s in spans} == {"checkout"}
    assert {s.resource["service.name"] for s in spans} == {"support-bot"}


def test_a_batch_sent_again_keeps_its_translation() -> None:
    """The chat span went in an earlier batch; the root's batch fails (the backend is down)
    and the queue sends the same batch again once it is back: the root still has the
    trace's input and output."""
    from llmtap.export.destination_config import ExportConfig
    from llmtap.export.presets import build_exporter, build_translator_for
    from llmtap.export.translations.readable_spans import ReadableTranslator
    from llmtap.sdk.processor import exporter_queue

    with OtlpReceiver() as first:
        port = first.grpc_port
        cfg = ExportConfig(
            preset="otlp", endpoint=first.grpc_endpoint, timeout_s=1, translate=["openinference"]
        )
        translator = build_translator_for(cfg, "support-bot")
        assert translator is not None
        queue = exporter_queue(
            "phoenix", build_exporter(cfg), translate=ReadableTranslator(translator)
        )
        sender = queue.sender  # type: ignore[attr-defined]
        provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
        ended: list = []
        provider.add_span_processor(_Collect(ended))
        _record(provider)
        chat, root = ended
        assert sender([chat])
        first.wait_for_spans(1)
    batch = [root]
    assert not sender(batch)  # nobody listens
    with OtlpReceiver(grpc_port=port) as second:
        deadline = time.monotonic() + 15
        while not sender(batch):  # as the queue retries a failed batch
            assert time.monotonic() < deadline, "the backend never took the batch again"
        (got,) = second.wait_for_spans(1)
    queue.close(1)
    assert got.attributes["input.value"] == MESSAGES
    assert got.attributes["output.value"] == ANSWER


class _Collect(SpanProcessor):
    def __init__(self, into: list) -> None:
        self.into = into

    def on_end(self, span) -> None:
        self.into.append(span)
