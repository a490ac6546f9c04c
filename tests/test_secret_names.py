"""One home for what a secret key name is: precise for redaction, cautious for config messages."""

from __future__ import annotations

import pytest

from llmtap.secret_names import is_secret_name


@pytest.mark.parametrize(
    "name", ["password", "db_password", "apiKey", "x-api-key", "AWS_SECRET_ACCESS_KEY", "authToken"]
)
def test_credential_names_are_secret_both_ways(name: str) -> None:
    assert is_secret_name(name)
    assert is_secret_name(name, cautious=True)


@pytest.mark.parametrize("name", ["key", "team", "auth", "pwd", "hash_key", "x-honeycomb-team"])
def test_broad_words_are_hidden_in_config_messages_but_not_redacted(name: str) -> None:
    assert is_secret_name(name, cautious=True)
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["input_cost_per_token", "max_tokens_per_key", "api_key_env", "tls_key_file"]
)
def test_prices_limits_and_places_of_secrets_are_not_hidden(name: str) -> None:
    assert not is_secret_name(name, cautious=True)


@pytest.mark.parametrize("name", ["model", "cache_key_hits", "monkey", "PWD_DIR", "teammate"])
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)
