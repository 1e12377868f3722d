"""The hall server's JSON API: a door into the engine for soft callers, tests and tools.

Every command goes through ``Engine.execute``; a refusal is a 4xx JSON body, never a
traceback. ``Idempotency-Key`` makes a retried POST return the first answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import date
from typing import Any

from aiohttp import web

from controller.bus.service import HallBus
from controller.core.commands import (
    WINDOW_KEYS,
    AddAppointment,
    Cancel,
    CancelAppointment,
    Command,
    Origin,
    Source,
    Take,
    decode,
)
from controller.core.errors import EngineStopped, Refused, StorageUnavailable
from controller.engine import Engine
from controller.web.access import guarded

ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
BUS: web.AppKey[HallBus] = web.AppKey("bus", HallBus)

_NOT_FOUND = {"unknown_service", "unknown_window", "unknown_ticket", "unknown_staff",
              "unknown_config_item", "unknown_config_section", "unknown_appointment",
              "unknown_command"}
_BAD_REQUEST = {"bad_arguments", "bad_transfer", "bad_request"}
_UNPROCESSABLE = {"idempotency_key_reused", "invalid_config"}
MAX_BODY = 16 * 1024
log = logging.getLogger("yimen.web")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _refusal(r: Refused) -> web.Response:
    status = 404 if r.code in _NOT_FOUND else 400 if r.code in _BAD_REQUEST \
        else 422 if r.code in _UNPROCESSABLE else 409
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
    try:
        data = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused("bad_request", "请求格式错误", f"body is not JSON: {exc}") from None
    except RecursionError:
        raise Refused("bad_request", "请求格式错误", "body is nested too deeply") from None
    if not isinstance(data, dict):
        raise Refused("bad_request", "请求格式错误", "body must be a JSON object")
    return data


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
    """Who sent a request: until people sign in, the address it came from."""
    return Source(f"anonymous:{request.remote or '?'}", Origin.HTTP)


async def run_command(request: web.Request, command: Command, status: int = 200) -> web.Response:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (key.isascii() and key.isprintable() and 0 < len(key) <= 120):
        raise Refused("bad_request", "请求格式错误", "Idempotency-Key: 1-120 printable ASCII characters")
    reply = await request.app[ENGINE].execute(
        command, source(request), key=f"http:{command.name}:{key}" if key else None)
    return json_response({"ok": True, **reply}, status)


async def take_ticket(request: web.Request) -> web.Response:
    return await run_command(request, decode(Take, await body(request)), 201)


async def window_command(request: web.Request) -> web.Response:
    kind = WINDOW_KEYS.get(request.match_info["op"])
    if kind is None:
        raise Refused("unknown_command", "无法识别的指令", "unknown window command")
    return await run_command(request, decode(kind, await body(request), window=request.match_info["window"]))


async def cancel_ticket(request: web.Request) -> web.Response:
    return await run_command(request, decode(Cancel, {"number": request.match_info["number"]}))


async def add_appointment(request: web.Request) -> web.Response:
    return await run_command(request, decode(AddAppointment, await body(request)), 201)


async def cancel_appointment(request: web.Request) -> web.Response:
    return await run_command(request, decode(CancelAppointment, {"code": request.match_info["code"]}))


async def list_appointments(request: web.Request) -> web.Response:
    """The bookings from today on (``?day=YYYY-MM-DD``: that day's), cancelled ones marked."""
    hall = await request.app[ENGINE].settled()
    day = request.query.get("day")
    try:
        wanted = date.fromisoformat(day) if day is not None else None
    except ValueError:
        raise Refused("bad_request", "日期格式错误（应为 YYYY-MM-DD）", "day: expected YYYY-MM-DD") from None
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
    """Whether the hall runs, its day, the engine's counters, and what it should be warned of:
    a year (this one or the next) whose statutory holidays are not published yet."""
    engine = request.app[ENGINE]
    hall = await engine.settled()
    warnings = [{"code": "calendar_unpublished", "year": year,
                 "message": f"{year}年法定节假日尚未发布：该年暂按周末和本厅设置的休息日计算",
                 "message_en": f"no statutory holidays published for {year}: weekends and the "
                               "hall's own days are used until they are"}
                for year in hall.calendar.unpublished([hall.day.year, hall.day.year + 1])]
    return json_response({"ok": engine.running, "hall": engine.config.hall.id,
                          "day": hall.day.isoformat(), "stats": asdict(engine.stats),
                          "warnings": warnings})


async def devices(request: web.Request) -> web.Response:
    """The device registry (设备台账): what announced itself, bindings, errors."""
    bus = request.app.get(BUS)
    if bus is None:
        return error_response(404, "no_bus", "设备总线未启用", "the device bus is not running")
    return json_response({"ok": True, **bus.status()})


def add_routes(app: web.Application) -> None:
    app.middlewares.append(errors)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/board", board)
    app.router.add_get("/api/devices", devices)
    app.router.add_get("/api/tickets", list_tickets)
    app.router.add_post("/api/tickets", take_ticket)
    app.router.add_get("/api/tickets/{number}", get_ticket)
    app.router.add_post("/api/tickets/{number}/cancel", cancel_ticket)
    app.router.add_post("/api/appointments", add_appointment)
    app.router.add_get("/api/appointments", guarded("appointments.read", list_appointments))
    app.router.add_post("/api/appointments/{code}/cancel", guarded("appointments.write", cancel_appointment))
    app.router.add_post("/api/windows/{window}/{op}", window_command)
