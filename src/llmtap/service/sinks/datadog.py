"""Datadog LLM Observability evaluations: ``POST https://api.<site>/api/intake/llm-obs/v2/eval-metric``.

The body (Datadog's LLM Observability API reference, and the evaluation writer of
DataDog/dd-trace-py): ``{"data": {"type": "evaluation_metric", "attributes": {"metrics":
[...]}}}``, each metric with ``join_on.span`` (``span_id`` and ``trace_id``), ``label`` (the
evaluation's name; Datadog refuses a ``.`` in it, so dots become ``_``), ``metric_type``
(``score`` with ``score_value``, else ``boolean`` with ``boolean_value`` for a pass/fail
verdict, else ``categorical`` with ``categorical_value``), ``assessment`` (``pass``/``fail``),
``reasoning`` (the explanation), ``timestamp_ms``, ``ml_app`` and ``tags``. Spans that came
through OpenTelemetry are joined by their ids as *decimal* strings and need the
``source:otel`` tag (Datadog's OpenTelemetry instrumentation page), which every metric
carries. The key goes in ``DD-API-KEY``; Datadog answers 202.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmtap.service.sinks.http import JsonPoster, SinkResult, batch_result
from llmtap.service.sinks.record import Evaluation

__all__ = ["DatadogSink", "metric"]

PATH = "/api/intake/llm-obs/v2/eval-metric"


def _tag(value: Any) -> str:
    return str(value).replace(",", "_")


def metric(evaluation: Evaluation, ml_app: str | None) -> dict[str, Any] | None:
    """One evaluation metric; None when it has no value Datadog takes or no ML app."""
    app = ml_app or evaluation.service_name
    if not app:
        return None
    body: dict[str, Any] = {
        "join_on": {
            "span": {"span_id": str(evaluation.span_id), "trace_id": str(evaluation.trace_id)}
        },
        "label": evaluation.name.replace(".", "_"),
        "timestamp_ms": evaluation.timestamp_ns // 1_000_000,
        "ml_app": app,
    }
    if evaluation.score is not None:
        body.update(metric_type="score", score_value=evaluation.score)
    elif evaluation.passed is not None:
        body.update(metric_type="boolean", boolean_value=evaluation.passed)
    elif evaluation.label is not None:
        body.update(metric_type="categorical", categorical_value=evaluation.label)
    else:
        return None
    if evaluation.passed is not None:
        body["assessment"] = "pass" if evaluation.passed else "fail"
    if evaluation.explanation is not None:
        body["reasoning"] = evaluation.explanation
    tags = ["source:otel", f"evaluation_source:{_tag(evaluation.source or 'unknown')}"]
    if evaluation.label is not None and body["metric_type"] != "categorical":
        tags.append(f"evaluation_label:{_tag(evaluation.label)}")
    if "feature" in evaluation.metadata:
        tags.append(f"feature:{_tag(evaluation.metadata['feature'])}")
    body["tags"] = tags
    return body


class DatadogSink:
    kind = "datadog llm observability evaluations"

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str,
        ml_app: str | None,
        headers: Mapping[str, str],
        timeout_s: float,
    ) -> None:
        self._poster = JsonPoster(endpoint, {"DD-API-KEY": api_key, **headers}, timeout_s)
        self._ml_app = ml_app
        self.target = self._poster.target + PATH

    def send(self, batch: Sequence[Evaluation]) -> SinkResult:
        metrics = [m for m in (metric(e, self._ml_app) for e in batch) if m is not None]
        unsendable = len(batch) - len(metrics)
        error = "a verdict without a value or an ML app" if unsendable else ""
        if not metrics:
            return SinkResult(len(batch), rejected=unsendable, error=error)
        body = {"data": {"type": "evaluation_metric", "attributes": {"metrics": metrics}}}
        result = batch_result(self._poster.post(PATH, body), len(metrics))
        if result.retry:
            return result
        return SinkResult(len(batch), result.rejected + unsendable, error=result.error or error)

    def close(self) -> None:
        self._poster.close()
