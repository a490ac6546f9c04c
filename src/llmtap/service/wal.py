"""A write-ahead log on local disk behind one destination's queue, so that what the service
acknowledged survives a crash (``kill -9``) and a restart, and is sent once the backend is
back.

Records are appended to segment files named ``<number of their first record>.wal``: a
header (payload length, CRC-32 of the payload, span count) and the payload (an
``ExportTraceServiceRequest`` as it is to be forwarded). Delivery is first in, first out,
so how far it got is one position, kept in ``cursor``: the number of the first record not
wholly delivered and how many of its spans were. On open the records past the cursor are
read back; a torn or corrupt record (a crash in the middle of a write) ends its segment.
Segments wholly before the cursor are deleted.

A record is written with ``os.write`` (no user-space buffer) before the request is
acknowledged, so a crash of the process loses nothing; ``fsync`` also syncs every append
and cursor to the disk, which survives a crash of the machine at the cost of a sync per
request. Spans delivered after the last cursor update are sent again after a restart:
the promise is at least once, and replays are counted.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["QueueDirInUse", "Record", "WriteAheadLog", "directory_name"]

_HEADER = struct.Struct("<III")  # payload length, CRC-32 of the payload, spans
_SUFFIX = ".wal"
_CURSOR = "cursor"
_LOCK = "lock"


class QueueDirInUse(OSError):
    """Another process holds this queue directory."""


@dataclass
class Record:
    """A record read back on open: ``skip`` of its spans were delivered already."""

    payload: bytes
    spans: int
    skip: int = 0


@dataclass
class _Pending:
    number: int
    spans: int
    size: int


def directory_name(destination: str) -> str:
    """A file-system-safe directory name for a destination name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", destination).strip(".") or "destination"
    return safe if safe == destination else f"{safe}-{zlib.crc32(destination.encode()):08x}"


class WriteAheadLog:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = False,
        segment_bytes: int = 16 << 20,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._lock_fd = self._take_directory()
        self._pending: deque[_Pending] = deque()
        self._delivered = 0  # spans of the first pending record already delivered
        self._segments: deque[tuple[int, Path]] = deque()  # (first record, path)
        self._fd: int | None = None
        self._segment_size = 0
        self._next = 0
        self.bytes = 0  # payload bytes not yet delivered

    def _take_directory(self) -> int:
        fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise QueueDirInUse(
                    f"queue directory {self.directory} is in use by another process"
                ) from None
        return fd

    # reading back -----------------------------------------------------------------------

    def recover(self) -> list[Record]:
        """Open the log: the records not yet delivered, oldest first."""
        start, delivered = self._read_cursor()
        found = sorted(
            (int(p.stem), p) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit()
        )
        records: list[Record] = []
        for first, path in found:
            self._segments.append((first, path))
            number = first
            for payload, spans in _read_segment(path):
                if number >= start:
                    skip = delivered if number == start else 0
                    records.append(Record(payload, spans, min(skip, spans)))
                    self._pending.append(_Pending(number, spans, len(payload)))
                    self.bytes += len(payload)
                number += 1
            self._next = max(self._next, number)
        self._next = max(self._next, start)
        if self._pending and self._pending[0].number == start:
            self._delivered = records[0].skip
        self._drop_segments()
        return records

    def _read_cursor(self) -> tuple[int, int]:
        try:
            number, delivered = (self.directory / _CURSOR).read_text().split()
            return int(number), int(delivered)
        except (OSError, ValueError):
            return 0, 0

    # writing ----------------------------------------------------------------------------

    def append(self, payload: bytes, spans: int) -> None:
        """Write one record (before its spans are acknowledged)."""
        with self._lock:
            if self._fd is None or self._segment_size >= self._segment_bytes:
                self._roll()
            assert self._fd is not None
            _write_all(self._fd, _HEADER.pack(len(payload), zlib.crc32(payload), spans) + payload)
            if self.fsync:
                os.fsync(self._fd)
            self._segment_size += _HEADER.size + len(payload)
            self._pending.append(_Pending(self._next, spans, len(payload)))
            self._next += 1
            self.bytes += len(payload)

    def _roll(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        path = self.directory / f"{self._next:020d}{_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment_size = os.fstat(self._fd).st_size
        if not self._segments or self._segments[-1][1] != path:
            self._segments.append((self._next, path))

    def delivered(self, spans: int) -> None:
        """``spans`` more spans, in queue order, were delivered (or given up for good)."""
        with self._lock:
            left = self._delivered + spans
            while self._pending and left >= self._pending[0].spans:
                done = self._pending.popleft()
                left -= done.spans
                self.bytes -= done.size
            self._delivered = left if self._pending else 0
            self._write_cursor()
            self._drop_segments()

    def _write_cursor(self) -> None:
        number = self._pending[0].number if self._pending else self._next
        tmp = self.directory / f"{_CURSOR}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, f"{number} {self._delivered}\n".encode())
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.directory / _CURSOR)

    def _drop_segments(self) -> None:
        first_pending = self._pending[0].number if self._pending else self._next
        while len(self._segments) > 1 and self._segments[1][0] <= first_pending:
            _, path = self._segments.popleft()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_segment(path: Path) -> list[tuple[bytes, int]]:
    """The whole records of a segment; a torn or corrupt one ends it (and is cut off, so
    that appends after it stay readable)."""
    data = path.read_bytes()
    out: list[tuple[bytes, int]] = []
    pos = 0
    while pos + _HEADER.size <= len(data):
        size, crc, spans = _HEADER.unpack_from(data, pos)
        payload = data[pos + _HEADER.size : pos + _HEADER.size + size]
        if len(payload) != size or zlib.crc32(payload) != crc:
            break
        out.append((payload, spans))
        pos += _HEADER.size + size
    if pos != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(pos)
    return out
