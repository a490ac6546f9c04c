"""``llmtap eval run``: a golden set through the app, judged like production traces.

Every case runs through the app callable with llmtap tracing on (OpenAI and Anthropic
instrumented, content captured, spans kept in memory), each in its own trace under an
``eval case`` root span, with the case's ``feature`` and ``metadata`` stamped by
``llmtap.context``. The case's trace then goes through the same span stages as in the app
(cost, redaction of ``llmtap.yaml``), the evaluated span is picked as the service does for
``target: inference`` (the last GenAI inference span to end), its input comes from
:func:`llmtap.evals.extract.extract_input`, and the evaluators are built by
:mod:`llmtap.evals.registry`: the same code as the service's judge. Cases with an
``expected`` value get the ``expected`` reference check too.

The app callable (``module:function``, sync or async) receives the case's ``input``, or the
:class:`~llmtap.evals.golden.GoldenCase` itself when it has a parameter named ``case``. An
exception or a timeout of the app is an error of that case (every evaluator of it reports
``app_error``), not a crash of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from llmtap import semconv
from llmtap.evals.base import EvalInput, Evaluator, Verdict
from llmtap.evals.eval_config import EvalConfig, parse_threshold_key
from llmtap.evals.golden import (
    GoldenCase,
    ReferenceEvaluator,
    case_input_text,
    read_golden,
)
from llmtap.pipeline.span import SpanData

__all__ = [
    "CaseResult",
    "EvalRun",
    "EvaluatorBuilder",
    "InputError",
    "evaluator_specs",
    "judge_model",
    "load_app",
    "prepare",
    "run_cases",
]

CASE_SPAN = "eval case"
ATTR_CASE_ID = "llmtap.eval.case_id"
APP_ERROR = "app_error"
_SCALARS = (str, bool, int, float)


class InputError(ValueError):
    """Input that cannot be run (golden file, config, app, evaluators, thresholds):
    ``llmtap eval`` exits with 2 and runs nothing."""


@dataclass
class CaseResult:
    case: GoldenCase
    output: str = ""
    answer: Any = None
    error: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    duration_s: float = 0.0
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(v.passed is True for v in self.verdicts)


@dataclass
class EvalRun:
    """Everything needed to run: cases, app, evaluators per case, settings."""

    golden: str
    app_name: str
    app: Callable[..., Any]
    cases: list[GoldenCase]
    evaluators: dict[str, list[Evaluator]]
    config: EvalConfig
    llmtap_config: Any
    thresholds: dict[tuple[str, str], float]
    tolerance: float
    concurrency: int
    judge_client: Any = None


# preparing ---------------------------------------------------------------------------------------


def load_app(target: str) -> Callable[..., Any]:
    """The callable named ``module:function`` (``module:obj.method``) or
    ``path/to/file.py:function``; the current directory is importable, as with
    ``python -m``."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"--app: expected module:function or file.py:function, got {target!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = _import(module_name)
    except InputError:
        raise
    except Exception as exc:  # the app's module failed while importing
        raise InputError(
            f"--app: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"--app: {module_name} has no {attr}") from None
    if not callable(obj):
        raise InputError(f"--app: {target} is not callable")
    return obj


def _import(name: str) -> Any:
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = os.path.abspath(name)
    if not os.path.isfile(path):
        raise InputError(f"--app: {name}: no such file")
    module_name = "_llmtap_eval_app_" + re.sub(r"\W", "_", os.path.basename(path)[:-3])
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    if os.path.dirname(path) not in sys.path:
        sys.path.insert(0, os.path.dirname(path))  # its sibling modules
    spec.loader.exec_module(module)
    return module


def evaluator_specs(cfg: Any, eval_config: EvalConfig) -> list[tuple[str, Any]]:
    """``(where, entry)`` of the evaluators of every case: ``eval.evaluators``, else those
    of the ``judge.rules`` (each distinct one once)."""
    if eval_config.evaluators is not None:
        return [(f"eval.evaluators[{i}]", e) for i, e in enumerate(eval_config.evaluators)]
    from llmtap.evals.judge_config import load_judge_config

    judge = load_judge_config(cfg)
    out: dict[str, tuple[str, Any]] = {}
    for i, rule in enumerate(judge.rules if judge else ()):
        spec = rule.spec()
        out.setdefault(json.dumps(spec, sort_keys=True, default=str), (f"judge.rules[{i}]", spec))
    return list(out.values())


def judge_model(cfg: Any, eval_config: EvalConfig) -> Any:
    """The LLM judge's model settings: ``eval.model``, else ``judge.model`` (or None)."""
    if eval_config.model is not None:
        return eval_config.model
    from llmtap.evals.judge_config import load_judge_config

    judge = load_judge_config(cfg)
    return judge.model if judge else None


def _entry(spec: Any) -> Any:
    return {"evaluator": spec} if isinstance(spec, str) else spec


def _located(cfg: Any, where: str, message: str) -> str:
    """``file:line: path: message`` for a problem at ``where`` in the config file."""
    from llmtap.configuration.problems import line_for as _line_for

    source = getattr(cfg, "source", None)
    if not source or not where.startswith(("eval.", "judge.")):
        return f"{where}: {message}" if where else message
    line = _line_for(getattr(cfg, "_lines", {}), where)
    return f"{source}:{line}: {where}: {message}" if line else f"{source}: {where}: {message}"


class EvaluatorBuilder:
    """Builds evaluators once per distinct entry, sharing one judge client."""

    def __init__(self, cfg: Any, model: Any) -> None:
        from llmtap.evals import registry

        self.registry = registry
        self.cfg = cfg
        self.model = model
        self.client: Any = None
        self.built: dict[str, Evaluator] = {}
        self.problems: list[str] = []

    def build(self, spec: Any, where: str, prefix: str = "") -> Evaluator | None:
        entry = _entry(spec)
        key = json.dumps(entry, sort_keys=True, default=str)
        if key in self.built:
            return self.built[key]
        try:
            kind = entry.get("evaluator") if isinstance(entry, Mapping) else None
            info = self.registry.EVALUATORS.get(kind) if isinstance(kind, str) else None
            uses_model = getattr(info, "uses_model", False)
            if uses_model and self.client is None and self.model is not None:
                self.client = self.registry.judge_client(self.model)
            judge = self.client if self.client is not None else self.model
            evaluator = self.registry.build_evaluator(entry, judge, where=where)
        except ValueError as exc:
            for line in str(exc).splitlines():
                path, sep, message = line.partition(": ")
                self._problem(prefix, path if sep else where, message if sep else line)
            return None
        self.built[key] = evaluator
        return evaluator

    def _problem(self, prefix: str, where: str, message: str) -> None:
        if prefix:
            self.problems.append(f"{prefix}: {where}: {message}")
        else:
            self.problems.append(_located(self.cfg, where, message))


def _case_evaluators(
    builder: EvaluatorBuilder, shared: list[Evaluator], case: GoldenCase, problems: list[str]
) -> list[Evaluator]:
    evaluators = list(shared)
    for i, spec in enumerate(case.evaluators):
        built = builder.build(spec, f"evaluators[{i}]", prefix=case.where)
        if built is not None:
            evaluators.append(built)
    if case.expected is not None:
        evaluators.append(ReferenceEvaluator(case.expected))
    seen: set[str] = set()
    for evaluator in evaluators:
        if evaluator.name in seen:
            problems.append(
                f"{case.where}: evaluators: two evaluations are named {evaluator.name!r}; "
                "give one of them another name"
            )
        seen.add(evaluator.name)
    return evaluators


def prepare(
    golden: str,
    app: str,
    *,
    config: str | None = None,
    evaluators: Sequence[Any] = (),
    thresholds: Mapping[str, float] | None = None,
    tolerance: float | None = None,
    concurrency: int | None = None,
) -> EvalRun:
    """Load and check everything; :class:`InputError` with every problem found."""
    from llmtap.config_file import ConfigError, load_config

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    eval_config = cfg.eval if isinstance(cfg.eval, EvalConfig) else EvalConfig()
    cases, problems = read_golden(golden)
    try:
        model = judge_model(cfg, eval_config)
        specs = evaluator_specs(cfg, eval_config)
    except (ConfigError, ValueError) as exc:
        raise InputError(str(exc)) from None
    specs += [(f"--evaluator[{i}]", e) for i, e in enumerate(evaluators)]
    builder = EvaluatorBuilder(cfg, model)
    shared = [e for e in (builder.build(s, where) for where, s in specs) if e is not None]
    per_case = {c.id: _case_evaluators(builder, shared, c, problems) for c in cases}
    problems[:0] = builder.problems
    limits = _thresholds(eval_config, thresholds or {}, per_case, problems)
    app_fn = None
    try:
        app_fn = load_app(app)
    except InputError as exc:
        problems.append(str(exc))
    if problems or app_fn is None:
        raise InputError("\n".join(problems))
    return EvalRun(
        golden=golden,
        app_name=app,
        app=app_fn,
        cases=cases,
        evaluators=per_case,
        config=eval_config,
        llmtap_config=cfg,
        thresholds=limits,
        tolerance=eval_config.tolerance if tolerance is None else tolerance,
        concurrency=concurrency or eval_config.concurrency,
        judge_client=builder.client,
    )


def _thresholds(
    eval_config: EvalConfig,
    given: Mapping[str, float],
    per_case: Mapping[str, list[Evaluator]],
    problems: list[str],
) -> dict[tuple[str, str], float]:
    names = {e.name for evaluators in per_case.values() for e in evaluators}
    out: dict[tuple[str, str], float] = {}
    for source, items in (("eval.thresholds", eval_config.thresholds), ("--threshold", given)):
        for key, value in items.items():
            name, metric = parse_threshold_key(key)
            if per_case and name not in names:
                known = ", ".join(sorted(names)) or "none"
                problems.append(f"{source} {key}: no evaluation is named {name!r} ({known})")
                continue
            out[(name, metric)] = float(value)
    return out


# running -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _tracing(cfg: Any) -> Iterator[tuple[Any, Any]]:
    """llmtap tracing into memory for the run: content on span, nothing exported."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from llmtap import runtime
    from llmtap.config import CaptureMode, use_settings
    from llmtap.config_file import effective_service_name, settings_from
    from llmtap.instrumentation._invocation import Telemetry

    settings = settings_from(cfg, os.environ)
    settings.capture = CaptureMode.SPAN_ONLY
    name = effective_service_name(cfg, os.environ) or "llmtap-eval"
    resource = Resource.create({"service.name": name})
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(resource=resource)
    previous = runtime.telemetry()
    use_settings(settings)
    runtime.use_telemetry(Telemetry(settings, tracer_provider, meter_provider))
    instrumentors = _instrument(settings, tracer_provider, meter_provider)
    try:
        yield tracer_provider, exporter
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        runtime.use_telemetry(previous)
        use_settings(None)
        tracer_provider.shutdown()
        meter_provider.shutdown()


def _instrument(settings: Any, tracer_provider: Any, meter_provider: Any) -> list[Any]:
    from llmtap.instrumentation.registry import INSTRUMENTATIONS

    done = []
    for entry in INSTRUMENTATIONS:
        try:
            instrumentor = entry.load()()
        except (ImportError, AttributeError):
            continue
        if instrumentor.is_instrumented_by_opentelemetry:
            print(
                f"llmtap eval: {entry.class_name} was already on "
                "(did the app call llmtap.configure()?); "
                "its spans may not reach the evaluators",
                file=sys.stderr,
            )
            continue
        instrumentor.instrument(
            settings=settings, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        done.append(instrumentor)
    return done


def _wants_case(app: Callable[..., Any]) -> bool:
    try:
        return "case" in inspect.signature(app).parameters
    except (TypeError, ValueError):
        return False


async def _call_app(
    app: Callable[..., Any], case: GoldenCase, timeout: float, pool: ThreadPoolExecutor
) -> Any:
    """The app's answer; a sync app runs on ``pool`` (a hung one is left behind there)."""
    argument = case if _wants_case(app) else case.input
    if inspect.iscoroutinefunction(app):
        return await asyncio.wait_for(app(argument), timeout)
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    result = await asyncio.wait_for(loop.run_in_executor(pool, context.run, app, argument), timeout)
    if inspect.isawaitable(result):
        result = await asyncio.wait_for(result, timeout)
    return result


def _answer_text(answer: Any) -> str:
    if answer is None:
        return ""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, Mapping):
        for key in ("output", "answer", "text", "content"):
            if isinstance(answer.get(key), str):
                return answer[key]
    return json.dumps(answer, ensure_ascii=False, default=str)


def _span_data(span: Any) -> SpanData:
    from llmtap.export.readable import to_span_data

    data = to_span_data(span)
    data.parent_span_id = span.parent.span_id if span.parent else 0
    data.start_ns = span.start_time or 0
    data.end_ns = span.end_time or 0
    data.kind = span.kind.name
    return data


def _evaluated_span(spans: Sequence[SpanData]) -> SpanData | None:
    """The answer of the trace: the last GenAI inference span to end."""
    found = [
        s
        for s in spans
        if s.attributes.get(semconv.OPERATION) in semconv.INFERENCE_OPERATIONS
        and semconv.EVALUATION_NAME not in s.attributes
    ]
    return max(found, key=lambda s: (s.end_ns, s.start_ns)) if found else None


def _eval_input(case: GoldenCase, spans: list[SpanData], answer: Any) -> EvalInput:
    from llmtap.evals.extract import extract_input

    span = _evaluated_span(spans)
    if span is None:
        item = EvalInput(input_text=case_input_text(case.input), trace=spans)
    else:
        item = extract_input(span, spans)
    if not item.output_text:
        item.output_text = _answer_text(answer)
    if not item.input_text:
        item.input_text = case_input_text(case.input)
    if not item.documents and case.documents:
        item.documents = list(case.documents)
    metadata = dict(case.metadata)
    if case.feature:
        metadata["feature"] = case.feature
    if case.expected is not None:
        metadata["expected"] = case.expected
    item.metadata = {**metadata, **item.metadata}
    return item


class _Runner:
    def __init__(self, run: EvalRun, tracer: Any, exporter: Any, progress: TextIO | None) -> None:
        from llmtap.pipeline.stages import build_stages

        self.run = run
        self.tracer = tracer
        self.exporter = exporter
        self.progress = progress
        self.stages = build_stages(run.llmtap_config)
        self.pool = ThreadPoolExecutor(run.concurrency, thread_name_prefix="llmtap-eval")
        self.done = 0

    async def case(self, case: GoldenCase, gate: asyncio.Semaphore) -> CaseResult:
        async with gate:
            result = await self._run_app(case)
            evaluators = self.run.evaluators[case.id]
            if result.error is not None:
                result.verdicts = [
                    Verdict(name=e.name, error_type=APP_ERROR, explanation=result.error)
                    for e in evaluators
                ]
            else:
                item = _eval_input(case, self._trace(result.trace_id), result.answer)
                result.output = item.output_text
                if item.span is not None:
                    result.span_id = f"{item.span.span_id:016x}"
                result.verdicts = list(
                    await asyncio.gather(*(self._judge(e, item) for e in evaluators))
                )
        self.done += 1
        self._report(result)
        return result

    async def _run_app(self, case: GoldenCase) -> CaseResult:
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        from llmtap.context import context

        result = CaseResult(case)
        started = time.perf_counter()
        root = self.tracer.start_span(CASE_SPAN, attributes={ATTR_CASE_ID: case.id})
        token = otel_context.attach(trace.set_span_in_context(root))
        try:
            scalars = {k: v for k, v in case.metadata.items() if isinstance(v, _SCALARS)}
            with context(feature=case.feature, metadata=scalars):
                result.answer = await _call_app(
                    self.run.app, case, self.run.config.case_timeout_s, self.pool
                )
        except asyncio.TimeoutError:
            result.error = f"timeout: no answer within {self.run.config.case_timeout_s:g} s"
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            otel_context.detach(token)
            root.end()
        result.duration_s = time.perf_counter() - started
        result.trace_id = f"{root.get_span_context().trace_id:032x}"
        return result

    def _trace(self, trace_id: str | None) -> list[SpanData]:
        spans = [
            _span_data(s)
            for s in self.exporter.get_finished_spans()
            if f"{s.context.trace_id:032x}" == trace_id
        ]
        for span in spans:
            for stage in self.stages:
                stage.apply(span)
        return spans

    async def _judge(self, evaluator: Evaluator, item: EvalInput) -> Verdict:
        timeout = self.run.config.eval_timeout_s
        try:
            verdict = await asyncio.wait_for(evaluator.evaluate(item), timeout)
        except asyncio.TimeoutError:
            verdict = Verdict(evaluator.name, error_type="timeout",
                              explanation=f"no verdict within {timeout:g} s")  # fmt: skip
        except Exception as exc:  # evaluators should not raise; tolerate it as the judge does
            verdict = Verdict(evaluator.name, error_type=type(exc).__name__, explanation=str(exc))
        if not isinstance(verdict, Verdict):
            verdict = Verdict(evaluator.name, error_type="invalid_verdict")
        verdict.name = verdict.name or evaluator.name
        return verdict

    def _report(self, result: CaseResult) -> None:
        if self.progress is None:
            return
        total = len(self.run.cases)
        if result.error is not None:
            status = f"ERROR {result.error}"
        else:
            bad = [v.name for v in result.verdicts if v.passed is not True]
            status = "ok" if not bad else "FAIL " + ", ".join(bad)
        count = f"[{self.done:>{len(str(total))}}/{total}]"
        print(
            f"{count} {result.case.id}: {status} ({result.duration_s:.2f} s)",
            file=self.progress,
            flush=True,
        )


async def _run_all(run: EvalRun, tracer: Any, exporter: Any, progress: TextIO | None) -> list:
    runner = _Runner(run, tracer, exporter, progress)
    gate = asyncio.Semaphore(run.concurrency)
    try:
        return list(await asyncio.gather(*(runner.case(c, gate) for c in run.cases)))
    finally:
        runner.pool.shutdown(wait=False, cancel_futures=True)
        client = run.judge_client
        if client is not None and hasattr(client, "aclose"):
            with contextlib.suppress(Exception):
                await client.aclose()


def run_cases(run: EvalRun, *, progress: TextIO | None = None) -> list[CaseResult]:
    """Run every case through the app and its evaluators (in case order)."""
    with _tracing(run.llmtap_config) as (tracer_provider, exporter):
        tracer = tracer_provider.get_tracer("llmtap.eval")
        return asyncio.run(_run_all(run, tracer, exporter, progress))
