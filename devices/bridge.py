"""Serial and GPIO devices as protocol v1 devices: one MQTT identity per physical device.

A bridged device is a ``DeviceClient`` whose presses come from its bus (``press``) and whose
``set``s become frames for it (handed to ``write``, which the gateway's bus loop sends). The
controller cannot tell it from a native device. What each kind of hardware can show is less
than a ``set`` says: an ``FF 68`` keypad shows three digits of waiting count and three of the
ticket number, so ``A012`` shows as ``012``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devices.codecs import ff68, onbon, ybus
from display import led
from protocol.client import DeviceClient, DeviceTimeout

if TYPE_CHECKING:
    from devices.codecs.sam import Card
    from devices.peripherals import KioskPrinter

log = logging.getLogger("yimen.gateway")

Write = Callable[[bytes], None]
LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")


class Bridged(DeviceClient):
    """Shared by every bridged device: a press becomes an event; a refusal beeps."""

    def __init__(self, *args: Any, addr: int, protocol: str, **kwargs: Any) -> None:
        kwargs.setdefault("model", f"yimen-gateway/{protocol}")
        super().__init__(*args, **kwargs)
        self.addr = addr
        self.protocol = protocol
        self.write: Write = lambda _frame: None      # set by the bus that owns the device
        self.host: ybus.BusHost | None = None        # set on a ybus
        self.replies: list[dict[str, Any]] = []      # the last few, for tests and the log
        self.panel = (96, 16)                        # an LED screen's dots across, per line
        self._tasks: set[asyncio.Task] = set()

    def submit(self, type_: str, **fields: Any) -> None:
        """Send an event without holding up the bus loop; the reply comes back later."""
        self.spawn(self._submit(type_, fields))

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, held until done and cancelled on ``stop``."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _submit(self, type_: str, fields: dict[str, Any]) -> None:
        try:
            reply = await self.send(type_, **fields)
        except DeviceTimeout as exc:
            log.warning("%s", exc)
            return
        self.replies = (self.replies + [reply])[-10:]
        if not reply.get("ok", False):
            log.info("%s: %s refused: %s", self.id, type_, reply.get("error"))
            self.beep()

    async def on_cmd(self, body: dict[str, Any]) -> None:
        if body.get("op") == "beep":
            self.beep()

    def beep(self) -> None:
        if self.protocol == "ff68":
            self.write(ff68.beep(self.addr).encode())
        elif self.host is not None:
            self.host.beep(self.addr)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await super().stop()

    def press(self, key: str, arg: str = "") -> None:
        """A key pressed on the device (``arg``: what the key carries, e.g. a service)."""
        raise NotImplementedError


class BridgedCaller(Bridged):
    """A clerk keypad (呼叫器). ``pause`` toggles: pause, or resume when paused."""

    kind = "caller"

    def press(self, key: str, arg: str = "") -> None:
        if key == "pause" and (self.shown or {}).get("state") == "paused":
            key = "resume"
        if key == "login":
            self.submit("key", key="login", staff=arg)
        elif key in ("next", "recall", "no_show", "pause", "resume", "done", "evaluate",
                     "hold", "logout"):
            self.submit("key", key=key)
        else:
            log.info("%s: key %s has no protocol v1 meaning here", self.id, key)
            self.beep()

    async def on_set(self, body: dict[str, Any]) -> None:
        text, waiting = str(body.get("text", "")), body.get("waiting")
        if self.protocol == "ff68":
            digits = re.sub(r"\D", "", text)[-3:]
            self.write(ff68.readout(self.addr, waiting if isinstance(waiting, int) else None,
                                    int(digits) if digits else None).encode())
        elif self.host is not None:
            self.host.show(self.addr, f"{text} 等候{waiting}" if waiting is not None else text)


class BridgedEvaluator(Bridged):
    """A satisfaction keypad (评价器): a key while a rating is asked for rates that session;
    ``levels`` maps the device's key index (1-based) to protocol v1's symbolic levels."""

    kind = "evaluator"

    def __init__(self, *args: Any, levels: tuple[str, ...] = LEVELS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.levels = levels

    def rate_index(self, index: int) -> None:
        if 1 <= index <= len(self.levels):
            self.press(self.levels[index - 1])
        else:
            self.beep()

    def press(self, key: str, arg: str = "") -> None:
        session = (self.shown or {}).get("session") if (self.shown or {}).get("op") == "prompt" \
            else None
        if key not in LEVELS or session is None:
            self.beep()                  # nothing is being rated: the press means nothing
            return
        self.submit("rating", session=session, level=key)


class PaperOut(Exception):
    """The kiosk's printer has no paper: no ticket is taken."""


class BridgedKiosk(Bridged):
    """A kiosk: each button (or the kiosk page) takes a ticket for a service. With an ID
    reader, the card lying on it goes with the next ticket (its number sealed to the hall
    server, which alone opens it and makes the token; 60+ get the green channel); with a
    printer, each ticket is printed once, and an empty roll stops taking."""

    kind = "kiosk"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.card: Card | None = None    # from the reader
        self.printer: KioskPrinter | None = None
        self.printed: set[str] = set()   # ticket numbers printed on ``printed_day`` (never twice)
        self.printed_day = ""

    def on_card(self, card: Card | None) -> None:
        self.card = card

    def press(self, key: str, arg: str = "") -> None:
        if key != "take" or not arg:
            self.beep()
            return
        self.spawn(self._take_logged(arg))

    async def _take_logged(self, service: str) -> None:
        try:
            reply = await self.take(service)
        except (PaperOut, DeviceTimeout) as exc:
            log.warning("%s: no ticket: %s", self.id, exc)
            self.beep()
            return
        if not reply.get("ok"):
            self.beep()

    async def take(self, service: str, appointment: str = "", event_id: str | None = None
                   ) -> dict[str, Any]:
        """Take a ticket (the card on the reader goes with it) and print it; the reply.
        Raises ``PaperOut`` (nothing taken) or ``DeviceTimeout``."""
        if self.printer is not None and self.printer.paper == "out":
            raise PaperOut("打印纸已用完，请联系工作人员")
        fields: dict[str, Any] = {"service": service}
        if appointment:
            fields["appointment"] = appointment
        card, self.card = self.card, None          # one ticket per card put on the reader
        if card is not None:
            fields["id_sealed"] = card.id_sealed
            if card.age_class == "senior":
                fields["priority"] = "green"
        reply = await self.send("take", event_id=event_id, **fields)
        self.replies = (self.replies + [reply])[-10:]
        if reply.get("ok"):
            await self._print(reply["ticket"])
        else:
            self.card = card                       # refused: the card may try again
        return reply

    async def _print(self, ticket: dict[str, Any]) -> None:
        day = str(ticket.get("day", ""))
        if day != self.printed_day:                # numbers start again each day
            self.printed, self.printed_day = set(), day
        if self.printer is None or ticket["number"] in self.printed:
            return
        self.printed.add(ticket["number"])
        paper = await self.printer.print_ticket(ticket)
        if paper is not None:
            await self.publish_state({"paper": paper})


class BridgedDisplay(Bridged):
    """An LED window screen: on an Onbon font card the ``set``'s lines as one text area; on
    ybus (a panel that takes pixels) the lines rendered into its dots, one band a line."""

    kind = "window_display"

    async def on_set(self, body: dict[str, Any]) -> None:
        lines = [str(x) for x in body.get("lines", [])]
        if self.protocol == "onbon":
            self.write(onbon.area_text(self.addr, "  ".join(lines)).encode())
        elif self.host is not None:
            width, line_height = self.panel
            image = led.render(lines, width, line_height)
            self.host.bitmap(self.addr, image.width, image.height, image.tobytes())
        await self.publish_state({"lines": lines})

    def press(self, key: str, arg: str = "") -> None:
        """A screen has no keys."""


KINDS: dict[str, type[Bridged]] = {"caller": BridgedCaller, "evaluator": BridgedEvaluator,
                                    "kiosk": BridgedKiosk, "window_display": BridgedDisplay}
