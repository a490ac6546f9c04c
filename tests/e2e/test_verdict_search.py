"""The Jaeger searches deploy/README.md gives for failing verdicts find them: verdict spans
as the service writes them (``evaluate {name}`` children with ``gen_ai.evaluation.name`` and
the boolean ``llmtap.evaluation.passed``, status ERROR without a verdict) sent over OTLP to a
real Jaeger v2, then searched through its HTTP API with the README's tags."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode, format_trace_id

from llmtap import semconv
from support.binaries import Proc, Processes, http_get, start_jaeger, wait_until

pytestmark = pytest.mark.e2e

SERVICE = "verdict-search-app"


@pytest.fixture
def jaeger(tmp_path) -> Iterator[Proc]:
    with Processes(tmp_path) as procs:
        yield start_jaeger(procs)


def send_traces(jaeger: Proc) -> dict[str, str]:
    """Three judged traces: ``failing`` (faithfulness fails), ``other`` (answer_relevance
    fails, faithfulness passes) and ``no_verdict`` (toxicity ended without one)."""
    exporter = OTLPSpanExporter(endpoint=f"http://{jaeger.endpoint('grpc')}", insecure=True)
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("verdicts")
    verdicts = {
        "failing": [("faithfulness", False), ("answer_relevance", True)],
        "other": [("faithfulness", True), ("answer_relevance", False)],
        "no_verdict": [("toxicity", None)],
    }
    ids = {}
    for label, results in verdicts.items():
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            ids[label] = format_trace_id(chat.get_span_context().trace_id)
            for name, passed in results:
                with tracer.start_as_current_span(f"evaluate {name}") as verdict:
                    verdict.set_attribute(semconv.EVALUATION_NAME, name)
                    if passed is None:
                        verdict.set_attribute(semconv.ERROR_TYPE, "timeout")
                        verdict.set_status(Status(StatusCode.ERROR, "no verdict"))
                    else:
                        verdict.set_attribute(semconv.LLMTAP_EVALUATION_PASSED, passed)
    provider.shutdown()
    return ids


def search(jaeger: Proc, tags: dict[str, str], operation: str | None = None) -> set[str]:
    query = {"service": SERVICE, "tags": json.dumps(tags), "lookback": "1h", "limit": "20"}
    if operation:
        query["operation"] = operation
    status, body = http_get(jaeger.url("query", "/api/traces?" + urllib.parse.urlencode(query)))
    assert status == 200, body
    return {trace["traceID"].rjust(32, "0") for trace in json.loads(body)["data"] or ()}


def test_the_readmes_jaeger_searches_find_the_failing_verdicts(jaeger: Proc) -> None:
    ids = send_traces(jaeger)
    wait_until(lambda: len(search(jaeger, {})) == 3, 20, "the three traces in Jaeger")
    assert search(jaeger, {"llmtap.evaluation.passed": "false"}) == {ids["failing"], ids["other"]}
    failing_faithfulness = {
        "gen_ai.evaluation.name": "faithfulness",
        "llmtap.evaluation.passed": "false",
    }
    assert search(jaeger, failing_faithfulness) == {ids["failing"]}
    assert search(jaeger, {"error.type": "timeout"}, "evaluate toxicity") == {ids["no_verdict"]}
    # Jaeger v2's memory store does not take the status as an ``error=true`` tag
    assert search(jaeger, {"error": "true"}) == set()
