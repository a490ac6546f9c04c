"""How llmtap tells people about problems: values cut short, did-you-mean hints and warnings
logged once.

A leaf module: it imports nothing of llmtap's, so every layer can use it.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Hashable, Iterable
from typing import Any


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (the last three ``...``)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice nearest to ``word``, or None when nothing is near enough."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str], *, quoted: bool = True) -> str:
    """`` (did you mean 'x'?)`` for the nearest choice, or an empty string."""
    near = closest(word, choices)
    if near is None:
        return ""
    return f" (did you mean {near!r}?)" if quoted else f" (did you mean {near}?)"


class Once:
    """Remembers keys; ``first(key)`` is True exactly once per key, from any thread."""

    def __init__(self) -> None:
        self._seen: set[Hashable] = set()
        self._lock = threading.Lock()

    def first(self, key: Hashable = None) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True

    def discard(self, key: Hashable = None) -> None:
        with self._lock:
            self._seen.discard(key)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


_process_once = Once()


def warn_once(
    logger: logging.Logger,
    key: Hashable,
    message: str,
    *args: object,
    exc_info: BaseException | None = None,
    once: Once | None = None,
    level: int = logging.WARNING,
) -> bool:
    """Log ``message`` (at WARNING unless ``level`` says otherwise) the first time ``key`` is
    seen (in ``once``, or per process and logger); whether it was logged now."""
    if not (once.first(key) if once is not None else _process_once.first((logger.name, key))):
        return False
    logger.log(level, message, *args, exc_info=exc_info)
    return True
