"""Spans for the steps of an LLM pipeline that are not model calls.

``workflow``, ``agent``, ``tool``, ``retrieval``, ``rerank`` and ``step`` each work as a
decorator (bare or with arguments; sync, async, generators, async generators) and as a
context manager that yields a handle for recording results::

    @llmtap.tool
    def lookup(city: str) -> dict: ...

    with llmtap.retrieval("kb", query=question) as r:
        r.documents([{"id": "doc-1", "score": 0.92, "content": "..."}])
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from llmtap import runtime, semconv
from llmtap.instrumentation._documents import documents_json
from llmtap.instrumentation._framework import step_invocation
from llmtap.instrumentation._invocation import Invocation, Telemetry


def telemetry() -> Telemetry:
    """The installed telemetry (``runtime.telemetry()``); a default one when none is."""
    current = runtime.telemetry()
    if current is None:
        current = Telemetry()
        runtime.use_telemetry(current)
    return current  # type: ignore[return-value]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class Step:
    """Handle for the span of a running step."""

    def __init__(self, inv: Invocation) -> None:
        self._inv = inv

    @property
    def capture(self) -> bool:
        return telemetry().settings.capture.any

    def set(self, key: str, value: Any) -> None:
        self._inv.attributes[key] = value

    def arguments(self, value: Any) -> None:
        if self.capture:
            self.set(semconv.TOOL_CALL_ARGUMENTS, _json(value))

    def result(self, value: Any) -> None:
        """A decorated step's return value: a tool's result, or the documents a retrieval
        or rerank step returns (a list of dicts or strings)."""
        if not self.capture:
            return
        operation = self._inv.operation
        if operation == semconv.OP_EXECUTE_TOOL:
            self.set(semconv.TOOL_CALL_RESULT, _json(value))
        elif operation in _DOCUMENT_STEPS and _is_documents(value):
            self.documents(value)

    def query(self, text: str) -> None:
        if self.capture:
            self.set(semconv.RETRIEVAL_QUERY_TEXT, text)

    def documents(self, docs: list[dict[str, Any]]) -> None:
        """Retrieved documents: dicts with ``id``, ``score`` and optionally ``content``."""
        if not self.capture:
            return
        self.set(semconv.RETRIEVAL_DOCUMENTS, documents_json(docs))


_DOCUMENT_STEPS = frozenset({semconv.OP_RETRIEVAL, "rerank"})


def _is_documents(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(d, (dict, str)) for d in value)


@contextmanager
def _span(kind: str, name: str, extra: dict[str, Any], query: str | None) -> Iterator[Step]:
    inv = step_invocation(kind, name, extra)
    step = Step(inv)
    if query is not None and step.capture:
        inv.attributes[semconv.RETRIEVAL_QUERY_TEXT] = query
    with telemetry().step(inv):
        yield step


class _StepFactory:
    """``llmtap.tool`` and friends: a decorator (bare or called) and a context manager."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, target: Any = None, /, **options: Any) -> Any:
        if callable(target):
            return _decorate(self.kind, target, {})
        if target is not None:
            options["name"] = target
        return _StepSpec(self.kind, options)


class _StepSpec:
    def __init__(self, kind: str, options: dict[str, Any]) -> None:
        self.kind = kind
        self.options = options
        self._cm: Any = None

    def __call__(self, fn: Callable) -> Callable:
        return _decorate(self.kind, fn, self.options)

    def __enter__(self) -> Step:
        self._cm = _open(self.kind, self.options.get("name") or self.kind, self.options)
        return self._cm.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._cm.__exit__(*exc)


_OPTION_KEYS = {
    "id": semconv.AGENT_ID,
    "description": semconv.AGENT_DESCRIPTION,
    "version": semconv.AGENT_VERSION,
    "call_id": semconv.TOOL_CALL_ID,
    "tool_type": semconv.TOOL_TYPE,
}


def _open(kind: str, name: str, options: dict[str, Any]) -> Any:
    extra = {_OPTION_KEYS[k]: v for k, v in options.items() if k in _OPTION_KEYS}
    if kind == "tool":
        extra.setdefault(semconv.TOOL_TYPE, "function")
        if options.get("description"):
            extra[semconv.TOOL_DESCRIPTION] = extra.pop(semconv.AGENT_DESCRIPTION)
    return _span(kind, name, extra, options.get("query"))


def _bound_arguments(fn: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}
    except (TypeError, ValueError):
        return {"args": list(args), **kwargs}


def _decorate(kind: str, fn: Callable, options: dict[str, Any]) -> Callable:
    name = options.get("name") or getattr(fn, "__name__", kind)

    def enter(args: tuple, kwargs: dict) -> tuple[Any, Step]:
        cm = _open(kind, name, options)
        step = cm.__enter__()
        if kind == "tool":
            step.arguments(_bound_arguments(fn, args, kwargs))
        elif kind == "retrieval" and options.get("query") is None:
            text = next((a for a in (*args, *kwargs.values()) if isinstance(a, str)), None)
            if text is not None:
                step.query(text)
        return cm, step

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen(*args: Any, **kwargs: Any) -> Any:
            with _generator_step(kind, name, options, fn, args, kwargs) as (inv, tel, it):
                while True:
                    tel.attach(inv)
                    try:
                        item = await it.__anext__()
                    except StopAsyncIteration:
                        return
                    finally:
                        tel.detach(inv)
                    yield item

        return agen
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Any:
            with _generator_step(kind, name, options, fn, args, kwargs) as (inv, tel, it):
                while True:
                    tel.attach(inv)
                    try:
                        item = next(it)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        tel.detach(inv)
                    yield item

        return gen
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def coro(*args: Any, **kwargs: Any) -> Any:
            cm, step = enter(args, kwargs)
            with _closing(cm):
                result = await fn(*args, **kwargs)
                step.result(result)
                return result

        return coro

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any) -> Any:
        cm, step = enter(args, kwargs)
        with _closing(cm):
            result = fn(*args, **kwargs)
            step.result(result)
            return result

    return plain


@contextmanager
def _generator_step(
    kind: str, name: str, options: dict[str, Any], fn: Callable, args: tuple, kwargs: dict
) -> Iterator[tuple[Invocation, Telemetry, Any]]:
    """A generator's span is current only while the generator runs, never between items."""
    extra = {_OPTION_KEYS[k]: v for k, v in options.items() if k in _OPTION_KEYS}
    inv, tel = step_invocation(kind, name, extra), telemetry()
    tel.start(inv, attach=False)
    if kind == "tool":
        Step(inv).arguments(_bound_arguments(fn, args, kwargs))
    it = fn(*args, **kwargs)
    try:
        yield inv, tel, it
    except GeneratorExit:
        _close(it)
        tel.stop(inv)
        raise
    except BaseException as exc:
        tel.fail(inv, exc)
        raise
    tel.stop(inv)


def _close(it: Any) -> None:
    close = getattr(it, "close", None)
    if close is not None and not inspect.iscoroutinefunction(close):
        close()


@contextmanager
def _closing(cm: Any) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        if not cm.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        cm.__exit__(None, None, None)


workflow = _StepFactory("workflow")
agent = _StepFactory("agent")
tool = _StepFactory("tool")
retrieval = _StepFactory("retrieval")
rerank = _StepFactory("rerank")


def step(kind: str, name: str | None = None, **options: Any) -> Any:
    """A custom step kind (``rerank``, ``guardrail``, ...): decorator or context manager."""
    return _StepFactory(kind)(name, **options) if name else _StepFactory(kind)(**options)
