"""The county overview page (全县总览, ``/admin/county``): this hall and every hall below it,
live — lines and waits, windows open, device health, case warnings, the month's figures — and
the sums; a hall that stopped answering says since when. Shown where the hall has halls below
(``tier.lower``). The figures come from the tier links (``controller.tier_link``)."""

from __future__ import annotations

from aiohttp import web

from controller.overview import rates, totals
from controller.storage import outbox
from controller.tier_link import TIERS
from controller.web.access import guarded
from controller.web.admin.render import render
from controller.web.api import ENGINE, json_response

LEVELS = {"county": ("县级", "county"), "town": ("乡镇", "town"), "village": ("村", "village")}


async def _context(request: web.Request) -> dict[str, object]:
    halls = await request.app[TIERS].halls()
    for h in halls:
        h.update(rates(h["month"]) if "month" in h else {"good_rate": None, "on_time_rate": None})
    return {"halls": halls, "sum": totals(halls), "levels": LEVELS,
            "at": request.app[ENGINE].hall.local(request.app[ENGINE].clock.now())}


async def county_page(request: web.Request) -> web.Response:
    return render("county.html", request, await _context(request))


async def county_panel(request: web.Request) -> web.Response:
    return render("_county.html", request, await _context(request))


async def tiers_status(request: web.Request) -> web.Response:
    """The tier links: connected or not, messages sent per channel, and what was refused."""
    link = request.app[TIERS]
    async with request.app[ENGINE].db.connect() as conn:
        owed = {channel: await conn.run_sync(outbox.status, link.hall, channel) for channel in link.senders}
    return json_response({"ok": True, **link.status(), "channels": owed})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/tiers", guarded("reports.read", tiers_status,
                                             summary="三级联动状态 / the links to the halls above and below"))
    html = {"media": "text/html"}
    app.router.add_get("/admin/county", guarded("reports.read", county_page,
                                                summary="全县总览 / every hall below, live", **html))
    app.router.add_get("/admin/county/panel", guarded("reports.read", county_panel,
                                                      summary="总览实时部分 / its live part", **html))
