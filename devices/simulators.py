"""Simulated hall devices, speaking only protocol v1 (取号机, 呼叫器, 评价器, 窗口屏, 综合屏, 语音).

Each behaves like the hardware it stands for: the kiosk asks for tickets, the caller sends its
keys, the evaluator shows a prompt and sends one rating, the displays report on ``state`` what
they actually show, the announcer queues sentences and never speaks two at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol.client import DeviceClient
from protocol.tasks import cancel_all

log = logging.getLogger("yimen.sim")


class Refusal(Exception):
    """The controller answered ``ok: false``; ``code`` and the zh-CN ``message`` it gave."""

    def __init__(self, reply: dict[str, Any]) -> None:
        err = reply.get("error") or {}
        super().__init__(f"{err.get('code')}: {err.get('message')}")
        self.code, self.message, self.reply = err.get("code"), err.get("message"), reply


def _ok(reply: dict[str, Any]) -> dict[str, Any]:
    if not reply.get("ok"):
        raise Refusal(reply)
    return reply


class Kiosk(DeviceClient):
    """取号机: takes tickets; prints them itself (here: remembers them). With ``seal`` (the
    hall server's public key, ``protocol.idseal.sealer``) it has an ID-card reader."""

    kind = "kiosk"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.printed: list[dict[str, Any]] = []
        self.seal: Callable[[str], str] | None = None

    async def take(self, service: str, id_card: str | None = None, **fields: Any) -> dict[str, Any]:
        """A ticket; ``id_card``: the number on the card put on the reader, sent sealed."""
        if id_card is not None:
            if self.seal is None:
                raise ValueError(f"{self.id}: no id_public_key, so no ID card can be sent")
            fields["id_sealed"] = self.seal(id_card)
        ticket = _ok(await self.send("take", service=service, **fields))["ticket"]
        self.printed.append(ticket)
        return ticket

    async def _on_connect(self) -> None:
        await super()._on_connect()
        await self.publish_state({"paper": "ok"})


class Caller(DeviceClient):
    """呼叫器: the clerk's keypad at one window; ``text`` is its small readout."""

    kind = "caller"

    async def press(self, key: str, **fields: Any) -> dict[str, Any]:
        return _ok(await self.send("key", key=key, **fields))


class Evaluator(DeviceClient):
    """评价器: shows the prompt from ``set``; ``rate`` sends the citizen's choice."""

    kind = "evaluator"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prompted: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_set(self, body: dict[str, Any]) -> None:
        if body.get("op") == "prompt":
            self.prompted.put_nowait(body)

    @property
    def session(self) -> str | None:
        return self.shown.get("session") if self.shown and self.shown.get("op") == "prompt" else None

    async def rate(self, level: str, reasons: list[str] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        fields: dict[str, Any] = {"session": session or self.session, "level": level}
        if reasons:
            fields["reasons"] = reasons
        return _ok(await self.send("rating", **fields))


class WindowDisplay(DeviceClient):
    """窗口屏: shows the lines of its ``set`` and reports them on ``state``."""

    kind = "window_display"

    @property
    def lines(self) -> list[str]:
        return list(self.shown.get("lines", [])) if self.shown else []

    async def on_set(self, body: dict[str, Any]) -> None:
        await self.publish_state({"lines": self.lines})


class HallDisplay(DeviceClient):
    """综合屏: the board, and the last calls flashing as they come."""

    kind = "hall_display"
    subscribe_calls = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.board: dict[str, Any] | None = None
        self.calls: deque[dict[str, Any]] = deque(maxlen=200)

    async def on_call(self, body: dict[str, Any]) -> None:
        self.calls.append(body)

    async def on_board(self, body: dict[str, Any]) -> None:
        self.board = body


class Announcer(DeviceClient):
    """语音: queues each call (said ``repeat`` times, as halls do) and ``say`` commands, and
    announces them one after another, never two at once. Here announcing is a log line and
    ``seconds_per_char``; ``devices.announcer`` makes it sound."""

    kind = "announcer"
    subscribe_calls = True

    def __init__(self, *args: Any, repeat: int = 2, seconds_per_char: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.repeat = repeat
        self.seconds_per_char = seconds_per_char
        self.queue: asyncio.Queue[Announcement] = asyncio.Queue()
        self.spoken: list[str] = []
        self.speaking = 0          # how many announcements are under way right now (≤ 1)
        self.max_speaking = 0
        self._speaker: asyncio.Task | None = None

    async def start(self) -> None:
        await super().start()
        self._speaker = asyncio.create_task(self._speak_forever())

    async def stop(self) -> None:
        if self._speaker is not None:
            await cancel_all([self._speaker])
        await super().stop()

    async def on_call(self, body: dict[str, Any]) -> None:
        """A call or a recall (重呼): both are said again in full."""
        if isinstance(body.get("text"), str):
            self.queue.put_nowait(Announcement(body["text"], self.repeat,
                                               str(body.get("ticket") or ""),
                                               str(body.get("window") or "")))

    async def on_cmd(self, body: dict[str, Any]) -> None:
        if body.get("op") == "say" and isinstance(body.get("text"), str):
            repeat = body.get("repeat", 1)
            self.queue.put_nowait(Announcement(body["text"], repeat if isinstance(repeat, int) else 1))

    async def _speak_forever(self) -> None:
        while True:
            item = await self.queue.get()
            self.speaking += 1
            self.max_speaking = max(self.max_speaking, self.speaking)
            try:
                await self.announce(item)
            except Exception:  # noqa: BLE001 - one bad announcement must not silence the hall
                log.exception("%s: could not announce %r", self.id, item.text)
            finally:
                self.speaking -= 1
            self.spoken += [item.text] * item.times
            await self.changed()

    async def announce(self, item: Announcement) -> None:
        """Override: make it heard. Here: a log line per repetition."""
        for _ in range(item.times):
            log.info("%s says: %s", self.id, item.text)
            await asyncio.sleep(self.seconds_per_char * len(item.text))


class Printer(DeviceClient):
    """总台打印机: prints each job it is sent once (a repeated ``job_id`` is not printed
    again), rendering the notice itself (``display.notices``) as raster ESC/POS; here into a
    ``FilePrinter`` folder when ``folder`` is given, else it remembers the jobs."""

    kind = "printer"

    def __init__(self, *args: Any, folder: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.folder = folder
        self.printed: dict[str, str] = {}           # job_id → doc
        self._printer: Any = None

    async def on_cmd(self, body: dict[str, Any]) -> None:
        if body.get("op") != "print" or not isinstance(body.get("job_id"), str):
            return
        if body["job_id"] in self.printed:
            return
        from devices.printer import FilePrinter, TicketPrinter
        from display import notices

        try:
            content = notices.content_from_dict(str(body.get("doc")), dict(body.get("content") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("%s: cannot print job %s: %s", self.id, body["job_id"], exc)
            return
        if self.folder is not None:
            if self._printer is None:
                self._printer = TicketPrinter(FilePrinter(self.folder))
            await asyncio.to_thread(self._printer.print_notice, str(body["doc"]), content)
        self.printed[body["job_id"]] = str(body["doc"])
        await self.changed()


@dataclass(frozen=True)
class Announcement:
    text: str
    repeat: int = 1
    ticket: str = ""           # for a call: said digit by digit
    window: str = ""

    @property
    def times(self) -> int:
        """How often it is said (1–5, whatever a command asked)."""
        return max(1, min(self.repeat, 5))


SIMULATORS: dict[str, type[DeviceClient]] = {
    cls.kind: cls for cls in (Kiosk, Caller, Evaluator, WindowDisplay, HallDisplay, Announcer, Printer)}
