"""The hall's pages: the kiosk (取号机), the hall screen (综合屏), a window screen and the ticket
status page opened from a ticket's QR code, with the JSON and pushes they need.

The pages are static files (``display/pages``, ``kiosk/pages``); what changes reaches them by
``ScreenFeed`` (Server-Sent Events). ``/t/{ticket id}`` is the status page: the id is the
ticket's unguessable key, so the page shows a ticket only to whoever holds it.
"""

from __future__ import annotations

import io
from pathlib import Path

import qrcode
import qrcode.image.svg
from aiohttp import web

import display
import kiosk
from controller.web.api import ENGINE, json_response
from controller.web.feed import FEED, unknown_ticket

DISPLAY_PAGES = Path(display.__file__).parent / "pages"
KIOSK_PAGES = Path(kiosk.__file__).parent / "pages"


def _page(path: Path):  # noqa: ANN202
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})
    return handler


async def kiosk_services(request: web.Request) -> web.Response:
    """Services for the kiosk: grouped by category, with people waiting, the estimated wait
    and, when no ticket can be taken now, why (in the hall's words)."""
    engine = request.app[ENGINE]
    hall, now = await engine.settled(), engine.clock.now()
    out = []
    for view in hall.services_view():             # the services in service, in order
        s = hall.services[view["service"]]
        refusal = hall.unavailable(s.code, now)
        out.append({"service": s.code, "name": s.name, "name_en": s.name_en,
                    "category": s.category or "综合业务", "waiting": view["waiting"],
                    "est_wait_min": view["est_wait_min"], "available": refusal is None,
                    "reason": refusal.message if refusal else ""})
    return json_response({"ok": True, "hall": hall.config.hall.name, "services": out,
                          "notices": hall.notices()})


async def ticket_status(request: web.Request) -> web.Response:
    status = request.app[FEED].status(await request.app[ENGINE].settled(), request.match_info["id"])
    if status is None:
        raise unknown_ticket()
    return json_response({"ok": True, "ticket": status})


async def status_qr(request: web.Request) -> web.Response:
    """The QR code of a ticket's status page (SVG), for the kiosk's result screen."""
    ticket_id = request.match_info["id"]
    if request.app[FEED].status(await request.app[ENGINE].settled(), ticket_id) is None:
        raise web.HTTPNotFound()
    base = request.app[ENGINE].config.hall.status_url.rstrip("/") \
        or f"{request.scheme}://{request.host}"
    image = qrcode.make(f"{base}/t/{ticket_id}", image_factory=qrcode.image.svg.SvgPathImage, border=2)
    buf = io.BytesIO()
    image.save(buf)
    return web.Response(body=buf.getvalue(), content_type="image/svg+xml")


async def stream(request: web.Request) -> web.StreamResponse:
    return await request.app[FEED].handle(request)


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/", _page(DISPLAY_PAGES / "index.html"))
    app.router.add_get("/kiosk", _page(KIOSK_PAGES / "kiosk.html"))
    app.router.add_get("/screen", _page(DISPLAY_PAGES / "screen.html"))
    app.router.add_get("/window/{window}", _page(DISPLAY_PAGES / "window.html"))
    app.router.add_get("/t/{id}", _page(DISPLAY_PAGES / "status.html"))
    app.router.add_static("/static/", DISPLAY_PAGES / "static")
    app.router.add_get("/api/kiosk/services", kiosk_services)
    app.router.add_get("/api/status/{id}", ticket_status)
    app.router.add_get("/t/{id}/qr.svg", status_qr)
    app.router.add_get("/api/stream", stream)
