"""The builder's base dialect: strict scalars, every problem at once, with its path."""

from __future__ import annotations

import dataclasses

from llmtap.configuration.builder import FAILED, Dialect, structure


@dataclasses.dataclass
class Options:
    name: str = "a"
    count: int = 1
    ratio: float = 1.0
    enabled: bool = False


def test_base_dialect_takes_each_scalar_only_as_its_own_type() -> None:
    built, problems = structure(Dialect(), Options, {"name": "b", "count": 4, "ratio": 2})
    assert built == Options(name="b", count=4, ratio=2.0)
    assert isinstance(built.ratio, float)
    assert problems == []


def test_base_dialect_reports_every_wrong_scalar_at_once() -> None:
    data = {"name": 3, "count": "4", "ratio": True, "enabled": "yes"}
    built, problems = structure(Dialect(), Options, data, "opts")
    assert built is FAILED
    assert problems == [
        ("opts.name", "expected a string, got integer 3"),
        ("opts.count", "expected an integer, got string '4'"),
        ("opts.ratio", "expected a number, got boolean True"),
        ("opts.enabled", "expected true or false, got string 'yes'"),
    ]
