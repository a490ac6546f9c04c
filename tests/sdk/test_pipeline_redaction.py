"""The app-side pipeline with the real redaction stage, the real SDK and a real OTLP receiver:
PII in every place a span carries strings (name, resource, scope, links, event names,
attribute keys, bytes, allow-listed free text) leaves the app redacted."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, Status, StatusCode

from llmtap.export.presets import build_exporter
from llmtap.pipeline.redact import RedactionStage
from llmtap.sdk.processor import PipelineProcessor, exporter_queue
from support.otlp_receiver import OtlpReceiver

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
API_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5q"


class Preset:
    def __init__(self, endpoint: str) -> None:
        self.preset = "otlp"
        self.endpoint = endpoint
        for key in ("protocol", "headers", "api_key", "public_key", "secret_key", "site", "path"):
            setattr(self, key, None)
        for key in ("insecure", "timeout_s", "name", "compression"):
            setattr(self, key, None)


def test_every_string_of_a_span_is_redacted_before_it_leaves_the_app() -> None:
    with OtlpReceiver() as rx:
        queue = exporter_queue("otlp", build_exporter(Preset(rx.grpc_endpoint)))
        pipeline = PipelineProcessor([RedactionStage()], [queue])
        resource = Resource.create({"service.name": "shop", "deploy.owner": EMAIL})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(pipeline)
        tracer = provider.get_tracer(
            f"tracer of {EMAIL}", "1.0", attributes={"scope.note": f"card {CARD}"}
        )
        with tracer.start_as_current_span("parent") as parent:
            pass
        link = Link(parent.get_span_context(), {"why": f"key {API_KEY}"})
        with tracer.start_as_current_span(f"lookup {EMAIL}", links=[link]) as span:
            span.set_attribute(f"contact:{EMAIL}", "kept")
            span.set_attribute("app.blob", f"to {EMAIL}".encode())
            span.set_attribute("session.id", f"session of {EMAIL}")
            span.set_attribute("server.address", "10.0.0.5")
            span.add_event(f"mailed {EMAIL}", {"n": 1})
            span.set_status(Status(StatusCode.ERROR, f"failed for {EMAIL}"))
        assert span.name == f"lookup {EMAIL}"  # the live span is not touched
        provider.force_flush()
        spans = {s.name: s for s in rx.wait_for_spans(2)}
        got = spans["lookup <EMAIL>"]
        assert got.resource == {**dict(resource.attributes), "deploy.owner": "<EMAIL>"}
        assert got.scope_name == "tracer of <EMAIL>" and got.scope_version == "1.0"
        assert got.attributes["contact:<EMAIL>"] == "kept"
        # older OpenTelemetry API releases (1.40 among them) decode a bytes value to str when set
        stored = span.attributes["app.blob"]
        blob = b"to <EMAIL>" if isinstance(stored, bytes) else "to <EMAIL>"
        assert got.attributes["app.blob"] == blob
        assert got.attributes["session.id"] == "session of <EMAIL>"
        assert got.attributes["server.address"] == "10.0.0.5"  # an address, allow-listed
        assert got.events[0].name == "mailed <EMAIL>"
        assert got.links[0].attributes == {"why": "key <SECRET>"}
        assert got.status_message == "failed for <EMAIL>"
        # name, scope name, resource, key, bytes, session.id, event name, status: 8 emails;
        # the scope's card and the link's key
        assert got.attributes["llmtap.redaction.count"] == 10
        assert got.attributes["llmtap.redaction.email"] == 8
        assert got.attributes["llmtap.redaction.credit_card"] == 1
        assert got.attributes["llmtap.redaction.secret"] == 1
        for r in rx.requests("traces"):
            for rs in r.message.resource_spans:
                for ss in rs.scope_spans:
                    scope_attrs = {kv.key: kv.value.string_value for kv in ss.scope.attributes}
                    assert scope_attrs == {"scope.note": "card <CREDIT_CARD>"}
        clean = spans["parent"]
        # the resource, the scope name and the scope's card count on every span they carry
        assert clean.attributes["llmtap.redaction.count"] == 3
        assert EMAIL not in repr([s.__dict__ for s in rx.spans()])
        provider.shutdown()
