"""Pure validators for personal data: the checksums and numbering rules that tell a real IBAN, codice
fiscale, card or phone number from a string that only looks like one.

    >>> luhn_valid("4111 1111 1111 1111"), iban_valid("GB82 WEST 1234 5698 7654 32")
    (True, True)
    >>> codice_fiscale_check_char("RSSMRA80A01H501"), phone_valid("+39 347 123 4567")
    ('U', True)

- `luhn_valid` / `luhn_check_digit`: payment cards (13-19 digits, spaces or dashes between groups);
- `iban_valid` / `iban_check_digits`: known country, the registry's length, mod 97 == 1 (`IBAN_LENGTHS`);
- `codice_fiscale_valid` / `codice_fiscale_check_char`: shape, a real month and day (omocodia letters
  decoded), and the check character;
- `phone_valid`: +CC / 00CC with 8-15 digits (E.164); Italian numbers must be mobile or landline.
Each is a function of a string only (no regexes over a text, no context): `helpers.deploy.privacy` finds
the candidates in a text and asks these.

Left out on purpose: VAT numbers, IBAN countries missing from `IBAN_LENGTHS`, national phone formats other
than Italy's, and card-issuer prefixes (a checksum cannot tell a real card from any other Luhn-valid
number: about 1 in 10 random 16-digit numbers passes).

References: ISO 13616 (IBAN) and the SWIFT IBAN Registry (lengths); ISO/IEC 7812 (Luhn);
D.M. 23/12/1976 (codice fiscale check character, omocodia); ITU-T E.164 (at most 15 digits).
"""

from __future__ import annotations

import re

# IBAN length per country, from the SWIFT IBAN Registry (release 99, 2024): the EU/EEA countries,
# the UK, Switzerland and the microstates around Italy. A country missing here is not recognised.
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "VA": 22,
}



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
