"""Per-destination translations: llmtap's attributes renamed or added for what one backend
reads best, on a copy of each span sent to that destination only.

A destination of ``export:`` names them in ``translate:`` (its preset has defaults:
``phoenix`` gets ``openinference``, ``langfuse`` gets ``langfuse``; ``translate: []`` turns
them off). Each translation is one module of this package, registered by name in
:data:`TRANSLATIONS` (a :class:`~llmtap.configuration.factories.Registry`, like stages,
presets and evaluators); its factory takes a :class:`TranslationOptions`.

The one mechanism is :class:`Translator`: it works on a :class:`~llmtap.pipeline.span.SpanData`
(plain attribute mappings), so the app (its ``ReadableSpan``, :mod:`.readable_spans`) and
the service (its OTLP protobuf requests) share it. It also remembers, per trace, the first
input and the last output its spans carried (:class:`TraceIO`), so that a root span that
records neither (a workflow) can still show the trace's input and output: every span of a
batch (:meth:`Translator.spans`) counts, wherever the root is in it. A translation
never raises into the caller's path: :meth:`Translator.guard` logs the failure once and the
spans go untranslated. A destination without translations gets no translator at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from llmtap.configuration.factories import Registry
from llmtap.diagnostics import Once, warn_once
from llmtap.export.translations import cost_alias, langfuse, openinference
from llmtap.export.translations._base import Translation, TranslationOptions
from llmtap.export.translations._io import TraceIO
from llmtap.pipeline.span import SpanData

__all__ = [
    "TRANSLATIONS",
    "Translation",
    "TranslationOptions",
    "Translator",
    "build_translator",
    "problems_of_names",
]

_log = logging.getLogger("llmtap")
T = TypeVar("T")


#: every translation, by name: options (``TranslationOptions``), factory, description
TRANSLATIONS: Registry[Translation] = Registry("translation")


class Translator:
    """The translations of one destination, applied in order, with the trace memory they
    share. Used by one worker thread (the destination's)."""

    def __init__(self, translations: Sequence[Translation], destination: str = "") -> None:
        self.translations = list(translations)
        self.destination = destination
        self.trace = TraceIO()
        self._uses_io = any(t.uses_io for t in self.translations)
        self._resources: dict[int, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
        self._once = Once()

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.translations]

    def span(self, span: SpanData) -> None:
        """Translate one span alone (a batch of one, see :meth:`spans`)."""
        self.spans((span,))

    def spans(self, spans: Sequence[SpanData]) -> None:
        """Translate a batch in place: each span's attributes must be a copy the caller
        owns; its ``resource`` is replaced (see :meth:`resource`), never mutated. Every span
        of the batch counts towards its root's input and output, wherever it is in the
        batch (a root before its children: another scope's or resource's spans)."""
        if not self._uses_io:
            for span in spans:
                self._translate(span)
            return
        try:
            for span in spans:
                self.trace.remember(span)
            for span in spans:
                self.trace.note(span)
                self._translate(span)
        finally:
            self.trace.end_batch()

    def _translate(self, span: SpanData) -> None:
        for translation in self.translations:
            translation.span(span, self.trace)
        span.resource = self.resource(span.resource)

    def resource(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        """The translated resource attributes, the same object for the same input object
        (so that spans of one resource stay grouped)."""
        cached = self._resources.get(id(attributes))
        if cached is not None and cached[0] is attributes:
            return cached[1]
        changed = dict(attributes)
        for translation in self.translations:
            translation.resource(changed)
        # unchanged: the resource object stays as it is
        out = attributes if changed == attributes else changed
        if len(self._resources) >= 64:
            self._resources.clear()
        self._resources[id(attributes)] = (attributes, out)
        return out

    def guard(self, translate: Callable[[], T], fallback: T) -> T:
        """``translate()``, or ``fallback`` (the spans untranslated) when it fails: the
        failure is logged once per destination, never raised."""
        try:
            return translate()
        except Exception as exc:
            message = (
                f"llmtap: translating spans for {self.destination or 'a destination'} "
                f"({', '.join(self.names)}) failed; they are sent untranslated"
            )
            if not warn_once(_log, "translate", message, exc_info=exc, once=self._once):
                _log.debug(message, exc_info=True)
            return fallback


def problems_of_names(names: Any) -> list[str]:
    """What is wrong with a ``translate:`` value, each as a message (without the key)."""
    if not isinstance(names, (list, tuple)):
        return [f"expected a list of translation names, got {names!r}"]
    problems = []
    for name in names:
        if name not in TRANSLATIONS:
            problems.append(TRANSLATIONS.unknown(name))
    return problems


def build_translator(
    names: Iterable[str],
    *,
    project: str | None = None,
    service_name: str | None = None,
    destination: str = "",
) -> Translator | None:
    """The translator of a destination, or None when it has no translations."""
    names = list(dict.fromkeys(names))
    if not names:
        return None
    options = TranslationOptions(project=project, service_name=service_name)
    translations = [TRANSLATIONS[name].create(options) for name in names]
    return Translator(translations, destination)


for _module in (openinference, cost_alias, langfuse):
    TRANSLATIONS.register(_module.NAME, TranslationOptions, _module.create, _module.DESCRIPTION)
