"""Check the llmtap semantic-convention registry and write its Markdown reference.

    python semconv/generate.py                  # check, then write semconv/docs/*.md
    python semconv/generate.py --check          # check, and fail if docs/ is not up to date
    python semconv/generate.py --upstream DIR   # also resolve refs in the upstream model/

The model follows the OpenTelemetry weaver registry format (``groups:`` of
``attribute_group``, ``span``, ``event`` and ``metric``); see README.md for why this script
exists beside weaver.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent
MODEL = ROOT / "model"
DOCS = ROOT / "docs"

SIMPLE_TYPES = frozenset(
    {"string", "int", "double", "boolean", "any", "string[]", "int[]", "double[]", "boolean[]"}
)
GROUP_TYPES = frozenset({"attribute_group", "span", "event", "metric", "resource", "entity"})
STABILITY = frozenset({"stable", "development", "alpha", "beta", "release_candidate"})
INSTRUMENTS = frozenset({"counter", "updowncounter", "gauge", "histogram"})
SPAN_KINDS = frozenset({"client", "server", "producer", "consumer", "internal"})
REQUIREMENT_LEVELS = frozenset({"required", "conditionally_required", "recommended", "opt_in"})
#: namespaces this registry may define attributes in
OWN_PREFIXES = ("llmtap.", "gen_ai.")
#: attributes of the general (non-GenAI) conventions that this registry refers to
GENERAL_ATTRIBUTES = {"error.type": "string", "server.address": "string", "server.port": "int"}

_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")
_TEMPLATE = re.compile(r"template\[(.+)\]\Z")
_GROUP_KEYS = {"id", "type", "brief", "note", "stability", "deprecated", "display_name"}
_GROUP_KEYS |= {"extends", "attributes", "annotations"}
_SPECIFIC_KEYS = {
    "attribute_group": set(),
    "span": {"span_kind", "events"},
    "event": {"name", "body"},
    "metric": {"metric_name", "instrument", "unit", "metric_requirement_level"},
    "resource": set(),
    "entity": {"name"},
}
_DEF_KEYS = {"id", "type", "brief", "note", "stability", "examples", "deprecated"}
_DEF_KEYS |= {"requirement_level", "sampling_relevant", "annotations", "tag", "role"}
_REF_KEYS = {"ref", "brief", "note", "examples", "requirement_level", "sampling_relevant"}
_REF_KEYS |= {"annotations", "tag", "role"}
_MEMBER_KEYS = {"id", "value", "brief", "note", "stability", "deprecated", "annotations"}


# the model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    id: str
    type: str  # a simple type, template[<simple type>], or "enum"
    brief: str
    group: str
    stability: str
    note: str = ""
    examples: tuple[Any, ...] = ()
    members: tuple[dict[str, Any], ...] = ()

    @property
    def is_template(self) -> bool:
        return self.type.startswith("template[")

    @property
    def value_type(self) -> str:
        """The type of the attribute's values (enum: that of its members)."""
        match = _TEMPLATE.match(self.type)
        if match:
            return match.group(1)
        if self.type == "enum":
            values = {type(m["value"]) for m in self.members}
            return "int" if values == {int} else "boolean" if values == {bool} else "string"
        return self.type

    @property
    def values(self) -> frozenset[Any]:
        return frozenset(m["value"] for m in self.members)


@dataclass
class Registry:
    files: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_files: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, Attribute] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [g for g in self.groups.values() if g.get("type") == kind]

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return {g["metric_name"]: g for g in self.of_type("metric") if "metric_name" in g}

    @property
    def imported_events(self) -> list[str]:
        return [e for doc in self.files.values() for e in doc.get("imports", {}).get("events", [])]

    def lookup(self, name: str) -> Attribute | None:
        """The attribute an emitted key ``name`` is, exactly or through a template."""
        found = self.attributes.get(name)
        if found is not None and not found.is_template:
            return found
        templates = [a for a in self.attributes.values() if a.is_template]
        for attr in sorted(templates, key=lambda a: -len(a.id)):
            if name.startswith(attr.id + ".") and len(name) > len(attr.id) + 1:
                return attr
        return None

    def attribute_refs(self, group_id: str, seen: frozenset[str] = frozenset()) -> list[str]:
        """Attribute names of a group, its own and inherited through ``extends``."""
        group = self.groups.get(group_id)
        if group is None or group_id in seen:
            return []
        names = self.attribute_refs(group.get("extends", ""), seen | {group_id})
        for entry in group.get("attributes") or ():
            name = entry.get("ref") or entry.get("id")
            if name and name not in names:
                names.append(name)
        return names


def load(model: Path = MODEL) -> Registry:
    files = {}
    for path in sorted(model.rglob("*.yaml")):
        files[path.relative_to(model).as_posix()] = yaml.safe_load(path.read_text("utf-8")) or {}
    reg = Registry(files)
    for name, doc in files.items():
        for group in doc.get("groups") or ():
            _add_group(reg, name, group)
    return reg


def _add_group(reg: Registry, file: str, group: Any) -> None:
    if not isinstance(group, dict) or not isinstance(group.get("id"), str):
        reg.problems.append(f"{file}: a group without an id: {group!r}")
        return
    gid = group["id"]
    if gid in reg.groups:
        reg.problems.append(f"{file}: group {gid!r} is also defined in {reg.group_files[gid]}")
        return
    reg.groups[gid] = group
    reg.group_files[gid] = file
    for entry in group.get("attributes") or ():
        if isinstance(entry, dict) and "id" in entry:
            _add_attribute(reg, gid, entry)


def _add_attribute(reg: Registry, gid: str, entry: dict[str, Any]) -> None:
    aid = entry["id"]
    if aid in reg.attributes:
        reg.problems.append(
            f"attribute {aid!r} is defined in {reg.attributes[aid].group} and {gid}"
        )
        return
    raw = entry.get("type")
    members: tuple[dict[str, Any], ...] = ()
    if isinstance(raw, dict):
        members = tuple(raw.get("members") or ())
        raw = "enum"
    examples = entry.get("examples", [])
    if not isinstance(examples, list):
        examples = [examples]
    reg.attributes[aid] = Attribute(
        id=aid,
        type=str(raw),
        brief=str(entry.get("brief", "")).strip(),
        group=gid,
        stability=str(entry.get("stability", "")),
        note=str(entry.get("note", "")).strip(),
        examples=tuple(examples),
        members=members,
    )


# checks -------------------------------------------------------------------------------------

_SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int,),
    "double": (float, int),
    "boolean": (bool,),
}


def value_matches(kind: str, value: Any) -> bool:
    """Whether ``value`` is a valid value of registry type ``kind`` (a simple type)."""
    if kind == "any":
        return value is not None
    if kind.endswith("[]"):
        return isinstance(value, list | tuple) and all(value_matches(kind[:-2], v) for v in value)
    if kind != "boolean" and isinstance(value, bool):
        return False
    return isinstance(value, _SCALARS[kind])


def check(reg: Registry, upstream: Registry | None = None) -> list[str]:
    """Every rule of the model this script can check. With ``upstream`` (the OpenTelemetry
    model this registry depends on), refs and imports are resolved there too."""
    problems = list(reg.problems)
    for file, doc in reg.files.items():
        problems += _check_file(file, doc, upstream)
    for gid, group in reg.groups.items():
        problems += [f"group {gid}: {p}" for p in _check_group(reg, group, upstream)]
    for attr in reg.attributes.values():
        problems += [f"attribute {attr.id}: {p}" for p in _check_attribute(attr)]
    problems += _check_unique(reg, upstream)
    return problems


def _check_file(file: str, doc: Any, upstream: Registry | None) -> Iterator[str]:
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        yield f"{file}: expected a mapping with a `groups:` list"
        return
    extra = set(doc) - {"groups", "imports"}
    if extra:
        yield f"{file}: unknown top-level keys {sorted(extra)}"
    imports = doc.get("imports") or {}
    for kind, names in imports.items():
        if kind not in ("metrics", "events", "entities", "spans", "attribute_groups"):
            yield f"{file}: imports.{kind} is not an import kind"
        elif not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            yield f"{file}: imports.{kind} must be a list of names"
        elif kind == "events" and upstream is not None:
            known = {g.get("name") for g in upstream.of_type("event")}
            for name in sorted(set(names) - known):
                yield f"{file}: imports.events: {name!r} is not an upstream event"


def _check_group(reg: Registry, group: dict[str, Any], upstream: Registry | None):
    kind = group.get("type")
    if kind not in GROUP_TYPES:
        yield f"type {kind!r} is not one of {sorted(GROUP_TYPES)}"
        return
    unknown = set(group) - _GROUP_KEYS - _SPECIFIC_KEYS[kind]
    if unknown:
        yield f"keys not allowed in a {kind} group: {sorted(unknown)}"
    if not _text(group.get("brief")):
        yield "no brief"
    if kind != "attribute_group" and group.get("stability") not in STABILITY:
        yield f"stability {group.get('stability')!r} is not one of {sorted(STABILITY)}"
    if kind == "attribute_group" and "stability" in group and group["stability"] not in STABILITY:
        yield f"stability {group['stability']!r} is not one of {sorted(STABILITY)}"
    if "extends" in group and group["extends"] not in reg.groups:
        yield f"extends unknown group {group['extends']!r}"
    yield from _check_specific(group, kind)
    for entry in group.get("attributes") or ():
        yield from _check_entry(reg, entry, upstream)


def _check_specific(group: dict[str, Any], kind: str) -> Iterator[str]:
    if kind == "metric":
        name = group.get("metric_name")
        if not isinstance(name, str) or not _NAME.match(name):
            yield f"metric_name {name!r} is not a dotted lower-case name"
        if group.get("instrument") not in INSTRUMENTS:
            yield f"instrument {group.get('instrument')!r} is not one of {sorted(INSTRUMENTS)}"
        if not isinstance(group.get("unit"), str) or not group["unit"]:
            yield "no unit"
    elif kind == "span" and group.get("span_kind") not in SPAN_KINDS:
        yield f"span_kind {group.get('span_kind')!r} is not one of {sorted(SPAN_KINDS)}"
    elif kind == "event" and not isinstance(group.get("name"), str):
        yield "an event group needs a name"
    if kind == "attribute_group" and not (group.get("attributes") or group.get("extends")):
        yield "an attribute group needs attributes or extends"


def _check_entry(reg: Registry, entry: Any, upstream: Registry | None) -> Iterator[str]:
    if not isinstance(entry, dict) or ("id" in entry) == ("ref" in entry):
        yield f"an attribute entry needs exactly one of id and ref: {entry!r}"
        return
    yield from _check_requirement(entry.get("ref") or entry["id"], entry)
    if "id" in entry:
        unknown = set(entry) - _DEF_KEYS
        if unknown:
            yield f"{entry['id']}: keys not allowed in a definition: {sorted(unknown)}"
        return
    ref = entry["ref"]
    unknown = set(entry) - _REF_KEYS
    if unknown:
        yield f"ref {ref}: keys not allowed beside a ref: {sorted(unknown)}"
    known = ref in reg.attributes or ref in GENERAL_ATTRIBUTES
    upstream_known = upstream is not None and ref in upstream.attributes
    checkable = upstream is not None or ref.startswith("llmtap.")
    if not known and not upstream_known and checkable:
        yield f"ref {ref!r} is not a registered attribute"


def _check_requirement(name: str, entry: dict[str, Any]) -> Iterator[str]:
    level = entry.get("requirement_level", "recommended")
    if isinstance(level, dict):
        if len(level) != 1 or not set(level) <= {"conditionally_required", "recommended"}:
            yield f"{name}: requirement_level {level!r} is not valid"
        elif not _text(next(iter(level.values()))):
            yield f"{name}: requirement_level {level!r} needs a condition"
    elif level not in REQUIREMENT_LEVELS or level == "conditionally_required":
        yield f"{name}: requirement_level {level!r} is not valid"


def _check_attribute(attr: Attribute) -> Iterator[str]:
    if not _NAME.match(attr.id):
        yield "not a dotted lower-case name"
    if not attr.id.startswith(OWN_PREFIXES):
        yield f"outside this registry's namespaces {OWN_PREFIXES}"
    if not attr.brief:
        yield "no brief"
    if attr.stability not in STABILITY:
        yield f"stability {attr.stability!r} is not one of {sorted(STABILITY)}"
    if attr.type == "enum":
        yield from _check_members(attr)
    else:
        match = _TEMPLATE.match(attr.type)
        base = match.group(1) if match else attr.type
        if base not in SIMPLE_TYPES:
            yield f"type {attr.type!r} is not a registry type"
            return
    yield from _check_examples(attr)


def _check_members(attr: Attribute) -> Iterator[str]:
    if not attr.members:
        yield "an enum needs members"
        return
    ids, values = set(), set()
    for member in attr.members:
        if not isinstance(member, dict) or "id" not in member or "value" not in member:
            yield f"member {member!r} needs an id and a value"
            continue
        unknown = set(member) - _MEMBER_KEYS
        if unknown:
            yield f"member {member['id']}: keys not allowed: {sorted(unknown)}"
        if member.get("stability") not in STABILITY:
            yield f"member {member['id']}: stability {member.get('stability')!r} is not valid"
        if member["id"] in ids or member["value"] in values:
            yield f"member {member['id']}: id or value used twice"
        ids.add(member["id"])
        values.add(member["value"])
    if len({type(v) for v in values}) > 1:
        yield "members of mixed value types"


def _check_examples(attr: Attribute) -> Iterator[str]:
    kind = attr.value_type
    if not attr.examples:
        if kind in ("string", "string[]") and attr.type != "enum":
            yield "string attributes need examples"
        return
    for example in attr.examples:
        if attr.is_template:
            if not (isinstance(example, str) and example.startswith(attr.id + ".")):
                yield f"template example {example!r} is not `{attr.id}.<key>=<value>`"
        elif not value_matches(kind, example):
            yield f"example {example!r} is not of type {kind}"


def _check_unique(reg: Registry, upstream: Registry | None) -> Iterator[str]:
    seen: dict[str, str] = {}
    for group in reg.of_type("metric"):
        name = group.get("metric_name")
        if name in seen:
            yield f"metric {name!r} is defined by {seen[name]} and {group['id']}"
        seen[name] = group["id"]
    for name in seen:
        if name in reg.attributes:
            yield f"{name!r} is both a metric and an attribute"
    if upstream is not None:
        for name in sorted(set(reg.attributes) & set(upstream.attributes)):
            yield f"attribute {name!r} is already defined upstream"
        for name in sorted(set(seen) & set(upstream.metrics)):
            yield f"metric {name!r} is already defined upstream"


def policy(reg: Registry) -> list[str]:
    """Naming advice of the OpenTelemetry conventions (weaver policies, not syntax): an
    attribute name must not also be the namespace of another attribute."""
    plain = sorted(a.id for a in reg.attributes.values() if not a.is_template)
    return [
        f"attribute {name!r} is also the namespace of {longer!r}"
        for i, name in enumerate(plain)
        for longer in plain[i + 1 :]
        if longer.startswith(name + ".")
    ]


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# Markdown -----------------------------------------------------------------------------------

#: the type column of attributes defined by the OpenTelemetry conventions
UPSTREAM = "[semconv](https://opentelemetry.io/docs/specs/semconv/registry/attributes/)"
HEADER = "<!-- Generated by semconv/generate.py from semconv/model; do not edit by hand. -->\n"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _examples(attr: Attribute) -> str:
    shown = [f"`{e}`" if isinstance(e, str) else f"`{_literal(e)}`" for e in attr.examples[:3]]
    return "; ".join(shown)


def _literal(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def _display_name(attr: Attribute) -> str:
    return f"`{attr.id}.<key>`" if attr.is_template else f"`{attr.id}`"


def _display_type(attr: Attribute) -> str:
    return f"{attr.value_type} (enum)" if attr.type == "enum" else attr.type


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _attribute_notes(attrs: Iterable[Attribute]) -> list[str]:
    lines = []
    for attr in attrs:
        if attr.note:
            lines.append(f"- {_display_name(attr)}: {' '.join(attr.note.split())}")
        if attr.members:
            values = ", ".join(
                f"`{m['value']}` ({_cell(m.get('brief', ''))})" for m in attr.members
            )
            lines.append(f"- {_display_name(attr)} values: {values}")
    return ["", *lines] if lines else []


def render_attributes(reg: Registry) -> str:
    out = [HEADER, "# llmtap attributes", ""]
    out.append("Attributes llmtap emits beyond the GenAI semantic conventions v1.41.")
    for group in reg.of_type("attribute_group"):
        attrs = [a for a in reg.attributes.values() if a.group == group["id"]]
        if not attrs:
            continue
        out += ["", f"## {group.get('display_name', group['id'])}", ""]
        out.append(_cell(group["brief"]))
        if group.get("note"):
            out += ["", _cell(group["note"])]
        out.append("")
        rows = [
            (_display_name(a), _display_type(a), a.brief, _examples(a), a.stability) for a in attrs
        ]
        out += _table(("Attribute", "Type", "Description", "Examples", "Stability"), rows)
        out += _attribute_notes(attrs)
    return "\n".join(out) + "\n"


def _ref_rows(reg: Registry, group_id: str) -> list[tuple]:
    rows = []
    entries = {
        (e.get("ref") or e.get("id")): e for e in reg.groups[group_id].get("attributes") or ()
    }
    for name in reg.attribute_refs(group_id):
        entry = entries.get(name, {})
        attr = reg.attributes.get(name)
        kind = _display_type(attr) if attr else UPSTREAM
        brief = entry.get("brief") or entry.get("note") or (attr.brief if attr else "")
        level = entry.get("requirement_level", "recommended")
        if isinstance(level, dict):
            (key, condition), *_ = level.items()
            level = f"{key}: {condition}"
        shown = _display_name(attr) if attr else f"`{name}`"
        rows.append((shown, kind, level, brief))
    return rows


def _ref_table(reg: Registry, group_id: str) -> list[str]:
    rows = _ref_rows(reg, group_id)
    if not rows:
        return ["No attributes."]
    return _table(("Attribute", "Type", "Requirement level", "Description"), rows)


def render_metrics(reg: Registry) -> str:
    out = [HEADER, "# llmtap metrics", ""]
    out.append("Metrics llmtap records beyond the GenAI semantic conventions v1.41.")
    rows = [
        (f"`{m['metric_name']}`", m["instrument"], f"`{m['unit']}`", m["brief"])
        for m in reg.of_type("metric")
    ]
    out += ["", *_table(("Metric", "Instrument", "Unit", "Description"), rows)]
    for metric in reg.of_type("metric"):
        out += ["", f"## `{metric['metric_name']}`", "", _cell(metric["brief"])]
        if metric.get("note"):
            out += ["", _cell(metric["note"])]
        facts = f"Instrument: {metric['instrument']}; unit: `{metric['unit']}`; "
        out += ["", facts + f"stability: {metric['stability']}.", ""]
        out += _ref_table(reg, metric["id"])
    return "\n".join(out) + "\n"


def render_events(reg: Registry) -> str:
    out = [HEADER, "# llmtap attributes on events and spans", ""]
    events = ", ".join(f"`{e}`" for e in reg.imported_events)
    out.append(f"GenAI events llmtap emits (from semconv v1.41): {events}.")
    groups = [g for g in reg.of_type("attribute_group") if not g["id"].startswith("registry.")]
    for group in groups:
        out += ["", f"## `{group['id']}`", "", _cell(group["brief"])]
        if group.get("note"):
            out += ["", _cell(group["note"])]
        out += ["", *_ref_table(reg, group["id"])]
    for span in reg.of_type("span"):
        out += ["", f"## Span `{span['id']}`", "", _cell(span["brief"])]
        if span.get("note"):
            out += ["", _cell(span["note"])]
        out += ["", f"Span kind: {span['span_kind']}; stability: {span['stability']}.", ""]
        out += _ref_table(reg, span["id"])
    return "\n".join(out) + "\n"


def render(reg: Registry) -> dict[str, str]:
    """File name under docs/ -> content."""
    return {
        "attributes.md": render_attributes(reg),
        "metrics.md": render_metrics(reg),
        "events.md": render_events(reg),
    }


# main ---------------------------------------------------------------------------------------


def stale_docs(rendered: dict[str, str], docs: Path = DOCS) -> list[str]:
    """Files under ``docs`` that differ from ``rendered`` (or are missing, or extra)."""
    stale = [n for n, text in rendered.items() if _read(docs / n) != text]
    extra = [p.name for p in docs.glob("*.md") if p.name not in rendered]
    return sorted(stale + extra)


def _read(path: Path) -> str | None:
    return path.read_text("utf-8") if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/ is not up to date")
    parser.add_argument("--upstream", type=Path, help="the OpenTelemetry semconv model/ directory")
    args = parser.parse_args(argv)
    reg = load()
    problems = check(reg, load(args.upstream) if args.upstream else None)
    for problem in problems:
        print(f"semconv: {problem}", file=sys.stderr)
    for advice in policy(reg):
        print(f"semconv: warning: {advice}", file=sys.stderr)
    if problems:
        return 1
    rendered = render(reg)
    if args.check:
        stale = stale_docs(rendered)
        for name in stale:
            print(f"semconv: docs/{name} is not up to date (run semconv/generate.py)")
        return 1 if stale else 0
    DOCS.mkdir(exist_ok=True)
    for name, text in rendered.items():
        (DOCS / name).write_text(text, "utf-8")
    print(f"semconv: wrote {', '.join(sorted(rendered))} to {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
