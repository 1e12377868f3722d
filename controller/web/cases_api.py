"""The cases API (办件接口): open a case at the desk, move it along, read it, find it.

``POST /api/cases`` opens one (``OpenCase``): the applicant's ID number is checked here
(GB 11643: form, birth date, check digit), sealed with the hall's key and masked, so the
engine and the database never hold it in clear. ``POST /api/cases/{number}/{action}`` is one
step (``CaseStep``); each action is a route of its own, declared with the permission it needs:
the desk's (``cases.write``) or the back office's (``cases.review``). ``GET
/api/cases/{number}/applicant`` opens the ID number for a role that may see it (``cases.id``),
each time audited. For citizens: ``GET /api/case-status/{token}`` (the status page the
notice's QR code opens) and ``POST /api/case-status`` with the case number and the query code
printed on the notice (the self-service terminal, a phone), throttled per address; both show
nothing personal beyond the masked name.
"""

from __future__ import annotations

from datetime import date
from typing import Any, get_args

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from controller.auth.sealbox import Sealbox
from controller.auth.throttle import Throttle
from controller.core import cases as core
from controller.core.commands import CaseAction, CaseStep, OpenCase, decode
from controller.core.errors import Refused
from controller.storage import schema
from controller.storage.repository import record
from controller.web.access import PUBLIC_ROUTE, address, audited, guarded
from controller.web.api import (
    BUS,
    ENGINE,
    READS,
    REFUSALS,
    Body,
    error_response,
    json_response,
    parsed,
    query,
    run_command,
)
from protocol import idnumber

SEALBOX: web.AppKey[Sealbox] = web.AppKey("sealbox", Sealbox)
QUERIES: web.AppKey[Throttle] = web.AppKey("case_queries", Throttle)
#: Wrong case-number/query-code pairs from one address before it must wait.
FREE_QUERIES = 10
#: Which actions are the desk's, which the back office's, and which either's (a permission each).
ACTION_PERMISSIONS = {
    **dict.fromkeys(("hand_off", "reject", "escalate"), "cases.write"),
    **dict.fromkeys(("review", "complete_task", "ready", "hand_over", "return"), "cases.review"),
    **dict.fromkeys(("supplement", "supplemented", "decide"), "cases.step"),
}


class NewCase(Body):
    """``POST /api/cases``: ``id_number`` is the applicant's ID number, kept sealed."""

    matter: str = Field(min_length=1, max_length=40)
    applicant: str = Field(min_length=1, max_length=60)
    id_number: str | None = Field(default=None, max_length=24)
    phone: str | None = Field(default=None, max_length=20)
    ticket: str | None = Field(default=None, max_length=16)
    materials: list[str] = Field(default=[], max_length=60)
    missing: list[str] = Field(default=[], max_length=60)
    tolerated: bool = False
    notes: str = Field(default="", max_length=500)
    accepted_on: date | None = None
    window: str | None = Field(default=None, max_length=16)


class Step(Body):
    """A step's details: a decision and its reasons, a note, the missing materials (补正),
    the window or departments to hand to, the 联办 part finished."""

    decision: str | None = Field(default=None, max_length=16)
    reasons: str = Field(default="", max_length=500)
    note: str = Field(default="", max_length=500)
    missing: list[str] = Field(default=[], max_length=60)
    window: str | None = Field(default=None, max_length=16)
    departments: list[str] = Field(default=[], max_length=10)
    task: str | None = Field(default=None, max_length=80)


class CaseList(BaseModel):
    """``GET /api/cases``: by state, colour, window or department."""

    model_config = ConfigDict(frozen=True)
    state: str | None = Field(default=None, max_length=16)
    colour: str | None = Field(default=None, max_length=8)
    window: str | None = Field(default=None, max_length=16)
    department: str | None = Field(default=None, max_length=60)


class StatusQuery(Body):
    """The terminal's or a phone's query: the case number and the 6-digit query code."""

    number: str = Field(min_length=1, max_length=64)
    code: str = Field(pattern=r"^[0-9]{6}$")


def _id_number(request: web.Request, text: str | None) -> dict[str, str | None]:
    if not text:
        return {"id_sealed": None, "id_masked": None}
    if not idnumber.valid(text):
        zh, en = "身份证号码有误（位数、出生日期或校验码不对）", "not a valid resident ID number"
        raise Refused("bad_request", zh, en, (("id_number", zh, en),))
    number = idnumber.normal(text)
    hall = request.app[ENGINE].config.hall.id
    return {"id_sealed": request.app[SEALBOX].seal(number, hall), "id_masked": idnumber.masked(number)}


async def open_case(request: web.Request) -> web.Response:
    given: NewCase = await parsed(request)
    fields = given.model_dump(exclude={"id_number"})
    command = decode(OpenCase, {**fields, **_id_number(request, given.id_number)})
    return await run_command(request, command)


async def step(request: web.Request) -> web.Response:
    given: Step = await parsed(request)
    action = request.path.rsplit("/", 1)[-1]
    command = decode(CaseStep, {**given.model_dump(), "number": request.match_info["number"],
                                "action": action})
    return await run_command(request, command)


async def _stored(request: web.Request, **where: Any) -> core.Case | None:
    """A case no longer in memory (finished before today), from the database."""
    engine = request.app[ENGINE]
    c = schema.cases
    q = select(c).where(c.c.hall == engine.config.hall.id, *[c.c[k] == v for k, v in where.items()])
    async with engine.db.connect() as conn:
        row = (await conn.execute(q)).mappings().first()
    return record(core.Case, row) if row is not None else None


async def find_case(request: web.Request, number: str) -> core.Case:
    """The case numbered ``number``, in memory or stored; ``unknown_case`` if none."""
    hall = await request.app[ENGINE].settled()
    case = hall.cases.by_number.get(number) or await _stored(request, number=number)
    if case is None:
        raise Refused("unknown_case", f"没有办件 {number[:64]}", f"no case {number[:64]!r}")
    return case


async def list_cases(request: web.Request) -> web.Response:
    """The open cases and those finished today, most urgent first (red, yellow, then by due)."""
    q = query(request)
    engine = request.app[ENGINE]
    hall = await engine.settled()
    today = hall.local(engine.clock.now()).date()
    found = [c for c in hall.cases.by_number.values()
             if (q.state is None or c.state == q.state) and (q.colour is None or c.colour == q.colour)
             and (q.window is None or c.window == q.window)
             and (q.department is None or c.department == q.department)]
    found.sort(key=lambda c: (URGENCY.get(c.colour, 9), c.due, c.number))
    return json_response({"ok": True, "cases": [core.view(hall, c, today) for c in found]})


URGENCY = {"red": 0, "yellow": 1, "green": 2, "paused": 3, "none": 4}


async def get_case(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    hall = await engine.settled()
    case = await find_case(request, request.match_info["number"])
    return json_response({"ok": True, "case": core.view(hall, case, hall.local(engine.clock.now()).date())})


async def applicant(request: web.Request) -> web.Response:
    """The applicant's whole ID number, opened for a role that may see it; audited."""
    case = await find_case(request, request.match_info["number"])
    number = request.app[SEALBOX].open(case.id_sealed, request.app[ENGINE].config.hall.id) \
        if case.id_sealed else None
    await audited(request, "case_id_viewed", f"case:{case.number}")
    response = json_response({"ok": True, "number": case.number, "applicant": case.applicant,
                              "id_number": number, "phone": case.phone})
    response.headers["Cache-Control"] = "no-store"
    return response


async def status_by_token(request: web.Request) -> web.Response:
    hall = await request.app[ENGINE].settled()
    token = request.match_info["token"]
    number = hall.cases.by_token.get(token)
    case = hall.cases.by_number.get(number) if number else await _stored(request, token=token)
    if case is None:
        raise Refused("unknown_case", "没有这件办件", "no such case")
    return json_response({"ok": True, "case": core.public(case)})


async def status_by_code(request: web.Request) -> web.Response:
    """The terminal's query: a wrong number or code is answered alike, and after
    ``FREE_QUERIES`` wrong ones an address must wait (429)."""
    given: StatusQuery = await parsed(request)
    throttle, now = request.app[QUERIES], request.app[ENGINE].clock.now().timestamp()
    key = address(request)
    wait = throttle.wait_s(key, now)
    if wait > 0:
        seconds = int(wait) + 1
        return error_response(429, "throttled", f"查询次数过多，请 {seconds} 秒后再试",
                              f"too many queries: try again in {seconds} s", {"Retry-After": str(seconds)})
    throttle.attempt(key, now)
    hall = await request.app[ENGINE].settled()
    case = hall.cases.by_number.get(given.number) or await _stored(request, number=given.number)
    if case is None or case.query_code != given.code:
        raise Refused("unknown_case", "办件编号或查询码不对", "no case with that number and query code")
    throttle.succeeded(key, forget=True)
    return json_response({"ok": True, "case": core.public(case)})


async def call_for_pickup(request: web.Request) -> web.Response:
    """叫号取件: the hall's announcers ask the citizen to the window, by ticket number when the
    case has one, else by the case number's last digits (never by name)."""
    engine = request.app[ENGINE]
    hall = await engine.settled()
    case = await find_case(request, request.match_info["number"])
    if case.state != "ready":
        raise Refused("bad_transition", "办件尚未待取件", "the case is not ready for pick-up")
    window = hall.window_cfg[case.window].name if case.window in hall.window_cfg else "出件窗口"
    who = f"{case.ticket_number}号" if case.ticket_number else f"办件尾号{case.number[-4:]}的申请人"
    text = f"请{who}到{window}取件"
    announcers = [d.id for d in hall.config.devices if d.kind == "announcer" and d.enabled]
    bus = request.app.get(BUS)
    if bus is None or not announcers:
        raise Refused("no_announcer", "没有可用的语音播报设备", "no announcer on the device bus")
    for device in announcers:
        await bus.command(device, {"op": "say", "text": text, "repeat": 2})
    await audited(request, "case_called", f"case:{case.number}", {"text": text})
    return json_response({"ok": True, "text": text, "announcers": announcers})


def add_cases_routes(app: web.Application) -> None:
    app[QUERIES] = Throttle(FREE_QUERIES)
    r = app.router
    r.add_post("/api/cases", guarded("cases.write", open_case, body=NewCase, status=201, errors=REFUSALS,
                                     summary="受理 / open a case at the desk"))
    r.add_get("/api/cases", guarded("cases.read", list_cases, query=CaseList, errors=READS,
                                    summary="办件列表 / the open cases and today's, most urgent first"))
    r.add_get("/api/cases/{number}", guarded("cases.read", get_case, errors=(404, 503),
                                             summary="办件 / one case"))
    r.add_get("/api/cases/{number}/applicant", guarded(
        "cases.id", applicant, errors=(404, 503),
        summary="申请人身份证号 / the applicant's ID number (audited)"))
    for action, permission in ACTION_PERMISSIONS.items():
        r.add_post(f"/api/cases/{{number}}/{action}", guarded(
            permission, step, body=Step, errors=REFUSALS,
            summary=f"{core.ACTIONS[action][0]} / {core.ACTIONS[action][1]}"))
    r.add_post("/api/cases/{number}/call", guarded(
        "cases.review", call_for_pickup, errors=(404, 409), summary="叫号取件 / call the citizen to pick up"))
    r.add_get("/api/case-status/{token}", guarded(PUBLIC_ROUTE, status_by_token, errors=(404, 503),
                                                  summary="办件进度 / a case's status, by its token"))
    r.add_post("/api/case-status", guarded(PUBLIC_ROUTE, status_by_code, body=StatusQuery, errors=(404, 429),
                                           summary="办件查询 / a case's status by its number and query code"))



assert set(ACTION_PERMISSIONS) == set(core.ACTIONS) == set(get_args(CaseAction)), "every action has its route"
