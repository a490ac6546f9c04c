"""The rule matcher (shared by head, tail and judge rules) and the head sampler."""

from __future__ import annotations

import random
import timeit
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

import llmtap
from llmtap.config import Settings
from llmtap.config_file import HeadRule, HeadSamplingConfig
from llmtap.instrumentation._invocation import Invocation, Telemetry
from llmtap.pipeline.sampling import RuleSampler
from llmtap.pipeline.span import SpanData
from llmtap.pipeline.trace_ids import ratio_bound, trace_id_fraction, trace_id_sampled
from llmtap.when import compile_head_when, compile_when

# The matcher ----------------------------------------------------------------------------


def match(when, attrs=None, **facts) -> bool:
    return compile_when(when, "when").matches(attrs or {}, **facts)


@pytest.mark.parametrize(
    ("cond", "value", "expected"),
    [
        ("support", "support", True),
        ("support", "Support", False),
        ("500", 500, True),  # a string condition against a number attribute
        (500, "500", True),  # and the other way round
        (1, 1.0, True),
        (1, True, False),  # booleans are not numbers
        (True, True, True),
        (True, "TRUE", True),
        (True, 1, False),
        ("true", True, True),
        (2.5, "x", False),
        ("stop", ["length", "stop"], True),  # array attributes: any element
        ("stop", ("length",), False),
    ],
)
def test_equality(cond, value, expected):
    assert match({"a": cond}, {"a": value}) is expected
    assert match({"a": {"eq": cond}}, {"a": value}) is expected


def test_absent_attribute_matches_nothing_but_exists_false_and_not():
    assert match({"a": "x"}, {}) is False
    assert match({"a": {"in": ["x"]}}, {}) is False
    assert match({"a": {"regex": ".*"}}, {}) is False
    assert match({"a": {"gt": 0}}, {}) is False
    assert match({"a": {"exists": False}}, {}) is True
    assert match({"a": {"not": "x"}}, {}) is True


def test_in_and_list_shorthand():
    for when in ({"m": {"in": ["gpt-4o", "o3", 7]}}, {"m": ["gpt-4o", "o3", 7]}):
        assert match(when, {"m": "o3"})
        assert match(when, {"m": 7})
        assert match(when, {"m": "7"})
        assert not match(when, {"m": "gpt-4"})
        assert match(when, {"m": ["x", "gpt-4o"]})


def test_regex_is_a_full_match():
    when = {"gen_ai.request.model": {"regex": "gpt-4o(-mini)?"}}
    assert match(when, {"gen_ai.request.model": "gpt-4o"})
    assert match(when, {"gen_ai.request.model": "gpt-4o-mini"})
    assert not match(when, {"gen_ai.request.model": "gpt-4o-mini-2024-07-18"})
    assert not match(when, {"gen_ai.request.model": "openai/gpt-4o"})
    assert match({"x": {"regex": ".*refund.*"}}, {"x": "I want a refund now"})
    assert match({"x": {"regex": "4\\d\\d"}}, {"x": 404})  # numbers match on their text
    assert match({"x": {"regex": "true"}}, {"x": True})


def test_contains():
    assert match({"out": {"contains": "sorry"}}, {"out": "I'm sorry, I can't"})
    assert not match({"out": {"contains": "sorry"}}, {"out": "Sure!"})
    assert match({"r": {"contains": "len"}}, {"r": ["stop", "length"]})


@pytest.mark.parametrize(
    ("op", "bound", "value", "expected"),
    [
        ("gt", 1000, 1001, True),
        ("gt", 1000, 1000, False),
        ("gte", 1000, 1000, True),
        ("lt", 0.5, 0.49, True),
        ("lt", 0.5, 0.5, False),
        ("lte", 0.5, 0.5, True),
        ("gt", 10, "11", True),  # numeric strings compare as numbers
        ("gt", 10, "eleven", False),
        ("gt", 0, True, False),  # booleans are not numbers
        ("gt", 5, [1, 9], True),
    ],
)
def test_numeric_comparisons(op, bound, value, expected):
    assert match({"n": {op: bound}}, {"n": value}) is expected


def test_range_is_anded():
    when = {"tokens": {"gte": 100, "lt": 200}}
    assert [match(when, {"tokens": n}) for n in (99, 100, 199, 200)] == [
        False,
        True,
        True,
        False,
    ]


def test_exists():
    assert match({"user.id": {"exists": True}}, {"user.id": "u1"})
    assert not match({"user.id": {"exists": True}}, {})
    assert match({"user.id": {"exists": False}}, {})
    assert not match({"user.id": {"exists": False}}, {"user.id": ""})


def test_not():
    when = {"llmtap.feature": {"not": {"in": ["internal", "test"]}}}
    assert match(when, {"llmtap.feature": "support"})
    assert not match(when, {"llmtap.feature": "test"})
    assert match(when, {})
    assert match({"n": {"not": {"gt": 5}}}, {"n": 3})
    assert match({"not": {"a": "x", "b": "y"}}, {"a": "x", "b": "z"})
    assert not match({"not": {"a": "x", "b": "y"}}, {"a": "x", "b": "y"})


def test_several_keys_are_anded_and_any_all_combine():
    when = {"a": "1", "b": {"gt": 2}}
    assert match(when, {"a": "1", "b": 3})
    assert not match(when, {"a": "1", "b": 2})
    assert not match(when, {"b": 3})
    any_of = {"any": [{"a": "1"}, {"b": {"gt": 2}}]}
    assert match(any_of, {"a": "1"}) and match(any_of, {"b": 3})
    assert not match(any_of, {"a": "2", "b": 1})
    three = {"any": [{"a": "1"}, {"a": "2"}, {"a": "3"}]}
    assert match(three, {"a": "3"}) and not match(three, {"a": "4"})
    all_of = {"all": [{"a": "1"}, {"any": [{"b": "x"}, {"c": {"exists": True}}]}], "d": "z"}
    assert match(all_of, {"a": "1", "c": 0, "d": "z"})
    assert not match(all_of, {"a": "1", "c": 0})
    assert not match(all_of, {"a": "1", "d": "z"})


def test_empty_when_matches_everything():
    assert match({}, {}) and match({}, {"a": 1})


def test_status():
    assert match({"status": "error"}, status_error=True)
    assert not match({"status": "error"}, status_error=False)
    assert match({"status": "ok"}, status_error=False)  # ok and unset: "not an error"
    assert match({"status": "unset"}, status_error=False)
    assert match({"status": ["ok", "error"]}, status_error=True)
    assert not match({"status": "error"})  # unknown status matches nothing
    assert match({"status": "unset"}, status_code="unset")
    assert not match({"status": "ok"}, status_code="unset")
    assert match({"status": "OK"}, status_code="ok")
    assert not match({"status": "error"}, status_error=True, status_code="ok")  # code wins


def test_duration():
    when = {"duration": {"gt": 2.5}}
    assert match(when, duration_s=3.0)
    assert not match(when, duration_s=2.5)
    assert not match(when)  # unknown
    assert match({"duration": {"gte": 1, "lt": 2}}, duration_s=1.0)


def test_span_name_and_kind():
    assert match({"name": {"regex": "chat .*"}}, name="chat gpt-4o")
    assert not match({"name": "embeddings"}, name="chat gpt-4o")
    assert not match({"name": "chat"})
    assert match({"kind": "client"}, kind=SpanKind.CLIENT)
    assert match({"kind": ["server", "client"]}, kind="SPAN_KIND_CLIENT")
    assert not match({"kind": "client"}, kind=SpanKind.INTERNAL)
    assert not match({"kind": "client"})


def test_matches_span_record():
    matcher = compile_when({"status": "error", "duration": {"gt": 1}, "name": "chat x", "a": 1})
    span = SpanData(name="chat x", attributes={"a": 1}, is_error=True, duration_s=2.0)
    assert matcher.matches_span(span)
    span.is_error = False
    assert not matcher.matches_span(span)


def test_matcher_records_what_it_uses():
    matcher = compile_when({"any": [{"status": "error"}, {"not": {"duration": {"gt": 1}}}]})
    assert matcher.uses == {"status", "duration"}
    assert compile_when({"a": 1}).uses == frozenset()


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            {"llmtap.feature": {"regex": "("}},
            "sampling.head.rules[2].when.llmtap.feature: regex does not compile: ",
        ),
        (
            {"a": {"regx": "x"}},
            "sampling.head.rules[2].when.a: unknown operator 'regx' (did you mean 'regex'?)",
        ),
        ({"a": {"gt": "ten"}}, "when.a: gt: expected a number, got 'ten'"),
        ({"a": {"gt": True}}, "when.a: gt: expected a number, got True"),
        ({"a": {"exists": "yes"}}, "when.a: exists: expected true or false, got 'yes'"),
        ({"a": {"in": []}}, "when.a: in: expected a non-empty list"),
        ({"a": {"in": [{"x": 1}]}}, "when.a: in: expected a non-empty list"),
        ({"a": {"eq": [1]}}, "when.a: eq: expected a string, number or boolean"),
        ({"a": {"regex": 5}}, "when.a: regex: expected a string, got 5"),
        ({"a": {"contains": 5}}, "when.a: contains: expected a string"),
        ({"a": None}, "when.a: a null value matches nothing; write {exists: false}"),
        ({"a": {}}, "when.a: empty condition"),
        ({"status": "eror"}, "when.status: expected error, ok or unset (or a list of them), "),
        ({"status": "eror"}, "(did you mean 'error'?)"),
        ({"kind": "clinet"}, "(did you mean 'client'?)"),
        ({"duration": 2}, "when.duration: expected a comparison in seconds such as {gt: 2.5}"),
        ({"duration": {"gt": "2s"}}, "when.duration: gt: expected a number of seconds"),
        ({"duration": {"more": 2}}, "when.duration: unknown operator 'more'"),
        ({"any": []}, "when.any: expected a non-empty list of conditions"),
        ({"any": [{"a": {"gt": "x"}}]}, "when.any[0].a: gt: expected a number"),
        ({"not": "x"}, "when.not: expected a mapping of conditions, got 'x'"),
        ({1: "x"}, "when: condition keys must be strings, got 1"),
    ],
)
def test_bad_when_names_the_path(when, message):
    where = "sampling.head.rules[2].when" if "rules[2]" in message else "when"
    with pytest.raises(ValueError) as info:
        compile_when(when, where)
    assert message in str(info.value)


def test_every_problem_of_a_when_is_listed():
    with pytest.raises(ValueError) as info:
        compile_when({"a": {"regex": "("}, "b": {"gt": "x"}, "status": "nope"}, "w")
    lines = str(info.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["w.a", "w.b", "w.status"]


def test_head_rules_reject_status_and_duration():
    with pytest.raises(ValueError) as info:
        compile_head_when({"any": [{"status": "error"}, {"duration": {"gt": 1}}]}, "h")
    text = str(info.value)
    assert "h.any[0].status: the head sampler decides at span start" in text
    assert "h.any[1].duration: the head sampler decides at span start" in text
    assert compile_head_when({"name": "x", "kind": "client"}, "h").uses == {"name", "kind"}


def test_matching_is_fast():
    attrs = {f"attr.{i}": f"value-{i}" for i in range(18)}
    attrs |= {"llmtap.feature": "support", "gen_ai.request.model": "gpt-4o-mini"}
    rules = [
        compile_when({"llmtap.feature": "support"}),
        compile_when({"llmtap.feature": {"in": ["a", "support"]}, "gen_ai.request.model": "x"}),
        compile_when({"gen_ai.request.model": {"regex": "gpt-4o.*"}}),
    ]
    facts = (None, None, None, None)
    for rule in rules:
        check = rule._check
        best = min(timeit.repeat(lambda c=check: c(attrs, facts), number=20_000, repeat=3))
        # ~0.2-0.5 µs here; the bound leaves room for slow CI machines
        assert best / 20_000 < 3e-6, rule


# Trace-id arithmetic ---------------------------------------------------------------------


def test_fraction_without_salt_agrees_with_trace_id_ratio_based():
    rng = random.Random(7)
    ids = [rng.getrandbits(128) for _ in range(3000)]
    ids += [0, 1, (1 << 128) - 1, (1 << 64) - 1, 1 << 63, (1 << 63) - 1]
    for ratio in (0.0, 0.001, 0.1, 0.5, 0.999, 1.0):
        reference = TraceIdRatioBased(ratio)
        for trace_id in ids:
            expected = reference.should_sample(None, trace_id, "x").decision.is_sampled()
            assert trace_id_sampled(trace_id, ratio) is expected
            assert (trace_id_fraction(trace_id) < ratio) is expected
    assert ratio_bound(0.25) == TraceIdRatioBased(0.25).bound


def test_fraction_is_deterministic_in_range_and_salted_independently():
    rng = random.Random(11)
    ids = [rng.getrandbits(128) for _ in range(20_000)]
    for trace_id in [*ids[:100], (1 << 128) - 1, (1 << 64) - 1]:
        for salt in ("", "faithfulness", "x" * 100):
            f = trace_id_fraction(trace_id, salt)
            assert 0.0 <= f < 1.0
            assert f == trace_id_fraction(trace_id, salt)
    assert trace_id_fraction(5, "a") != trace_id_fraction(5, "b")
    a = {t for t in ids if trace_id_sampled(t, 0.3, "judge:a")}
    b = {t for t in ids if trace_id_sampled(t, 0.3, "judge:b")}
    assert abs(len(a) / len(ids) - 0.3) < 0.015
    assert abs(len(a & b) / len(ids) - 0.09) < 0.01  # independent: 0.3 * 0.3
    small = {t for t in ids if trace_id_sampled(t, 0.05, "judge:a")}
    assert small <= a  # same salt: nested


# The head sampler ------------------------------------------------------------------------


class FixedIds(IdGenerator):
    """Trace ids from a list (then random), so decisions are known in advance."""

    def __init__(self, trace_ids: list[int]) -> None:
        self._ids = list(trace_ids)
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        return self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        return self._ids.pop(0) if self._ids else self._random.generate_trace_id()


LOW = 1  # kept by any ratio > 0
HIGH = (1 << 64) - 1  # dropped by any ratio < 1
HALF_LOW = (7 << 64) | ((1 << 63) - 5)  # kept at 0.5 (the low 64 bits decide)
HALF_HIGH = (1 << 63) + 5  # dropped at 0.5


def head(*rules: tuple[dict, float], default: float = 1.0, parent_based: bool = True):
    return HeadSamplingConfig(
        default=default,
        parent_based=parent_based,
        rules=[HeadRule(when=w, ratio=r) for w, r in rules],
    )


@pytest.fixture
def make_tracer() -> Iterator:
    providers: list[TracerProvider] = []

    def make(config: HeadSamplingConfig, trace_ids: list[int] | None = None):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(
            sampler=RuleSampler(config), id_generator=FixedIds(trace_ids or [])
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        return provider.get_tracer("test"), exporter

    yield make
    for provider in providers:
        provider.shutdown()


def test_deterministic_decisions_for_fixed_trace_ids(make_tracer):
    config = head(default=0.5)
    tracer, exporter = make_tracer(config, [HALF_LOW, HALF_HIGH, LOW, HIGH, HALF_LOW])
    decisions = []
    for _ in range(5):
        span = tracer.start_span("work")
        decisions.append(span.get_span_context().trace_flags.sampled)
        span.end()
    assert decisions == [True, False, True, False, True]
    assert len(exporter.get_finished_spans()) == 3


def test_ratio_accuracy_over_random_trace_ids():
    sampler = RuleSampler(head(({"llmtap.feature": "autocomplete"}, 0.1), default=0.6))
    rng = random.Random(2024)
    n = 20_000
    for attrs, ratio in (({"llmtap.feature": "autocomplete"}, 0.1), ({}, 0.6)):
        kept = sum(
            sampler.should_sample(
                None, rng.getrandbits(128), "chat", attributes=attrs
            ).decision.is_sampled()
            for _ in range(n)
        )
        assert abs(kept / n - ratio) < 0.015


def test_same_decision_as_trace_id_ratio_based_for_the_matched_ratio():
    sampler = RuleSampler(head(({"gen_ai.request.model": "gpt-4o"}, 0.37), default=0.0))
    reference = TraceIdRatioBased(0.37)
    rng = random.Random(5)
    for _ in range(2000):
        trace_id = rng.getrandbits(128)
        ours = sampler.should_sample(
            None, trace_id, "chat", attributes={"gen_ai.request.model": "gpt-4o"}
        )
        assert ours.decision == reference.should_sample(None, trace_id, "chat").decision


def test_first_matching_rule_wins(make_tracer):
    config = head(
        ({"llmtap.feature": "support"}, 0.0),
        ({"llmtap.feature": "support", "gen_ai.request.model": "gpt-4o"}, 1.0),
        ({"gen_ai.request.model": "gpt-4o"}, 1.0),
        default=0.0,
    )
    tracer, exporter = make_tracer(config, [LOW, LOW, LOW])
    tracer.start_span(
        "a", attributes={"llmtap.feature": "support", "gen_ai.request.model": "gpt-4o"}
    ).end()
    tracer.start_span("b", attributes={"gen_ai.request.model": "gpt-4o"}).end()
    tracer.start_span("c", attributes={"gen_ai.request.model": "o3"}).end()
    assert [s.name for s in exporter.get_finished_spans()] == ["b"]
    sampler = RuleSampler(config)
    assert sampler.rule_for({"llmtap.feature": "support", "gen_ai.request.model": "gpt-4o"}) == 0
    assert sampler.rule_for({"gen_ai.request.model": "gpt-4o"}) == 2
    assert sampler.rule_for({}) == -1


def test_rules_see_span_name_and_kind(make_tracer):
    config = head(({"name": {"regex": "embeddings .*"}, "kind": "client"}, 0.0))
    tracer, exporter = make_tracer(config, [LOW, LOW, LOW])
    tracer.start_span("embeddings text-embedding-3-small", kind=SpanKind.CLIENT).end()
    tracer.start_span("embeddings text-embedding-3-small", kind=SpanKind.INTERNAL).end()
    tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT).end()
    assert [(s.name, s.kind) for s in exporter.get_finished_spans()] == [
        ("embeddings text-embedding-3-small", SpanKind.INTERNAL),
        ("chat gpt-4o", SpanKind.CLIENT),
    ]


def test_sampled_spans_keep_their_start_attributes(make_tracer):
    tracer, exporter = make_tracer(head(({"a": "1"}, 1.0), default=0.0), [LOW])
    tracer.start_span("x", attributes={"a": "1", "b": 2}).end()
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes) == {"a": "1", "b": 2}


def test_local_parent_decides_for_its_children(make_tracer):
    config = head(({"llmtap.feature": "keep"}, 1.0), ({"llmtap.feature": "drop"}, 0.0))
    tracer, exporter = make_tracer(config, [LOW, LOW])
    with (
        tracer.start_as_current_span("root", attributes={"llmtap.feature": "keep"}),
        tracer.start_as_current_span("child", attributes={"llmtap.feature": "drop"}) as child,
    ):
        assert child.get_span_context().trace_flags.sampled
    with tracer.start_as_current_span("root2", attributes={"llmtap.feature": "drop"}) as root2:
        assert not root2.get_span_context().trace_flags.sampled
        with tracer.start_as_current_span("child2", attributes={"llmtap.feature": "keep"}) as c:
            assert not c.is_recording()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["child", "root"]


def _remote_parent(sampled: bool, trace_id: int = HIGH) -> otel_context.Context:
    parent = SpanContext(
        trace_id=trace_id,
        span_id=0x1234,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        trace_state=TraceState([("vendor", "v1")]),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def test_remote_parent_is_honoured(make_tracer):
    config = head(default=0.5)  # HIGH would be dropped by the ratio
    tracer, exporter = make_tracer(config)
    span = tracer.start_span("server", context=_remote_parent(True), kind=SpanKind.SERVER)
    assert span.get_span_context().trace_flags.sampled
    assert span.get_span_context().trace_state.get("vendor") == "v1"
    span.end()
    dropped = tracer.start_span("server", context=_remote_parent(False, LOW))
    assert not dropped.get_span_context().trace_flags.sampled  # LOW would be kept by ratio
    dropped.end()
    assert len(exporter.get_finished_spans()) == 1


def test_without_parent_based_every_span_is_decided_by_the_rules(make_tracer):
    config = head(({"llmtap.feature": "drop"}, 0.0), parent_based=False)
    tracer, exporter = make_tracer(config, [LOW])
    span = tracer.start_span("server", context=_remote_parent(True))
    assert span.get_span_context().trace_flags.sampled
    with trace.use_span(span, end_on_exit=True):
        tracer.start_span("chat", attributes={"llmtap.feature": "drop"}).end()
        tracer.start_span("tool").end()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["server", "tool"]


def test_business_context_is_used_for_spans_llmtap_did_not_start(make_tracer):
    config = head(({"llmtap.feature": "autocomplete"}, 0.0), ({"user.id": "vip"}, 1.0), default=0.0)
    tracer, exporter = make_tracer(config, [LOW, LOW, LOW, LOW])
    with llmtap.context(feature="autocomplete", user_id="vip"):
        tracer.start_span("chat a").end()  # first rule: dropped
    with llmtap.context(user_id="vip"):
        tracer.start_span("chat b").end()  # second rule: kept
        # the span's own attribute wins over the business context
        tracer.start_span("chat c", attributes={"user.id": "someone"}).end()
    tracer.start_span("chat d").end()  # no context: default 0
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["chat b"]
    assert "user.id" not in spans[0].attributes  # the sampler adds nothing to the span


def test_business_context_of_an_explicit_parent_context(make_tracer):
    config = head(({"llmtap.feature": "autocomplete"}, 0.0))
    tracer, exporter = make_tracer(config, [LOW, LOW])
    with llmtap.context(feature="autocomplete"):
        captured = otel_context.get_current()
    tracer.start_span("with", context=captured).end()
    tracer.start_span("without", context=otel_context.Context()).end()
    assert [s.name for s in exporter.get_finished_spans()] == ["without"]


def test_llmtap_spans_are_decided_on_model_operation_and_business_context():
    config = head(
        ({"llmtap.feature": "autocomplete", "gen_ai.operation.name": "chat"}, 0.0),
        ({"gen_ai.request.model": "gpt-4o-mini"}, 0.0),
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=RuleSampler(config), id_generator=FixedIds([LOW] * 3))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry(Settings(), tracer_provider=provider)
    with llmtap.context(feature="autocomplete"):
        with telemetry.step(Invocation("chat", "openai", "gpt-4o")):
            pass
        with telemetry.step(Invocation("embeddings", "openai", "text-embedding-3-small")):
            pass
    with telemetry.step(Invocation("chat", "openai", "gpt-4o-mini")):
        pass
    provider.shutdown()
    assert [s.name for s in exporter.get_finished_spans()] == ["embeddings text-embedding-3-small"]


def test_description_lists_the_rules():
    sampler = RuleSampler(head(({"llmtap.feature": "autocomplete"}, 0.1), default=0.5))
    text = sampler.get_description()
    assert text == (
        'RuleSampler{parent_based=True, rules=[{"llmtap.feature":"autocomplete"}->0.1], '
        "default=0.5}"
    )
    assert "rules=[]" in RuleSampler().get_description()
    named = HeadSamplingConfig(rules=[HeadRule(when={"a": 1}, ratio=0.2, name="tiny")])
    assert 'rules=[tiny:{"a":1}->0.2]' in RuleSampler(named).get_description()


def test_bad_configs_built_in_code_are_rejected():
    with pytest.raises(ValueError, match=r"default: expected a ratio between 0 and 1"):
        HeadSamplingConfig(default=2)
    with pytest.raises(ValueError, match=r"ratio: expected a ratio between 0 and 1"):
        HeadRule(when={}, ratio=-0.1)
    with pytest.raises(ValueError, match=r"when.status: the head sampler decides at span"):
        HeadRule(when={"status": "error"}, ratio=1.0)

    class Loose:  # duck-typed config that skipped validation
        default = 1.0
        parent_based = True
        rules = [type("R", (), {"when": {"duration": {"gt": 1}}, "ratio": 1.0})()]

    with pytest.raises(ValueError, match=r"sampling.head.rules\[0\].when.duration: the head"):
        RuleSampler(Loose())
    Loose.rules = [type("R", (), {"when": {}, "ratio": 3})()]
    with pytest.raises(ValueError, match=r"sampling.head.rules\[0\].ratio: expected a ratio"):
        RuleSampler(Loose())


def test_drop_result_has_no_attributes():
    sampler = RuleSampler(head(default=0.0))
    result = sampler.should_sample(None, LOW, "x", attributes={"a": 1})
    assert result.decision is Decision.DROP
    assert dict(result.attributes) == {}
