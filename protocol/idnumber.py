"""Resident ID numbers (居民身份证号码, GB 11643-1999): 17 digits and a check digit (0-9 or X).

``valid`` checks the form, a real birth date and the check digit; ``masked`` keeps the
region (6 digits) and the last four: ``110101********123X`` — what staff pages show.
"""

from __future__ import annotations

import re
from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SHAPE = re.compile(r"[0-9]{17}[0-9X]")


def check_digit(body: str) -> str:
    """The check digit of the first 17 digits ``body``."""
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS, strict=True)) % 11]


def normal(text: str) -> str:
    """The number as written, without spaces, with a capital X."""
    return text.strip().replace(" ", "").upper()


def valid(text: str) -> bool:
    number = normal(text)
    if not SHAPE.fullmatch(number):
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return born.year >= 1900 and number[17] == check_digit(number[:17])


def masked(text: str) -> str:
    number = normal(text)
    return f"{number[:6]}{'*' * 8}{number[14:]}"
