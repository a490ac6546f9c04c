"""The judge of the llmtap service: rules over assembled traces, a bounded queue of
evaluations, concurrent evaluators, and the verdicts written back into the traces.

The service calls :meth:`Judging.on_spans` with every span it has processed (after the
cost and redaction stages), next to forwarding them. That call only appends the batch to
a bounded inbox and returns; everything else runs on the judge's own thread and asyncio
event loop, so **forwarding never waits for judging**:

1. **Assembly** (:mod:`llmtap.service.assembly`): spans grouped by trace id; a trace is
   ready after ``trace_idle_s`` without a new span or ``trace_max_wait_s`` after its first
   one; the oldest traces are decided early when ``max_traces``/``max_bytes`` would be
   passed; late spans are judged as a small new batch, with the decided trace's spans as
   context while they are retained (``late_window_s``).
2. **Rules**: for each ready trace and each rule, the target spans (``target`` + ``when``)
   are selected; then the rule samples the *trace* with
   ``trace_id_sampled(trace_id, sample, salt=<rule name>)`` (after filtering, so replicas
   agree and rules sharing a name stay nested: a trace kept at 5% is kept at 10% too); then
   (trace, span, evaluator) is looked up in a bounded LRU (``dedup_size``) so that **no span
   is ever judged twice by the same evaluator**, whatever the rules and batches.
3. **Scheduling**: one job per (span, evaluator) goes into a bounded asyncio queue
   (``queue_size``; when full the job is skipped and counted,
   ``skipped{reason=queue_full}``); ``concurrency`` workers run evaluators, each evaluation
   bounded by ``eval_timeout_s`` on top of the evaluators' own timeouts and retries.
4. **Results** (:mod:`llmtap.service.results`): an ``evaluate {name}`` span, placed as
   ``judge.verdicts`` says (``linked``: in an evaluation trace of its own with a link to the
   evaluated span; ``child``: under it; ``events_only``: none), handed to ``emit`` (the
   service's forwarders); a ``gen_ai.evaluation.result`` log record when a
   ``logger_provider`` is given; the review queue (:mod:`llmtap.service.review`) for spans
   with a failing verdict; metrics.

Configuration: :mod:`llmtap.evals.judge_config`; the rules' ``when`` and feedback:
:mod:`llmtap.service.judge_when`; target selection and sampling:
:mod:`llmtap.service.judge_rules`; metrics: :mod:`llmtap.service.judge_metrics`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import logging
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmtap import semconv
from llmtap.diagnostics import Once, warn_once
from llmtap.evals.base import EvalInput, Evaluator, Verdict
from llmtap.evals.judge_config import JudgeConfig, load_judge_config
from llmtap.pipeline.span import SpanData
from llmtap.service.assembly import ReadyTrace, TraceAssembler
from llmtap.service.judge_metrics import JudgeMetrics
from llmtap.service.judge_rules import CompiledRule, TraceFacts
from llmtap.service.metrics import MetricsRegistry
from llmtap.service.results import (
    EVENTS_ONLY,
    build_log_record,
    build_result_span,
    evaluation_attributes,
)
from llmtap.service.review import ReviewQueue, review_entry
from llmtap.version import __version__

__all__ = ["Judging"]

_log = logging.getLogger("llmtap.service")


class _Keys:
    """A bounded LRU set of (trace, span, evaluator) decisions, as 64-bit hashes."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = max(1, maxsize)
        self._keys: OrderedDict[int, None] = OrderedDict()

    @staticmethod
    def key(trace_id: int, span_id: int, evaluation: str) -> int:
        return hash((trace_id, span_id, evaluation))

    def __contains__(self, key: int) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: int) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.maxsize:
            self._keys.popitem(last=False)


# The judge -------------------------------------------------------------------------------


class _SpanRun:
    """The evaluations of one span in one batch: the shared input, the verdicts so far."""

    __slots__ = ("input_error", "item", "pending", "span", "trace", "verdicts")

    def __init__(self, span: SpanData, trace: ReadyTrace) -> None:
        self.span = span
        self.trace = trace
        self.item: EvalInput | None = None
        self.input_error: str | None = None
        self.pending = 0
        self.verdicts: list[Verdict] = []


@dataclass
class _Job:
    rule: CompiledRule
    run: _SpanRun


ExtractInput = Callable[[SpanData, Sequence[SpanData]], EvalInput]


def _default_extract() -> ExtractInput:
    try:
        from llmtap.evals.registry import extract_input  # type: ignore[attr-defined]

        return extract_input
    except ImportError:
        pass
    from llmtap.evals.extract import extract_input as from_extract

    return from_extract


def _registry() -> Any:
    """``llmtap.evals.registry``, or None when it is not there."""
    try:
        from llmtap.evals import registry
    except ImportError:
        return None
    return registry


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 500 else text[:499] + "…"


class Judging:
    """The judge of the service. Typical wiring::

        judging = Judging(judge_config, emit=forward_result_spans, metrics_registry=registry)
        judging.start()                 # its own thread and event loop
        ...
        judging.on_spans(spans)         # for every processed batch; never blocks
        ...
        judging.stop(timeout=10)        # decide open traces, finish what fits, stop

    ``evaluators`` maps names to ready evaluators, used for rules whose ``evaluator`` is
    that name (tests, embedders); any other rule's evaluator comes from
    ``llmtap.evals.registry.build_evaluator(spec, config.model)``. Rules are compiled and
    evaluators built here, so a bad rule fails at start-up (``ValueError`` naming
    ``judge.rules[i]``). ``emit`` receives lists of result spans (none with
    ``judge.verdicts: events_only``), on the judge thread: it must be thread-safe and must
    not block (queue them for the forwarders). ``on_verdict`` receives ``(attributes,
    evaluated span, end time in ns)`` for every verdict, on the judge thread, under the same
    rules (the evaluation sinks, :mod:`llmtap.service.sinks`). ``clock`` is the assembly clock
    (monotonic seconds; tests pass a fake one); ``time_ns`` stamps the result spans (wall
    clock). The metrics go on ``metrics_registry`` (the service's), else on a registry of the
    judge's own (``judging.metrics.registry``).
    """

    def __init__(
        self,
        config: JudgeConfig,
        *,
        evaluators: Mapping[str, Evaluator] | None = None,
        emit: Callable[[list[SpanData]], Any] | None = None,
        on_verdict: Callable[[Mapping[str, Any], SpanData, int], Any] | None = None,
        metrics_registry: MetricsRegistry | None = None,
        logger_provider: Any = None,
        extract_input: ExtractInput | None = None,
        review_queue: ReviewQueue | None = None,
        clock: Callable[[], float] = time.monotonic,
        time_ns: Callable[[], int] = time.time_ns,
        tick_s: float = 0.25,
        inbox_max_spans: int = 50_000,
    ) -> None:
        self.config = config
        self._judge_client: Any = None
        self.rules = self._compile_rules(config, evaluators or {})
        self.assembler = TraceAssembler(
            idle_s=config.trace_idle_s,
            max_wait_s=config.trace_max_wait_s,
            max_traces=config.max_traces,
            max_bytes=int(config.max_bytes),
            late_window_s=config.late_window_s,
            clock=clock,
        )
        self.metrics = JudgeMetrics(metrics_registry, state=self._gauge_state)
        self.review = review_queue
        if self.review is None and config.review_queue:
            self.review = ReviewQueue(config.review_queue, max_bytes=int(config.review_max_bytes))
        self._emit = emit if config.verdicts != EVENTS_ONLY else None
        self._on_verdict = on_verdict
        self._logger = (
            logger_provider.get_logger("llmtap.service.judging", __version__)
            if logger_provider is not None
            else None
        )
        if config.verdicts == EVENTS_ONLY and self._logger is None:
            _log.warning(
                "judge.verdicts: events_only writes no verdict spans, and this process "
                "exports no log records: verdicts reach only the metrics%s",
                " and the review queue" if self.review is not None else "",
            )
        self._extract = extract_input or _default_extract()
        self._time_ns = time_ns
        self.tick_s = tick_s
        self._seen = _Keys(config.dedup_size)
        # inbox: batches from on_spans, taken by the judge thread at each tick
        self._inbox: deque[list[SpanData]] = deque()
        self._inbox_spans = 0
        self._inbox_max = max(1, inbox_max_spans)
        self._kick_at = max(1, self._inbox_max // 4)
        self._kicked = False
        self._inbox_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Job] | None = None
        self._wake: asyncio.Event | None = None
        self._stop_at: float | None = None
        self._flush_on_stop = True
        self._in_flight = 0
        self._warned = Once()
        self._last_drop_log = 0.0

    # set-up ------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: Any, **kwargs: Any) -> Judging | None:
        """The judge for a loaded ``LlmtapConfig`` (``judge:`` section), or None when the
        file has no judge section or no rules. ``kwargs`` go to the constructor."""
        config = load_judge_config(cfg)
        if config is None or not config.rules:
            return None
        return cls(config, **kwargs)

    def _compile_rules(
        self, config: JudgeConfig, provided: Mapping[str, Evaluator]
    ) -> list[CompiledRule]:
        built: dict[str, Evaluator] = {}
        names: dict[str, tuple[int, str]] = {}
        rules: list[CompiledRule] = []
        registry: Any = None
        for i, rule in enumerate(config.rules):
            where = f"judge.rules[{i}]"
            if isinstance(rule.evaluator, str) and not rule.options and rule.evaluator in provided:
                key = "given:" + rule.evaluator
                evaluator = provided[rule.evaluator]
            else:
                spec = rule.spec()
                key = json.dumps(spec, sort_keys=True, default=str)
                evaluator = built.get(key)
                if evaluator is None:
                    registry = registry or _registry()
                    if registry is None:
                        given = ", ".join(sorted(provided)) or "none"
                        raise ValueError(
                            f"{where}.evaluator: {rule.evaluator!r} is not one of the "
                            f"evaluators given ({given}) and the evaluator registry "
                            "(llmtap.evals.registry) is missing"
                        )
                    evaluator = self._build(registry, spec, config.model, where)
            built[key] = evaluator
            name = getattr(evaluator, "name", None)
            if not isinstance(name, str) or not name:
                raise ValueError(f"{where}.evaluator: the evaluator has no name")
            if name in names and names[name][1] != key:
                raise ValueError(
                    f"{where}.evaluator: the evaluation name {name!r} is already used by a "
                    f"different evaluator (judge.rules[{names[name][0]}]); give one of them "
                    "another name"
                )
            names.setdefault(name, (i, key))
            rules.append(CompiledRule(rule, evaluator, i))
        return rules

    def _build(self, registry: Any, spec: dict[str, Any], model: Any, where: str) -> Evaluator:
        """One evaluator from the registry; LLM evaluators share one judge client."""
        try:
            if self._judge_client is None and model is not None:
                make_client = getattr(registry, "judge_client", None)
                self._judge_client = make_client(model) if make_client else model
            judge = self._judge_client if self._judge_client is not None else model
            return registry.build_evaluator(spec, judge, where=where)
        except ValueError as exc:  # EvaluatorConfigError: lines already carry their paths
            raise ValueError(str(exc)) from None
        except (TypeError, KeyError) as exc:
            raise ValueError(f"{where}.evaluator: {exc}") from None

    def _gauge_state(self) -> dict[str, float]:
        queue = self._queue
        return {
            "queue_depth": queue.qsize() if queue is not None else 0,
            "open_traces": self.assembler.open_traces,
            "assembly_bytes": self.assembler.bytes,
        }

    def stats(self) -> dict[str, Any]:
        """A snapshot for health endpoints and logs (approximate: read without locks)."""
        return {
            **self._gauge_state(),
            "open_spans": self.assembler.open_spans,
            "retained_traces": self.assembler.retained_traces,
            "inbox_spans": self._inbox_spans,
            "in_flight": self._in_flight,
            "dedup_keys": len(self._seen),
            "running": self.running,
        }

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._stop_at is None

    # the service's side -------------------------------------------------------------

    def on_spans(self, spans: Sequence[SpanData]) -> None:
        """Hand processed spans to the judge: a list copy under a lock; never blocks, never raises.

        The spans must not be changed afterwards (the judge reads them later, on its own
        thread). When the inbox is full (the judge thread is behind by ``inbox_max_spans``)
        the batch is not judged, and counted in ``llmtap.judge.spans.dropped``.
        """
        if self._closed or not self.rules or not spans:
            return
        try:
            batch = list(spans)
            count = len(batch)
            kick = False
            with self._inbox_lock:
                full = self._inbox_spans + count > self._inbox_max
                if not full:
                    self._inbox.append(batch)
                    self._inbox_spans += count
                    if self._inbox_spans >= self._kick_at and not self._kicked:
                        self._kicked = kick = True
            if full:
                self.metrics.spans_dropped(count, "inbox_full")
                now = time.monotonic()
                if now - self._last_drop_log > 60:
                    self._last_drop_log = now
                    _log.warning(
                        "judge: inbox full (%d spans waiting); %d spans will not be judged",
                        self._inbox_spans,
                        count,
                    )
                return
            if kick:
                self._call_soon(self._wake_up)
        except Exception:  # never break forwarding
            self._warn_once("on_spans", "judge: cannot take spans")

    def _call_soon(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(fn)

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        """Start the judge thread and its event loop (idempotent)."""
        with self._state_lock:
            if self._closed:
                raise RuntimeError("this judge was stopped; make a new one")
            if self._thread is not None:
                return
            started = threading.Event()
            self._thread = threading.Thread(
                target=self._thread_main, args=(started,), name="llmtap-judge", daemon=True
            )
            self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the judge thread did not start")

    def stop(self, timeout: float = 10.0, *, flush: bool = True) -> None:
        """Stop taking spans and stop the judge within ``timeout`` seconds.

        With ``flush`` the open traces are decided now (early) and their evaluations run
        while the deadline allows; what is left is skipped (``reason=shutdown``). Blocks the
        caller until the judge thread ended (call it from a thread, or accept the wait).
        """
        self._closed = True
        with self._state_lock:
            thread = self._thread
        if thread is None:
            return

        def begin() -> None:
            if self._stop_at is None:
                self._stop_at = time.monotonic() + max(0.0, timeout)
                self._flush_on_stop = flush
            self._wake_up()

        self._call_soon(begin)
        thread.join(max(0.0, timeout) + 5.0)
        if thread.is_alive():
            _log.warning("judge: the judge thread did not stop in time")

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Take the inbox, decide the traces ready now, and wait until every queued
        evaluation has finished. False on timeout. For tests, benchmarks and tools."""
        loop = self._loop
        if loop is None or self._stop_at is not None:
            return False
        future = asyncio.run_coroutine_threadsafe(self._settle(), loop)
        try:
            future.result(timeout)
            return True
        except (concurrent.futures.TimeoutError, asyncio.TimeoutError):
            future.cancel()
            return False
        except concurrent.futures.CancelledError:
            return False

    async def _settle(self) -> None:
        self._tick()
        if self._queue is not None:
            await self._queue.join()

    # the judge thread ----------------------------------------------------------------

    def _thread_main(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main(started))
        except Exception:
            _log.exception("judge: the judge loop failed")
        finally:
            started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._loop = None
                loop.close()

    async def _main(self, started: threading.Event) -> None:
        self._queue = asyncio.Queue(self.config.queue_size)
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        workers = [asyncio.ensure_future(self._worker()) for _ in range(self.config.concurrency)]
        started.set()
        while self._stop_at is None:
            self._tick()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()
        await self._shutdown(workers)

    def _take_inbox(self) -> list[list[SpanData]]:
        with self._inbox_lock:
            batches = list(self._inbox)
            self._inbox.clear()
            self._inbox_spans = 0
            self._kicked = False
        return batches

    def _tick(self, *, flush: bool = False) -> int:
        """Assemble what arrived, decide ready traces, queue their evaluations."""
        try:
            for batch in self._take_inbox():
                self.assembler.add(batch)
            ready = self.assembler.flush() if flush else self.assembler.poll()
        except Exception:
            self._warn_once("assembly", "judge: trace assembly failed")
            return 0
        queued = 0
        for trace in ready:
            self.metrics.trace_decided(trace.reason, trace.late)
            try:
                queued += self._plan(trace)
            except Exception:
                self._warn_once("plan", "judge: applying the judge rules failed")
        return queued

    def _plan(self, trace: ReadyTrace) -> int:
        """Select, sample, deduplicate and queue the evaluations of one ready trace."""
        facts = TraceFacts(trace.spans)
        runs: dict[int, _SpanRun] = {}
        queue = self._queue
        queued = 0
        for rule in self.rules:
            spans = rule.candidates(trace, facts)
            if not spans:
                continue
            if not rule.sampled(trace.trace_id):
                self.metrics.skipped(rule.evaluation, "sampled_out", len(spans))
                continue
            for span in spans:
                key = _Keys.key(trace.trace_id, span.span_id, rule.evaluation)
                if key in self._seen:
                    self.metrics.skipped(rule.evaluation, "duplicate")
                    continue
                run = runs.get(span.span_id)
                if run is None:
                    run = runs[span.span_id] = _SpanRun(span, trace)
                try:
                    if queue is None:
                        raise asyncio.QueueFull
                    queue.put_nowait(_Job(rule, run))
                except asyncio.QueueFull:
                    self.metrics.skipped(rule.evaluation, "queue_full")
                    continue
                self._seen.add(key)
                run.pending += 1
                queued += 1
        return queued

    async def _worker(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            job = await queue.get()
            try:
                self._in_flight += 1
                await self._evaluate(job)
            except asyncio.CancelledError:
                self.metrics.skipped(job.rule.evaluation, "shutdown")
                self._done(job.run, None)
                raise
            except Exception:
                self._warn_once("worker", "judge: an evaluation failed unexpectedly")
            finally:
                self._in_flight -= 1
                queue.task_done()

    async def _evaluate(self, job: _Job) -> None:
        run, evaluator = job.run, job.rule.evaluator
        if run.item is None and run.input_error is None:
            try:
                run.item = self._extract(run.span, run.trace.spans)
            except Exception as exc:
                run.input_error = _short(exc)
                self._warn_once("extract", "judge: cannot read the input of a span")
        start_ns = self._time_ns()
        started = time.perf_counter()
        if run.item is None:
            verdict = Verdict(
                name=evaluator.name, error_type="input_error", explanation=run.input_error
            )
        else:
            try:
                verdict = await asyncio.wait_for(
                    evaluator.evaluate(run.item), self.config.eval_timeout_s
                )
            except asyncio.TimeoutError:
                verdict = Verdict(
                    name=evaluator.name,
                    error_type="timeout",
                    explanation=f"no verdict within {self.config.eval_timeout_s:g} s",
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # evaluators should not raise; tolerate it
                verdict = Verdict(
                    name=evaluator.name, error_type=type(exc).__name__, explanation=_short(exc)
                )
        duration = time.perf_counter() - started
        end_ns = self._time_ns()
        if not isinstance(verdict, Verdict):
            verdict = Verdict(name=evaluator.name, error_type="invalid_verdict")
        elif not verdict.name:
            verdict.name = evaluator.name
        self._deliver(job, verdict, start_ns, end_ns, duration)

    def _deliver(
        self, job: _Job, verdict: Verdict, start_ns: int, end_ns: int, duration: float
    ) -> None:
        run, rule = job.run, job.rule
        span, trace = run.span, run.trace
        attrs = evaluation_attributes(
            verdict,
            span,
            source=rule.source,
            rule=rule.name if rule.name != rule.evaluation else None,
            early=trace.early,
            late=trace.late,
        )
        if self._emit is not None:
            try:
                result = build_result_span(
                    verdict,
                    span,
                    attrs,
                    start_ns=start_ns,
                    end_ns=end_ns,
                    placement=self.config.verdicts,
                )
                self._emit([result])
            except Exception:
                self._warn_once("emit", "judge: cannot emit a result span")
        if self._on_verdict is not None:
            try:
                self._on_verdict(attrs, span, end_ns)
            except Exception:
                self._warn_once("on_verdict", "judge: cannot hand a verdict to the sinks")
        if self._logger is not None:
            try:
                self._logger.emit(build_log_record(verdict, span, attrs, timestamp_ns=end_ns))
            except Exception:
                self._warn_once("log", "judge: cannot emit a gen_ai.evaluation.result event")
        try:
            feature = self.metrics.feature(span.attributes.get(semconv.LLMTAP_FEATURE))
            version = self.metrics.prompt_version(
                span.attributes.get(semconv.LLMTAP_PROMPT_VERSION)
            )
            self.metrics.evaluated(verdict, feature, duration, version)
        except Exception:
            self._warn_once("metrics", "judge: cannot record judge metrics")
        self._done(run, verdict)

    def _done(self, run: _SpanRun, verdict: Verdict | None) -> None:
        if verdict is not None:
            run.verdicts.append(verdict)
        run.pending -= 1
        if run.pending > 0 or self.review is None:
            return
        if any(v.passed is False and not v.error_type for v in run.verdicts):
            try:
                entry = review_entry(
                    run.span,
                    run.item,
                    run.verdicts,
                    time_s=self._time_ns() / 1e9,
                    early=run.trace.early,
                    late=run.trace.late,
                )
                self.review.append(entry)
            except Exception:
                self._warn_once("review", "judge: cannot write to the review queue")

    async def _shutdown(self, workers: list[asyncio.Future]) -> None:
        deadline = self._stop_at or time.monotonic()
        queue = self._queue
        assert queue is not None
        if self._flush_on_stop:
            self._tick(flush=True)
        else:
            self._take_inbox()
        remaining = deadline - time.monotonic()
        if remaining > 0 and queue.qsize() + self._in_flight > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(queue.join(), remaining)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        while not queue.empty():
            job = queue.get_nowait()
            self.metrics.skipped(job.rule.evaluation, "shutdown")
            self._done(job.run, None)
        closed: set[int] = set()
        for evaluator in [rule.evaluator for rule in self.rules] + [self._judge_client]:
            if evaluator is None or id(evaluator) in closed:
                continue
            closed.add(id(evaluator))
            aclose = getattr(evaluator, "aclose", None)
            if aclose is None:
                continue
            try:
                result = aclose()
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, 5.0)
            except Exception:
                self._warn_once("aclose", "judge: closing an evaluator failed")

    def _warn_once(self, key: str, message: str) -> None:
        """Log ``message`` with the exception being handled, once per ``key`` and judge."""
        warn_once(_log, key, "%s", message, exc_info=sys.exc_info()[1], once=self._warned)
