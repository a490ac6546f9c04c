"""The options of each evaluator type: what a config entry may say beside ``evaluator:``.

One dataclass per type (the LLM-judged types of :mod:`llmtap.evals.rubrics` share
:class:`LlmOptions`). Fields are in the order problems are reported; a field's ``check``
(metadata) returns a problem with its converted value, ``missing`` (metadata) words a
required field's absence. :mod:`llmtap.evals.registry` registers each type with its
factory and builds the options with the one config builder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, NewType

from llmtap.evals.extract import check_field

__all__ = [
    "ContainsOptions",
    "CostBudgetOptions",
    "CustomLlmOptions",
    "FactConsistencyOptions",
    "JsonSchema",
    "JsonSchemaOptions",
    "JsonValidOptions",
    "LatencyBudgetOptions",
    "LexicalGroundednessOptions",
    "LlmOptions",
    "NotContainsOptions",
    "PiiOptions",
    "RefusalOptions",
    "RegexOptions",
    "TruncationOptions",
]

#: a JSON Schema: a mapping (or a boolean schema)
JsonSchema = NewType("JsonSchema", object)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z")


def _name(value: str) -> str | None:
    if _NAME.match(value):
        return None
    return (
        f"expected a short identifier (letters, digits, _ . -), got {value!r}; it becomes "
        f"gen_ai.evaluation.name and a metric label"
    )


def _positive(value: float) -> str | None:
    return None if value > 0 else f"expected a number above 0, got {value!r}"


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else f"expected a number of 0 or more, got {value!r}"


def _ratio(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"expected a number between 0 and 1, got {value!r}"


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None


def _two_labels(value: list[str]) -> str | None:
    return None if len(value) == 2 else f"expected two labels [good, bad], got {value!r}"


_NAME_CHECK = {"check": _name}
_FIELD_CHECK = {"check": check_field}
_POSITIVE = {"check": _positive}
_RATIO = {"check": _ratio}


def _one_of(options: Any, kind: str) -> None:
    if options.value is None and options.values is None:
        raise ValueError(f"value: required by evaluator {kind} (or values: [...])")


@dataclass(kw_only=True)
class LlmOptions:
    """An LLM judge with a bundled rubric."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (gen_ai.evaluation.name; default: the evaluator's)"""
    output: Literal["boolean", "numeric"] | None = None
    """the verdict: pass/fail or a score (default: the rubric's)"""
    threshold: float | None = None
    """the score from which a numeric verdict passes"""
    variables: dict[str, str] | None = None
    """rubric placeholders and the input fields they take"""
    model: str | None = None
    """the judge model for this evaluator (default: judge.model.name)"""
    max_chars: int = field(default=24_000, metadata=_POSITIVE)
    """characters of input sent to the judge at most"""


@dataclass(kw_only=True)
class CustomLlmOptions:
    """An LLM judge with your own rubric."""

    name: str | None = field(
        default=None,
        metadata={
            **_NAME_CHECK,
            "present": True,
            "missing": "required by evaluator custom_llm (it names the verdicts)",
        },
    )
    """the evaluation's name (gen_ai.evaluation.name)"""
    rubric: str
    """the judge's instructions, with {placeholders} of input fields"""
    output: Literal["boolean", "numeric"] | None = None
    """the verdict: pass/fail or a score (default numeric)"""
    threshold: float | None = None
    """the score from which a numeric verdict passes"""
    variables: dict[str, str] | None = None
    """rubric placeholders and the input fields they take"""
    model: str | None = None
    """the judge model for this evaluator (default: judge.model.name)"""
    max_chars: int = field(default=24_000, metadata=_POSITIVE)
    """characters of input sent to the judge at most"""
    labels: list[str] = field(
        default_factory=lambda: ["pass", "fail"], metadata={"check": _two_labels}
    )
    """the labels of a good and a bad verdict"""
    higher_is_better: bool = True
    """whether a higher score is better"""
    scale: tuple[float, float] = (0.0, 1.0)
    """the lowest and highest score"""
    true_means: str | None = None
    """what a boolean true verdict means, for the judge"""
    required: list[str] | None = None
    """input fields without which the evaluation is skipped"""


@dataclass(kw_only=True)
class RegexOptions:
    """A regular expression is found (or not) in the output."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    pattern: str = field(metadata={"check": _regex})
    """the regular expression (searched, not anchored)"""
    match: bool = True
    """pass when it is found (false: when it is not)"""
    ignore_case: bool = False
    """case-insensitive"""
    multiline: bool = False
    """^ and $ match at every line"""
    dotall: bool = False
    """. matches a newline too"""
    field: str = field(default="output", metadata=_FIELD_CHECK)
    """the input field searched"""


@dataclass(kw_only=True)
class ContainsOptions:
    """The output contains a value (any or all of several)."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    value: str | None = None
    """the text looked for"""
    values: list[str] | None = None
    """several texts looked for"""
    require: Literal["any", "all"] = "any"
    """pass when any (all) of the values are found"""
    case_sensitive: bool = False
    """compare case"""
    field: str = field(default="output", metadata=_FIELD_CHECK)
    """the input field searched"""

    def __post_init__(self) -> None:
        _one_of(self, "contains")


@dataclass(kw_only=True)
class NotContainsOptions:
    """The output contains none of the values."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    value: str | None = None
    """the text that must not be there"""
    values: list[str] | None = None
    """several texts that must not be there"""
    case_sensitive: bool = False
    """compare case"""
    field: str = field(default="output", metadata=_FIELD_CHECK)
    """the input field searched"""

    def __post_init__(self) -> None:
        _one_of(self, "not_contains")


@dataclass(kw_only=True)
class JsonValidOptions:
    """The output is valid JSON."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    strip_code_fence: bool = False
    """accept JSON inside a Markdown code fence"""
    require_object: bool = False
    """only a JSON object passes"""
    field: str = field(default="output", metadata=_FIELD_CHECK)
    """the input field checked"""


@dataclass(kw_only=True)
class JsonSchemaOptions:
    """The output is JSON conforming to a JSON Schema."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    schema: JsonSchema
    """the JSON Schema"""
    strip_code_fence: bool = False
    """accept JSON inside a Markdown code fence"""
    field: str = field(default="output", metadata=_FIELD_CHECK)
    """the input field checked"""


@dataclass(kw_only=True)
class RefusalOptions:
    """The model refused (phrases, refusal flag, content filter)."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    phrases: list[str] | None = None
    """refusal phrases instead of the bundled ones"""
    extra_phrases: list[str] = field(default_factory=list)
    """refusal phrases beside the bundled ones"""
    expect_refusal: bool = False
    """pass when the model refuses"""
    window: int = field(default=400, metadata=_POSITIVE)
    """characters at the start of the output searched"""
    field: str = field(default="output", metadata=_FIELD_CHECK)
    """the input field searched"""


@dataclass(kw_only=True)
class TruncationOptions:
    """The model stopped at its token limit."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""


@dataclass(kw_only=True)
class PiiOptions:
    """PII or secrets in the output."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    detectors: list[str] | None = None
    """the detectors run (default: all)"""
    count_placeholders: bool = True
    """count redaction placeholders as findings"""
    field: str = field(default="output", metadata=_FIELD_CHECK)
    """the input field searched"""


@dataclass(kw_only=True)
class LatencyBudgetOptions:
    """Span (or trace) duration budget."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    max_s: float = field(metadata={"check": _positive})
    """the longest duration that passes, in seconds"""
    scope: Literal["span", "trace"] = "span"
    """the span's duration or the whole trace's"""


@dataclass(kw_only=True)
class CostBudgetOptions:
    """Span (or trace) cost budget."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    max_usd: float = field(metadata={"check": _non_negative})
    """the highest cost that passes, in USD"""
    scope: Literal["span", "trace"] = "span"
    """the span's cost or the whole trace's"""


@dataclass(kw_only=True)
class LexicalGroundednessOptions:
    """Token overlap of the output with the retrieved documents."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    threshold: float = field(default=0.5, metadata=_RATIO)
    """the share of grounded sentences that passes"""
    sentence_threshold: float = field(default=0.5, metadata=_RATIO)
    """the token overlap from which a sentence is grounded"""


def _checks(value: list[str]) -> str | None:
    from llmtap.evals.consistency import CHECKS

    unknown = [c for c in value if c not in CHECKS]
    if unknown or not value:
        return f"expected some of {', '.join(CHECKS)}, got {value!r}"
    return None


@dataclass(kw_only=True)
class FactConsistencyOptions:
    """Names, numbers, dates, negations and antonyms of the output checked against the
    retrieved documents, sentence by sentence."""

    name: str | None = field(default=None, metadata=_NAME_CHECK)
    """the evaluation's name (default: the evaluator's)"""
    threshold: float = field(default=1.0, metadata=_RATIO)
    """the share of sentences without a finding that passes (1: no finding at all)"""
    checks: list[str] | None = field(default=None, metadata={"check": _checks})
    """the checks run: names, numbers, dates, negation, antonyms (default: all)"""
    match_threshold: float = field(default=0.6, metadata=_RATIO)
    """how much of a sentence a document sentence must hold to be checked for flips"""
    quote: bool = True
    """quote the offending output text in the explanation (false: character positions)"""
    input_as_source: bool = True
    """the user's input also supports names, numbers and dates"""
