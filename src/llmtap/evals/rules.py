"""Evaluators that need no model: checks on the output text and on span attributes.

Each is cheap and deterministic, returns ``score`` (1.0/0.0 for a check, a measured value for
budgets and the lexical groundedness score), a low-cardinality ``label`` and ``passed``.
Explanations describe what was found (positions, counts, types) and never quote the content,
so a verdict carries no user text and no PII. The one exception lives beside them:
``fact_consistency`` (:mod:`llmtap.evals.consistency`) quotes the offending output text
unless ``quote: false``.

=====================  ===========================================  ==========================
evaluator              passes when                                  score
=====================  ===========================================  ==========================
regex                  the pattern is found (``match: false``:      1 found / 0 not
                       is not found)
contains               the text contains the value(s) (any/all)     1 / 0
not_contains           it contains none of them                     1 clean / 0 found
json_valid             the text is a JSON document                  1 / 0
json_schema            it is JSON and conforms to ``schema``        1 / 0
refusal                no refusal (``expect_refusal: true``:        1 refusal / 0 none
                       a refusal)
truncation             the model did not stop at a length limit     1 truncated / 0 complete
pii                    no PII or secret detected                    number of findings
latency_budget         duration ≤ ``max_s``                         the duration in seconds
cost_budget            ``llmtap.cost.total`` ≤ ``max_usd``          the cost in USD
lexical_groundedness   score ≥ ``threshold``                        0..1 token overlap
fact_consistency       score ≥ ``threshold`` (default 1: no         share of sentences
                       unsupported name/number/date, no negation    without a finding
                       or antonym flip)
=====================  ===========================================  ==========================

Text checks look at the output unless ``field`` names another field (``input``,
``metadata.<key>``, ``span.<attribute>``; see :func:`llmtap.evals.extract.resolve_field`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmtap import semconv
from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.extract import field_text, resolve_field
from llmtap.pipeline.cost import cost_total

__all__ = [
    "DEFAULT_REFUSAL_PHRASES",
    "ContainsEvaluator",
    "CostBudgetEvaluator",
    "JsonSchemaEvaluator",
    "JsonValidEvaluator",
    "LatencyBudgetEvaluator",
    "LexicalGroundednessEvaluator",
    "PIIEvaluator",
    "RefusalEvaluator",
    "RegexEvaluator",
    "RuleEvaluator",
    "TruncationEvaluator",
    "lexical_support",
]

_log = logging.getLogger("llmtap")

MISSING_INPUT = "missing_input"
EVALUATOR_ERROR = "evaluator_error"


class _Missing(Exception):
    """The item lacks what this rule needs: verdict ``missing_input``."""


class RuleEvaluator(ABC):
    """Base: timing, and exceptions turned into ``evaluator_error`` verdicts."""

    uses_model = False
    name: str

    def __init__(self, name: str, field: str = "output") -> None:
        self.name = name
        self.field = field

    async def evaluate(self, item: EvalInput) -> Verdict:
        started = time.perf_counter()
        try:
            verdict = self.check(item)
        except _Missing as exc:
            verdict = Verdict(name=self.name, error_type=MISSING_INPUT, explanation=str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.warning("llmtap: evaluator %s failed", self.name, exc_info=True)
            verdict = Verdict(
                name=self.name, error_type=EVALUATOR_ERROR, explanation=type(exc).__name__
            )
        verdict.duration_s = time.perf_counter() - started
        return verdict

    @abstractmethod
    def check(self, item: EvalInput) -> Verdict:
        """The rule itself: a verdict for one input."""

    def text(self, item: EvalInput) -> str:
        return field_text(resolve_field(item, self.field))

    def verdict(
        self, passed: bool, score: float, label: str, explanation: str | None = None
    ) -> Verdict:
        return Verdict(
            name=self.name, score=float(score), label=label, explanation=explanation, passed=passed
        )


# Text patterns ------------------------------------------------------------------------------------


class RegexEvaluator(RuleEvaluator):
    """Passes when ``pattern`` is found in the text (``must_match=False``: when it is not).
    ``ignore_case``, ``multiline`` and ``dotall`` set the regex flags."""

    def __init__(
        self,
        name: str,
        pattern: str,
        *,
        must_match: bool = True,
        ignore_case: bool = False,
        multiline: bool = False,
        dotall: bool = False,
        field: str = "output",
    ) -> None:
        super().__init__(name, field)
        flags = (
            (re.IGNORECASE if ignore_case else 0)
            | (re.MULTILINE if multiline else 0)
            | (re.DOTALL if dotall else 0)
        )
        self.pattern = re.compile(pattern, flags)
        self.must_match = must_match

    def check(self, item: EvalInput) -> Verdict:
        m = self.pattern.search(self.text(item))
        found = m is not None
        where = f"at character {m.start()}" if m else "nowhere"
        return self.verdict(
            found is self.must_match,
            1.0 if found else 0.0,
            "match" if found else "no_match",
            f"the pattern matched {where} in the {self.field}",
        )


class ContainsEvaluator(RuleEvaluator):
    """``contains``: passes when the text has any (``require="any"``) or all of ``values``.
    ``negate=True`` (``not_contains``): passes when it has none of them."""

    def __init__(
        self,
        name: str,
        values: Sequence[str],
        *,
        negate: bool = False,
        require: str = "any",
        case_sensitive: bool = False,
        field: str = "output",
    ) -> None:
        super().__init__(name, field)
        if require not in ("any", "all"):
            raise ValueError(f"require: expected any or all, got {require!r}")
        self.values = [str(v) for v in values]
        self.negate = negate
        self.require = require
        self.case_sensitive = case_sensitive

    def check(self, item: EvalInput) -> Verdict:
        text = self.text(item)
        if not self.case_sensitive:
            text = text.casefold()
        hits = [
            i
            for i, v in enumerate(self.values)
            if (v if self.case_sensitive else v.casefold()) in text
        ]
        n = len(self.values)
        detail = f"{len(hits)} of {n} value(s) found in the {self.field}"
        if hits:
            detail += f" (#{', #'.join(str(i + 1) for i in hits)})"
        if self.negate:
            clean = not hits
            return self.verdict(
                clean, 1.0 if clean else 0.0, "absent" if clean else "present", detail
            )
        ok = bool(hits) if self.require == "any" else len(hits) == n
        return self.verdict(ok, 1.0 if ok else 0.0, "present" if ok else "absent", detail)


# JSON ---------------------------------------------------------------------------------------------

_JSON_FENCE = re.compile(r"\A\s*```(?:json)?[ \t]*\n(.*?)\n?```\s*\Z", re.DOTALL | re.IGNORECASE)


def _load_json(text: str, strip_code_fence: bool) -> tuple[Any, str | None]:
    if strip_code_fence:
        m = _JSON_FENCE.match(text)
        if m:
            text = m.group(1)
    if not text.strip():
        return None, "the text is empty"
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"not JSON: {exc}"


class JsonValidEvaluator(RuleEvaluator):
    """Passes when the text is one JSON document (``strip_code_fence``: a Markdown ```json
    fence around it is allowed). ``require_object``: it must be a JSON object."""

    def __init__(
        self,
        name: str,
        *,
        strip_code_fence: bool = False,
        require_object: bool = False,
        field: str = "output",
    ) -> None:
        super().__init__(name, field)
        self.strip_code_fence = strip_code_fence
        self.require_object = require_object

    def check(self, item: EvalInput) -> Verdict:
        doc, error = _load_json(self.text(item), self.strip_code_fence)
        if error is None and self.require_object and not isinstance(doc, dict):
            error = f"a JSON {type(doc).__name__}, not an object"
        if error:
            return self.verdict(False, 0.0, "invalid_json", error)
        return self.verdict(True, 1.0, "valid_json", "the text is valid JSON")


class JsonSchemaEvaluator(RuleEvaluator):
    """Passes when the text is JSON that conforms to ``schema`` (JSON Schema; the draft is
    taken from ``$schema``, else 2020-12). The schema is checked when the evaluator is made."""

    def __init__(
        self,
        name: str,
        schema: Mapping[str, Any] | bool,
        *,
        strip_code_fence: bool = False,
        field: str = "output",
    ) -> None:
        super().__init__(name, field)
        try:
            import jsonschema
        except ImportError:  # pragma: no cover - depends on the install
            raise ValueError(
                "schema: the json_schema evaluator needs the jsonschema package "
                "(pip install 'llmtap[service]' or pip install jsonschema)"
            ) from None
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = ".".join(str(p) for p in exc.absolute_path)
            raise ValueError(
                f"schema{'.' + where if where else ''}: not a valid JSON Schema: {exc.message}"
            ) from None
        self.validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        self.strip_code_fence = strip_code_fence

    def check(self, item: EvalInput) -> Verdict:
        doc, error = _load_json(self.text(item), self.strip_code_fence)
        if error:
            return self.verdict(False, 0.0, "invalid_json", error)
        errors = sorted(self.validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        if not errors:
            return self.verdict(True, 1.0, "conforms", "the JSON conforms to the schema")
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(root)"
        rule = "/".join(str(p) for p in first.absolute_schema_path)
        return self.verdict(
            False,
            0.0,
            "schema_violation",
            f"{len(errors)} violation(s); first at {at}: fails schema rule {rule}",
        )


# Refusal and truncation ---------------------------------------------------------------------------

DEFAULT_REFUSAL_PHRASES: tuple[str, ...] = (
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i can't provide",
    "i cannot provide",
    "i can't do that",
    "i cannot do that",
    "i won't be able to",
    "i will not be able to",
    "i'm not able to help",
    "i am not able to help",
    "i'm unable to",
    "i am unable to",
    "i must decline",
    "i have to decline",
    "i can't comply",
    "i cannot comply",
    "i'm not comfortable",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "sorry, i can't",
    "sorry, i cannot",
    "that's not something i can",
    "that is not something i can",
    "as an ai language model, i",
    "i'm not allowed to",
    "i am not allowed to",
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def _normalise(text: str) -> str:
    return " ".join(text.translate(_APOSTROPHES).casefold().split())


class RefusalEvaluator(RuleEvaluator):
    """Detects a refusal: the span's ``llmtap.response.refusal`` flag, a ``content_filter``
    finish reason, or one of ``phrases`` within the first ``window`` characters of the
    output. Passes when there is none (``expect_refusal=True``: when there is one)."""

    def __init__(
        self,
        name: str,
        *,
        phrases: Iterable[str] | None = None,
        extra_phrases: Iterable[str] = (),
        expect_refusal: bool = False,
        window: int = 400,
        field: str = "output",
    ) -> None:
        super().__init__(name, field)
        base = DEFAULT_REFUSAL_PHRASES if phrases is None else tuple(phrases)
        self.phrases = tuple(_normalise(p) for p in (*base, *extra_phrases) if p.strip())
        self.expect_refusal = expect_refusal
        self.window = window

    def check(self, item: EvalInput) -> Verdict:
        reason = None
        attrs = item.span.attributes if item.span is not None else {}
        if attrs.get(semconv.LLMTAP_RESPONSE_REFUSAL) is True:
            reason = f"the span has {semconv.LLMTAP_RESPONSE_REFUSAL}"
        elif "content_filter" in _finish_reasons(attrs):
            reason = "the model stopped with finish reason content_filter"
        else:
            head = _normalise(self.text(item)[: self.window])
            for i, phrase in enumerate(self.phrases):
                if phrase in head:
                    reason = f"refusal phrase #{i + 1} found in the {self.field}"
                    break
        refused = reason is not None
        return self.verdict(
            refused is self.expect_refusal,
            1.0 if refused else 0.0,
            "refusal" if refused else "answer",
            reason or "no refusal detected",
        )


_LENGTH_REASONS = frozenset({"length", "max_tokens", "max_output_tokens", "model_length"})


def _finish_reasons(attrs: Mapping[str, Any]) -> list[str]:
    raw = attrs.get(semconv.RESPONSE_FINISH_REASONS)
    if raw is None:
        return []
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            data = [raw]
        raw = data if isinstance(data, list) else [raw]
    return [str(r).lower() for r in raw]


class TruncationEvaluator(RuleEvaluator):
    """Passes when the model did not stop at a token limit: no ``length``/``max_tokens``
    in ``gen_ai.response.finish_reasons`` (nor the ``finish_reason`` of an output message)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def check(self, item: EvalInput) -> Verdict:
        if item.span is None:
            raise _Missing("no span to read the finish reasons from")
        reasons = _finish_reasons(item.span.attributes)
        if not reasons:
            raw = item.span.attributes.get(semconv.OUTPUT_MESSAGES)
            try:
                messages = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                messages = None
            if isinstance(messages, list):
                reasons = [
                    str(m.get("finish_reason")).lower()
                    for m in messages
                    if isinstance(m, dict) and m.get("finish_reason")
                ]
        if not reasons:
            raise _Missing("the span records no finish reason")
        hit = [r for r in reasons if r in _LENGTH_REASONS]
        if hit:
            return self.verdict(False, 1.0, "truncated", f"finish reason {hit[0]}")
        return self.verdict(True, 0.0, "complete", f"finish reasons: {', '.join(reasons)}")


# PII ----------------------------------------------------------------------------------------------


class PIIEvaluator(RuleEvaluator):
    """Passes when llmtap's redaction detectors (``llmtap.pipeline.detectors``) find nothing
    in the text: e-mail addresses, phone numbers, card numbers, SSNs, IBANs, IP addresses,
    secrets (``detectors`` picks among them). The score is the number of findings; the
    explanation names their types, never their values. Text already redacted upstream
    shows placeholders (``<EMAIL>``), which are counted as findings of that type when
    ``count_placeholders`` is on (the output did contain PII)."""

    def __init__(
        self,
        name: str,
        *,
        detectors: Sequence[str] | None = None,
        count_placeholders: bool = True,
        field: str = "output",
    ) -> None:
        super().__init__(name, field)
        from llmtap.pipeline.detectors import ALL_DETECTORS, DETECTOR_TYPES, Detectors

        chosen = list(ALL_DETECTORS if detectors is None else detectors)
        unknown = [d for d in chosen if d not in DETECTOR_TYPES]
        if unknown:
            raise ValueError(
                f"detectors: unknown detector(s) {', '.join(map(repr, unknown))}; "
                f"expected some of {', '.join(ALL_DETECTORS)}"
            )
        self.detectors = Detectors(chosen)
        self.types = {DETECTOR_TYPES[d] for d in chosen}
        self.count_placeholders = count_placeholders

    def check(self, item: EvalInput) -> Verdict:
        from llmtap.pipeline.detectors import PLACEHOLDER_RE

        text = self.text(item)
        counts: dict[str, int] = {}
        for _start, _end, kind in self.detectors.find(text):
            counts[kind] = counts.get(kind, 0) + 1
        if self.count_placeholders and "<" in text:
            for m in PLACEHOLDER_RE.finditer(text):
                kind = m.group(0)[1:-1].split(":")[0]
                if kind in self.types:
                    counts[kind] = counts.get(kind, 0) + 1
        total = sum(counts.values())
        if not total:
            return self.verdict(True, 0.0, "no_pii", f"no PII found in the {self.field}")
        found = ", ".join(f"{k.lower()} x{n}" for k, n in sorted(counts.items()))
        return self.verdict(False, float(total), "pii", f"found in the {self.field}: {found}")


# Budgets ------------------------------------------------------------------------------------------


def _duration(span: Any) -> float | None:
    if span.duration_s and span.duration_s > 0:
        return float(span.duration_s)
    if span.end_ns and span.start_ns and span.end_ns >= span.start_ns:
        return (span.end_ns - span.start_ns) / 1e9
    return None


class LatencyBudgetEvaluator(RuleEvaluator):
    """Passes when the span took at most ``max_s`` seconds (``scope="trace"``: the trace
    from its first start to its last end). The score is the duration."""

    def __init__(self, name: str, max_s: float, *, scope: str = "span") -> None:
        super().__init__(name)
        if scope not in ("span", "trace"):
            raise ValueError(f"scope: expected span or trace, got {scope!r}")
        self.max_s = max_s
        self.scope = scope

    def check(self, item: EvalInput) -> Verdict:
        if self.scope == "trace" and item.trace:
            starts = [s.start_ns for s in item.trace if s.start_ns]
            ends = [s.end_ns for s in item.trace if s.end_ns]
            duration = (max(ends) - min(starts)) / 1e9 if starts and ends else None
        elif item.span is not None:
            duration = _duration(item.span)
        else:
            duration = None
        if duration is None:
            raise _Missing(f"no duration known for the {self.scope}")
        ok = duration <= self.max_s
        return self.verdict(
            ok,
            round(duration, 6),
            "within_budget" if ok else "over_budget",
            f"{self.scope} took {duration:.3f}s; budget {self.max_s:g}s",
        )


class CostBudgetEvaluator(RuleEvaluator):
    """Passes when the cost (``llmtap.cost.total``, else ``gen_ai.usage.cost`` of spans from
    older llmtap apps and other SDKs) is at most ``max_usd`` (``scope="trace"``: the sum over
    the trace's spans). The score is the cost. A span without a cost (an unpriced model)
    gives ``missing_input``."""

    def __init__(self, name: str, max_usd: float, *, scope: str = "span") -> None:
        super().__init__(name)
        if scope not in ("span", "trace"):
            raise ValueError(f"scope: expected span or trace, got {scope!r}")
        self.max_usd = max_usd
        self.scope = scope

    def check(self, item: EvalInput) -> Verdict:
        if self.scope == "trace" and item.trace:
            costs = [c for c in (cost_total(s.attributes) for s in item.trace) if c is not None]
            total = sum(costs) if costs else None
        elif item.span is not None:
            total = cost_total(item.span.attributes)
        else:
            total = None
        if total is None:
            raise _Missing(f"no {semconv.LLMTAP_COST_TOTAL} on the {self.scope}")
        ok = total <= self.max_usd
        return self.verdict(
            ok,
            round(total, 12),
            "within_budget" if ok else "over_budget",
            f"{self.scope} cost ${total:.6f}; budget ${self.max_usd:g}",
        )


# Lexical groundedness -----------------------------------------------------------------------------

_SENTENCE_END = re.compile("(?<=[.!?\u3002\uff01\uff1f])\\s+|\n+")
_WORD = re.compile(r"[^\W_]+(?:[.,'][^\W_]+)*", re.UNICODE)
_STOPWORD_TEXT = """
    a an the and or but nor so yet if then than that this these those there here of in on at
    to from by for with without about into onto over under as is are was were be been being
    am do does did done have has had having will would shall should can could may might must
    it its it's they them their theirs we us our ours you your yours he him his she her hers
    i me my mine what which who whom whose when where why how all any both each few more most
    other some such no not only own same too very just also again further once up down out off
    s t don't can't won't isn't aren't wasn't weren't doesn't didn't hasn't haven't
    """
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "ly", "s")


def _stem(word: str) -> str:
    if word[0].isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _tokens(text: str) -> set[str]:
    return {
        _stem(w)
        for w in (m.group(0).casefold() for m in _WORD.finditer(text))
        if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())
    }


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def grounding_documents(item: EvalInput) -> list[str]:
    """The non-empty retrieved documents of ``item``, when it has them and an output to
    compare with them."""
    documents = [d for d in item.documents if isinstance(d, str) and d.strip()]
    if not documents:
        raise _Missing("no retrieved documents to compare the output with")
    if not item.output_text.strip():
        raise _Missing("the output is empty")
    return documents


def lexical_support(output: str, documents: Sequence[str]) -> tuple[float, list[float]]:
    """``(score, per_sentence)``: for each output sentence with content words, the share of
    them found in the best-matching document (then in all documents together, if that is
    higher: a sentence may combine two sources); the score is their mean, weighted by the
    sentences' number of content words."""
    doc_sets = [_tokens(d) for d in documents]
    union = set().union(*doc_sets) if doc_sets else set()
    supports: list[float] = []
    weights: list[int] = []
    for sentence in _sentences(output):
        words = _tokens(sentence)
        if not words:
            continue
        best = max((len(words & d) / len(words) for d in doc_sets), default=0.0)
        combined = len(words & union) / len(words)
        supports.append(max(best, combined))
        weights.append(len(words))
    if not supports:
        return 0.0, []
    score = sum(s * w for s, w in zip(supports, weights, strict=True)) / sum(weights)
    return score, supports


class LexicalGroundednessEvaluator(RuleEvaluator):
    """A model-free groundedness estimate: the token overlap of the output's sentences with
    the retrieved documents (content words, lower-cased, light suffix stripping; see
    :func:`lexical_support`). Passes when the score is at least ``threshold``. Cheap and
    blunt (a paraphrase scores low, a contradiction reusing the documents' words scores
    high): use it to flag answers for the LLM judge or for humans, not as a verdict on
    truth."""

    def __init__(
        self, name: str, *, threshold: float = 0.5, sentence_threshold: float = 0.5
    ) -> None:
        super().__init__(name)
        for key, value in (("threshold", threshold), ("sentence_threshold", sentence_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{key}: expected a number between 0 and 1, got {value!r}")
        self.threshold = threshold
        self.sentence_threshold = sentence_threshold

    def check(self, item: EvalInput) -> Verdict:
        documents = grounding_documents(item)
        score, supports = lexical_support(item.output_text, documents)
        if not supports:
            raise _Missing("the output has no content words to compare")
        weak = [i + 1 for i, s in enumerate(supports) if s < self.sentence_threshold]
        detail = (
            f"{len(supports) - len(weak)} of {len(supports)} sentence(s) mostly found in the "
            f"documents"
        )
        if weak:
            shown = ", ".join(map(str, weak[:5])) + (", ..." if len(weak) > 5 else "")
            detail += f"; weakly supported: sentence {shown}"
        ok = score >= self.threshold
        return self.verdict(ok, round(score, 4), "grounded" if ok else "ungrounded", detail)
