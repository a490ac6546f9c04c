"""The app's side of translation: a batch of the SDK's ``ReadableSpan`` for one destination,
translated on copies (the spans other destinations get are left as they are)."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from llmtap.export.readable import to_span_data, with_data
from llmtap.export.translations import Translator
from llmtap.pipeline.span import SpanData

__all__ = ["ReadableTranslator"]


class ReadableTranslator:
    """``translator`` over ``ReadableSpan`` batches; a failure sends the batch untranslated
    (logged once)."""

    def __init__(self, translator: Translator) -> None:
        self.translator = translator
        self._resources: dict[int, tuple[object, Resource]] = {}

    def __call__(self, batch: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        return self.translator.guard(lambda: self._all(batch), batch)

    def _all(self, batch: Sequence[ReadableSpan]) -> list[ReadableSpan]:
        data = [to_span_data(span) for span in batch]
        self.translator.spans(data)  # one batch: a root counts its children wherever they are
        return [self._one(span, d) for span, d in zip(batch, data, strict=True)]

    def _one(self, span: ReadableSpan, data: SpanData) -> ReadableSpan:
        resource = self._resource(span.resource, data.resource)
        if resource is not None:
            data.resource = resource.attributes  # the same object: with_data keeps it
        return with_data(span, data, resource)

    def _resource(self, original: Resource | None, attributes: object) -> Resource | None:
        """One ``Resource`` per translated resource (spans of one resource stay together);
        None when the resource is unchanged."""
        if original is None or attributes is original.attributes:
            return None
        cached = self._resources.get(id(attributes))
        if cached is None or cached[0] is not attributes:
            if len(self._resources) >= 64:
                self._resources.clear()
            made = Resource(attributes, original.schema_url)  # type: ignore[arg-type]
            cached = (attributes, made)
            self._resources[id(attributes)] = cached
        return cached[1]
