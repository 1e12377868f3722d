"""The ``FF 68`` protocol of deployed hall keypads (呼叫器) and evaluators (评价器), 9600 8N1.

Frame: ``FF 68 L L 68 addr cmd data… CS 16``; L counts addr + cmd + data and is sent twice;
CS = (addr + cmd + data) mod 256. The host shows a readout with cmd ``02`` and six digit
bytes (0–9, ``0A`` blank: three for the people waiting, three for the ticket number) and
beeps with cmd ``03``. A keypad reports a key as the last data byte; ``0F`` confirms the
digit before it. An evaluator reports cmd ``11`` with the key's index. The host acknowledges
a press by echoing its frame; a keypad that hears no echo sends the press again, so the same
press can arrive twice (the gateway drops a repeat that comes within ``REPEAT_S``).
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.codecs.stream import Stream

START = b"\xff\x68"
END = 0x16
CMD_READOUT = 0x02
CMD_BEEP = 0x03
CMD_EVALUATE = 0x11
BLANK = 0x0A
MAX_BODY = 64            # no keypad frame is longer; a larger L is line noise

#: single key codes → protocol v1 keys
KEYS = {0x0C: "next", 0x0D: "recall", 0x0B: "evaluate", 0x12: "pause", 0x13: "transfer"}
#: ``digit 0F`` confirmations
CONFIRMED = {0x06: "no_show", 0x00: "hold", 0x03: "call_back"}


@dataclass(frozen=True, slots=True)
class Frame:
    addr: int
    cmd: int
    data: bytes

    def encode(self) -> bytes:
        body = bytes([self.addr, self.cmd]) + self.data
        n = len(body)
        return bytes([0xFF, 0x68, n, n, 0x68]) + body + bytes([sum(body) & 0xFF, END])


@dataclass(frozen=True, slots=True)
class KeyPress:
    """A keypad key, as the protocol v1 key name (``next``, ``no_show`` …) or ``key:XX``."""

    addr: int
    key: str
    frame: Frame


@dataclass(frozen=True, slots=True)
class Rating:
    """An evaluator key: its index as the device numbers them (the gateway maps it to a level)."""

    addr: int
    index: int
    frame: Frame


def readout(addr: int, waiting: int | None, number: int | None) -> Frame:
    """The keypad's six digits: people waiting, then the ticket number (blank when None)."""
    def three(value: int | None) -> list[int]:
        if value is None:
            return [BLANK] * 3
        value = max(0, min(999, value))
        return [value // 100, value // 10 % 10, value % 10]

    return Frame(addr, CMD_READOUT, bytes(three(waiting) + three(number)))


def beep(addr: int) -> Frame:
    return Frame(addr, CMD_BEEP, b"")


def message(frame: Frame) -> KeyPress | Rating | None:
    """What a frame from a device means (None for a frame that is not a press)."""
    if frame.cmd == CMD_EVALUATE and len(frame.data) == 1:
        return Rating(frame.addr, frame.data[0], frame)
    if frame.cmd in (CMD_READOUT, CMD_BEEP) or not frame.data:
        return None                 # the host's own frames, heard back on a shared bus
    last = frame.data[-1]
    if last == 0x0F and len(frame.data) >= 2:
        key = CONFIRMED.get(frame.data[-2], f"key:{frame.data[-2]:02x}0f")
    else:
        key = KEYS.get(last, f"key:{last:02x}")
    return KeyPress(frame.addr, key, frame)


class Decoder:
    """``feed(bytes)`` → the complete, valid frames; bad ones are counted and skipped."""

    def __init__(self) -> None:
        self.stream = Stream()

    def feed(self, data: bytes) -> list[Frame]:
        self.stream.add(data)
        return [Frame(f[5], f[6], f[7:-2])
                for f in self.stream.extract(START, 5, _length, _valid)]


def _length(head: bytes) -> int | None:
    n = head[2]
    return 5 + n + 2 if head[3] == n and head[4] == 0x68 and 2 <= n <= MAX_BODY else None


def _valid(frame: bytes) -> bool:
    return frame[-2] == sum(frame[5:-2]) & 0xFF and frame[-1] == END
