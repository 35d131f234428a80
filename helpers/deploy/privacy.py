"""Privacy before training: find and replace personal data in text, and keep the network shut.

`redact(text)` replaces e-mail addresses, phone numbers (Italian mobile and landline, and any number
written with an international `+CC` / `00CC` prefix), IBANs (mod-97 checksum), Italian codici fiscali
(check character, omocodia letters included) and payment card numbers (Luhn, 13-19 digits, spaces
or dashes between groups) with a placeholder such as `[EMAIL]`, and reports every replacement:

    >>> r = redact("Scrivete a mario.bianchi@example.it o al 347 123 4567")
    >>> r.text
    'Scrivete a [EMAIL] o al [PHONE]'
    >>> [(x.kind, x.start, x.end) for x in r.replacements]
    [('email', 11, 35), ('phone', 41, 53)]

How: each kind is a regular expression that proposes candidates, then a *pure* validator
(`luhn_valid`, `iban_valid`, `codice_fiscale_valid`, `phone_valid`) keeps only candidates that pass
the checksum or the numbering rules. Kinds run in a fixed priority order (e-mail, IBAN, codice
fiscale, international phone, card, national phone) and a later kind never overlaps an earlier
match, so the digits inside an IBAN are not also reported as a phone number.

What it deliberately leaves out: names, postal addresses and dates of birth (they need a language
model or a gazetteer, not a pattern; say so to learners), VAT numbers, national formats other than
Italy's for phones written without a prefix, and IBAN countries missing from `IBAN_LENGTHS`.
A checksum cannot tell a real card from any other Luhn-valid number: about 1 in 10 random 16-digit
numbers passes, so long order or tracking numbers can be redacted too (a false positive is the
safe direction here). The measured precision and recall per kind are in
`data/privacy/README.md` and `tests/test_privacy.py`.

The network guard lives in `helpers.core.netguard`; it is re-exported here (`block_network`, `offline`,
`guard`) because "keep the data in-house" is the same concern.

References: ISO 13616 (IBAN) and the SWIFT IBAN Registry (lengths); ISO/IEC 7812 (Luhn);
D.M. 23/12/1976 (codice fiscale check character, omocodia); ITU-T E.164 (at most 15 digits).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from helpers.core.data import PROJECT_DATA_DIR
from helpers.core.io import read_jsonl
from helpers.core.netguard import NetworkBlockedError, NetworkGuard, block_network, guard, offline, unblock_network

__all__ = [
    "KINDS", "PLACEHOLDERS", "IBAN_LENGTHS", "Replacement", "Redaction", "redact", "find_pii",
    "luhn_valid", "luhn_check_digit", "iban_valid", "iban_check_digits", "codice_fiscale_valid",
    "codice_fiscale_check_char", "phone_valid",
    "DATA_DIR", "TESTSET", "CUSTOMER_MESSAGES", "load_jsonl", "KindScore", "score_redaction",
    "block_network", "unblock_network", "offline", "guard", "NetworkGuard", "NetworkBlockedError",
]

# Priority order (see the module docstring) and the placeholder each kind leaves behind.
KINDS = ("email", "iban", "codice_fiscale", "phone", "card")
PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "iban": "[IBAN]",
    "codice_fiscale": "[CODICE_FISCALE]",
    "card": "[CARD]",
}

# IBAN length per country, from the SWIFT IBAN Registry (release 99, 2024): the EU/EEA countries,
# the UK, Switzerland and the microstates around Italy. A country missing here is not recognised.
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "VA": 22,
}


# --------------------------------------------------------------------------- validators (pure)

def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_check_digit(payload: str) -> str:
    """The digit that makes `payload + digit` Luhn-valid: '7992739871' -> '3'."""
    if not payload.isdigit():
        raise ValueError(f"luhn_check_digit needs digits only, got {payload!r}: strip spaces and dashes")
    total = 0
    # subtle: doubling starts from the rightmost payload digit, because the check digit goes after it.
    for i, ch in enumerate(reversed(payload)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str, min_len: int = 13, max_len: int = 19) -> bool:
    """Luhn checksum of a card number (spaces and dashes ignored): '4111 1111 1111 1111' -> True."""
    if re.search(r"[^\d \-]", number):
        return False
    digits = _digits(number)
    if not min_len <= len(digits) <= max_len:
        return False
    return luhn_check_digit(digits[:-1]) == digits[-1]


def _iban_as_int(rearranged: str) -> int:
    # A=10, B=11, ..., Z=35 (ISO 13616); digits stay digits.
    return int("".join(str(int(ch, 36)) for ch in rearranged))


def iban_check_digits(country: str, bban: str) -> str:
    """The two check digits of an IBAN: ('GB', 'WEST12345698765432') -> '82'."""
    country, bban = country.upper(), bban.replace(" ", "").upper()
    if not (len(country) == 2 and country.isalpha() and bban.isalnum()):
        raise ValueError(
            f"iban_check_digits needs a 2-letter country and an alphanumeric BBAN, got {country!r}, {bban!r}"
        )
    return f"{98 - _iban_as_int(bban + country + '00') % 97:02d}"


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: known country, registry length, mod 97 == 1: 'GB82 WEST 1234 5698 7654 32' -> True."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", compact):
        return False
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    return _iban_as_int(compact[4:] + compact[:4]) % 97 == 1


# Codice fiscale: values of a character in an odd (1st, 3rd, ...) position; even positions use 0-25.
_CF_ODD_VALUES = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21,  # 0-9 (and A-J below: same values)
                  2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]  # K-Z
_CF_ODD = {
    **dict(zip("0123456789", _CF_ODD_VALUES[:10], strict=True)),
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", _CF_ODD_VALUES, strict=True)),
}
_CF_EVEN = {**{str(d): d for d in range(10)}, **{chr(ord("A") + i): i for i in range(26)}}
_CF_OMOCODIA = "LMNPQRSTUV"  # letter that stands for 0..9 when two people would share a code
_CF_DIGIT_POSITIONS = (6, 7, 9, 10, 12, 13, 14)  # 0-based positions that hold digits (or their letters)
_CF_MONTHS = "ABCDEHLMPRST"  # January..December
_CF_SHAPE = re.compile(
    r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]"
)


def codice_fiscale_check_char(first15: str) -> str:
    """The 16th character of a codice fiscale: 'RSSMRA80A01H501' -> 'U'."""
    code = first15.upper()
    if len(code) != 15 or not code.isalnum():
        raise ValueError(f"codice_fiscale_check_char needs the first 15 characters, got {first15!r}")
    # Positions are counted from 1 in the decree, so index 0 is an *odd* position.
    total = sum(_CF_ODD[ch] if i % 2 == 0 else _CF_EVEN[ch] for i, ch in enumerate(code))
    return chr(ord("A") + total % 26)


def codice_fiscale_valid(code: str) -> bool:
    """Shape, a real month and day (omocodia letters decoded), and the check character."""
    code = code.upper()
    if not _CF_SHAPE.fullmatch(code):
        return False
    decoded = list(code)
    for i in _CF_DIGIT_POSITIONS:
        if decoded[i] in _CF_OMOCODIA:
            decoded[i] = str(_CF_OMOCODIA.index(decoded[i]))
    day = int("".join(decoded[9:11]))
    if not (1 <= day <= 31 or 41 <= day <= 71):  # women: day + 40
        return False
    return codice_fiscale_check_char(code[:15]) == code[15]


def phone_valid(number: str) -> bool:
    """Numbering rules: +CC with 8-15 digits (E.164); Italian numbers must be mobile or landline.

    '+39 347 123 4567' -> True, '347 123 4567' -> True, '02 1234 5678' -> True, '12345678' -> False.
    """
    compact = re.sub(r"[ .\-/()]", "", number)
    if compact.startswith("+"):
        body = compact[1:]
    elif compact.startswith("00") and not compact.startswith("000"):
        body = compact[2:]
    else:
        return _italian_national_valid(compact)
    if not body.isdigit() or not 8 <= len(body) <= 15:
        return False
    if body.startswith("39"):
        return _italian_national_valid(body[2:])
    return body[0] != "0"  # country codes never start with 0


def _italian_national_valid(national: str) -> bool:
    if not national.isdigit():
        return False
    if national.startswith("3"):
        return 9 <= len(national) <= 10  # mobile: 3xx + 6 or 7 digits
    if national.startswith("0"):
        return 6 <= len(national) <= 11  # landline: area code (0 + 1-3 digits) + subscriber
    return False


# --------------------------------------------------------------------------- finding candidates

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]*[A-Za-z0-9_])?@"
                    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})(?=[ ]?[A-Za-z0-9])")
_CF = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{16}(?![A-Za-z0-9])")
# Number-like candidates must not touch another digit group: "4632 0963 5476 9" holds no phone number.
_NOT_AFTER = r"(?<![\w+\-/.,])(?<!\d[ .\-])"
_NOT_BEFORE = r"(?![\w\-/]|[ .,\-]\d)"
_CARD = re.compile(_NOT_AFTER + r"\d(?:[ \-]?\d){12,18}" + _NOT_BEFORE)
_INTL_PHONE = re.compile(  # +CC or 00CC, then up to 6 groups; "(0)" as in "+39 (0)2 ..." allowed
    _NOT_AFTER + r"(?:\+|00)\d{1,3}(?:[ .\-]?(?:\(0\)[ .\-]?)?\(?\d{1,5}\)?){1,6}" + _NOT_BEFORE
)
_IT_PHONE = re.compile(  # (0xx) / 0xx / 3xx, then up to 3 groups of 2-4 digits
    _NOT_AFTER
    + r"(?:\(0\d{1,3}\)[ ]?|0\d{1,3}[ .\-/]?|3\d{2}[ .\-/]?)\d{2,4}(?:[ .\-]?\d{2,4}){0,2}"
    + _NOT_BEFORE
)
# How card numbers are printed: one run, groups of 4 (the last may be shorter), or 4-6-5 / 4-6-4
# (American Express, Diners). An ISBN such as 978-88-0134-045-7 is grouped otherwise.
_CARD_GROUPINGS = ((4, 6, 5), (4, 6, 4))
_DATE = re.compile(r"\d{1,4}[./\-]\d{1,2}[./\-]\d{1,4}")
# Words that introduce a reference number rather than a phone number ("ordine n. 0012345678").
# subtle: "n." alone is not one of them: Italians write "al n. 347 1234567" for phones too.
_REFERENCE_CONTEXT = re.compile(
    r"(?:\b(?:ordine|order|fattura|invoice|ticket|pratica|tracking|spedizione|shipment|rif|ref|codice|code|"
    r"sku|lotto|batch|serial|seriale|matricola|id)\b(?:\s*(?:n[°o.r]*|numero|number|num)\b)?|#)[\s.:#°]*$",
    re.IGNORECASE,
)
_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+")  # 350.000.000 is an amount, not a phone


@dataclass(frozen=True)
class Replacement:
    """One piece of personal data found in the original text: text[start:end] == original."""

    kind: str  # one of KINDS
    start: int
    end: int
    original: str
    placeholder: str


@dataclass(frozen=True)
class Redaction:
    """The redacted text and what was replaced (spans refer to the original text)."""

    text: str
    replacements: list[Replacement] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Replacements per kind, e.g. {'email': 1, 'phone': 2}."""
        out: dict[str, int] = {}
        for r in self.replacements:
            out[r.kind] = out.get(r.kind, 0) + 1
        return out


def _iban_candidates(text: str) -> Iterable[tuple[int, int]]:
    for m in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1).upper())
        if length is None:
            continue
        # Walk forward collecting exactly `length` characters, allowing single spaces between groups;
        # subtle: a greedy regex would run on into the next word ("... 456 grazie").
        i, taken = m.start(), 0
        while i < len(text) and taken < length:
            if text[i].isalnum():
                taken += 1
                i += 1
            elif text[i] == " " and taken >= 4 and i + 1 < len(text) and text[i + 1].isalnum():
                i += 1
            else:
                break
        if taken == length and (i == len(text) or not text[i].isalnum()):
            yield m.start(), i


def _regex_candidates(pattern: re.Pattern, text: str) -> Iterable[tuple[int, int]]:
    for m in pattern.finditer(text):
        yield m.start(), m.end()


def _card_grouping_ok(span: str) -> bool:
    seps = set(re.findall(r"[ \-]", span))
    if not seps:
        return True
    if len(seps) > 1:
        return False
    sizes = tuple(len(g) for g in span.split(seps.pop()))
    return all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4 or sizes in _CARD_GROUPINGS


def _is_reference_number(text: str, start: int) -> bool:
    return bool(_REFERENCE_CONTEXT.search(text[max(0, start - 24):start]))


def _accept(kind: str, text: str, start: int, end: int) -> bool:
    span = text[start:end]
    if kind == "email":
        return True
    if kind == "iban":
        return iban_valid(span)
    if kind == "codice_fiscale":
        return codice_fiscale_valid(span)
    if kind == "card":
        return _card_grouping_ok(span) and luhn_valid(span)
    if kind == "intl_phone" and (span.startswith("000") or span[0] not in "+0"):
        return False
    if kind in ("intl_phone", "it_phone"):
        if _DATE.fullmatch(span) or _THOUSANDS.fullmatch(span) or _is_reference_number(text, start):
            return False
        if span.startswith("00") and not re.search(r"[ .\-()]", span):
            return False  # a bare 00-run is more often a reference number than a dialled prefix
        return phone_valid(span)
    raise AssertionError(kind)


_DETECTORS = (  # priority order; a later detector never overlaps an earlier match
    ("email", lambda t: _regex_candidates(_EMAIL, t)),
    ("iban", _iban_candidates),
    ("codice_fiscale", lambda t: _regex_candidates(_CF, t)),
    ("intl_phone", lambda t: _regex_candidates(_INTL_PHONE, t)),
    ("card", lambda t: _regex_candidates(_CARD, t)),
    ("it_phone", lambda t: _regex_candidates(_IT_PHONE, t)),
)
_KIND_OF = {"intl_phone": "phone", "it_phone": "phone"}


def _normalise(value: str) -> str:
    return re.sub(r"[ .\-/()]", "", value).lower()


def find_pii(text: str, kinds: Iterable[str] = KINDS, keep: Iterable[str] = ()) -> list[Replacement]:
    """Every piece of personal data of the given kinds, in text order (non-overlapping).

    `keep` lists values that are not personal data here, e.g. the shop's own phone number; they are
    compared without spaces, dots, dashes and case ('+39 0599 417268' keeps '+390599417268').
    """
    if not isinstance(text, str):
        raise TypeError(f"find_pii/redact need a str, got {type(text).__name__}: decode bytes first")
    wanted = set(kinds)
    unknown = wanted - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}: choose from {', '.join(KINDS)}")
    if isinstance(keep, str):
        raise TypeError("keep must be a list of values, e.g. keep=['info@shop.example'], not a single string")
    kept = {_normalise(v) for v in keep}
    taken: list[tuple[int, int]] = []
    found: list[Replacement] = []
    for detector, candidates in _DETECTORS:
        kind = _KIND_OF.get(detector, detector)
        if kind not in wanted:
            continue
        for start, end in candidates(text):
            if any(start < e and s < end for s, e in taken):
                continue
            if _accept(detector, text, start, end):
                taken.append((start, end))
                if _normalise(text[start:end]) in kept:
                    continue
                found.append(Replacement(kind, start, end, text[start:end], PLACEHOLDERS[kind]))
    return sorted(found, key=lambda r: r.start)


def redact(text: str, kinds: Iterable[str] = KINDS, keep: Iterable[str] = ()) -> Redaction:
    """Replace personal data with placeholders: 'call +39 06 1234 5678' -> 'call [PHONE]'.

    `kinds` restricts what is looked for; `keep` lists values to leave in place (see `find_pii`).
    """
    found = find_pii(text, kinds, keep)
    pieces, last = [], 0
    for r in found:
        pieces += [text[last:r.start], r.placeholder]
        last = r.end
    pieces.append(text[last:])
    return Redaction("".join(pieces), found)


# --------------------------------------------------------------------------- measuring it

DATA_DIR = PROJECT_DATA_DIR / "privacy"  # schema: its README.md
TESTSET = DATA_DIR / "redaction_testset.jsonl"  # labelled, fictional: 60 per kind + hard negatives
CUSTOMER_MESSAGES = DATA_DIR / "customer_messages.jsonl"  # 30 fictional messages to Zefiro Bikes


def load_jsonl(path: str | Path = TESTSET) -> list[dict]:
    """Records of a privacy JSONL file (`{"_about": ...}` notes skipped): `helpers.core.io.read_jsonl`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the privacy data lives in data/privacy/ of the checkout")
    return read_jsonl(path)


@dataclass(frozen=True)
class KindScore:
    """Exact-span matches for one kind: a found span counts only if kind, start and end all agree."""

    kind: str
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score_redaction(records: Iterable[dict], kinds: Iterable[str] = KINDS) -> dict[str, KindScore]:
    """Precision and recall per kind of `find_pii` on labelled records ({"text", "entities": [...]})."""
    kinds = tuple(kinds)
    counts = {k: [0, 0, 0] for k in kinds}  # tp, fp, fn
    for n, rec in enumerate(records):
        if "text" not in rec or "entities" not in rec:
            raise ValueError(f"record {n} needs 'text' and 'entities' fields (see data/privacy/README.md)")
        gold = {(e["kind"], e["start"], e["end"]) for e in rec["entities"] if e["kind"] in kinds}
        found = {(r.kind, r.start, r.end) for r in find_pii(rec["text"], kinds)}
        for kind, *_ in found & gold:
            counts[kind][0] += 1
        for kind, *_ in found - gold:
            counts[kind][1] += 1
        for kind, *_ in gold - found:
            counts[kind][2] += 1
    return {k: KindScore(k, *c) for k, c in counts.items()}
