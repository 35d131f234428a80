"""Write `redaction_testset.jsonl`: the project's own labelled test set for `helpers.deploy.privacy.redact`.

Every value is fictional, made here from a seeded random generator; check digits are computed by the
small functions below (written independently of `helpers.deploy.privacy`, so the set does not just echo the
code it tests). Run from the repository root:

    python data/privacy/make_testset.py     # rewrites data/privacy/redaction_testset.jsonl

Record schema (one JSON object per line):
    id        "email-003", "negative-041", ...
    lang      "it" or "en"
    group     the kind the record was written to exercise, or "negative"
    text      the message
    entities  [{"kind", "start", "end", "value"}]  with text[start:end] == value (empty for negatives)
The first line is a comment record {"_about": ...} (readers skip it), as in data/faq/.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

SEED = 7
N_PER_KIND = 60
N_NEGATIVE = 80
ABOUT = (
    "Labelled test set for PII redaction, written by the Train vs Instruct course project: its own data "
    "(MIT licence). Every e-mail, phone number, IBAN, codice fiscale and card number is FICTIONAL, made by "
    "data/privacy/make_testset.py from a seeded generator; any match with a real person or account is a "
    "coincidence."
)
OUT = Path(__file__).with_name("redaction_testset.jsonl")

# --------------------------------------------------------------------------- independent checksums


def luhn_complete(payload: str) -> str:
    """payload + the Luhn digit (computed left-to-right on the full number, unlike helpers.deploy.pii_validators)."""
    for d in "0123456789":
        digits = [int(c) for c in payload + d]
        total = 0
        for i, v in enumerate(digits):
            if (len(digits) - i) % 2 == 0:
                v = v * 2
                v = v - 9 if v > 9 else v
            total += v
        if total % 10 == 0:
            return payload + d
    raise AssertionError(payload)


def iban_complete(country: str, bban: str) -> str:
    """ISO 13616 check digits, with the mod taken piecewise (as a bank's mainframe would)."""
    numeric = "".join(str(ord(c) - 55) if c.isalpha() else c for c in bban + country + "00")
    rest = 0
    for i in range(0, len(numeric), 7):
        rest = int(str(rest) + numeric[i : i + 7]) % 97
    return f"{country}{98 - rest:02d}{bban}"


ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]


def cf_complete(first15: str) -> str:
    total = 0
    for pos, c in enumerate(first15, start=1):
        v = int(c) if c.isdigit() else ord(c) - 65
        total += ODD[v] if pos % 2 == 1 else v
    return first15 + chr(65 + total % 26)


# --------------------------------------------------------------------------- fictional values

IBAN_BBAN = {  # country: (length of the BBAN, a function of rng giving a BBAN of that shape)
    "IT": lambda r: r.choice(string.ascii_uppercase) + _d(r, 10) + _an(r, 12),
    "SM": lambda r: r.choice(string.ascii_uppercase) + _d(r, 10) + _an(r, 12),
    "DE": lambda r: _d(r, 18),
    "FR": lambda r: _d(r, 10) + _an(r, 11) + _d(r, 2),
    "ES": lambda r: _d(r, 20),
    "GB": lambda r: "".join(r.choice(string.ascii_uppercase) for _ in range(4)) + _d(r, 14),
    "CH": lambda r: _d(r, 5) + _an(r, 12),
    "NL": lambda r: "".join(r.choice(string.ascii_uppercase) for _ in range(4)) + _d(r, 10),
    "AT": lambda r: _d(r, 16),
    "BE": lambda r: _d(r, 12),
}


def _d(r: random.Random, n: int) -> str:
    return "".join(r.choice(string.digits) for _ in range(n))


def _an(r: random.Random, n: int) -> str:
    return "".join(r.choice(string.digits + string.ascii_uppercase) for _ in range(n))


def _grouped(s: str, size: int = 4, sep: str = " ") -> str:
    return sep.join(s[i : i + size] for i in range(0, len(s), size))


def make_iban(r: random.Random, valid: bool = True) -> str:
    country = r.choice(list(IBAN_BBAN)) if r.random() < 0.5 else "IT"
    iban = iban_complete(country, IBAN_BBAN[country](r))
    if not valid:  # change one check digit: a one-digit change always breaks mod 97
        wrong = str((int(iban[3]) + r.randint(1, 9)) % 10)
        iban = iban[:3] + wrong + iban[4:]
    style = r.random()
    if style < 0.55:
        return _grouped(iban)
    return iban if style < 0.9 else iban.lower()


CARD_PREFIXES = [
    ("4", 16),
    ("4", 13),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("34", 15),
    ("37", 15),
    ("6011", 16),
    ("35", 16),
    ("6759", 19),
    ("4", 19),
    ("62", 17),
    ("36", 14),
]


def make_card(r: random.Random, valid: bool = True) -> str:
    prefix, length = r.choice(CARD_PREFIXES)
    number = luhn_complete(prefix + _d(r, length - len(prefix) - 1))
    if not valid:
        number = number[:-1] + str((int(number[-1]) + r.randint(1, 9)) % 10)
    style = r.random()
    if length == 15 and style < 0.5:  # American Express prints 4-6-5
        return " ".join((number[:4], number[4:10], number[10:]))
    if style < 0.45:
        return _grouped(number)
    if style < 0.7:
        return _grouped(number, sep="-")
    return number


CONSONANTS = "BCDFGHJKLMNPQRSTVWXYZ"
MONTHS = "ABCDEHLMPRST"
OMOCODIA = "LMNPQRSTUV"


def make_cf(r: random.Random, valid: bool = True) -> str:
    name = (
        "".join(r.choice(CONSONANTS) for _ in range(3))
        + r.choice(CONSONANTS)
        + r.choice("AEIOU")
        + r.choice(CONSONANTS)
    )
    day = r.randint(1, 28) + (40 if r.random() < 0.5 else 0)
    year, month, town = f"{r.randint(0, 99):02d}", r.choice(MONTHS), r.choice("ABCDEFGHILM")
    body = list(f"{name}{year}{month}{day:02d}{town}{r.randint(1, 999):03d}")
    if r.random() < 0.25:  # omocodia: replace digits from the right with their letters
        for pos in [14, 13, 12, 10, 9, 7, 6][: r.randint(1, 3)]:
            body[pos] = OMOCODIA[int(body[pos])]
    code = cf_complete("".join(body))
    if not valid:
        code = code[:15] + chr(65 + (ord(code[15]) - 65 + r.randint(1, 25)) % 26)
    return code.lower() if r.random() < 0.1 else code


def make_phone(r: random.Random) -> str:
    mobile = f"3{r.choice('234567889')}{r.randint(0, 9)}"
    rest = _d(r, 7)
    area = r.choice(["02", "06", "011", "010", "051", "055", "081", "0471", "0532", "0541"])
    sub = _d(r, 10 - len(area))
    return r.choice(
        [
            f"{mobile} {rest[:3]} {rest[3:]}",
            f"{mobile}{rest}",
            f"{mobile}-{rest}",
            f"{mobile}.{rest[:3]}.{rest[3:]}",
            f"+39 {mobile} {rest[:3]} {rest[3:]}",
            f"+39{mobile}{rest}",
            f"0039 {mobile} {rest}",
            f"{area} {sub}",
            f"{area} {sub[:4]} {sub[4:]}" if len(sub) == 8 else f"{area} {sub}",
            f"({area}) {sub}",
            f"{area}/{sub}",
            f"+39 {area} {sub}",
            f"+39 {area[:]} {sub[:3]} {sub[3:]}",
            f"+44 20 7946 0{_d(r, 3)}",
            f"+33 1 {_d(r, 2)} {_d(r, 2)} {_d(r, 2)} {_d(r, 2)}",
            f"+49 30 {_d(r, 7)}",
            f"+1 (555) 010-0{_d(r, 3)}",
            f"+41 44 {_d(r, 3)} {_d(r, 2)} {_d(r, 2)}",
            f"+34 91 {_d(r, 3)} {_d(r, 2)} {_d(r, 2)}",
        ]
    )


FIRST = [
    "giulia",
    "marco",
    "anna",
    "luca",
    "sara",
    "paolo",
    "elena",
    "davide",
    "chiara",
    "tom",
    "emma",
    "noah",
]
LAST = ["ferri", "gallo", "conti", "marini", "greco", "bruno", "costa", "fontana", "smith", "jones"]
DOMAINS = [
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
    "posta.example.org",
    "negozio.example",
    "shop.test",
    "clienti.example.net",
]


def make_email(r: random.Random) -> str:
    f, l = r.choice(FIRST), r.choice(LAST)
    local = r.choice(
        [
            f"{f}.{l}",
            f"{f}{l}{r.randint(1, 99)}",
            f"{f[0]}.{l}",
            f"{f}_{l}",
            f"{f}+ordini",
            f"{l}-{f}",
            f"{f.capitalize()}.{l.capitalize()}",
            f"{f}.{l}.{r.randint(1970, 2005)}",
        ]
    )
    return f"{local}@{r.choice(DOMAINS)}"


MAKERS = {
    "email": make_email,
    "phone": make_phone,
    "iban": make_iban,
    "codice_fiscale": make_cf,
    "card": make_card,
}

TEMPLATES = {
    "email": [
        ("it", "Potete scrivermi a {X} per la conferma."),
        ("en", "Please send the invoice to {X}, thanks."),
        ("it", "La mia mail è {X}"),
        ("en", "Contact: {X}."),
        ("it", "Mail nuova ({X}) dal 3/2/2024."),
    ],
    "phone": [
        ("it", "Richiamatemi al {X} dopo le 18:00."),
        ("en", "You can reach me on {X}."),
        ("it", "Tel. {X}, chiedete di me"),
        ("en", "My number changed, it's {X} now."),
        ("it", "Il corriere ha il mio numero: {X}."),
    ],
    "iban": [
        ("it", "Per il rimborso usate l'IBAN {X} intestato a me."),
        ("en", "Refund to IBAN {X} please."),
        ("it", "IBAN: {X}"),
        ("en", "My account is {X}; the order was #4471."),
    ],
    "codice_fiscale": [
        ("it", "Il mio codice fiscale è {X}, serve per la fattura."),
        ("en", "Tax code {X} for the invoice."),
        ("it", "CF {X}"),
        ("it", "Fattura a nome mio, C.F. {X}."),
    ],
    "card": [
        ("it", "Ho pagato con la carta {X} ma l'addebito è doppio."),
        ("en", "Charge it to card {X}, expiry 09/27."),
        ("en", "The card ending in the number {X} was declined."),
        ("it", "Numero carta: {X}"),
    ],
}


def isbn13(r: random.Random) -> str:
    """A fictional ISBN-13 (weights 1, 3), written with dashes: it may or may not pass Luhn by chance."""
    body = "97888" + _d(r, 7)
    check = (10 - sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body)) % 10) % 10
    return f"{body[:3]}-{body[3:5]}-{body[5:9]}-{body[9:]}-{check}"


def negative_texts(r: random.Random) -> list[tuple[str, str]]:
    """Hard negatives: numbers that look like personal data but are not (or fail their checksum)."""
    out = []
    for _ in range(14):
        out.append(
            ("it", f"Ho provato a pagare con {make_card(r, valid=False)} ma non va (numero sbagliato?).")
        )
        out.append(("en", f"The IBAN {make_iban(r, valid=False)} was rejected by the bank."))
        out.append(("it", f"Codice ricevuto: {make_cf(r, valid=False)}, è corretto?"))
    for _ in range(6):
        y = r.randint(2019, 2026)
        out.append(
            (
                "it",
                f"Consegna il {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{y} tra le 9:00 e le 13:00.",
            )
        )
        out.append(
            ("en", f"Order {y}-{_d(r, 6)} shipped on {y}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}.")
        )
        out.append(
            (
                "it",
                f"Ordine n. 00{_d(r, 8)} del {r.randint(1, 28)}.{r.randint(1, 12)}.{y}, "
                f"totale 1.{_d(r, 3)},{_d(r, 2)} €.",
            )
        )
        out.append(("en", f"Tracking number {_d(r, 12)}, invoice {y}/{_d(r, 5)}."))
        out.append(
            ("it", f"Codice prodotto SKU-{_d(r, 8)}, lotto {_d(r, 6)}, CAP 00{r.randint(118, 199)} Roma.")
        )
        out.append(("en", f"The manual (ISBN {isbn13(r)}) is on page {r.randint(10, 300)}."))
    out += [
        ("en", "Our shop opens at 09:30 and closes at 19:30, Monday to Saturday."),
        ("it", "Il prezzo è sceso da 349,00 a 299,90 euro, sconto del 14%."),
        ("en", "Follow us at @shop_example for news; firmware v2.10.3 fixed it."),
        ("it", "Il pacco pesa 2,5 kg e misura 30x40x15 cm."),
        ("en", "Ticket #20240311 is closed; see ticket # 3471234567 for the follow-up."),
    ]
    return out


def _fill(template: str, value: str) -> tuple[str, list[dict]]:
    start = template.index("{X}")
    text = template.replace("{X}", value)
    return text, [{"start": start, "end": start + len(value), "value": value}]


def build(seed: int = SEED) -> list[dict]:
    r = random.Random(seed)
    records = []
    for kind, maker in MAKERS.items():
        for i in range(N_PER_KIND):
            lang, template = TEMPLATES[kind][i % len(TEMPLATES[kind])]
            text, ents = _fill(template, maker(r))
            for e in ents:
                e["kind"] = kind
            records.append(
                {
                    "id": f"{kind}-{i:03d}",
                    "lang": lang,
                    "group": kind,
                    "text": text,
                    "entities": [
                        {"kind": e["kind"], "start": e["start"], "end": e["end"], "value": e["value"]}
                        for e in ents
                    ],
                }
            )
    negatives = negative_texts(r)
    if len(negatives) < N_NEGATIVE:
        raise AssertionError(f"only {len(negatives)} negatives")
    for i, (lang, text) in enumerate(negatives):
        records.append(
            {"id": f"negative-{i:03d}", "lang": lang, "group": "negative", "text": text, "entities": []}
        )
    # A few messages with several kinds at once, as real support mail has.
    for i in range(10):
        e, p, c = make_email(r), make_phone(r), make_card(r)
        parts = [
            "Salve, sono un cliente (ordine #",
            _d(r, 6),
            "). Mail ",
            e,
            ", cell. ",
            p,
            ", carta ",
            c,
            ".",
        ]
        text, ents, pos = "", [], 0
        for j, piece in enumerate(parts):
            kind = {3: "email", 5: "phone", 7: "card"}.get(j)
            if kind:
                ents.append({"kind": kind, "start": pos, "end": pos + len(piece), "value": piece})
            text += piece
            pos += len(piece)
        records.append(
            {"id": f"mixed-{i:03d}", "lang": "it", "group": "mixed", "text": text, "entities": ents}
        )
    return records


def main() -> None:
    records = build()
    for rec in records:
        for e in rec["entities"]:
            assert rec["text"][e["start"] : e["end"]] == e["value"], rec
    lines = [json.dumps({"_about": ABOUT}, ensure_ascii=False)] + [
        json.dumps(rec, ensure_ascii=False) for rec in records
    ]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(records)} records to {OUT.name}")


if __name__ == "__main__":
    main()
