"""The detectors one format at a time: what must be found, and what must not."""

from __future__ import annotations

import base64
import json

import pytest

from llmtap.pipeline.detectors import (
    Detectors,
    ean13_ok,
    iban_ok,
    luhn_ok,
    ssn_ok,
)

D = Detectors()


def found(text: str) -> list[tuple[str, str]]:
    return [(text[s:e], t) for s, e, t in D.find(text)]


def one(text: str, value: str, kind: str) -> None:
    assert found(text) == [(value, kind)], found(text)


def none(text: str) -> None:
    assert found(text) == [], found(text)


# -- validators ---------------------------------------------------------------------------


def test_validators() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert luhn_ok("378282246310005")
    assert iban_ok("DE89370400440532013000") and iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not iban_ok("DE89370400440532013001")  # checksum
    assert not iban_ok("DE8937040044053201300")  # length for DE
    assert not iban_ok("XX89370400440532013000")  # no such country
    assert ssn_ok("123", "45", "6789")
    for area, group, serial in [("000", "12", "3456"), ("666", "12", "3456"),
                                ("900", "12", "3456"), ("123", "00", "4567"),
                                ("123", "45", "0000"), ("078", "05", "1120")]:  # fmt: skip
        assert not ssn_ok(area, group, serial)
    assert ean13_ok("4006381333931") and not ean13_ok("4006381333932")


# -- email --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    ["jane.doe@example.com", "J.Doe+news@mail.example.co.uk", "o'brien@example.ie",
     "user_1@sub.domain.io", "müller@example.de"],
)  # fmt: skip
def test_emails(email: str) -> None:
    one(f"write to {email}, thanks", email, "EMAIL")


@pytest.mark.parametrize(
    "text", ["@dataclass decorator", "ping @channel now", "user@localhost", "a@b", "foo@bar."]
)
def test_not_emails(text: str) -> None:
    none(text)


# -- phone --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "(415) 555-0132", "415-555-0132", "415.555.0132", "+1 415 555 0132", "1-800-555-0199",
        "+1-537-640-6812x41586", "555-123-4567 ext. 12",
        "+44 20 7946 0018", "020 7946 0018", "+44(0)115 4960914", "(0161) 4960066",
        "+49 30 1234567", "030 1234567", "0171/1234567", "+49 (0) 9141 777631",
        "+33 1 83 41 77 76", "01 23 45 67 89", "01.23.45.67.89",
        "+91 98765 43210", "+919876543210", "98765 43210",
        "+55 11 91234-5678", "(011) 1234-5678", "11 3915-0008",
        "090-1234-5678", "03-1234-5678", "+81 3-1234-5678",
        "+34 912 345 678", "612 345 678", "+39 06 6982 1234", "+31 20 123 4567", "020-1234567",
    ],
)  # fmt: skip
def test_phones(phone: str) -> None:
    one(f"reach me: {phone} today", phone, "PHONE")


def test_phone_in_cjk_text() -> None:
    one("電話番号は090-1234-5678です。", "090-1234-5678", "PHONE")


def test_bare_digits_are_a_phone_only_after_a_phone_word() -> None:
    none("Order 4821339702 shipped")
    one("Call me on 4821339702 please", "4821339702", "PHONE")
    one("Telefon 03012345678", "03012345678", "PHONE")


@pytest.mark.parametrize(
    "text",
    [
        "shipped 2024-01-15 10:30:00", "on 15/01/2024 at 10:30", "am 15.01.2024",
        "ZIP 90210-1234", "ports 8080 8443 9090", "population 1 439 969 391",
        "ISBN 978-3-16-148410-0", "ISBN 0-306-40615-2", "version 10.12.14.16.18",
        "invoice 2024/00123/45", "part 123-4567-890", "ref ORD-2024-118842", "#48213397",
        "ticket #4521-8890", "total $1,234,567.89", "1.234.567,89 EUR", "sum 1 234 567 890",
        "pi is 3.14159265358979", "uuid 550e8400-e29b-41d4-a716-446655440000",
        "timestamp 1700000000123", "temperature 21.5 at 10:45",
    ],
)  # fmt: skip
def test_not_phones(text: str) -> None:
    none(text)


# -- cards --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "5555 5555 5555 4444",
     "2223 0031 2200 3222", "3782 822463 10005", "378282246310005", "6011 1111 1111 1117",
     "3530 1113 3330 0000", "30569309025904", "6200 0000 0000 0005"],
)  # fmt: skip
def test_cards(card: str) -> None:
    one(f"card {card} exp 09/27", card, "CREDIT_CARD")


@pytest.mark.parametrize(
    "text",
    ["card 4111 1111 1111 1112", "id 1234567812345678", "EAN 4006381333931",
     "card 4111 11111 111 1111", "tracking 9400 1000 0000 0000 0000 00"],
)  # fmt: skip
def test_not_cards(text: str) -> None:
    assert [k for _, k in found(text) if k == "CREDIT_CARD"] == []


# -- SSN ----------------------------------------------------------------------------------


def test_ssn() -> None:
    one("SSN 123-45-6789 on file", "123-45-6789", "SSN")
    one("ssn: 123 45 6789", "123 45 6789", "SSN")
    one("social security number 123456789", "123456789", "SSN")
    none("ref 123456789 shipped")
    for bad in ("000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "078-05-1120"):
        assert [k for _, k in found(f"SSN {bad}") if k == "SSN"] == []


# -- IBAN ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iban",
    ["DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32",
     "FR1420041010050500013M02606", "NL91ABNA0417164300", "ES9121000418450200051332",
     "IT60X0542811101000000123456", "CH9300762011623852957"],
)  # fmt: skip
def test_ibans(iban: str) -> None:
    one(f"wire it to {iban}, thanks", iban, "IBAN")


def test_iban_followed_by_more_capitals() -> None:
    one("IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX", "DE89 3704 0044 0532 0130 00", "IBAN")


def test_not_ibans() -> None:
    none("IBAN DE88370400440532013000 is wrong")
    none("code AB12 3456 7890 1234")


# -- IP -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    ["192.168.1.10", "8.8.8.8", "10.0.0.1", "2001:db8::8a2e:370:7334", "fe80::1ff:fe23:4567:890a",
     "::1", "::ffff:192.0.2.128", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"],
)  # fmt: skip
def test_ips(ip: str) -> None:
    one(f"from {ip} at noon", ip, "IP")


@pytest.mark.parametrize(
    "text",
    ["version 1.2.3.4.5", "v1.2.3.4", "10.0.0.256", "1.2.300.4", "01.02.03.04", "at 10:30:45",
     "mac 00:1A:2B:3C:4D:5E", "std::vector and a::b", "ratio 3.5.1"],
)  # fmt: skip
def test_not_ips(text: str) -> None:
    none(text)


# -- secrets ------------------------------------------------------------------------------


def _jwt(header: dict) -> str:
    def enc(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc(header)}.{enc({'sub': '1234567890'})}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"


SECRETS = [
    ("OPENAI_API_KEY={}", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cD0eF"),
    ("key {}", "sk-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4"),
    ("{}", "sk-ant-api03-" + "Ab9_" * 20 + "AA"),
    ("aws_access_key_id = {}", "AKIAIOSFODNN7EXAMPLE"),
    ("{}", "ASIAY34FZKBOKMUTVV7A"),
    ("aws_secret_access_key = {}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("?key={}&q=1", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),
    ("{}", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("{}", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"),
    ("{}", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("{}", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("{}", "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
    ("{}", "glpat-Ab12Cd34Ef56Gh78Ij90"),
    ("{}", "gsk_" + "a1B2" * 13),
    ("Authorization: Bearer {}", "abcDEF1234567890ghiJKL"),
    ("api-key: {}", "3f9a1c0b7e2d4f5a8b6c9d0e1f2a3b4c"),
    ("password: {}", "Summer2024!"),
    ("AccountName=x;AccountKey={};EndpointSuffix=core.windows.net", "a1B2" * 22 + "=="),
    ("postgres://app:{}@db.internal:5432/app", "s3cr3tPassw0rd"),
    ('{{"client_secret": "{}"}}', "Xy7Zq9Wv3Ut5Sr1Po8Nm"),
    ("token {}", _jwt({"alg": "HS256", "typ": "JWT"})),
]


@pytest.mark.parametrize(("template", "secret"), SECRETS)
def test_secrets(template: str, secret: str) -> None:
    text = "here: " + template.format(secret) + " end"
    assert (secret, "SECRET") in found(text), found(text)


def test_private_key_blocks() -> None:
    body = "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + "A" * 12] * 3)
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    one(f"key:\n{pem}\nthanks", pem, "SECRET")
    cut = f"-----BEGIN PRIVATE KEY-----\n{body}"  # cut short by a size cap
    one(f"key: {cut}", cut, "SECRET")


@pytest.mark.parametrize(
    "text",
    [
        "we use sk-learn and scikit-learn-compatible estimators", "the sk-SE locale",
        "api_key = os.environ['OPENAI_API_KEY']", 'api_key = "YOUR_API_KEY"',
        "password: <your password here>", "password = '********'", "secret: ${SECRET}",
        "max_tokens=4096, token count: 1234", "Bearer token authentication; the bearer of news",
        "token = tiktoken.encoding_for_model('gpt-4o')", "PWD=/home/user/project",
        "eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",  # header without "alg"
        "commit d6ea5ff3f1565879dddc26d3547ba8dc8c1f517e", "llmtap.redaction.count",
        "chatcmpl-9aBcDeFgHiJkLmNoPqRsTuVwXyZ12",
    ],
)  # fmt: skip
def test_not_secrets(text: str) -> None:
    none(text)


# -- placeholders and overlaps ------------------------------------------------------------


def test_placeholders_are_never_detected() -> None:
    none("mail <EMAIL> or call <PHONE> about <CREDIT_CARD:123456789012>, key <SECRET>")
    none("<PHONE:5551234567ab> and <IP:192168001001>")


def test_overlaps_resolve_to_one_finding() -> None:
    # an IBAN holds a Luhn-valid 16-digit run; a URL password sits in an email-like span
    one("IBAN DE30 3599 4582 9405 3120 63 ok", "DE30 3599 4582 9405 3120 63", "IBAN")
    assert found("postgres://admin:s3cr3tPw@db.example.com/x") == [("s3cr3tPw", "SECRET")]


def test_custom_patterns_run_with_the_builtins() -> None:
    import re

    d = Detectors(["email"], [("EMPLOYEE_ID", re.compile(r"EMP-(?P<value>\d{6})"))])
    text = "EMP-123456 is jane@example.com"
    assert [(text[s:e], t) for s, e, t in d.find(text)] == [
        ("123456", "EMPLOYEE_ID"),
        ("jane@example.com", "EMAIL"),
    ]


def test_only_enabled_detectors_run() -> None:
    d = Detectors(["email"])
    text = "jane@example.com 4111 1111 1111 1111 10.0.0.1"
    assert [t for *_, t in d.find(text)] == ["EMAIL"]


# -- gaps seen on unseen data: each one reproduced ----------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "AKIA1234567890ABCDEF",  # digits 0, 1, 8, 9: not base-32, but the shape scanners flag
        "AKIAZ8X9Y0W1V2U3T4S5",
        "ASIA0123456789ABCDEF",
        "ABIA9Z8Y7X6W5V4U3T2S",
        "ACCA1B2C3D4E5F6G7H8I",
        "AROA01234567890ABCDE",
        "A3TX0123456789ABCDEF",
        "AKIAIOSFODNN7EXAMPLE",
    ],
)
def test_aws_key_ids_with_any_capital_or_digit(key: str) -> None:
    one(f"the key {key} leaked", key, "SECRET")
    one(f'{{"id": "{key}"}}', key, "SECRET")
    one(key, key, "SECRET")


@pytest.mark.parametrize(
    "text",
    [
        "AKIA1234567890ABCDE is one short", "AKIA1234567890ABCDEFG is one long",
        "akia1234567890abcdef", "XAKIA1234567890ABCDEF", "AKIA1234567890ABCDEf",
        "ASIA-PACIFIC-REGION-2024",
    ],
)  # fmt: skip
def test_not_aws_key_ids(text: str) -> None:
    none(text)


TOKEN = "abcDEF1234567890ghiJKL"


@pytest.mark.parametrize(
    "template",
    [
        "Bearer {}",  # the start of the text
        "bearer {}",
        "BEARER {}",
        "use Bearer {} for the call",
        "-H 'X-Auth-Token: Bearer {}'",
        "token was Bearer '{}'",
        '{{"headers": {{"X-Upstream": "Bearer {}"}}}}',
        "Bearer\t{}",
        "Authorization: Bearer {}",
    ],
)
def test_bearer_tokens_anywhere(template: str) -> None:
    text = template.format(TOKEN)
    one(text, TOKEN, "SECRET")


@pytest.mark.parametrize(
    "text",
    [
        "Bearer token authentication (RFC 6750)", "the bearer of bad news arrived",
        "Bearer short12", "Bearer abcdefghijklmnopqrstuvwxyz", "Bearer <token>",
        "Bearer ${TOKEN}", "Bearer YOUR_TOKEN_HERE", "cupbearer abcDEF1234567890ghiJKL",
    ],
)  # fmt: skip
def test_not_bearer_tokens(text: str) -> None:
    none(text)


@pytest.mark.parametrize(
    "card",
    [
        "675987831012", "6759 8783 1012", "6759-8783-1012", "6759.8783.1012",  # Maestro UK
        "501800753292", "5018 0075 3292", "630460414109", "589382144964",
        "4111.1111.1111.1111", "5555.5555.5555.4444", "6011.1111.1111.1117",  # dotted
    ],
)  # fmt: skip
def test_maestro_12_digits_and_dotted_cards(card: str) -> None:
    one(f"card {card} exp 09/27", card, "CREDIT_CARD")
    one(f"ref {card}", card, "CREDIT_CARD")


@pytest.mark.parametrize(
    "text",
    [
        "ref 675987831013",  # Luhn fails
        "ref 476568280814",  # Luhn-valid, 12 digits, not a Maestro IIN
        "item 675968387380",  # Luhn-valid Maestro prefix, but a valid UPC-A barcode
        "v4111.1111.1111.1112",
        "id 4111.1111.1111.1112",  # dotted, Luhn fails
        "4111.1111 1111-1111",  # mixed separators
        "build 2024.0101.1234.5678",
        "1.675987831012",  # the end of a decimal
    ],
)
def test_not_maestro_or_dotted_cards(text: str) -> None:
    assert [k for _, k in found(text) if k == "CREDIT_CARD"] == [], found(text)


def test_upc_shaped_maestro_after_a_card_word() -> None:
    one("Maestro card 675968387380", "675968387380", "CREDIT_CARD")


@pytest.mark.parametrize(
    "iban",
    [
        "de89370400440532013000", "de89 3704 0044 0532 0130 00", "DE89-3704-0044-0532-0130-00",
        "de89-3704-0044-0532-0130-00", "gb82west12345698765432", "GB82-WEST-1234-5698-7654-32",
        "nl91abna0417164300", "fr14 2004 1010 0505 0001 3m02 606",
    ],
)  # fmt: skip
def test_lowercase_and_dashed_ibans(iban: str) -> None:
    one(f"wire it to {iban}, thanks", iban, "IBAN")
    one(iban, iban, "IBAN")


@pytest.mark.parametrize(
    "text",
    [
        "de88370400440532013000",  # checksum
        "De89370400440532013000",  # mixed case: not how anyone writes one
        "DE89-3704-0044 0532-0130-00",  # mixed separators
        "DE89--3704-0044-0532-0130-00",
        "de89370400440532013000-x",  # part of a longer identifier
        "ab12 3456 7890 1234 5678",  # no such country
        "py311 and utf8 and h264 and sha256",
    ],
)
def test_not_lowercase_or_dashed_ibans(text: str) -> None:
    assert [k for _, k in found(text) if k == "IBAN"] == [], found(text)


@pytest.mark.parametrize(
    "template",
    [
        "call 4155550132", "Call me: 4155550132", "phone 4155550132", "reach me at 4155550132",
        "text me 4155550132", "txt me on 4155550132", "tel 4155550132", "Tel.: 4155550132",
        "my cell is 4155550132", "WhatsApp 4155550132", "ring me on 0612345678",
        "Ruf mich an: 01711234567", "Handy 01711234567", "appelez-moi au 0612345678",
        "llámame al 6123456789", "chiamami al 3471234567", "bel me op 0612345678",
        "ligue para 11912345678", "zadzwoń 5123456789", "позвоните 9161234567",
        "телефон 9161234567", "电话 13800138000", "手机 13800138000", "전화 01012345678",
        "โทร 0812345678", "hubungi 081234567890", "Telefon: 5321234567",
    ],
)  # fmt: skip
def test_bare_national_numbers_after_a_phone_word(template: str) -> None:
    value = template.split()[-1]
    one(template, value, "PHONE")


@pytest.mark.parametrize(
    "text",
    [
        "order 4155550132 shipped", "id 4155550132", "ticket 4155550132", "unix 1700000000",
        "Reference 0612345678 is closed", "Bestellnummer 01711234567", "ISBN 0306406152",
        "the hotel 4155550132", "recall 4155550132", "contexto 4155550132",
        "timestamp 1700000000123", "account 12345678901234",
    ],
)  # fmt: skip
def test_bare_digit_runs_without_a_phone_word_stay(text: str) -> None:
    none(text)


def test_maestro_in_parentheses() -> None:
    one("(card 6759 8783 1012)", "6759 8783 1012", "CREDIT_CARD")
    one("(675987831012)", "675987831012", "CREDIT_CARD")


@pytest.mark.parametrize(
    "text",
    ["请拨打13800138000", "我的手机号13800138000", "เบอร์โทรศัพท์0812345678", "携帯は09012345678"],
)
def test_phone_words_inside_words_of_scripts_without_spaces(text: str) -> None:
    value = "".join(c for c in text if c.isdigit())
    one(text, value, "PHONE")


def test_order_number_words_in_scripts_without_spaces_stay() -> None:
    none("注文番号1234567890")  # 番号 ("number") starts no word here: an order number


@pytest.mark.parametrize(
    "email", ["นิรุตต์.นานายน@mail.example.co.th", "पूर्णिमा.झादव@mail.example.com"]
)
def test_emails_with_indic_and_thai_vowel_signs(email: str) -> None:
    one(f"write to {email} today", email, "EMAIL")


@pytest.mark.parametrize(
    "text",
    [
        "tool call id 1234567890", "call_id=1234567890", "the contact id is 1234567890",
        "ring buffer 1234567890", "cell count 1234567890", "Mobility fund 1234567890",
        "mobx store 1234567890",
    ],
)  # fmt: skip
def test_phone_words_naming_something_else(text: str) -> None:
    none(text)


@pytest.mark.parametrize("enabled", [["iban"], ["iban", "phone"], None])
def test_lowercase_iban_pre_check_and_find_agree(enabled: list[str] | None) -> None:
    d = Detectors(enabled) if enabled else Detectors()
    for text in ("wire to de89370400440532013000 now", "gb82-west-1234-5698-7654-32"):
        assert d.may_find(text)
        assert [t for *_, t in d.find(text)] == ["IBAN"]
    assert not Detectors(["iban"]).may_find("py311 and utf8 and h264 and sha256 builds")


def test_the_ipv4_octet_check_accepts_what_ipaddress_accepts() -> None:
    import ipaddress
    import random

    from llmtap.pipeline.detectors import _ipv4_ok

    octets = ["0", "00", "01", "1", "9", "10", "99", "100", "199", "200", "255", "256", "999"]
    rng = random.Random(5)
    dotted = [".".join(rng.choice(octets) for _ in range(4)) for _ in range(5000)]
    for text in [*dotted, "\u0661.2.3.4", "1.2.3.\u0664"]:
        try:
            ipaddress.IPv4Address(text)
            valid = True
        except ValueError:
            valid = False
        assert _ipv4_ok(text) is valid, text
