"""``GET /api/stats``: a period's figures per hall, service, window, clerk or department
(统计), for those who may read reports (``reports.read``; clerks may not, so no clerk sees a
colleague's figures). The definitions are in ``controller.stats`` and docs/statistics.md."""

from __future__ import annotations

from datetime import date
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller import stats
from controller.web.access import guarded
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
    rows = await stats.period(engine.db, hall.config, q.since, q.until, q.by, hall.day)
    return json_response({"ok": True, "from": q.since.isoformat(), "to": q.until.isoformat(),
                          "by": q.by, "rows": rows})


def add_stats_routes(app: web.Application) -> None:
    app.router.add_get("/api/stats", guarded(
        "reports.read", get_stats, query=StatsQuery,
        summary="统计 / figures for a period per hall, service, window, clerk or department"))
