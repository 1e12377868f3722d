"""``GET /api/stats``: a period's figures per hall, service, window, clerk or department
(统计), for those who may read reports (``reports.read``; clerks may not, so no clerk sees a
colleague's figures). The definitions are in ``controller.stats`` and docs/statistics.md."""

from __future__ import annotations

from datetime import date
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller import stats
from controller.core.errors import Refused
from controller.monthly import kept, make, month_bounds
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
    first, last = month_bounds(date.fromisoformat(f"{text}-01") if text else today.replace(day=1))
    return first, min(last, today)


async def monthly_report(request: web.Request) -> web.Response:
    """The monthly per-window report as xlsx, with its chart, or as PDF, as the figures stand."""
    engine = request.app[ENGINE]
    hall = await engine.settled()
    first, last = month_of(query(request).month, hall.day)
    if first > hall.day:
        raise Refused("bad_request", "不能查看未来的月份", "that month has not begun")
    fmt = request.path.rsplit(".", 1)[-1]
    xlsx, pdf = await make(engine, first, last)
    await audited(request, "report_exported", f"monthly:{first:%Y-%m}")
    return _file(xlsx if fmt == "xlsx" else pdf, fmt, f"report-{first:%Y-%m}.{fmt}")


class Kept(BaseModel):
    """``GET /api/reports/kept/{period}.{xlsx,pdf}``: a report the report job made."""

    model_config = ConfigDict(frozen=True)
    period: str = Field(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")


async def kept_report(request: web.Request) -> web.Response:
    """The monthly report as it was made on the month's first working day."""
    engine = request.app[ENGINE]
    period, fmt = request.match_info["period"], request.match_info["fmt"]
    Kept(period=period)
    body = await kept(engine.db, engine.config.hall.id, period, fmt)
    if body is None:
        raise Refused("unknown_report", "没有这个月的报表", "no report kept for that month")
    await audited(request, "report_exported", f"kept:{period}")
    return _file(body, fmt, f"report-{period}-kept.{fmt}")


def _file(body: bytes, fmt: str, name: str) -> web.Response:
    return web.Response(body=body, content_type=MEDIA[fmt], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA = {"xlsx": XLSX, "pdf": "application/pdf"}


def add_stats_routes(app: web.Application) -> None:
    app.router.add_get("/api/stats", guarded(
        "reports.read", get_stats, query=StatsQuery,
        summary="统计 / figures for a period per hall, service, window, clerk or department"))
    for fmt, media in MEDIA.items():
        app.router.add_get(f"/api/reports/monthly.{fmt}", guarded(
            "reports.read", monthly_report, query=Month, media=media, errors=(400,),
            summary=f"月度窗口报表 / the monthly per-window report as it stands ({fmt})"))
    app.router.add_get("/api/reports/kept/{period}.{fmt:xlsx|pdf}", guarded(
        "reports.read", kept_report, media="application/octet-stream", errors=(400, 404),
        summary="已生成的月报 / a monthly report as the report job made it"))
