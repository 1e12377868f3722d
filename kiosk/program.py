"""``yimen kiosk``: the program on a kiosk box (取号机).

It is the kiosk's protocol v1 identity (a ``kiosk`` device on the hall's broker), owns the
box's ticket printer and ID-card reader, and serves the kiosk page to the box's own touch
screen. The page's list of services and its pushes come from the hall server (passed
through); taking a ticket goes through this program, so the card on the reader goes with it
and the ticket is printed here, once: a page that retries (same ``Idempotency-Key``) gets the
same ticket back and nothing more is printed. With the roll out of paper no ticket is taken
and the page says so.

    hall = "demo"
    hall_name = "演示县政务服务中心"         # printed on the ticket
    id = "kiosk-1"
    server = "http://127.0.0.1:8480"     # the hall server: the page's data
    broker = "mqtt://127.0.0.1:1884"
    password = "…"                       # this kiosk's own (yimen device credentials kiosk-1)
    id_public_key = "x25519:…"           # the hall server's, printed with it: seals ID numbers
    listen = "127.0.0.1:8490"            # where the box's browser opens the page
    [printer]                            # port = "/dev/ttyUSB0" (ESC/POS), or folder = "tickets"
    port = "/dev/ttyUSB0"
    baud = 9600
    width = 576
    [reader]                             # an ID-card reader (SAM), optional
    port = "/dev/ttyUSB1"

The file holds this kiosk's own password and no secret of the hall's: a card's ID number goes
with the ticket sealed to the hall server's public key, and only that server can open it and
turn it into a token. Without ``id_public_key`` the box says so at start and reads no cards.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from controller.config import ConfigError, read_toml
from devices.bridge import BridgedKiosk, PaperOut
from devices.peripherals import KioskPrinter, card_reader
from devices.printer import FilePrinter, serial_printer
from protocol import idseal
from protocol.client import DeviceTimeout
from protocol.credentials import NO_SHARED_SECRET, basic_auth, own_password
from protocol.link import BrokerAddress
from protocol.tasks import cancel_all

log = logging.getLogger("yimen.kiosk")
PAGE = Path(__file__).parent / "pages" / "kiosk.html"
STATIC = Path(__file__).resolve().parents[1] / "display" / "pages" / "static"
REMEMBERED = 256                           # retried takes remembered (by Idempotency-Key)


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer with the Chinese left readable, as the hall server's API answers."""
    return web.json_response(data, status=status,
                             dumps=lambda d: json.dumps(d, ensure_ascii=False))


@dataclass(frozen=True)
class KioskConfig:
    hall: str
    id: str
    server: str
    broker: str
    password: str = field(repr=False)
    listen: str
    printer: dict[str, Any]
    reader: dict[str, Any]
    hall_name: str = ""
    id_public_key: str = ""                # the hall server's (``protocol.idseal``)


def load(path: str | Path) -> KioskConfig:
    raw = read_toml(path)
    if "secret" in raw:
        raise ConfigError(f"{path}: secret: {' / '.join(NO_SHARED_SECRET)}")
    for key in ("hall", "id", "server"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{path}: {key}: a non-empty string is needed")
    try:
        password = own_password(raw.get("password"))
    except ValueError as exc:
        raise ConfigError(f"{path}: password: {exc}") from None
    id_public_key = raw.get("id_public_key", "")
    if id_public_key != "":
        try:
            idseal.load_public_key(id_public_key)
        except ValueError as exc:
            raise ConfigError(f"{path}: id_public_key: {exc}") from None
    printer, reader = raw.get("printer", {}), raw.get("reader", {})
    if printer and not (printer.get("port") or printer.get("folder")):
        raise ConfigError(f"{path}: printer: port or folder is needed")
    return KioskConfig(raw["hall"], raw["id"], raw["server"].rstrip("/"),
                       raw.get("broker", "mqtt://127.0.0.1:1883"), password,
                       raw.get("listen", "127.0.0.1:8490"), printer, reader,
                       str(raw.get("hall_name", "")), id_public_key)


class KioskApp:
    def __init__(self, config: KioskConfig) -> None:
        self.config = config
        self.device = BridgedKiosk(config.hall, config.id, BrokerAddress.parse(config.broker),
                                   config.password, addr=0, protocol="kiosk", model="yimen-kiosk")
        p = config.printer
        if p:
            if p.get("folder"):
                folder = FilePrinter(p["folder"])
                opener = lambda: folder  # noqa: E731
            else:
                opener = serial_printer(p["port"], int(p.get("baud", 9600)))
            self.device.printer = KioskPrinter(opener, config.hall_name or config.hall,
                                               int(p.get("width", 576)))
        self.reader = card_reader(config.reader["port"], int(config.reader.get("baud", 115200)),
                                  config.id, self.device.on_card, config.id_public_key,
                                  config.hall) if config.reader.get("port") else None
        self._replies: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._tasks: list[asyncio.Task] = []
        self._http: aiohttp.ClientSession | None = None
        self._upstreams: set[aiohttp.ClientResponse] = set()

    # ------------------------------------------------------------------ life cycle
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/kiosk", self._page)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/favicon.ico", self._icon)
        app.router.add_get("/api/kiosk/services", self._services)
        app.router.add_get("/api/kiosk/state", self._state)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_post("/api/tickets", self._take)
        app.router.add_get("/t/{id}/qr.svg", self._qr)
        app.cleanup_ctx.append(self._running)
        app.on_shutdown.append(self._end_streams)   # before the server waits for open requests
        return app

    async def _end_streams(self, app: web.Application) -> None:
        for upstream in list(self._upstreams):
            upstream.close()

    async def _running(self, app: web.Application):  # noqa: ANN202
        # the hall server knows this box by its device's own credential (HTTP Basic)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=5),
                                           headers={"Authorization": basic_auth(self.config.id,
                                                                                self.config.password)})
        await self.device.start()
        if self.reader is not None:
            self._tasks.append(asyncio.create_task(self.reader.run()))
        yield
        await cancel_all(self._tasks)
        await self.device.stop()
        if self.device.printer is not None:
            await asyncio.to_thread(self.device.printer.close)
        await self._http.close()

    @property
    def _session(self) -> aiohttp.ClientSession:
        """The client to the hall server, open while the app runs (``_running``)."""
        assert self._http is not None
        return self._http

    # ------------------------------------------------------------------ the page's calls
    async def _page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache"})

    async def _icon(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "favicon.svg")

    async def _services(self, request: web.Request) -> web.Response:
        return await self._pass(request, "/api/kiosk/services")

    async def _qr(self, request: web.Request) -> web.Response:
        return await self._pass(request, request.path)

    async def _pass(self, request: web.Request, path: str) -> web.Response:
        try:
            async with self._session.get(self.config.server + path) as r:
                return web.Response(body=await r.read(), status=r.status,
                                    content_type=r.content_type)
        except (aiohttp.ClientError, TimeoutError):
            return _error(503, "offline", "网络不通，请稍后重试")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """The hall server's pushes, passed through as they come."""
        try:
            upstream = await self._session.get(self.config.server + "/api/stream")
        except (aiohttp.ClientError, TimeoutError):
            return _error(503, "offline", "网络不通，请稍后重试")
        self._upstreams.add(upstream)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        try:
            await resp.prepare(request)
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
        except (aiohttp.ClientError, ConnectionResetError):
            pass
        finally:
            self._upstreams.discard(upstream)
            upstream.release()
        return resp

    async def _state(self, request: web.Request) -> web.Response:
        card = self.device.card
        printer = self.device.printer
        return json_response({
            "ok": True, "online": self.device.link.connected.is_set(),
            "paper": printer.paper if printer else None,
            "card": {"masked_name": card.masked_name, "green": card.age_class == "senior"}
            if card else None})

    async def _take(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            service = body["service"]
            if not isinstance(service, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _error(400, "bad_request", "请求有误")
        key = request.headers.get("Idempotency-Key", "")[:120]
        if key in self._replies:
            return _reply(self._replies[key])              # the same ticket, not printed again
        try:
            reply = await self.device.take(service, str(body.get("appointment") or ""),
                                           event_id=f"{self.device.boot_id}:page:{key}" if key else None)
        except PaperOut as exc:
            return _error(503, "paper_out", str(exc))
        except DeviceTimeout:
            return _error(503, "unavailable", "系统繁忙，请稍后重试")
        if key:
            self._replies[key] = reply
            while len(self._replies) > REMEMBERED:
                self._replies.popitem(last=False)
        return _reply(reply)


def _reply(reply: dict[str, Any]) -> web.Response:
    if reply.get("ok"):
        return json_response({"ok": True, "ticket": reply["ticket"]}, 201)
    return json_response({"ok": False, "error": reply.get("error", {})}, 409)


def _error(status: int, code: str, message: str) -> web.Response:
    return json_response({"ok": False, "error": {"code": code, "message": message}}, status)
