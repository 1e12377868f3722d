"""``GET /api/stats``: a period's figures per hall, service, window, clerk or department
(统计), for those who may read reports (``reports.read``; clerks may not, so no clerk sees a
colleague's figures). The definitions are in ``controller.stats`` and docs/statistics.md."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller import stats
from controller.core.errors import Refused
from controller.web.access import audited, guarded
from controller.web.api import ENGINE, json_response, query

#: The longest period one request may ask for, in days.
MAX_DAYS = 400


class StatsQuery(BaseModel):
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD&by=hall|service|window|clerk|department``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    since: date = Field(alias="from")
    until: date = Field(alias="to")
    by: Literal["hall", "service", "window", "clerk", "department"] = "hall"

    @model_validator(mode="after")
    def _period(self) -> StatsQuery:
        if self.until < self.since:
            raise ValueError("to is before from")
        if (self.until - self.since).days >= MAX_DAYS:
            raise ValueError(f"a period of at most {MAX_DAYS} days")
        return self


async def get_stats(request: web.Request) -> web.Response:
    q: StatsQuery = query(request)
    engine = request.app[ENGINE]
    hall = await engine.settled()
    rows = await stats.period(engine.db, hall.config, q.since, q.until, q.by, hall.day, engine.clock.now())
    return json_response({"ok": True, "from": q.since.isoformat(), "to": q.until.isoformat(),
                          "by": q.by, "rows": rows})




class Month(BaseModel):
    """``GET /api/reports/monthly.xlsx?month=YYYY-MM``: the month (this one by default)."""

    model_config = ConfigDict(frozen=True)
    month: str | None = Field(default=None, pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")


def month_of(text: str | None, today: date) -> tuple[date, date]:
    first = date.fromisoformat(f"{text}-01") if text else today.replace(day=1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first, min(last, today)


async def monthly_report(request: web.Request) -> web.Response:
    """The monthly per-window report as xlsx, with its chart."""
    from controller.reports import monthly_xlsx

    engine = request.app[ENGINE]
    hall = await engine.settled()
    first, last = month_of(query(request).month, hall.day)
    if first > hall.day:
        raise Refused("bad_request", "不能查看未来的月份", "that month has not begun")
    rows = await stats.period(engine.db, hall.config, first, last, "window", hall.day, engine.clock.now())
    body = monthly_xlsx(hall.config.hall.name, first, rows)
    await audited(request, "report_exported", f"monthly:{first:%Y-%m}")
    name = f"report-{first:%Y-%m}.xlsx"
    return web.Response(body=body, content_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def add_stats_routes(app: web.Application) -> None:
    app.router.add_get("/api/stats", guarded(
        "reports.read", get_stats, query=StatsQuery,
        summary="统计 / figures for a period per hall, service, window, clerk or department"))
    app.router.add_get("/api/reports/monthly.xlsx", guarded(
        "reports.read", monthly_report, query=Month, media=XLSX, errors=(400,),
        summary="月度窗口报表 / the monthly per-window report (xlsx, with its chart)"))
