"""Sampling decisions fixed by the trace id, so every process and replica agrees.

The decision for a ratio is the one OpenTelemetry's ``TraceIdRatioBased`` makes: the low 64
bits of the trace id against ``round(ratio * 2**64)``, so SDKs in other languages with the
same ratio agree. A salt gives independent (but nested, per salt) decisions.
"""

from __future__ import annotations

import functools
import hashlib

__all__ = ["LOW64_MASK", "ratio_bound", "trace_id_fraction", "trace_id_sampled"]

#: the trace id's low 64 bits, the ones ``TraceIdRatioBased`` compares
LOW64_MASK = (1 << 64) - 1


def ratio_bound(ratio: float) -> int:
    """The bound ``TraceIdRatioBased`` compares the low 64 bits of a trace id against."""
    return round(ratio * (1 << 64))


@functools.lru_cache(maxsize=256)
def _salt_key(salt: str) -> bytes:
    raw = salt.encode("utf-8")
    return raw if len(raw) <= 64 else hashlib.blake2b(raw, digest_size=64).digest()


def _draw(trace_id: int, salt: str) -> int:
    """64 bits chosen by the trace id: its low half, or a keyed hash of it with a salt."""
    if not salt:
        return trace_id & LOW64_MASK
    digest = hashlib.blake2b(
        (trace_id & ((1 << 128) - 1)).to_bytes(16, "big"), digest_size=8, key=_salt_key(salt)
    ).digest()
    return int.from_bytes(digest, "big")


def trace_id_fraction(trace_id: int, salt: str = "") -> float:
    """A number in [0, 1) fixed by the trace id: every process and replica agrees on it.

    Without a salt it is the low 64 bits of the trace id over 2**64 (to 53 bits), so
    ``trace_id_fraction(t) < ratio`` is ``TraceIdRatioBased(ratio)``'s decision (up to
    2**-53 at the boundary; :func:`trace_id_sampled` is exact). With a salt the 64 bits are
    BLAKE2b(key=salt as UTF-8, digest_size=8) of the 16-byte big-endian trace id, so rules
    with different salts sample independently, while rules sharing a salt stay nested (a
    trace kept at 5% is also kept at 10%).
    """
    return (_draw(trace_id, salt) >> 11) * 2.0**-53


def trace_id_sampled(trace_id: int, ratio: float, salt: str = "") -> bool:
    """The exact keep/drop decision for ``ratio``; without a salt, ``TraceIdRatioBased``'s."""
    return _draw(trace_id, salt) < ratio_bound(ratio)
