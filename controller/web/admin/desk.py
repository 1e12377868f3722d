"""The desk's and the back office's pages (总台受理, 办件审批).

``/desk`` (cases.write): the desk's window and its ticket, finding the matter as one types (by
name, code or pinyin initials), the case form with the materials checklist, the new case with
its notices to print and its hand-off, and the day's cases. ``/office`` (cases.review): the
cases at the person's windows (every window for a role that works them all), most urgent
first, each with the steps its state allows. Both send their changes as JSON to the cases API.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from controller.core import cases as core
from controller.core.hall import HallState
from controller.core.matters import CATEGORIES, FORMS
from controller.web.access import guarded, principal
from controller.web.admin.render import render
from controller.web.api import ENGINE, READS
from controller.web.cases_api import URGENCY, find_case


async def _hall(request: web.Request) -> tuple[HallState, date]:
    engine = request.app[ENGINE]
    hall = await engine.settled()
    return hall, hall.local(engine.clock.now()).date()


def _my_windows(request: web.Request, hall: HallState) -> list[str]:
    """The person's own windows (a clerk's A and B windows); every window for a role that may
    work them all."""
    who = principal(request)
    if who is None or not who.only_own_windows():
        return list(hall.window_cfg)
    clerk = hall.clerks.get(who.staff or "")
    return [*clerk.windows, *clerk.backup_windows] if clerk else []


async def desk_page(request: web.Request) -> web.Response:
    hall, today = await _hall(request)
    return render("desk.html", request, {
        "windows": [(w, hall.window_cfg[w].name) for w in _my_windows(request, hall)],
        "all_windows": [(w.id, w.name) for w in hall.config.windows if w.enabled],
        "services": [(s.code, s.name) for s in hall.config.services if s.enabled],
        "cases": _todays(hall, today), "today": today})


def _todays(hall: HallState, today: date) -> list[dict[str, Any]]:
    """Today's cases, newest first, after those the hall above refused (whatever their day)."""
    found = [c for c in hall.cases.by_number.values()
             if core.refused_above(c) is not None or c.accepted_at.astimezone(hall.tz).date() == today]
    found.sort(key=lambda c: (core.refused_above(c) is None, -c.accepted_at.timestamp()))
    return [core.view(hall, c, today) for c in found]


async def desk_cases(request: web.Request) -> web.Response:
    hall, today = await _hall(request)
    return render("_desk_cases.html", request, {"cases": _todays(hall, today)})


async def desk_matters(request: web.Request) -> web.Response:
    """Matters as one types: by code, name or pinyin initials."""
    hall, _ = await _hall(request)
    text = request.query.get("q", "")[:40]
    found = hall.catalogue.search(text, limit=12) if text.strip() else []
    return render("_desk_matters.html", request, {"matters": found, "q": text, "forms": FORMS})


async def desk_matter(request: web.Request) -> web.Response:
    """The case form for one matter: its materials as a checklist."""
    hall, today = await _hall(request)
    matter = hall.catalogue.matters.get(request.match_info["code"])
    if matter is None:
        raise web.HTTPNotFound()
    return render("_desk_form.html", request, {"m": matter, "forms": FORMS, "categories": CATEGORIES,
                                                "today": today})


async def case_card(request: web.Request) -> web.Response:
    """One case as the desk shows it after opening it: its number, dates, query code, and
    what to print and do next."""
    hall, today = await _hall(request)
    case = await find_case(request, request.match_info["number"])
    return render("_case_card.html", request, {"c": core.view(hall, case, today)})


async def office_page(request: web.Request) -> web.Response:
    return render("office.html", request, await _office(request))


async def office_cases(request: web.Request) -> web.Response:
    return render("_office_cases.html", request, await _office(request))


async def _office(request: web.Request) -> dict[str, Any]:
    hall, today = await _hall(request)
    mine = set(_my_windows(request, hall))
    wanted = request.query.get("state", "")
    found = [c for c in hall.cases.by_number.values()
             if (c.window in mine or c.window is None) and (not wanted or c.state == wanted)
             and c.state != "rejected"]
    found.sort(key=lambda c: (URGENCY.get(c.colour, 9), c.due, c.number))
    counts = {colour: sum(1 for c in found if c.colour == colour) for colour in URGENCY}
    return {"cases": [core.view(hall, c, today) for c in found], "counts": counts, "state": wanted,
            "states": core.STATES, "actions": core.ACTIONS}


def add_routes(app: web.Application) -> None:
    r = app.router
    html = {"media": "text/html"}
    r.add_get("/desk", guarded("cases.write", desk_page, summary="总台受理 / the desk", **html))
    r.add_get("/desk/matters", guarded("cases.read", desk_matters, errors=READS,
                                       summary="事项查找 / matters as one types", **html))
    r.add_get("/desk/matter/{code}", guarded("cases.read", desk_matter, errors=(404,),
                                             summary="受理表单 / the case form for a matter", **html))
    r.add_get("/desk/cases", guarded("cases.read", desk_cases, errors=READS,
                                     summary="今日办件 / today's cases", **html))
    r.add_get("/desk/case/{number}", guarded("cases.read", case_card, errors=(404, 503),
                                             summary="办件卡片 / a case's card", **html))
    r.add_get("/office", guarded("cases.review", office_page, summary="办件审批 / the back office", **html))
    r.add_get("/office/cases", guarded("cases.review", office_cases, errors=READS,
                                       summary="待办办件 / the back office's cases", **html))
