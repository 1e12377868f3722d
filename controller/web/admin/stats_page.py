"""The statistics page (统计, ``/admin/stats``): a month's figures per window, service, clerk or
department with ECharts charts (tickets served per key, arrivals by weekday and hour as a heat
map), where the month's 差评 follow-ups stand, the monthly report to download as it stands or
as the report job kept it, and how the evaluation records' delivery upward goes. Figures are
``controller.stats``'."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web

from controller import stats
from controller.config import HallConfig
from controller.core.followups import STATES
from controller.monthly import made
from controller.reports import COLUMNS, cell, value
from controller.storage import outbox
from controller.web.access import guarded
from controller.web.admin.render import render
from controller.web.api import ENGINE, query
from controller.web.stats_api import Month, month_of

#: grouping → (zh-CN, English) of its column's heading
GROUPS: dict[str, tuple[str, str]] = {"window": ("窗口", "Window"), "service": ("业务", "Service"),
                                      "clerk": ("人员", "Clerk"), "department": ("部门", "Department")}


class StatsPage(Month):
    """``?month=YYYY-MM&by=window|service|clerk|department``."""

    by: Literal["window", "service", "clerk", "department"] = "window"


def label(config: HallConfig, by: str, key: str) -> str:
    """A key as people call it: 3号窗口, A 综合受理, 王芳 (1001)."""
    if by == "window":
        return f"{key}号窗口"
    if by == "service":
        service = next((s for s in config.services if s.code == key), None)
        return f"{key} {service.name}" if service else key
    if by == "clerk":
        clerk = next((c for c in config.clerks if c.id == key), None)
        return f"{clerk.name}（{key}）" if clerk else key
    return key


async def stats_page(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    hall = await engine.settled()
    q: StatsPage = query(request)
    first, last = month_of(q.month, hall.day)
    if first > hall.day:                         # a month not begun: this one
        first, last = month_of(None, hall.day)
    now, config = engine.clock.now(), hall.config
    rows = await stats.period(engine.db, config, first, last, q.by, hall.day, now)
    hall_rows = await stats.period(engine.db, config, first, last, "hall", hall.day, now)
    whole = hall_rows[0] if hall_rows else None
    names = [label(config, q.by, row["key"]) for row in rows]
    table = [[name, *(cell(path, value(row, path)) for path, _, _ in COLUMNS[1:])]
             for name, row in zip(names, rows, strict=True)]
    async with engine.db.connect() as conn:
        upward: dict[str, Any] = await conn.run_sync(outbox.status, config.hall.id, outbox.PROVINCE)
    followups: dict[str, Any] = whole["ratings"]["followups"] if whole else {"states": {}, "overdue": 0}
    return render("stats.html", request, {
        "month": f"{first:%Y-%m}", "first": first, "last": last, "by": q.by, "groups": GROUPS,
        "columns": [GROUPS[q.by], *((h, h) for _, h, _ in COLUMNS[1:])], "table": table,
        "hall_row": whole, "cell": cell,
        "followups": [(STATES[s], followups["states"].get(s, 0)) for s in STATES],
        "followups_overdue": followups["overdue"],
        "kept": await made(engine.db, config.hall.id),
        "upward": {**upward, "configured": bool(config.hall.evaluations_url)},
        "served_chart": {"keys": names, "values": [r["served"] for r in rows]},
        "heat": whole["arrivals"] if whole else [[0] * 24 for _ in range(7)]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/stats", guarded("reports.read", stats_page, query=StatsPage, media="text/html",
                                               summary="统计 / the month's figures and report"))


