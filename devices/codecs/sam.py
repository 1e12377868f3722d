"""Resident ID-card readers (居民身份证阅读器, SAM module, UART 115200 8N1).

Both directions: ``AA AA AA 96 69``, a big-endian length of what follows it, the payload and a
check byte (XOR of the length and payload bytes). A request's payload is ``cmd para data``
(find card ``20 01``, select ``20 02``, read base info ``30 01``); a response's is ``SW1 SW2
SW3 data``, SW3 ``90`` ok, ``9F`` card found, ``80`` no card, ``41`` read failed, ``10`` bad
check byte. Base info is a text length and a photo length (u16 BE each), 256 bytes of UCS-2 LE
text (name 30, sex 2, ethnicity 4, birth date 16, address 70, ID number 36, …) and the photo.

Only what the service needs leaves this module (``Card``): the ID number sealed to the hall
server's public key (``protocol.idseal``: only that server can open it, and it turns it into a
keyed token and keeps the number nowhere), the age class for the green channel (绿色通道) and
masked forms for a clerk's screen. The number itself is held only until it is sealed. The
photo is skipped, never decoded or kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import reduce

from devices.codecs.stream import Stream

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
FIND, SELECT, READ = (0x20, 0x01), (0x20, 0x02), (0x30, 0x01)
OK, FOUND, NO_CARD, READ_FAILED, BAD_CHECK = 0x90, 0x9F, 0x80, 0x41, 0x10
MAX_LEN = 4096
TEXT_FIELDS = (("name", 30), ("sex", 2), ("ethnicity", 4), ("birth", 16), ("address", 70),
               ("id_number", 36))
SENIOR_AGE = 60


def _check(body: bytes) -> int:
    return reduce(lambda a, b: a ^ b, body, 0)


def frame(payload: bytes) -> bytes:
    body = (len(payload) + 1).to_bytes(2, "big") + payload
    return PREAMBLE + body + bytes([_check(body)])


def request(command: tuple[int, int], data: bytes = b"") -> bytes:
    return frame(bytes(command) + data)


def response(sw3: int, data: bytes = b"") -> bytes:
    return frame(bytes([0x00, 0x00, sw3]) + data)


class Decoder:
    """``feed(bytes)`` → payloads (without length and check byte)."""

    def __init__(self) -> None:
        self.stream = Stream(max_buffer=2 * MAX_LEN)

    def feed(self, data: bytes) -> list[bytes]:
        self.stream.add(data)
        return [f[7:-1] for f in self.stream.extract(PREAMBLE, 7, _length, _valid)]


def _length(head: bytes) -> int | None:
    n = int.from_bytes(head[5:7], "big")
    return 7 + n if 2 <= n <= MAX_LEN else None


def _valid(frame: bytes) -> bool:
    return _check(frame[5:-1]) == frame[-1]


class CardError(ValueError):
    """The reader's base info could not be read as a card."""


@dataclass(frozen=True, slots=True)
class Card:
    """A card as the hall may know it: the number only sealed, for the hall server alone,
    which makes the token (one waiting ticket per ID per line)."""

    id_sealed: str = field(repr=False)   # the take's ``id_sealed``
    age_class: str           # ``senior`` (60+), ``adult`` or ``minor``
    masked_id: str           # 1101**********1234
    masked_name: str         # 张*三


def base_info(text: bytes, photo_len: int = 1024) -> bytes:
    """The read-base-info response data for a card's 256 bytes of text (the simulator's side;
    the photo is zeros)."""
    return len(text).to_bytes(2, "big") + photo_len.to_bytes(2, "big") + text + bytes(photo_len)


def card_text(name: str, sex: str, ethnicity: str, birth: date, address: str,
              id_number: str) -> bytes:
    """256 bytes of UCS-2 LE text, space-padded per field (the simulator's card)."""
    values = {"name": name, "sex": sex, "ethnicity": ethnicity,
              "birth": birth.strftime("%Y%m%d"), "address": address, "id_number": id_number}
    out = b"".join(values[k].ljust(size // 2)[:size // 2].encode("utf-16-le")
                   for k, size in TEXT_FIELDS)
    return out.ljust(256, b" ")


def parse_base_info(data: bytes, today: date, seal: Callable[[str], str]) -> Card:
    """The read-base-info response data → the ``Card``, its number sealed with ``seal`` (the
    photo bytes are not looked at)."""
    if len(data) < 4:
        raise CardError("short base info")
    text_len = int.from_bytes(data[0:2], "big")
    text = data[4:4 + text_len]
    if text_len < 158 or len(text) < text_len:
        raise CardError("base info text too short")
    fields, at = {}, 0
    for name, size in TEXT_FIELDS:
        fields[name] = text[at:at + size].decode("utf-16-le", "replace").strip()
        at += size
    id_number, name = fields["id_number"].upper(), fields["name"]
    if len(id_number) != 18 or not id_number[:17].isdigit():
        raise CardError("not an 18-digit ID number")
    try:
        birth = date(int(fields["birth"][:4]), int(fields["birth"][4:6]), int(fields["birth"][6:8]))
    except ValueError:
        raise CardError("bad birth date") from None
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return Card(
        id_sealed=seal(id_number),
        age_class="senior" if age >= SENIOR_AGE else "adult" if age >= 18 else "minor",
        masked_id=id_number[:4] + "*" * 10 + id_number[-4:],
        masked_name=mask_name(name))


def mask_name(name: str) -> str:
    """张三 → 张*, 张小三 → 张*三, 欧阳小明 → 欧**明."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
