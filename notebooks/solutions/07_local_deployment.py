"""Solutions: notebook 07, self-checking exercises (helpers.course.exercises)."""


def exercise_1():
    def my_decode_speed(first_token_seconds, total_seconds, new_tokens):
        return (new_tokens - 1) / (total_seconds - first_token_seconds)

    return my_decode_speed


def exercise_2():
    fixed, local, cloud = 300.0, 0.0002, 0.002
    return fixed / (cloud - local)  # 300 + local * R = cloud * R


def exercise_3():
    def my_luhn_ok(number):
        digits = [int(c) for c in number if c.isdigit()]
        total = 0
        for i, d in enumerate(reversed(digits)):
            if i % 2 == 1:
                d *= 2
                if d > 9:
                    d -= 9
            total += d
        return total % 10 == 0

    return my_luhn_ok
