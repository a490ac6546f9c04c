"""The llmtap.* registry in ``semconv/`` and the code agree.

* the registry is well formed (``semconv/generate.py``'s checks of the weaver model, with
  refs and imports resolved against GenAI semconv v1.41 when its copy is there);
* the generated Markdown in ``semconv/docs`` is up to date;
* every ``llmtap.*`` name in ``src/llmtap`` (a scan of string constants) is registered, and
  every registered name is defined by the code;
* what real runs emit is registered with its type: every instrumented SDK (the scenarios of
  ``test_semconv_registry``, every instrumentation of the registry active) against the
  loopback dev server (content capture on), steps and business context, the
  cost and redaction stages, user feedback, and the judge with a real LLM evaluator (on a
  loopback judge server) and a rule evaluator, on spans, events, log records and metrics.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmtap import semconv
from llmtap.pipeline import tokens

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "llmtap"
_DEFAULT_UPSTREAM = REPO / "semconv" / "upstream" / "gen-ai-v1.41"
UPSTREAM_MODEL = Path(os.environ.get("LLMTAP_SEMCONV_DIR", _DEFAULT_UPSTREAM)) / "model"


def _load_generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "llmtap_semconv_generate", REPO / "semconv" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
REGISTRY = gen.load()

#: Deviations of the code from the registry that are known and reported, each with the
#: reason. The tests assert that exactly these are found: fixing one fails the test until
#: it is removed here, and a new one fails it too.
KNOWN_POLICY_FINDINGS: frozenset[str] = frozenset()
#: (the judge's llmtap.judge.* metrics are Prometheus metrics of the service's /metrics,
#: not OpenTelemetry ones: llmtap.service.judge_metrics)
KNOWN_METRIC_FINDINGS: frozenset[str] = frozenset()

#: Enums whose values must be registered members (the others are open).
CLOSED_ENUMS = frozenset(
    {
        "llmtap.stream.end",
        "llmtap.evaluation.source",
        "llmtap.feedback.label",
        "llmtap.feedback.scale",
    }
)


# (a) the registry --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Any:
    if not (UPSTREAM_MODEL / "registry.yaml").is_file():
        raise FileNotFoundError(f"GenAI semconv v1.41 model not found at {UPSTREAM_MODEL}")
    return gen.load(UPSTREAM_MODEL)


def test_registry_is_well_formed(upstream: Any) -> None:
    assert gen.check(REGISTRY, upstream) == []


def test_registry_is_well_formed_on_its_own() -> None:
    assert gen.check(REGISTRY) == []


def test_naming_policy_findings_are_the_known_ones() -> None:
    assert set(gen.policy(REGISTRY)) == KNOWN_POLICY_FINDINGS


def test_every_name_is_in_development() -> None:
    assert {a.stability for a in REGISTRY.attributes.values()} == {"development"}
    signals = [g for g in REGISTRY.groups.values() if g["type"] != "attribute_group"]
    assert {g["stability"] for g in signals} == {"development"}


BROKEN_MODEL = """
groups:
  - id: registry.broken
    type: attribute_group
    brief: Broken on purpose.
    attributes:
      - id: llmtap.no_examples
        type: string
        stability: development
        brief: A string without examples.
      - id: llmtap.bad_type
        type: text
        stability: development
        brief: Not a type.
      - id: llmtap.bad.enum
        stability: stable_ish
        brief: Twice the same member.
        type:
          members:
            - {id: a, value: a, stability: development}
            - {id: a, value: a, stability: development}
      - id: Not.Lower
        type: int
        stability: development
        brief: Upper case.
      - id: llmtap.wrong_example
        type: int
        stability: development
        brief: A string example for an int.
        examples: ["three"]
      - ref: llmtap.nowhere
      - id: llmtap.no_examples
        type: int
        stability: development
        brief: Defined twice.
  - id: metric.broken
    type: metric
    metric_name: llmtap.broken
    brief: A metric.
    instrument: meter
    stability: development
    extends: registry.missing
  - id: registry.broken
    type: attribute_group
    brief: The same group id again.
    attributes:
      - {ref: llmtap.bad_type, requirement_level: sometimes}
"""


def test_the_checker_reports_broken_models(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN_MODEL, encoding="utf-8")
    problems = "\n".join(gen.check(gen.load(tmp_path)))
    for expected in (
        "group 'registry.broken' is also defined in broken.yaml",
        "attribute 'llmtap.no_examples' is defined in registry.broken and registry.broken",
        "attribute llmtap.no_examples: string attributes need examples",
        "attribute llmtap.bad_type: type 'text' is not a registry type",
        "attribute llmtap.bad.enum: stability 'stable_ish' is not one of",
        "attribute llmtap.bad.enum: member a: id or value used twice",
        "attribute Not.Lower: not a dotted lower-case name",
        "attribute Not.Lower: outside this registry's namespaces",
        "attribute llmtap.wrong_example: example 'three' is not of type int",
        "ref 'llmtap.nowhere' is not a registered attribute",
        "group metric.broken: instrument 'meter' is not one of",
        "group metric.broken: no unit",
        "group metric.broken: extends unknown group 'registry.missing'",
    ):
        assert expected in problems, expected
    broken = tmp_path / "upstream"
    broken.mkdir()
    (tmp_path / "events.yaml").write_text(
        "imports: {events: [no.such.event]}\ngroups: []\n", encoding="utf-8"
    )
    (broken / "x.yaml").write_text("groups: []\n", encoding="utf-8")
    with_upstream = gen.check(gen.load(tmp_path), gen.load(broken))
    assert "events.yaml: imports.events: 'no.such.event' is not an upstream event" in with_upstream


def test_the_policy_reports_names_that_are_namespaces(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "groups:\n  - id: r\n    type: attribute_group\n    brief: b\n    attributes:\n"
        "      - {id: llmtap.a, type: int, stability: development, brief: b}\n"
        "      - {id: llmtap.a.b, type: int, stability: development, brief: b}\n"
        "      - {id: llmtap.t, type: 'template[int]', stability: development, brief: b}\n"
        "      - {id: llmtap.t.count, type: int, stability: development, brief: b}\n",
        encoding="utf-8",
    )
    assert gen.policy(gen.load(tmp_path)) == [
        "attribute 'llmtap.a' is also the namespace of 'llmtap.a.b'"
    ]


# (c) the Markdown ---------------------------------------------------------------------------


def test_markdown_is_up_to_date() -> None:
    stale = gen.stale_docs(gen.render(REGISTRY))
    assert stale == [], f"run `python semconv/generate.py`: {stale}"


def test_markdown_lists_every_name() -> None:
    docs = {name: gen.DOCS.joinpath(name).read_text("utf-8") for name in gen.render(REGISTRY)}
    for attr in REGISTRY.attributes.values():
        shown = f"`{attr.id}.<key>`" if attr.is_template else f"`{attr.id}`"
        assert shown in docs["attributes.md"], attr.id
    for name in REGISTRY.metrics:
        assert f"## `{name}`" in docs["metrics.md"], name


# the code's names, by a scan of its string constants -------------------------------------

_CANDIDATE = re.compile(r"llmtap\.[a-z0-9_]+(?:\.[a-z0-9_]+)*(?:\.\*|\.)?\Z")
#: calls whose first argument is a logger, meter, tracer or context-key name, not telemetry
_NAMING_CALLS = frozenset({"getLogger", "get_logger", "get_meter", "get_tracer", "create_key"})
#: llmtap.* strings that name no telemetry: the config file and the service's protobuf package
NOT_TELEMETRY = frozenset({"llmtap.yaml", "llmtap.wire"})


@dataclass
class CodeNames:
    exact: dict[str, list[str]] = field(default_factory=dict)  # name -> where
    prefixes: dict[str, list[str]] = field(default_factory=dict)  # "llmtap.metadata."
    patterns: dict[str, list[str]] = field(default_factory=dict)  # "llmtap.cost.*"
    used_identifiers: set[str] = field(default_factory=set)  # names used outside semconv.py


def _naming_arguments(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _NAMING_CALLS:
                skipped.add(id(node.args[0]))
    return skipped


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _telemetry_strings(tree: ast.AST) -> Iterator[tuple[str, int]]:
    skipped = _naming_arguments(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        value = node.value
        if id(node) in skipped or value in NOT_TELEMETRY or not _CANDIDATE.match(value):
            continue
        if not value.endswith((".", ".*")) and _is_module(value):
            continue
        yield value, node.lineno


def _identifiers(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.alias):
            yield node.name


def scan_code(root: Path = SRC) -> CodeNames:
    found = CodeNames()
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), str(path))
        where = path.relative_to(root.parent).as_posix()
        for value, line in _telemetry_strings(tree):
            kind = (
                found.patterns
                if value.endswith(".*")
                else found.prefixes
                if value.endswith(".")
                else found.exact
            )
            kind.setdefault(value, []).append(f"{where}:{line}")
        if path.name != "semconv.py":
            found.used_identifiers.update(_identifiers(tree))
    return found


CODE = scan_code()


def _semconv_constants() -> dict[str, str]:
    """``LLMTAP_*``/``METRIC_LLMTAP_*`` constants of llmtap.semconv, and the gen_ai.* ones
    outside semconv v1.41: constant name -> value."""
    out = {}
    for name, value in vars(semconv).items():
        if not isinstance(value, str):
            continue
        if name.startswith(("LLMTAP_", "METRIC_LLMTAP_")) or value in semconv.GEN_AI_EXTENSIONS:
            out[name] = value
    return out


def _registered(name: str) -> bool:
    if name in REGISTRY.metrics:
        return True
    attr = REGISTRY.lookup(name)
    return attr is not None


def test_the_scan_finds_names_in_every_area() -> None:
    """Keeps the scan honest: names from modules of each area are found."""
    where = {w.split(":")[0] for places in CODE.exact.values() for w in places}
    for module in (
        "llmtap/semconv.py",
        "llmtap/service/results.py",
        "llmtap/service/judge_metrics.py",
    ):
        assert module in where, module
    assert "llmtap.service" not in CODE.exact  # a logger name
    assert "llmtap.instrumentation.openai" not in CODE.exact  # a module


def test_every_llmtap_name_in_the_code_is_registered() -> None:
    missing = [f"{n} ({', '.join(w)})" for n, w in CODE.exact.items() if not _registered(n)]
    assert missing == []


def test_every_semconv_constant_is_registered() -> None:
    problems = []
    templates = {a.id + "." for a in REGISTRY.attributes.values() if a.is_template}
    for name, value in _semconv_constants().items():
        if value.endswith("."):
            if value not in templates:
                problems.append(f"{name}={value!r}: no template attribute {value[:-1]!r}")
        elif name.startswith("METRIC_"):
            if value not in REGISTRY.metrics:
                problems.append(f"{name}={value!r}: not a registered metric")
        elif value not in REGISTRY.attributes:
            problems.append(f"{name}={value!r}: not a registered attribute")
    assert problems == []


def test_every_semconv_constant_is_used() -> None:
    """A constant nobody uses names telemetry nobody emits."""
    unused = [n for n in _semconv_constants() if n not in CODE.used_identifiers]
    assert unused == []


def _redaction_type_names() -> set[str]:
    from llmtap.pipeline.detectors import DETECTOR_TYPES
    from llmtap.pipeline.redact import redaction_count_attribute

    return {redaction_count_attribute(kind) for kind in DETECTOR_TYPES.values()}


def test_every_redaction_type_is_registered_as_a_count() -> None:
    for name in _redaction_type_names():
        attr = REGISTRY.attributes.get(name)
        assert attr is not None and attr.type == "int", name


def test_redaction_allow_keys_name_registered_attributes() -> None:
    from llmtap.pipeline.redact import DEFAULT_ALLOW_KEYS

    def matches(key: str) -> bool:
        if key.endswith(".*"):
            return any(name.startswith(key[:-1]) for name in REGISTRY.attributes)
        return key in REGISTRY.attributes

    stale = [k for k in DEFAULT_ALLOW_KEYS if k.startswith("llmtap.") and not matches(k)]
    assert stale == [], "redaction allow keys that match no registered attribute"


# (d) every registered name is defined by the code -----------------------------------------


def _defined_names() -> set[str]:
    constants = _semconv_constants()
    used = {v for n, v in constants.items() if n in CODE.used_identifiers}
    outside = {n for n, places in CODE.exact.items() if any("semconv.py" not in w for w in places)}
    return used | outside | _redaction_type_names() | set(semconv.GEN_AI_EXTENSIONS)


def test_every_registered_name_is_defined_by_the_code() -> None:
    defined = _defined_names()
    prefixes = set(CODE.prefixes) | {v for v in _semconv_constants().values() if v.endswith(".")}
    unused = [n for n in REGISTRY.metrics if n not in defined]
    for attr in REGISTRY.attributes.values():
        if attr.is_template:
            if attr.id + "." not in prefixes:
                unused.append(f"{attr.id}.<key>")
        elif attr.id not in defined:
            unused.append(attr.id)
    assert unused == [], "registered, but the code never defines them"


# (b) what real runs emit ----------------------------------------------------------------------


@dataclass
class Emitted:
    spans: list[Any] = field(default_factory=list)  # pipeline SpanData, after the stages
    logs: list[Any] = field(default_factory=list)  # SDK LogRecords
    metrics: list[tuple[str, str, str, list[dict[str, Any]]]] = field(default_factory=list)

    def attribute_sets(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for span in self.spans:
            yield f"span {span.name!r}", span.attributes
            for event in span.events:
                yield f"span event {event.name!r}", event.attributes
        for record in self.logs:
            yield f"event {record.event_name!r}", dict(record.attributes or {})

    def names(self) -> set[str]:
        return {k for _, attrs in self.attribute_sets() for k in attrs}


class _Providers:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.logs = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))

    def kwargs(self) -> dict[str, Any]:
        return {
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            "logger_provider": self.logger_provider,
        }

    def shutdown(self) -> None:
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            provider.shutdown()


def _instrumented(p: _Providers, settings: Any) -> list[Any]:
    """Every instrumentation of the registry, as ``llmtap.configure()`` instruments them."""
    from llmtap.instrumentation.registry import INSTRUMENTATIONS

    instrumentors = [entry.load()() for entry in INSTRUMENTATIONS]
    for instrumentor in instrumentors:
        instrumentor.instrument(settings=settings, **p.kwargs())
        assert instrumentor.is_instrumented_by_opentelemetry, type(instrumentor).__name__
    return instrumentors


def _run_sdk_scenarios(p: _Providers, devserver: Any) -> None:
    """Every scenario of the GenAI registry test, with content on spans and events."""
    import test_semconv_registry as scenarios
    from llmtap.config import CaptureMode, ContentLimits, Settings

    clients = scenarios.Clients(devserver)
    try:
        for scenario in scenarios.SCENARIOS:
            limits = scenario.settings.get("limits")
            settings = Settings(
                capture=CaptureMode.SPAN_AND_EVENT,
                limits=ContentLimits(**limits) if limits else ContentLimits(),
            )
            instrumentors = _instrumented(p, settings)
            try:
                scenario.run(clients)
            finally:
                for instrumentor in instrumentors:
                    instrumentor.uninstrument()
        _run_context_and_steps(p, clients)
    finally:
        clients.close()


def _run_context_and_steps(p: _Providers, clients: Any) -> None:
    """Business context, PII for the redaction stage, an unpriced model, and steps."""
    import llmtap
    from llmtap import runtime
    from llmtap.config import CaptureMode, Settings
    from llmtap.instrumentation._invocation import Telemetry

    settings = Settings(capture=CaptureMode.SPAN_AND_EVENT)
    instrumentors = _instrumented(p, settings)
    runtime.use_telemetry(Telemetry(settings, **p.kwargs()))
    try:
        with llmtap.context(feature="support", prompt_version="7", metadata={"tenant": "acme"}):
            with llmtap.rerank("bm25"), llmtap.step("guardrail", "pii"):
                clients.openai.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[
                        {"role": "user", "content": "Mail jane.doe@example.com or +1 415 555 0100"}
                    ],
                )
            clients.openai.chat.completions.create(
                model="acme-private-model-x9", messages=[{"role": "user", "content": "Hi"}]
            )
    finally:
        runtime.use_telemetry(None)
        for instrumentor in instrumentors:
            instrumentor.uninstrument()


def _record_feedback(p: _Providers, spans: list[Any]) -> None:
    from llmtap.feedback import record_feedback

    answer = next(
        s
        for s in spans
        if s.name.startswith("chat") and s.attributes.get(semconv.LLMTAP_FEATURE) == "support"
    )
    record_feedback(span_context=answer.context, score="down", comment="wrong", **_two(p))
    record_feedback(span_context=answer.context, score=4, scale="stars", **_two(p))
    # by a response id this process did not see: unresolved, in a trace of its own
    record_feedback(response_id="chatcmpl-elsewhere", score="down", **_two(p))


def _two(p: _Providers) -> dict[str, Any]:
    return {"tracer_provider": p.tracer_provider, "logger_provider": p.logger_provider}


def _pipeline(p: _Providers, spans: Iterable[Any]) -> list[Any]:
    """The app-side stages (cost, then redaction) as ``llmtap.configure`` builds them."""
    from llmtap.pipeline.stages import build_stages
    from llmtap.sdk.processor import to_span_data

    stages = build_stages(None, p.meter_provider)
    out = []
    for span in spans:
        data = to_span_data(span)
        for stage in stages:
            stage.apply(data)
        out.append(data)
    return out


JUDGE_RULES = [
    {"evaluator": "answer_relevance", "when": {"llmtap.feature": "support"}},
    {"evaluator": "regex", "pattern": "(?i)sorry", "match": False, "name": "polite"},
    # an evaluator given by the embedding code, under a rule name of its own
    {"evaluator": "given", "name": "on-feedback", "when": {"feedback": "negative"}},
]


def _run_judge(p: _Providers, spans: list[Any]) -> list[Any]:
    """The service's judge over the processed spans: an LLM evaluator on a loopback judge,
    a rule evaluator, a feedback rule; then a late span and a trace cut short at stop."""
    from llmtap.evals.judge_client import JudgeSettings
    from llmtap.evals.judge_config import JudgeConfig
    from llmtap.evals.registry import build_evaluator
    from llmtap.service.judging import Judging
    from support.judge_server import JudgeServer

    emitted: list[Any] = []
    clock = [1000.0]
    with JudgeServer() as server:
        config = JudgeConfig(
            model=JudgeSettings(
                name="gpt-4o-mini", base_url=server.openai_base_url, api_key="k", timeout_s=5.0
            ),
            rules=JUDGE_RULES,
            trace_idle_s=1.0,
            trace_max_wait_s=5.0,
        )
        judging = Judging(
            config,
            evaluators={"given": build_evaluator({"evaluator": "regex", "pattern": "x"})},
            emit=emitted.extend,
            logger_provider=p.logger_provider,
            clock=lambda: clock[0],
            tick_s=0.01,
        )
        judging.start()
        try:
            judging.on_spans(spans)
            assert judging.wait_idle(30)
            clock[0] += 2
            assert judging.wait_idle(30)
            judging.on_spans([_late_copy(s) for s in spans[:1]])
            assert judging.wait_idle(30)
            clock[0] += 2
            assert judging.wait_idle(30)
            judging.on_spans([_late_copy(s, trace_id=0xABC) for s in spans[:1]])
            assert judging.wait_idle(30)
        finally:
            judging.stop(timeout=10)
    return emitted


def _late_copy(span: Any, trace_id: int | None = None) -> Any:
    from dataclasses import replace

    return replace(
        span,
        attributes=dict(span.attributes),
        span_id=span.span_id ^ 0xFFFF,
        trace_id=trace_id or span.trace_id,
    )


def _metrics(reader: InMemoryMetricReader) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    out = []
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points = [dict(point.attributes or {}) for point in metric.data.data_points]
                out.append((metric.name, _instrument(metric.data), metric.unit or "", points))
    return out


def _instrument(data: Any) -> str:
    if isinstance(data, Sum):
        return "counter" if data.is_monotonic else "updowncounter"
    if isinstance(data, Histogram):
        return "histogram"
    if isinstance(data, Gauge):
        return "gauge"
    return type(data).__name__


@pytest.fixture(scope="module")
def emitted(devserver: Any) -> Iterator[Emitted]:
    p = _Providers()
    try:
        _run_sdk_scenarios(p, devserver)
        tokens.flush()  # streams without usage end their span once the token estimate is in
        _record_feedback(p, p.spans.get_finished_spans())
        processed = _pipeline(p, p.spans.get_finished_spans())
        results = _run_judge(p, processed)
        yield Emitted(
            spans=processed + results,
            logs=[r.log_record for r in p.logs.get_finished_logs()],
            metrics=_metrics(p.reader),
        )
    finally:
        p.shutdown()


def _attribute_problem(key: str, value: Any) -> str | None:
    attr = REGISTRY.lookup(key)
    if attr is None:
        return "not registered"
    if not gen.value_matches(attr.value_type, value):
        return f"not of type {attr.value_type}"
    if attr.id in CLOSED_ENUMS and value not in attr.values:
        return f"not one of {sorted(attr.values)}"
    return None


def _ours(key: str) -> bool:
    return key.startswith("llmtap.") or key in semconv.GEN_AI_EXTENSIONS


def test_emitted_attributes_are_registered_with_their_type(emitted: Emitted) -> None:
    problems = set()
    for where, attrs in emitted.attribute_sets():
        for key, value in attrs.items():
            problem = _attribute_problem(key, value) if _ours(key) else None
            if problem:
                problems.add(f"{where}: {key}={value!r}: {problem}")
    assert sorted(problems) == []


def _metric_problems(name: str, kind: str, unit: str, points: list[dict[str, Any]]) -> set[str]:
    spec = REGISTRY.metrics.get(name)
    if spec is None:
        return {f"{name}: not a registered metric"}
    problems = set()
    if kind != spec["instrument"]:
        problems.add(f"{name}: instrument {kind}, registered {spec['instrument']}")
    if unit != spec["unit"]:
        problems.add(f"{name}: unit {unit!r}, registered {spec['unit']!r}")
    allowed = set(REGISTRY.attribute_refs(spec["id"]))
    for attrs in points:
        for key, value in attrs.items():
            if key not in allowed:
                problems.add(f"{name}: attribute {key!r} is not registered for it")
            elif _ours(key) and _attribute_problem(key, value):
                problem = _attribute_problem(key, value)
                problems.add(f"{name}: {key} values of type {type(value).__name__}: {problem}")
    return problems


def test_emitted_metrics_follow_the_registry(emitted: Emitted) -> None:
    problems: set[str] = set()
    for name, kind, unit, points in emitted.metrics:
        if name.startswith("llmtap."):
            problems |= _metric_problems(name, kind, unit, points)
    assert problems == KNOWN_METRIC_FINDINGS


#: what the runs above must have produced, so that the checks are not vacuous
EXPECTED_ATTRIBUTES = {
    "llmtap.cost.total",
    "llmtap.feature",
    "llmtap.prompt.version",
    "llmtap.metadata.tenant",
    "llmtap.step.kind",
    "llmtap.response.refusal",
    "llmtap.stream.end",
    "llmtap.usage.estimated",
    "llmtap.usage.estimate_method",
    "llmtap.content.truncated",
    "llmtap.content.dropped_messages",
    "llmtap.cost.input",
    "llmtap.cost.output",
    "llmtap.cost.currency",
    "llmtap.cost.price_source",
    "llmtap.cost.price_model",
    "llmtap.cost.estimated",
    "llmtap.cost.unknown_model",
    "llmtap.redaction.count",
    "llmtap.redaction.email",
    "llmtap.redaction.phone",
    "llmtap.evaluation.source",
    "llmtap.evaluation.passed",
    "llmtap.evaluation.judge_model",
    "llmtap.evaluation.usage.input_tokens",
    "llmtap.evaluation.usage.output_tokens",
    "llmtap.evaluation.rule",
    "llmtap.evaluation.late",
    "llmtap.evaluation.early",
    "llmtap.feedback.label",
    "llmtap.feedback.scale",
    "llmtap.feedback.range.min",
    "llmtap.feedback.range.max",
    "llmtap.feedback.resolved",
}
EXPECTED_PROVIDERS = {
    "openai",
    "anthropic",
    "gcp.gemini",
    "aws.bedrock",
    "mistral_ai",
    "cohere",
    "ollama",
    "groq",
    "together_ai",
}
EXPECTED_METRICS = {
    "llmtap.cost",
    "llmtap.cost.unpriced",
}


def test_the_runs_cover_the_registry(emitted: Emitted) -> None:
    assert EXPECTED_ATTRIBUTES - emitted.names() == set()
    assert EXPECTED_METRICS - {m[0] for m in emitted.metrics} == set()
    sources = {a.get("llmtap.evaluation.source") for _, a in emitted.attribute_sets()}
    assert {"judge", "rule", "user"} <= sources
    ends = {a.get("llmtap.stream.end") for _, a in emitted.attribute_sets()}
    assert {"completed", "closed", "error"} <= ends
    # every instrumentation took part
    providers = {a.get("gen_ai.provider.name") for _, a in emitted.attribute_sets()}
    assert EXPECTED_PROVIDERS - providers == set()
    stores = {a.get("db.system.name") for _, a in emitted.attribute_sets()}
    assert {"chroma", "qdrant", "pinecone"} <= stores
