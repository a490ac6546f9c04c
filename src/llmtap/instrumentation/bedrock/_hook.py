"""Where Bedrock calls are caught: the ``bedrock-runtime`` client class botocore builds.

botocore makes each client class at ``create_client`` time (``ClientCreator.
_create_client_class``); for ``bedrock-runtime`` llmtap gives that class its own
``_make_api_call``, which handles the four model operations and hands everything else to
``BaseClient._make_api_call`` (looked up at call time, so an instrumentation that wraps it,
such as OpenTelemetry's botocore one, sits inside llmtap's span). Clients of other services
are untouched and pay nothing per call.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import wrapt
from opentelemetry import context as otel_context

from llmtap import semconv
from llmtap.instrumentation._invocation import ACTIVE_KEY, Invocation, Telemetry, log_once
from llmtap.instrumentation._stream import StreamState
from llmtap.instrumentation._wrap import Adapter, begin_call
from llmtap.instrumentation.bedrock._calls import BodyReadFailed

SERVICE = "bedrock-runtime"


def note_error(inv: Invocation, error: BaseException) -> None:
    """``error.type`` is the AWS error code (``ThrottlingException``); an in-stream
    exception event names it in camel case (``modelStreamErrorException``)."""
    response = getattr(error, "response", None)
    details = response.get("Error") if isinstance(response, dict) else None
    code = details.get("Code") if isinstance(details, dict) else None
    if isinstance(code, str) and code:
        inv.attributes[semconv.ERROR_TYPE] = code[0].upper() + code[1:]


class _Events:
    """One iteration of a proxied event stream (``EventStream.__iter__`` walks one shared
    generator, so each iteration continues where the last one stopped)."""

    __slots__ = ("inner", "owner", "state")

    def __init__(self, owner: EventStreamProxy, state: StreamState) -> None:
        self.owner = owner  # keeps the proxy (and the span) alive while this is iterated
        self.state = state
        self.inner = iter(owner.__wrapped__)

    def __iter__(self) -> _Events:
        return self

    def __next__(self) -> Any:
        state = self.state
        try:
            event = next(self.inner)
        except StopIteration:
            state.finish("completed")
            raise
        except BaseException as exc:
            note_error(state.inv, exc)
            state.finish("error", exc)
            raise
        state.on_chunk(event)
        return event


class EventStreamProxy(wrapt.ObjectProxy):
    """botocore's ``EventStream``, as the application sees it, counting its events; the
    span ends when it is exhausted, fails, is closed, or is dropped."""

    def __init__(self, wrapped: Any, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state
        try:
            state.finalizer = weakref.finalize(self, state.finish, "abandoned")
        except TypeError:
            state.finalizer = None

    def __iter__(self) -> _Events:
        return _Events(self, self._self_state)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.finish("closed")


def _run(
    telemetry: Telemetry,
    adapter: Adapter,
    base: Callable[..., Any],
    client: Any,
    args: tuple,
) -> Any:
    call = begin_call(telemetry, adapter, client, args, {})
    if call is None:
        return base(*args)
    inv = call.inv
    try:
        result = base(*call.args)
    except BaseException as exc:
        telemetry.detach(inv)
        note_error(inv, exc)
        telemetry.fail(inv, exc)
        raise
    telemetry.detach(inv)
    try:
        acc = adapter.stream(call, result)
        key = getattr(adapter, "stream_key", "")
        if acc is not None and isinstance(result, dict) and key in result:
            result[key] = EventStreamProxy(result[key], StreamState(telemetry, inv, acc))
            return result
        result = adapter.complete(call, result)
    except BodyReadFailed as failed:
        note_error(inv, failed.error)
        telemetry.fail(inv, failed.error)
        return result
    except Exception as exc:
        log_once(f"{type(adapter).__name__} response", exc)
    telemetry.stop(inv)
    return result


def _install(cls: Any, telemetry: Telemetry, adapters: Mapping[str, Adapter]) -> None:
    if not isinstance(cls, type) or inspect.iscoroutinefunction(cls._make_api_call):
        return  # aiobotocore's async clients: not instrumented

    def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        base = super(cls, self)._make_api_call
        adapter = adapters.get(operation_name)
        if adapter is None:
            return base(operation_name, api_params)
        return _run(telemetry, adapter, base, self, (operation_name, api_params))

    cls._make_api_call = _make_api_call  # type: ignore[attr-defined]


def client_class_wrapper(telemetry: Telemetry, adapters: Mapping[str, Adapter]) -> Callable:
    """Wraps ``ClientCreator._create_client_class(service_name, service_model)``."""

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        cls = wrapped(*args, **kwargs)
        service = args[0] if args else kwargs.get("service_name")
        if service == SERVICE:
            try:
                _install(cls, telemetry, adapters)
            except Exception as exc:
                log_once("bedrock client class", exc)
        return cls

    return wrapper


def plain_botocore_span(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wraps the OpenTelemetry botocore instrumentation's extension lookup: while llmtap
    handles a Bedrock call, that instrumentation gets its plain AWS extension, so its span
    is an ordinary ``BedrockRuntime.<Operation>`` AWS span (a child of llmtap's GenAI span)
    instead of a second GenAI span."""
    if otel_context.get_value(ACTIVE_KEY):
        call_context = args[0] if args else kwargs.get("call_context")
        if getattr(call_context, "service", None) == SERVICE:
            from opentelemetry.instrumentation.botocore.extensions.types import (
                _AwsSdkExtension,
            )

            return _AwsSdkExtension(call_context)
    return wrapped(*args, **kwargs)
