"""End-to-end fixtures: real processes (``support.binaries``) whose logs are shown when a
test fails."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.binaries import Processes


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end-to-end test with real Collector/Jaeger processes (-m 'not e2e' skips)"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def procs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    """Processes started by the test, stopped at teardown; their logs are printed (and so
    shown in the report) when the test failed."""
    group = Processes(tmp_path / "logs")
    try:
        yield group
    finally:
        group.stop_all()
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            sys.stderr.write(f"\nlogs of the test's processes:\n{group.logs()}\n")
