"""The plain span record every pipeline stage works on, in the app and in the service.

A stage sees the name, attributes, events, links, status message, resource and
instrumentation scope as plain Python values, so the same code serves an SDK
``ReadableSpan`` in the app and an OTLP protobuf span in the service. Stages mutate the
record in place (``resource`` and ``scope_attributes``, shared by many spans, are replaced,
never mutated) and must be idempotent: running one twice leaves the span as running it
once did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class EventData:
    name: str
    attributes: dict[str, Any] = field(default_factory=dict)
    timestamp: int = 0


@dataclass
class LinkData:
    """A link's attributes, the W3C ``tracestate`` of the linked context and its ids. Stages
    may change the attributes and the trace state; the ids are read-only (a received span
    keeps the ids it came with)."""

    attributes: dict[str, Any] = field(default_factory=dict)
    trace_state: str = ""
    trace_id: int = 0
    span_id: int = 0


@dataclass
class SpanData:
    name: str
    attributes: dict[str, Any]
    events: list[EventData] = field(default_factory=list)
    status_message: str | None = None
    is_error: bool = False
    duration_s: float = 0.0
    resource: Mapping[str, Any] = field(default_factory=dict)
    trace_id: int = 0
    span_id: int = 0
    parent_span_id: int = 0
    kind: str = "INTERNAL"
    start_ns: int = 0
    end_ns: int = 0
    links: list[LinkData] = field(default_factory=list)
    scope_name: str = ""
    scope_version: str = ""
    #: shared by the spans of one scope like ``resource``: a stage replaces it, never mutates it
    scope_attributes: Mapping[str, Any] = field(default_factory=dict)
    #: the W3C ``tracestate`` of the span's context (``key=value,...``)
    trace_state: str = ""
    #: set by the service for spans from a sender it trusts (``service.trusted_senders``):
    #: their stages' ``done`` marks are taken as they are
    marks_trusted: bool = False
    #: ``time.monotonic()`` after which stages stop scanning content and drop what is left
    #: (the service sets one per request); 0: only the stages' own budgets
    deadline: float = 0.0


#: how a stage takes the ``done`` marks of a span (:meth:`Stage.trust_marks`)
TRUST_ANY = "any"
TRUST_EARNED = "earned"
TRUST_NONE = "none"
TRUST_MODES = (TRUST_ANY, TRUST_EARNED, TRUST_NONE)


@dataclass(frozen=True)
class StageMarks:
    """When a stage has work on a span, told by attribute keys alone (so a receiver can
    forward a span without decoding it): none when any ``done`` key is there (the stage ran
    on it already, here or upstream); else only when one of ``needs`` is there (``None``:
    every span). ``needs=()`` says the stage never has work (it is turned off). ``verify``,
    when set, makes the ``done`` keys count only on spans it accepts, ``verify(attributes,
    trace_id, span_id)`` (ids as bytes), unless they come from a trusted sender."""

    done: tuple[str, ...] = ()
    needs: tuple[str, ...] | None = None
    verify: Callable[[Any, bytes, bytes], bool] | None = None


class Stage(Protocol):
    """One transformation over a span record (cost, redaction, ...).

    Stages subclass it to get the defaults of the optional members (:meth:`marks`,
    :meth:`trust_marks`).
    """

    name: str

    def apply(self, span: SpanData) -> None:
        """Change ``span`` in place; never raise for bad input (the caller guards anyway)."""

    def marks(self) -> StageMarks | None:
        """When the stage has work on a span, by attribute keys; None (the default): it
        cannot tell, every span goes through it."""
        return None

    def trust_marks(self, trust: str) -> None:
        """How the stage takes the ``done`` marks a span carries: :data:`TRUST_ANY` (the
        default, for spans made in this process), :data:`TRUST_EARNED` (the service: only
        with a proof, ``StageMarks.verify`` or a trusted sender) or :data:`TRUST_NONE` (the
        work is redone on every span). Stages that cannot redo their work ignore it."""
