"""Self-checking exercises of notebook 07 (local deployment): each check and the hints for its usual mistakes."""

from __future__ import annotations

from typing import Any

from helpers.course.exercises.common import Feedback, call, close, exercise, numeric, to_number
from helpers.deploy.pii_validators import luhn_valid
from helpers.measure.breakeven import CostModel, crossovers
from helpers.measure.latency import StreamStats


@exercise(
    "07",
    1,
    "Decode speed",
    "Write `my_decode_speed(first_token_seconds, total_seconds, new_tokens)` "
    "returning the tokens per second of decoding: the pace after the first token, which also paid for "
    "reading the prompt.",
)
def _ex07_1(fn: Any) -> Feedback:
    for first, total, n in ((0.5, 2.5, 41), (0.2, 1.2, 11), (1.0, 1.5, 2)):
        got, want = to_number(call(fn, first, total, n)), StreamStats(n, first, total).tokens_per_second
        if close(got, want, 1e-6):
            continue
        if close(got, n / total, 1e-6):
            return Feedback(
                False, "leave the first token out: its time includes processing the whole prompt."
            )
        if close(got, n / (total - first), 1e-6):
            return Feedback(False, "after the first token, n - 1 tokens were decoded in that time.")
        if close(got, (n - 1) / total, 1e-6):
            return Feedback(False, "use the time after the first token only.")
        return Feedback(False, f"wrong for first={first} s, total={total} s, {n} tokens.")
    return Feedback(True, "decode pace measured apart from time to first token, as helpers.measure.latency does.")


LOCAL_EUR_MONTH, LOCAL_EUR_REQUEST, CLOUD_EUR_REQUEST = 300.0, 0.0002, 0.002


@exercise(
    "07",
    2,
    "Break-even volume",
    f"A local server costs {LOCAL_EUR_MONTH:g} EUR per month plus "
    f"{LOCAL_EUR_REQUEST:g} EUR of energy per request; a cloud API costs {CLOUD_EUR_REQUEST:g} EUR per "
    "request. Above how many requests per month is local cheaper?",
)
def _ex07_2(answer: Any) -> Feedback:
    local = CostModel(
        "local", fixed_eur_per_unit=LOCAL_EUR_MONTH, eur_per_request=LOCAL_EUR_REQUEST, min_units=1
    )
    cloud = CostModel("cloud", eur_per_request=CLOUD_EUR_REQUEST)
    (cross,) = crossovers(local, cloud, max_requests=1e7)
    return numeric(
        answer,
        cross.requests,
        [
            (
                LOCAL_EUR_MONTH / CLOUD_EUR_REQUEST,
                "the local server's energy per request grows with volume too.",
            ),
            (
                LOCAL_EUR_MONTH / (CLOUD_EUR_REQUEST + LOCAL_EUR_REQUEST),
                "the two per-request costs are subtracted: local saves the difference on each request.",
            ),
            (LOCAL_EUR_MONTH / LOCAL_EUR_REQUEST, "compare with the cloud's price per request."),
        ],
        "set the two monthly costs equal and solve for the number of requests",
        "the same crossing as helpers.measure.breakeven.crossovers.",
        rel=1e-3,
    )


@exercise(
    "07",
    3,
    "The Luhn check",
    "Write `my_luhn_ok(number)` for a card number given as a string (spaces "
    "allowed): from the rightmost digit, double every second digit, subtract 9 from results over 9, sum "
    "everything; valid when the sum is a multiple of 10.",
)
def _ex07_3(fn: Any) -> Feedback:
    cases = [
        "4111 1111 1111 1111",
        "4111 1111 1111 1112",
        "5555 5555 5555 4444",
        "3782 822463 10005",
        "3782 822463 10006",
        "4012 8888 8888 1881",
        "6011 0009 9013 9424",
    ]
    for number in cases:
        got, want = bool(call(fn, number)), luhn_valid(number)
        if got == want:
            continue
        if number.startswith("3782"):  # 15 digits: doubling from the left picks the wrong digits
            return Feedback(
                False,
                "count from the right: with an odd number of digits (this one has 15), "
                "doubling from the left picks the wrong ones.",
            )
        return Feedback(False, f"wrong for {number!r} (expected {'valid' if want else 'invalid'}).")
    return Feedback(
        True,
        "agrees with helpers.deploy.pii_validators.luhn_valid, which redaction uses to tell card numbers "
        "from other digit runs.",
    )
