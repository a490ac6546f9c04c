"""Langfuse scores: ``POST {endpoint}/api/public/scores``, one score per request.

The body is Langfuse's ``CreateScoreRequest`` (its public API definition,
``fern/apis/server/definition/scores.yml`` of langfuse/langfuse): ``traceId`` and
``observationId`` are the OTel trace and span ids in lowercase hex, as Langfuse's OTLP
ingestion stores them; ``name``; ``value`` with its ``dataType`` (``NUMERIC`` for a score,
else ``BOOLEAN`` 1/0 for a pass/fail verdict, else ``CATEGORICAL`` for a label);
``comment`` (the explanation); ``metadata``; ``environment`` when configured. The score's
``id`` is derived from the verdict (:meth:`Evaluation.identity`), so Langfuse keeps one
score however often it is sent. Auth is Basic with the public and secret key.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from llmtap.service.sinks.http import JsonPoster, SinkResult
from llmtap.service.sinks.record import Evaluation

__all__ = ["LangfuseSink", "base_url", "score"]

PATH = "/api/public/scores"
_SUFFIXES = (PATH, "/api/public/otel/v1/traces", "/api/public/otel", "/api/public")


def base_url(endpoint: str) -> str:
    """Langfuse's base URL from its base, its OpenTelemetry URL or its scores URL."""
    url = endpoint.rstrip("/")
    for suffix in _SUFFIXES:
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def score(evaluation: Evaluation, environment: str | None = None) -> dict[str, Any] | None:
    """One ``CreateScoreRequest``; None when the verdict has no value Langfuse takes."""
    body: dict[str, Any] = {
        "id": evaluation.identity(),
        "traceId": evaluation.trace_hex,
        "observationId": evaluation.span_hex,
        "name": evaluation.name,
    }
    if evaluation.score is not None:
        body.update(value=evaluation.score, dataType="NUMERIC")
    elif evaluation.passed is not None:
        body.update(value=1 if evaluation.passed else 0, dataType="BOOLEAN")
    elif evaluation.label is not None:
        body.update(value=evaluation.label, dataType="CATEGORICAL")
    else:
        return None
    if evaluation.explanation is not None:
        body["comment"] = evaluation.explanation
    metadata = {"source": evaluation.source, **evaluation.metadata}
    if evaluation.label is not None:
        metadata["label"] = evaluation.label
    if evaluation.passed is not None:
        metadata["passed"] = evaluation.passed
    body["metadata"] = metadata
    if environment:
        body["environment"] = environment
    return body


class LangfuseSink:
    kind = "langfuse scores"

    def __init__(
        self,
        endpoint: str,
        *,
        public_key: str,
        secret_key: str,
        environment: str | None,
        headers: Mapping[str, str],
        timeout_s: float,
    ) -> None:
        token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
        auth = {"Authorization": f"Basic {token}"}
        self._poster = JsonPoster(base_url(endpoint), {**auth, **headers}, timeout_s)
        self._environment = environment
        self.target = self._poster.target + PATH

    def send(self, batch: Sequence[Evaluation]) -> SinkResult:
        rejected, error = 0, ""
        for done, evaluation in enumerate(batch):
            body = score(evaluation, self._environment)
            if body is None:
                rejected, error = rejected + 1, "a verdict without score, pass/fail or label"
                continue
            reply = self._poster.post(PATH, body)
            if reply.ok:
                continue
            if reply.retry:
                return SinkResult(
                    done, rejected, retry=True, retry_after_s=reply.retry_after_s, error=reply.error
                )
            rejected, error = rejected + 1, reply.error
        return SinkResult(len(batch), rejected, error=error)

    def close(self) -> None:
        self._poster.close()
