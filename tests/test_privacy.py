"""PII redaction: checksum validators on known-valid/invalid values, redaction, and the labelled set.

    .venv/bin/python -m pytest tests/test_privacy.py -q
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from helpers.deploy import privacy, redaction_eval
from helpers.deploy.pii_validators import (
    IBAN_LENGTHS,
    codice_fiscale_check_char,
    codice_fiscale_valid,
    iban_check_digits,
    iban_valid,
    luhn_check_digit,
    luhn_valid,
    phone_valid,
)
from helpers.deploy.privacy import find_pii, redact
from helpers.deploy.redaction_eval import score_redaction

DATA = Path(__file__).resolve().parent.parent / "data" / "privacy"

# ----------------------------------------------------------------------------- hand-worked examples


def test_luhn_hand_worked():
    # Payload 7992739871, doubling every other digit from the right: 1*2=2, 8, 9*2=18->9, 3, 7*2=14->5,
    # 2, 9*2=18->9, 9, 7*2=14->5 ... sum = 7+9+9+4+7+6+9+7+7+2 = 67 -> check digit (10 - 7) % 10 = 3.
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_valid("79927398713", min_len=11)


def test_codice_fiscale_hand_worked():
    # A fictional person: BNC (surname) GLI (name) 90 (year) E (May) 45 (day 5, +40: a woman) F205.
    # Odd positions: B0 C5 L4 9:21 E9 5:13 2:5 5:13 = 70; even positions: N13 G6 I8 0:0 4:4 F5 0:0 = 36.
    # (70 + 36) % 26 = 2 -> 'C'.
    assert codice_fiscale_check_char("BNCGLI90E45F205") == "C"
    assert codice_fiscale_valid("BNCGLI90E45F205C")
    # Omocodia: the last digit 5 written as its letter R changes an odd-position value 13 -> 8:
    # 101 % 26 = 23 -> 'X'.
    assert codice_fiscale_valid("BNCGLI90E45F20RX")


def test_iban_registry_examples():
    # The documentation examples of ISO 13616 / the SWIFT IBAN Registry (not anyone's account).
    assert iban_check_digits("GB", "WEST12345698765432") == "82"
    assert iban_check_digits("IT", "X0542811101000000123456") == "60"
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("IT60X0542811101000000123456")


# ----------------------------------------------------------------------------- validators, parametrized

VALID_CARDS = [
    "4111 1111 1111 1111",  # the public Visa test number
    "4111-1111-1111-1111",
    "4" + "000000000000" + luhn_check_digit("4000000000000"),  # 13 digits
    "3714 496353 98431",  # Amex 4-6-5 (public test number)
    "5555555555554444",  # public Mastercard test number
    "6759" + "1" * 14 + luhn_check_digit("6759" + "1" * 14),  # 19 digits
]
INVALID_CARDS = [
    "4111 1111 1111 1112",  # last digit changed
    "4111 1111 1111 1141",  # two adjacent digits swapped (1 4 -> 4 1)
    "4111 1111 1111",  # 12 digits: too short
    "4" * 20,  # too long
    "4111 1111 1111 111a",  # not a number
    "",
]


@pytest.mark.parametrize("number", VALID_CARDS)
def test_luhn_accepts(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", INVALID_CARDS)
def test_luhn_rejects(number):
    assert not luhn_valid(number)


def _iban(country: str, bban: str) -> str:
    return country + iban_check_digits(country, bban) + bban


VALID_IBANS = [
    _iban("IT", "Q0300203280000400162854"),
    _iban("DE", "370400440532013000"),
    _iban("FR", "20041010050500013M02606"),
    _iban("CH", "00762011623852957"),
    _iban("NL", "ABNA0417164300"),
    _iban("SM", "U0322509800000000270100").lower(),
]


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_iban_accepts(iban):
    assert iban_valid(iban)
    assert iban_valid(" ".join(iban[i:i + 4] for i in range(0, len(iban), 4)))


def _edit_digit(s: str, i: int) -> str:
    return s[:i] + str((int(s[i]) + 1) % 10) + s[i + 1:]


@pytest.mark.parametrize(
    "iban, why",
    [
        (VALID_IBANS[0][:2] + "00" + VALID_IBANS[0][4:], "check digits 00"),
        (_edit_digit(VALID_IBANS[0], 10), "one digit changed"),
        (VALID_IBANS[1][:-1], "one character short"),
        ("XX82WEST12345698765432", "unknown country"),
        ("IT60X05428111010000001234!6", "not alphanumeric"),
        ("", "empty"),
    ],
)
def test_iban_rejects(iban, why):
    assert not iban_valid(iban), why


def _cf(first15: str) -> str:
    return first15 + codice_fiscale_check_char(first15)


@pytest.mark.parametrize("code", [_cf("FRRLCU85T10H501"), _cf("GRCSRA01A41L219"), _cf("CSTNNA77M62F20R"),
                                  _cf("MRNPLA99B28A94N").lower(), _cf("BRNDVD8PC1LB15Q")])
def test_codice_fiscale_accepts(code):
    assert codice_fiscale_valid(code)


@pytest.mark.parametrize(
    "code, why",
    [
        ("BNCGLI90E45F205D", "wrong check character"),
        ("BNCGLI90F45F205C", "F is not a month letter"),
        ("BNCGLI90E35F205" + codice_fiscale_check_char("BNCGLI90E35F205"), "day 35 exists for nobody"),
        ("BNCGLI90E45F205", "15 characters"),
        ("BNCGL190E45F205C", "digit where a letter belongs"),
    ],
)
def test_codice_fiscale_rejects(code, why):
    assert not codice_fiscale_valid(code), why


@pytest.mark.parametrize("number", ["347 123 4567", "3471234567", "+39 347 123 4567", "0039 347 1234567",
                                    "02 1234 5678", "(0471) 123456", "+39 06 1234567", "+44 20 7946 0123",
                                    "+1 (555) 010-0199"])
def test_phone_accepts(number):
    assert phone_valid(number)


@pytest.mark.parametrize("number", ["12345678", "247 123 4567", "34712", "+39 12 345", "+0 123 456 789",
                                    "+1234567890123456"])
def test_phone_rejects(number):
    assert not phone_valid(number)


@pytest.mark.parametrize("fn, arg", [(luhn_check_digit, "12 34"), (iban_check_digits, ("I1", "123")),
                                     (codice_fiscale_check_char, "TOOSHORT")])
def test_check_digit_functions_reject_bad_input(fn, arg):
    with pytest.raises(ValueError, match="needs"):
        fn(*arg) if isinstance(arg, tuple) else fn(arg)


# ----------------------------------------------------------------------------- redaction


def test_redact_reports_what_it_replaced():
    card = VALID_CARDS[0]
    text = f"Mail anna.ferri@example.com, tel. +39 347 123 4567, IBAN {VALID_IBANS[0]}, carta {card}."
    r = redact(text)
    assert r.text == "Mail [EMAIL], tel. [PHONE], IBAN [IBAN], carta [CARD]."
    assert r.counts() == {"email": 1, "phone": 1, "iban": 1, "card": 1}
    for rep in r.replacements:
        assert text[rep.start:rep.end] == rep.original
        assert rep.placeholder == privacy.PLACEHOLDERS[rep.kind]


def test_iban_digits_are_not_also_a_phone():
    found = find_pii(f"IBAN {VALID_IBANS[0]} grazie")
    assert [r.kind for r in found] == ["iban"]


@pytest.mark.parametrize(
    "text",
    [
        "Consegna il 03/04/2024 tra le 9:00 e le 13:00.",
        "Ordine n. 0012345678 del 1.2.2025, totale 1.234,56 €.",
        "Il prezzo è 350.000.000 euro, CAP 00184 Roma.",
        "Carta 4111 1111 1111 1112 rifiutata.",
        "ISBN 978-88-0134-045-7",
        "Seguiteci su @negozio_esempio",
    ],
)
def test_hard_negatives_are_left_alone(text):
    assert find_pii(text) == []


def test_redaction_is_idempotent_and_kind_filter_works():
    text = "anna@example.com, 347 123 4567, " + _cf("FRRLCU85T10H501")
    once = redact(text)
    assert redact(once.text).replacements == []
    only_email = redact(text, kinds=["email"])
    assert only_email.counts() == {"email": 1}


def test_keep_leaves_the_shops_own_contacts():
    text = "Chiamateci al +39 0599 417268 o scrivete a assistenza@shop.example; io sono al 347 123 4567."
    r = redact(text, keep=["+390599417268", "ASSISTENZA@shop.example"])
    assert r.text == "Chiamateci al +39 0599 417268 o scrivete a assistenza@shop.example; io sono al [PHONE]."
    with pytest.raises(TypeError, match="list of values"):
        redact(text, keep="+390599417268")


def test_bad_inputs_name_the_fix():
    with pytest.raises(TypeError, match="decode bytes first"):
        redact(b"anna@example.com")
    with pytest.raises(ValueError, match="choose from"):
        redact("x", kinds=["name"])
    with pytest.raises(ValueError, match="'text' and 'entities'"):
        score_redaction([{"text": "x"}])


def test_load_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "entities": []}\n{not json\n')
    with pytest.raises(ValueError, match="line 2"):
        redaction_eval.load_jsonl(path)
    with pytest.raises(FileNotFoundError, match="data/privacy"):
        redaction_eval.load_jsonl(tmp_path / "missing.jsonl")


# ----------------------------------------------------------------------------- the labelled test set


@pytest.fixture(scope="module")
def testset() -> list[dict]:
    return redaction_eval.load_jsonl(redaction_eval.TESTSET)


def test_testset_is_well_formed_and_big_enough(testset):
    per_kind = {k: 0 for k in privacy.KINDS}
    negatives = 0
    header = json.loads(redaction_eval.TESTSET.read_text(encoding="utf-8").splitlines()[0])
    assert "FICTIONAL" in header["_about"]
    for rec in testset:
        for e in rec["entities"]:
            assert rec["text"][e["start"]:e["end"]] == e["value"], rec["id"]
            per_kind[e["kind"]] += 1
        negatives += rec["group"] == "negative"
    assert min(per_kind.values()) >= 50, per_kind
    assert negatives >= 50


def test_testset_matches_its_generator(testset):
    spec = importlib.util.spec_from_file_location("make_testset", DATA / "make_testset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == testset, "the set was edited by hand: run data/privacy/make_testset.py"


# The floor: every format in the set is one the module documents, so a drop below 0.95 on any kind means
# a documented format broke (0.95 of 60 allows 3 misses, room for harder examples added later).
FLOOR = 0.95


def test_precision_and_recall_per_kind(testset):
    scores = score_redaction(testset)
    report = {k: (round(s.precision, 3), round(s.recall, 3)) for k, s in scores.items()}
    for s in scores.values():
        assert s.precision >= FLOOR and s.recall >= FLOOR, report


def test_customer_messages_are_labelled_and_redacted():
    records = redaction_eval.load_jsonl(DATA / "customer_messages.jsonl")
    assert {r["lang"] for r in records} == {"it", "en"}
    assert sum(len(r["entities"]) for r in records) >= 20
    for rec in records:
        for e in rec["entities"]:
            assert rec["text"][e["start"]:e["end"]] == e["value"], rec["id"]
    scores = score_redaction(records)
    assert all(s.recall >= FLOOR and s.precision >= FLOOR for s in scores.values()), scores
    for rec in records:
        cleaned = redact(rec["text"]).text
        assert not any(e["value"] in cleaned for e in rec["entities"]), rec["id"]



# ----------------------------------------------------------------------------- notebook 07 == helpers


@pytest.fixture(scope="module")
def nb07():
    from tests.notebook_defs import load_definitions

    return load_definitions("07_local_deployment.ipynb")


def test_notebook_luhn_equals_helpers(nb07):
    rng = random.Random(0)
    numbers = []
    for _ in range(300):
        payload = "".join(rng.choice("0123456789") for _ in range(rng.randint(11, 19)))
        number = payload + (luhn_check_digit(payload) if rng.random() < 0.5 else str(rng.randrange(10)))
        sep = rng.choice(["", " ", "-"])
        numbers.append(sep.join(number[i:i + 4] for i in range(0, len(number), 4)))
    numbers += ["4111 1111 1111 111a", "", "4111+1111+1111+1111"]
    assert [nb07.luhn_valid(n) for n in numbers] == [luhn_valid(n) for n in numbers]
    assert sum(luhn_valid(n) for n in numbers) > 100  # both outcomes are exercised


def test_notebook_iban_and_codice_fiscale_equal_helpers(nb07):
    rng = random.Random(1)
    alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for _ in range(200):
        country = rng.choice(sorted(IBAN_LENGTHS))
        bban = "".join(rng.choice(alnum) for _ in range(IBAN_LENGTHS[country] - 4))
        iban = _iban(country, bban)
        for candidate in (iban, _edit_digit(iban, 2)):
            assert nb07.iban_checksum_ok(candidate) == iban_valid(candidate)
        pools = {"L": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "D": "0123456789LMNPQRSTUV", "M": "ABCDEHLMPRST"}
        first15 = "".join(rng.choice(pools[c]) for c in "LLLLLLDDMDDLDDD")  # the codice fiscale's shape
        assert nb07.codice_fiscale_check_char(first15) == codice_fiscale_check_char(first15)
