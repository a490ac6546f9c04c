"""What each evaluation sink sends, against the backend's published schema.

Phoenix, Langfuse and Datadog do not run here, so each sink sends to a local server that
records its requests (``support.recording_server``), through the real sink and queue, and
every body is validated with ``jsonschema`` against an excerpt of the backend's schema
(the source is named above each excerpt).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from llmtap.service.metrics import MetricsRegistry
from llmtap.service.sinks.record import Evaluation
from llmtap.service.sinks.runner import EvaluationSinks
from support.recording_server import RecordingServer

TRACE = 0x0AF7651916CD43DD8448EB211C80319C
SPAN = 0xB7AD6B7169203331

# Arize-ai/phoenix schemas/openapi.json: components.schemas.AnnotateSpansRequestBody,
# SpanAnnotationData and AnnotationResult (POST /v1/span_annotations)
PHOENIX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "annotator_kind", "span_id"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "annotator_kind": {"type": "string", "enum": ["LLM", "CODE", "HUMAN"]},
                    "result": {
                        "anyOf": [
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "label": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                                    "score": {"anyOf": [{"type": "number"}, {"type": "null"}]},
                                    "explanation": {
                                        "anyOf": [{"type": "string"}, {"type": "null"}]
                                    },
                                },
                            },
                            {"type": "null"},
                        ]
                    },
                    "metadata": {"anyOf": [{"type": "object"}, {"type": "null"}]},
                    "identifier": {"type": "string"},
                    "span_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                },
            },
        }
    },
}

# langfuse/langfuse fern/apis/server/definition/scores.yml: CreateScoreRequest (POST
# /api/public/scores); value is commons.CreateScoreValue (double or string), dataType
# commons.ScoreDataType. The id patterns are the hex ids Langfuse's OTLP ingestion stores.
LANGFUSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "value"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "traceId": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "sessionId": {"type": "string"},
        "observationId": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "datasetRunId": {"type": "string"},
        "name": {"type": "string"},
        "value": {"type": ["number", "string"]},
        "comment": {"type": "string"},
        "metadata": {"type": "object"},
        "environment": {"type": "string"},
        "queueId": {"type": "string"},
        "dataType": {
            "enum": ["NUMERIC", "BOOLEAN", "CATEGORICAL", "CORRECTION", "TEXT"],
        },
        "configId": {"type": "string"},
        "source": {"enum": ["API", "ANNOTATION"]},
    },
}

# Datadog's LLM Observability API reference (content/en/llm_observability/instrumentation/
# api.md of DataDog/documentation, "Evaluations API": EvalMetricsRequestData, EvalMetric,
# JoinOn) and dd-trace-py's LLMObsEvalMetricWriter; OTel spans are joined by decimal ids
# with the source:otel tag (the OpenTelemetry instrumentation page)
_DECIMAL = {"type": "string", "pattern": "^[0-9]+$"}
DATADOG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "object",
            "required": ["type", "attributes"],
            "properties": {
                "type": {"const": "evaluation_metric"},
                "attributes": {
                    "type": "object",
                    "required": ["metrics"],
                    "properties": {
                        "metrics": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": [
                                    "join_on",
                                    "timestamp_ms",
                                    "ml_app",
                                    "metric_type",
                                    "label",
                                ],
                                "properties": {
                                    "join_on": {
                                        "type": "object",
                                        "required": ["span"],
                                        "properties": {
                                            "span": {
                                                "type": "object",
                                                "required": ["span_id", "trace_id"],
                                                "properties": {
                                                    "span_id": _DECIMAL,
                                                    "trace_id": _DECIMAL,
                                                },
                                            }
                                        },
                                    },
                                    "timestamp_ms": {"type": "integer"},
                                    "ml_app": {"type": "string", "minLength": 1},
                                    "metric_type": {"enum": ["categorical", "score", "boolean"]},
                                    "label": {"type": "string", "pattern": "^[^.]+$"},
                                    "categorical_value": {"type": "string"},
                                    "score_value": {"type": "number"},
                                    "boolean_value": {"type": "boolean"},
                                    "assessment": {"enum": ["pass", "fail"]},
                                    "reasoning": {"type": "string"},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                },
                                "allOf": [
                                    {
                                        "if": {"properties": {"metric_type": {"const": t}}},
                                        "then": {"required": [f"{t}_value"]},
                                    }
                                    for t in ("categorical", "score", "boolean")
                                ],
                            },
                        }
                    },
                },
            },
        }
    },
}


def evaluation(source: str, **kw: Any) -> Evaluation:
    values: dict[str, Any] = {
        "name": "faithfulness",
        "trace_id": TRACE,
        "span_id": SPAN,
        "source": source,
        "timestamp_ns": 1_765_000_000_123_456_789,
        "service_name": "support-bot",
    }
    return Evaluation(**{**values, **kw})


# one verdict of each kind: an LLM judge's score, a rule's pass/fail, a user's label
VERDICTS = [
    evaluation(
        "judge",
        score=0.25,
        label="unfaithful",
        passed=False,
        explanation="hours not stated",
        metadata={"judge_model": "judge-mini", "feature": "faq"},
    ),
    evaluation("rule", name="regex.match", passed=True, label="pass"),
    evaluation("user", name="user_feedback", label="negative", key="00000000000000aa"),
]


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as srv:
        yield srv


def send(entry: dict[str, Any], verdicts: list[Evaluation]) -> MetricsRegistry:
    registry = MetricsRegistry()
    sinks = EvaluationSinks.from_config([entry], registry)
    assert sinks is not None
    sinks.offer(verdicts)
    assert sinks.flush(10)
    sinks.close(5)
    return registry


def test_phoenix_span_annotations(server: RecordingServer) -> None:
    send({"sink": "phoenix", "endpoint": server.url + "/v1/traces", "api_key": "px"}, VERDICTS)
    (request,) = server.requests
    assert request.path == "/v1/span_annotations"
    assert request.headers["Authorization"] == "Bearer px"
    jsonschema.validate(request.body, PHOENIX_SCHEMA)
    judge, rule, user = request.body["data"]
    assert [a["annotator_kind"] for a in (judge, rule, user)] == ["LLM", "CODE", "HUMAN"]
    assert judge["span_id"] == f"{SPAN:016x}"
    assert judge["result"] == {
        "label": "unfaithful",
        "score": 0.25,
        "explanation": "hours not stated",
    }
    assert judge["metadata"]["judge_model"] == "judge-mini"
    assert rule["name"] == "regex.match" and rule["result"] == {"label": "pass"}
    assert rule["metadata"]["passed"] is True
    assert user["identifier"] == "llmtap:user:00000000000000aa"


def test_phoenix_without_a_key_sends_no_authorization(server: RecordingServer) -> None:
    send({"sink": "phoenix", "endpoint": server.url}, VERDICTS[:1])
    (request,) = server.requests
    assert "Authorization" not in request.headers
    jsonschema.validate(request.body, PHOENIX_SCHEMA)


def test_langfuse_scores(server: RecordingServer) -> None:
    entry = {
        "sink": "langfuse",
        "endpoint": server.url,
        "public_key": "pk-lf-1",
        "secret_key": "sk-lf-1",
        "environment": "staging",
    }
    send(entry, VERDICTS)
    requests = server.requests
    assert [r.path for r in requests] == ["/api/public/scores"] * 3
    token = base64.b64encode(b"pk-lf-1:sk-lf-1").decode()
    assert {r.headers["Authorization"] for r in requests} == {f"Basic {token}"}
    for r in requests:
        jsonschema.validate(r.body, LANGFUSE_SCHEMA)
    judge, rule, user = (r.body for r in requests)
    assert judge["traceId"] == f"{TRACE:032x}" and judge["observationId"] == f"{SPAN:016x}"
    assert (judge["value"], judge["dataType"]) == (0.25, "NUMERIC")
    assert judge["comment"] == "hours not stated" and judge["environment"] == "staging"
    assert (rule["value"], rule["dataType"]) == (1, "BOOLEAN")
    assert (user["value"], user["dataType"]) == ("negative", "CATEGORICAL")
    assert user["metadata"]["source"] == "user"
    # the score id is the verdict's: sent again, Langfuse keeps one score
    assert judge["id"] == VERDICTS[0].identity() != rule["id"]


def test_datadog_evaluation_metrics(server: RecordingServer) -> None:
    entry = {"sink": "datadog_llmobs", "api_key": "dd-key", "endpoint": server.url}
    send(entry, VERDICTS)
    (request,) = server.requests
    assert request.path == "/api/intake/llm-obs/v2/eval-metric"
    assert request.headers["DD-API-KEY"] == "dd-key"
    jsonschema.validate(request.body, DATADOG_SCHEMA)
    judge, rule, user = request.body["data"]["attributes"]["metrics"]
    assert judge["join_on"]["span"] == {"span_id": str(SPAN), "trace_id": str(TRACE)}
    assert (judge["metric_type"], judge["score_value"], judge["assessment"]) == (
        "score",
        0.25,
        "fail",
    )
    assert judge["reasoning"] == "hours not stated"
    assert judge["timestamp_ms"] == 1_765_000_000_123
    assert judge["ml_app"] == "support-bot"
    assert "source:otel" in judge["tags"] and "feature:faq" in judge["tags"]
    assert (rule["label"], rule["metric_type"], rule["boolean_value"]) == (
        "regex_match",
        "boolean",
        True,
    )
    assert (user["metric_type"], user["categorical_value"]) == ("categorical", "negative")
    assert "evaluation_source:user" in user["tags"]


def test_datadog_site_and_ml_app_options() -> None:
    from llmtap.service.sinks.config import build_sinks

    ((options, client),) = build_sinks(
        [{"sink": "datadog_llmobs", "api_key": "k", "site": "datadoghq.eu", "ml_app": "bot"}]
    )
    assert client.target == "https://api.datadoghq.eu/api/intake/llm-obs/v2/eval-metric"
    assert options.ml_app == "bot"
    ((_, langfuse),) = build_sinks(
        [{"sink": "langfuse", "region": "us", "public_key": "p", "secret_key": "s"}]
    )
    assert langfuse.target == "https://us.cloud.langfuse.com/api/public/scores"


def test_sources_choose_the_verdicts_a_sink_gets(server: RecordingServer) -> None:
    registry = send({"sink": "phoenix", "endpoint": server.url, "sources": ["user"]}, VERDICTS)
    (request,) = server.requests
    assert [a["annotator_kind"] for a in request.body["data"]] == ["HUMAN"]
    assert (
        registry.counter("llmtap_service_evaluations_sent_total", "", ("sink",)).value(
            sink="phoenix"
        )
        == 1
    )


def test_phoenix_refuses_the_name_note_so_it_is_counted_not_sent(
    server: RecordingServer,
) -> None:
    note = evaluation("rule", name="note", passed=True)
    registry = send({"sink": "phoenix", "endpoint": server.url}, [note, VERDICTS[0]])
    (request,) = server.requests
    assert [a["name"] for a in request.body["data"]] == ["faithfulness"]
    text = registry.render()
    assert 'llmtap_service_evaluations_dropped_total{reason="rejected",sink="phoenix"} 1.0' in text
    assert 'llmtap_service_evaluations_sent_total{sink="phoenix"} 1.0' in text
