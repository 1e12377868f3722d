"""Simulated serial devices on pseudo-terminals, speaking the real byte protocols.

Each simulator owns the master side of a pty; ``path`` (the slave) is what the gateway opens
as its port, so tests and the demo run the real gateway over real serial file descriptors.
``noise(bytes)`` puts line noise on the wire.
"""

from __future__ import annotations

import asyncio
import os
import tty
from datetime import date
from pathlib import Path

from PIL import Image

from devices.codecs import escpos, ff68, onbon, sam, ybus


class PtyDevice:
    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.received = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._readable)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._master)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except (BlockingIOError, OSError):
            return
        self.received += len(data)
        self.on_bytes(data)
        asyncio.ensure_future(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate, timeout: float = 5.0) -> None:  # noqa: ANN001
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    def send(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except BlockingIOError:
            pass

    def noise(self, data: bytes) -> None:
        self.send(data)

    def on_bytes(self, data: bytes) -> None:
        """Override: what the device does with what the gateway sent."""


# --------------------------------------------------------------------------- FF 68 keypads
class Ff68Keypads(PtyDevice):
    """Keypads and evaluators on one ``FF 68`` bus. A press is sent again every
    ``resend_s`` until its echo comes back (at most ``tries`` times); ``lose_echoes`` makes
    the next echoes vanish, as on a noisy line."""

    def __init__(self, addrs: list[int], resend_s: float = 0.2, tries: int = 3) -> None:
        super().__init__()
        self.readouts: dict[int, bytes] = {}
        self.beeps: dict[int, int] = dict.fromkeys(addrs, 0)
        self.resend_s, self.tries = resend_s, tries
        self.lose_echoes = 0
        self.sent = 0
        self._decoder = ff68.Decoder()
        self._waiting: dict[bytes, asyncio.Event] = {}

    def digits(self, addr: int) -> str:
        """The six-digit readout as shown (blank digits as spaces)."""
        raw = self.readouts.get(addr, bytes([ff68.BLANK] * 6))
        return "".join(" " if d == ff68.BLANK else str(d) for d in raw)

    async def press(self, addr: int, code: int) -> bool:
        """A key (``0C`` next …); True once the gateway's echo came back."""
        return await self._transmit(ff68.Frame(addr, 0x01, bytes([code])))

    async def confirm(self, addr: int, digit: int) -> bool:
        """``digit 0F`` (``06`` no-show, ``00`` hold, ``03`` call back)."""
        return await self._transmit(ff68.Frame(addr, 0x01, bytes([digit, 0x0F])))

    async def rate(self, addr: int, index: int) -> bool:
        return await self._transmit(ff68.Frame(addr, ff68.CMD_EVALUATE, bytes([index])))

    async def _transmit(self, frame: ff68.Frame) -> bool:
        raw = frame.encode()
        echoed = self._waiting[raw] = asyncio.Event()
        try:
            for _ in range(self.tries):
                self.send(raw)
                self.sent += 1
                try:
                    await asyncio.wait_for(echoed.wait(), self.resend_s)
                    return True
                except TimeoutError:
                    continue
            return False
        finally:
            self._waiting.pop(raw, None)

    def on_bytes(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            raw = frame.encode()
            if raw in self._waiting:
                if self.lose_echoes > 0:
                    self.lose_echoes -= 1
                else:
                    self._waiting[raw].set()
            elif frame.cmd == ff68.CMD_READOUT and len(frame.data) == 6:
                self.readouts[frame.addr] = frame.data
            elif frame.cmd == ff68.CMD_BEEP:
                self.beeps[frame.addr] = self.beeps.get(frame.addr, 0) + 1


# ------------------------------------------------------------------------------ ybus devices
class YbusDevices(PtyDevice):
    """The project's own keypads/evaluators/button kiosks on one ybus; ``silent`` ones do not
    answer (unplugged)."""

    def __init__(self, addrs: list[int]) -> None:
        super().__init__()
        self.devices = {a: ybus.BusDevice(a) for a in addrs}
        self.silent: set[int] = set()

    def press(self, addr: int, key: str, arg: str = "") -> None:
        self.devices[addr].press(key, arg)

    def image(self, addr: int) -> Image.Image | None:
        """What a ybus LED screen shows (None before its first bitmap)."""
        bitmap = self.devices[addr].bitmap
        return Image.frombytes("1", bitmap[:2], bitmap[2]) if bitmap else None

    def on_bytes(self, data: bytes) -> None:
        out = b"".join(d.receive(data) for a, d in self.devices.items() if a not in self.silent)
        if out:
            self.send(out)


# ------------------------------------------------------------------------------ LED screen
class OnbonScreen(PtyDevice):
    """An LED window screen on an Onbon font card, ``width`` × ``height`` dots."""

    def __init__(self, width: int = 128, height: int = 32) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.text: dict[int, str] = {}
        self.frames = 0
        self._decoder = onbon.Decoder()

    @property
    def bad_frames(self) -> int:
        return self._decoder.stream.bad_frames

    def on_bytes(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            msg = onbon.message(frame)
            if msg is not None:
                self.frames += 1
                self.text[msg.dst] = msg.text

    def image(self, addr: int) -> Image.Image:
        from display.led import render

        return render([self.text.get(addr, "")], self.width, self.height)

    def save_png(self, addr: int, path: str | Path) -> None:
        """What the screen shows, lit dots white on black, one pixel per dot."""
        self.image(addr).convert("L").save(path)


# --------------------------------------------------------------------------- ID-card reader
class SamReader(PtyDevice):
    """A card reader; ``card`` is the 256 bytes of text on the card on it (None: no card)."""

    def __init__(self) -> None:
        super().__init__()
        self.card: bytes | None = None
        self._decoder = sam.Decoder()

    def put(self, name: str, birth: date, id_number: str) -> None:
        self.card = sam.card_text(name, "1", "01", birth, "某市某区某路1号", id_number)

    def on_bytes(self, data: bytes) -> None:
        for payload in self._decoder.feed(data):
            command = tuple(payload[:2])
            if command in (sam.FIND, sam.SELECT):
                self.send(sam.response(sam.FOUND if self.card else sam.NO_CARD,
                                       bytes(4) if command == sam.FIND else bytes(8)))
            elif command == sam.READ:
                self.send(sam.response(sam.OK, sam.base_info(self.card)) if self.card
                          else sam.response(sam.READ_FAILED))


# ----------------------------------------------------------------------------- ESC/POS printer
RASTER, CUT = b"\x1d\x76\x30", b"\x1d\x56"


class EscposPrinter(PtyDevice):
    """A thermal printer: keeps the raster images it printed and answers ``DLE EOT 4`` with
    its ``paper`` (``ok``/``low``/``out``)."""

    def __init__(self) -> None:
        super().__init__()
        self.paper = "ok"
        self.images: list[Image.Image] = []
        self.cuts = 0
        self._buf = bytearray()

    def on_bytes(self, data: bytes) -> None:
        self._buf += data
        b = self._buf
        while b:
            if b.startswith(escpos.STATUS_QUERY):
                del b[:3]
                self.send(bytes([escpos.ANSWERS[self.paper]]))
            elif b.startswith(RASTER):
                if len(b) < 8:
                    return
                w, h = int.from_bytes(b[4:6], "little"), int.from_bytes(b[6:8], "little")
                if len(b) < 8 + w * h:
                    return
                raster = bytes(b[8:8 + w * h])
                del b[:8 + w * h]
                # printer 1 = black; Pillow "1" 1 = white
                self.images.append(Image.frombytes("1", (w * 8, h), bytes(x ^ 0xFF for x in raster)))
            elif b.startswith(CUT):
                if len(b) < 3:
                    return
                del b[:3]
                self.cuts += 1
            elif any(c.startswith(bytes(b)) for c in (escpos.STATUS_QUERY, RASTER, CUT)):
                return                                    # the rest of a command is coming
            else:
                del b[:1]                                 # text, init, modes: not kept
