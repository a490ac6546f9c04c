"""Business context (user, session, feature, prompt, metadata) stamped on every GenAI span.

The values live in the OpenTelemetry context, so they follow spans across asyncio tasks and,
with the threading instrumentation that `llmtap.configure()` turns on, across thread pools.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context

from llmtap import semconv

_KEY = otel_context.create_key("llmtap.business_context")
_EMPTY: Mapping[str, Any] = {}

_NAMED = {
    "user_id": semconv.USER_ID,
    "session_id": semconv.SESSION_ID,
    "conversation_id": semconv.CONVERSATION_ID,
    "feature": semconv.LLMTAP_FEATURE,
    "prompt_name": semconv.PROMPT_NAME,
    "prompt_version": semconv.LLMTAP_PROMPT_VERSION,
}
_SCALARS = (str, bool, int, float)


def _to_attributes(named: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for name, value in named.items():
        if name not in _NAMED:
            raise TypeError(f"llmtap.context() got an unknown field {name!r}; use metadata={{...}}")
        if value is not None:
            attrs[_NAMED[name]] = str(value)
    if semconv.SESSION_ID in attrs:
        attrs.setdefault(semconv.CONVERSATION_ID, attrs[semconv.SESSION_ID])
    for key, value in metadata.items():
        if value is not None:
            attrs[semconv.LLMTAP_METADATA_PREFIX + str(key)] = (
                value if isinstance(value, _SCALARS) else str(value)
            )
    return attrs


@contextmanager
def context(*, metadata: Mapping[str, Any] | None = None, **fields: Any) -> Iterator[None]:
    """Stamp business attributes on every GenAI span started inside the block.

    Fields: user_id, session_id, conversation_id, feature, prompt_name, prompt_version;
    anything else goes in ``metadata`` (recorded as ``llmtap.metadata.<key>``). Nested blocks
    add to, and override, the outer one.
    """
    merged = {**current_attributes(), **_to_attributes(fields, metadata or {})}
    token = otel_context.attach(otel_context.set_value(_KEY, merged))
    try:
        yield
    finally:
        otel_context.detach(token)


def current_attributes() -> Mapping[str, Any]:
    return otel_context.get_value(_KEY) or _EMPTY


def attributes_in(ctx: otel_context.Context | None) -> Mapping[str, Any]:
    """The business attributes held by ``ctx`` (the current context when None)."""
    return otel_context.get_value(_KEY, ctx) or _EMPTY
