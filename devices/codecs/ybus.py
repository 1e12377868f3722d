"""ybus: the project's own polled RS-485 bus for its keypads, evaluators and button kiosks.

Frame ``AA 55 addr seq cmd len data… crc`` with CRC-16/MODBUS over addr … data, little
endian (``docs/ybus.md`` has the whole of it). The host polls each address in turn; a device
answers ``IDLE`` or offers its oldest unacknowledged press as ``EVENT``, with the same ``seq``
until the host's ``ACK`` for it arrives. The host remembers the last ``(session, seq)`` it
acted on per address, so a press offered again after a lost ``ACK`` is acknowledged again but
acted on once. ``SHOW``, ``BEEP`` and ``BITMAP`` (a panel's dots, for
LED screens that take pixels) are repeated until the device's ``DONE``; the device does not
apply one ``seq`` twice. A device that misses ``offline_after`` polls in a row is offline
until it answers again.

``BusHost`` and ``BusDevice`` are state machines: bytes and the time in, frames and events
out; the gateway and the pseudo-terminal simulators do the I/O.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from devices.codecs.crc import crc16_modbus
from devices.codecs.stream import Stream

START = b"\xaa\x55"
MAX_DATA = 200
# host → device
POLL, ACK, SHOW, BEEP, BITMAP = 0x01, 0x02, 0x10, 0x11, 0x12
COMMANDS = (SHOW, BEEP, BITMAP)
#: BITMAP data: chunk index, chunk count, width u16 LE, height, then up to this many bytes of
#: the panel's rows (1 bit a dot, most significant bit leftmost: Pillow's mode "1" layout)
BITMAP_CHUNK = MAX_DATA - 5
# device → host
IDLE, EVENT, DONE = 0x81, 0x82, 0x90

#: key codes in an EVENT → protocol v1 (a caller key, an evaluator level, a kiosk take)
KEYS = {0x01: "next", 0x02: "recall", 0x03: "no_show", 0x04: "pause", 0x05: "resume",
        0x06: "done", 0x07: "evaluate", 0x08: "hold", 0x09: "login", 0x0A: "logout",
        0x11: "very_satisfied", 0x12: "satisfied", 0x13: "basic", 0x14: "dissatisfied",
        0x15: "very_dissatisfied", 0x20: "take"}
CODES = {name: code for code, name in KEYS.items()}


@dataclass(frozen=True, slots=True)
class Frame:
    addr: int
    seq: int
    cmd: int
    data: bytes = b""

    def encode(self) -> bytes:
        body = bytes([self.addr, self.seq, self.cmd, len(self.data)]) + self.data
        return START + body + crc16_modbus(body).to_bytes(2, "little")


class Decoder:
    def __init__(self) -> None:
        self.stream = Stream()

    def feed(self, data: bytes) -> list[Frame]:
        self.stream.add(data)
        return [Frame(f[2], f[3], f[4], f[6:-2])
                for f in self.stream.extract(START, 6, _length, _valid)]


def _length(head: bytes) -> int | None:
    return 6 + head[5] + 2 if head[5] <= MAX_DATA else None


def _valid(frame: bytes) -> bool:
    return crc16_modbus(frame[2:-2]) == int.from_bytes(frame[-2:], "little")


# ---------------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class Pressed:
    addr: int
    key: str                 # a name from KEYS, or ``key:XX`` for a code this host does not know
    arg: str = ""            # login: the staff number; take: the service code


@dataclass(frozen=True, slots=True)
class Online:
    addr: int


@dataclass(frozen=True, slots=True)
class Offline:
    addr: int


Event = Pressed | Online | Offline


# ------------------------------------------------------------------------------------ host
@dataclass
class _Slot:
    online: bool = False
    missed: int = 0
    last: tuple[int, int] | None = None          # (session, seq) last acted on
    commands: deque = field(default_factory=deque)   # Frames waiting for DONE
    tries: int = 0
    seq: int = 0                                     # of the last command made for it

    def next_seq(self) -> int:
        """Never the same twice in a row: the device applies a seq once."""
        self.seq = self.seq % 255 + 1
        return self.seq


class BusHost:
    """The bus master for ``addrs``. Call ``request(now)`` whenever the line is free: it
    returns the next frame to write (or None while a reply is awaited); hand what is read to
    ``receive(data, now)``."""

    def __init__(self, addrs: list[int], *, reply_timeout_s: float = 0.05,
                 offline_after: int = 3, command_tries: int = 5) -> None:
        self.slots = {a: _Slot() for a in addrs}
        self.reply_timeout_s = reply_timeout_s
        self.offline_after = offline_after
        self.command_tries = command_tries
        self.decoder = Decoder()
        self.repeats = 0                 # presses offered again and not acted on twice
        self._order = deque(addrs)
        self._acks: deque[Frame] = deque()
        self._awaiting: tuple[Frame, float] | None = None
        self._events: list[Event] = []

    @property
    def awaiting(self) -> bool:
        """A request is out and its answer has not come (nor timed out)."""
        return self._awaiting is not None

    # commands the gateway wants sent
    def show(self, addr: int, text: str) -> None:
        slot = self.slots[addr]
        slot.commands = deque(c for c in slot.commands if c.cmd != SHOW)   # only the newest
        slot.commands.append(Frame(addr, slot.next_seq(), SHOW, text.encode()[:MAX_DATA]))

    def beep(self, addr: int) -> None:
        slot = self.slots[addr]
        slot.commands.append(Frame(addr, slot.next_seq(), BEEP))

    def bitmap(self, addr: int, width: int, height: int, rows: bytes) -> None:
        """A whole panel of dots, sent in chunks; a newer bitmap replaces one still queued."""
        slot = self.slots[addr]
        slot.commands = deque(c for c in slot.commands if c.cmd != BITMAP)
        chunks = [rows[i:i + BITMAP_CHUNK] for i in range(0, len(rows), BITMAP_CHUNK)] or [b""]
        for i, chunk in enumerate(chunks):
            head = bytes([i, len(chunks)]) + width.to_bytes(2, "little") + bytes([height])
            slot.commands.append(Frame(addr, slot.next_seq(), BITMAP, head + chunk))

    def request(self, now: float) -> bytes | None:
        if self._awaiting is not None:
            if now < self._awaiting[1]:
                return None
            self._missed(self._awaiting[0].addr)
            self._awaiting = None
        if self._acks:                                   # acknowledge first, no reply expected
            return self._acks.popleft().encode()
        frame = self._next_frame()
        self._awaiting = (frame, now + self.reply_timeout_s)
        return frame.encode()

    def _next_frame(self) -> Frame:
        addr = self._order[0]
        self._order.rotate(-1)
        slot = self.slots[addr]
        if slot.commands and slot.online:
            if slot.tries >= self.command_tries:         # give up on it; the next set replaces it
                slot.commands.popleft()
                slot.tries = 0
            if slot.commands:
                slot.tries += 1
                return slot.commands[0]
        return Frame(addr, 0, POLL)

    def receive(self, data: bytes, now: float) -> list[Event]:
        for frame in self.decoder.feed(data):
            self._reply(frame)
        events, self._events = self._events, []
        return events

    def _reply(self, frame: Frame) -> None:
        if self._awaiting is None or frame.addr != self._awaiting[0].addr or frame.cmd < 0x80:
            return                                        # not an answer to what was asked
        asked = self._awaiting[0]
        self._awaiting = None
        slot = self.slots[frame.addr]
        slot.missed = 0
        if not slot.online:
            slot.online = True
            self._events.append(Online(frame.addr))
        if frame.cmd == DONE and slot.commands and slot.commands[0].seq == frame.seq \
                and asked.cmd in COMMANDS:
            slot.commands.popleft()
            slot.tries = 0
        elif frame.cmd == EVENT and len(frame.data) >= 2:
            session, code, arg = frame.data[0], frame.data[1], frame.data[2:]
            self._acks.append(Frame(frame.addr, frame.seq, ACK))
            if slot.last == (session, frame.seq):
                self.repeats += 1
                return
            slot.last = (session, frame.seq)
            self._events.append(Pressed(frame.addr, KEYS.get(code, f"key:{code:02x}"),
                                        arg.decode("utf-8", "replace")))

    def _missed(self, addr: int) -> None:
        slot = self.slots[addr]
        slot.missed += 1
        if slot.online and slot.missed >= self.offline_after:
            slot.online = False
            self._events.append(Offline(addr))

    def expired(self, now: float) -> list[Event]:
        """Time-outs noticed without a new request (e.g. the gateway's idle check)."""
        if self._awaiting is not None and now >= self._awaiting[1]:
            self._missed(self._awaiting[0].addr)
            self._awaiting = None
        events, self._events = self._events, []
        return events


# ---------------------------------------------------------------------------------- device
class BusDevice:
    """One device's side: ``press(key, arg)`` queues a press; ``receive(data)`` returns the
    bytes to answer with. ``shown`` and ``beeps`` are what the host made it do."""

    def __init__(self, addr: int, session: int | None = None) -> None:
        self.addr = addr
        self.session = random.randrange(256) if session is None else session
        self.decoder = Decoder()
        self.shown = ""
        self.beeps = 0
        self.bitmap: tuple[int, int, bytes] | None = None     # width, height, rows
        self._chunks: dict[int, bytes] = {}
        self._seq = 0
        self._queue: deque[Frame] = deque()
        self._applied: int | None = None

    def press(self, key: str, arg: str = "") -> None:
        self._seq = self._seq % 255 + 1
        data = bytes([self.session, CODES[key]]) + arg.encode()
        self._queue.append(Frame(self.addr, self._seq, EVENT, data))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _chunk(self, data: bytes) -> None:
        if len(data) < 5:
            return
        index, count = data[0], data[1]
        if index == 0:
            self._chunks = {}
        self._chunks[index] = data[5:]
        if len(self._chunks) == count:
            width, height = int.from_bytes(data[2:4], "little"), data[4]
            rows = b"".join(self._chunks[i] for i in range(count))
            if len(rows) == (width + 7) // 8 * height:
                self.bitmap = (width, height, rows)

    def receive(self, data: bytes) -> bytes:
        out = b""
        for frame in self.decoder.feed(data):
            if frame.addr != self.addr:
                continue
            if frame.cmd == POLL:
                out += (self._queue[0] if self._queue else Frame(self.addr, 0, IDLE)).encode()
            elif frame.cmd == ACK:
                if self._queue and self._queue[0].seq == frame.seq:
                    self._queue.popleft()
            elif frame.cmd in COMMANDS:
                if self._applied != frame.seq:
                    self._applied = frame.seq
                    if frame.cmd == SHOW:
                        self.shown = frame.data.decode("utf-8", "replace")
                    elif frame.cmd == BITMAP:
                        self._chunk(frame.data)
                    else:
                        self.beeps += 1
                out += Frame(self.addr, frame.seq, DONE).encode()
        return out
