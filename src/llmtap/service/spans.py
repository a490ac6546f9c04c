"""OTLP protobuf spans <-> :class:`~llmtap.pipeline.span.SpanData`, and the wire framing the
forwarders send.

Receiving: :func:`to_span_data` turns one protobuf ``Span`` (with its resource attributes
and scope) into a :class:`ReceivedSpan`, the plain record the pipeline stages work on;
:func:`write_back` puts what the stages changed (the name, attributes, event names and
attributes, link attributes, the trace states of the span and its links, the status
message) back into the protobuf, touching only what
changed; a span whose resource or scope the stages changed (redaction) gets a group of its
own from :func:`regroup`.

Forwarding: every span is queued as received (or serialized once after the stages changed
it) with its ``ScopeSpans.spans`` field header and its :class:`ScopeGroup` (the
pre-serialized resource and scope it belongs to): a :data:`SpanItem`.
:func:`encode_request` joins queued spans into an
``ExportTraceServiceRequest`` by writing the protobuf wire format directly, so a span is
never re-encoded per destination and batches of any mix of resources and scopes come out
as valid OTLP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from llmtap.pipeline.span import EventData, LinkData, SpanData

__all__ = [
    "KIND_NAMES",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_UNSET",
    "ReceivedSpan",
    "ResourceGroup",
    "ScopeGroup",
    "Snapshot",
    "attributes_of",
    "decode_items",
    "encode_request",
    "encode_requests",
    "frame_span",
    "from_span_data",
    "group_for",
    "item",
    "regroup",
    "regrouped",
    "set_attributes",
    "set_value",
    "span_header",
    "span_problem",
    "to_span_data",
    "value_of",
    "write_back",
]

KIND_NAMES = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_KIND_NUMBERS = {name: i for i, name in enumerate(KIND_NAMES)}
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


@dataclass(eq=False)
class ReceivedSpan(SpanData):
    """A span as received by the service: :class:`SpanData` plus its OTLP status code
    (``0`` unset, ``1`` ok, ``2`` error)."""

    status_code: int = STATUS_UNSET


# AnyValue <-> Python -------------------------------------------------------------------------


def value_of(value: AnyValue) -> Any:
    """A Python value: str, bool, int, float, bytes, a tuple (array) or a dict (kvlist)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(value_of(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def attributes_of(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in pairs:
        value = kv.value
        which = value.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = value.string_value
        elif which is None:
            out[kv.key] = None
        else:
            out[kv.key] = value_of(value)
    return out


def set_value(target: AnyValue, value: Any) -> None:
    """Write a Python value into an ``AnyValue`` (cleared first)."""
    target.Clear()
    if value is None:
        return
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            target.int_value = value
        else:
            target.string_value = str(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, (bytes, bytearray)):
        target.bytes_value = bytes(value)
    elif isinstance(value, Mapping):
        kvlist = target.kvlist_value
        kvlist.SetInParent()
        for key, item in value.items():
            kv = kvlist.values.add()
            kv.key = str(key)
            set_value(kv.value, item)
    elif isinstance(value, (list, tuple)):
        array = target.array_value
        array.SetInParent()
        for item in value:
            set_value(array.values.add(), item)
    else:
        target.string_value = str(value)


def set_attributes(pairs: Any, attributes: Mapping[str, Any]) -> None:
    """Append ``attributes`` to a repeated ``KeyValue`` field."""
    for key, value in attributes.items():
        kv = pairs.add()
        kv.key = key
        set_value(kv.value, value)


# protobuf -> SpanData --------------------------------------------------------------------------


def span_problem(span: trace_pb2.Span) -> str | None:
    """Why OTLP receivers must reject this span (invalid ids), or None."""
    trace_id = span.trace_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        return "invalid trace_id (expected 16 bytes, not all zero)"
    span_id = span.span_id
    if len(span_id) != 8 or span_id == _ZERO_SPAN:
        return "invalid span_id (expected 8 bytes, not all zero)"
    parent = span.parent_span_id
    if parent and len(parent) != 8:
        return "invalid parent_span_id (expected empty or 8 bytes)"
    return None


def to_span_data(
    span: trace_pb2.Span,
    resource: Mapping[str, Any],
    scope_name: str = "",
    scope_version: str = "",
    scope_attributes: Mapping[str, Any] | None = None,
) -> ReceivedSpan:
    """The record the stages work on. ``resource`` (and ``scope_attributes``) are shared by
    the spans of one ``ResourceSpans`` (``ScopeSpans``) and must not be changed."""
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    status = span.status
    code = status.code
    events = (
        [EventData(e.name, attributes_of(e.attributes), e.time_unix_nano) for e in span.events]
        if span.events
        else []
    )
    parent = span.parent_span_id
    kind = span.kind
    return ReceivedSpan(
        name=span.name,
        attributes=attributes_of(span.attributes),
        events=events,
        status_message=status.message or None,
        is_error=code == STATUS_ERROR,
        duration_s=(end - start) / 1e9 if end > start else 0.0,
        resource=resource,
        trace_id=int.from_bytes(span.trace_id, "big"),
        span_id=int.from_bytes(span.span_id, "big"),
        parent_span_id=int.from_bytes(parent, "big") if parent else 0,
        kind=KIND_NAMES[kind] if 0 <= kind < len(KIND_NAMES) else "UNSPECIFIED",
        start_ns=start,
        end_ns=end,
        links=[
            LinkData(
                attributes_of(link.attributes),
                link.trace_state,
                int.from_bytes(link.trace_id, "big"),
                int.from_bytes(link.span_id, "big"),
            )
            for link in span.links
        ]
        if span.links
        else [],
        scope_name=scope_name,
        scope_version=scope_version,
        scope_attributes=scope_attributes if scope_attributes is not None else {},
        status_code=code,
        trace_state=span.trace_state,
    )


class Snapshot:
    """What a record looked like before the stages ran (shallow copies: stages replace
    values rather than mutate them), to find what they changed."""

    __slots__ = (
        "attributes",
        "event_attributes",
        "event_names",
        "events",
        "link_attributes",
        "link_trace_states",
        "name",
        "status_message",
        "trace_state",
    )

    def __init__(self, data: SpanData) -> None:
        self.name = data.name
        self.attributes = dict(data.attributes)
        self.events = list(data.events)
        self.event_attributes = [dict(e.attributes) for e in data.events] if data.events else []
        self.event_names = [e.name for e in data.events] if data.events else []
        self.link_attributes = [dict(x.attributes) for x in data.links] if data.links else []
        self.link_trace_states = [x.trace_state for x in data.links] if data.links else []
        self.status_message = data.status_message
        self.trace_state = data.trace_state


def _write_attributes(pairs: Any, before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    changed: dict[str, Any] | None = None
    missing = object()
    for key, value in after.items():
        if before.get(key, missing) is not value:
            if changed is None:
                changed = {}
            changed[key] = value
    removed = before.keys() - after.keys() if len(before) + len(changed or ()) > len(after) else ()
    if not changed and not removed:
        return False
    existing = {k for k in (changed or ()) if k in before}
    if existing or removed:
        for i in range(len(pairs) - 1, -1, -1):
            key = pairs[i].key
            if key in removed:
                del pairs[i]
            elif key in existing:
                set_value(pairs[i].value, changed[key])  # type: ignore[index]
    for key, value in (changed or {}).items():
        if key not in existing:
            kv = pairs.add()
            kv.key = key
            set_value(kv.value, value)
    return True


def write_back(span: trace_pb2.Span, data: SpanData, before: Snapshot) -> bool:
    """Put the stages' changes into ``span``; True when anything changed. (The resource and
    scope are not in the span: see :func:`regroup`.)"""
    changed = _write_attributes(span.attributes, before.attributes, data.attributes)
    if data.name != before.name:
        span.name = data.name
        changed = True
    if data.events or before.events:
        same_events = len(data.events) == len(before.events) and all(
            a is b for a, b in zip(data.events, before.events, strict=True)
        )
        if same_events:
            for pb, event, old, old_name in zip(
                span.events, data.events, before.event_attributes, before.event_names, strict=False
            ):
                if event.name != old_name:
                    pb.name = event.name
                    changed = True
                if _write_attributes(pb.attributes, old, event.attributes):
                    changed = True
        else:  # a stage replaced events: write them all again
            del span.events[:]
            for event in data.events:
                pb = span.events.add()
                pb.name = event.name
                pb.time_unix_nano = event.timestamp
                set_attributes(pb.attributes, event.attributes)
            changed = True
    if before.link_attributes:
        for pb_link, link, old in zip(span.links, data.links, before.link_attributes, strict=False):
            if _write_attributes(pb_link.attributes, old, link.attributes):
                changed = True
        for pb_link, link, old_state in zip(
            span.links, data.links, before.link_trace_states, strict=False
        ):
            if link.trace_state != old_state:
                pb_link.trace_state = link.trace_state
                changed = True
    if data.trace_state != before.trace_state:
        span.trace_state = data.trace_state
        changed = True
    if data.status_message != before.status_message:
        span.status.message = data.status_message or ""
        changed = True
    return changed


def regrouped(group: ScopeGroup, data: SpanData) -> bool:
    """Whether the stages changed the resource or the scope of ``data`` (from ``group``)."""
    return (
        data.resource is not group.resource.attributes
        or data.scope_attributes is not group.attributes
        or data.scope_name != group.name
        or data.scope_version != group.version
    )


def regroup(resource_spans: Any, scope_spans: Any, data: SpanData) -> ScopeGroup:
    """A group for a span whose resource or scope the stages changed: the received
    ``ResourceSpans``/``ScopeSpans`` fields with ``data``'s resource attributes and scope."""
    resource = Resource()
    if resource_spans.HasField("resource"):  # (the wire types are another pool's classes)
        resource.MergeFromString(resource_spans.resource.SerializeToString())
        del resource.attributes[:]
    set_attributes(resource.attributes, data.resource)
    source = resource.SerializeToString()
    part = _field(_TAG_1, source)
    if resource_spans.schema_url:
        part += _field(_TAG_3, resource_spans.schema_url.encode())
    rgroup = ResourceGroup(part, data.resource)
    scope = InstrumentationScope()
    if scope_spans.HasField("scope"):
        scope.MergeFromString(scope_spans.scope.SerializeToString())
        del scope.attributes[:]
    scope.name = data.scope_name
    scope.version = data.scope_version
    set_attributes(scope.attributes, data.scope_attributes)
    spart = _field(_TAG_1, scope.SerializeToString())
    if scope_spans.schema_url:
        spart += _field(_TAG_3, scope_spans.schema_url.encode())
    return ScopeGroup(rgroup, spart, data.scope_name, data.scope_version, data.scope_attributes)


# SpanData -> protobuf (spans made by the service itself, e.g. evaluation results) ---------------


def _id_bytes(value: int, size: int) -> bytes:
    return int(value).to_bytes(size, "big") if value else b""


def from_span_data(data: SpanData) -> trace_pb2.Span:
    span = trace_pb2.Span(
        trace_id=_id_bytes(data.trace_id, 16),
        span_id=_id_bytes(data.span_id, 8),
        parent_span_id=_id_bytes(data.parent_span_id, 8),
        name=data.name,
        kind=_KIND_NUMBERS.get(str(data.kind).upper(), 1),
        start_time_unix_nano=data.start_ns,
        end_time_unix_nano=data.end_ns or data.start_ns + int(data.duration_s * 1e9),
    )
    if data.trace_state:
        span.trace_state = data.trace_state
    set_attributes(span.attributes, data.attributes)
    for event in data.events:
        pb = span.events.add()
        pb.name = event.name
        pb.time_unix_nano = event.timestamp
        set_attributes(pb.attributes, event.attributes)
    for link in data.links:
        pb_link = span.links.add(
            trace_id=_id_bytes(link.trace_id, 16), span_id=_id_bytes(link.span_id, 8)
        )
        if link.trace_state:
            pb_link.trace_state = link.trace_state
        set_attributes(pb_link.attributes, link.attributes)
    code = STATUS_ERROR if data.is_error else getattr(data, "status_code", STATUS_UNSET)
    if code or data.status_message:
        span.status.code = code  # type: ignore[assignment]
        if data.status_message:
            span.status.message = data.status_message
    return span


# Wire framing ----------------------------------------------------------------------------------

# tags (field number << 3 | wire type 2)
_TAG_1 = b"\x0a"  # ExportTraceServiceRequest.resource_spans, ResourceSpans.resource,
# ScopeSpans.scope
_TAG_2 = b"\x12"  # ResourceSpans.scope_spans, ScopeSpans.spans
_TAG_3 = b"\x1a"  # ResourceSpans.schema_url, ScopeSpans.schema_url


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


class ResourceGroup:
    """A ``ResourceSpans`` without its spans: its other fields serialized (``part``), and its
    resource attributes, decoded on first use from the serialized resource (``source``).
    Only bytes are kept, never the parsed request, whose memory would otherwise live as long
    as any of its spans waits in a queue."""

    __slots__ = ("_attributes", "_source", "part")

    def __init__(
        self, part: bytes, attributes: Mapping[str, Any] | None = None, source: bytes = b""
    ) -> None:
        self.part = part
        self._attributes = attributes
        self._source = source

    @property
    def attributes(self) -> Mapping[str, Any]:
        if self._attributes is None:
            resource = Resource.FromString(self._source) if self._source else None
            self._attributes = attributes_of(resource.attributes) if resource else {}
            self._source = b""
        return self._attributes


class ScopeGroup:
    """A ``ScopeSpans`` without its spans, under its resource."""

    __slots__ = ("attributes", "name", "part", "resource", "version")

    def __init__(
        self,
        resource: ResourceGroup,
        part: bytes,
        name: str,
        version: str,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self.resource = resource
        self.part = part
        self.name = name
        self.version = version
        self.attributes: Mapping[str, Any] = attributes if attributes is not None else {}


_groups: dict[tuple, ScopeGroup] = {}


def group_for(resource: Mapping[str, Any], scope_name: str, scope_version: str = "") -> ScopeGroup:
    """A group for spans the service makes itself (from :func:`from_span_data`)."""
    key = (tuple(sorted((k, repr(v)) for k, v in resource.items())), scope_name, scope_version)
    group = _groups.get(key)
    if group is None:
        res = Resource()
        set_attributes(res.attributes, resource)
        rgroup = ResourceGroup(_field(_TAG_1, res.SerializeToString()), dict(resource))
        scope = InstrumentationScope(name=scope_name, version=scope_version)
        group = ScopeGroup(
            rgroup, _field(_TAG_1, scope.SerializeToString()), scope_name, scope_version
        )
        if len(_groups) < 256:
            _groups[key] = group
    return group


#: what a destination queue holds per span: its scope group, the ``ScopeSpans.spans`` field
#: header (tag and length) and the serialized ``Span``
SpanItem = tuple[ScopeGroup, bytes, bytes]


def span_header(size: int) -> bytes:
    """The ``ScopeSpans.spans`` field header of a serialized span of ``size`` bytes."""
    if size < 0x80:
        return bytes((0x12, size))
    if size < 0x4000:
        return bytes((0x12, (size & 0x7F) | 0x80, size >> 7))
    return _TAG_2 + _varint(size)


def frame_span(serialized: bytes) -> bytes:
    """A serialized ``Span`` as one ``ScopeSpans.spans`` entry."""
    return span_header(len(serialized)) + serialized


def item(group: ScopeGroup, serialized: bytes) -> SpanItem:
    return (group, span_header(len(serialized)), serialized)


def encode_request(items: Sequence[SpanItem]) -> bytes:
    """An ``ExportTraceServiceRequest`` holding the spans of ``items``, grouped by their
    resource and scope (consecutive items of one group share one entry). The lengths are
    summed first so that the request is built with a single copy of the span bytes."""
    out: list[bytes] = []
    append = out.append
    n = len(items)
    i = 0
    while i < n:
        resource = items[i][0].resource
        runs: list[tuple[ScopeGroup, int, int, int]] = []
        resource_size = len(resource.part)
        while i < n and items[i][0].resource is resource:
            scope = items[i][0]
            first = i
            size = len(scope.part)
            while i < n and items[i][0] is scope:
                _, header, body = items[i]
                size += len(header) + len(body)
                i += 1
            runs.append((scope, first, i, size))
            resource_size += 1 + len(_varint(size)) + size
        append(_TAG_1 + _varint(resource_size))
        append(resource.part)
        for scope, first, stop, size in runs:
            append(_TAG_2 + _varint(size))
            append(scope.part)
            for _, header, body in items[first:stop]:
                append(header)
                append(body)
    return b"".join(out)


def decode_items(request: bytes) -> list[SpanItem]:
    """The items of a serialized ``ExportTraceServiceRequest`` (as :func:`encode_request`
    wrote it), spans kept as received."""
    wire = WireRequest.FromString(request)
    raw = RawRequest.FromString(request)
    out: list[SpanItem] = []
    for rs, raw_rs in zip(wire.resource_spans, raw.resource_spans, strict=True):
        rgroup = resource_group(rs)
        for ss, raw_ss in zip(rs.scope_spans, raw_rs.scope_spans, strict=True):
            group = scope_group(rgroup, ss)
            out.extend((group, span_header(len(body)), body) for body in raw_ss.spans)
    return out


def encode_requests(items: Sequence[SpanItem], max_bytes: int) -> list[tuple[bytes, int]]:
    """:func:`encode_request` in pieces of at most about ``max_bytes`` (a single larger span
    goes alone); ``[(request, span_count), ...]``."""
    if not items:
        return []
    sizes = [len(header) + len(body) for _, header, body in items]
    if sum(sizes) <= max_bytes:
        return [(encode_request(items), len(items))]
    out: list[tuple[bytes, int]] = []
    start = 0
    size = 0
    for i, span_size in enumerate(sizes):
        if size and size + span_size > max_bytes:
            out.append((encode_request(items[start:i]), i - start))
            start, size = i, 0
        size += span_size
    out.append((encode_request(items[start:]), len(items) - start))
    return out


# Reading requests fast -------------------------------------------------------------------------
#
# Two views of one serialized ExportTraceServiceRequest, both parsed by the C protobuf
# runtime: ``WireRequest`` is the OTLP schema except that span attributes are declared as
# ``map<string, AnyValue>`` (a map entry is encoded exactly like a KeyValue), so parsing
# validates the whole request and "does this span have attribute K" is a C-level lookup;
# ``RawRequest`` declares spans as ``bytes``, giving each span's serialized form as
# received, to forward without re-encoding it. Decoding a span into Python values happens
# only when a stage has work to do on it (or a hook wants it).


def _build_wire_types() -> tuple[type, type]:
    from google.protobuf import descriptor_pool, message_factory
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto as F
    from google.protobuf.descriptor_pb2 import FileDescriptorProto
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2

    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2, trace_pb2):
        pool.Add(FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    trace_file = FileDescriptorProto.FromString(trace_pb2.DESCRIPTOR.serialized_pb)
    common = ".opentelemetry.proto.common.v1."
    fdp = FileDescriptorProto(
        name="llmtap/service/wire.proto",
        package="llmtap.wire",
        syntax="proto3",
        dependency=[
            trace_file.name,
            "opentelemetry/proto/common/v1/common.proto",
            "opentelemetry/proto/resource/v1/resource.proto",
        ],
    )
    optional, repeated = F.LABEL_OPTIONAL, F.LABEL_REPEATED

    def add(
        message: Any, name: str, number: int, kind: int, label: int, type_name: str = ""
    ) -> None:
        field = message.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            field.type_name = type_name

    span = fdp.message_type.add()
    span.CopyFrom(next(m for m in trace_file.message_type if m.name == "Span"))
    del span.nested_type[:]  # Event, Link and SpanKind: the fields keep pointing to OTLP's
    del span.enum_type[:]
    for field in span.field:
        if field.name == "attributes":
            field.type_name = ".llmtap.wire.Span.AttributesEntry"
    entry = span.nested_type.add(name="AttributesEntry")
    entry.options.map_entry = True
    add(entry, "key", 1, F.TYPE_STRING, optional)
    add(entry, "value", 2, F.TYPE_MESSAGE, optional, common + "AnyValue")

    scope = fdp.message_type.add(name="ScopeSpans")
    add(scope, "scope", 1, F.TYPE_MESSAGE, optional, common + "InstrumentationScope")
    add(scope, "spans", 2, F.TYPE_MESSAGE, repeated, ".llmtap.wire.Span")
    add(scope, "schema_url", 3, F.TYPE_STRING, optional)
    resource = fdp.message_type.add(name="ResourceSpans")
    add(
        resource,
        "resource",
        1,
        F.TYPE_MESSAGE,
        optional,
        ".opentelemetry.proto.resource.v1.Resource",
    )
    add(resource, "scope_spans", 2, F.TYPE_MESSAGE, repeated, ".llmtap.wire.ScopeSpans")
    add(resource, "schema_url", 3, F.TYPE_STRING, optional)
    request = fdp.message_type.add(name="Request")
    add(request, "resource_spans", 1, F.TYPE_MESSAGE, repeated, ".llmtap.wire.ResourceSpans")

    raw_scope = fdp.message_type.add(name="RawScopeSpans")
    add(raw_scope, "spans", 2, F.TYPE_BYTES, repeated)
    raw_resource = fdp.message_type.add(name="RawResourceSpans")
    add(raw_resource, "scope_spans", 2, F.TYPE_MESSAGE, repeated, ".llmtap.wire.RawScopeSpans")
    raw_request = fdp.message_type.add(name="RawRequest")
    add(raw_request, "resource_spans", 1, F.TYPE_MESSAGE, repeated, ".llmtap.wire.RawResourceSpans")

    pool.Add(fdp)
    get = message_factory.GetMessageClass
    return (
        get(pool.FindMessageTypeByName("llmtap.wire.Request")),
        get(pool.FindMessageTypeByName("llmtap.wire.RawRequest")),
    )


WireRequest, RawRequest = _build_wire_types()


def resource_group(resource_spans: Any) -> ResourceGroup:
    """The group of a ``ResourceSpans`` (standard or ``WireRequest``'s)."""
    part = b""
    source = b""
    if resource_spans.HasField("resource"):
        source = resource_spans.resource.SerializeToString()
        part = _field(_TAG_1, source)
    if resource_spans.schema_url:
        part += _field(_TAG_3, resource_spans.schema_url.encode())
    return ResourceGroup(part, None, source)


def scope_group(resource: ResourceGroup, scope_spans: Any) -> ScopeGroup:
    scope = scope_spans.scope
    attributes = attributes_of(scope.attributes) if scope.attributes else None
    return ScopeGroup(resource, scope_part(scope_spans), scope.name, scope.version, attributes)


def resource_part(resource_spans: Any) -> bytes:
    """The fields of a ``ResourceSpans`` other than its spans, serialized."""
    return resource_group(resource_spans).part


def scope_part(scope_spans: Any) -> bytes:
    """The fields of a ``ScopeSpans`` other than its spans, serialized."""
    part = b""
    if scope_spans.HasField("scope"):
        part = _field(_TAG_1, scope_spans.scope.SerializeToString())
    if scope_spans.schema_url:
        part += _field(_TAG_3, scope_spans.schema_url.encode())
    return part
