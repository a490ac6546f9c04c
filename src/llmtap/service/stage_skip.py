"""Which received spans the stages have work on, told from attribute keys (each stage's
:meth:`~llmtap.pipeline.span.Stage.marks`) and, for marks that must be earned, a seal check
over the span's ids, so the others are forwarded as received without being decoded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llmtap.pipeline.span import Stage

__all__ = ["Needs", "needs_stages"]

#: ``needs(attributes, trace_id, span_id)``: whether a stage has work on a span
Needs = Callable[[Any, bytes, bytes], bool]


def needs_stages(stages: Sequence[Stage], *, trusted: bool = False) -> Needs:
    """``needs(attrs, trace_id, span_id)``: whether any of ``stages`` has work on a span with
    those attributes (``attrs`` supports ``in``: a dict or the wire's attribute map) and ids.
    A stage's ``done`` marks count as they are for a ``trusted`` sender, else only when
    the stage's ``verify`` (if it has one) accepts the span."""
    marks = [stage.marks() for stage in stages]
    if any(m is None for m in marks):
        return lambda attrs, trace_id=b"", span_id=b"": True
    active = [
        (m.done, m.needs, None if trusted else m.verify)
        for m in marks
        if m is not None and (m.needs is None or m.needs)
    ]
    if not active:
        return lambda attrs, trace_id=b"", span_id=b"": False

    def needs(attrs: Any, trace_id: bytes = b"", span_id: bytes = b"") -> bool:
        for done, need, verify in active:
            for key in done:
                if key in attrs:
                    if verify is not None and not verify(attrs, trace_id, span_id):
                        return True  # a mark without its proof: the stage runs again
                    break
            else:
                if need is None:
                    return True
                for key in need:
                    if key in attrs:
                        return True
        return False

    return needs
