"""The redaction stage on every string a span record carries, beyond span/event attribute
values and the status message: the span name, event names, link attributes, the resource,
the instrumentation scope, values nested in maps and mixed arrays, bytes, attribute keys and
free text under allow-listed keys. Each place gets an email, a card number and an API key."""

from __future__ import annotations

from typing import Any

import pytest

from llmtap.pipeline.redact import (
    REDACTED,
    REDACTION_COUNT,
    REDACTION_FAILED,
    RedactionConfig,
    RedactionStage,
    Redactor,
)
from llmtap.pipeline.span import EventData, LinkData, SpanData

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
API_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5q"
LEAKS = [
    (EMAIL, "<EMAIL>", "email"),
    (CARD, "<CREDIT_CARD>", "credit_card"),
    (API_KEY, "<SECRET>", "secret"),
]


def span(**fields: Any) -> SpanData:
    data = SpanData(name=fields.pop("name", "chat gpt-4o-mini"), attributes={"n": 1})
    for key, value in fields.items():
        setattr(data, key, value)
    return data


def redacted(data: SpanData, config: RedactionConfig | None = None) -> SpanData:
    RedactionStage(config).apply(data)
    return data


def counted(data: SpanData, kind: str, n: int = 1) -> None:
    assert data.attributes[REDACTION_COUNT] == n
    assert data.attributes[f"llmtap.redaction.{kind}"] == n


@pytest.mark.parametrize(("secret", "token", "kind"), LEAKS)
def test_span_name(secret: str, token: str, kind: str) -> None:
    data = redacted(span(name=f"lookup {secret}"))
    assert data.name == f"lookup {token}"
    counted(data, kind)


@pytest.mark.parametrize(("secret", "token", "kind"), LEAKS)
def test_event_name(secret: str, token: str, kind: str) -> None:
    data = redacted(span(events=[EventData(f"sent to {secret}", {"ok": True})]))
    assert data.events[0].name == f"sent to {token}"
    assert data.events[0].attributes == {"ok": True}
    counted(data, kind)


@pytest.mark.parametrize(("secret", "token", "kind"), LEAKS)
def test_link_attributes(secret: str, token: str, kind: str) -> None:
    data = redacted(span(links=[LinkData({"why": f"from {secret}", "n": 2})]))
    assert data.links[0].attributes == {"why": f"from {token}", "n": 2}
    counted(data, kind)


@pytest.mark.parametrize(("secret", "token", "kind"), LEAKS)
def test_resource_attributes_replaced_not_mutated(secret: str, token: str, kind: str) -> None:
    resource = {"service.name": "shop", "host.owner": f"owner {secret}"}
    data = redacted(span(resource=resource))
    assert data.resource == {"service.name": "shop", "host.owner": f"owner {token}"}
    assert resource["host.owner"] == f"owner {secret}"  # shared: never changed in place
    counted(data, kind)


@pytest.mark.parametrize(("secret", "token", "kind"), LEAKS)
def test_scope_name_version_and_attributes(secret: str, token: str, kind: str) -> None:
    data = redacted(
        span(
            scope_name=f"tracer {secret}",
            scope_version=f"build: {secret}",
            scope_attributes={"owner": secret},
        )
    )
    assert (data.scope_name, data.scope_version) == (f"tracer {token}", f"build: {token}")
    assert data.scope_attributes == {"owner": token}
    counted(data, kind, 3)


@pytest.mark.parametrize(("secret", "token", "kind"), LEAKS)
def test_values_inside_maps_and_mixed_arrays(secret: str, token: str, kind: str) -> None:
    data = span()
    data.attributes["app.map"] = {"who": {"contact": secret, "n": 3}, "list": [secret, 1]}
    data.attributes["app.mixed"] = (1, f"to {secret}", True, None)
    redacted(data)
    assert data.attributes["app.map"] == {"who": {"contact": token, "n": 3}, "list": [token, 1]}
    assert data.attributes["app.mixed"] == (1, f"to {token}", True, None)
    counted(data, kind, 3)


@pytest.mark.parametrize(("secret", "token", "kind"), LEAKS)
def test_bytes_that_decode_as_utf8(secret: str, token: str, kind: str) -> None:
    data = span()
    data.attributes["app.blob"] = f"to {secret}".encode()
    binary = b"\xff\xfe" + secret.encode()  # not UTF-8: nothing a detector reads
    data.attributes["app.binary"] = binary
    redacted(data)
    assert data.attributes["app.blob"] == f"to {token}".encode()
    assert data.attributes["app.binary"] is binary
    counted(data, kind)


@pytest.mark.parametrize(("secret", "token", "kind"), LEAKS)
def test_attribute_keys(secret: str, token: str, kind: str) -> None:
    data = span(events=[EventData("e", {f"ev:{secret}": "v"})])
    data.attributes[f"app:{secret}"] = "kept"
    data.attributes["app.map"] = {secret: 1}
    redacted(data)
    assert data.attributes[f"app:{token}"] == "kept"  # the key text is redacted, value kept
    assert not any(secret in k for k in data.attributes)
    assert data.attributes["app.map"] == {token: 1}
    assert data.events[0].attributes == {f"ev:{token}": "v"}
    counted(data, kind, 3)


@pytest.mark.parametrize(
    "key",
    ["session.id", "gen_ai.conversation.id", "server.address", "error.type", "gen_ai.request.x"],
)
@pytest.mark.parametrize(("secret", "token", "kind"), LEAKS)
def test_free_text_under_allow_listed_keys(key: str, secret: str, token: str, kind: str) -> None:
    data = span()
    data.attributes[key] = f"about {secret}"
    redacted(data)
    assert data.attributes[key] == f"about {token}"
    counted(data, kind)


def test_allow_listed_ids_stay_machine_readable() -> None:
    ids = {
        "session.id": "sess-20240101-4155550132",
        "gen_ai.conversation.id": "550e8400-e29b-41d4-a716-446655440000",
        "server.address": "10.0.0.5",
        "error.type": "RateLimitError",
        "gen_ai.request.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.request.seed": 4155550132,
        "gen_ai.request.stop_sequences": ("STOP", "###"),
        "gen_ai.response.id": "chatcmpl-9aBcDeFgHiJkLmNoPqRsTuVwXyZ",
    }
    data = span()
    data.attributes.update(ids)
    redacted(data)
    assert {k: data.attributes[k] for k in ids} == ids
    assert data.attributes[REDACTION_COUNT] == 0


def test_drop_mode_removes_what_it_cannot_keep(monkeypatch: pytest.MonkeyPatch) -> None:
    data = span(
        name=f"lookup {EMAIL}",
        events=[EventData(f"to {EMAIL}", {})],
        links=[LinkData({"why": EMAIL, "n": 2})],
        resource={"service.name": "shop", "owner": EMAIL},
        scope_name=f"t {EMAIL}",
        scope_attributes={"owner": EMAIL},
    )
    data.attributes.update(
        {f"app:{EMAIL}": "v", "app.map": {"a": EMAIL}, "app.blob": EMAIL.encode(), "keep": "x"}
    )
    redacted(data, RedactionConfig(mode="drop"))
    assert data.name == REDACTED and data.events[0].name == REDACTED
    assert data.scope_name == REDACTED
    assert data.links[0].attributes == {"n": 2}
    assert data.resource == {"service.name": "shop"}
    assert data.scope_attributes == {}
    assert not any(k.startswith("app") for k in data.attributes)
    assert data.attributes["keep"] == "x"
    counted(data, "email", 9)


def test_hash_mode_tokens_in_keys_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTAP_REDACTION_HASH_KEY", "k" * 16)
    data = span(name=f"lookup {EMAIL}")
    data.attributes[f"app:{EMAIL}"] = "v"
    redacted(data, RedactionConfig(mode="hash"))
    (key,) = [k for k in data.attributes if k.startswith("app:")]
    assert key.startswith("app:<EMAIL:") and data.name.startswith("lookup <EMAIL:")
    assert key[4:] == data.name[7:]  # one value, one token


def test_clean_span_keeps_shared_objects_and_counts_zero() -> None:
    resource = {"service.name": "shop", "service.version": "1.2.3"}
    scope_attributes = {"team": "search"}
    stage = RedactionStage()
    for _ in range(3):
        data = span(
            resource=resource,
            scope_name="opentelemetry.instrumentation.openai",
            scope_version="0.1.0",
            scope_attributes=scope_attributes,
        )
        stage.apply(data)
        assert data.resource is resource and data.scope_attributes is scope_attributes
        assert data.attributes == {"n": 1, REDACTION_COUNT: 0}


def test_shared_resource_findings_count_on_every_span() -> None:
    resource = {"owner": EMAIL}
    stage = RedactionStage()
    outs = []
    for _ in range(2):
        data = span(resource=resource)
        stage.apply(data)
        counted(data, "email")
        outs.append(data.resource)
    assert outs[0] is outs[1] == {"owner": "<EMAIL>"}  # redacted once, shared again


def test_redaction_is_idempotent_on_the_new_places() -> None:
    data = span(
        name=f"n {EMAIL}",
        resource={"o": EMAIL},
        links=[LinkData({"w": CARD})],
        scope_name=f"s {API_KEY}",
    )
    data.attributes[f"k:{EMAIL}"] = {"m": [EMAIL, 1]}
    redacted(data)
    first = (data.name, dict(data.resource), data.links[0].attributes, data.scope_name)
    attrs = dict(data.attributes)
    stage = RedactionStage()
    stage.trust_marks(False)  # redo on the marked span: nothing more to find
    stage.apply(data)
    assert (data.name, dict(data.resource), data.links[0].attributes, data.scope_name) == first
    assert data.attributes == attrs


def test_fail_closed_covers_the_new_places(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = RedactionStage()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("detector bug")

    monkeypatch.setattr(stage.redactor, "plan", broken)
    data = span(
        name=f"n {EMAIL}",
        links=[LinkData({"w": EMAIL})],
        resource={"service.name": "shop", "owner": EMAIL, "pid": 7},
        scope_attributes={"o": EMAIL},
    )
    stage.apply(data)
    assert data.attributes[REDACTION_FAILED] is True
    assert data.name == REDACTED and data.links[0].attributes == {}
    assert data.resource == {"pid": 7} and data.scope_attributes == {}


def test_redact_value_keeps_identity_when_clean() -> None:
    r = Redactor()
    value = {"a": [1, "plain", b"bytes"], "b": (True, None)}
    assert r.redact_value(value, {}) == (value, False)
    assert r.redact_value(value, {})[0] is value
