"""PII and secret detectors for the redaction stage.

Every detector is a cheap candidate search followed by a validator written for that kind of
value (Luhn for cards, the IBAN length table and mod-97, the SSN allocation rules, octet
rules for IPv4 and ``ipaddress`` for IPv6, a decoded JOSE header for JWTs, provider key
formats for secrets).

Speed comes from scanning a *shape* of the text instead of the text itself: one
``bytes.translate`` maps digits to ``D``, letters to ``A``/``a`` and keeps punctuation, so
"is there a run of digits here?" or "two capitals then two digits?" become literal searches,
which the regex engine runs at memory speed, while a character-class search walks the text
one character at a time. Positions in the shape are positions in the text (the text is
encoded to Latin-1 with one replacement byte per other character). Only the few places that
look like something are then matched with the real patterns, on the original text.

The public entry point is :class:`Detectors`; :func:`luhn_ok`, :func:`iban_ok` and
:func:`ssn_ok` are exposed for tests and for anyone who wants the validators alone.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from llmtap.pipeline.prefilter import TOKEN_CHARS, Prefilter, make_prefilter
from llmtap.secret_names import SECRET_KEY_NAME as SECRET_KEY_NAME
from llmtap.secret_names import is_secret_name as is_secret_name

# Placeholder types written into redacted text (``<EMAIL>``, ``<EMAIL:3f2a…>``).
EMAIL: Final = "EMAIL"
PHONE: Final = "PHONE"
CREDIT_CARD: Final = "CREDIT_CARD"
SSN: Final = "SSN"
IBAN: Final = "IBAN"
IP: Final = "IP"
SECRET: Final = "SECRET"

# Detector names as written in the config, and the placeholder type each produces.
DETECTOR_TYPES: Final[dict[str, str]] = {
    "email": EMAIL,
    "phone": PHONE,
    "credit_card": CREDIT_CARD,
    "ssn": SSN,
    "iban": IBAN,
    "ip": IP,
    "secrets": SECRET,
}
ALL_DETECTORS: Final[tuple[str, ...]] = tuple(DETECTOR_TYPES)

# When two findings overlap, the higher priority wins (then the longer one). Custom
# patterns come first: a user who names a value knows best what it is.
_PRIORITY: Final[dict[str, int]] = {
    SECRET: 90,
    IBAN: 80,  # a valid IBAN often holds a Luhn-valid run of 16 digits
    CREDIT_CARD: 70,
    SSN: 60,
    EMAIL: 50,
    IP: 40,  # a valid dotted quad is never a phone number
    PHONE: 30,
}
_CUSTOM_PRIORITY: Final = 100

# What the redaction stage writes; never detected again, so redaction is idempotent.
PLACEHOLDER_RE: Final = re.compile(r"<[A-Z][A-Z0-9_]*(?::[0-9a-f]{4,64})?>")

Finding = tuple[int, int, str]  # start, end, placeholder type

# ---------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------


def _table(mapping: Callable[[int], int]) -> bytes:
    return bytes(mapping(i) for i in range(256))


def _shape_byte(i: int) -> int:
    if 48 <= i <= 57:
        return ord("D")
    if 65 <= i <= 90:
        return ord("A")
    if 97 <= i <= 122:
        return ord("a")
    if i >= 128:
        return ord("u")
    return i


_TOKEN_CHARS: Final = TOKEN_CHARS  # the pre-filter's long tokens are the same
_SHAPE: Final = _table(_shape_byte)
_TOKSHAPE: Final = _table(lambda i: ord("t") if i in _TOKEN_CHARS else ord(" "))

# At least four digits, separated by at most three separator characters each time.
_NUM_RUN: Final = re.compile(rb"D(?:[ .()/+\-]{0,3}D){3,}")
# An IBAN starts with its country code and check digits: two capitals then two digits, a
# literal search on the shape. All in lower case it is looked for only before a run of 7+
# digits (every IBAN format holds one): "aaDD" is no rare pattern in a shape of prose.
_IBAN_HINT: Final = re.compile(rb"AADD")
_IBAN_LOWER_HINT: Final = b"aaDD"
_IBAN_LOWER_REACH: Final = 40  # from an IBAN's start to its first run of 7 digits, at most
_SSN_SHAPE: Final = re.compile(rb"(?<!D)DDD([ \-])DD\1DDDD(?!D)|(?<!D)D{9}(?!D)")
_LONG_TOKEN: Final = b"t" * 16


def _long_tokens(raw: bytes) -> list[tuple[int, int]]:
    r"""Spans of the runs of 16+ token characters (``[A-Za-z0-9_\-.+/=]``). ``bytes.find``
    skips ahead by the needle's length wherever a space-like byte is, so this costs little
    on prose."""
    tok = raw.translate(_TOKSHAPE)
    out = []
    i = tok.find(_LONG_TOKEN)
    while i != -1:
        start = tok.rfind(b" ", 0, i) + 1
        end = tok.find(b" ", i)
        if end == -1:
            end = len(tok)
        out.append((start, end))
        i = tok.find(_LONG_TOKEN, end)
    return out


def _latin1(text: str) -> bytes:
    """One byte per character: positions in the result are positions in ``text``."""
    if text.isascii():
        return text.encode("ascii")
    return text.encode("latin-1", "replace")


# ---------------------------------------------------------------------------------------
# Validators
# ---------------------------------------------------------------------------------------


_LUHN_DOUBLE: Final = str.maketrans("0123456789", "0246813579")  # digit sum of 2d


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    kept = sum(map(int, digits[-1::-2]))
    doubled = sum(map(int, digits[-2::-2].translate(_LUHN_DOUBLE)))
    return (kept + doubled) % 10 == 0


# Maestro issues 12-digit numbers too, under these IINs only (the 13-19 digit ones are
# covered by the 50 and 56-69 ranges below).
_MAESTRO_12: Final = frozenset(
    {"5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763"}
)


def _card_brand_ok(d: str) -> bool:
    """Issuer prefix (IIN) and length of the major networks."""
    n = len(d)
    if n == 12:
        return d[:4] in _MAESTRO_12
    two, four, six = int(d[:2]), int(d[:4]), int(d[:6])
    if d[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    if two in (34, 37):  # American Express
        return n == 15
    if four == 6011 or 644 <= int(d[:3]) <= 649 or two == 65 or 622126 <= six <= 622925:
        return 16 <= n <= 19  # Discover
    if 300 <= int(d[:3]) <= 305 or four == 3095 or two in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if two == 35:  # JCB (3528-3589, and the rest of 35 seen in test data)
        return 16 <= n <= 19
    if four in (2131, 1800):  # JCB, older 15-digit numbers
        return n == 15
    if 2200 <= four <= 2204:  # Mir
        return 16 <= n <= 19
    if two == 62 or two == 81:  # UnionPay, RuPay
        return 16 <= n <= 19
    if two == 50 or 56 <= two <= 69:  # Maestro and national debit schemes (60, 63, 67, ...)
        return 13 <= n <= 19
    return False


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """US SSN allocation rules: no area 000, 666 or 9xx, no group 00, no serial 0000."""
    a = int(area)
    if a == 0 or a == 666 or a >= 900 or group == "00" or serial == "0000":
        return False
    # Numbers the SSA voided after they were printed in advertising.
    return f"{area}{group}{serial}" not in ("078051120", "219099999")


# ISO 13616 IBAN lengths per country.
IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


_IBAN_LETTERS: Final = str.maketrans({chr(c): str(c - 55) for c in range(65, 91)})  # A=10


def iban_ok(iban: str) -> bool:
    """Length for its country and the ISO 7064 mod-97 checksum (spaces ignored)."""
    s = iban.replace(" ", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit() or not s.isalnum():
        return False
    if not s.isascii():
        return False
    return int((s[4:] + s[:4]).translate(_IBAN_LETTERS)) % 97 == 1


# ---------------------------------------------------------------------------------------
# Numbers: phones, cards, SSNs, IPv4 — searched only around runs of digits
# ---------------------------------------------------------------------------------------

_WORDISH: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_DIGITS: Final = frozenset("0123456789")


def _right_ok(text: str, end: int) -> bool:
    """A number ends here: no letter or digit follows, nor a separator then a digit."""
    if end >= len(text):
        return True
    c = text[end]
    if c in _WORDISH:
        return False
    nxt = text[end + 1] if end + 1 < len(text) else " "
    if c == "-":
        return nxt not in _WORDISH  # 0-491-45497-X: one token
    return not (c in ".:/," and nxt in _DIGITS)


_NUM_LEFT = r"(?<![A-Za-z0-9_#$€£¥@/\\+\-])(?<![0-9][.,:])"

_PHONE: Final = re.compile(
    _NUM_LEFT
    + r"(?:\+\d{1,3}[ .\-]?(?:\(0\)[ .\-]?)?)?"  # +CC, then an optional (0) trunk
    + r"(?:\(\d{1,5}\)[ .\-]?)?"  # (area code)
    + r"\d{1,14}(?:(?:[ .\-/]|[ ]-[ ])\d{1,10}){0,6}"  # groups
    + r"(?:[ ]?(?:x|ext\.?|extn\.?)[ ]?\d{1,6})?"  # extension
)
_PHONE_EXT: Final = re.compile(r"[ ]?(?:x|ext\.?|extn\.?)[ ]?\d{1,6}$")
_DIGIT_RUNS: Final = re.compile(r"\d+")
_SEPARATOR_RUNS: Final = re.compile(r"\D+")
_GROUP_SPLIT: Final = re.compile(r"[ .\-]")
_CARD: Final = re.compile(_NUM_LEFT + r"\d{1,19}(?:[ .\-]\d{1,19}){0,7}")
_SSN: Final = re.compile(r"(?<![A-Za-z0-9_\-])(\d{3})([ \-])(\d{2})\2(\d{4})")
_SSN_BARE: Final = re.compile(r"(?<![A-Za-z0-9_\-])\d{9}")
_IPV4: Final = re.compile(r"(?<![A-Za-z0-9_.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_BARE_NUMBER: Final = re.compile(r"(?<![A-Za-z0-9_#$€£¥@/\\.,\-])\+?\d{8,15}")
_DATE_LIKE: Final = re.compile(r"\d{4}([\-/.])\d{1,2}\1\d{1,2}|\d{1,2}([\-/.])\d{1,2}\2\d{4}")


def _alternation(words: Iterable[str]) -> str:
    """``words`` as one alternation grouped by first character (``c(?:all|ell)``): the regex
    engine tries one branch per distinct first character at each position, not every word."""
    by_first: dict[str, list[str]] = {}
    for w in sorted(set(words)):
        by_first.setdefault(w[0], []).append(re.escape(w[1:]))
    return "|".join(
        re.escape(c) + ("(?:" + "|".join(rest) + ")" if rest != [""] else "")
        for c, rest in by_first.items()
    )


def _context_re(words: Sequence[str], inside: Sequence[str] = ()) -> re.Pattern[str]:
    """Any of ``words`` starting a word (not "hotel" for "tel", not "recall" for "call"),
    or of ``inside`` anywhere (scripts written without spaces: 请拨打, เบอร์โทรศัพท์)."""
    alts = r"(?<![^\W\d_])(?:" + _alternation(words) + ")"
    if inside:
        alts += "|" + _alternation(inside)
    return re.compile(alts)


_PHONE_CONTEXT: Final = _context_re((
    "phone", "tel", "call", "mobile", "cell", "whatsapp", "sms", "fax", "contact",
    "dial", "ring", "reach", "my number", "text me", "text us", "txt me", "hotline",
    "handy", "telefon", "rufnummer", "anrufen", "ruf mich", "portable", "téléphone", "tél",
    "appel", "joindre", "teléfono", "móvil", "movil", "llama", "llám", "telefono", "cellulare",
    "chiama", "telefoon", "mobiel", "bel ", "celular", "ligue", "liga ", "ligar",
    "mobil ", "mobil:", "mobil.", "mobilní", "mobilnummer", "puhelin", "tlf", "zadzwoń",
    "komórk", "телефон", "тел", "звон", "позвон", "फ़ोन", "फोन", "कॉल",
    "điện thoại", "gọi", "telp", "hubungi", "aray", "هاتف", "اتصل", "טלפון", "נייד",
    "zavolej", "zavolaj", "telefón", "sunați", "зателефон", "обад", "telepon", "nazov",
    "mob.", "mob:", "poklič", "تلفن", "تماس", "ტელ", "zəng", "հեռախոս", "番号",
), inside=(
    "電話", "携帯", "电话", "手机", "手機", "致电", "拨打", "전화", "연락", "โทร", "เบอร์",
))  # fmt: skip
_CARD_CONTEXT: Final = _context_re((
    "card", "karte", "carte", "tarjeta", "carta", "cartão", "kaart", "karta", "カード",
    "visa", "mastercard", "amex", "cc ", "cc:", "cc#", "paid", "pay with", "charge",
))  # fmt: skip
_SSN_CONTEXT: Final = _context_re(("ssn", "social security", "soc sec", "ss#", "ss #"))


def _context_before(text: str, start: int, words: re.Pattern[str], width: int = 32) -> bool:
    return words.search(text[max(0, start - width) : start].lower()) is not None


# A phone word that names something else: "call id", "contact_id", "ring buffer".
_NOT_PHONE_AFTER: Final = re.compile(
    r"\w*[ _\-.]*(?:id|ids|count|duration|buffer|size|stack|latency|limit|total)\b"
)


def _phone_word_before(text: str, start: int) -> bool:
    window = text[max(0, start - 32) : start].lower()
    return any(not _NOT_PHONE_AFTER.match(window, m.end()) for m in _PHONE_CONTEXT.finditer(window))


# Group lengths of national numbers that start with neither 0 (a trunk prefix) nor "(":
# NANP 555-123-4567 and 1-800-555-0199, 612 345 678 (ES, PL, PT), 98765 43210 (IN),
# 138 0013 8000 (CN), 11 3915-0008 (BR), 22 123 45 67 (PL).
# Others need a word such as "phone" before them.
_PLAIN_FORMATS: Final = frozenset(
    {
        (3, 3, 4),
        (1, 3, 3, 4),
        (3, 3, 3),
        (3, 2, 2, 2),
        (5, 5),
        (3, 4, 4),
        (2, 4, 4),
        (2, 5, 4),
        (2, 3, 2, 2),
    }
)


def _phone_valid(text: str, cand: str, start: int) -> bool:
    m = _PHONE_EXT.search(cand) if "x" in cand or "e" in cand else None
    main = cand[: m.start()] if m else cand
    groups = _DIGIT_RUNS.findall(main)
    digits = "".join(groups)
    if main.startswith("+"):
        nd = len(digits) - (1 if "(0)" in main else 0)
        if main[1] == "0" or not 8 <= nd <= 15:
            return False
        return len(groups) == 1 or max(len(g) for g in groups) <= 12
    nd = len(digits)
    lens = tuple(len(g) for g in groups)
    kinds = set(_SEPARATOR_RUNS.findall(main))
    if not kinds:  # a bare run of digits is a phone number only when the text says so
        return 8 <= nd <= 12 and _phone_word_before(text, start)
    if not 7 <= nd <= (14 if digits.startswith("00") else 12):
        return False
    if lens[-1] == 1 or max(lens) > 8:
        return False  # 0-306-40615-2 (ISBN-10), long runs
    if nd == 13 and digits[:3] in ("978", "979"):
        return False  # ISBN-13
    if lens == (3, 2, 4) and kinds <= {"-", " "}:
        return False  # SSN shape
    if len(groups) == 3 and _DATE_LIKE.fullmatch(main):
        return False
    paren = main.startswith("(")
    trunk = digits[0] == "0"
    if kinds == {"."}:
        dotted = lens == (3, 3, 4) or (
            trunk and min(lens) >= 2 and (max(lens) >= 3 or lens == (2, 2, 2, 2, 2))
        )  # 555.123.4567, 0412.345.678, 01.23.45.67.89; not versions, IPs, decimals
        if not dotted:
            return _phone_word_before(text, start)
    ok_shape = ((paren or trunk) and nd >= 8 and ("/" not in "".join(kinds) or trunk)) or (
        lens in _PLAIN_FORMATS
    )
    if ok_shape and kinds <= {" ", "."} and len(groups) >= 3 and not trunk:
        thousands = lens[0] <= 3 and all(n == 3 for n in lens[1:])  # 1 234 567 890
        if thousands and (lens != (3, 3, 3) or _money_around(text, start, start + len(cand))):
            ok_shape = False
    return ok_shape or _phone_word_before(text, start)


def _money_around(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 2) : start]
    after = text[end : end + 4].lower()
    return any(c in before for c in "$€£¥") or any(
        after.lstrip().startswith(u) for u in ("€", "$", "£", "eur", "usd", "%")
    )


_SPACE_PIECE: Final = re.compile(r"[^ ]+")
_BARE_CARD: Final = re.compile(r"\d{12,19}")


def _phone_shaped(cand: str) -> bool:
    """A part of a longer run that stands as a phone number: not just digits and spaces."""
    return cand[0] in "+(" or "-" in cand or "." in cand or "/" in cand


def _phone_ok(text: str, s: int, e: int) -> bool:
    cand = text[s:e]
    if cand[0] not in "+(0123456789" or cand[-1] not in _DIGITS:
        return False
    if s > 0 and (text[s - 1] in _WORDISH or text[s - 1] in "+#$@/\\-"):
        return False
    return _right_ok(text, e) and _phone_valid(text, cand, s)


def _phone_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The candidate if it is a phone number; else the longest run of its space-separated
    pieces that is one, so that ``"call 555-123-4567 2024"`` is found without the year
    (pieces are dropped from the ends, the far end first)."""
    if _phone_ok(text, start, end):
        return start, end
    cand = text[start:end]
    if " " not in cand or not _phone_shaped(cand):
        return None
    pieces = [m.span() for m in _SPACE_PIECE.finditer(text, start, end)]
    k = len(pieces)
    if k > 12:
        return None
    for size in range(k - 1, 0, -1):
        for i in range(k - size, -1, -1):
            s, e = pieces[i][0], pieces[i + size - 1][1]
            if _phone_shaped(text[s:e]) and _phone_ok(text, s, e):
                return s, e
    return None


def ean13_ok(digits: str) -> bool:
    """The GTIN/EAN-13 check digit (weights 1 and 3), as on product barcodes."""
    total = sum(map(int, digits[0:12:2])) + 3 * sum(map(int, digits[1:12:2]))
    return (10 - total % 10) % 10 == int(digits[12])


def _find_phones(text: str, ws: int, we: int, out: list[Finding]) -> None:
    for m in _PHONE.finditer(text, ws, we):
        if m.end() - m.start() < 7:
            continue
        got = _phone_span(text, m.start(), m.end())
        if got:
            out.append((got[0], got[1], PHONE))


def _card_ok(text: str, s: int, e: int) -> bool:
    cand = text[s:e]
    if not _right_ok(text, e) or (s > 0 and text[s - 1] in _WORDISH):
        return False
    if s > 1 and text[s - 1] in ".,:" and text[s - 2] in _DIGITS:
        return False  # the end of 1.675987831012, a decimal
    digits = cand.replace(" ", "").replace("-", "").replace(".", "")
    if not 12 <= len(digits) <= 19 or not _card_brand_ok(digits) or not luhn_ok(digits):
        return False
    if len(digits) <= 13 and len(cand) == len(digits) and ean13_ok(digits.zfill(13)):
        # a product barcode (EAN-13, UPC-A), unless the text says card (13-digit Visas
        # are rare now, 12-digit Maestros too)
        return _context_before(text, s, _CARD_CONTEXT)
    if len(digits) != len(cand):  # grouped: one kind of separator, sensible groups
        if (" " in cand) + ("-" in cand) + ("." in cand) != 1:
            return False
        lens = [len(g) for g in _GROUP_SPLIT.split(cand)]
        if lens[0] != 4 or min(lens[:-1]) < 4:
            return False
    return True


def _find_cards(text: str, ws: int, we: int, out: list[Finding]) -> None:
    for m in _CARD.finditer(text, ws, we):
        s, e = m.span()
        if e - s < 12:
            continue
        if _card_ok(text, s, e):
            out.append((s, e, CREDIT_CARD))
            continue
        for b in _BARE_CARD.finditer(text, s, e):  # a bare number glued to other numbers
            if b.span() != (s, e) and _card_ok(text, b.start(), b.end()):
                out.append((b.start(), b.end(), CREDIT_CARD))


def _find_ssns(text: str, ws: int, we: int, out: list[Finding]) -> None:
    for m in _SSN.finditer(text, ws, we):
        if _right_ok(text, m.end()) and ssn_ok(m.group(1), m.group(3), m.group(4)):
            out.append((m.start(), m.end(), SSN))
    for m in _SSN_BARE.finditer(text, ws, we):
        d = m.group()
        if (
            _right_ok(text, m.end())
            and ssn_ok(d[:3], d[3:5], d[5:])
            and _context_before(text, m.start(), _SSN_CONTEXT)
        ):
            out.append((m.start(), m.end(), SSN))


def _find_ipv4(text: str, ws: int, we: int, out: list[Finding]) -> None:
    for m in _IPV4.finditer(text, ws, we):
        end = m.end()
        if end < len(text) and (
            text[end] in _WORDISH or (text[end] == "." and text[end + 1 : end + 2] in _DIGITS)
        ):
            continue  # 1.2.3.4.5 or 1.2.3.4a: a version or an identifier
        if _ipv4_ok(m.group()):
            out.append((m.start(), end, IP))


def _ipv4_ok(dotted: str) -> bool:
    """What ``ipaddress.IPv4Address`` accepts of four dot-separated runs of 1-3 digits
    (ASCII digits, octets up to 255, no leading zero), without building the address."""
    if not dotted.isascii():
        return False
    for octet in dotted.split("."):
        if (len(octet) > 1 and octet[0] == "0") or int(octet) > 255:
            return False
    return True


# ---------------------------------------------------------------------------------------
# Email, IPv6, IBAN
# ---------------------------------------------------------------------------------------

# The local part is matched backwards from the "@" (on the reversed text before it), the
# domain forwards; both are plain runs, validated in Python.
# \w plus the Indic and Thai blocks, whose vowel signs are combining marks, not \w.
_EMAIL_LOCAL_REV: Final = re.compile(r"[\w.%+\-'\u0900-\u0dff\u0e00-\u0e7f]{1,64}")
_EMAIL_DOMAIN: Final = re.compile(
    r"(?:[^\W_](?:[\w\-]{0,61}[^\W_])?\.){1,8}[^\W\d_]{2,24}(?![\w\-])"
)


def _email_domain_end(text: str, start: int) -> int:
    """End of a domain name (``mail.example.co.uk``) starting at ``start``, or -1."""
    m = _EMAIL_DOMAIN.match(text, start)
    return m.end() if m else -1


def _find_emails(text: str, out: list[Finding]) -> None:
    at = text.find("@")
    while at != -1:
        m = _EMAIL_LOCAL_REV.match(text[max(0, at - 64) : at][::-1])
        if m:
            local = m.group()[::-1].lstrip(".-+'")
            end = _email_domain_end(text, at + 1)
            if local and end != -1 and ".." not in local and not local.endswith("."):
                out.append((at - len(local), end, EMAIL))
                at = text.find("@", end)
                continue
        at = text.find("@", at + 1)


_V6_HINT: Final = re.compile(r":[0-9A-Fa-f]{0,4}:")
_V6_CHARS: Final = frozenset("0123456789abcdefABCDEF:.")


def _find_ipv6(text: str, out: list[Finding]) -> None:
    n = len(text)
    last = 0
    for m in _V6_HINT.finditer(text):
        if m.start() < last:
            continue
        s = m.start()
        while s > 0 and text[s - 1] in _V6_CHARS and m.start() - s < 40:
            s -= 1
        e = m.end()
        while e < n and text[e] in _V6_CHARS and e - s < 46:
            e += 1
        last = e
        while e > s and text[e - 1] == ".":
            e -= 1
        while s < e and text[s] == ".":
            s += 1
        if (s > 0 and text[s - 1] in _WORDISH) or (e < n and text[e] in _WORDISH):
            continue
        cand = text[s:e]
        if not any(c in _DIGITS for c in cand):
            continue  # "a::b"-like scope operators in code
        for c2 in (cand, cand.rstrip(":")):
            try:
                ipaddress.IPv6Address(c2)
            except ValueError:
                continue
            out.append((s, s + len(c2), IP))
            break


def _lower_iban_starts(shape: bytes, ws: int) -> list[int]:
    """Where a lower case IBAN may start before the run of digits at ``ws``."""
    out = []
    i = shape.find(_IBAN_LOWER_HINT, max(0, ws - _IBAN_LOWER_REACH), ws + 4)
    while i != -1:
        out.append(i)
        i = shape.find(_IBAN_LOWER_HINT, i + 1, ws + 4)
    return out


def _find_ibans(text: str, shape: bytes, starts: Iterable[int], out: list[Finding]) -> None:
    """IBANs starting at ``starts`` (positions of an "AADD" or "aaDD" in the shape)."""
    n = len(text)
    for s in starts:
        if s > 0 and shape[s - 1] in b"AaDu_":
            continue
        length = IBAN_LENGTHS.get(text[s : s + 2].upper())
        if length is None:
            continue
        got = 0
        i = s
        sep = ""  # one kind of separator between the groups: spaces or dashes
        while i < n and got < length:
            c = text[i]
            if c.isascii() and c.isalnum():
                got += 1
                i += 1
            elif c in " -" and got >= 4 and c == (sep or c) and i + 1 < n and text[i + 1] != c:
                sep = c
                i += 1
            else:
                break
        if got != length or (
            i < n
            and (
                text[i] in _WORDISH or (text[i] == "-" and (sep or text[i + 1 : i + 2] in _WORDISH))
            )
        ):
            continue
        cand = text[s:i]
        if (cand.upper() == cand or cand.lower() == cand) and iban_ok(cand.replace("-", "")):
            out.append((s, i, IBAN))


# ---------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------

# Provider keys: (first two characters, kind, pattern). A key starts a token or follows a
# non-alphanumeric character inside one (``key=AIza…``, ``"sk-…"``) and ends the same way.
_KEY_FORMATS: Final[tuple[tuple[tuple[str, ...], str, str], ...]] = (
    (("sk",), "anthropic", r"sk-ant-[a-z]{3,8}\d{2}-[A-Za-z0-9_\-]{32,}"),
    (("sk",), "openai", r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}"),
    (("sk", "rk"), "stripe", r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    (("wh",), "stripe", r"whsec_[A-Za-z0-9+/=]{24,}"),
    (
        ("AK", "AS", "AB", "AC", "AG", "AI", "AN", "AP", "AR", "A3"),
        "aws_id",  # AWS writes base-32 bodies; secret scanners take any capital or digit
        r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)"
        r"[A-Z0-9]{16}",
    ),
    (("AI",), "gcp", r"AIza[0-9A-Za-z_\-]{35}"),
    (("ya",), "google_oauth", r"ya29\.[0-9A-Za-z_\-]{20,}"),
    (("gh",), "github", r"gh[pousr]_[A-Za-z0-9]{36,251}"),
    (("gi",), "github", r"github_pat_[A-Za-z0-9_]{40,}"),
    (("gl",), "gitlab", r"glpat-[A-Za-z0-9_\-]{20,}"),
    (("xo",), "slack", r"xox[abeoprs]-[A-Za-z0-9\-]{10,}"),
    (("xa",), "slack", r"xapp-\d-[A-Za-z0-9\-]{10,}"),
    (("ho",), "slack_hook", r"hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"),
    (("hf",), "huggingface", r"hf_[A-Za-z0-9]{30,}"),
    (("gs",), "groq", r"gsk_[A-Za-z0-9]{40,}"),
    (("xa",), "xai", r"xai-[A-Za-z0-9]{40,}"),
    (("pp",), "perplexity", r"pplx-[A-Za-z0-9]{40,}"),
    (("r8",), "replicate", r"r8_[A-Za-z0-9]{30,}"),
    (("np",), "npm", r"npm_[A-Za-z0-9]{36}"),
    (("py",), "pypi", r"pypi-[A-Za-z0-9_\-]{50,}"),
    (("SG",), "sendgrid", r"SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}"),
    (("do",), "digitalocean", r"do[por]_v1_[a-f0-9]{64}"),
    (("sh",), "shopify", r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}"),
    (("da",), "databricks", r"dapi[a-f0-9]{32}"),
    (("sq",), "square", r"sq0(?:atp|csp)-[A-Za-z0-9_\-]{22,}"),
    (("Ac",), "azure_storage", r"AccountKey=(?P<value>[A-Za-z0-9+/]{40,}={0,2})"),
    (("ey",), "jwt", r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"),
)
_BY_PREFIX: Final[dict[str, list[tuple[str, re.Pattern[str]]]]] = {}
for _prefixes, _kind, _regex in _KEY_FORMATS:
    for _p in _prefixes:
        _BY_PREFIX.setdefault(_p, []).append((_kind, re.compile(_regex + r"(?![A-Za-z0-9_])")))
# Where a key may start: not after a letter or digit, and with a known first two characters.
_KEY_START: Final = re.compile(
    r"(?<![A-Za-z0-9])(?:" + "|".join(sorted({re.escape(p) for p in _BY_PREFIX})) + ")"
)
_BEARER_TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]{16,}=*")
# "Bearer" right before a token (anywhere: a header value, a curl line, the text's start).
_BEARER_BEFORE: Final = re.compile(r"(?<![A-Za-z0-9])(?i:bearer)[ \t:=\"']{1,3}\Z")
_PEM_BEGIN: Final = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")
_URL_CREDS: Final = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]{0,15}://[^\s:/@\"'<>]{1,64}:(?P<v>[^\s:/@\"'<>]{1,128})@"
)
# After ``:`` or ``=`` (also ``:=`` and ``=>``): an optional quote, then the value.
_ASSIGNED_VALUE: Final = re.compile(r"[=>]?\s{0,3}\\?[\"']?(?P<v>[^\s\"'`,;<>(){}\[\]\\&]{8,256})")
_AUTH_VALUE: Final = re.compile(
    r"\s{0,3}\\?[\"']?(?:(?i:bearer|basic|token|digest|sso-key)\s+)?"
    r"(?P<v>[A-Za-z0-9\-._~+/]{8,}=*)"
)
_IDENT_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_NOT_SECRET_VALUES: Final = frozenset(
    {"password", "required", "optional", "undefined", "changeme", "redacted", "xxxxxxxx"}
)
_HAS_DIGIT: Final = re.compile(r"\d")
_HAS_SYMBOL: Final = re.compile(r"[^\w.\-]")


def _char_classes(value: str) -> int:
    """How many of lower case, upper case, digits, symbols ``value`` has."""
    return (
        (value.upper() != value)
        + (value.lower() != value)
        + (_HAS_DIGIT.search(value) is not None)
        + (_HAS_SYMBOL.search(value) is not None)
    )


def looks_secret(value: str, min_len: int = 8) -> bool:
    """A value that reads like a credential rather than a word, a number or a placeholder."""
    if len(value) < min_len or value.lower() in _NOT_SECRET_VALUES:
        return False
    if value[0] in "$%{<*" or value.startswith(("http", "os.", "process.", "env")):
        return False
    if len(set(value)) < 4 or "..." in value:
        return False
    return _char_classes(value) >= 2


def _random_body(body: str) -> bool:
    """Generated key material: at least two of lower case, upper case, digits."""
    return (
        (body.upper() != body) + (body.lower() != body) + (_HAS_DIGIT.search(body) is not None)
    ) >= 2


def _jwt_ok(token: str) -> bool:
    head = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        obj = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(obj, dict) and "alg" in obj


def _find_prefixed(text: str, s: int, e: int, out: list[Finding]) -> None:
    for start in _KEY_START.finditer(text, s, e):
        p = start.start()
        for kind, pattern in _BY_PREFIX[start.group()]:
            m = pattern.match(text, p, e)
            if not m:
                continue
            value = m.group()
            if kind == "openai":
                body = value[3:]
                if not _random_body(body.split("-", 1)[-1] if "-" in body[:8] else body):
                    continue
            elif (kind == "jwt" and not _jwt_ok(value)) or (
                kind in ("slack", "stripe", "gitlab", "square") and not _random_body(value)
            ):
                continue
            span = m.span("value") if "value" in pattern.groupindex else m.span()
            out.append((span[0], span[1], SECRET))
            break


def _find_pem(text: str, out: list[Finding]) -> None:
    for m in _PEM_BEGIN.finditer(text):
        label = f"-----END {m.group(1)}PRIVATE KEY{m.group(2) or ''}-----"
        end = text.find(label, m.end())
        # A block cut short (size caps) is still a key: redact to the end of the text.
        out.append((m.start(), len(text) if end == -1 else end + len(label), SECRET))


# Matched on the reversed text before the operator: quotes and spaces, then the name.
_IDENT_BEFORE_REV: Final = re.compile(r"[\s\"'\\]{0,4}([A-Za-z0-9_\-.]{1,64})")
_IDENT_ONLY: Final = re.compile(r"[A-Za-z0-9_\-.]{1,64}")


def _ident_before(text: str, i: int) -> str:
    """The name an assignment operator at ``i`` assigns to (quotes and spaces skipped)."""
    if i > 1 and text[i - 1] == '"':  # a JSON key, most likely: "name":
        j = text.rfind('"', max(0, i - 66), i - 1)
        name = text[j + 1 : i - 1]
        if j != -1 and name and text[j - 1 : j] != "\\" and _IDENT_ONLY.fullmatch(name):
            return name
    m = _IDENT_BEFORE_REV.match(text[max(0, i - 68) : i][::-1])
    return m.group(1)[::-1] if m else ""


def _credential_name(name: str) -> bool:
    """A name that may hold a credential (long names: only their end is read)."""
    return len(name) >= 64 or is_secret_name(name) or name[-13:].lower() == "authorization"


@functools.lru_cache(maxsize=4096)
def _quoted_name(name: str) -> tuple[bool, bool]:
    """For the text between quotes before ":" or "=": whether it may name a credential
    (also as a JSON key), and whether :func:`_ident_before` reads it as it is."""
    return _credential_name(name), _IDENT_ONLY.fullmatch(name) is not None


def _find_assignments(text: str, out: list[Finding]) -> None:
    """``password: hunter22``, ``AWS_SECRET_ACCESS_KEY=…``, ``Authorization: Bearer …``."""
    for op in ":=":
        i = text.find(op)
        while i != -1:
            m = _ASSIGNED_VALUE.match(text, i + 1)
            if m:
                name = _ident_before(text, i)
                if name:
                    low = name.lower()
                    if low.endswith("authorization"):
                        a = _AUTH_VALUE.match(text, i + 1)
                        if a and _random_body(a.group("v")):
                            out.append((a.start("v"), a.end("v"), SECRET))
                    elif is_secret_name(name) and looks_secret(m.group("v")):
                        out.append((m.start("v"), m.end("v"), SECRET))
            i = text.find(op, i + 1)


def _find_token_secrets(text: str, raw: bytes, shape: bytes, out: list[Finding]) -> None:
    """Provider keys, JWTs, bearer tokens and PEM blocks: all live in long tokens.

    A token with neither a digit nor a capital (``llmtap.redaction.count``) is skipped:
    generated key material of 16+ characters always has one or the other.
    """
    found = False
    for s, e in _long_tokens(raw):
        found = True
        if shape.find(b"D", s, e) == -1 and shape.find(b"A", s, e) == -1:
            continue
        _find_prefixed(text, s, e, out)
        w = max(0, s - 10)  # "Bearer" right before the token, in any case
        if (
            s >= 7
            and (text.rfind("earer", w, s) != -1 or text.rfind("EARER", w, s) != -1)
            and _BEARER_BEFORE.search(text, w, s)
        ):
            b = _BEARER_TOKEN.match(text, s, e)
            if b and _random_body(b.group()):
                out.append((b.start(), b.end(), SECRET))
    if found and "-----BEGIN" in text:
        _find_pem(text, out)


# ---------------------------------------------------------------------------------------
# The detector set
# ---------------------------------------------------------------------------------------


def _outside(found: list[Finding], holes: list[tuple[int, int]]) -> list[Finding]:
    """The findings that overlap none of ``holes`` (sorted, non-overlapping spans): only
    the last hole starting before a finding's end can overlap it."""
    starts = [h[0] for h in holes]
    out = []
    for f in found:
        i = bisect.bisect_left(starts, f[1]) - 1
        if i < 0 or holes[i][1] <= f[0]:
            out.append(f)
    return out


class Detectors:
    """The enabled built-in detectors plus custom patterns, run together over one text.

    ``find(text)`` returns non-overlapping findings ``(start, end, type)`` sorted by start,
    never inside an existing placeholder.

    ``engine``: ``python``, or ``hyperscan`` / ``auto`` (hyperscan when installed) for a
    compiled pre-filter (:mod:`llmtap.pipeline.prefilter`) in :meth:`may_find`, which then
    tells most clean texts from the rest in one pass; the answers are the same either way.
    (``find`` does without it: on short texts the detectors' own triggers cost less than a
    call into the engine.)
    """

    def __init__(
        self,
        enabled: Iterable[str] = ALL_DETECTORS,
        custom: Sequence[tuple[str, re.Pattern[str]]] = (),
        engine: str = "python",
    ) -> None:
        enabled = list(enabled)
        types = {DETECTOR_TYPES[name] for name in enabled}
        self.email = EMAIL in types
        self.phone = PHONE in types
        self.card = CREDIT_CARD in types
        self.ssn = SSN in types
        self.iban = IBAN in types
        self.ip = IP in types
        self.secrets = SECRET in types
        self.numeric = self.phone or self.card or self.ssn or self.ip
        self.custom = list(custom)
        self.priority = dict(_PRIORITY)
        for name, _ in self.custom:
            self.priority[name] = _CUSTOM_PRIORITY
        self.prefilter: Prefilter | None = make_prefilter(engine, enabled)

    def find(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        # Under 16 characters, letters alone cannot hold any built-in type ("assistant").
        if len(text) >= 6 and not (len(text) < 16 and text.isalpha()):
            self._builtin(text, out)
        for name, pattern in self.custom:
            for m in pattern.finditer(text):
                span = m.span("value") if "value" in pattern.groupindex else m.span()
                if span[1] > span[0]:
                    out.append((span[0], span[1], name))
        if not out:
            return out
        if "<" in text:
            holes = [m.span() for m in PLACEHOLDER_RE.finditer(text)]
            if holes:
                out = _outside(out, holes)
        return self._resolve(out) if len(out) > 1 else out

    def may_find(self, text: str) -> bool:
        """A cheap, conservative pre-check: False means ``find`` finds nothing in ``text``
        nor in any piece of it cut out at whitespace, quotes or backslashes (each detector
        needs a local trigger: an "@", a run of 7+ digits, a dotted number, two capitals and
        two digits, a colon pair, a long token, a credential name before ":" or "=").
        Custom patterns always count as a possible finding."""
        if self.custom:
            return True
        raw = _latin1(text)
        if self.prefilter is not None and not self.prefilter.may_match(text, raw):
            return False
        if (self.email or self.secrets) and "@" in text:
            return True
        if self.ip and ":" in text and _V6_HINT.search(text):
            return True
        shape = raw.translate(_SHAPE)
        if self.numeric:
            for m in _NUM_RUN.finditer(shape):
                run = m.group()
                if run.count(b"D") >= 7 or (self.ip and b"." in run):
                    return True
        if self.iban:
            if _IBAN_HINT.search(shape):
                return True
            if not self.numeric:  # else a run of 7+ digits has returned True above
                for m in _NUM_RUN.finditer(shape):
                    if m.group().count(b"D") >= 7 and _lower_iban_starts(shape, m.start()):
                        return True
        if self.secrets:
            if "-----BEGIN" in text:  # a private key block, whatever its body holds
                return True
            for s, e in _long_tokens(raw):
                if shape.find(b"D", s, e) != -1 or shape.find(b"A", s, e) != -1:
                    return True
            for op in ":=":
                i = text.find(op)
                while i != -1:
                    if i == 0:
                        i = text.find(op, 1)
                        continue
                    if text[i - 1] == '"':  # "name": — a JSON key, or a quoted name
                        j = text.rfind('"', 0, i - 1)
                        secret, plain = _quoted_name(text[j + 1 : i - 1])
                        if secret:
                            return True
                        if plain and j != -1 and i - 66 <= j and text[j - 1 : j] != "\\":
                            i = text.find(op, i + 1)
                            continue  # the name find reads (_ident_before)
                    if _credential_name(_ident_before(text, i)):
                        return True
                    i = text.find(op, i + 1)
        return False

    def _builtin(self, text: str, out: list[Finding]) -> None:
        raw = _latin1(text)
        if self.email and "@" in text:
            _find_emails(text, out)
        if self.ip and ":" in text:
            _find_ipv6(text, out)
        shape = raw.translate(_SHAPE)
        ibans: list[Finding] = []
        if self.iban and len(text) >= 15:
            first = _IBAN_HINT.search(shape)
            if first:
                starts = [m.start() for m in _IBAN_HINT.finditer(shape, first.start())]
                _find_ibans(text, shape, starts, ibans)
            if not self.numeric:  # lower case ones: before a run of 7+ digits
                for m in _NUM_RUN.finditer(shape):
                    if m.group().count(b"D") >= 7:
                        _find_ibans(text, shape, _lower_iban_starts(shape, m.start()), ibans)
            out.extend(ibans)
        lower_ibans = self.iban and len(text) >= 15
        if self.numeric:
            n = len(text)
            for m in _NUM_RUN.finditer(shape):
                ws, we = m.span()
                run = m.group()
                digits = run.count(b"D")
                if digits < 7:  # a year, an amount, a time: only an IPv4 fits
                    if self.ip and b"." in run:
                        _find_ipv4(text, ws, we, out)
                    continue
                if ibans and any(s <= ws and we <= e for s, e, _ in ibans):
                    continue  # the digits of an IBAN
                if (
                    lower_ibans
                    and shape.find(_IBAN_LOWER_HINT, max(0, ws - _IBAN_LOWER_REACH), ws + 4) != -1
                ):
                    _find_ibans(text, shape, _lower_iban_starts(shape, ws), out)
                if ws > 0 and text[ws - 1] in "+(":
                    ws -= 1
                we = min(n, we + 12)  # room for an extension ("x1234", "ext. 12")
                if self.card and (
                    digits >= 13
                    or (digits == 12 and text[m.start() : m.start() + 4] in _MAESTRO_12)
                ):
                    _find_cards(text, ws, we, out)
                if self.ssn and digits >= 9 and _SSN_SHAPE.search(run):
                    _find_ssns(text, ws, we, out)
                if self.phone:
                    _find_phones(text, ws, we, out)
                if self.ip and b"." in run:
                    _find_ipv4(text, ws, we, out)
        if self.secrets:
            _find_token_secrets(text, raw, shape, out)
            if ":" in text or "=" in text:
                _find_assignments(text, out)
                if "@" in text and "://" in text:
                    for m in _URL_CREDS.finditer(text):
                        out.append((m.start("v"), m.end("v"), SECRET))

    def _resolve(self, found: list[Finding]) -> list[Finding]:
        """Non-overlapping findings: higher priority first, then longer, then earlier.

        Only findings that overlap compete, so the choice is made per cluster of
        overlapping findings (in time linear in their number, not quadratic: a dense text
        has hundreds of thousands of findings, nearly all alone in their cluster)."""
        prio = self.priority
        kept: list[Finding] = []
        cluster: list[Finding] = []
        end = -1
        for f in sorted(set(found)):
            if cluster and f[0] >= end:
                kept.extend(cluster if len(cluster) == 1 else _pick(cluster, prio))
                cluster = []
            if not cluster or f[1] > end:
                end = f[1]
            cluster.append(f)
        kept.extend(cluster if len(cluster) == 1 else _pick(cluster, prio))
        return kept


def _pick(cluster: list[Finding], prio: dict[str, int]) -> list[Finding]:
    """The findings kept from one cluster of overlapping ones, sorted by start."""
    kept: list[Finding] = []  # sorted by start, never overlapping
    starts: list[int] = []
    for f in sorted(cluster, key=lambda f: (-prio.get(f[2], 0), f[0] - f[1], f[0])):
        i = bisect.bisect_left(starts, f[0])
        if i > 0 and kept[i - 1][1] > f[0]:
            continue
        if i < len(kept) and kept[i][0] < f[1]:
            continue
        kept.insert(i, f)
        starts.insert(i, f[0])
    return kept
