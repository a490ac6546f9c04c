"""Log records the app exports (llmtap's and other instrumentations' GenAI events) have
their bodies redacted as well as their attributes; other records are left as they are."""

from __future__ import annotations

from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from llmtap.pipeline.redact import RedactionConfig, RedactionStage
from llmtap.sdk.distro import RedactingLogExporter

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def export(record: LogRecord, scope: str = "opentelemetry.instrumentation.openai_v2", **cfg: Any):
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    stage = RedactionStage(RedactionConfig(**cfg))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(RedactingLogExporter(memory, [stage]))
    )
    provider.get_logger(scope).emit(record)
    provider.shutdown()
    (got,) = memory.get_finished_logs()
    return got.log_record


def test_a_genai_event_body_map_is_redacted() -> None:
    body = {"index": 0, "message": {"role": "assistant", "content": f"write to {EMAIL}"}}
    got = export(LogRecord(event_name="gen_ai.choice", body=body))
    assert got.body == {"index": 0, "message": {"role": "assistant", "content": "write to <EMAIL>"}}
    assert got.attributes["llmtap.redaction.email"] == 1


def test_a_string_body_of_an_llmtap_record_is_redacted() -> None:
    got = export(LogRecord(body=f"card {CARD}", attributes={"note": EMAIL}), scope="llmtap")
    assert got.body == "card <CREDIT_CARD>"
    assert got.attributes["note"] == "<EMAIL>"


def test_an_event_named_by_attribute_is_redacted_and_drop_mode_drops_the_body() -> None:
    record = LogRecord(body=f"from {EMAIL}", attributes={"event.name": "gen_ai.user.message"})
    assert export(record, mode="drop").body == "<REDACTED>"


def test_other_records_are_left_alone() -> None:
    got = export(LogRecord(body=f"user {EMAIL} logged in"), scope="app.auth")
    assert got.body == f"user {EMAIL} logged in"
