"""Which received spans the stages have work on, told from attribute keys alone (each
stage's :meth:`~llmtap.pipeline.span.Stage.marks`), so the others are forwarded as received
without being decoded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llmtap.pipeline.span import Stage

__all__ = ["needs_stages"]


def needs_stages(stages: Sequence[Stage]) -> Callable[[Any], bool]:
    """``needs(attributes)``: whether any of ``stages`` has work on a span with those
    attribute keys (``attributes`` supports ``in``: a dict or the wire's attribute map)."""
    marks = [stage.marks() for stage in stages]
    if any(m is None for m in marks):
        return lambda attrs: True
    active = [(m.done, m.needs) for m in marks if m is not None and (m.needs is None or m.needs)]
    if not active:
        return lambda attrs: False

    def needs(attrs: Any) -> bool:
        for done, need in active:
            for key in done:
                if key in attrs:
                    break
            else:
                if need is None:
                    return True
                for key in need:
                    if key in attrs:
                        return True
        return False

    return needs
