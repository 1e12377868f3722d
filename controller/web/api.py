"""The hall server's JSON API: a door into the engine for soft callers, tests and tools.

Every command goes through ``Engine.execute``; a refusal is a 4xx JSON body, never a
traceback. ``Idempotency-Key`` makes a retried POST return the first answer. Each route's
command (or body or query model) is named once, in its declaration (``guarded(…, body=Take)``):
the handler reads it from there (``command``, ``parsed``, ``query``), and so does the API
document (``GET /api/openapi.json``, ``controller.web.openapi``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any, cast

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from controller.bus.hall_broker import BROKER
from controller.bus.service import HallBus
from controller.config import zh_error
from controller.core.commands import (
    WINDOW_KEYS,
    AddAppointment,
    Cancel,
    CancelAppointment,
    Command,
    Day,
    Origin,
    Source,
    Take,
    decode,
)
from controller.core.errors import EngineStopped, Refused, StorageUnavailable
from controller.engine import Engine
from controller.web.access import PUBLIC_ROUTE, address, audited, declared, guarded, principal

ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
BUS: web.AppKey[HallBus] = web.AppKey("bus", HallBus)

_NOT_FOUND = {"unknown_service", "unknown_window", "unknown_ticket", "unknown_staff",
              "unknown_config_item", "unknown_config_section", "unknown_appointment",
              "unknown_command", "unknown_user", "unknown_token", "unknown_matter", "unknown_case",
              "unknown_task", "unknown_followup", "unknown_report"}
_BAD_REQUEST = {"bad_arguments", "bad_transfer", "bad_request"}
_UNPROCESSABLE = {"idempotency_key_reused", "invalid_config", "invalid_matters"}
#: The door's own refusals: who may ask, and how.
_DOOR = {"unauthenticated": 401, "bad_login": 401, "forbidden": 403, "bad_origin": 403, "bad_csrf": 403,
         "bad_host": 421, "unsupported_media_type": 415}
MAX_BODY = 16 * 1024
#: What a command may be refused with: bad arguments (400), something unknown (404), the hall's
#: rules (409), a reused ``Idempotency-Key`` (422), storage that cannot commit now (503).
REFUSALS = (400, 404, 409, 422, 503)
#: A route that reads the hall: storage that cannot answer now (503).
READS = (503,)
log = logging.getLogger("yimen.web")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _refusal(r: Refused) -> web.Response:
    status = _DOOR.get(r.code) or (404 if r.code in _NOT_FOUND else 400 if r.code in _BAD_REQUEST
                                   else 422 if r.code in _UNPROCESSABLE else 409)
    return json_response({"ok": False, "error": r.as_dict()}, status)


async def body(request: web.Request, limit: int = MAX_BODY) -> dict[str, Any]:
    """The request's JSON object (at most ``limit`` bytes), or ``bad_request``."""
    if not request.can_read_body:
        return {}
    if request.content_length and request.content_length > limit:
        raise Refused("bad_request", "请求过大", "request body too large")
    raw = await request.read()
    if len(raw) > limit:
        raise Refused("bad_request", "请求过大", "request body too large")
    if raw and request.content_type != "application/json":
        raise Refused("unsupported_media_type", "请求须为 JSON（Content-Type: application/json）",
                      "the body must be sent as application/json")
    try:
        data = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused("bad_request", "请求格式错误", f"body is not JSON: {exc}") from None
    except RecursionError:
        raise Refused("bad_request", "请求格式错误", "body is nested too deeply") from None
    if not isinstance(data, dict):
        raise Refused("bad_request", "请求格式错误", "body must be a JSON object")
    return data


class Body(BaseModel):
    """A JSON body of the door's own (not an engine command): unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """``data`` as ``model``, or ``bad_request`` listing each problem at its field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = tuple((".".join(map(str, e["loc"])) or "body", zh_error(e), e["msg"])
                         for e in exc.errors())
        raise Refused("bad_request", "请求字段有误", "; ".join(f"{k}: {en}" for k, _, en in problems),
                      problems) from None


async def parsed(request: web.Request) -> Any:
    """The request's JSON body as its route's declared model."""
    return parse(cast(type[BaseModel], declared(request).model(request.match_info)), await body(request))


def query(request: web.Request) -> Any:
    """The request's query parameters as its route's declared model."""
    return parse(cast(type[BaseModel], declared(request).query), dict(request.query))


async def command(request: web.Request, **fixed: Any) -> Command:
    """The route's declared command from the JSON body, the path's parameters (but the one
    that chose the command) and ``fixed``, checked by ``decode``."""
    route = declared(request)
    kind = route.model(request.match_info)
    if kind is None:
        raise Refused("unknown_command", "无法识别的指令", "unknown window command")
    path = {k: v for k, v in request.match_info.items() if k != route.by}
    return decode(cast(type[Command], kind), await body(request), **path, **fixed)


def error_response(status: int, code: str, message: str, message_en: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    """The one shape of every error under ``/api``: ``{"ok": false, "error": {…}}``."""
    response = json_response({"ok": False, "error": {"code": code, "message": message,
                                                     "message_en": message_en}}, status)
    response.headers.update(headers or {})
    return response


#: aiohttp's own answers (no route, wrong method, body too large) as the API's errors.
_HTTP_ERRORS = {
    404: ("not_found", "没有这个接口", "no such API path"),
    405: ("method_not_allowed", "不支持这种请求方法", "this method is not allowed here"),
    413: ("bad_request", "请求过大", "request body too large"),
}


@web.middleware
async def errors(request: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
    """Refusals become 4xx bodies; an engine that cannot commit now becomes 503. Under
    ``/api`` every other error is the same JSON shape too, never plain text: an unknown path
    (404), a wrong method (405, with ``Allow``), a bug (500, logged). (A stream that has begun
    ends its own answer on an error: see ``ScreenFeed.handle``.)"""
    try:
        return await handler(request)
    except Exception as exc:
        response = _error(request, exc)
        if response is None:
            raise
        return response


def _error(request: web.Request, exc: Exception) -> web.Response | None:
    """The JSON answer for ``exc``, or None to let aiohttp handle it as before."""
    if isinstance(exc, Refused):
        return _refusal(exc)
    if isinstance(exc, (StorageUnavailable, EngineStopped)):
        return error_response(503, "unavailable", "系统繁忙，请稍后重试", str(exc))
    if not request.path.startswith("/api/"):
        return None
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            return None
        code, message, message_en = _HTTP_ERRORS.get(exc.status, (f"http_{exc.status}", exc.reason,
                                                                    exc.reason))
        if isinstance(exc, web.HTTPMethodNotAllowed):
            message_en = f"{exc.method} is not allowed here; use {', '.join(sorted(exc.allowed_methods))}"
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, code, message, message_en, allow)
    log.exception("%s %s failed", request.method, request.path)
    return error_response(500, "internal_error", "系统内部错误", "internal error (logged)")


def source(request: web.Request) -> Source:
    """Who sent a request: the signed-in person, program or enrolled screen."""
    who = principal(request)
    return Source(who.actor if who is not None else f"anonymous:{address(request)}", Origin.HTTP)


async def run_command(request: web.Request, command: Command) -> web.Response:
    """Execute ``command`` for the request's principal; a person's change is audited. The
    answer has the route's declared status."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (key.isascii() and key.isprintable() and 0 < len(key) <= 120):
        raise Refused("bad_request", "请求格式错误", "Idempotency-Key: 1-120 printable ASCII characters")
    reply = await request.app[ENGINE].execute(
        command, source(request), key=f"http:{command.name}:{key}" if key else None)
    await audited(request, command.name, request.path,
                  {"request": command.model_dump(mode="json"), "reply": reply})
    return json_response({"ok": True, **reply}, declared(request).status)


async def own_window(request: web.Request, window: str, operation: Command | None = None) -> None:
    """A clerk works only at their own windows (their clerk record's windows and AB backups),
    logs in only as themselves, and acts only where nobody else is logged in."""
    who = principal(request)
    if who is None or not who.only_own_windows():
        return
    clerk = next((c for c in request.app[ENGINE].config.clerks if c.id == who.staff), None)
    if clerk is None or window not in (*clerk.windows, *clerk.backup_windows):
        raise Refused("forbidden", f"您不能操作 {window[:16]} 号窗口",
                      f"{who.actor} may not work at window {window[:16]!r}")
    staff = getattr(operation, "staff", None)
    if staff is not None and staff != who.staff:
        raise Refused("forbidden", "只能以本人工号登录窗口",
                      f"{who.actor} may log in only as staff {who.staff}")
    desk = (await request.app[ENGINE].settled()).desk.windows.get(window)
    if desk is not None and desk.clerk not in (None, who.staff):
        raise Refused("forbidden", "该窗口已由其他工作人员登录",
                      f"another clerk is logged in at window {window}")


async def execute(request: web.Request) -> web.Response:
    """The route's declared command (``command``), executed."""
    return await run_command(request, await command(request))


async def window_command(request: web.Request) -> web.Response:
    operation = await command(request)
    await own_window(request, request.match_info["window"], operation)
    return await run_command(request, operation)


class Appointments(BaseModel):
    """``GET /api/appointments``: one day's bookings only."""

    model_config = ConfigDict(frozen=True)
    day: Day | None = None


async def list_appointments(request: web.Request) -> web.Response:
    """The bookings from today on (``?day=YYYY-MM-DD``: that day's), cancelled ones marked."""
    hall = await request.app[ENGINE].settled()
    wanted = query(request).day
    found = sorted((a for a in hall.queue.appointments.values()
                    if wanted is None or a.day == wanted), key=lambda a: (a.day, a.code))
    return json_response({"ok": True, "appointments": [
        {"code": a.code, "service": a.service, "day": a.day.isoformat(), "ticket": a.ticket,
         "cancelled": a.cancelled} for a in found]})


async def get_ticket(request: web.Request) -> web.Response:
    hall = await request.app[ENGINE].settled()
    ticket = hall.ticket(request.match_info["number"])
    if ticket is None:
        raise Refused("unknown_ticket", "今天没有这个号", "no such ticket today")
    return json_response({"ok": True, "ticket": hall.public(ticket)})


async def list_tickets(request: web.Request) -> web.Response:
    hall = await request.app[ENGINE].settled()
    today = sorted((t for t in hall.queue.all.values() if t.day == hall.day), key=lambda t: t.ordinal)
    return json_response({"ok": True, "day": hall.day.isoformat(),
                  "tickets": [{"number": t.number, "service": t.service, "state": t.state.value}
                              for t in today]})


async def board(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    hall = await engine.settled()
    return json_response({"ok": True, "hall": engine.config.hall.id, "name": engine.config.hall.name,
                  "day": hall.day.isoformat(),
                  "windows": [hall.window_view(w) for w in hall.windows],
                  "services": hall.services_view()})


async def health(request: web.Request) -> web.Response:
    """Whether the hall runs (``ok`` is false also while its own MQTT broker or the device bus
    is down); to staff also which part is down and why (``checks``: ``broker``, ``bus``), its
    day, the engine's counters, and what it should be warned of: a year (this one or the next)
    whose statutory holidays are not published yet."""

    engine = request.app[ENGINE]
    checks: dict[str, dict[str, object]] = {}
    own, bus = request.app.get(BROKER), request.app.get(BUS)
    if own is not None:
        checks["broker"] = own.status()
    if bus is not None:
        checks["bus"] = {"ok": True} if bus.link.connected.is_set() else {
            "ok": False, "error": "未连接到 MQTT 代理 / not connected to the MQTT broker"}
    ok = engine.running and all(c["ok"] for c in checks.values())
    who = principal(request)
    if who is None or not who.may("hall.read"):
        return json_response({"ok": ok})
    hall = await engine.settled()
    warnings = [{"code": "calendar_unpublished", "year": year,
                 "message": f"{year}年法定节假日尚未发布：该年暂按周末和本厅设置的休息日计算",
                 "message_en": f"no statutory holidays published for {year}: weekends and the "
                               "hall's own days are used until they are"}
                for year in hall.calendar.unpublished([hall.day.year, hall.day.year + 1])]
    return json_response({"ok": ok, "hall": engine.config.hall.id,
                          "day": hall.day.isoformat(), "stats": asdict(engine.stats),
                          "warnings": warnings, "checks": checks})


async def devices(request: web.Request) -> web.Response:
    """The device registry (设备台账): what announced itself, bindings, errors."""
    bus = request.app.get(BUS)
    if bus is None:
        return error_response(404, "no_bus", "设备总线未启用", "the device bus is not running")
    return json_response({"ok": True, **bus.status()})


def add_routes(app: web.Application) -> None:
    from controller.web.openapi import MEDIA, openapi_route  # it reads every module's routes, this one's too

    app.middlewares.append(errors)
    r = app.router
    r.add_get("/api/openapi.json", guarded(
        PUBLIC_ROUTE, openapi_route(), media=MEDIA, summary="接口文档 / this API's OpenAPI 3.1 document"))
    r.add_get("/api/health", guarded(
        PUBLIC_ROUTE, health, errors=READS, summary="运行状态 / whether the hall runs"))
    r.add_get("/api/board", guarded(
        PUBLIC_ROUTE, board, errors=READS, summary="大厅概况 / the hall at a glance"))
    r.add_get("/api/devices", guarded(
        "devices.read", devices, errors=(404,), summary="设备台账 / the device registry"))
    r.add_get("/api/tickets", guarded(
        "hall.read", list_tickets, errors=READS, summary="今日票号 / today's tickets"))
    r.add_post("/api/tickets", guarded(
        "tickets.issue", execute, body=Take, status=201, errors=REFUSALS, summary="取号 / take a ticket"))
    r.add_get("/api/tickets/{number}", guarded(
        "hall.read", get_ticket, errors=(404, 503), summary="查询票号 / one ticket"))
    r.add_post("/api/tickets/{number}/cancel", guarded(
        "tickets.manage", execute, body=Cancel, errors=REFUSALS, summary="取消票号 / cancel a ticket"))
    r.add_post("/api/appointments", guarded(
        "appointments.write", execute, body=AddAppointment, status=201, errors=REFUSALS,
        summary="登记预约 / add a booking"))
    r.add_get("/api/appointments", guarded(
        "appointments.read", list_appointments, query=Appointments, errors=READS,
        summary="预约列表 / the bookings"))
    r.add_post("/api/appointments/{code}/cancel", guarded(
        "appointments.write", execute, body=CancelAppointment, errors=REFUSALS,
        summary="取消预约 / cancel a booking"))
    r.add_post("/api/windows/{window}/{op}", guarded(
        "windows.operate", window_command, body=WINDOW_KEYS, by="op", errors=REFUSALS,
        summary="窗口操作 / a window's operation"))
