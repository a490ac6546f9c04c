"""The service's memory limiter: above a resident-memory limit, requests are refused with a
retryable error instead of being taken, so a flood cannot grow the process until the
kernel kills it (and everything queued in memory with it).

The limit is ``service.memory_limit_mib``, else 85% of the cgroup (container) memory
limit when one is set. Resident memory is read from ``/proc/self/statm`` at most every
50 ms; where that file does not exist (not Linux) only the queues' own bounds apply.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["MemoryLimit", "cgroup_limit_bytes", "resident_bytes"]

_CGROUP_FILES = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """This process's resident memory, or None where it cannot be read cheaply."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _physical_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * _PAGE
    except (AttributeError, ValueError, OSError):
        return None


def cgroup_limit_bytes() -> int | None:
    """The memory limit of this process's cgroup, or None when there is none."""
    physical = _physical_bytes()
    for path in _CGROUP_FILES:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and (physical is None or int(text) < physical):
            return int(text)
        return None
    return None


class MemoryLimit:
    """``exceeded()``: whether resident memory is over ``limit_bytes`` (None: no limit)."""

    def __init__(self, limit_bytes: int | None, *, every_s: float = 0.05) -> None:
        self.limit_bytes = limit_bytes if resident_bytes() is not None else None
        self._every = every_s
        self._checked = 0.0
        self._over = False

    @classmethod
    def from_config(cls, limit_mib: int | None) -> MemoryLimit:
        if limit_mib is not None:
            return cls(limit_mib * 1024 * 1024)
        cgroup = cgroup_limit_bytes()
        return cls(int(cgroup * 0.85) if cgroup else None)

    def exceeded(self) -> bool:
        if self.limit_bytes is None:
            return False
        now = time.monotonic()
        if now - self._checked >= self._every:
            self._checked = now
            rss = resident_bytes()
            self._over = rss is not None and rss > self.limit_bytes
        return self._over
