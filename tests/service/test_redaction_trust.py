"""Redaction marks must be earned: the service skips re-redacting a span only when its
``llmtap.redaction.seal`` verifies under the shared key, or when the request came with a
trusted sender's token; a bare or tampered mark is ignored and the span is redacted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from llmtap.pipeline.redact import RedactionConfigError, RedactionStage
from llmtap.pipeline.redaction_seal import SEAL, sealed
from llmtap.pipeline.span import SpanData
from llmtap.service import ServiceConfig
from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    SEAL_KEY,
    grpc_call,
    grpc_export,
    http_post,
    http_url,
    running_service,
    seal_spans,
    simple_spans,
    span_request,
)

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
API_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5q"
LEAKS = {"note": f"mail {EMAIL}", "card": f"card {CARD}", "key": f"key {API_KEY}"}
REDACTED = {"note": "mail <EMAIL>", "card": "card <CREDIT_CARD>", "key": "key <SECRET>"}
SENDER_TOKEN = "checkout-app-token-0123456789"
AUTH_TOKEN = "anyone-with-this-token-0123456789"


def marked(seed: int, n: int = 1) -> list[dict[str, Any]]:
    """Spans full of PII claiming to be redacted already (``llmtap.redaction.count=0``)."""
    return simple_spans(n, seed, **LEAKS, **{"llmtap.redaction.count": 0})


def content(span: Any) -> dict[str, Any]:
    return {k: span.attributes[k] for k in LEAKS}


def send(spans: list[dict[str, Any]], tmp_path: Path, **service: Any) -> tuple[list, dict]:
    with OtlpReceiver() as rx, running_service(tmp_path, [grpc_export(rx)], **service) as app:
        grpc_call(app, span_request(spans).SerializeToString())
        got = rx.wait_for_spans(len(spans))
        return got, app.counters()


@pytest.fixture
def seal_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LLMTAP_REDACTION_KEY", SEAL_KEY)
    return SEAL_KEY


def test_a_forged_mark_from_an_unauthenticated_sender_is_redacted(tmp_path: Path) -> None:
    (span,), counters = send(marked(61), tmp_path)
    assert content(span) == REDACTED
    assert span.attributes["llmtap.redaction.count"] == 3
    assert counters["processed"] == 1


def test_a_valid_seal_is_forwarded_as_received(tmp_path: Path, seal_key: str) -> None:
    spans = marked(62, 3)
    seal_spans(spans, seal_key)
    got, counters = send(spans, tmp_path)
    for span in got:
        assert content(span) == LEAKS  # the sealed span is taken as redacted
        assert span.attributes[SEAL] == spans[span.attributes["i"]]["attributes"][SEAL]
    assert counters["processed"] == 0  # the cheap path: never decoded


@pytest.mark.parametrize("tamper", ["seal", "span_id", "count", "no_key"])
def test_a_tampered_seal_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tamper: str
) -> None:
    spans = marked(63, 2)
    seal_spans(spans, SEAL_KEY)
    attrs = spans[0]["attributes"]
    if tamper == "seal":
        attrs[SEAL] = attrs[SEAL][:-1] + ("0" if attrs[SEAL][-1] != "0" else "1")
    elif tamper == "span_id":  # a valid seal copied onto another span
        attrs[SEAL] = spans[1]["attributes"][SEAL]
    elif tamper == "count":
        attrs["llmtap.redaction.count"] = 5
    if tamper != "no_key":  # else the service has no key: it cannot verify any seal
        monkeypatch.setenv("LLMTAP_REDACTION_KEY", SEAL_KEY)
    got, counters = send(spans, tmp_path)
    by_i = {s.attributes["i"]: s for s in got}
    assert content(by_i[0]) == REDACTED
    if tamper == "no_key":
        assert content(by_i[1]) == REDACTED
        assert SEAL not in by_i[0].attributes  # a seal the service cannot renew is removed
    else:
        assert content(by_i[1]) == LEAKS  # its own valid seal
        assert counters["processed"] == 1


def test_trust_upstream_false_redacts_even_sealed_spans(tmp_path: Path, seal_key: str) -> None:
    spans = marked(64)
    seal_spans(spans, seal_key)
    (span,), counters = send(spans, tmp_path, trust_upstream=False)
    assert content(span) == REDACTED
    assert counters["processed"] == 1


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_only_a_trusted_senders_token_makes_its_marks_count(tmp_path: Path, transport: str) -> None:
    senders = [{"name": "checkout", "token": SENDER_TOKEN}]
    with (
        OtlpReceiver() as rx,
        running_service(
            tmp_path, [grpc_export(rx)], auth_token=AUTH_TOKEN, trusted_senders=senders
        ) as app,
    ):
        for seed, token in ((65, SENDER_TOKEN), (66, AUTH_TOKEN)):
            body = span_request(marked(seed)).SerializeToString()
            if transport == "grpc":
                grpc_call(app, body, metadata=[("authorization", f"Bearer {token}")])
            else:
                headers = {
                    "Content-Type": "application/x-protobuf",
                    "Authorization": f"Bearer {token}",
                }
                assert http_post(http_url(app), body, headers)[0] == 200
        got = rx.wait_for_spans(2)
        with pytest.raises(grpc.RpcError) as caught:
            grpc_call(app, body, metadata=[("authorization", "Bearer wrong-token-0123456789")])
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        counters = app.counters()
    by_seed = {s.trace_id: s for s in got}
    trusted, other = (by_seed[marked(seed)[0]["trace_id"].hex()] for seed in (65, 66))
    assert content(trusted) == LEAKS  # the trusted sender's marks are taken
    assert content(other) == REDACTED  # authenticated, but not a trusted sender
    assert counters["processed"] == 1


def test_the_app_stage_seals_what_it_redacts(seal_key: str) -> None:
    span = SpanData(name="chat", attributes=dict(LEAKS), trace_id=7, span_id=9)
    RedactionStage().apply(span)
    attrs = span.attributes
    assert attrs["note"] == "mail <EMAIL>"
    ids = ((7).to_bytes(16, "big"), (9).to_bytes(8, "big"))
    assert sealed(seal_key.encode(), attrs, *ids)
    assert not sealed(seal_key.encode(), attrs, ids[0], (10).to_bytes(8, "big"))
    assert not sealed(b"another-key-0123456789", attrs, *ids)


def test_without_a_key_the_app_writes_no_seal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMTAP_REDACTION_KEY", raising=False)
    span = SpanData(name="chat", attributes=dict(LEAKS), trace_id=7, span_id=9)
    RedactionStage().apply(span)
    assert SEAL not in span.attributes and span.attributes["llmtap.redaction.count"] == 3


def test_a_sealed_app_span_passes_the_service_untouched(tmp_path: Path, seal_key: str) -> None:
    """The app's stage seals, the service verifies: the end-to-end cheap path."""
    spans = simple_spans(1, 67, note=f"mail {EMAIL}")
    data = SpanData(
        name="op 0",
        attributes=dict(spans[0]["attributes"]),
        trace_id=int.from_bytes(spans[0]["trace_id"], "big"),
        span_id=int.from_bytes(spans[0]["span_id"], "big"),
    )
    RedactionStage().apply(data)
    spans[0]["attributes"] = data.attributes
    (span,), counters = send(spans, tmp_path)
    assert span.attributes == data.attributes
    assert counters["processed"] == 0


def test_a_short_seal_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTAP_REDACTION_KEY", "short-key")
    with pytest.raises(RedactionConfigError) as caught:
        RedactionStage()
    message = str(caught.value)
    assert "redaction.seal_key_env" in message and "LLMTAP_REDACTION_KEY" in message
    assert "short-key" not in message  # the key is never shown


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"trust_upstream": "yes"}, "trust_upstream: expected true or false"),
        ({"trusted_senders": [{"name": "a", "token": ""}]}, "trusted_senders[0].token: is empty"),
        ({"trusted_senders": [{"name": "", "token": SENDER_TOKEN}]}, "trusted_senders[0].name"),
        (
            {"auth_token": SENDER_TOKEN, "trusted_senders": [{"name": "a", "token": SENDER_TOKEN}]},
            "trusted_senders[0].token: the same as auth_token",
        ),
        ({"trusted_senders": [{"name": "a", "token": "tiny"}]}, "at least 16 characters"),
        ({"trusted_senders": [{"name": "a", "tok": "x"}]}, "trusted_senders[0]: expected"),
        ({"request_budget_s": -1}, "request_budget_s: expected 0 or a positive number"),
    ],
)
def test_bad_trust_settings_name_the_key(settings: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        ServiceConfig(**settings)
    assert expected in str(caught.value)
    assert SENDER_TOKEN not in str(caught.value)


def test_the_start_log_says_how_marks_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmtap.service.app import ServiceApp

    def policy(**settings: Any) -> str:
        return ServiceApp(None, ServiceConfig(**settings), destinations=[])._marks_policy()

    monkeypatch.delenv("LLMTAP_REDACTION_KEY", raising=False)
    assert policy().startswith("ignored: no seal key")
    senders = [{"name": "checkout", "token": SENDER_TOKEN}]
    assert policy(trusted_senders=senders) == "taken from trusted senders"
    monkeypatch.setenv("LLMTAP_REDACTION_KEY", SEAL_KEY)
    assert policy() == "taken from sealed spans"
    assert policy(trust_upstream=False).startswith("ignored: every span is redacted again")
    assert SEAL_KEY not in policy(trusted_senders=senders)
