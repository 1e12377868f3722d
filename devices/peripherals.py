"""A bridged kiosk's own peripherals: the ID-card reader it polls and the printer it prints on.

``CardReader`` asks a SAM reader for a card every ``poll_s`` (find, select, read base info)
and hands the kiosk a ``Card`` — the ID number sealed to the hall server's public key with
``seal`` (sent with the next ticket; only that server can open it, and it keeps the token, not
the number), an age class and masked forms, nothing more — once per card put on it, and None
when it is taken away. The number is held only until it is sealed. ``KioskPrinter``
prints a ticket reply through python-escpos on a thread (the calls block) and asks the roll
sensor after each job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from devices.codecs import sam
from devices.printer import TicketPrinter
from devices.serialport import open_port
from display.ticket import TicketContent
from protocol import idseal

log = logging.getLogger("yimen.gateway")


class CardReader:
    def __init__(self, port: str, baud: int, on_card: Callable[[sam.Card | None], None],
                 seal: Callable[[str], str], poll_s: float = 0.3, answer_s: float = 0.5,
                 today: Callable[[], date] = date.today) -> None:
        """``seal``: an ID number → its ``id_sealed`` (``protocol.idseal.sealer``)."""
        self.port, self.baud = port, baud
        self.seal = seal
        self.on_card = on_card
        self.poll_s, self.answer_s = poll_s, answer_s
        self.today = today
        self.present = False
        self.errors = 0

    async def run(self) -> None:
        while True:
            try:
                reader, writer = await open_port(self.port, self.baud)
            except (OSError, ValueError) as exc:
                log.warning("ID reader %s: cannot open (%s)", self.port, exc)
                await asyncio.sleep(5)
                continue
            try:
                await self._poll(reader, writer, sam.Decoder())
            except OSError as exc:
                log.warning("ID reader %s failed: %s", self.port, exc)
            finally:
                writer.close()

    async def _poll(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    decoder: sam.Decoder) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            answer = await self._ask(reader, writer, decoder, sam.FIND)
            found = answer is not None and answer[2] == sam.FOUND
            if not found:
                if self.present and answer is not None:
                    self.present = False
                    self.on_card(None)
                continue
            if self.present:
                continue                              # the same card, still lying there
            await self._ask(reader, writer, decoder, sam.SELECT)
            answer = await self._ask(reader, writer, decoder, sam.READ)
            if answer is None or answer[2] != sam.OK:
                self.errors += 1
                continue
            try:
                card = sam.parse_base_info(answer[3:], self.today(), self.seal)
            except sam.CardError as exc:
                self.errors += 1
                log.warning("ID reader %s: %s", self.port, exc)
                continue
            self.present = True
            self.on_card(card)

    async def _ask(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   decoder: sam.Decoder, command: tuple[int, int]) -> bytes | None:
        writer.write(sam.request(command))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.answer_s
        while (left := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(reader.read(4096), left)
            except TimeoutError:
                break
            if not data:
                raise OSError("end of stream")
            for payload in decoder.feed(data):
                if len(payload) >= 3:
                    return payload
        return None


def card_reader(port: str, baud: int, kiosk: str, on_card: Callable[[sam.Card | None], None],
                id_public_key: str, hall: str) -> CardReader | None:
    """The reader on ``kiosk``, sealing to the hall server's ``id_public_key``; None, said at
    once, when the box has no key: then it cannot send ID cards, and reads none."""
    if not id_public_key:
        log.warning("%s：未配置 id_public_key（大厅服务器的身份证公钥，yimen device credentials %s 显示），"
                    "%s 上的身份证阅读器不读卡 / %s: no id_public_key (the hall server's ID-card public "
                    "key; yimen device credentials %s prints it): the ID-card reader on %s reads no "
                    "cards", kiosk, kiosk, port, kiosk, kiosk, port)
        return None
    return CardReader(port, baud, on_card, idseal.sealer(id_public_key, hall))


class KioskPrinter:
    """Prints ticket replies; ``paper`` is what the roll sensor said after the last job."""

    def __init__(self, open_printer: Callable[[], Any], hall_name: str, width: int) -> None:
        self._open = open_printer
        self.hall_name = hall_name
        self.width = width
        self.paper: str | None = None
        self.printed = 0
        self._printer: TicketPrinter | None = None
        self._lock = asyncio.Lock()                  # one job at a time

    async def print_ticket(self, ticket: dict[str, Any]) -> str | None:
        content = TicketContent.from_reply(self.hall_name, ticket)
        async with self._lock:
            try:
                self.paper = await asyncio.to_thread(self._print, content)
            except Exception as exc:  # noqa: BLE001 - a printer fault must not stop the kiosk
                log.error("printer: %s", exc)
                self._printer = None
                self.paper = None
        return self.paper

    def close(self) -> None:
        if self._printer is not None:
            try:
                self._printer.printer.close()
            except Exception as exc:  # noqa: BLE001 - it is going away
                log.warning("printer close: %s", exc)
            self._printer = None

    def _print(self, content: TicketContent) -> str | None:
        if self._printer is None:
            self._printer = TicketPrinter(self._open(), self.width)
        self._printer.print_ticket(content)
        self.printed += 1
        return self._printer.paper()
