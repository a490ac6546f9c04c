"""What is wrong with a configuration, and how values are shown in the messages.

A :class:`Problem` is one thing wrong: the key path (``export[1].preset``), the message and,
once known, the line of the file. :class:`ConfigError` carries every problem of a file at
once, one ``file:line: key: problem`` line each. Values under secret-like keys (see
:mod:`llmtap.secret_names`) and everything under ``headers`` are never shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmtap.diagnostics import did_you_mean, shown
from llmtap.secret_names import is_secret_name

__all__ = [
    "DEFAULT_SOURCE",
    "ConfigError",
    "Problem",
    "choice_message",
    "is_secret_path",
    "join",
    "kind",
    "line_for",
    "scrub",
    "secret_values",
    "show",
]

DEFAULT_SOURCE = "llmtap.yaml"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where (key path, line) and what."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def format(self, source: str) -> str:
        where = source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ValueError):
    """A configuration that cannot be used; ``problems`` lists every reason, one per line."""

    def __init__(self, problems: Sequence[Problem], source: str = DEFAULT_SOURCE) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(p.format(source) for p in self.problems))


def join(path: str, key: str) -> str:
    """``path.key`` (or ``key`` at the top)."""
    return f"{path}.{key}" if path else key


def _segments(path: str) -> list[str]:
    return [s for s in re.split(r"\.|\[\d+\]", path) if s]


def is_secret_path(path: str) -> bool:
    """Whether the value at ``path`` must not be shown: a secret-like key, or a header."""
    parts = _segments(path)
    if not parts:
        return False
    return (
        is_secret_name(parts[-1], cautious=True)
        or "headers" in parts[:-1]
        or parts[-1] == "headers"
    )


def show(value: Any, path: str = "") -> str:
    """``value`` for a message: its repr (cut at 80 characters), hidden under a secret key."""
    if path and is_secret_path(path):
        return "(value hidden)"
    return shown(value)


def kind(value: Any) -> str:
    """The YAML word for the type of ``value``: string, integer, mapping, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def secret_values(data: Any, path: str = "", out: set[str] | None = None) -> set[str]:
    """Every string under a secret-like key (or a header), to scrub from error messages."""
    out = set() if out is None else out
    if isinstance(data, Mapping):
        for key, value in data.items():
            secret_values(value, join(path, str(key)), out)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            secret_values(value, f"{path}[{i}]", out)
    elif isinstance(data, str) and len(data) >= 4 and is_secret_path(path):
        out.add(data)
    return out


def scrub(text: str, secrets: set[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def line_for(lines: Mapping[str, int], path: str) -> int | None:
    """The line of ``path``, else of its nearest parent that has one."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
    return lines.get(path)


def choice_message(value: Any, choices: Sequence[str], path: str = "") -> str:
    """``expected one of a, b, got 'x' (did you mean 'a'?)``; no hint for a secret."""
    text = f"expected one of {', '.join(choices)}, got {show(value, path)}"
    if isinstance(value, str) and not is_secret_path(path):
        text += did_you_mean(value.lower(), choices)
    return text
