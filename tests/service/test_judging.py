"""The judge: config, rule selection, deterministic sampling, dedup, scheduling, metrics.

Evaluators here are small classes written for the tests (the ``Evaluator`` protocol of
``llmtap.evals.base``); one test builds a real one through ``llmtap.evals.registry``. The
judge runs for real: its own thread and event loop, a fake assembly clock.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from llmtap.config_file import ConfigError, load_config
from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.judge_config import JudgeConfig, JudgeRule, load_judge_config, parse_size
from llmtap.pipeline.span import EventData, SpanData
from llmtap.service.assembly import ReadyTrace
from llmtap.service.judge_metrics import SEMCONV_NAMES
from llmtap.service.judge_rules import CompiledRule
from llmtap.service.judge_when import trace_feedback
from llmtap.service.judging import Judging
from llmtap.service.metrics import MetricsRegistry

RESOURCE = {"service.name": "support-bot", "service.version": "1.2"}


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds


class Check:
    """A test evaluator: records what it judged, optionally slow, failing or raising."""

    def __init__(
        self,
        name: str = "check",
        *,
        passed: bool | Callable[[EvalInput], bool] = True,
        delay: float = 0.0,
        error_type: str | None = None,
        raises: Exception | None = None,
        uses_model: bool = False,
    ) -> None:
        self.name = name
        self.uses_model = uses_model
        self.passed = passed
        self.delay = delay
        self.error_type = error_type
        self.raises = raises
        self.calls: list[tuple[int, int]] = []
        self.active = 0
        self.max_active = 0

    async def evaluate(self, item: EvalInput) -> Verdict:
        assert item.span is not None
        self.calls.append((item.span.trace_id, item.span.span_id))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.raises is not None:
                raise self.raises
            if self.error_type:
                return Verdict(name=self.name, error_type=self.error_type, explanation="down")
            ok = self.passed(item) if callable(self.passed) else self.passed
            model = "judge-mini" if self.uses_model else None
            return Verdict(
                name=self.name,
                score=1.0 if ok else 0.0,
                label="pass" if ok else "fail",
                explanation="checked",
                passed=ok,
                judge_model=model,
                input_tokens=120 if self.uses_model else None,
                output_tokens=30 if self.uses_model else None,
                cost_usd=0.0005 if self.uses_model else None,
            )
        finally:
            self.active -= 1

    @property
    def judged(self) -> set[tuple[int, int]]:
        return set(self.calls)


class Emitted:
    def __init__(self) -> None:
        self.spans: list[SpanData] = []
        self._lock = threading.Lock()

    def __call__(self, spans: list[SpanData]) -> None:
        with self._lock:
            self.spans.extend(spans)

    def named(self, name: str) -> list[SpanData]:
        with self._lock:
            return [s for s in self.spans if s.name == f"evaluate {name}"]


def judged_trace(result: SpanData) -> int:
    """The trace id of the span a result span judged (results are in a trace of their own)."""
    return int(result.attributes["llmtap.evaluation.target.trace_id"], 16)


def messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def make_trace(
    tid: int,
    *,
    feature: str = "support",
    chats: int = 1,
    output: str = "Your refund is on its way.",
    error: bool = False,
) -> list[SpanData]:
    """An HTTP root span, a retrieval span and ``chats`` chat spans under it."""
    root = SpanData(
        name="POST /chat",
        attributes={"http.request.method": "POST"},
        trace_id=tid,
        span_id=tid * 1000 + 1,
        kind="SERVER",
        duration_s=2.0,
        resource=RESOURCE,
        start_ns=1,
        end_ns=10,
    )
    retrieval = SpanData(
        name="retrieval docs",
        attributes={"gen_ai.operation.name": "retrieval", "llmtap.feature": feature},
        trace_id=tid,
        span_id=tid * 1000 + 2,
        parent_span_id=root.span_id,
        kind="INTERNAL",
        resource=RESOURCE,
        start_ns=2,
        end_ns=3,
    )
    out = [root, retrieval]
    for i in range(chats):
        out.append(
            SpanData(
                name="chat gpt-4o",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.id": f"chatcmpl-{tid}-{i}",
                    "llmtap.feature": feature,
                    "gen_ai.input.messages": messages("user", "Where is my refund?"),
                    "gen_ai.output.messages": messages("assistant", output),
                },
                trace_id=tid,
                span_id=tid * 1000 + 10 + i,
                parent_span_id=root.span_id,
                kind="CLIENT",
                is_error=error,
                duration_s=1.5,
                resource=RESOURCE,
                start_ns=4 + i,
                end_ns=5 + i,
            )
        )
    return out


def ready(spans: list[SpanData]) -> ReadyTrace:
    return ReadyTrace(trace_id=spans[0].trace_id, spans=spans, new=spans, reason="idle")


def rule(evaluator: Any = "check", **kw: Any) -> JudgeRule:
    return JudgeRule(evaluator=evaluator, **kw)


def compiled(evaluator: Check | None = None, **kw: Any) -> CompiledRule:
    evaluator = evaluator or Check()
    return CompiledRule(rule(evaluator.name, **kw), evaluator)


# Running judges ---------------------------------------------------------------------------

_CONFIG_KEYS = set(JudgeConfig.__dataclass_fields__)


class Harness:
    def __init__(self, rules: list[JudgeRule], evaluators: list[Check], **kw: Any) -> None:
        config_kw = {k: kw.pop(k) for k in list(kw) if k in _CONFIG_KEYS}
        config_kw.setdefault("trace_idle_s", 1.0)
        config_kw.setdefault("trace_max_wait_s", 5.0)
        self.config = JudgeConfig(rules=rules, **config_kw)
        self.clock = Clock()
        self.emitted = Emitted()
        self.registry = MetricsRegistry()
        kw.setdefault("metrics_registry", self.registry)
        kw.setdefault("tick_s", 0.01)
        self.judging = Judging(
            self.config,
            evaluators={e.name: e for e in evaluators},
            emit=self.emitted,
            clock=self.clock,
            **kw,
        )

    def settle(self, timeout: float = 10.0) -> None:
        """Assemble what was sent, let the traces go idle, run every evaluation."""
        assert self.judging.wait_idle(timeout)
        self.clock.advance(self.config.trace_idle_s + 0.01)
        assert self.judging.wait_idle(timeout)

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        return collect(self.registry)


#: the registry's label names -> the attributes of the llmtap.judge.* metrics
_ATTRIBUTES = {
    "gen_ai_evaluation_name": "gen_ai.evaluation.name",
    "gen_ai_token_type": "gen_ai.token.type",
    "llmtap_feature": "llmtap.feature",
    "llmtap_prompt_version": "llmtap.prompt.version",
    "llmtap_evaluation_passed": "llmtap.evaluation.passed",
    "llmtap_evaluation_judge_model": "llmtap.evaluation.judge_model",
    "llmtap_evaluation_late": "llmtap.evaluation.late",
    "error_type": "error.type",
    "reason": "reason",
}


def collect(registry: MetricsRegistry) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """The judge's series by metric name: (attributes without empty values, value); a
    histogram's value is (count, sum)."""
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for family in registry.registry.collect():
        points = out.setdefault(SEMCONV_NAMES[family.name], [])
        sums = {}
        for sample in family.samples:
            labels = sample.labels.items()
            attrs = {_ATTRIBUTES[k]: v for k, v in labels if v and k != "le"}
            if family.type != "histogram":
                points.append((attrs, sample.value))
            elif sample.name.endswith("_sum"):
                sums[tuple(sorted(attrs.items()))] = sample.value
            elif sample.name.endswith("_count"):
                points.append((attrs, sample.value))
        if sums:
            out[SEMCONV_NAMES[family.name]] = [
                (a, (count, sums[tuple(sorted(a.items()))])) for a, count in points
            ]
    return out


def total(points: list[tuple[dict[str, Any], Any]], **match: Any) -> float:
    return sum(
        v
        for attrs, v in points
        if all(attrs.get(k.replace("__", ".")) == want for k, want in match.items())
    )


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(rules: list[JudgeRule], evaluators: list[Check], **kw: Any) -> Harness:
        h = Harness(rules, evaluators, **kw)
        h.judging.start()
        made.append(h)
        return h

    yield make
    for h in made:
        h.judging.stop(timeout=2)


# Configuration ----------------------------------------------------------------------------


def test_config_from_yaml(tmp_path):
    path = tmp_path / "llmtap.yaml"
    path.write_text(
        """
judge:
  model: {name: gpt-4o-mini, base_url: "http://127.0.0.1:9/v1"}
  concurrency: 8
  max_bytes: 128MiB
  review_queue: review.jsonl
  rules:
    - {evaluator: faithfulness, when: {llmtap.feature: support}, sample: 0.05}
    - {evaluator: answer_relevance, when: {feedback: negative}}
    - {evaluator: regex, pattern: "(?i)sorry", match: false, name: no_apology, target: root}
    - evaluator: {evaluator: json_valid}
      name: json_ok
""",
        encoding="utf-8",
    )
    cfg = load_judge_config(load_config(path))
    assert cfg is not None
    assert cfg.model.name == "gpt-4o-mini"
    assert cfg.concurrency == 8 and cfg.max_bytes == 128 * 1024**2
    assert cfg.review_queue == str(tmp_path / "review.jsonl")  # relative to the file
    r0, r1, r2, r3 = cfg.rules
    assert (r0.evaluator, r0.sample, r0.target) == ("faithfulness", 0.05, "inference")
    assert r1.when == {"feedback": "negative"}
    assert r2.options == {"pattern": "(?i)sorry", "match": False}
    assert r2.spec() == {
        "evaluator": "regex",
        "pattern": "(?i)sorry",
        "match": False,
        "name": "no_apology",
    }
    assert r3.spec() == {"evaluator": "json_valid", "name": "json_ok"}
    assert load_judge_config(load_config(None, env={})) is None


def test_config_errors_name_file_line_and_key(tmp_path):
    path = tmp_path / "llmtap.yaml"
    path.write_text(
        """
judge:
  trace_idle_s: 30
  trace_max_wait_s: 10
  max_bytes: lots
  rules:
    - evaluator: faithfulness
      target: roots
      sample: 1.5
    - evaluator: answer_relevance
      when: {any: [{feedback: negative}], llmtap.feature: {regex: "("}}
    - evaluator: toxicity
      when: {feedback: angry}
    - evaluator: {evaluator: regex, pattern: x}
      pattern: y
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_judge_config(load_config(path))
    text = str(info.value)
    lines = text.splitlines()
    expect = [
        ":4: judge.trace_max_wait_s: 10.0 is shorter than trace_idle_s",
        ":5: judge.max_bytes: expected a size",
        ":8: judge.rules[0].target: expected one of inference, root, all_matching, got 'roots'",
        ":9: judge.rules[0].sample: expected a ratio between 0 and 1",
        ":11: judge.rules[1].when.any[0].feedback: feedback is a condition on the whole trace",
        ":11: judge.rules[1].when.llmtap.feature: regex does not compile",
        ":13: judge.rules[2].when.feedback: expected one of negative, positive, any, got 'angry'",
        ":15: judge.rules[3].pattern: unknown rule key",
    ]
    for fragment in expect:
        assert any(fragment in line for line in lines), (fragment, text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1024, 1024),
        ("2048", 2048),
        ("256MiB", 256 * 1024**2),
        ("500MB", 500 * 1000**2),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("64 Ki", 64 * 1024),
        ("10k", 10_000),
    ],
)
def test_parse_size(raw, expected):
    assert parse_size(raw) == expected


def test_unknown_evaluator_fails_at_start_up():
    config = JudgeConfig(rules=[rule("nope")])
    with pytest.raises(ValueError, match=r"judge\.rules\[0\]"):
        Judging(config, evaluators={"check": Check()})


def test_two_evaluators_with_one_name_are_refused():
    config = JudgeConfig(rules=[rule("a"), rule("b")])
    with pytest.raises(ValueError, match="already used"):
        Judging(config, evaluators={"a": Check("same"), "b": Check("same")})


# Rule selection ---------------------------------------------------------------------------


def test_inference_target_selects_chat_spans_only():
    spans = make_trace(1, chats=2)
    result = SpanData(  # an evaluation result already in the trace is never a target
        name="evaluate x",
        attributes={"gen_ai.evaluation.name": "x", "gen_ai.operation.name": "chat"},
        trace_id=1,
        span_id=9,
        parent_span_id=1010,
    )
    picked = compiled().candidates(ready([*spans, result]))
    assert [s.span_id for s in picked] == [1010, 1011]


def test_when_filters_target_spans():
    spans = make_trace(1) + make_trace(1, feature="autocomplete")[2:]
    spans[-1].span_id = 1020
    support = compiled(when={"llmtap.feature": "support"}).candidates(ready(spans))
    assert [s.span_id for s in support] == [1010]
    assert compiled(when={"llmtap.feature": "billing"}).candidates(ready(spans)) == []
    slow = compiled(when={"duration": {"gt": 1.0}, "kind": "client"}).candidates(ready(spans))
    assert len(slow) == 2
    failing = make_trace(2, error=True)
    assert len(compiled(when={"status": "error"}).candidates(ready(failing))) == 1
    assert compiled(when={"status": "error"}).candidates(ready(spans)) == []


def test_root_and_all_matching_targets():
    spans = make_trace(1)
    (root,) = compiled(target="root").candidates(ready(spans))
    assert root.name == "POST /chat"
    assert compiled(target="root", when={"kind": "client"}).candidates(ready(spans)) == []
    everything = compiled(target="all_matching").candidates(ready(spans))
    assert len(everything) == 3
    named = compiled(target="all_matching", when={"name": {"regex": "retrieval.*"}})
    assert [s.name for s in named.candidates(ready(spans))] == ["retrieval docs"]


def test_root_target_without_the_root_span_takes_the_earliest_orphan():
    spans = make_trace(1)[1:]  # the HTTP root span was not received
    (root,) = compiled(target="root").candidates(ready(spans))
    assert root.name == "retrieval docs"


def feedback_span(tid: int, **attrs: Any) -> SpanData:
    return SpanData(
        name="feedback", attributes=attrs, trace_id=tid, span_id=tid * 1000 + 99, parent_span_id=1
    )


def test_feedback_conditions():
    negative_label = feedback_span(1, **{"llmtap.feedback.label": "negative"})
    negative_event = SpanData(
        name="feedback",
        attributes={},
        events=[
            EventData(
                "gen_ai.evaluation.result",
                {
                    "gen_ai.evaluation.name": "user_feedback",
                    "gen_ai.evaluation.score.value": -1.0,
                    "llmtap.evaluation.source": "user",
                },
            )
        ],
        trace_id=1,
        span_id=5,
    )
    positive = feedback_span(
        1,
        **{
            "gen_ai.evaluation.name": "user_feedback",
            "gen_ai.evaluation.score.label": "thumbs_up",
            "llmtap.evaluation.source": "user",
        },
    )
    judge_says_bad = feedback_span(  # a judge's verdict is not user feedback
        1,
        **{
            "gen_ai.evaluation.name": "faithfulness",
            "gen_ai.evaluation.score.value": -1.0,
            "llmtap.evaluation.source": "judge",
        },
    )
    assert trace_feedback([negative_label]) == {"negative"}
    assert trace_feedback([negative_event]) == {"negative"}
    assert trace_feedback([positive]) == {"positive"}
    assert trace_feedback([judge_says_bad]) == frozenset()

    spans = make_trace(1)
    neg = compiled(when={"feedback": "negative", "llmtap.feature": "support"})
    assert neg.candidates(ready(spans)) == []
    assert len(neg.candidates(ready([*spans, negative_label]))) == 1
    assert len(neg.candidates(ready([*spans, negative_event]))) == 1
    assert neg.candidates(ready([*spans, positive])) == []
    anything = compiled(when={"feedback": "any"})
    assert len(anything.candidates(ready([*spans, positive]))) == 1
    assert anything.candidates(ready(spans)) == []


# Sampling ---------------------------------------------------------------------------------


def test_sampling_is_deterministic_and_nested():
    trace_ids = [(i * 0x9E3779B97F4A7C15 + 12345) & ((1 << 128) - 1) for i in range(1, 5001)]
    ten = compiled(sample=0.10, name="faith")
    five = compiled(sample=0.05, name="faith")
    other = compiled(sample=0.10, name="tone")
    kept10 = {t for t in trace_ids if ten.sampled(t)}
    kept5 = {t for t in trace_ids if five.sampled(t)}
    assert kept5 <= kept10  # same name: nested
    assert 350 < len(kept10) < 650 and 150 < len(kept5) < 350
    assert kept10 != {t for t in trace_ids if other.sampled(t)}  # another salt: independent
    again = compiled(sample=0.10, name="faith")  # another instance (replica) agrees
    assert {t for t in trace_ids if again.sampled(t)} == kept10
    assert all(compiled(sample=1.0).sampled(t) for t in trace_ids[:100])
    assert not any(compiled(sample=0.0).sampled(t) for t in trace_ids[:100])


def test_replicas_judge_the_same_traces(harness):
    judged = []
    for _ in range(2):  # two independent services, same config, same traffic
        check = Check()
        h = harness([rule(sample=0.3)], [check])
        for tid in range(1, 301):
            h.judging.on_spans(make_trace(tid * 7919))
        h.settle()
        judged.append({t for t, _ in check.calls})
    assert judged[0] == judged[1]
    assert 50 < len(judged[0]) < 130


# Dedup ------------------------------------------------------------------------------------


def test_rules_sharing_an_evaluator_judge_a_span_once(harness):
    check = Check()
    h = harness(
        [rule(when={"llmtap.feature": "support"}), rule(when={"gen_ai.request.model": "gpt-4o"})],
        [check],
    )
    h.judging.on_spans(make_trace(1, chats=2))
    h.settle()
    assert sorted(check.calls) == [(1, 1010), (1, 1011)]
    m = h.metrics()
    assert total(m["llmtap.judge.evaluations.skipped"], reason="duplicate") == 2


def test_late_feedback_judges_the_trace_again_without_rejudging(harness):
    faith, relevance = Check("faithfulness"), Check("answer_relevance", passed=False)
    h = harness(
        [rule("faithfulness"), rule("answer_relevance", when={"feedback": "negative"})],
        [faith, relevance],
    )
    spans = make_trace(1)
    h.judging.on_spans(spans)
    h.settle()
    assert faith.calls == [(1, 1010)] and relevance.calls == []
    # the same spans sent again (a collector retry) change nothing
    h.judging.on_spans(spans)
    h.settle()
    assert faith.calls == [(1, 1010)] and relevance.calls == []
    # minutes later, the user's thumbs-down arrives as a late span of the trace
    h.clock.advance(120)
    h.judging.on_spans([feedback_span(1, **{"llmtap.feedback.label": "negative"})])
    h.settle()
    assert faith.calls == [(1, 1010)]  # never twice by the same evaluator
    assert relevance.calls == [(1, 1010)]
    (late_result,) = h.emitted.named("answer_relevance")
    assert late_result.attributes["llmtap.evaluation.late"] is True
    (first_result,) = h.emitted.named("faithfulness")
    assert "llmtap.evaluation.late" not in first_result.attributes
    m = h.metrics()
    assert total(m["llmtap.judge.traces.assembled"], llmtap__evaluation__late="true") == 2


# Scheduling -------------------------------------------------------------------------------


def test_concurrency_limit_is_respected(harness):
    check = Check(delay=0.05)
    h = harness([rule()], [check], concurrency=3)
    for tid in range(1, 5):
        h.judging.on_spans(make_trace(tid, chats=6))
    h.settle()
    assert len(check.calls) == 24
    assert check.max_active == 3


def test_full_queue_skips_and_counts(harness):
    check = Check(delay=0.05)
    h = harness([rule()], [check], concurrency=1, queue_size=2)
    h.judging.on_spans(make_trace(1, chats=10))
    h.settle()
    assert len(check.calls) == 2
    m = h.metrics()
    assert total(m["llmtap.judge.evaluations.skipped"], reason="queue_full") == 8
    assert total(m["llmtap.judge.evaluations.run"]) == 2


def test_slow_evaluator_never_blocks_on_spans(harness):
    check = Check(delay=30.0)
    h = harness([rule()], [check], concurrency=2)
    h.judging.on_spans(make_trace(1, chats=4))
    assert h.judging.wait_idle(5)
    h.clock.advance(2)
    deadline = time.monotonic() + 5
    while check.active < 2 and time.monotonic() < deadline:  # both workers stuck judging
        time.sleep(0.01)
    assert check.active == 2
    worst = spent = 0.0
    for tid in range(2, 1002):
        spans = make_trace(tid)
        t0 = time.perf_counter()
        h.judging.on_spans(spans)
        took = time.perf_counter() - t0
        worst, spent = max(worst, took), spent + took
    # blocked, one call would wait for the 30 s evaluator: the bounds are far below that and
    # loose enough for a loaded machine
    assert spent < 3.0
    assert worst < 0.5
    t0 = time.monotonic()
    h.judging.stop(timeout=0.3)
    assert time.monotonic() - t0 < 3.0
    m = h.metrics()
    assert total(m["llmtap.judge.evaluations.skipped"], reason="shutdown") >= 2


def test_full_inbox_drops_and_counts():
    registry = MetricsRegistry()
    judging = Judging(
        JudgeConfig(rules=[rule()]),
        evaluators={"check": Check()},
        metrics_registry=registry,
        inbox_max_spans=10,
    )
    judging.on_spans(make_trace(1, chats=5))  # 7 spans
    judging.on_spans(make_trace(2, chats=5))  # 7 more: over the bound, dropped
    m = collect(registry)
    assert total(m["llmtap.judge.spans.dropped"], reason="inbox_full") == 7
    assert judging.stats()["inbox_spans"] == 7


def test_no_rules_means_nothing_is_held():
    judging = Judging(JudgeConfig(rules=[]))
    judging.on_spans(make_trace(1))
    assert judging.stats()["inbox_spans"] == 0


def test_evaluator_errors_and_timeouts_become_failed_verdicts(harness):
    broken = Check("broken", raises=RuntimeError("boom"))
    down = Check("down", error_type="server_error")
    slow = Check("slow", delay=5.0)
    h = harness(
        [rule("broken"), rule("down"), rule("slow")], [broken, down, slow], eval_timeout_s=0.2
    )
    h.judging.on_spans(make_trace(1))
    h.settle()
    errors = {
        s.attributes["gen_ai.evaluation.name"]: s.attributes["error.type"] for s in h.emitted.spans
    }
    assert errors == {"broken": "RuntimeError", "down": "server_error", "slow": "timeout"}
    assert all(s.is_error for s in h.emitted.spans)
    m = h.metrics()
    failed = m["llmtap.judge.evaluations.failed"]
    assert total(failed, error__type="timeout") == 1
    assert total(failed) == 3


def test_stop_judges_open_traces_early(harness):
    check = Check()
    h = harness([rule()], [check])
    h.judging.on_spans(make_trace(1))
    assert h.judging.wait_idle(5)  # assembled, not yet idle
    assert check.calls == []
    h.judging.stop(timeout=5)
    assert check.calls == [(1, 1010)]
    (result,) = h.emitted.spans
    assert result.attributes["llmtap.evaluation.early"] is True
    m = h.metrics()
    assert total(m["llmtap.judge.traces.decided_early"], reason="shutdown") == 1
    h.judging.on_spans(make_trace(2))  # after stop: ignored
    assert h.judging.stats()["inbox_spans"] == 0


def test_budget_pressure_judges_oldest_traces_early(harness):
    check = Check()
    h = harness([rule()], [check], max_traces=2)
    for tid in (1, 2, 3, 4):
        h.judging.on_spans(make_trace(tid))
    assert h.judging.wait_idle(5)
    assert sorted(t for t, _ in check.calls) == [1, 2]  # decided for room, before idle
    h.clock.advance(2)
    assert h.judging.wait_idle(5)
    early = {judged_trace(s): s.attributes.get("llmtap.evaluation.early") for s in h.emitted.spans}
    assert early == {1: True, 2: True, 3: None, 4: None}


# Metrics ----------------------------------------------------------------------------------


def test_metrics(harness):
    judge = Check("faithfulness", uses_model=True, passed=lambda item: item.span.trace_id % 2 == 0)
    rule_check = Check("no_apology", error_type=None)
    h = harness([rule("faithfulness"), rule("no_apology", sample=0.0)], [judge, rule_check])
    for tid in range(1, 11):
        h.judging.on_spans(make_trace(tid))
    h.settle()
    m = h.metrics()
    run = m["llmtap.judge.evaluations.run"]
    assert total(run, gen_ai__evaluation__name="faithfulness", llmtap__feature="support") == 10
    verdicts = m["llmtap.judge.verdicts"]
    assert total(verdicts, llmtap__evaluation__passed="true") == 5
    assert total(verdicts, llmtap__evaluation__passed="false") == 5
    (rate,) = m["llmtap.judge.pass_rate"]
    assert rate == ({"gen_ai.evaluation.name": "faithfulness", "llmtap.feature": "support"}, 0.5)
    ((attrs, (count, _)),) = m["llmtap.judge.duration"]
    assert attrs == {"gen_ai.evaluation.name": "faithfulness"} and count == 10
    tokens = m["llmtap.judge.tokens"]
    assert total(tokens, gen_ai__token__type="input") == 1200
    assert total(tokens, gen_ai__token__type="output") == 300
    assert total(tokens, llmtap__evaluation__judge_model="judge-mini") == 1500
    assert total(m["llmtap.judge.cost"]) == pytest.approx(0.005)
    skipped = m["llmtap.judge.evaluations.skipped"]
    assert total(skipped, gen_ai__evaluation__name="no_apology", reason="sampled_out") == 10
    assert total(m["llmtap.judge.traces.assembled"], reason="idle") == 10
    assert "llmtap.judge.traces.decided_early" not in m or not total(
        m["llmtap.judge.traces.decided_early"]
    )
    assert m["llmtap.judge.queue.depth"] == [({}, 0)]
    assert m["llmtap.judge.traces.open"] == [({}, 0)]
    assert h.judging.metrics.pass_rate("faithfulness", "support") == 0.5


def test_metrics_on_the_service_registry(harness):
    metrics = pytest.importorskip("llmtap.service.metrics")
    registry = metrics.MetricsRegistry()
    check = Check(passed=False)
    h = harness([rule()], [check], metrics_registry=registry)
    h.judging.on_spans(make_trace(1))
    h.settle()
    text = registry.render()
    assert (
        'llmtap_judge_verdicts_total{gen_ai_evaluation_name="check",'
        'llmtap_evaluation_passed="false",llmtap_feature="support",'
        'llmtap_prompt_version=""} 1.0' in text
    )
    assert "llmtap_judge_duration_seconds_bucket" in text
    assert "llmtap_judge_queue_depth 0" in text
    assert "llmtap_judge_assembly_bytes " in text


# The real evaluator registry --------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("llmtap.evals.registry") is None,
    reason="llmtap.evals.registry is not there yet",
)
def test_rule_built_by_the_evaluator_registry(harness):
    config_rule = JudgeRule.from_mapping(
        {"evaluator": "regex", "pattern": "(?i)sorry", "match": False, "name": "no_apology"}
    )
    h = harness([config_rule], [])
    (compiled_rule,) = h.judging.rules
    assert compiled_rule.evaluation == "no_apology"
    h.judging.on_spans(make_trace(1, output="Sorry, I cannot help with refunds."))
    h.judging.on_spans(make_trace(2, output="Your refund is on its way."))
    h.settle()
    by_trace = {judged_trace(s): s.attributes for s in h.emitted.named("no_apology")}
    assert by_trace[1]["llmtap.evaluation.passed"] is False
    assert by_trace[2]["llmtap.evaluation.passed"] is True
    assert by_trace[1]["llmtap.evaluation.source"] == "rule"


def test_from_config(tmp_path):
    path = tmp_path / "llmtap.yaml"
    path.write_text("judge:\n  rules:\n    - {evaluator: check, sample: 0.5}\n", encoding="utf-8")
    judging = Judging.from_config(load_config(path), evaluators={"check": Check()})
    assert judging is not None
    (only,) = judging.rules
    assert (only.evaluation, only.sample) == ("check", 0.5)
    assert Judging.from_config(load_config(None, env={})) is None
    path.write_text("judge: {rules: []}\n", encoding="utf-8")
    assert Judging.from_config(load_config(path)) is None
