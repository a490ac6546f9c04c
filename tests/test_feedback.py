"""``llmtap.record_feedback``: the feedback span in the answer's trace, its event, its
attributes as the service reads them, argument checks, and the response-id map filled by
the real instrumentation (OpenAI SDK against the loopback dev server)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmtap
from llmtap import feedback
from llmtap.config import CaptureMode, Settings
from llmtap.feedback import FeedbackError, record_feedback
from llmtap.pipeline.span import EventData, SpanData
from llmtap.sdk.processor import to_span_data
from llmtap.service.judge_when import trace_feedback
from support.otlp_receiver import OtlpReceiver

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def _data(span: ReadableSpan) -> SpanData:
    return to_span_data(span)


@pytest.fixture
def configured(devserver: Any) -> Iterator[tuple[Any, InMemorySpanExporter]]:
    """``llmtap.configure()`` with content capture and an in-memory exporter behind the
    span pipeline (cost, redaction); the providers are not made global."""
    exporter = InMemorySpanExporter()
    done = llmtap.configure(
        span_exporters=[exporter],
        settings=Settings(capture=CaptureMode.SPAN_ONLY),
        set_global=False,
        service_name="feedback-tests",
    )
    yield done, exporter
    done.shutdown()


def _flush(done: Any, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    # the provider's flush: streams whose token estimate is pending end first
    assert done.force_flush(10_000)
    return list(exporter.get_finished_spans())


def test_thumbs_down_by_response_id_lands_under_the_answer(
    configured: tuple[Any, InMemorySpanExporter], openai_client: Any
) -> None:
    done, exporter = configured
    reply = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is my parcel?"}]
    )
    record = record_feedback(
        response_id=reply.id,
        score="down",
        comment="Wrong answer, write to jane.doe@example.com",
    )
    assert record.span_context is not None
    spans = _flush(done, exporter)
    (chat,) = [s for s in spans if s.name == "chat gpt-4o-mini"]
    (fb,) = [s for s in spans if s.name == "evaluate user_feedback"]
    assert fb.context.trace_id == chat.context.trace_id
    assert fb.parent is not None and fb.parent.span_id == chat.context.span_id
    assert fb.parent.is_remote
    attrs = dict(fb.attributes)
    assert attrs["gen_ai.evaluation.name"] == "user_feedback"
    assert attrs["gen_ai.evaluation.score.value"] == -1.0
    assert attrs["gen_ai.evaluation.score.label"] == "negative"
    assert attrs["llmtap.feedback.label"] == "negative"
    assert attrs["llmtap.feedback.scale"] == "thumbs"
    assert attrs["llmtap.evaluation.source"] == "user"
    assert attrs["gen_ai.response.id"] == reply.id
    # the comment is content: redacted like the prompts are
    assert attrs["gen_ai.evaluation.explanation"] == "Wrong answer, write to <EMAIL>"
    assert attrs["llmtap.redaction.email"] == 1
    # no logger provider configured: the result event is a span event
    (event,) = fb.events
    assert event.name == "gen_ai.evaluation.result"
    assert event.attributes["gen_ai.evaluation.explanation"] == "Wrong answer, write to <EMAIL>"
    # the service reads it as negative feedback on the trace
    assert trace_feedback([_data(chat), _data(fb)]) == {"negative"}


def test_streamed_answer_is_found_by_its_id_and_keeps_its_feature(
    configured: tuple[Any, InMemorySpanExporter], openai_client: Any
) -> None:
    done, exporter = configured
    with llmtap.context(feature="autocomplete"):
        stream = openai_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Finish my sentence"}],
            stream=True,
        )
        response_id = None
        for chunk in stream:
            response_id = response_id or chunk.id
    record = record_feedback(response_id=response_id, score=True, label="helpful")
    spans = _flush(done, exporter)
    (chat,) = [s for s in spans if s.name.startswith("chat ")]
    (fb,) = [s for s in spans if s.name == "evaluate user_feedback"]
    assert fb.parent.span_id == chat.context.span_id
    assert fb.attributes["gen_ai.evaluation.score.label"] == "helpful"
    assert fb.attributes["llmtap.feedback.label"] == "positive"
    assert fb.attributes["llmtap.feature"] == "autocomplete"
    assert record.attributes["gen_ai.evaluation.score.value"] == 1.0
    assert trace_feedback([_data(fb)]) == {"positive"}


def test_comment_is_left_out_when_content_capture_is_off(devserver: Any) -> None:
    exporter = InMemorySpanExporter()
    done = llmtap.configure(
        span_exporters=[exporter], settings=Settings(capture=CaptureMode.NO_CONTENT),
        set_global=False,
    )  # fmt: skip
    try:
        record_feedback(trace_id=TRACE, span_id=SPAN, score=False, comment="my phone is broken")
        (fb,) = _flush(done, exporter)
    finally:
        done.shutdown()
    assert "gen_ai.evaluation.explanation" not in fb.attributes
    assert fb.attributes["llmtap.feedback.label"] == "negative"


def test_stars_by_ids_with_a_logger_provider(
    tracer_provider: Any, span_exporter: InMemorySpanExporter, logger_provider: Any, log_exporter
) -> None:
    record = record_feedback(
        trace_id=TRACE,
        span_id=int(SPAN, 16),
        score=2,
        scale="stars",
        name="csat",
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
    )
    (fb,) = span_exporter.get_finished_spans()
    assert fb.name == "evaluate csat"
    assert f"{fb.context.trace_id:032x}" == TRACE
    assert f"{fb.parent.span_id:016x}" == SPAN
    assert fb.context.span_id == record.span_context.span_id
    assert fb.events == ()  # the event went to the logs
    attrs = dict(fb.attributes)
    assert attrs["gen_ai.evaluation.score.value"] == 2.0
    assert (attrs["llmtap.feedback.scale"], attrs["llmtap.feedback.range.min"],
            attrs["llmtap.feedback.range.max"]) == ("stars", 1.0, 5.0)  # fmt: skip
    assert attrs["llmtap.feedback.label"] == "negative"
    (log,) = log_exporter.get_finished_logs()
    assert log.log_record.event_name == "gen_ai.evaluation.result"
    # the event belongs to the evaluated span, as GenAI semconv asks
    assert f"{log.log_record.trace_id:032x}" == TRACE
    assert f"{log.log_record.span_id:016x}" == SPAN
    assert log.log_record.attributes["gen_ai.evaluation.name"] == "csat"


@pytest.mark.parametrize(
    ("score", "scale", "value", "label"),
    [
        (3, "stars", 3.0, "neutral"),
        (5, "stars", 5.0, "positive"),
        (0.9, None, 0.9, "positive"),
        (0.5, None, 0.5, "neutral"),
        (-7, (-10, 10), -7.0, "negative"),
        ("up", None, 1.0, "positive"),
    ],
)
def test_scores_and_derived_labels(
    tracer_provider: Any,
    span_exporter: InMemorySpanExporter,
    score: Any,
    scale: Any,
    value: float,
    label: str,
) -> None:
    record_feedback(
        trace_id=TRACE, span_id=SPAN, score=score, scale=scale, tracer_provider=tracer_provider
    )
    (fb,) = span_exporter.get_finished_spans()
    assert fb.attributes["gen_ai.evaluation.score.value"] == value
    assert fb.attributes["llmtap.feedback.label"] == label
    expected = set() if label == "neutral" else {label}
    assert trace_feedback([_data(fb)]) == expected  # 3 stars is not "positive" to the judge


def test_label_alone_sets_the_polarity(
    tracer_provider: Any, span_exporter: InMemorySpanExporter
) -> None:
    record_feedback(
        span_context=tracer_provider.get_tracer("t").start_span("answer"),
        label="Negative",
        tracer_provider=tracer_provider,
    )
    (fb,) = span_exporter.get_finished_spans()
    assert "gen_ai.evaluation.score.value" not in fb.attributes
    assert fb.attributes["llmtap.feedback.label"] == "negative"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": True}, "give exactly one target"),
        (
            {"score": True, "trace_id": TRACE, "span_id": SPAN, "response_id": "x"},
            "got response_id",
        ),
        ({"score": True, "trace_id": TRACE}, "span_id: required"),
        ({"score": True, "trace_id": "xyz", "span_id": SPAN}, "trace_id: expected 32 hex digits"),
        ({"score": True, "trace_id": 0, "span_id": SPAN}, "trace_id: 0 is zero or too big"),
        ({"score": True, "response_id": 42}, "response_id: expected a non-empty string"),
        ({"score": True, "span_context": "abc"}, "span_context: expected a valid SpanContext"),
        ({"score": 7, "trace_id": TRACE, "span_id": SPAN}, "outside the scale 0..1"),
        ({"score": 4.5, "scale": "stars", "trace_id": TRACE, "span_id": SPAN}, "whole numbers"),
        ({"score": "meh", "trace_id": TRACE, "span_id": SPAN}, "expected 'up' or 'down'"),
        ({"score": float("nan"), "trace_id": TRACE, "span_id": SPAN}, "finite number"),
        ({"score": 1, "scale": (5, 1), "trace_id": TRACE, "span_id": SPAN}, "low < high"),
        ({"score": True, "scale": "stars", "trace_id": TRACE, "span_id": SPAN}, "takes no scale"),
        ({"trace_id": TRACE, "span_id": SPAN}, "score: required"),
        ({"score": True, "name": "a b", "trace_id": TRACE, "span_id": SPAN}, "name: expected"),
        ({"score": True, "comment": 3, "trace_id": TRACE, "span_id": SPAN}, "comment: expected"),
    ],
)
def test_bad_arguments_say_which_and_why(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(FeedbackError, match=r"^record_feedback: ") as info:
        record_feedback(**kwargs)
    assert message in str(info.value)


class _BrokenLogs:
    def get_logger(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("logs backend is down")


def test_telemetry_failures_are_logged_once_never_raised(
    tracer_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    feedback._warned.discard("record")
    with caplog.at_level(logging.WARNING, logger="llmtap"):
        for _ in range(3):
            record = record_feedback(
                trace_id=TRACE,
                span_id=SPAN,
                score=True,
                tracer_provider=tracer_provider,
                logger_provider=_BrokenLogs(),
            )
            assert record.span_context is None
            assert record.attributes["llmtap.feedback.label"] == "positive"
    warnings = [r for r in caplog.records if "cannot record feedback" in r.getMessage()]
    assert len(warnings) == 1


def test_the_response_map_is_bounded(tracer_provider: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(feedback, "MAX_RESPONSES", 5)
    tracer = tracer_provider.get_tracer("t")
    spans = [tracer.start_span(f"s{i}") for i in range(7)]
    for i, span in enumerate(spans):
        feedback.remember_response(f"resp-{i}", span, {})
    assert feedback.lookup_response("resp-0") is None
    assert feedback.lookup_response("resp-1") is None
    assert feedback.lookup_response("resp-6") == spans[6].get_span_context()
    forgotten = record_feedback(response_id="resp-0", score=True, tracer_provider=tracer_provider)
    assert not forgotten.resolved and forgotten.target is None
    kept = record_feedback(response_id="resp-6", score=True, tracer_provider=tracer_provider)
    assert kept.resolved and kept.target == spans[6].get_span_context()


def test_an_id_not_seen_here_is_recorded_unresolved_in_a_trace_of_its_own(
    configured: tuple[Any, InMemorySpanExporter],
) -> None:
    done, exporter = configured
    tracer = done.tracer_provider.get_tracer("web")
    with tracer.start_as_current_span("POST /feedback") as request:
        record = record_feedback(response_id="chatcmpl-other-worker", score="down", comment="no")
    assert not record.resolved and record.target is None
    assert record.attributes["llmtap.feedback.resolved"] is False
    spans = _flush(done, exporter)
    (fb,) = [s for s in spans if s.name == "evaluate user_feedback"]
    # not under the feedback request: a root, in a trace of its own
    assert fb.parent is None
    assert fb.context.trace_id != request.get_span_context().trace_id
    assert fb.context == record.span_context
    attrs = dict(fb.attributes)
    assert attrs["gen_ai.response.id"] == "chatcmpl-other-worker"
    assert attrs["llmtap.feedback.resolved"] is False
    assert attrs["llmtap.feedback.label"] == "negative"
    assert "llmtap.feature" not in attrs
    (event,) = fb.events
    assert event.attributes["llmtap.feedback.resolved"] is False


ZERO_CODE_APP = """
import json
import openai
import llmtap

client = openai.OpenAI(max_retries=0)
chat = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Is my refund on its way?"}]
)
record = llmtap.record_feedback(response_id=chat.id, score=1, scale="stars", comment="useless")
print(json.dumps({"id": chat.id, "feedback_span": f"{record.span_context.span_id:016x}"}))
"""


def test_under_opentelemetry_instrument(tmp_path: Path, devserver: Any) -> None:
    launcher = Path(sys.executable).parent / "opentelemetry-instrument"
    app = tmp_path / "app.py"
    app.write_text(ZERO_CODE_APP)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "LLMTAP_"))
    }
    with OtlpReceiver() as receiver:
        env.update(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_SERVICE_NAME="feedback-zero-code",
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
            OPENAI_BASE_URL=devserver.openai_base_url,
            OPENAI_API_KEY="zero-code-key",
        )
        proc = subprocess.run(
            [str(launcher), sys.executable, str(app)],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        said = json.loads(proc.stdout.strip().splitlines()[-1])
        spans = receiver.wait_for_spans(2)
    (chat,) = [s for s in spans if s.name == "chat gpt-4o-mini"]
    (fb,) = [s for s in spans if s.name == "evaluate user_feedback"]
    assert fb.span_id == said["feedback_span"]
    assert (fb.trace_id, fb.parent_span_id) == (chat.trace_id, chat.span_id)
    assert fb.attributes["gen_ai.response.id"] == said["id"]
    assert fb.attributes["llmtap.feedback.label"] == "negative"
    assert fb.attributes["gen_ai.evaluation.explanation"] == "useless"
    assert [e.name for e in fb.events] == ["gen_ai.evaluation.result"]
    assert fb.resource["service.name"] == "feedback-zero-code"
    data = SpanData(
        fb.name,
        dict(fb.attributes),
        events=[EventData(e.name, dict(e.attributes)) for e in fb.events],
    )
    assert trace_feedback([data]) == {"negative"}


# the example app -------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "feedback_endpoint" / "app.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_until_up(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "the app exited"
        try:
            with urllib.request.urlopen(f"{base}/openapi.json", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the example app did not start")


def test_feedback_endpoint_example(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the example needs the examples extra (fastapi)")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "LLMTAP_"))
    }
    with OtlpReceiver() as receiver:
        env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_only",
            PYTHONUNBUFFERED="1",
        )
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until_up(base, proc)
            status, chat = _post(
                f"{base}/chat", {"message": "Where is my parcel?", "user_id": "u1"}
            )
            assert status == 200 and chat["answer"].startswith("Hello from the llmtap devserver")
            status, down = _post(
                f"{base}/feedback",
                {"response_id": chat["response_id"], "score": "down", "comment": "Not mine"},
            )
            assert (status, down) == (200, {"recorded": True, "label": "negative",
                                             "resolved": True})  # fmt: skip
            status, stars = _post(
                f"{base}/feedback",
                {"trace_id": chat["trace_id"], "span_id": chat["span_id"], "score": 4,
                 "scale": "stars"},
            )  # fmt: skip
            assert (status, stars) == (200, {"recorded": True, "label": "positive",
                                              "resolved": True})  # fmt: skip
            status, unknown = _post(f"{base}/feedback", {"response_id": "nope", "score": True})
            assert (status, unknown) == (200, {"recorded": True, "label": "positive",
                                                "resolved": False})  # fmt: skip
            status, bad = _post(f"{base}/feedback", {"response_id": "nope", "score": 7})
            assert status == 422 and "outside the scale" in bad["detail"]
        finally:
            proc.send_signal(signal.SIGINT)  # uvicorn stops; the app flushes its spans
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        spans = receiver.wait_for_spans(4)
    (chat_span,) = [s for s in spans if s.name == "chat gpt-4o-mini"]
    (unresolved,) = [s for s in spans if s.attributes.get("llmtap.feedback.resolved") is False]
    assert (
        unresolved.parent_span_id is None and unresolved.attributes["gen_ai.response.id"] == "nope"
    )
    feedback_spans = [
        s for s in spans if s.name == "evaluate user_feedback" and s is not unresolved
    ]
    assert len(feedback_spans) == 2
    for span in feedback_spans:
        assert (span.trace_id, span.parent_span_id) == (chat_span.trace_id, chat_span.span_id)
    thumbs = next(s for s in feedback_spans if s.attributes["llmtap.feedback.scale"] == "thumbs")
    assert thumbs.attributes["gen_ai.evaluation.explanation"] == "Not mine"
    assert thumbs.attributes["llmtap.feature"] == "support"  # known from the response id
    assert chat["trace_id"] == chat_span.trace_id
    assert "evaluate user_feedback" in out  # the console tree of the example
