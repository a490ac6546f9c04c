"""The service's destinations, translated each for itself: one request from a sender reaches a
Phoenix, a Langfuse and a plain OTLP destination (real OTLP receivers, the Langfuse one
under Langfuse's own path), each with what it reads, through the service's forwarders."""

from __future__ import annotations

import logging

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmtap import semconv
from llmtap.export.translations import build_translator
from llmtap.service.spans import attributes_of, decode_items, encode_request
from llmtap.service.translate import request_translator, translate_request
from support.otlp_receiver import OtlpReceiver
from support.running_service import grpc_call, grpc_export, ids, running_service, span_request

MESSAGES = '[{"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}]'
ANSWER = '[{"role": "assistant", "parts": [{"type": "text", "content": "Shipped."}]}]'


def _trace() -> list[dict]:
    (trace_id, root_id), (_, chat_id) = ids(2, seed=5)
    chat = {
        semconv.OPERATION: "chat",
        semconv.PROVIDER: "openai",
        semconv.REQUEST_MODEL: "gpt-4o-mini",
        semconv.USAGE_INPUT_TOKENS: 1000,
        semconv.USAGE_OUTPUT_TOKENS: 200,
        semconv.INPUT_MESSAGES: MESSAGES,
        semconv.OUTPUT_MESSAGES: ANSWER,
    }
    return [
        {
            "trace_id": trace_id,
            "span_id": chat_id,
            "parent_span_id": root_id,
            "name": "chat gpt-4o-mini",
            "kind": 3,
            "start_time_unix_nano": 1_100_000_000,
            "end_time_unix_nano": 1_900_000_000,
            "attributes": chat,
        },
        {
            "trace_id": trace_id,
            "span_id": root_id,
            "name": "invoke_workflow answer",
            "kind": 1,
            "start_time_unix_nano": 1_000_000_000,
            "end_time_unix_nano": 2_000_000_000,
            "attributes": {semconv.OPERATION: "invoke_workflow"},
        },
    ]


def test_each_destination_gets_its_own_translation(tmp_path) -> None:
    with (
        OtlpReceiver() as phoenix,
        OtlpReceiver(http_path_prefix="/api/public/otel") as langfuse,
        OtlpReceiver() as plain,
    ):
        exports = [
            {"preset": "phoenix", "endpoint": phoenix.http_url("traces"), "project": "shop"},
            {
                "preset": "langfuse",
                "endpoint": langfuse.http_endpoint,
                "public_key": "pk-lf-1",
                "secret_key": "sk-lf-2",
            },
            grpc_export(plain),
        ]
        with running_service(tmp_path, exports) as app:
            request = span_request(_trace(), resource={"service.name": "support-bot"})
            grpc_call(app, request.SerializeToString())
            got = {
                name: {s.name: s for s in rx.wait_for_spans(2)}
                for name, rx in (("phoenix", phoenix), ("langfuse", langfuse), ("plain", plain))
            }
    chat = got["phoenix"]["chat gpt-4o-mini"]
    cost = chat.attributes[semconv.LLMTAP_COST_TOTAL]  # the service's cost stage ran first
    assert cost > 0 and chat.attributes["llm.cost.total"] == cost
    assert chat.attributes["openinference.span.kind"] == "LLM"
    assert chat.attributes["llm.token_count.prompt"] == 1000
    root = got["phoenix"]["invoke_workflow answer"]
    assert root.attributes["input.value"] == MESSAGES
    assert root.attributes["output.value"] == ANSWER
    assert root.resource["openinference.project.name"] == "shop"
    # Langfuse: the trace's input and output on the root, the cost under its name
    lf_root, lf_chat = (
        got["langfuse"]["invoke_workflow answer"],
        got["langfuse"]["chat gpt-4o-mini"],
    )
    assert lf_root.attributes["langfuse.trace.input"] == MESSAGES
    assert lf_root.attributes["langfuse.trace.output"] == ANSWER
    assert lf_chat.attributes[semconv.USAGE_COST] == cost
    assert not any(k.startswith("openinference.") for k in lf_chat.attributes)
    # the plain destination: as the service made them
    for span in got["plain"].values():
        assert not any(
            k.startswith(("openinference.", "llm.", "input.", "langfuse.")) for k in span.attributes
        )
        assert semconv.USAGE_COST not in span.attributes
        assert "openinference.project.name" not in span.resource
    assert got["plain"]["chat gpt-4o-mini"].attributes[semconv.LLMTAP_COST_TOTAL] == cost


def test_a_request_that_cannot_be_translated_goes_as_it_is(caplog) -> None:
    translator = build_translator(["openinference"], destination="phoenix")
    assert translator is not None
    translate = request_translator(translator)
    garbage = b"\x0a\x05not a request"
    with caplog.at_level(logging.WARNING, logger="llmtap"):
        assert translate(garbage) == garbage
        assert translate(garbage) == garbage
    failures = [r for r in caplog.records if "translating spans for phoenix" in r.getMessage()]
    assert len(failures) == 1  # logged once, never raised


def test_queued_items_stay_untranslated() -> None:
    """Translating a request for one destination leaves the queued bytes alone."""
    body = span_request(_trace()).SerializeToString()
    items = decode_items(body)
    before = [bytes(b) for _, _, b in items]
    translator = build_translator(["cost_alias", "openinference"])
    assert translator is not None
    out = translate_request(translator, encode_request(items))
    assert [bytes(b) for _, _, b in items] == before
    message = ExportTraceServiceRequest.FromString(out)
    spans = message.resource_spans[0].scope_spans[0].spans
    kinds = [attributes_of(s.attributes)["openinference.span.kind"] for s in spans]
    assert kinds == ["LLM", "CHAIN"]
    assert attributes_of(message.resource_spans[0].resource.attributes) == {
        "service.name": "raw",
        "openinference.project.name": "raw",
    }


def test_a_retried_request_keeps_its_translation(tmp_path) -> None:
    """The children went in an earlier request; the root's request fails once and is sent
    again: it still carries the trace's input and output."""
    chat, root = _trace()
    with OtlpReceiver() as phoenix:
        exports = [{"preset": "phoenix", "endpoint": phoenix.http_url("traces")}]
        with running_service(tmp_path, exports) as app:
            grpc_call(app, span_request([chat]).SerializeToString())
            phoenix.wait_for_spans(1)
            phoenix.fail_next(1)  # 503: retried
            grpc_call(app, span_request([root]).SerializeToString())
            spans = {s.name: s for s in phoenix.wait_for_spans(2)}
    assert len(phoenix.requests()) == 2  # the failed call is not kept
    attrs = spans["invoke_workflow answer"].attributes
    assert attrs["input.value"] == MESSAGES
    assert attrs["output.value"] == ANSWER


def test_a_root_before_its_children_in_one_request_still_gets_their_input_and_output() -> None:
    """The root in a scope of its own that comes first in the request (a workflow step's
    scope before the model call's): the request is one batch, so the root still takes its
    trace's input and output."""
    chat, root = _trace()
    request = span_request([root], scope="llmtap.steps")
    second = span_request([chat], scope="llmtap.openai").resource_spans[0]
    request.resource_spans.add().CopyFrom(second)
    translator = build_translator(["openinference"])
    assert translator is not None
    out = ExportTraceServiceRequest.FromString(
        translate_request(translator, request.SerializeToString())
    )
    root_attrs = attributes_of(out.resource_spans[0].scope_spans[0].spans[0].attributes)
    assert root_attrs["input.value"] == MESSAGES
    assert root_attrs["output.value"] == ANSWER
    assert translator.trace.pending == 0


def test_children_in_a_later_request_than_their_root_are_not_guessed_for_it() -> None:
    chat, root = _trace()
    translator = build_translator(["openinference"])
    assert translator is not None
    first = translate_request(translator, span_request([root]).SerializeToString())
    translate_request(translator, span_request([chat]).SerializeToString())
    root_attrs = attributes_of(
        ExportTraceServiceRequest.FromString(first)
        .resource_spans[0]
        .scope_spans[0]
        .spans[0]
        .attributes
    )
    assert "input.value" not in root_attrs and "output.value" not in root_attrs
    assert translator.trace.pending == 0  # nothing kept for a root that has gone
