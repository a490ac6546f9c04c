"""A labelled PII corpus for the redaction detectors, generated with Faker (deterministic).

Each :class:`Sample` is a short text in one of many locales with the PII it contains at
known character spans, or a *near miss*: text full of values that look like PII and are not
(order numbers, timestamps, dotted versions that are not IP addresses, card-like numbers that
fail Luhn, IBANs with a wrong checksum, UUIDs, git SHAs, prices, dates, ISBNs, ``sk-`` words,
ITINs and invalid SSNs, 12-digit runs that are no Maestro number, AKIA-like words of the
wrong length, "Bearer" without a token, 10-digit runs after "order" or "Bestellnummer", ...).
Anything a detector finds in a near miss is a false positive.

47 locales: 14 for everything, 27 more (de_CH ... hy_AM) whose Faker phone numbers are
written the way people write them, each with phone words of its own language, and 6 more
for their IBANs only. Card numbers are grouped by spaces, dashes or dots (12-digit Maestro
numbers under Maestro's IINs included); IBANs are written plain, in groups of four
separated by spaces or dashes, in capitals or lower case; AWS key ids carry any capital or
digit after their prefix; Bearer tokens come without "Authorization:" too.

Policy choices the labels encode (and the detectors follow):

- a phone number is a number *written as one*: with a ``+`` country code, separators or
  an area code in parentheses; a bare run of digits counts only after a word such as
  "call", "phone", "text me", "Telefon", "позвоните", "電話". Bare digit runs elsewhere
  are order numbers.
- a bare 9-digit SSN counts only after "SSN"/"social security".
- only the credential part of ``password: …``/``Authorization: Bearer …``/``Bearer …`` is
  a secret.

Used by ``tests/pipeline/test_redact_corpus.py`` (recall and precision per type) and by
``bench/redaction.py`` (the same measure for llmtap and Presidio, beside the speed).
"""

# ruff: noqa: RUF001 (Cyrillic, full-width and Armenian text in the templates)
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from faker import Faker

TYPES = ("EMAIL", "PHONE", "CREDIT_CARD", "SSN", "IBAN", "IP", "SECRET")
LOCALES = (
    "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "ja_JP", "en_IN",
    "en_CA", "en_AU", "pl_PL", "sv_SE",
)  # fmt: skip
# More locales whose Faker phone numbers are real national or international formats, each
# with phone words in its own language (Faker writes some of them without separators).
MORE_LOCALES = (
    "de_CH", "fr_CH", "it_CH", "es_AR", "da_DK", "no_NO", "cs_CZ", "sk_SK", "ro_RO", "tr_TR",
    "ru_RU", "uk_UA", "bg_BG", "hr_HR", "sl_SI", "zh_CN", "zh_TW", "ko_KR", "hi_IN", "id_ID",
    "vi_VN", "th_TH", "he_IL", "fa_IR", "ka_GE", "az_AZ", "hy_AM",
)  # fmt: skip
# Locales used for their IBANs (and as prose) only: Faker's phone formats for them are not
# numbers anyone writes ("(351) 969141777", "+(370) 84005756").
IBAN_ONLY_LOCALES = ("de_AT", "nl_BE", "pt_PT", "en_IE", "fi_FI", "el_GR")
ALL_LOCALES = LOCALES + MORE_LOCALES + IBAN_ONLY_LOCALES
IBAN_LOCALES = (
    "de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT", "pt_BR", "pl_PL",
    "de_CH", "fr_CH", "it_CH", "da_DK", "no_NO", "cs_CZ", "sk_SK", "ro_RO", "tr_TR", "ru_RU",
    "uk_UA", "az_AZ", *IBAN_ONLY_LOCALES,
)  # fmt: skip
# Maestro's 12-digit numbers carry one of these IINs (Faker also draws 56xx-58xx, 0604, 6390).
MAESTRO_IINS = ("5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763")
AWS_KEY_PREFIXES = (
    "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA",
    "ASCA", "A3T",
)  # fmt: skip
DEFAULT_SEED = 20240917


@dataclass
class Sample:
    text: str
    labels: list[tuple[int, int, str]] = field(default_factory=list)
    locale: str = "en_US"
    kind: str = "pii"  # "pii" | "near_miss" | "clean"


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.labels: list[tuple[int, int, str]] = []
        self.pos = 0

    def text(self, s: str) -> None:
        self.parts.append(s)
        self.pos += len(s)

    def pii(self, s: str, kind: str) -> None:
        self.labels.append((self.pos, self.pos + len(s), kind))
        self.text(s)

    def template(self, tpl: str, value: str, kind: str) -> None:
        """``tpl`` with its ``{x}`` slot filled by ``value``, labelled ``kind``."""
        head, _, tail = tpl.partition("{x}")
        self.text(head)
        self.pii(value, kind)
        self.text(tail)

    def sample(self, locale: str, kind: str) -> Sample:
        return Sample("".join(self.parts), self.labels, locale, kind)


# ---------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------

_B62 = string.ascii_letters + string.digits
_B64 = _B62 + "+/"
_B64URL = _B62 + "-_"


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _formatted_phone(raw: str) -> bool:
    return raw.startswith("+") or any(c in raw for c in " -.()/")


@lru_cache(maxsize=1)
def _base_faker() -> Faker:
    return Faker("en_US")


def _card(fk: Faker, rng: random.Random) -> str:
    while True:
        kind = rng.choice(
            ["visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners",
             "jcb15", "jcb16", "maestro", "maestro"]
        )  # fmt: skip
        try:
            number = fk.credit_card_number(kind)
        except KeyError:  # a locale with its own card types (ru_RU, fa_IR): the base ones
            base = _base_faker()
            base.seed_instance(rng.randrange(2**32))
            number = base.credit_card_number(kind)
        if len(number) >= 13 or (len(number) == 12 and number[:4] in MAESTRO_IINS):
            break
    return _group_card(number, rng)


def _group_card(number: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.3:
        return number
    sep = " " if style < 0.6 else "-" if style < 0.8 else "."
    if len(number) == 15 and number[:2] in ("34", "37"):
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


def _iban(fk: Faker, rng: random.Random) -> str:
    iban = fk.iban()
    style = rng.random()
    if style < 0.35:
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    elif style < 0.55:
        iban = "-".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if rng.random() < 0.25 else iban


def _ip(fk: Faker, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.3:
        return fk.ipv4_public()
    if r < 0.5:
        return fk.ipv4_private()
    if r < 0.7:
        return fk.ipv6()
    if r < 0.85:  # compressed forms: ::, embedded zeros
        groups = ipaddress.IPv6Address(fk.ipv6()).exploded.split(":")
        k = rng.randrange(1, 6)
        for j in range(k, min(8, k + rng.randrange(2, 4))):
            groups[j] = "0000"
        return ipaddress.IPv6Address(":".join(groups)).compressed
    return rng.choice(
        [
            "::1",
            "fe80::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.128",
            "fe80::1ff:fe23:4567:890a",
        ]
    )


def _jwt(rng: random.Random) -> str:
    def b64(obj: object) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
    body = b64(
        {
            "sub": str(rng.randrange(10**6, 10**9)),
            "iat": rng.randrange(1_600_000_000, 1_800_000_000),
        }
    )
    return f"{head}.{body}.{_rand(rng, _B64URL, 43)}"


def _pem(rng: random.Random) -> str:
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    lines = [_rand(rng, _B64, 64) for _ in range(rng.randrange(3, 8))]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


# Each returns (template, value): the value is the labelled part of the template.
def _secret(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(26)
    if kind == 22:  # AWS key ids: scanners take any capital or digit after the prefix
        prefix = rng.choice(AWS_KEY_PREFIXES)
        if prefix == "A3T":
            prefix += rng.choice(string.ascii_uppercase + string.digits)
        key = prefix + _rand(rng, string.ascii_uppercase + string.digits, 16)
        tpl = rng.choice(
            ["aws_access_key_id = {x}", "the access key {x} was used from a new region",
             '{"AccessKeyId": "{x}", "Expiration": "soon"}', "{x}", "AWS key: {x}."]
        )  # fmt: skip
        return tpl, key
    if kind in (23, 24):  # Bearer tokens without "Authorization:" before them
        token = _jwt(rng) if rng.random() < 0.3 else _rand(rng, _B62 + "-_.", rng.randrange(20, 64))
        while token[-1] in "-_.":  # a token ends on a letter or digit in this corpus
            token = token[:-1]
        tpl = rng.choice(
            ["Bearer {x}", "bearer {x}", "use Bearer {x} for the next call",
             "-H 'X-Upstream-Auth: Bearer {x}'",
             '{"headers": {"Proxy-Authorization": "Bearer {x}"}}',
             "BEARER {x}", "token type Bearer, value Bearer {x}", "Bearer\t{x}"]
        )  # fmt: skip
        return tpl, token
    if kind == 0:
        return "export OPENAI_API_KEY={x}", "sk-proj-" + _rand(rng, _B62 + "-_", 120)
    if kind == 1:
        return "my key is {x}, please rotate it", "sk-" + _rand(rng, _B62, 48)
    if kind == 2:
        return "ANTHROPIC_API_KEY={x}", "sk-ant-api03-" + _rand(rng, _B62 + "-_", 93) + "AA"
    if kind == 3:
        return "aws_access_key_id = {x}", rng.choice(["AKIA", "ASIA"]) + _rand(
            rng, string.ascii_uppercase + "234567", 16
        )
    if kind == 4:
        return "aws_secret_access_key = {x}", _rand(rng, _B64, 40)
    if kind == 5:
        return 'maps.googleapis.com/?key={x}"', "AIza" + _rand(rng, _B62 + "-_", 35)
    if kind == 6:
        return "git clone with token {x}", "ghp_" + _rand(rng, _B62, 36)
    if kind == 7:
        return "GITHUB_TOKEN: {x}", "github_pat_" + _rand(rng, _B62, 22) + "_" + _rand(
            rng, _B62, 59
        )
    if kind == 8:
        team, bot = rng.randrange(10**11, 10**12), rng.randrange(10**11, 10**12)
        return "slack bot token {x}", f"xoxb-{team}-{bot}-{_rand(rng, _B62, 24)}"
    if kind == 9:
        return "stripe.api_key = '{x}'", "sk_live_" + _rand(rng, _B62, 24)
    if kind == 10:
        return "HF_TOKEN={x}", "hf_" + _rand(rng, _B62, 34)
    if kind == 11:
        return "Authorization: Bearer {x}", _jwt(rng)
    if kind == 12:
        return "the session cookie was {x} when it failed", _jwt(rng)
    if kind == 13:
        return "curl -H 'Authorization: Bearer {x}' https://api.example.com", _rand(rng, _B62, 40)
    if kind == 14:
        return "here is the deploy key:\n{x}\nkeep it safe", _pem(rng)
    if kind == 15:
        pw = _rand(rng, string.ascii_letters, 6) + _rand(rng, string.digits, 3) + rng.choice("!#%")
        return "password: {x}", pw
    if kind == 16:
        return (
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={x};EndpointSuffix=core.windows.net",
            _rand(rng, _B64, 86) + "==",
        )
    if kind == 17:
        return "api-key: {x}", _rand(rng, "0123456789abcdef", 32)
    if kind == 18:
        return "DATABASE_URL=postgres://app:{x}@db.internal:5432/app", _rand(rng, _B62, 16)
    if kind == 19:
        return '{"client_secret": "{x}"}', _rand(rng, _B62, 30)
    if kind == 20:
        return "GROQ_API_KEY={x}", "gsk_" + _rand(rng, _B62, 52)
    return "npm token {x}", "npm_" + _rand(rng, _B62, 36)


# ---------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------

_TEMPLATES: dict[str, dict[str, list[str]]] = {
    "EMAIL": {
        "en": ["Please write to {x} with the details.", "My email is {x}", "cc: {x}; thanks!",
               "Contact <{x}> for access.", "Send the invoice to {x}."],
        "de": ["Bitte schreiben Sie an {x}.", "Meine E-Mail-Adresse lautet {x}"],
        "fr": ["Écrivez-moi à {x} s'il vous plaît.", "Mon adresse : {x}"],
        "es": ["Mi correo es {x}.", "Escríbeme a {x}"],
        "it": ["La mia email è {x}."],
        "nl": ["Mijn e-mailadres is {x}."],
        "pt": ["Meu e-mail é {x}."],
        "ja": ["メールは{x}までお願いします。", "連絡先: {x}"],
    },
    "PHONE": {
        "en": ["Call me at {x} tomorrow.", "My number is {x}.", "Phone: {x}",
               "You can reach the front desk on {x} or by email.", "({x})"],
        "de": ["Rufen Sie mich unter {x} an.", "Telefon: {x}"],
        "fr": ["Appelez-moi au {x}.", "Tél. : {x}"],
        "es": ["Llámame al {x}.", "Teléfono: {x}"],
        "it": ["Chiamami al {x}.", "Telefono: {x}"],
        "nl": ["Bel me op {x}.", "Telefoon: {x}"],
        "pt": ["Ligue para {x}.", "Telefone: {x}"],
        "ja": ["電話番号は{x}です。", "携帯: {x}"],
    },
    "CREDIT_CARD": {
        "en": ["Charge it to my card {x}, exp 09/27.", "card number: {x}",
               "I paid with {x} yesterday."],
        "de": ["Meine Kartennummer ist {x}."],
        "fr": ["Ma carte : {x}"],
        "es": ["Mi tarjeta es {x}."],
        "ja": ["カード番号は{x}です。"],
    },
    "SSN": {
        "en": ["My SSN is {x}.", "social security number {x}", "SSN: {x} (please keep private)",
               "Applicant {x} was verified."],
    },
    "IBAN": {
        "en": ["Please wire the refund to {x}.", "IBAN: {x}", "Account {x} at the bank"],
        "de": ["Meine IBAN lautet {x}.", "Bitte überweisen Sie auf {x}."],
        "fr": ["Mon IBAN est {x}."],
        "es": ["Mi IBAN es {x}."],
        "it": ["Il mio IBAN è {x}."],
        "nl": ["Mijn IBAN is {x}."],
        "pt": ["Meu IBAN é {x}."],
    },
    "IP": {
        "en": ["The request came from {x} at midnight.", "client_ip={x}", "ssh admin@{x}",
               "Blocked {x} after 5 failed logins.", "[{x}]:8443"],
        "de": ["Die Anfrage kam von {x}."],
        "ja": ["接続元は{x}です。"],
    },
}  # fmt: skip
_LANG = {
    "en_US": "en", "en_GB": "en", "en_IN": "en", "en_CA": "en", "en_AU": "en",
    "de_DE": "de", "fr_FR": "fr", "es_ES": "es", "it_IT": "it", "nl_NL": "nl",
    "pt_BR": "pt", "ja_JP": "ja", "pl_PL": "en", "sv_SE": "en",
}  # fmt: skip
_LANG.update({
    "de_CH": "de", "fr_CH": "fr", "it_CH": "it", "es_AR": "es", "da_DK": "da", "no_NO": "no",
    "cs_CZ": "cs", "sk_SK": "sk", "ro_RO": "ro", "tr_TR": "tr", "ru_RU": "ru", "uk_UA": "uk",
    "bg_BG": "bg", "hr_HR": "hr", "sl_SI": "sl", "zh_CN": "zh", "zh_TW": "zh_tw", "ko_KR": "ko",
    "hi_IN": "hi", "id_ID": "id", "vi_VN": "vi", "th_TH": "th", "he_IL": "he", "fa_IR": "fa",
    "ka_GE": "ka", "az_AZ": "az", "hy_AM": "hy", "de_AT": "de", "nl_BE": "nl", "pt_PT": "pt",
    "en_IE": "en", "fi_FI": "en", "el_GR": "en",
})  # fmt: skip
# A number written without separators needs a phone word before it (the gap shapes: "call",
# "phone", "reach me", "text me", "tel"); the languages beyond the first eight use these
# for every number.
_PHONE_CONTEXT_BARE = {
    "en": ["Call me on {x}.", "call {x} after 5", "phone {x}", "You can reach me at {x}.",
           "text me {x} when you land", "Text me at {x}", "tel {x}", "Tel.: {x}",
           "my cell is {x}", "WhatsApp {x}"],
    "de": ["Telefon {x}", "Ruf mich an: {x}", "Handy {x}", "Tel. {x}"],
    "fr": ["Appelez le {x}", "Tél. {x}", "joindre au {x}", "portable {x}"],
    "es": ["Teléfono {x}", "Llámame al {x}", "móvil {x}", "WhatsApp {x}"],
    "it": ["Chiama il {x}", "cellulare {x}", "Tel. {x}"],
    "nl": ["Telefoon {x}", "bel me op {x}", "mobiel {x}"],
    "pt": ["Telefone {x}", "ligue para {x}", "celular {x}"],
    "ja": ["電話{x}", "携帯: {x}", "電話番号は{x}です。"],
    "da": ["Ring til mig på {x}.", "Telefon: {x}", "mobil {x}"],
    "no": ["Ring meg på {x}.", "Telefon: {x}", "Mobil: {x}", "tlf. {x}"],
    "cs": ["Telefon: {x}", "Zavolejte mi na {x}.", "Mobil: {x}"],
    "sk": ["Telefón: {x}", "Zavolajte mi na {x}.", "tel. {x}"],
    "ro": ["Telefon: {x}", "Sunați-mă la {x}.", "mobil {x}"],
    "tr": ["Telefon: {x}", "Cep telefonu: {x}", "Tel: {x}"],
    "ru": ["Телефон: {x}", "Позвоните мне по номеру {x}.", "тел. {x}"],
    "uk": ["Телефон: {x}", "тел. {x}", "Зателефонуйте {x}"],
    "bg": ["Телефон: {x}", "Обадете ми се на {x}.", "тел. {x}"],
    "hr": ["Telefon: {x}", "Nazovite me na {x}.", "mob. {x}"],
    "sl": ["Telefon: {x}", "Pokličite me na {x}.", "tel. {x}"],
    "zh": ["电话：{x}", "请拨打{x}", "手机 {x}"],
    "zh_tw": ["電話：{x}", "手機 {x}"],
    "ko": ["전화번호: {x}", "연락처 {x}"],
    "hi": ["फ़ोन: {x}", "फोन नंबर {x}", "कॉल करें {x}"],
    "id": ["Hubungi saya di {x}.", "Telp: {x}", "Telepon {x}"],
    "vi": ["Điện thoại: {x}", "Gọi cho tôi theo số {x}."],
    "th": ["โทร {x}", "เบอร์ {x}"],
    "he": ["טלפון: {x}", "נייד {x}"],
    "fa": ["تلفن: {x}", "شماره تماس {x}"],
    "ka": ["ტელეფონი: {x}", "ტელ. {x}"],
    "az": ["Telefon: {x}", "Zəng edin: {x}"],
    "hy": ["Հեռախոս {x}", "հեռախոս՝ {x}"],
}  # fmt: skip


def _bare_national(fk: Faker, rng: random.Random) -> str | None:
    """A national number of the locale written as a run of 9-11 digits (no country code), as
    people type it after "call me on", or None when the locale gives none in a few draws."""
    for _ in range(6):
        raw = fk.phone_number()
        if raw.startswith(("+", "00", "(+")) or "x" in raw:
            continue
        digits = "".join(c for c in raw if c.isdigit())
        if 9 <= len(digits) <= 11:
            return digits
    return None


def _templates(kind: str, locale: str) -> list[str]:
    by_lang = _TEMPLATES[kind]
    return by_lang.get(_LANG[locale]) or by_lang["en"]


def _filler(fk: Faker, rng: random.Random) -> str:
    if rng.random() < 0.3:
        return ""
    return fk.sentence(nb_words=rng.randrange(4, 12)) + " "


def _pii_value(kind: str, fk: Faker, rng: random.Random, locale: str) -> tuple[str, str]:
    """(template, value) for one PII of ``kind`` in ``locale``."""
    if kind == "SECRET":
        return _secret(rng)
    tpl = rng.choice(_templates(kind, locale))
    if kind == "EMAIL":
        r = rng.random()
        if r < 0.5:
            value = fk.email()
        elif r < 0.7:
            value = fk.free_email()
        elif r < 0.85:
            value = f"{fk.user_name()}+{fk.word().lower().replace(' ', '')}@{fk.domain_name()}"
        else:
            value = f"{fk.first_name()}.{fk.last_name()}@mail.{fk.domain_name()}".replace(" ", "")
        return tpl, value
    if kind == "PHONE":
        lang = _LANG[locale]
        bare = _bare_national(fk, rng) if rng.random() < 0.3 else None
        if bare:
            return rng.choice(_PHONE_CONTEXT_BARE[lang]), bare
        value = fk.phone_number()
        if not _formatted_phone(value) or locale in MORE_LOCALES:
            return rng.choice(_PHONE_CONTEXT_BARE[lang]), value
        return tpl, value
    if kind == "CREDIT_CARD":
        return tpl, _card(fk, rng)
    if kind == "SSN":
        value = fk.ssn()
        if rng.random() < 0.15:
            value = value.replace("-", " ")
        elif rng.random() < 0.15:
            return "SSN {x}", value.replace("-", "")
        return tpl, value
    if kind == "IBAN":
        return tpl, _iban(fk, rng)
    return tpl, _ip(fk, rng)


def _locale_for(kind: str, rng: random.Random) -> str:
    if kind == "IBAN":
        return rng.choice(IBAN_LOCALES)
    if kind == "SSN":
        return "en_US"
    return rng.choice(LOCALES + MORE_LOCALES)


# ---------------------------------------------------------------------------------------
# Near misses
# ---------------------------------------------------------------------------------------


def _luhn_fail(number: str) -> str:
    last = int(number[-1])
    return number[:-1] + str((last + 1 + (last == 8)) % 10)


def _digits(rng: random.Random, k: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(k))


def _luhn_complete(body: str) -> str:
    """``body`` with the check digit that makes it pass Luhn."""
    for d in string.digits:
        if _luhn_ok(body + d):
            return body + d
    raise AssertionError(body)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _bad_iban(iban: str) -> str:
    check = int(iban[2:4])
    return iban[:2] + f"{(check + 1 + (check == 97)) % 100:02d}" + iban[4:]


def _near_misses(fk: Faker, us: Faker, rng: random.Random) -> list[str]:
    """Texts with no PII in them, each full of things that look like some."""
    n = rng.randrange
    # Dates and times from the seeded generator alone (Faker's date methods count from now).
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=n(0, 1_900_000_000))
    iso = moment.isoformat() + f".{n(0, 10**6):06d}"
    day = moment.date()
    later = day + dt.timedelta(days=n(1, 60))
    clock = f"{n(0, 24):02d}:{n(0, 60):02d}"
    clock_s = f"{clock}:{n(0, 60):02d}"
    year = n(1970, 2030)
    card = us.credit_card_number(rng.choice(["visa16", "mastercard", "amex", "discover"]))
    bad_card = _group_card(_luhn_fail(card), rng)
    bad_iban = _bad_iban(us.iban() if fk.iban()[:2] == "GB" else fk.iban())
    ssn_bad = us.invalid_ssn()
    itin = us.itin()
    version = ".".join(str(n(0, 20)) for _ in range(rng.choice([3, 5])))
    bad_ip = rng.choice(
        [
            f"{n(1, 255)}.{n(0, 255)}.{n(256, 999)}.{n(0, 255)}",
            f"10.0.0.{n(256, 999)}",
            f"0{n(1, 9)}.0{n(1, 9)}.0{n(1, 9)}.0{n(1, 9)}",
            f"{n(1, 9)}.{n(0, 20)}.{n(0, 30)}.{n(0, 99)}.{n(0, 9)}",
        ]
    )
    order = str(n(10**9, 10**10))
    price = rng.choice(
        [
            us.pricetag(),
            f"€ {n(1, 99)}.{n(100, 999)},{n(10, 99)}",
            f"{n(1, 9)} {n(100, 999)} {n(100, 999)} €",
            f"¥{n(1, 999)},{n(100, 999)}",
        ]
    )
    # The gap shapes' near misses: 12-digit runs that are no Maestro number, dotted groups
    # that fail Luhn, lower case or dashed IBANs with a wrong checksum, AKIA-like words of
    # the wrong length, "Bearer" without a token, bare 10-digit runs without a phone word.
    maestro_bad = _luhn_fail(_luhn_complete(rng.choice(MAESTRO_IINS) + _digits(rng, 7)))
    luhn12 = _luhn_complete(rng.choice("1234789") + _digits(rng, 10))  # no Maestro IIN
    dotted_bad = ".".join(_luhn_fail(card)[i : i + 4] for i in range(0, len(card), 4))
    dashed_bad = "-".join(bad_iban[i : i + 4] for i in range(0, len(bad_iban), 4))
    aws_short = rng.choice(AWS_KEY_PREFIXES[:12]) + _rand(rng, string.ascii_uppercase, 15)
    ten = [str(n(10**9, 10**10)) for _ in range(4)]
    texts = [
        f"Batch {luhn12} and reference {maestro_bad} were archived.",
        f"Build {dotted_bad} is not a card; tracking {n(10**11, 10**12)}.",
        f"IBAN {bad_iban.lower()} and {dashed_bad} failed the checksum.",
        f"Keys like {aws_short} or {aws_short}XY are malformed; so is {aws_short.lower()}X.",
        "Use the Bearer scheme: Bearer <token>, Bearer ${API_TOKEN} or bearer YOUR_TOKEN_HERE.",
        f"Order {ten[0]}, ticket {ten[1]}, invoice {ten[2]}, customer {ten[3]}.",
        f"Bestellnummer {ten[0]}, Kundennummer {ten[1]}; numéro de commande {ten[2]}.",
        f"Pedido {ten[0]} enviado; 注文番号{ten[1]}; заказ {ten[2]}; 订单号 {ten[3]}.",
        f"Epoch {int(moment.timestamp())} ({int(moment.timestamp() * 1000)} ms), "
        f"ISBN {us.isbn10().replace('-', '')}.",
        f"Order {order} shipped on {day} and arrives {later}.",
        f"Your order #{n(10**7, 10**8)} (ref ORD-{year}-{n(10**5, 10**6)}) is confirmed.",
        f"Invoice INV-{n(10**7, 10**8)} total {price}, due {later}.",
        f"Deployed at {iso} (unix {int(moment.timestamp())}), build {version}.",
        f"Upgrade from {version} to {bad_ip}; see release notes.",
        f"The card {bad_card} was declined (test number).",
        f"IBAN {bad_iban} failed validation, please check it.",
        f"Request id {fk.uuid4()} and trace {fk.uuid4()} logged at {clock_s}.",
        f"Fixed in commit {fk.sha1()} (short {fk.sha1()[:7]}), checksum {fk.md5()}.",
        f"ISBN {us.isbn13()} and ISBN {us.isbn10()} are both in stock.",
        f"Meeting on {day:%d/%m/%Y} at {clock}, room {n(100, 999)}.",
        f"Termin am {later:%d.%m.%Y} um {clock} Uhr.",
        f"Invalid SSNs like {ssn_bad} and ITIN {itin} must be rejected.",
        "We use sk-learn and scikit-learn; the sk-SE locale; a risk-free, task-based plan.",
        "Set api_key = os.environ['OPENAI_API_KEY'] and password: <your password here>.",
        f"max_tokens={n(100, 9000)}, token count: {n(100, 99999)}, tokens=[1, 2, 3]",
        "Bearer token authentication is described in RFC 6750; the bearer of bad news.",
        f"Coordinates {fk.latitude()}, {fk.longitude()}; elevation {n(10, 4000)} m.",
        f"Population {n(1, 9)} {n(100, 999)} {n(100, 999)} {n(100, 999)} in {year}.",
        f"Ticket #{n(1000, 9999)}-{n(1000, 9999)}, step {n(1, 9)} of {n(10, 20)}.",
        f"EAN {fk.ean13()}, SKU {fk.bothify('??-#####').upper()}, lot {n(10**5, 10**6)}.",
        f"Use std::vector<int> and a::b, mac {fk.mac_address()}, time {clock_s}.",
        f"Call stack: frame 0x{n(16**7, 16**8):08x} at line {n(10, 999)}.",
        f"Temperature {n(-20, 40)}.{n(0, 9)}°C at {clock}, humidity {n(10, 99)}%.",
        f"The desk-top ask-me-anything thread sk-{n(1, 99)} had {n(100, 999)} replies.",
        f"Amount: {n(1000, 99999):,} USD; rate 1.{n(1000, 9999)}; {n(10, 99)}.5% APR",
        f"Ship to ZIP {n(10000, 99999)}-{n(1000, 9999)}; ports 8080 8443 {n(1024, 9999)}.",
        f"Invoice {year}/{n(10000, 99999)}/{n(10, 99)}, "
        f"part {n(100, 999)}-{n(1000, 9999)}-{n(100, 999)}.",
        f"docker pull python:3.{n(8, 13)}.{n(0, 12)}-slim; node:20.{n(0, 19)}.1-alpine3.19",
        f"usage: prompt_tokens={n(10, 9999)} completion_tokens={n(10, 999)} "
        f"seed: {n(10**9, 10**10)}",
        'api_key = "YOUR_API_KEY"; password = "********"; secret: ${SECRET}; token: <redacted>',
        f"The model gpt-4o-2024-08-06 answered in {n(100, 999)} ms; claude-3-5-sonnet-20241022.",
        f'Traceback: File "/usr/lib/python3.11/site-packages/app.py", line {n(10, 9999)}, in run',
    ]
    return texts


# ---------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def build_corpus(
    seed: int = DEFAULT_SEED, per_type: int = 240, near_miss_rounds: int = 30, clean: int = 120
) -> tuple[Sample, ...]:
    """``per_type`` samples with one PII of each type (a third of them with a second PII of
    another type), ``near_miss_rounds`` rounds of every near-miss text, ``clean`` texts of
    plain locale prose. Deterministic for a seed."""
    rng = random.Random(seed)
    fakers: dict[str, Faker] = {}
    for i, loc in enumerate(ALL_LOCALES):
        fk = Faker(loc)
        fk.seed_instance(seed + i)
        fakers[loc] = fk
    samples: list[Sample] = []
    for kind in TYPES:
        for _ in range(per_type):
            locale = _locale_for(kind, rng)
            fk = fakers[locale]
            b = _Builder()
            b.text(_filler(fk, rng))
            tpl, value = _pii_value(kind, fk, rng, locale)
            b.template(tpl, value, kind)
            if rng.random() < 0.33:
                skip = (kind, "SSN", "IBAN", "PHONE" if locale in IBAN_ONLY_LOCALES else "")
                other = rng.choice([t for t in TYPES if t not in skip])
                tpl2, value2 = _pii_value(other, fk, rng, locale)
                b.text(" ")
                b.template(tpl2, value2, other)
            b.text(" " + _filler(fk, rng))
            samples.append(b.sample(locale, "pii"))
    for _ in range(near_miss_rounds):
        locale = rng.choice(ALL_LOCALES)
        for text in _near_misses(fakers[locale], fakers["en_US"], rng):
            samples.append(Sample(text, [], locale, "near_miss"))
    for _ in range(clean):
        locale = rng.choice(ALL_LOCALES)
        samples.append(Sample(fakers[locale].paragraph(nb_sentences=4), [], locale, "clean"))
    return tuple(samples)


@dataclass
class TypeScore:
    tp: int = 0  # labels found (a finding of the same type covers >= 80% of the label)
    fn: int = 0
    fp: int = 0  # findings that overlap no label of their type
    hits: int = 0  # findings that do

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.hits / (self.hits + self.fp) if self.hits + self.fp else 1.0


def score(
    samples: Iterable[Sample],
    find: Callable[[str], Iterable[tuple[int, int, str]]],
    types: Iterable[str] = TYPES,
    misses: list[tuple[str, Sample, tuple[int, int, str]]] | None = None,
) -> dict[str, TypeScore]:
    """Recall and precision per type of ``find(text) -> [(start, end, type)]``.

    ``misses`` collects ``("fn" | "fp", sample, span)`` for a readable failure message.
    """
    scores = {t: TypeScore() for t in types}
    for sample in samples:
        found = [f for f in find(sample.text) if f[2] in scores]
        for s, e, kind in sample.labels:
            if kind not in scores:
                continue
            covered = set()
            for fs, fe, fk in found:
                if fk == kind and fs < e and s < fe:
                    covered.update(range(max(s, fs), min(e, fe)))
            if len(covered) >= 0.8 * (e - s):
                scores[kind].tp += 1
            else:
                scores[kind].fn += 1
                if misses is not None:
                    misses.append(("fn", sample, (s, e, kind)))
        for fs, fe, fk in found:
            if any(k == fk and fs < e and s < fe for s, e, k in sample.labels):
                scores[fk].hits += 1
            else:
                scores[fk].fp += 1
                if misses is not None:
                    misses.append(("fp", sample, (fs, fe, fk)))
    return scores


def format_scores(scores: dict[str, TypeScore]) -> str:
    rows = [f"{'type':12} {'recall':>7} {'precision':>9} {'tp':>5} {'fn':>4} {'fp':>4}"]
    for kind, s in scores.items():
        rows.append(f"{kind:12} {s.recall:7.3f} {s.precision:9.3f} {s.tp:5d} {s.fn:4d} {s.fp:4d}")
    return "\n".join(rows)
