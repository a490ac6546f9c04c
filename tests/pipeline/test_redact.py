"""The redaction stage on span records: JSON content, events, status, modes, allow-lists,
custom patterns, idempotence, fail-closed behaviour and config validation."""

from __future__ import annotations

import copy
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from llmtap.pipeline import detectors as detectors_module
from llmtap.pipeline import redact as redact_module
from llmtap.pipeline.redact import (
    REDACTED,
    REDACTION_COUNT,
    REDACTION_FAILED,
    CustomPattern,
    RedactionConfig,
    RedactionConfigError,
    RedactionStage,
    Redactor,
    redact_text,
    redaction_count_attribute,
)
from llmtap.pipeline.span import EventData, SpanData

sys.path.insert(0, str(Path(__file__).resolve().parent))

KEY_ENV = "LLMTAP_REDACTION_HASH_KEY"

MESSAGES = [
    {"role": "system", "parts": [{"type": "text", "content": "You are a support bot."}]},
    {
        "role": "user",
        "parts": [
            {
                "type": "text",
                "content": "I'm jane.doe@example.com, call me at +1 415-555-0132.\n"
                "My card is 4111 1111 1111 1111 and my IBAN DE89 3704 0044 0532 0130 00.",
            }
        ],
    },
    {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": "call_1",
                "name": "lookup_customer",
                "arguments": {"email": "jane.doe@example.com", "api_key": "Zx8fK2mQ9vL3pR7t"},
            }
        ],
    },
    {
        "role": "tool",
        "parts": [
            {
                "type": "tool_call_response",
                "id": "call_1",
                "response": {
                    "ip": "203.0.113.7",
                    "tier": 3,
                    "ok": True,
                    "tags": ["vip", "ssn 123-45-6789"],
                },
            }
        ],
    },
]


def make_span(**extra: Any) -> SpanData:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.id": "chatcmpl-AbC123",
        "gen_ai.usage.input_tokens": 42,
        "server.address": "10.0.0.5",
        "user.id": "jane.doe@example.com",
        "gen_ai.input.messages": json.dumps(MESSAGES),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": "Done, Jane."}],
                    "finish_reason": "stop",
                }
            ]
        ),
        "gen_ai.request.stop_sequences": ["STOP"],
        "app.recipients": ["ops@example.com", "team"],
    }
    attrs.update(extra)
    events = [
        EventData(
            "exception",
            {
                "exception.type": "PermissionError",
                "exception.message": "denied for 198.51.100.23 (key sk-proj-Ab3dEf6hIj9kLm2nOp5q)",
                "exception.stacktrace": 'File "app.py", line 3\n  send("jane.doe@example.com")',
            },
        )
    ]
    return SpanData(
        name="chat gpt-4o-mini",
        attributes=attrs,
        events=events,
        status_message="failed for jane.doe@example.com",
        is_error=True,
    )


def skeleton(node: Any) -> Any:
    """The JSON structure with every string replaced by "": what redaction must keep."""
    if isinstance(node, dict):
        return {k: skeleton(v) for k, v in node.items()}
    if isinstance(node, list):
        return [skeleton(v) for v in node]
    return "" if isinstance(node, str) else node


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


@pytest.fixture
def hash_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, "test-key-0123456789")
    return "test-key-0123456789"


# -- mask mode ----------------------------------------------------------------------------


def test_messages_json_round_trip() -> None:
    span = make_span()
    before = json.loads(span.attributes["gen_ai.input.messages"])
    RedactionStage().apply(span)
    raw = span.attributes["gen_ai.input.messages"]
    after = json.loads(raw)  # still valid JSON
    assert skeleton(after) == skeleton(before)  # same structure, same non-string leaves
    assert raw == json.dumps(after, ensure_ascii=False, separators=(",", ":"))  # compact
    text = after[1]["parts"][0]["content"]
    assert text == (
        "I'm <EMAIL>, call me at <PHONE>.\nMy card is <CREDIT_CARD> and my IBAN <IBAN>."
    )
    args = after[2]["parts"][0]["arguments"]
    assert args == {"email": "<EMAIL>", "api_key": "<SECRET>"}  # a credential by its key
    response = after[3]["parts"][0]["response"]
    assert response == {"ip": "<IP>", "tier": 3, "ok": True, "tags": ["vip", "ssn <SSN>"]}
    # untouched leaves are the same strings as before
    for old, new in zip(strings(before), strings(after), strict=True):
        assert new == old or new.count("<") > old.count("<")


def test_every_place_is_redacted_and_counted() -> None:
    span = make_span()
    RedactionStage().apply(span)
    a = span.attributes
    assert a["user.id"] == "<EMAIL>"
    assert a["app.recipients"] == ["<EMAIL>", "team"]
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Done, Jane."
    ev = span.events[0].attributes
    assert ev["exception.message"] == "denied for <IP> (key <SECRET>)"
    assert ev["exception.stacktrace"] == 'File "app.py", line 3\n  send("<EMAIL>")'
    assert ev["exception.type"] == "PermissionError"
    assert span.status_message == "failed for <EMAIL>"
    expected = {"email": 6, "phone": 1, "credit_card": 1, "iban": 1, "ip": 2, "ssn": 1,
                "secret": 2}  # fmt: skip
    for kind, n in expected.items():
        assert a[redaction_count_attribute(kind)] == n, kind
    assert a[REDACTION_COUNT] == sum(expected.values())


def test_allow_listed_keys_keep_ids_and_lose_free_text_pii() -> None:
    span = make_span(
        **{
            "gen_ai.request.custom_note": "mail ops@example.com",
            "session.id": "sess-20240101-4155550132",
            "gen_ai.conversation.id": "conv for jane.doe@example.com",
        }
    )
    RedactionStage().apply(span)
    a = span.attributes
    assert a["server.address"] == "10.0.0.5"  # on the default allow list: no IP detector
    assert a["session.id"] == "sess-20240101-4155550132"  # an id: no phone detector
    assert a["gen_ai.request.custom_note"] == "mail <EMAIL>"  # free text: scanned
    assert a["gen_ai.conversation.id"] == "conv for <EMAIL>"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.id"] == "chatcmpl-AbC123"
    cfg = RedactionConfig(allow_keys=["user.*", "exception.*"])
    span = make_span(**{"user.name": "jdoe +1 415-555-0132"})
    RedactionStage(cfg).apply(span)
    assert span.attributes["user.id"] == "<EMAIL>"  # an email is never a plain id
    assert span.attributes["user.name"] == "jdoe +1 415-555-0132"  # allow-listed: no phone
    assert span.attributes["server.address"] == "<IP>"  # replaced allow list
    message = span.events[0].attributes["exception.message"]
    assert message == "denied for 198.51.100.23 (key <SECRET>)"


def test_allow_values() -> None:
    cfg = RedactionConfig(allow_values=["Jane.Doe@example.com", "+1 (415) 555 0132"])
    span = make_span()
    RedactionStage(cfg).apply(span)
    content = json.loads(span.attributes["gen_ai.input.messages"])[1]["parts"][0]["content"]
    assert "jane.doe@example.com" in content  # case-insensitive
    assert "+1 415-555-0132" in content  # the same number written another way
    assert "<CREDIT_CARD>" in content
    assert span.attributes["user.id"] == "jane.doe@example.com"
    assert span.attributes[redaction_count_attribute("email")] == 1  # ops@example.com


def test_clean_span_gets_a_zero_count_and_nothing_else() -> None:
    raw = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi there"}]}])
    span = SpanData("chat", {"gen_ai.input.messages": raw, "gen_ai.request.model": "m"})
    RedactionStage().apply(span)
    assert span.attributes == {
        "gen_ai.input.messages": raw,  # not even re-serialized
        "gen_ai.request.model": "m",
        REDACTION_COUNT: 0,
    }


def test_disabled_stage_changes_nothing() -> None:
    span = make_span()
    before = copy.deepcopy(span)
    RedactionStage(RedactionConfig(enabled=False)).apply(span)
    assert span == before


def test_other_json_attributes_and_broken_json() -> None:
    span = SpanData(
        "execute_tool",
        {
            "gen_ai.tool.call.arguments": json.dumps({"to": "bob@example.com", "n": 2}),
            "gen_ai.tool.call.result": json.dumps("sent to bob@example.com"),
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "x"}]),
            "gen_ai.retrieval.documents": json.dumps([{"id": "d1", "content": "IP 10.1.2.3"}]),
            # cut short by a size cap: not JSON any more, still redacted as text
            "gen_ai.tool.definitions": '[{"name": "mail", "description": "to bob@example.com',
        },
    )
    RedactionStage().apply(span)
    a = span.attributes
    assert json.loads(a["gen_ai.tool.call.arguments"]) == {"to": "<EMAIL>", "n": 2}
    assert json.loads(a["gen_ai.tool.call.result"]) == "sent to <EMAIL>"
    assert json.loads(a["gen_ai.retrieval.documents"]) == [{"id": "d1", "content": "IP <IP>"}]
    assert a["gen_ai.tool.definitions"] == '[{"name": "mail", "description": "to <EMAIL>'


def test_json_fast_path_agrees_with_the_full_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether the raw-JSON pre-check skips a document or not, the result is the same."""
    from pii_corpus import build_corpus

    corpus = build_corpus()
    rng = random.Random(3)
    redactor = Redactor()
    docs = []
    for _ in range(600):
        texts = [rng.choice(corpus).text for _ in range(rng.randrange(1, 4))]
        doc: list[Any] = [{"role": "user", "parts": [{"type": "text", "content": t}
                                                     for t in texts]}]  # fmt: skip
        if rng.random() < 0.3:
            doc.append({"args": json.dumps({"q": texts[0], "password": "Pa55word!"})})
        docs.append(json.dumps(doc, ensure_ascii=rng.random() < 0.2))
    fast = [redactor.redact_json(raw, {}) for raw in docs]
    monkeypatch.setattr(redact_module, "_clean_json", lambda d, raw: False)
    full = [redactor.redact_json(raw, {}) for raw in docs]
    assert fast == full


# -- hash mode ----------------------------------------------------------------------------


def test_hash_mode_is_deterministic_keyed_and_normalized(hash_key: str) -> None:
    cfg = RedactionConfig(mode="hash")
    r = Redactor(cfg)
    a = r.redact_text("mail Jane@Example.com or jane@example.com, card 4111 1111 1111 1111")
    tokens = re.findall(r"<([A-Z_]+):([0-9a-f]+)>", a)
    assert [t for t, _ in tokens] == ["EMAIL", "EMAIL", "CREDIT_CARD"]
    assert tokens[0][1] == tokens[1][1]  # one address, one token
    assert all(len(h) == 12 for _, h in tokens)
    b = Redactor(cfg).redact_text("card 4111-1111-1111-1111")
    assert f"<CREDIT_CARD:{tokens[2][1]}>" in b  # normalized before hashing
    import hashlib
    import hmac

    expect = hmac.new(hash_key.encode(), b"jane@example.com", hashlib.sha256).hexdigest()[:12]
    assert tokens[0][1] == expect


def test_hash_depends_on_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "key-one")
    one = Redactor(RedactionConfig(mode="hash", hash_length=20)).redact_text("a@example.com")
    monkeypatch.setenv(KEY_ENV, "key-two")
    two = Redactor(RedactionConfig(mode="hash", hash_length=20)).redact_text("a@example.com")
    assert one != two and len(one) == len("<EMAIL:>") + 20


def test_hash_mode_without_a_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_REDACTION_KEY", raising=False)
    cfg = RedactionConfig(mode="hash", hash_key_env="MY_REDACTION_KEY")
    with pytest.raises(RedactionConfigError, match="MY_REDACTION_KEY"):
        RedactionStage(cfg)
    custom = RedactionConfig(custom=[CustomPattern("order", r"ORD-\d+", mode="hash")])
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(RedactionConfigError, match=KEY_ENV):
        RedactionStage(custom)


def test_hash_mode_on_a_span_is_idempotent(hash_key: str) -> None:
    stage = RedactionStage(RedactionConfig(mode="hash"))
    span = make_span()
    stage.apply(span)
    once = copy.deepcopy(span)
    stage.apply(span)
    assert span == once
    assert re.search(r"<EMAIL:[0-9a-f]{12}>", span.attributes["user.id"])


# -- drop mode ----------------------------------------------------------------------------


def test_drop_mode() -> None:
    span = make_span()
    RedactionStage(RedactionConfig(mode="drop")).apply(span)
    a = span.attributes
    assert "user.id" not in a  # a plain attribute with a finding goes
    assert "app.recipients" not in a  # so does a string array
    assert a["server.address"] == "10.0.0.5"  # allow-listed
    doc = json.loads(a["gen_ai.input.messages"])  # JSON content stays, valid
    assert skeleton(doc) == skeleton(MESSAGES)
    assert doc[1]["parts"][0]["content"] == REDACTED
    assert doc[2]["parts"][0]["arguments"] == {"email": REDACTED, "api_key": REDACTED}
    assert doc[0]["parts"][0]["content"] == "You are a support bot."
    ev = span.events[0].attributes
    assert "exception.message" not in ev and "exception.stacktrace" not in ev
    assert ev["exception.type"] == "PermissionError"
    assert span.status_message == REDACTED
    assert a[REDACTION_COUNT] == 14
    assert redact_text("mail a@example.com", RedactionConfig(mode="drop")) == REDACTED


# -- custom patterns ----------------------------------------------------------------------


def test_custom_patterns(hash_key: str) -> None:
    cfg = RedactionConfig(
        custom=[
            CustomPattern("employee_id", r"\bEMP-\d{6}\b"),
            {"name": "ticket", "regex": r"ticket (?P<value>T\d{4})", "mode": "hash"},  # type: ignore[list-item]
        ]
    )
    span = SpanData("x", {"note": "EMP-123456 opened ticket T1234 for a@example.com"})
    RedactionStage(cfg).apply(span)
    note = span.attributes["note"]
    assert re.fullmatch(r"<EMPLOYEE_ID> opened ticket <TICKET:[0-9a-f]{12}> for <EMAIL>", note)
    assert span.attributes["llmtap.redaction.employee_id"] == 1
    assert span.attributes["llmtap.redaction.ticket"] == 1
    assert span.attributes[REDACTION_COUNT] == 3


def test_custom_drop_mode_overrides_mask() -> None:
    cfg = RedactionConfig(custom=[CustomPattern("internal", r"PROJECT-X", mode="drop")])
    span = SpanData("x", {"a": "about PROJECT-X", "b": "mail a@example.com"})
    RedactionStage(cfg).apply(span)
    assert "a" not in span.attributes and span.attributes["b"] == "mail <EMAIL>"


# -- idempotence --------------------------------------------------------------------------


def test_apply_twice_equals_once() -> None:
    stage = RedactionStage()
    span = make_span()
    stage.apply(span)
    once = copy.deepcopy(span)
    stage.apply(span)
    assert span == once
    # another process (the service) with its own stage skips it too
    RedactionStage(RedactionConfig(mode="drop")).apply(span)
    assert span == once


def test_placeholders_are_not_recounted_by_a_fresh_stage() -> None:
    span = make_span()
    RedactionStage().apply(span)
    del span.attributes[REDACTION_COUNT]  # as if the marker were lost on the way
    for key in [k for k in span.attributes if k.startswith("llmtap.redaction.")]:
        del span.attributes[key]
    RedactionStage().apply(span)
    assert span.attributes[REDACTION_COUNT] == 0


# -- fail closed --------------------------------------------------------------------------


def test_failure_drops_content_and_marks_the_span(monkeypatch: pytest.MonkeyPatch) -> None:
    """A detector is made to raise by monkeypatching it (the only way to force a failure
    inside the stage); the span must come out with its content gone, never unredacted."""

    def boom(text: str, out: list) -> None:
        raise RuntimeError("detector bug")

    monkeypatch.setattr(detectors_module, "_find_emails", boom)
    span = make_span()
    RedactionStage().apply(span)
    a = span.attributes
    for key in ("gen_ai.input.messages", "gen_ai.output.messages", "user.id", "app.recipients"):
        assert key not in a
    assert a["gen_ai.request.model"] == "gpt-4o-mini"  # allow-listed, kept
    assert a["server.address"] == "10.0.0.5"
    assert a["gen_ai.usage.input_tokens"] == 42  # numbers are no content
    assert span.events[0].name == "exception" and span.events[0].attributes == {}
    assert span.status_message == REDACTED
    assert a[REDACTION_FAILED] is True
    assert REDACTION_COUNT not in a
    monkeypatch.undo()
    before = copy.deepcopy(span)
    RedactionStage().apply(span)  # a failed span is not redacted again
    assert span == before


def test_failure_in_a_custom_pattern_fails_closed() -> None:
    """A custom pattern object whose search raises stands in for any bug in the stage."""

    class Exploding:
        groupindex: dict = {}

        def finditer(self, text: str) -> Any:
            raise ValueError("bad pattern")

    stage = RedactionStage(RedactionConfig(custom=[CustomPattern("x", "x")]))
    stage.redactor.detectors.custom = [("X", Exploding())]  # type: ignore[list-item]
    span = make_span()
    stage.apply(span)
    assert span.attributes[REDACTION_FAILED] is True
    assert "gen_ai.input.messages" not in span.attributes


# -- config validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "scramble"}, r"redaction\.mode: expected one of mask, hash, drop, got 'scr"),
        ({"detectors": ["email", "passport"]}, r"unknown detector 'passport'"),
        ({"detectors": "email"}, r"redaction\.detectors: expected a list of strings"),
        ({"custom": [CustomPattern("order", "ORD-(\\d+")]},
         r"redaction\.custom\[0\]\.regex \(order\): 'ORD-\(\\\\d\+' does not compile"),
        ({"custom": [CustomPattern("anything", ".*")]}, r"matches the empty string"),
        ({"custom": [CustomPattern("my id", "x")]}, r"redaction\.custom\[0\]\.name"),
        ({"custom": [CustomPattern("email", "x")]}, r"already used \(a built-in type\)"),
        ({"custom": [CustomPattern("a", "x"), CustomPattern("A", "y")]}, r"another pattern"),
        ({"custom": [CustomPattern("a", "x", mode="shred")]}, r"custom\[0\]\.mode \(a\)"),
        ({"custom": [{"name": "a", "regex": "x", "colour": "red"}]}, r"unknown key\(s\) colour"),
        ({"custom": [{"name": "a"}]}, r"needs both name and regex"),
        ({"custom": ["ORD-\\d+"]}, r"expected a mapping with name and regex"),
        ({"hash_length": 2}, r"redaction\.hash_length: expected an integer from 4 to 64"),
        ({"allow_keys": "server.address"}, r"redaction\.allow_keys: expected a list"),
        ({"enabled": "yes"}, r"redaction\.enabled: expected true or false"),
        ({"hash_key_env": ""}, r"redaction\.hash_key_env"),
    ],
)  # fmt: skip
def test_config_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RedactionConfigError, match=message):
        RedactionConfig(**kwargs)


def test_config_defaults() -> None:
    cfg = RedactionConfig()
    assert cfg.enabled and cfg.mode == "mask" and cfg.hash_length == 12
    assert cfg.detectors == ["email", "phone", "credit_card", "ssn", "iban", "ip", "secrets"]
    assert "server.address" in cfg.allow_keys and "gen_ai.request.*" in cfg.allow_keys
    assert cfg.hash_key_env == KEY_ENV
    # a dict from YAML becomes a CustomPattern
    cfg = RedactionConfig(custom=[{"name": "order", "regex": r"ORD-\d+"}])  # type: ignore[list-item]
    assert cfg.custom == [CustomPattern("order", r"ORD-\d+", "")]


def test_redact_text_default_config() -> None:
    assert redact_text("mail a@example.com from 10.0.0.1") == "mail <EMAIL> from <IP>"
    only_email = RedactionConfig(detectors=["email"])
    assert redact_text("a@example.com 10.0.0.1", only_email) == "<EMAIL> 10.0.0.1"
