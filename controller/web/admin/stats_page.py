"""The statistics page (统计, ``/admin/stats``): a month's figures per window with ECharts
charts (tickets served per window, arrivals by weekday and hour as a heat map) and the monthly
report to download. Figures are ``controller.stats``'."""

from __future__ import annotations

from aiohttp import web

from controller import stats
from controller.reports import COLUMNS, value
from controller.web.access import guarded
from controller.web.admin.render import render
from controller.web.api import ENGINE, query
from controller.web.stats_api import Month, month_of


async def stats_page(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    hall = await engine.settled()
    first, last = month_of(query(request).month, hall.day)
    if first > hall.day:                         # a month not begun: this one
        first, last = month_of(None, hall.day)
    now = engine.clock.now()
    by_window = await stats.period(engine.db, hall.config, first, last, "window", hall.day, now)
    hall_rows = await stats.period(engine.db, hall.config, first, last, "hall", hall.day, now)
    whole = hall_rows[0] if hall_rows else None
    table = [[value(row, path) for path, _, _ in COLUMNS] for row in by_window]
    return render("stats.html", request, {
        "month": f"{first:%Y-%m}", "first": first, "last": last, "columns": COLUMNS, "table": table,
        "hall_row": whole,
        "served_chart": {"keys": [r["key"] for r in by_window], "values": [r["served"] for r in by_window]},
        "heat": whole["arrivals"] if whole else [[0] * 24 for _ in range(7)]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/stats", guarded("reports.read", stats_page, query=Month, media="text/html",
                                               summary="统计 / the month's figures and report"))
