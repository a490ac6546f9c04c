"""``llmtap compare``: the statistics on hand-built spans with known answers (Wilson and
Newcombe intervals against published values, a clearly worse candidate, identical groups),
grouping through parents and traces, and the command on a file written by the file
preset's exporter; Jaeger in ``tests/e2e/test_compare_jaeger.py``."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from llmtap import semconv
from llmtap.cli import main
from llmtap.evals.compare import (
    BETTER,
    CANT_TELL,
    WORSE,
    CompareError,
    compare,
    group_spans,
    newcombe,
    percentile,
    pick_groups,
    render,
    wilson,
)
from llmtap.export.file import JsonLinesSpanExporter
from llmtap.pipeline.span import SpanData

PASSED, FEEDBACK = semconv.LLMTAP_EVALUATION_PASSED, semconv.LLMTAP_FEEDBACK_LABEL


def test_wilson_and_newcombe_match_published_values() -> None:
    assert wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10)[1] == pytest.approx(1.0)
    # Newcombe (1998), example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    d, low, high = newcombe(48, 80, 56, 70)
    assert (d, low, high) == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10, 20, 30, 40, 50], 0.95) == pytest.approx(48.0)
    assert percentile([7], 0.95) == 7


class Spans:
    """Traces of one model call each, with a verdict and a feedback span under it."""

    def __init__(self) -> None:
        self.spans: list[SpanData] = []
        self.trace = 0

    def call(self, version: str | None, *, cost: float = 0.001, tokens: int = 100,
             seconds: float = 0.5, error: bool = False, passed: bool | None = True,
             negative: bool | None = None, model: str = "gpt-4o-mini") -> None:  # fmt: skip
        self.trace += 1
        attrs: dict[str, Any] = {
            semconv.OPERATION: "chat", semconv.REQUEST_MODEL: model,
            semconv.LLMTAP_COST_TOTAL: cost, semconv.USAGE_INPUT_TOKENS: tokens - 10,
            semconv.USAGE_OUTPUT_TOKENS: 10,
        }  # fmt: skip
        if version is not None:
            attrs[semconv.LLMTAP_PROMPT_VERSION] = version
        start = self.trace * 10**9
        self.add("invoke_workflow answer", {}, span_id=1, start=start)
        self.add(f"chat {model}", attrs, span_id=2, parent=1, start=start + 1, seconds=seconds,
                 error=error)  # fmt: skip
        if passed is not None:
            self.add("evaluate truncation", {semconv.EVALUATION_NAME: "truncation",
                     PASSED: passed}, span_id=3, parent=2, start=start + 2)  # fmt: skip
        if negative is not None:
            label = "negative" if negative else "positive"
            self.add("evaluate user_feedback", {semconv.EVALUATION_NAME: "user_feedback",
                     FEEDBACK: label}, span_id=4, parent=2, start=start + 3)  # fmt: skip

    def add(self, name: str, attrs: dict[str, Any], *, span_id: int, start: int,
            parent: int = 0, seconds: float = 0.01, error: bool = False) -> None:  # fmt: skip
        self.spans.append(SpanData(
            name=name, attributes=attrs, trace_id=self.trace, span_id=span_id,
            parent_span_id=parent, start_ns=start, end_ns=start + int(seconds * 1e9),
            duration_s=seconds, is_error=error,
        ))  # fmt: skip


def _verdicts(comparison: Any) -> dict[str, str]:
    return {r.metric: r.verdict for r in comparison.rows}


def test_a_clearly_worse_candidate_is_worse_on_every_metric() -> None:
    rng = random.Random(7)
    spans = Spans()
    for i in range(200):
        spans.call("1", cost=0.001 + rng.random() * 1e-4, tokens=100 + i % 5,
                   seconds=0.4 + rng.random() * 0.1, error=i % 50 == 0, passed=i % 10 != 0,
                   negative=i % 10 == 0)  # fmt: skip
    for i in range(200):
        spans.call("2", cost=0.002 + rng.random() * 1e-4, tokens=200 + i % 5,
                   seconds=0.9 + rng.random() * 0.1, error=i % 5 == 0, passed=i % 2 == 0,
                   negative=i % 2 == 0)  # fmt: skip
    result = compare(spans.spans, resamples=300)
    assert (result.baseline.name, result.candidate.name) == ("1", "2")
    assert _verdicts(result) == dict.fromkeys(
        ["pass rate truncation", "negative feedback", "error rate", "cost per call",
         "tokens per call", "latency p50", "latency p95"], WORSE,
    )  # fmt: skip
    rows = {r.metric: r for r in result.rows}
    assert rows["pass rate truncation"].baseline.value == 0.9
    assert rows["pass rate truncation"].candidate.value == 0.5
    assert rows["pass rate truncation"].difference == pytest.approx(-0.4)
    assert rows["tokens per call"].difference == pytest.approx(100.0)
    assert rows["error rate"].baseline.count == 4 and rows["error rate"].candidate.count == 40
    # the same comparison the other way round is better on every metric
    swapped = compare(spans.spans, baseline="2", candidate="1", resamples=300)
    assert set(_verdicts(swapped).values()) == {BETTER}
    assert result.worse() and not swapped.worse()


def test_identical_groups_cannot_tell() -> None:
    spans = Spans()
    for version in ("a", "b"):
        for i in range(60):
            spans.call(version, cost=0.001 * (1 + i % 3), seconds=0.1 * (1 + i % 4),
                       error=i % 20 == 0, passed=i % 4 != 0, negative=i % 6 == 0)  # fmt: skip
    result = compare(spans.spans, resamples=300)
    assert set(_verdicts(result).values()) == {CANT_TELL}
    assert all(r.low is not None and r.low <= 0 <= r.high for r in result.rows)  # type: ignore[operator]


def test_the_bootstrap_is_reproducible_with_its_seed() -> None:
    spans = Spans()
    for i in range(30):
        spans.call("1", seconds=0.1 + i / 100)
        spans.call("2", seconds=0.12 + i / 100)

    def latency(seed: int) -> tuple[Any, Any]:
        row = next(r for r in compare(spans.spans, resamples=200, seed=seed).rows
                   if r.metric == "latency p95")  # fmt: skip
        return row.low, row.high

    assert latency(0) == latency(0)
    assert latency(0) != latency(1)


def test_verdicts_and_feedback_count_for_the_version_of_the_call_they_judge() -> None:
    spans = Spans()
    spans.call("1", passed=False, negative=True)
    spans.call(None, passed=True)  # no prompt version anywhere in its trace: left out
    spans.call("2", passed=True, negative=False)
    groups, left_out = group_spans(spans.spans, "prompt.version")
    assert list(groups) == ["1", "2"]
    assert groups["1"].verdicts == {"truncation": [False]} and groups["1"].feedback == [True]
    assert groups["2"].verdicts == {"truncation": [True]} and groups["2"].feedback == [False]
    assert left_out == 2  # the call and its verdict
    by_model, _ = group_spans(spans.spans, "model")
    assert list(by_model) == ["gpt-4o-mini"] and len(by_model["gpt-4o-mini"].calls) == 3


def test_linked_verdicts_count_for_the_version_of_the_call_they_judge() -> None:
    """Verdicts in an evaluation trace of their own (``judge.verdicts: linked``) name the
    judged span by ``llmtap.evaluation.target.*``; the judged trace may be read after them."""
    spans = Spans()
    spans.call("1", passed=None)
    spans.call("2", passed=None)
    for judged, passed in ((1, False), (2, True), (99, True)):  # 99: its trace was not read
        spans.spans.insert(0, SpanData(
            name="evaluate truncation",
            attributes={semconv.EVALUATION_NAME: "truncation", PASSED: passed,
                        "llmtap.evaluation.target.trace_id": f"{judged:032x}",
                        "llmtap.evaluation.target.span_id": f"{2:016x}"},
            trace_id=1000 + judged, span_id=7, start_ns=judged * 10**9 + 5,
        ))  # fmt: skip
    groups, left_out = group_spans(spans.spans, "prompt.version")
    assert groups["1"].verdicts == {"truncation": [False]}
    assert groups["2"].verdicts == {"truncation": [True]}
    assert groups["1"].traces == {1} and groups["2"].traces == {2}  # the judged traces
    assert left_out == 1


def test_groups_are_picked_by_recency_or_by_name() -> None:
    spans = Spans()
    for version in ("v1", "v2", "v3"):
        spans.call(version)
    groups, _ = group_spans(spans.spans, "prompt.version")
    assert [g.name for g in pick_groups(groups, None, None)] == ["v2", "v3"]
    assert [g.name for g in pick_groups(groups, "v1", None)] == ["v1", "v3"]
    assert [g.name for g in pick_groups(groups, None, "v2")] == ["v1", "v2"]
    with pytest.raises(CompareError, match="--candidate v9: no such group; found: v1, v2, v3"):
        pick_groups(groups, None, "v9")
    only, _ = group_spans(spans.spans[:2], "prompt.version")
    with pytest.raises(CompareError, match="need two groups to compare, found 1: v1"):
        pick_groups(only, None, None)


# the command on a file the file preset's exporter wrote -----------------------------------------


def _write_spans(path: Path) -> None:
    """Spans through the SDK and the file preset's exporter: v1 answers pass, v2's fail;
    both versions' calls take the same times."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    start = 1_700_000_000 * 10**9
    for version, passed in (("1", True), ("2", False)):
        for i in range(40):
            start += 10**9
            chat = tracer.start_span("chat gpt-4o-mini", start_time=start)
            chat.set_attributes({
                semconv.OPERATION: "chat", semconv.LLMTAP_PROMPT_VERSION: version,
                semconv.LLMTAP_COST_TOTAL: 0.001, semconv.USAGE_INPUT_TOKENS: 50,
                semconv.USAGE_OUTPUT_TOKENS: 10,
            })  # fmt: skip
            if i == 0 and version == "2":
                chat.set_status(Status(StatusCode.ERROR, "boom"))
            verdict = tracer.start_span("evaluate faithfulness", set_span_in_context(chat),
                                        start_time=start + 1000)  # fmt: skip
            verdict.set_attributes({semconv.EVALUATION_NAME: "faithfulness",
                                    PASSED: passed or i % 3 == 0})  # fmt: skip
            verdict.end(end_time=start + 2000)
            chat.end(end_time=start + (100 + i) * 10**6)
    provider.shutdown()


def test_the_command_reads_the_file_preset_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_spans(tmp_path / "spans.jsonl")
    (tmp_path / "other.jsonl").write_text("not json\n")
    assert main(["compare", str(tmp_path / "*.jsonl"), "--resamples", "200"]) == 0
    out, err = capsys.readouterr()
    assert "other.jsonl:1: not JSON" in err
    lines = out.splitlines()
    assert lines[0].startswith("llmtap compare by prompt.version (llmtap.prompt.version): "
                               "baseline 1 (40 traces, 40 model calls) vs candidate 2")  # fmt: skip
    row = next(line for line in lines if line.startswith("pass rate faithfulness"))
    assert "100.0% [91.2%, 100.0%] (40/40)" in row and "(14/40)" in row
    assert row.endswith("worse")
    error_row = next(line for line in lines if line.startswith("error rate"))
    assert "(1/40)" in error_row and error_row.endswith("can't tell yet")
    assert "Wilson" in out and "200 resamples, seed 0" in out

    assert main(["compare", str(tmp_path / "spans.jsonl"), "--json", "--fail-on-worse"]) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["baseline"] == {"name": "1", "traces": 40, "model_calls": 40}
    assert data["method"]["resamples"] == 1000
    verdicts = {m["metric"]: m["verdict"] for m in data["metrics"]}
    assert verdicts["pass rate faithfulness"] == "worse"
    assert verdicts["cost per call"] == verdicts["tokens per call"] == CANT_TELL
    assert verdicts["latency p50"] == verdicts["latency p95"] == CANT_TELL
    latency = next(m for m in data["metrics"] if m["metric"] == "latency p50")
    assert latency["baseline"]["value"] == pytest.approx(0.1195)  # 100..139 ms
    assert "worse: pass rate faithfulness" in err
    swapped = [str(tmp_path / "spans.jsonl"), "--baseline", "2", "--candidate", "1"]
    assert main(["compare", *swapped, "--fail-on-worse"]) == 0  # better, or can't tell
    assert "better" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give span files"),
        (["nothing-here-*.jsonl"], "nothing-here-*.jsonl: no file matches"),
        (["missing.jsonl"], "missing.jsonl: no such file"),
        (["--jaeger", "http://127.0.0.1:9"], "--jaeger and --service go together"),
        (["--jaeger", "http://127.0.0.1:9", "--service", "s"], "cannot connect"),
        (["--jaeger", "http://127.0.0.1:9", "--service", "s", "--lookback", "7 days"],
         "--lookback: expected a number and a unit"),
        (["SPANS", "--baseline", "9"], "--baseline 9: no such group; found: 1, 2"),
        (["SPANS", "--by", "feature"], "need two groups to compare, found 0: none"),
    ],
)  # fmt: skip
def test_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    spans = tmp_path / "spans.jsonl"
    _write_spans(spans)
    argv = [str(spans) if a == "SPANS" else a for a in argv]
    assert main(["compare", *argv]) == 2
    assert message in capsys.readouterr().err


def test_render_names_both_groups_and_the_method() -> None:
    spans = Spans()
    for version in ("old", "new", "newer"):
        spans.call(version)
    text = render(compare(spans.spans, baseline="old", candidate="newer", resamples=50))
    assert "baseline old (1 traces, 1 model calls) vs candidate newer" in text
    assert "other groups: new" in text
