"""Verdicts written out: the ``evaluate {name}`` span (pass, fail, error) in each placement
(linked in an evaluation trace of its own, a child, no span), the ``gen_ai.evaluation.result``
log record, and the review queue of failing spans."""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.judge_config import JudgeConfig, JudgeRule
from llmtap.pipeline.span import SpanData
from llmtap.service.judging import Judging
from llmtap.service.results import (
    build_log_record,
    build_result_span,
    evaluation_attributes,
    evaluation_trace_id,
)
from llmtap.service.review import ReviewQueue, review_entry

RESOURCE = {"service.name": "support-bot", "deployment.environment": "prod"}


def evaluated_span(**attrs: Any) -> SpanData:
    return SpanData(
        name="chat gpt-4o",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.id": "chatcmpl-42",
            "llmtap.feature": "support",
            **attrs,
        },
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        parent_span_id=0x00F067AA0BA902B7,
        kind="CLIENT",
        resource=RESOURCE,
        start_ns=1_000,
        end_ns=2_000,
    )


def judge_verdict(**kw: Any) -> Verdict:
    base: dict[str, Any] = {
        "name": "faithfulness",
        "score": 1.0,
        "label": "faithful",
        "explanation": "every claim is in the documents",
        "passed": True,
        "judge_model": "gpt-4o-mini",
        "input_tokens": 812,
        "output_tokens": 41,
        "cost_usd": 0.00015,
    }
    base.update(kw)
    return Verdict(**base)


def result_for(verdict: Verdict, placement: str = "linked", **kw: Any) -> SpanData:
    span = evaluated_span()
    attrs = evaluation_attributes(verdict, span, source="judge", **kw)
    return build_result_span(
        verdict, span, attrs, start_ns=5_000_000, end_ns=7_500_000, placement=placement
    )


TARGET = {
    "llmtap.evaluation.target.trace_id": "0af7651916cd43dd8448eb211c80319c",
    "llmtap.evaluation.target.span_id": "b7ad6b7169203331",
}


def test_passing_verdict_span():
    evaluated = evaluated_span()
    result = result_for(judge_verdict())
    assert result.name == "evaluate faithfulness"
    # linked (the default): a root span in the evaluation trace, linked to the judged span
    assert result.trace_id == evaluation_trace_id(evaluated.trace_id) != evaluated.trace_id
    assert result.parent_span_id == 0
    (link,) = [(link.trace_id, link.span_id) for link in result.links]
    assert link == (evaluated.trace_id, evaluated.span_id)
    assert result.span_id not in (0, evaluated.span_id)
    assert result.kind == "INTERNAL"
    assert (result.start_ns, result.end_ns) == (5_000_000, 7_500_000)
    assert result.duration_s == pytest.approx(0.0025)
    assert not result.is_error and result.status_message is None
    assert result.resource == RESOURCE
    assert result.resource is not evaluated.resource  # a copy: forwarding may not share it
    assert result.attributes == {
        "gen_ai.evaluation.name": "faithfulness",
        "gen_ai.evaluation.score.value": 1.0,
        "gen_ai.evaluation.score.label": "faithful",
        "gen_ai.evaluation.explanation": "every claim is in the documents",
        "gen_ai.response.id": "chatcmpl-42",
        "llmtap.evaluation.passed": True,
        "llmtap.evaluation.judge_model": "gpt-4o-mini",
        "llmtap.evaluation.usage.input_tokens": 812,
        "llmtap.evaluation.usage.output_tokens": 41,
        "llmtap.evaluation.cost": 0.00015,
        "llmtap.evaluation.source": "judge",
        "llmtap.feature": "support",
        **TARGET,
    }
    assert isinstance(result.attributes["gen_ai.evaluation.score.value"], float)
    assert "gen_ai.operation.name" not in result.attributes  # not a GenAI operation
    assert not any(k.startswith("gen_ai.usage.") for k in result.attributes)


def test_child_placement_puts_the_span_under_the_evaluated_span():
    evaluated = evaluated_span()
    result = result_for(judge_verdict(), placement="child")
    assert result.trace_id == evaluated.trace_id
    assert result.parent_span_id == evaluated.span_id
    assert result.links == []
    assert result.attributes.items() >= TARGET.items()
    assert result.attributes == result_for(judge_verdict()).attributes


def test_evaluation_trace_id_is_one_per_judged_trace():
    ids = [evaluation_trace_id(t) for t in (1, 2, 0x0AF7651916CD43DD8448EB211C80319C)]
    assert len(set(ids)) == 3 and all(0 < i < 1 << 128 for i in ids)
    assert evaluation_trace_id(2) == ids[1]  # derived, not drawn: the same everywhere
    one = result_for(judge_verdict(name="a"))
    other = result_for(judge_verdict(name="b"))
    assert one.trace_id == other.trace_id and one.span_id != other.span_id


def test_no_result_span_for_events_only():
    with pytest.raises(ValueError, match="events_only"):
        result_for(judge_verdict(), placement="events_only")


def test_failing_verdict_span_keeps_its_score():
    result = result_for(judge_verdict(score=0, passed=False, label="unfaithful"), early=True)
    attrs = result.attributes
    assert attrs["gen_ai.evaluation.score.value"] == 0.0
    assert isinstance(attrs["gen_ai.evaluation.score.value"], float)
    assert attrs["gen_ai.evaluation.score.label"] == "unfaithful"
    assert attrs["llmtap.evaluation.passed"] is False
    assert attrs["llmtap.evaluation.early"] is True
    assert not result.is_error


def test_failed_evaluation_has_error_type_and_no_score():
    verdict = judge_verdict(
        score=0.5,  # whatever an evaluator left there, a failed evaluation shows no score
        label="x",
        passed=False,
        error_type="rate_limited",
        explanation="429 from the judge after 3 retries",
        input_tokens=None,
        output_tokens=None,
        cost_usd=None,
    )
    result = result_for(verdict)
    assert result.is_error
    assert result.status_message == "429 from the judge after 3 retries"
    assert result.attributes["error.type"] == "rate_limited"
    for key in (
        "gen_ai.evaluation.score.value",
        "gen_ai.evaluation.score.label",
        "llmtap.evaluation.passed",
    ):
        assert key not in result.attributes
    assert result.attributes["gen_ai.evaluation.name"] == "faithfulness"


def test_odd_values_are_cleaned():
    result = result_for(judge_verdict(score=math.nan, explanation="x" * 10_000, cost_usd=math.inf))
    assert "gen_ai.evaluation.score.value" not in result.attributes
    assert "llmtap.evaluation.cost" not in result.attributes
    assert len(result.attributes["gen_ai.evaluation.explanation"]) == 4096
    plain = evaluated_span()
    del plain.attributes["gen_ai.response.id"]
    attrs = evaluation_attributes(Verdict(name="regex", passed=True), plain, source="rule")
    assert attrs == {
        "gen_ai.evaluation.name": "regex",
        "llmtap.evaluation.passed": True,
        "llmtap.evaluation.source": "rule",
        "llmtap.feature": "support",
    }


def test_result_span_encodes_as_otlp():
    from llmtap.service.spans import from_span_data, to_span_data

    evaluated = evaluated_span()
    child = from_span_data(result_for(judge_verdict(error_type="timeout"), placement="child"))
    assert child.trace_id == evaluated.trace_id.to_bytes(16, "big")
    assert child.parent_span_id == evaluated.span_id.to_bytes(8, "big")
    assert child.kind == 1  # SPAN_KIND_INTERNAL
    assert child.status.code == 2  # STATUS_CODE_ERROR
    assert not child.links
    linked = from_span_data(result_for(judge_verdict()))
    assert linked.trace_id == evaluation_trace_id(evaluated.trace_id).to_bytes(16, "big")
    assert linked.parent_span_id == b""
    (link,) = linked.links
    assert link.trace_id == evaluated.trace_id.to_bytes(16, "big")
    assert link.span_id == evaluated.span_id.to_bytes(8, "big")
    # and back, as a service downstream receives it
    (back,) = to_span_data(linked, RESOURCE).links
    assert (back.trace_id, back.span_id) == (evaluated.trace_id, evaluated.span_id)


def test_log_record():
    verdict = judge_verdict()
    span = evaluated_span()
    attrs = evaluation_attributes(verdict, span, source="judge")
    record = build_log_record(verdict, span, attrs, timestamp_ns=123)
    assert record.event_name == "gen_ai.evaluation.result"
    assert record.trace_id == span.trace_id and record.span_id == span.span_id
    assert record.timestamp == 123
    assert dict(record.attributes) == attrs
    failed = build_log_record(Verdict(name="x", error_type="timeout"), span, {}, timestamp_ns=1)
    assert failed.severity_text == "WARN"


# Through the judge ------------------------------------------------------------------------


class Fixed:
    def __init__(self, name: str, passed: bool) -> None:
        self.name = name
        self.uses_model = name == "faithfulness"
        self.passed_value = passed

    async def evaluate(self, item: EvalInput) -> Verdict:
        if self.uses_model:
            return judge_verdict(passed=self.passed_value, score=1.0 if self.passed_value else 0.0)
        return Verdict(name=self.name, passed=self.passed_value, score=1.0, label="ok")


def chat(trace_id: int, span_id: int, output: str) -> SpanData:
    span = evaluated_span(
        **{
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "My email is <EMAIL>"}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": output}]}]
            ),
        }
    )
    span.trace_id, span.span_id = trace_id, span_id
    return span


def run_judge(tmp_path, spans: list[SpanData], passed: dict[str, bool], **kw: Any):
    emitted: list[SpanData] = []
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    clock = [1000.0]
    config = JudgeConfig(
        rules=[JudgeRule(evaluator=name) for name in passed],
        trace_idle_s=1.0,
        trace_max_wait_s=5.0,
        review_queue=str(tmp_path / "review.jsonl"),
        **kw,
    )
    judging = Judging(
        config,
        evaluators={name: Fixed(name, ok) for name, ok in passed.items()},
        emit=emitted.extend,
        logger_provider=provider,
        clock=lambda: clock[0],
        tick_s=0.01,
    )
    judging.start()
    try:
        judging.on_spans(spans)
        assert judging.wait_idle(5)
        clock[0] += 2
        assert judging.wait_idle(5)
    finally:
        judging.stop(timeout=2)
    return emitted, [r.log_record for r in exporter.get_finished_logs()], tmp_path / "review.jsonl"


def test_judge_emits_linked_spans_and_events_on_the_evaluated_span(tmp_path):
    span = chat(7, 70, "Sure, refunds take 5 days.")
    emitted, logs, _ = run_judge(tmp_path, [span], {"faithfulness": True, "no_apology": True})
    assert sorted(s.name for s in emitted) == ["evaluate faithfulness", "evaluate no_apology"]
    for result in emitted:
        # one evaluation trace for the judged trace; the request's trace gets no span
        assert (result.trace_id, result.parent_span_id) == (evaluation_trace_id(7), 0)
        assert [(link.trace_id, link.span_id) for link in result.links] == [(7, 70)]
        assert result.attributes["llmtap.evaluation.target.trace_id"] == f"{7:032x}"
        assert result.attributes["llmtap.evaluation.target.span_id"] == f"{70:016x}"
        assert result.resource["service.name"] == "support-bot"
        assert result.start_ns <= result.end_ns and result.start_ns > 0
    sources = {s.attributes["gen_ai.evaluation.name"]: s.attributes for s in emitted}
    assert sources["faithfulness"]["llmtap.evaluation.source"] == "judge"
    assert sources["no_apology"]["llmtap.evaluation.source"] == "rule"
    assert len(logs) == 2
    for record in logs:
        assert record.event_name == "gen_ai.evaluation.result"
        assert (record.trace_id, record.span_id) == (7, 70)  # the evaluated span's ids
        assert record.attributes["gen_ai.response.id"] == "chatcmpl-42"
        assert "llmtap.evaluation.target.trace_id" not in record.attributes


def test_judge_child_placement_writes_under_the_evaluated_span(tmp_path):
    span = chat(7, 70, "Sure, refunds take 5 days.")
    emitted, logs, _ = run_judge(tmp_path, [span], {"no_apology": True}, verdicts="child")
    (result,) = emitted
    assert (result.trace_id, result.parent_span_id) == (7, 70)
    assert result.links == []
    (record,) = logs
    assert (record.trace_id, record.span_id) == (7, 70)


def test_judge_events_only_writes_log_records_and_no_span(tmp_path):
    bad = chat(7, 70, "I cannot help.")
    emitted, logs, path = run_judge(tmp_path, [bad], {"no_apology": False}, verdicts="events_only")
    assert emitted == []
    (record,) = logs
    assert (record.trace_id, record.span_id) == (7, 70)
    assert record.attributes["llmtap.evaluation.passed"] is False
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1  # the review queue too


def test_events_only_without_a_logs_exporter_says_so(caplog):
    config = JudgeConfig(rules=[JudgeRule(evaluator="no_apology")], verdicts="events_only")
    with caplog.at_level("WARNING", logger="llmtap.service"):
        Judging(config, evaluators={"no_apology": Fixed("no_apology", True)}, emit=print)
    assert "events_only" in caplog.text and "only the metrics" in caplog.text


def test_verdicts_placement_is_checked():
    with pytest.raises(ValueError, match="verdicts: expected one of linked, child, events_only"):
        JudgeConfig(verdicts="nested")


# Review queue -----------------------------------------------------------------------------


def test_review_queue_gets_spans_with_a_failing_verdict(tmp_path):
    bad = chat(1, 10, "I cannot help.")
    good = chat(2, 20, "Refunds take 5 days.")
    _, _, path = run_judge(tmp_path, [bad], {"faithfulness": False, "no_apology": True})
    _, _, _ = run_judge(tmp_path, [good], {"faithfulness": True, "no_apology": True})
    (line,) = path.read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    assert entry["trace_id"] == f"{1:032x}" and entry["span_id"] == f"{10:016x}"
    assert entry["span_name"] == "chat gpt-4o"
    assert entry["service"] == "support-bot" and entry["feature"] == "support"
    assert entry["model"] == "gpt-4o" and entry["response_id"] == "chatcmpl-42"
    assert entry["input"] == "My email is <EMAIL>"  # as redacted by the pipeline
    assert entry["output"] == "I cannot help."
    assert entry["time"].endswith("Z")
    verdicts = {v["name"]: v for v in entry["verdicts"]}
    assert verdicts["faithfulness"]["passed"] is False
    assert verdicts["faithfulness"]["judge_model"] == "gpt-4o-mini"
    assert verdicts["no_apology"]["passed"] is True  # the whole picture of the span
    assert entry["early"] is False and entry["late"] is False


def test_review_entry_caps_texts():
    span = evaluated_span()
    item = EvalInput(input_text="q" * 50, output_text="a" * 50, documents=["d" * 50] * 30)
    entry = review_entry(span, item, [Verdict(name="x", passed=False)], max_text_chars=10)
    assert len(entry["input"]) == 10 and entry["output"].endswith("…")
    assert len(entry["documents"]) == 20


def test_review_queue_is_thread_safe(tmp_path):
    queue = ReviewQueue(tmp_path / "r.jsonl")

    def write(n: int) -> None:
        for i in range(200):
            assert queue.append({"writer": n, "i": i, "text": "é" * 300})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1600 and queue.written == 1600
    assert {(e["writer"], e["i"]) for e in map(json.loads, lines)} == {
        (n, i) for n in range(8) for i in range(200)
    }


def test_review_queue_rotates_at_its_size_bound(tmp_path):
    path = tmp_path / "r.jsonl"
    queue = ReviewQueue(path, max_bytes=4096)
    for i in range(100):
        assert queue.append({"i": i, "pad": "x" * 100})
    assert path.stat().st_size <= 4096
    assert (tmp_path / "r.jsonl.1").stat().st_size <= 4096
    assert queue.rotations >= 2
    last = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
    assert last["i"] == 99
    assert not queue.append({"huge": "x" * 10_000})  # one entry larger than the bound
    assert queue.failed == 1


def test_review_queue_write_failure_is_counted_not_raised(tmp_path):
    queue = ReviewQueue(tmp_path / "missing-dir" / "r.jsonl")
    assert not queue.append({"a": 1})
    assert not queue.append({"a": 2})
    assert queue.failed == 2


def test_the_judged_ids_survive_redaction():
    """The service runs its stages on result spans: a judged span id that reads as a card
    number (16 decimal digits, Luhn-valid) stays the id."""
    from llmtap.pipeline.redact import RedactionStage

    span = evaluated_span()
    span.span_id = 0x4111111111111111
    result = build_result_span(judge_verdict(), span, {}, start_ns=1, end_ns=2)
    RedactionStage().apply(result)
    assert result.attributes["llmtap.evaluation.target.span_id"] == "4111111111111111"
    assert not result.attributes.get("llmtap.redaction.count")
