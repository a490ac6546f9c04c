"""Offline token estimation: never the network, always a method label."""

from __future__ import annotations

import pytest

from llmtap.pipeline import tokens


def test_bundled_offline_encoding_counts_real_tokens(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tokens, "_encoders", {})
    count, method = tokens.count_text("Hello world, how are you today?", "gpt-4o")
    assert method == "tiktoken:cl100k_base~o200k_base"
    assert count == 8


def test_locally_cached_encoding_is_preferred(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tokens, "_encoders", {})
    monkeypatch.setattr(tokens, "_cached_locally", lambda name: name == "cl100k_base")
    import tiktoken

    seen = []
    real = tiktoken.get_encoding
    monkeypatch.setattr(tiktoken, "get_encoding", lambda n: seen.append(n) or real(n + "_offline"))
    _, method = tokens.count_text("hi", "gpt-4")
    assert seen == ["cl100k_base"]
    assert method == "tiktoken:cl100k_base"


def test_without_any_encoding_a_marked_heuristic_is_used(monkeypatch):
    monkeypatch.setattr(tokens, "_encoders", {})
    import tiktoken

    def refuse(name):
        raise ValueError(f"no {name}")

    monkeypatch.setattr(tiktoken, "get_encoding", refuse)
    monkeypatch.setattr(tokens, "_cached_locally", lambda name: False)
    assert tokens.count_text("abcdefgh", "gpt-4o") == (2, "chars/4")
    # resolved once: the failing loader is not asked again
    monkeypatch.setattr(tiktoken, "get_encoding", lambda n: pytest.fail("retried"))
    assert tokens.count_text("abcd", "gpt-4o") == (1, "chars/4")


def test_chat_overhead_is_added_per_message(monkeypatch):
    monkeypatch.setattr(tokens, "_encoders", {})
    single, _ = tokens.count_text("hello", "gpt-4o")
    total, _ = tokens.count_messages(["hello", "hello"], "gpt-4o")
    assert total == 2 * (single + 4) + 3
    assert tokens.count_messages([], "gpt-4o")[0] == 0


def test_prepare_loads_the_encoder_once_on_a_background_thread(monkeypatch, tmp_path):
    import threading
    import time

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tokens, "_encoders", {})
    monkeypatch.setattr(tokens, "_loading", set())
    loads: list[str] = []
    real = tokens._load
    monkeypatch.setattr(
        tokens, "_load", lambda n: loads.append(threading.current_thread().name) or real(n)
    )
    tokens.prepare("gpt-4o")
    tokens.prepare("gpt-4o")
    deadline = time.monotonic() + 30
    while "o200k_base" not in tokens._encoders and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tokens._encoders["o200k_base"][1] == "tiktoken:cl100k_base~o200k_base"
    assert loads == ["llmtap-tokenizer"]
    tokens.count_text("hello", "gpt-4o")
    assert loads == ["llmtap-tokenizer"]
