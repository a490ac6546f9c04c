"""Finding and starting Phoenix for ``llmtap demo --ui`` (``llmtap.demo.phoenix``)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from llmtap.demo import phoenix
from llmtap.demo.phoenix import (
    CACHE_ENV,
    EXECUTABLE_ENV,
    INSTALL_HINT,
    LocalPhoenix,
    PhoenixUnavailable,
    find_phoenix,
    server_env,
)


def executable(path: Path, body: str = "exit 0") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No phoenix on PATH, an empty cache, no LLMTAP_PHOENIX."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(EXECUTABLE_ENV, raising=False)
    return tmp_path


def test_without_phoenix_the_error_says_how_to_install_it(nowhere):
    with pytest.raises(PhoenixUnavailable) as raised:
        find_phoenix()
    assert str(raised.value) == INSTALL_HINT
    assert "pipx install arize-phoenix" in INSTALL_HINT and "tools/fetch-phoenix.sh" in INSTALL_HINT


def test_the_newest_release_in_the_cache_is_taken(nowhere):
    for version in ("20.9.0", "20.26.1", "19.30.2"):
        executable(nowhere / "cache" / version / "venv" / "bin" / "phoenix")
    assert find_phoenix() == nowhere / "cache" / "20.26.1" / "venv" / "bin" / "phoenix"


def test_path_comes_before_the_cache_and_the_variable_before_both(nowhere, monkeypatch):
    executable(nowhere / "cache" / "20.26.1" / "venv" / "bin" / "phoenix")
    on_path = executable(nowhere / "empty-bin" / "phoenix")
    assert find_phoenix() == on_path
    chosen = executable(nowhere / "elsewhere" / "phoenix")
    monkeypatch.setenv(EXECUTABLE_ENV, str(chosen))
    assert find_phoenix() == chosen


def test_a_variable_that_names_no_executable_is_an_error(nowhere, monkeypatch):
    monkeypatch.setenv(EXECUTABLE_ENV, str(nowhere / "missing" / "phoenix"))
    with pytest.raises(PhoenixUnavailable, match=f"{EXECUTABLE_ENV}=.*missing/phoenix"):
        find_phoenix()


def test_server_env_keeps_phoenix_on_loopback_offline_and_in_its_folder(tmp_path):
    env = server_env(tmp_path, 16006, 14317)
    assert env["PHOENIX_HOST"] == "127.0.0.1"
    assert (env["PHOENIX_PORT"], env["PHOENIX_GRPC_PORT"]) == ("16006", "14317")
    assert env["PHOENIX_WORKING_DIR"] == str(tmp_path)
    assert env["PHOENIX_SQL_DATABASE_URL"] == f"sqlite:///{tmp_path / 'phoenix.db'}"
    assert env["PHOENIX_TELEMETRY_ENABLED"] == "false"
    assert env["PHOENIX_ALLOW_EXTERNAL_RESOURCES"] == "false"


def test_a_phoenix_that_exits_while_starting_is_reported_with_its_log(tmp_path):
    # a stand-in for a broken install: a script of ours that prints and exits
    broken = executable(tmp_path / "bin" / "phoenix", "echo 'no such table: projects'; exit 3")
    with pytest.raises(PhoenixUnavailable) as raised:
        LocalPhoenix.start(broken, tmp_path / "work", port=phoenix.free_port(), timeout=30)
    assert "exited with 3" in str(raised.value)
    assert "no such table: projects" in str(raised.value)
    assert str(tmp_path / "work" / "phoenix.log") in str(raised.value)


def test_a_taken_port_is_replaced_by_a_free_one(tmp_path):
    import socket

    # the stand-in prints the port it was given, then exits
    script = executable(tmp_path / "bin" / "phoenix", 'echo "port=$PHOENIX_PORT"; exit 3')
    with socket.socket() as taken:
        taken.bind((phoenix.HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not phoenix.port_free(port)
        with pytest.raises(PhoenixUnavailable) as raised:
            LocalPhoenix.start(script, tmp_path / "work", port=port, timeout=30)
    given = int(str(raised.value).rsplit("port=", 1)[1].split()[0])
    assert given != port and given > 0
