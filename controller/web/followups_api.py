"""The 差评 follow-ups (差评整改) for supervisors, and a clerk's own ratings.

``GET /api/followups`` lists the open follow-ups, overdue first; ``POST
/api/followups/{session}/{action}`` is one step (``FollowupStep``: 回访, 整改, 反馈, 追评, 申诉
and its decision). ``GET /api/my/ratings`` gives a clerk the ratings of their own service —
never a colleague's — and none of them says who rated.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from controller.core import followups as core
from controller.core.commands import FollowupStep, decode
from controller.core.errors import Refused
from controller.storage import schema
from controller.web.access import guarded, principal
from controller.web.api import ENGINE, READS, REFUSALS, Body, json_response, parsed, query, run_command

URGENCY = {"red": 0, "yellow": 1, "green": 2, "none": 3}


class Step(Body):
    note: str = Field(default="", max_length=500)
    level: str | None = Field(default=None, max_length=24)


class Period(BaseModel):
    """``GET /api/my/ratings``: the days, the last 30 by default."""

    model_config = ConfigDict(frozen=True)
    since: date | None = None
    until: date | None = None


async def open_followups(request: web.Request) -> list[dict[str, Any]]:
    engine = request.app[ENGINE]
    hall = await engine.settled()
    today = hall.local(engine.clock.now()).date()
    found = sorted((f for f in hall.followups.values() if f.state in core.OPEN),
                   key=lambda f: (URGENCY.get(f.colour, 9), f.visit_due, f.id))
    return [core.view(f, today) for f in found]


async def list_followups(request: web.Request) -> web.Response:
    return json_response({"ok": True, "followups": await open_followups(request)})


async def step(request: web.Request) -> web.Response:
    given: Step = await parsed(request)
    command = decode(FollowupStep, {**given.model_dump(), "session": request.match_info["session"],
                                    "action": request.path.rsplit("/", 1)[-1]})
    return await run_command(request, command)


async def my_ratings(request: web.Request) -> web.Response:
    return json_response({"ok": True, **await own_ratings(request)})


async def own_ratings(request: web.Request) -> dict[str, Any]:
    """The signed-in clerk's own ratings: level, when, window, ticket, reasons, follow-up."""
    who = principal(request)
    if who is None or not who.staff:
        raise Refused("forbidden", "只有窗口工作人员账号可以查看本人评价",
                      "only a clerk's account has ratings")
    engine = request.app[ENGINE]
    hall = await engine.settled()
    q = query(request)
    until = q.until or hall.local(engine.clock.now()).date()
    since = q.since or until - timedelta(days=30)
    tz = hall.tz
    e, f = schema.evaluations, schema.followups
    stmt = (select(e.c.opened_at, e.c.window, e.c.number, e.c.level, e.c.reasons, e.c.closed_at, f.c.state)
            .select_from(e.outerjoin(f, (f.c.hall == e.c.hall) & (f.c.id == e.c.id)))
            .where(e.c.hall == engine.config.hall.id, e.c.clerk == who.staff, e.c.closed_at.is_not(None),
                   e.c.opened_at >= datetime.combine(since, datetime.min.time(), tz),
                   e.c.opened_at < datetime.combine(until + timedelta(days=1), datetime.min.time(), tz))
            .order_by(e.c.opened_at.desc()).limit(500))
    async with engine.db.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    ratings = [{"at": at.astimezone(tz).isoformat(timespec="minutes"), "window": window, "ticket": number,
                "level": level, "level_name": core.LEVEL_NAMES.get(level or "", "未评价"),
                "reasons": list(reasons), "followup": state}
               for at, window, number, level, reasons, _closed, state in rows]
    counts = {level: sum(1 for r in ratings if r["level"] == level) for level in core.LEVEL_NAMES}
    return {"staff": who.staff, "since": since.isoformat(), "until": until.isoformat(), "ratings": ratings,
            "counts": counts, "unrated": sum(1 for r in ratings if r["level"] is None)}


def add_followups_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/followups", guarded("followups.manage", list_followups, errors=READS,
                                        summary="差评跟进 / the open follow-ups of bad ratings"))
    for action in core.ACTIONS:
        r.add_post(f"/api/followups/{{session}}/{action}", guarded(
            "followups.manage", step, body=Step, errors=REFUSALS,
            summary=f"{core.ACTIONS[action][0]} / {core.ACTIONS[action][1]}"))
    add_export_routes(app)
    r.add_get("/api/my/ratings", guarded("ratings.own", my_ratings, query=Period, errors=READS,
                                         summary="本人评价 / a clerk's own ratings (the rater never shown)"))


class Export(BaseModel):
    """``GET /api/reports/evaluations.{csv,xlsx,json}``: the days (this month by default)."""

    model_config = ConfigDict(frozen=True)
    since: date | None = None
    until: date | None = None


async def export_evaluations(request: web.Request) -> web.Response:
    """The evaluation records for the provincial platform (GB/T 39046's data items)."""
    from controller.storage import evaluation_export as export

    engine = request.app[ENGINE]
    hall = await engine.settled()
    q = query(request)
    until = q.until or hall.local(engine.clock.now()).date()
    since = q.since or until.replace(day=1)
    rows = await export.records(engine.db, engine.config.hall.id, engine.config.hall.region, hall.tz,
                                since, until)
    kind = request.path.rsplit(".", 1)[-1]
    name = f"evaluations-{since:%Y%m%d}-{until:%Y%m%d}.{kind}"
    if kind == "json":
        return json_response({"ok": True, "since": since.isoformat(), "until": until.isoformat(),
                              "records": rows})
    body = export.to_csv(rows) if kind == "csv" else export.to_xlsx(rows)
    return web.Response(body=body, content_type=EXPORTS[kind], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


EXPORTS = {"csv": "text/csv", "json": "application/json",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


async def upward_status(request: web.Request) -> web.Response:
    """How the evaluation records' delivery to the provincial platform goes (好差评上报)."""
    from controller.storage import outbox

    engine = request.app[ENGINE]
    async with engine.db.connect() as conn:
        state = await conn.run_sync(outbox.status, engine.config.hall.id, outbox.PROVINCE)
    return json_response({"ok": True, "configured": bool(engine.hall.config.hall.evaluations_url), **state})


def add_export_routes(app: web.Application) -> None:
    app.router.add_get("/api/reports/upward", guarded(
        "reports.read", upward_status,
        summary="好差评上报状态 / delivery of the evaluation records to the provincial platform"))
    for kind, media in EXPORTS.items():
        app.router.add_get(f"/api/reports/evaluations.{kind}", guarded(
            "reports.read", export_evaluations, query=Export, errors=READS, media=media,
            summary=f"评价记录导出 / evaluation records (GB/T 39046) as {kind}"))
