"""Evaluation sinks in the real service: a rule's verdict and users' feedback (given on the
answer's span, and recorded by response id elsewhere and resolved by the service) reach a
sink's server; ``service.evaluation_sinks`` problems name their key in ``llmtap.yaml``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import llmtap
from llmtap.cli_serve import _describe, _judging
from llmtap.config_file import ConfigError, load_config
from llmtap.evals.base import Verdict
from llmtap.evals.judge_config import JudgeConfig, JudgeRule
from llmtap.pipeline.span import SpanData
from llmtap.service.judging import Judging
from support.recording_server import RecordingServer
from support.running_service import (
    EMAIL,
    grpc_exporter,
    metric_value,
    metrics_text,
    running_service,
    sdk_provider,
    wait_until,
)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as srv:
        yield srv


def annotations(server: RecordingServer) -> list[dict]:
    return [a for body in server.bodies() for a in body["data"]]


def test_a_rule_verdict_reaches_the_sink(tmp_path: Path, server: RecordingServer) -> None:
    judge = {"trace_idle_s": 0.2, "trace_max_wait_s": 1.0, "rules": [{"evaluator": "truncation"}]}
    sink = {"sink": "phoenix", "endpoint": server.url}
    with running_service(tmp_path, config={"judge": judge}, evaluation_sinks=[sink]) as app:
        judging = _judging(app.config, app)  # the wiring `llmtap serve` uses
        assert judging is not None
        judging.start()
        app.on_stop(judging.stop)
        provider = sdk_provider(grpc_exporter(app))
        with provider.get_tracer("t").start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.finish_reasons": ["length"],
                }
            )
            chat = span.get_span_context()
        provider.shutdown()
        found = wait_until(lambda: annotations(server), 15, "the verdict at the sink")
        text = metrics_text(app)
    (annotation,) = found
    assert annotation["span_id"] == f"{chat.span_id:016x}"
    assert annotation["name"] == "truncation"
    assert annotation["annotator_kind"] == "CODE"
    assert annotation["metadata"]["source"] == "rule"
    assert metric_value(text, "llmtap_service_evaluations_sent_total", sink="phoenix") == 1


def test_user_feedback_reaches_the_sink_as_human(tmp_path: Path, server: RecordingServer) -> None:
    sink = {"sink": "phoenix", "endpoint": server.url}
    with running_service(tmp_path, evaluation_sinks=[sink]) as app:
        provider = sdk_provider(grpc_exporter(app))
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attributes(
                {"gen_ai.operation.name": "chat", "gen_ai.response.id": "resp-elsewhere"}
            )
            answer = span.get_span_context()
        # on the answer's span, and by a response id this process never saw (resolved by
        # the service once it has the answer's span)
        llmtap.record_feedback(span_context=answer, score="down", tracer_provider=provider)
        llmtap.record_feedback(
            response_id="resp-elsewhere", score="up", name="thumbs", tracer_provider=provider
        )
        provider.shutdown()
        wait_until(lambda: len(annotations(server)) >= 2, 15, "both feedbacks")
    by_name = {a["name"]: a for a in annotations(server)}
    assert set(by_name) == {"user_feedback", "thumbs"}
    for a in by_name.values():
        assert a["annotator_kind"] == "HUMAN"
        assert a["span_id"] == f"{answer.span_id:016x}"
        assert a["metadata"]["source"] == "user"
    assert by_name["user_feedback"]["result"]["label"] == "negative"
    assert by_name["thumbs"]["result"]["label"] == "positive"
    assert len(annotations(server)) == 2  # the unresolved original is not sent itself


def write(tmp_path: Path, sinks: list) -> Path:
    path = tmp_path / "sinks.yaml"
    path.write_text(yaml.safe_dump({"service": {"evaluation_sinks": sinks}}, sort_keys=False))
    return path


def test_config_problems_name_their_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            {"sink": "phenix"},
            {"sink": "langfuse", "region": "mars"},
            {"sink": "datadog_llmobs", "api_key": "k", "site": "ddog-gov.com"},
            {"endpoint": "http://x"},
            {"sink": "phoenix", "name": "px", "sources": ["usr"], "batch_size": 0},
        ],
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "evaluation_sinks[0].sink: unknown evaluation sink 'phenix'" in text
    assert "(did you mean 'phoenix'?)" in text
    assert "evaluation_sinks[1].public_key: sink 'langfuse' needs public_key" in text
    assert "evaluation_sinks[1].secret_key" in text
    assert "evaluation_sinks[1].region: expected one of eu, us, jp, hipaa" in text
    assert "evaluation_sinks[2].site: Datadog does not offer LLM Observability" in text
    assert "evaluation_sinks[3].sink: required; one of datadog_llmobs, langfuse, phoenix" in text
    assert "evaluation_sinks[4].sources[0]: expected one of judge, rule, user, got 'usr'" in text
    assert "(did you mean 'user'?)" in text
    assert "evaluation_sinks[4].batch_size: expected a positive number, got 0" in text
    assert "sinks.yaml:" in text  # positions in the file


def test_unknown_key_with_did_you_mean_and_no_secret_shown(tmp_path: Path) -> None:
    path = write(tmp_path, [{"sink": "phoenix", "api_kye": "px-secret-value"}])
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "evaluation_sinks[0].api_kye: unknown key 'api_kye' (did you mean 'api_key'?)" in text
    assert "px-secret-value" not in text


def test_a_valid_file_builds_its_sinks(tmp_path: Path, server: RecordingServer) -> None:
    path = write(tmp_path, [{"sink": "phoenix", "endpoint": server.url, "name": "px"}])
    with running_service(tmp_path, config=None) as plain:
        assert plain.evaluation_sinks is None  # none configured, nothing built
    cfg = load_config(path)
    from llmtap.service.app import ServiceApp

    app = ServiceApp(cfg)
    try:
        assert app.evaluation_sinks is not None
        out = io.StringIO()
        _describe(app, out)  # what `llmtap serve` prints at start
    finally:
        app.stop(1)
    assert f"evaluations to px: phoenix span annotations {server.url}/v1/span_annotations" in (
        out.getvalue()
    )


class Quoting:
    """An evaluator of this test whose explanation quotes personal data it read."""

    name = "quoting"
    uses_model = True

    async def evaluate(self, item: Any) -> Verdict:
        return Verdict(
            name=self.name,
            score=0.0,
            passed=False,
            explanation=f"the answer leaks {EMAIL}",
            judge_model="judge-mini",
        )


def test_a_verdicts_text_is_redacted_before_it_leaves(
    tmp_path: Path, server: RecordingServer
) -> None:
    sink = {"sink": "phoenix", "endpoint": server.url}
    with running_service(tmp_path, evaluation_sinks=[sink]) as app:
        assert app.evaluation_sinks is not None
        config = JudgeConfig(
            rules=[JudgeRule(evaluator="quoting")], trace_idle_s=0.05, trace_max_wait_s=0.2
        )
        judging = Judging(
            config,
            evaluators={"quoting": Quoting()},
            emit=app.submit,
            on_verdict=app.evaluation_sinks.on_verdict,
            metrics_registry=app.metrics,
            tick_s=0.02,
        )
        judging.start()
        app.on_stop(judging.stop)
        span = SpanData(
            name="chat gpt-4o-mini",
            attributes={"gen_ai.operation.name": "chat"},
            resource={"service.name": "support-bot"},
            trace_id=0xABC,
            span_id=0xDEF,
            kind="CLIENT",
        )
        judging.on_spans([span])
        (annotation,) = wait_until(lambda: annotations(server), 15, "the verdict")
    assert annotation["annotator_kind"] == "LLM"
    assert EMAIL not in annotation["result"]["explanation"]
    assert "the answer leaks" in annotation["result"]["explanation"]
