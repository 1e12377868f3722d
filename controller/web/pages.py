"""The hall's pages: the kiosk (取号机), the hall screen (综合屏), a window screen and the ticket
status page opened from a ticket's QR code, with the JSON and pushes they need.

The pages are static files (``display/pages``, ``kiosk/pages``); what changes reaches them by
``ScreenFeed`` (Server-Sent Events). ``/t/{token}`` is the status page: the token is the
ticket's secret (``core/status_link.py``: not derivable from its date and number), so the page
shows a ticket only to whoever holds it. Its answers carry ``Referrer-Policy: no-referrer``
(``web/headers.py``), so the address does not leak to another site.
"""

from __future__ import annotations

import io
from pathlib import Path

import qrcode
import qrcode.image.svg
from aiohttp import web

import display
import kiosk
from controller.web.access import PUBLIC_ROUTE, guarded
from controller.web.api import ENGINE, READS, json_response
from controller.web.auth import still_allowed
from controller.web.caller import add_caller_routes
from controller.web.feed import FEED, unknown_ticket
from controller.web.notfound import not_found_page

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
                    "est_wait_min": view["est_wait_min"], "est_wait_range": view["est_wait_range"],
                    "available": refusal is None,
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
    token = request.match_info["id"]
    if (await request.app[ENGINE].settled()).ticket_by_token(token) is None:
        raise unknown_ticket()
    base = request.app[ENGINE].config.hall.status_url.rstrip("/") \
        or f"{request.scheme}://{request.host}"
    image = qrcode.make(f"{base}/t/{token}", image_factory=qrcode.image.svg.SvgPathImage, border=2)
    buf = io.BytesIO()
    image.save(buf)
    return web.Response(body=buf.getvalue(), content_type="image/svg+xml")


async def stream(request: web.Request) -> web.StreamResponse:
    """The screens' pushes (calls, board), while the screen may still read them."""
    return await request.app[FEED].handle(request, allowed=lambda: still_allowed(request, "screen.read"))


async def status_stream(request: web.Request) -> web.StreamResponse:
    """One ticket's pushes, for its status page (public: the id is the ticket's secret)."""
    return await request.app[FEED].handle(request, request.match_info["id"])


def add_page_routes(app: web.Application) -> None:
    r = app.router
    for path, page, summary in (
            ("/", DISPLAY_PAGES / "index.html", "管理页 / the admin page"),
            ("/login", DISPLAY_PAGES / "login.html", "登录页 / sign in"),
            ("/kiosk", KIOSK_PAGES / "kiosk.html", "取号机 / the kiosk page"),
            ("/screen", DISPLAY_PAGES / "screen.html", "综合屏 / the hall screen"),
            ("/window/{window}", DISPLAY_PAGES / "window.html", "窗口屏 / a window's screen"),
            ("/t/{id}", DISPLAY_PAGES / "status.html", "票号状态页 / a ticket's status page"),
            ("/caller", DISPLAY_PAGES / "caller.html", "软呼叫器 / the clerk's soft caller"),
            ("/c/{token}", DISPLAY_PAGES / "case.html", "办件进度页 / a case's status page"),
            ("/case", DISPLAY_PAGES / "case.html", "办件查询 / look a case up by number and query code"),
            ("/evaluator", DISPLAY_PAGES / "evaluator.html", "评价器 / the tablet evaluator at a window")):
        r.add_get(path, guarded(PUBLIC_ROUTE, _page(page), summary=summary, media="text/html"))
    r.add_static("/static/", DISPLAY_PAGES / "static")
    r.add_get("/favicon.ico", guarded(PUBLIC_ROUTE, _page(DISPLAY_PAGES / "static" / "favicon.svg"),
                                      summary="图标 / the pages' icon", media="image/svg+xml"))
    app.middlewares.append(not_found_page)          # an unknown page: 没有这个页面
    r.add_get("/api/kiosk/services", guarded("tickets.issue", kiosk_services, errors=READS,
                                             summary="取号机业务 / the kiosk's services"))
    r.add_get("/api/status/{id}", guarded(PUBLIC_ROUTE, ticket_status, errors=(404, 503),
                                          summary="票号状态 / a ticket's status, by its token"))
    r.add_get("/t/{id}/qr.svg", guarded(PUBLIC_ROUTE, status_qr, errors=(404, 503), media="image/svg+xml",
                                        summary="状态页二维码 / the status page's QR code"))
    r.add_get("/api/stream", guarded("screen.read", stream, errors=READS, media="text/event-stream",
                                     summary="屏幕推送 / the screens' pushes (SSE)"))
    r.add_get("/api/status/{id}/stream", guarded(PUBLIC_ROUTE, status_stream, errors=(404, 503),
                                                 media="text/event-stream",
                                                 summary="票号推送 / a ticket's pushes (SSE)"))
    add_caller_routes(app)                        # the soft caller's reads (/caller)
