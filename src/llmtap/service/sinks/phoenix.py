"""Arize Phoenix span annotations: ``POST {endpoint}/v1/span_annotations``.

The body is Phoenix's ``AnnotateSpansRequestBody`` (its OpenAPI schema,
``schemas/openapi.json`` of Arize-ai/phoenix): ``{"data": [SpanAnnotationData]}``, each with
``span_id`` (the evaluated span's OTel id, 16 hex digits), ``name``, ``annotator_kind``
(``LLM`` for an LLM judge's verdict, ``CODE`` for a rule's, ``HUMAN`` for user feedback),
``result`` (``label``, ``score``, ``explanation``), ``metadata`` and ``identifier``.
Phoenix upserts an annotation by (name, span, identifier): the identifier is ``llmtap:``
and the verdict's source (and, for user feedback, the feedback span's id, so two users'
feedback on one answer are two annotations), so a verdict sent twice is stored once, and
annotations people make in Phoenix's UI are left alone.

Without ``?sync=true`` Phoenix queues the annotations and answers at once, so an
annotation may arrive before its span does (the judge's verdict can overtake the
forwarder's request): Phoenix then keeps it and looks for the span again every 10 s, for
10 minutes (Phoenix 20.26; tests/e2e/test_phoenix.py checks that such an annotation is
attached once its span arrives). With ``?sync=true`` Phoenix would refuse the whole batch
(404) while one of its spans is missing. The name ``note`` is Phoenix's own (span notes)
and refused; such a verdict is counted as rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmtap.service.sinks.http import JsonPoster, SinkResult, batch_result
from llmtap.service.sinks.record import Evaluation

__all__ = ["PhoenixSink", "annotation", "base_url"]

PATH = "/v1/span_annotations"
_SUFFIXES = (PATH, "/v1/traces", "/v1")


def base_url(endpoint: str) -> str:
    """Phoenix's base URL from its base, its OTLP traces URL or its annotations URL."""
    url = endpoint.rstrip("/")
    for suffix in _SUFFIXES:
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def annotation(evaluation: Evaluation) -> dict[str, Any]:
    """One ``SpanAnnotationData``."""
    result: dict[str, Any] = {}
    if evaluation.label is not None:
        result["label"] = evaluation.label
    if evaluation.score is not None:
        result["score"] = evaluation.score
    if evaluation.explanation is not None:
        result["explanation"] = evaluation.explanation
    metadata = {"source": evaluation.source, **evaluation.metadata}
    if evaluation.passed is not None:
        metadata["passed"] = evaluation.passed
    identifier = f"llmtap:{evaluation.source}"
    if evaluation.key:
        identifier += f":{evaluation.key}"
    return {
        "span_id": evaluation.span_hex,
        "name": evaluation.name,
        "annotator_kind": evaluation.annotator_kind,
        "result": result or None,
        "metadata": metadata,
        "identifier": identifier,
    }


class PhoenixSink:
    kind = "phoenix span annotations"

    def __init__(
        self, endpoint: str, *, api_key: str | None, headers: Mapping[str, str], timeout_s: float
    ) -> None:
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._poster = JsonPoster(base_url(endpoint), {**auth, **headers}, timeout_s)
        self.target = self._poster.target + PATH

    def send(self, batch: Sequence[Evaluation]) -> SinkResult:
        taken = [e for e in batch if e.name != "note"]
        refused = len(batch) - len(taken)
        if not taken:
            return SinkResult(len(batch), rejected=refused, error="'note' is Phoenix's own name")
        body = {"data": [annotation(e) for e in taken]}
        result = batch_result(self._poster.post(PATH, body), len(taken))
        if result.retry:
            return result
        return SinkResult(len(batch), rejected=result.rejected + refused, error=result.error)

    def close(self) -> None:
        self._poster.close()
