"""Onbon/仰邦 BX-5/BX-6 font cards (LED window screens that take text).

A frame is eight ``A5`` preamble bytes, then — byte-stuffed — a 14-byte header, the data and
CRC-16/ARC (little endian) over header + data, then ``5A``. Stuffing: ``A5`` → ``A6 02``,
``A6`` → ``A6 01``, ``5A`` → ``5B 02``, ``5B`` → ``5B 01``.

Header (the layout this project uses, after the public BX-5/6 driver named in
``docs/devices``): destination address u16 LE, source ``0x8000`` u16 LE, device type
(``0xFE``: any), protocol version ``0x02``, six reserved zero bytes, data length u16 LE.
Data for a dynamic-area text update: group ``A3``, command ``06``, area id, text length
u16 LE, the text in GB2312.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.codecs.crc import crc16_arc
from devices.codecs.stream import Stream

PREAMBLE = b"\xa5" * 8
END = 0x5A
SOURCE = 0x8000
GROUP_AREA, CMD_AREA_TEXT = 0xA3, 0x06
MAX_DATA = 2048

_STUFF = {0xA5: b"\xa6\x02", 0xA6: b"\xa6\x01", 0x5A: b"\x5b\x02", 0x5B: b"\x5b\x01"}
_UNSTUFF = {(0xA6, 0x02): 0xA5, (0xA6, 0x01): 0xA6, (0x5B, 0x02): 0x5A, (0x5B, 0x01): 0x5B}


class FrameError(ValueError):
    """Not a frame (bad stuffing, length or CRC)."""


@dataclass(frozen=True, slots=True)
class Frame:
    dst: int
    data: bytes
    src: int = SOURCE

    def encode(self) -> bytes:
        header = (self.dst.to_bytes(2, "little") + self.src.to_bytes(2, "little")
                  + bytes([0xFE, 0x02]) + bytes(6) + len(self.data).to_bytes(2, "little"))
        packet = header + self.data
        packet += crc16_arc(packet).to_bytes(2, "little")
        return PREAMBLE + stuff(packet) + bytes([END])


@dataclass(frozen=True, slots=True)
class AreaText:
    """What a screen is told to show in one of its areas."""

    dst: int
    area: int
    text: str


def stuff(data: bytes) -> bytes:
    return b"".join(_STUFF.get(b, bytes([b])) for b in data)


def unstuff(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b in (0xA6, 0x5B):
            if i + 1 >= len(data) or (b, data[i + 1]) not in _UNSTUFF:
                raise FrameError(f"bad escape {data[i:i + 2].hex()}")
            out.append(_UNSTUFF[(b, data[i + 1])])
            i += 2
        elif b in (0xA5, 0x5A):
            raise FrameError(f"unescaped {b:02x} inside a frame")
        else:
            out.append(b)
            i += 1
    return bytes(out)


def area_text(dst: int, text: str, area: int = 0) -> Frame:
    """The frame that shows ``text`` in ``area`` (characters GB2312 lacks become ``?``)."""
    body = text.encode("gb2312", "replace")
    return Frame(dst, bytes([GROUP_AREA, CMD_AREA_TEXT, area]) + len(body).to_bytes(2, "little")
                 + body)


def parse_packet(packet: bytes) -> Frame:
    """An unstuffed packet (header + data + CRC) → its frame."""
    if len(packet) < 16:
        raise FrameError("too short")
    if crc16_arc(packet[:-2]) != int.from_bytes(packet[-2:], "little"):
        raise FrameError("CRC")
    n = int.from_bytes(packet[12:14], "little")
    if n != len(packet) - 16:
        raise FrameError("length")
    return Frame(int.from_bytes(packet[0:2], "little"), packet[14:-2],
                 int.from_bytes(packet[2:4], "little"))


def message(frame: Frame) -> AreaText | None:
    d = frame.data
    if len(d) >= 5 and d[0] == GROUP_AREA and d[1] == CMD_AREA_TEXT:
        n = int.from_bytes(d[3:5], "little")
        if len(d) == 5 + n:
            return AreaText(frame.dst, d[2], d[5:].decode("gb2312", "replace"))
    return None


class Decoder:
    """For the simulated screen (and a sniffer): ``feed(bytes)`` → frames. A frame's packet
    is what lies between the last ``A5`` and the next ``5A``: neither byte occurs stuffed."""

    def __init__(self) -> None:
        self.stream = Stream(max_buffer=2 * MAX_DATA + 64)

    def feed(self, data: bytes) -> list[Frame]:
        s = self.stream
        s.add(data)
        out: list[Frame] = []
        while (end := s.buf.find(bytes([END]))) >= 0:
            last = s.buf.rfind(b"\xa5", 0, end)
            try:
                if last < 0:
                    raise FrameError("no preamble")
                frame = parse_packet(unstuff(bytes(s.buf[last + 1:end])))
            except FrameError:
                s.bad_frames += 1
                s.dropped_bytes += end + 1
                del s.buf[:end + 1]
                continue
            s.dropped_bytes += max(0, last + 1 - len(PREAMBLE))   # noise before the preamble
            s.take(end + 1)
            out.append(frame)
        return out
