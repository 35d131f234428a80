"""Privacy before training: find and replace personal data in text.

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
(`helpers.deploy.pii_validators`: Luhn, IBAN, codice fiscale, phone numbering rules) keeps only candidates
that pass the checksum or the numbering rules. Kinds run in a fixed priority order (e-mail, IBAN, codice
fiscale, international phone, card, national phone) and a later kind never overlaps an earlier match, so
the digits inside an IBAN are not also reported as a phone number.

What it deliberately leaves out: names, postal addresses and dates of birth (they need a language
model or a gazetteer, not a pattern; say so to learners), and what the validators leave out (see
`helpers.deploy.pii_validators`). Long order or tracking numbers that pass the Luhn check can be redacted
as cards too (a false positive is the safe direction here). The measured precision and recall per kind
(`helpers.deploy.redaction_eval`) are in `data/privacy/README.md` and `tests/test_privacy.py`. The network
guard that keeps the data in-house is `helpers.core.netguard`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from helpers.deploy.pii_validators import IBAN_LENGTHS, codice_fiscale_valid, iban_valid, luhn_valid, phone_valid

# Priority order (see the module docstring) and the placeholder each kind leaves behind.
KINDS = ("email", "iban", "codice_fiscale", "phone", "card")
PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "iban": "[IBAN]",
    "codice_fiscale": "[CODICE_FISCALE]",
    "card": "[CARD]",
}

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
