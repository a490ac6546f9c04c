"""Automatic function calling: an ``execute_tool`` span for each function the SDK runs.

The SDK runs the model's function calls in ``_extra_utils.get_function_response_parts``
(``_async``), one ``invoke_function_from_dict_args`` (``_async``) per call. The first is
wrapped to note the calls' ids (which the invoke helpers are not given), the second opens
the span around the application's function, under the application's current span.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import SpanKind

from llmtap import semconv
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once
from llmtap.instrumentation.google_genai._content import get

# (name, call id) of the function calls in the response being answered, in order
_calls: contextvars.ContextVar[list[list[Any]] | None] = contextvars.ContextVar(
    "llmtap_genai_function_calls", default=None
)


def _noted(response: Any) -> list[list[Any]]:
    candidates = get(response, "candidates") or []
    content = get(candidates[0], "content") if candidates else None
    found = []
    for part in get(content, "parts") or ():
        call = get(part, "function_call")
        if call is not None:
            found.append([get(call, "name"), get(call, "id")])
    return found


def _call_id(name: str) -> Any:
    noted = _calls.get()
    for i, (called, call_id) in enumerate(noted or ()):
        if called == name:
            del noted[i]  # type: ignore[union-attr]
            return call_id
    return None


def responses_wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``get_function_response_parts`` (sync; the async one is awaited by its caller)."""
    token = _note(args, kwargs)
    try:
        return wrapped(*args, **kwargs)
    finally:
        if token is not None:
            _calls.reset(token)


def async_responses_wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    async def run() -> Any:
        token = _note(args, kwargs)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            if token is not None:
                _calls.reset(token)

    return run()


def _note(args: tuple, kwargs: dict) -> contextvars.Token | None:
    try:
        response = kwargs.get("response", args[0] if args else None)
        return _calls.set(_noted(response))
    except Exception as exc:
        log_once("google-genai function calls", exc)
        return None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _tool_invocation(telemetry: Telemetry, args: tuple, kwargs: dict) -> Invocation:
    arguments = kwargs.get("args", args[0] if args else None)
    function = kwargs.get("function_to_invoke", args[1] if len(args) > 1 else None)
    name = str(getattr(function, "__name__", "") or "")
    inv = Invocation(
        semconv.OP_EXECUTE_TOOL, "", name=f"execute_tool {name}", kind=SpanKind.INTERNAL
    )
    del inv.attributes[semconv.PROVIDER]
    attrs = inv.attributes
    attrs[semconv.TOOL_NAME] = name
    attrs[semconv.TOOL_TYPE] = "function"
    call_id = _call_id(name)
    if call_id:
        attrs[semconv.TOOL_CALL_ID] = str(call_id)
    doc = (getattr(function, "__doc__", None) or "").strip()
    if doc:
        attrs[semconv.TOOL_DESCRIPTION] = doc.splitlines()[0]
    if telemetry.settings.capture.any and arguments is not None:
        attrs[semconv.TOOL_CALL_ARGUMENTS] = _json(arguments)
    return inv


def _begin(telemetry: Telemetry, args: tuple, kwargs: dict) -> Invocation | None:
    if not telemetry.enabled:
        return None
    try:
        inv = _tool_invocation(telemetry, args, kwargs)
        telemetry.start(inv)
        return inv
    except Exception as exc:
        log_once("google-genai execute_tool", exc)
        return None


def _result(telemetry: Telemetry, inv: Invocation, result: Any) -> None:
    if telemetry.settings.capture.any:
        try:
            inv.attributes[semconv.TOOL_CALL_RESULT] = _json(result)
        except Exception as exc:
            log_once("google-genai tool result", exc)


def invoke_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        inv = _begin(telemetry, args, kwargs)
        if inv is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            telemetry.detach(inv)
            telemetry.fail(inv, exc)
            raise
        telemetry.detach(inv)
        _result(telemetry, inv, result)
        telemetry.stop(inv)
        return result

    return wrapper


def async_invoke_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        async def run() -> Any:
            inv = _begin(telemetry, args, kwargs)
            if inv is None:
                return await wrapped(*args, **kwargs)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                telemetry.detach(inv)
                telemetry.fail(inv, exc)
                raise
            telemetry.detach(inv)
            _result(telemetry, inv, result)
            telemetry.stop(inv)
            return result

        return run()

    return wrapper
