"""The redaction seal: proof that a pipeline holding a shared key redacted one given span.

A pipeline that redacts a span writes ``llmtap.redaction.seal``, the HMAC-SHA256 (hex) of
the span's trace id (16 bytes), span id (8 bytes) and redaction state (``count=<n>`` or
``failed``) under the key in the environment variable named by ``redaction.seal_key_env``
(``LLMTAP_REDACTION_KEY``). A service with the same key takes a span whose seal verifies as
redacted and forwards it as received; a redaction mark without a valid seal (forged, copied
onto another span, or with its count changed) is ignored and the span is redacted again.

The seal binds the marks to the span's ids, not to its content: a party that sees sealed
spans on the wire could copy a seal onto a forged span of the same ids. Send over TLS.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any, Final

from llmtap import semconv

__all__ = ["MIN_KEY_CHARS", "SEAL", "read_seal_key", "seal", "sealed", "span_state"]

SEAL: Final = semconv.LLMTAP_REDACTION_SEAL
MIN_KEY_CHARS: Final = 16
_COUNT: Final = semconv.LLMTAP_REDACTION_COUNT
_FAILED: Final = semconv.LLMTAP_REDACTION_FAILED
_DOMAIN: Final = b"llmtap.redaction.seal.v1\0"


def read_seal_key(env_name: str, env: Mapping[str, str] | None = None) -> bytes | None:
    """The key in ``env_name`` (None when unset or empty). A key shorter than
    :data:`MIN_KEY_CHARS` raises ``ValueError`` naming the variable, never the key."""
    value = (os.environ if env is None else env).get(env_name, "")
    if not value:
        return None
    if len(value) < MIN_KEY_CHARS:
        raise ValueError(
            f"redaction.seal_key_env: the key in {env_name} has {len(value)} characters; "
            f"use at least {MIN_KEY_CHARS} (e.g. `openssl rand -hex 32`)"
        )
    return value.encode()


def span_state(count: Any, failed: Any) -> str:
    """What the seal says about a span: ``failed``, or ``count=<n>``."""
    if failed is True:
        return "failed"
    if isinstance(count, int) and not isinstance(count, bool):
        return f"count={count}"
    return ""


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> Any:
    """The HMAC after the key and the domain, copied per span (half the work of a new one)."""
    return hmac.new(key, _DOMAIN, hashlib.sha256)


def seal(key: bytes, trace_id: bytes, span_id: bytes, state: str) -> str:
    """The seal of a span in ``state``."""
    mac = _keyed(key).copy()
    mac.update(trace_id + span_id + state.encode())
    return mac.hexdigest()


def _plain(value: Any, kind: str) -> Any:
    """A plain value, or the ``kind`` member of an OTLP ``AnyValue`` (None if it holds
    another kind)."""
    if isinstance(value, (str, int)):
        return value
    which = getattr(value, "WhichOneof", None)
    if which is None or which("value") != kind:
        return None
    return getattr(value, kind)


def sealed(key: bytes | None, attributes: Any, trace_id: bytes, span_id: bytes) -> bool:
    """Whether ``attributes`` (a dict, or the wire's map of ``AnyValue``) carry a seal that
    verifies for these ids and the redaction marks they carry. Never raises."""
    if key is None or SEAL not in attributes:
        return False
    try:
        given = _plain(attributes[SEAL], "string_value")
        if not isinstance(given, str) or len(given) != 64:
            return False
        failed = _FAILED in attributes and _plain(attributes[_FAILED], "bool_value") is True
        count = _plain(attributes[_COUNT], "int_value") if _COUNT in attributes else None
        state = span_state(count, failed)
        return bool(state) and hmac.compare_digest(seal(key, trace_id, span_id, state), given)
    except Exception:  # a non-ASCII seal, a broken value: not a valid seal
        return False
