"""The spoken call (语音叫号): 「请A012号到3号窗口办理」, said the way halls say it.

The ticket is read digit by digit (A012 → "A 零 一 二") and the window as a number (3 → 三,
10 → 十, 12 → 十二, 20 → 二十). ``tokens`` gives the syllables in order: a clip engine joins
one recorded clip per token; espeak-ng reads ``spoken(tokens)``.
"""

from __future__ import annotations

DIGITS = "零一二三四五六七八九"


def number_words(n: int) -> str:
    """0–9999 as said aloud: 10 十, 12 十二, 20 二十, 105 一百零五, 110 一百一十."""
    if not 0 <= n <= 9999:
        raise ValueError(f"{n} is out of range")
    if n < 10:
        return DIGITS[n]
    if n < 20:
        return "十" + (DIGITS[n % 10] if n % 10 else "")
    units = [(1000, "千"), (100, "百"), (10, "十")]
    out, zero = "", False
    for size, name in units:
        d = n // size % 10
        if d:
            out += ("零" if zero else "") + DIGITS[d] + name
            zero = False
        elif out:
            zero = True
    if n % 10:
        out += ("零" if zero else "") + DIGITS[n % 10]
    return out


def ticket_tokens(number: str) -> list[str]:
    """A012 → ["A", "零", "一", "二"]: letters as letters, every digit on its own."""
    return [DIGITS[int(c)] if c.isdigit() else c.upper() for c in number if c.strip()]


def window_tokens(window: str) -> list[str]:
    """A window id said as a number when it is one (12 → 十二), else character by character."""
    if window.isdigit():
        return list(number_words(int(window)))
    return ticket_tokens(window)


def tokens(number: str, window: str) -> list[str]:
    """请 A 零 一 二 号 到 三 号 窗 口 办 理."""
    return ["请", *ticket_tokens(number), "号", "到", *window_tokens(window), "号", "窗", "口",
            "办", "理"]


def spoken(toks: list[str]) -> str:
    """The tokens as one string for a speech engine: 请A零一二号到三号窗口办理."""
    return "".join(toks)
