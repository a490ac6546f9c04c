"""``fact_consistency``: a model-free check of the output's facts against the documents.

Each output sentence is checked for five kinds of finding:

* **name**: a capitalised name (``Brice Martin``, ``Mumbai``, ``NASA``) found nowhere in the
  documents. Case, a possessive ``'s``, hyphens and a leading "the" are ignored; a name
  whose every word occurs in the documents counts as found (``Robin`` for ``Brice Robin``).
  A single capitalised word that starts a sentence is not taken for a name. A nationality
  adjective and its country stand for each other (``French`` is found by ``France``,
  ``Dutch`` by ``the Netherlands``, ``United States`` by ``American``), for the countries
  and continents of a short table.
* **number**: an amount, percentage or currency value whose value the documents never give.
  ``1,000``, ``1000``, ``1k``, ``1 thousand`` and ``one thousand`` are the same value;
  ``$5M`` is 5,000,000 (``M``/``m`` is a million only after a currency sign); ``45%``,
  ``45 percent`` and ``45`` are the same value (units are not compared, nor converted:
  ``5 km`` against ``3.1 miles`` is a finding). A number after a hedge (``about``,
  ``around``, ``nearly``, ...) is found when a document's number rounds to it at its own
  precision (``about 1.5 million`` for ``1,523,000``); without a hedge the value must be
  exact. The word "one" is not checked (it is mostly a pronoun).
* **date**: ``March 5, 2024``, ``5 March 2024``, ``5th of March``, ``2024-03-05``,
  ``03/05/2024`` (both day-month orders), ``March 2024``, a month name, a weekday. A date is
  found when a document has a date that agrees on every part the output gives (a year may
  also come from anywhere in the documents); a weekday when the documents name it or give
  a full date that falls on it.
* **negation**: the sentence closely matches a document sentence (``match_threshold`` of its
  content words) but one of the two has a negation cue (not, no, never, n't, without,
  none, ...) on a word they share and the other has none.
* **antonym**: the same close match, with one side of a curated pair
  (increase/decrease, before/after, allowed/forbidden, approved/rejected, won/lost, ...)
  in the output and the other in the document sentence.

The score is the share of output sentences without a finding; the verdict passes when the
score is at least ``threshold`` (default 1.0: no finding at all). The explanation names
each finding with the offending text of the output (``unsupported number "45 days" in
sentence 2``); ``quote=False`` gives positions instead, for deployments that keep
verdicts free of content. The user's input counts as a source for names, numbers and
dates (``input_as_source``): an answer may repeat the question.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from llmtap.evals.base import EvalInput, Verdict
from llmtap.evals.rules import (
    _STOPWORDS,
    RuleEvaluator,
    _sentences,
    _stem,
    grounding_documents,
)

__all__ = ["CHECKS", "FactConsistencyEvaluator", "Finding", "find_inconsistencies"]

CHECKS = ("names", "numbers", "dates", "negation", "antonyms")
_QUOTE_MAX = 60

# words --------------------------------------------------------------------------------------------


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WORD = re.compile(r"[^\W_]+(?:['\u2019\-&.][^\W_]+)*")


def _words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


def _plain(word: str) -> str:
    """Lower-cased, without a possessive 's and, for names, without accents (Touré: toure)."""
    w = word.casefold().replace("\u2019", "'")
    if not w.isascii():
        w = "".join(c for c in unicodedata.normalize("NFKD", w) if not unicodedata.combining(c))
    return w[:-2] if w.endswith("'s") else w


# numbers ------------------------------------------------------------------------------------------

_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
_NUMBER_WORDS = {w: i for i, w in enumerate(_SMALL.split())}
_NUMBER_WORDS |= {w: 20 + 10 * i for i, w in enumerate(_TENS.split())}
_NUMBER_WORDS["dozen"] = 12
_MULTIPLIERS = {
    "thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9,
    "bn": 1e9, "trillion": 1e12,
}  # fmt: skip
_WORD_NUMBER = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_NUMBER = re.compile(
    r"(?<![\w.,])(?=[$€£¥₹\dzotfsendZOTFSEND])(?:(?P<cur>[$€£¥₹])\s?)?"
    r"(?:(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?:st|nd|rd|th)?"
    rf"|(?P<word>(?i:{_WORD_NUMBER})(?:-(?i:{_WORD_NUMBER}))?))"
    r"(?:(?P<attached>[kK]|[mM]|bn|mn)\b|\s?(?P<mult>(?i:thousand|million|billion|trillion))\b)?"
    r"(?P<pct>\s?%|\s(?i:per\s?cent)\b)?"
    r"(?![\w])"
)
_HEDGES = _wordset(
    "about around approximately roughly nearly almost some over under more less than "
    "circa approx ca estimated"
)


@dataclass(frozen=True)
class _Number:
    start: int
    end: int
    value: float
    precision: float  # half a unit of the last significant digit


def _word_value(word: str) -> float | None:
    parts = word.casefold().split("-")
    if len(parts) == 2:
        tens, units = _NUMBER_WORDS.get(parts[0]), _NUMBER_WORDS.get(parts[1])
        if tens is None or units is None or tens < 20 or units >= 10:
            return None
        return float(tens + units)
    return float(_NUMBER_WORDS[parts[0]])


def _numbers(text: str, *, answer: bool) -> list[_Number]:
    out = []
    for m in _NUMBER.finditer(text):
        mult = 1.0
        attached = m.group("attached")
        if attached:
            if attached in ("m", "M") and not m.group("cur"):
                continue  # "5m" without a currency: metres or minutes, not a million
            mult = _MULTIPLIERS[attached.lower()]
        elif m.group("mult"):
            mult = _MULTIPLIERS[m.group("mult").lower()]
        if m.group("num") is not None:
            digits = m.group("num").replace(",", "")
            value = float(digits)
            precision = _precision(digits) * mult
        else:
            word_value = _word_value(m.group("word"))
            if word_value is None or (answer and m.group("word").casefold() == "one"):
                continue
            value, precision = word_value, 0.5 * mult
        out.append(_Number(m.start(), m.end(), value * mult, precision))
    return out


def _precision(digits: str) -> float:
    if "." in digits:
        return 0.5 * 10 ** -len(digits.split(".")[1])
    zeros = len(digits) - len(digits.rstrip("0"))
    return 0.5 * 10 ** min(zeros, len(digits) - 1)


def _hedged(text: str, start: int) -> bool:
    before = [_plain(w.group(0)) for w in _words(text[max(0, start - 30) : start])]
    return bool(before) and before[-1] in _HEDGES


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


# dates --------------------------------------------------------------------------------------------

_MONTHS = {name.casefold(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS |= {
    name.casefold(): i for i, name in enumerate(calendar.month_abbr) if name and name != "May"
}
_MONTHS["sept"] = 9
_WEEKDAYS = {name.casefold(): i for i, name in enumerate(calendar.day_name)}
_MONTH = r"(?P<month>" + "|".join(sorted(map(str.title, _MONTHS), key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
_DATE_PATTERNS = [
    re.compile(rf"\b{_YEAR}[-/](?P<m>\d{{1,2}})[-/](?P<d>\d{{1,2}})\b"),
    re.compile(r"\b(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<year>\d{4})\b"),
    re.compile(rf"\b{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?\b"),
    re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b"),
    re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b"),
    re.compile(rf"\b{_MONTH}(?![\w])"),
]
_WEEKDAY = re.compile(r"\b(?P<weekday>" + "|".join(map(str.title, _WEEKDAYS)) + r")s?\b")
_MAY_CONTEXT = _wordset("in of early late mid since until till by from last next this")

_Ymd = tuple[int | None, int | None, int | None]


@dataclass(frozen=True)
class _Date:
    start: int
    end: int
    options: tuple[_Ymd, ...] = ()
    weekday: int | None = None


def _valid(y: int | None, m: int | None, d: int | None) -> bool:
    if m is not None and not 1 <= m <= 12:
        return False
    if d is None:
        return True
    try:
        dt.date(y or 2000, m or 1, d)
    except ValueError:
        return False
    return True


def _date_options(p: int, g: dict[str, str | None]) -> tuple[_Ymd, ...]:
    year = int(g["year"]) if g.get("year") else None
    if p == 0:
        options: list[_Ymd] = [(year, int(g["m"] or 0), int(g["d"] or 0))]
    elif p == 1:
        a, b = int(g["a"] or 0), int(g["b"] or 0)
        options = [(year, a, b), (year, b, a)]
    else:
        day = int(g["day"]) if g.get("day") else None
        options = [(year, _MONTHS[(g["month"] or "").casefold()], day)]
    return tuple(dict.fromkeys(o for o in options if _valid(*o)))


def _month_word_ok(text: str, m: re.Match[str]) -> bool:
    word = m.group("month")
    if not word[0].isupper():
        return False
    if word.casefold() != "may":
        return True
    before = [_plain(w.group(0)) for w in _words(text[max(0, m.start() - 15) : m.start()])]
    return bool(before) and before[-1] in _MAY_CONTEXT


def _dates(text: str) -> list[_Date]:
    taken: list[tuple[int, int]] = []
    out: list[_Date] = []

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)

    for p, pattern in enumerate(_DATE_PATTERNS):
        for m in pattern.finditer(text):
            if not free(m.start(), m.end()):
                continue
            if p >= 2 and not _month_word_ok(text, m):
                continue
            options = _date_options(p, m.groupdict())
            if options:
                taken.append((m.start(), m.end()))
                out.append(_Date(m.start(), m.end(), options))
    for m in _WEEKDAY.finditer(text):
        if m.group(0)[0].isupper() and free(m.start(), m.end()):
            taken.append((m.start(), m.end()))
            out.append(_Date(m.start(), m.end(), weekday=_WEEKDAYS[m.group("weekday").lower()]))
    return out


# names --------------------------------------------------------------------------------------------

_CONNECTORS = _wordset("of de du da del der van von la le the and for & y al bin")
_TITLES = _wordset("mr mrs ms dr prof sir st mt")
_NOT_NAMES = frozenset(
    {"i", "i'm", "i've", "i'll", "i'd", "ok", "okay", "yes", "no"} | set(_MONTHS) | set(_WEEKDAYS)
)


def _capitalised(word: str) -> bool:
    return word[0].isupper() and not word[0].isdigit()


def _names(sentence: str) -> list[tuple[int, int, list[str]]]:
    """Runs of capitalised words, as ``(start, end, plain words)``; a run may hold
    connectors (``Bank of England``). Leading function words and titles are dropped, and a
    lone capitalised word that starts the sentence is not a name."""
    words = _words(sentence)
    runs: list[list[re.Match[str]]] = []
    current: list[re.Match[str]] = []
    for i, w in enumerate(words):
        text = w.group(0)
        nxt = words[i + 1].group(0) if i + 1 < len(words) else ""
        if current and sentence[current[-1].end() : w.start()].strip():
            runs.append(current)  # punctuation between the words ends a name
            current = []
        connects = bool(current) and _plain(text) in _CONNECTORS and _capitalised(nxt or "a")
        if _capitalised(text) or (connects and bool(nxt)):
            current.append(w)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    out = []
    for run in runs:
        at_start = run[0].start() == words[0].start()
        while run and (
            _plain(run[0].group(0)) in _STOPWORDS
            or _plain(run[0].group(0)).rstrip(".") in _TITLES
            or _plain(run[0].group(0)) in _NOT_NAMES
        ):
            at_start = at_start and len(run) == 1
            run = run[1:]
        run = [w for w in run if _plain(w.group(0)) not in _NOT_NAMES]
        if not run or (len(run) == 1 and at_start and run[0].start() == words[0].start()):
            continue
        plain = [_plain(w.group(0)) for w in run]
        if all(p in _CONNECTORS for p in plain):
            continue
        out.append((run[0].start(), run[-1].end(), plain))
    return out


# country or continent: its adjectives (and other names), each form standing for the others
_DEMONYM_GROUPS = (
    ("france", "french"), ("germany", "german"), ("italy", "italian"), ("spain", "spanish"),
    ("portugal", "portuguese"), ("britain", "great britain", "united kingdom", "uk", "british"),
    ("england", "english"), ("scotland", "scottish", "scots"), ("wales", "welsh"),
    ("ireland", "irish"), ("netherlands", "holland", "dutch"), ("belgium", "belgian"),
    ("switzerland", "swiss"), ("austria", "austrian"), ("greece", "greek"),
    ("sweden", "swedish"), ("norway", "norwegian"), ("denmark", "danish"),
    ("finland", "finnish"), ("iceland", "icelandic"), ("poland", "polish"),
    ("czech republic", "czechia", "czech"), ("hungary", "hungarian"), ("romania", "romanian"),
    ("russia", "russian"), ("ukraine", "ukrainian"), ("turkey", "turkish"),
    ("israel", "israeli"), ("egypt", "egyptian"), ("iran", "iranian"), ("iraq", "iraqi"),
    ("india", "indian"), ("pakistan", "pakistani"), ("china", "chinese"),
    ("japan", "japanese"), ("korea", "korean"), ("vietnam", "vietnamese"),
    ("thailand", "thai"), ("indonesia", "indonesian"), ("philippines", "filipino"),
    ("australia", "australian"), ("new zealand", "new zealander"), ("canada", "canadian"),
    ("united states", "usa", "america", "american"), ("mexico", "mexican"),
    ("brazil", "brazilian"), ("argentina", "argentine", "argentinian"), ("chile", "chilean"),
    ("cuba", "cuban"), ("nigeria", "nigerian"), ("kenya", "kenyan"),
    ("south africa", "south african"), ("europe", "european"), ("africa", "african"),
    ("asia", "asian"),
)  # fmt: skip
_DEMONYMS: dict[str, frozenset[str]] = {
    form: frozenset(group) - {form} for group in _DEMONYM_GROUPS for form in group
}


# negation and antonyms ----------------------------------------------------------------------------

_NEGATIONS = _wordset("not no never without none nobody nothing neither nor cannot nowhere")
_ANTONYM_GROUPS: tuple[tuple[str, str], ...] = (
    (
        "increase increased increases increasing rise rises rose risen rising grow grows grew "
        "grown growing",
        "decrease decreased decreases decreasing fall falls fell fallen falling drop drops "
        "dropped dropping decline declines declined declining shrink shrinks shrank shrunk",
    ),
    ("higher highest", "lower lowest"),
    ("more", "less fewer"),
    ("above", "below"),
    ("before", "after"),
    ("earlier earliest", "later latest"),
    ("first", "last"),
    (
        "allow allows allowed permit permits permitted",
        "forbid forbids forbidden forbade prohibit prohibits prohibited ban bans banned",
    ),
    (
        "approve approves approved approval accept accepts accepted",
        "reject rejects rejected rejection refuse refuses refused deny denies denied",
    ),
    ("win wins won winning victory", "lose loses lost losing defeat defeated"),
    ("opened", "closed"),
    ("maximum", "minimum"),
    ("true", "false"),
    ("include includes included including", "exclude excludes excluded excluding"),
    ("success successful succeeded", "failure failed unsuccessful"),
    ("positive", "negative"),
    ("buy buys bought buying", "sell sells sold selling"),
    ("import imports imported", "export exports exported"),
    ("enable enables enabled", "disable disables disabled"),
    ("valid", "invalid"),
    ("legal", "illegal"),
    ("guilty", "innocent"),
    ("alive", "dead"),
    ("required mandatory", "optional"),
    ("public", "private"),
    ("inside", "outside"),
    ("north northern", "south southern"),
    ("east eastern", "west western"),
    ("majority", "minority"),
    ("profit profits", "loss losses"),
    ("older oldest", "younger youngest"),
    ("larger largest bigger biggest", "smaller smallest"),
    ("longer longest", "shorter shortest"),
    ("better best", "worse worst"),
)
_ANTONYMS: dict[str, tuple[int, int]] = {
    word: (g, side)
    for g, pair in enumerate(_ANTONYM_GROUPS)
    for side, words in enumerate(pair)
    for word in words.split()
}


def _negated(word: str) -> bool:
    return word in _NEGATIONS or word.endswith("n't")


@dataclass
class _Sentence:
    words: list[str]  # lower-cased, in order
    content: set[str]  # stems of content words


def _sentence(text: str) -> _Sentence:
    words = [_plain(w.group(0)) for w in _words(text)]
    return _Sentence(words, {_stem(w) for w in words if _content(w)})


def _content(word: str) -> bool:
    return word not in _STOPWORDS and not _negated(word) and (len(word) > 1 or word.isdigit())


def _negation_scopes(s: _Sentence) -> set[str]:
    """Stems of the content words a negation cue bears on (the next ones, up to three)."""
    out = set()
    for i, w in enumerate(s.words):
        if _negated(w):
            for nxt in s.words[i + 1 : i + 4]:
                if _content(nxt):
                    out.add(_stem(nxt))
                    break
    return out


# the sources --------------------------------------------------------------------------------------


@dataclass
class _Sources:
    text: str  # normalised, space-padded
    words: set[str]
    numbers: list[float]
    number_values: set[float]
    dates: list[_Ymd]
    years: set[int]
    weekdays: set[int]
    negated: set[str] = field(default_factory=set)  # stems a document negates somewhere
    sentences: list[_Sentence] = field(default_factory=list)
    index: dict[str, list[int]] = field(default_factory=dict)


def _sources(documents: Sequence[str], extra: str) -> _Sources:
    text = "\n".join([*documents, extra])
    numbers = [n.value for n in _numbers(text, answer=False)]
    mentions = _dates(text)
    dates = [o for d in mentions for o in d.options]
    weekdays = {d.weekday for d in mentions if d.weekday is not None}
    weekdays |= {dt.date(y, m, d).weekday() for y, m, d in dates if y and m and d}
    plain = [_plain(w.group(0)) for w in _words(text)]
    src = _Sources(
        text=" " + " ".join(p.replace("-", " ") for p in plain) + " ",
        words=set(plain),
        numbers=numbers,
        number_values={round(v, 6) for v in numbers},
        dates=dates,
        years={int(v) for v in numbers if v.is_integer() and 1000 <= v <= 2999}
        | {y for y, _, _ in dates if y},
        weekdays=weekdays,
    )
    for doc in documents:
        for text in _sentences(doc):
            s = _sentence(text)
            for stem in s.content:
                src.index.setdefault(stem, []).append(len(src.sentences))
            src.sentences.append(s)
            src.negated |= _negation_scopes(s)
    return src


# findings -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One inconsistency: its kind, the 1-based sentence, and the offending output text."""

    kind: str  # name, number, date, negation, antonym
    sentence: int
    start: int  # offsets in the output text
    end: int
    text: str
    detail: str = ""

    def describe(self, quote: bool) -> str:
        where = f"in sentence {self.sentence}"
        what = f'"{_clip(self.text)}"' if quote else f"at characters {self.start}-{self.end}"
        if self.kind == "negation":
            return f"negation flip {what} {where} ({self.detail})"
        if self.kind == "antonym":
            detail = self.detail if quote else "the documents say the opposite"
            return f"antonym flip {what} {where} ({detail})"
        return f"unsupported {self.kind} {what} {where}"


def _clip(text: str) -> str:
    text = " ".join(text.replace('"', "'").split())
    return text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 3] + "..."


def _number_supported(n: _Number, hedged: bool, src: _Sources) -> bool:
    if round(n.value, 6) in src.number_values:
        return True
    if any(_same(n.value, v) for v in src.numbers):
        return True
    return hedged and any(abs(v - n.value) <= n.precision for v in src.numbers)


def _date_supported(d: _Date, src: _Sources) -> bool:
    if d.weekday is not None:
        return d.weekday in src.weekdays
    for y, m, day in d.options:
        if y is not None and m is None and day is None:
            return y in src.years
        for sy, sm, sd in src.dates:
            if m is not None and sm != m:
                continue
            if day is not None and sd != day:
                continue
            if y is not None and sy != y and not (sy is None and y in src.years):
                continue
            return True
    return False


def _name_supported(words: list[str], src: _Sources) -> bool:
    phrase = " ".join(w.replace("-", " ") for w in words)
    if f" {phrase} " in src.text or _demonym_found(phrase, src):
        return True
    return all(
        _known(w, src.words) or _demonym_found(w, src) for w in words if w not in _CONNECTORS
    )


def _demonym_found(phrase: str, src: _Sources) -> bool:
    """A nationality adjective whose country the documents name, or the reverse."""
    return any(f" {other} " in src.text for other in _DEMONYMS.get(phrase, ()))


def _known(word: str, words: set[str]) -> bool:
    if word in words or f"{word}s" in words:
        return True
    return word.endswith("s") and word[:-1] in words


def _best_match(s: _Sentence, src: _Sources) -> tuple[_Sentence | None, float]:
    if not s.content:
        return None, 0.0
    counts: dict[int, int] = {}
    for stem in s.content:
        for i in src.index.get(stem, ()):
            counts[i] = counts.get(i, 0) + 1
    if not counts:
        return None, 0.0
    best = max(counts, key=lambda i: (counts[i], -len(src.sentences[i].content)))
    return src.sentences[best], counts[best] / len(s.content)


def _word_at(text: str, pred: Callable[[str], bool]) -> re.Match[str] | None:
    return next((w for w in _words(text) if pred(_plain(w.group(0)))), None)


def _flips(
    text: str, offset: int, number: int, s: _Sentence, src: _Sources, match_threshold: float,
    checks: frozenset[str],
) -> list[Finding]:  # fmt: skip
    other, share = _best_match(s, src)
    if other is None or share < match_threshold:
        return []
    out: list[Finding] = []
    if "negation" in checks:
        mine, theirs = _negation_scopes(s), _negation_scopes(other)
        has_mine = any(_negated(w) for w in s.words)
        has_theirs = any(_negated(w) for w in other.words)
        if has_mine and not has_theirs and (mine & other.content) - src.negated:
            w = _word_at(text, _negated)
            if w:
                detail = "the output negates what the documents state"
                out.append(_finding("negation", number, offset, w, detail))
        elif has_theirs and not has_mine and theirs & s.content:
            stem = next(iter(sorted(theirs & s.content)))
            w = _word_at(text, lambda p: _content(p) and _stem(p) == stem)
            if w:
                detail = "the documents negate what the output states"
                out.append(_finding("negation", number, offset, w, detail))
    if "antonyms" in checks:
        out.extend(_antonym_flips(text, offset, number, s, other))
    return out


def _antonym_flips(
    text: str, offset: int, number: int, s: _Sentence, other: _Sentence
) -> list[Finding]:
    mine = {_ANTONYMS[w]: w for w in s.words if w in _ANTONYMS}
    theirs = {_ANTONYMS[w]: w for w in other.words if w in _ANTONYMS}
    out = []
    for (group, side), word in mine.items():
        opposite = theirs.get((group, 1 - side))
        if opposite and (group, side) not in theirs and (group, 1 - side) not in mine:
            w = _word_at(text, lambda p, word=word: p == word)
            if w:
                detail = f'the documents say "{opposite}"'
                out.append(_finding("antonym", number, offset, w, detail))
    return out


def _finding(kind: str, number: int, offset: int, w: re.Match[str], detail: str) -> Finding:
    return Finding(kind, number, offset + w.start(), offset + w.end(), w.group(0), detail)


def _span_text(sentence: str, start: int, end: int) -> tuple[int, str]:
    """A number's span widened to the unit word after it (``45 days``)."""
    after = re.match(r"\s+([a-z]+)\b", sentence[end:])
    if after and after.group(1) not in _STOPWORDS:
        end += after.end()
    return end, sentence[start:end]


def _check_sentence(
    text: str, offset: int, number: int, src: _Sources, checks: frozenset[str],
    match_threshold: float,
) -> list[Finding]:  # fmt: skip
    out: list[Finding] = []
    dates = _dates(text)
    if "dates" in checks:
        for d in dates:
            if not _date_supported(d, src):
                out.append(
                    Finding("date", number, offset + d.start, offset + d.end, text[d.start : d.end])
                )
    if "numbers" in checks:
        for n in _numbers(text, answer=True):
            if any(d.start <= n.start < d.end for d in dates):
                continue
            if not _number_supported(n, _hedged(text, n.start), src):
                end, shown = _span_text(text, n.start, n.end)
                out.append(Finding("number", number, offset + n.start, offset + end, shown))
    if "names" in checks:
        for start, end, words in _names(text):
            if any(d.start <= start < d.end for d in dates):
                continue
            if not _name_supported(words, src):
                out.append(Finding("name", number, offset + start, offset + end, text[start:end]))
    if checks & {"negation", "antonyms"}:
        out.extend(_flips(text, offset, number, _sentence(text), src, match_threshold, checks))
    return out


def find_inconsistencies(
    output: str,
    documents: Sequence[str],
    *,
    extra_source: str = "",
    checks: Iterable[str] = CHECKS,
    match_threshold: float = 0.6,
) -> tuple[int, list[Finding]]:
    """``(sentences, findings)``: the number of output sentences checked and what was found
    in them (see the module doc). ``extra_source`` supports names, numbers and dates only."""
    chosen = frozenset(checks)
    src = _sources(documents, extra_source)
    findings: list[Finding] = []
    sentences = _sentences(output)
    cursor = 0
    for i, sentence in enumerate(sentences, 1):
        offset = output.find(sentence, cursor)
        cursor = offset + len(sentence)
        findings.extend(_check_sentence(sentence, offset, i, src, chosen, match_threshold))
    return len(sentences), findings


class FactConsistencyEvaluator(RuleEvaluator):
    """Names, numbers, dates, negations and antonyms of the output checked against the
    retrieved documents, sentence by sentence (see the module doc). Score: the share of
    sentences without a finding; passes when it is at least ``threshold``."""

    def __init__(
        self,
        name: str,
        *,
        threshold: float = 1.0,
        checks: Sequence[str] | None = None,
        match_threshold: float = 0.6,
        quote: bool = True,
        input_as_source: bool = True,
    ) -> None:
        super().__init__(name)
        for key, value in (("threshold", threshold), ("match_threshold", match_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{key}: expected a number between 0 and 1, got {value!r}")
        chosen = list(CHECKS if checks is None else checks)
        unknown = [c for c in chosen if c not in CHECKS]
        if unknown or not chosen:
            raise ValueError(
                f"checks: expected some of {', '.join(CHECKS)}, got {', '.join(map(repr, unknown))}"
                if unknown
                else f"checks: expected at least one of {', '.join(CHECKS)}"
            )
        self.threshold = threshold
        self.checks = tuple(chosen)
        self.match_threshold = match_threshold
        self.quote = quote
        self.input_as_source = input_as_source

    def check(self, item: EvalInput) -> Verdict:
        documents = grounding_documents(item)
        total, findings = find_inconsistencies(
            item.output_text,
            documents,
            extra_source=item.input_text if self.input_as_source else "",
            checks=self.checks,
            match_threshold=self.match_threshold,
        )
        flagged = {f.sentence for f in findings}
        score = (total - len(flagged)) / total if total else 1.0
        ok = score >= self.threshold
        label = "consistent" if not findings else "inconsistent"
        return self.verdict(ok, round(score, 4), label, _explain(total, findings, self.quote))


def _explain(total: int, findings: list[Finding], quote: bool) -> str:
    clean = total - len({f.sentence for f in findings})
    head = f"{clean} of {total} sentence(s) without a finding"
    if not findings:
        return head
    shown = "; ".join(f.describe(quote) for f in findings[:5])
    more = f"; and {len(findings) - 5} more" if len(findings) > 5 else ""
    return f"{head}: {shown}{more}"
