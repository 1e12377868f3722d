"""The admin application's pages of the hall itself: the duty dashboard (live), the
configuration sections, settings, the calendar, appointments and a device's provisioning
sheet. Each page is one route declared with its permission (``guarded``); the changes its
forms make go to the JSON API (``controller.web.config_api``, ``controller.web.api``)."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from typing import Any

import qrcode
import qrcode.image.svg
from aiohttp import web

from controller.auth.cache import TtlCache
from controller.bus import credentials
from controller.bus.hall_broker import BROKER
from controller.config import Hall
from controller.core.configuration import SECTIONS, live_data
from controller.core.errors import Refused
from controller.storage import case_figures
from controller.web.access import AUDIT, SESSION, audited, guarded, principal
from controller.web.admin import dashboard as dash
from controller.web.admin.forms import CHOICE_NAMES, fields
from controller.web.admin.render import render
from controller.web.api import BUS, ENGINE, READS
from controller.web.auth import still_allowed
from controller.web.config_api import ITEMS
from controller.web.feed import FEED

LANG_COOKIE = "yimen_lang"
#: The application's pages: (path, zh-CN, English, the permission that shows it in the menu).
NAV = (
    ("/admin", "值班看板", "Dashboard", "hall.read"),
    ("/desk", "总台受理", "Desk", "cases.write"),
    ("/office", "办件审批", "Back office", "cases.review"),
    ("/followups", "差评跟进", "Bad ratings", "followups.manage"),
    ("/my/ratings", "本人评价", "My ratings", "ratings.own"),
    ("/admin/stats", "统计报表", "Statistics", "reports.read"),
    ("/admin/county", "全县总览", "Halls overview", "reports.read"),
    ("/admin/config/services", "业务", "Services", "config.read"),
    ("/admin/config/windows", "窗口", "Windows", "config.read"),
    ("/admin/config/clerks", "窗口人员", "Clerks", "config.read"),
    ("/admin/config/devices", "设备", "Devices", "config.read"),
    ("/admin/config/notices", "公告", "Notices", "config.read"),
    ("/admin/calendar", "日历", "Calendar", "config.read"),
    ("/admin/settings", "大厅设置", "Settings", "config.read"),
    ("/admin/matters", "事项清单", "Matters", "cases.read"),
    ("/admin/appointments", "预约", "Appointments", "appointments.read"),
    ("/admin/users", "用户", "Users", "users.manage"),
    ("/admin/tokens", "接口令牌", "API tokens", "users.manage"),
    ("/admin/audit", "审计日志", "Audit log", "audit.read"),
)
SECTION_TITLES = {"services": ("业务", "Services", "a service"), "windows": ("窗口", "Windows", "a window"),
                  "clerks": ("窗口人员", "Clerks", "a clerk"), "devices": ("设备", "Devices", "a device"),
                  "notices": ("公告", "Notices", "a notice")}
#: The audit log's words for what was done, in Chinese.
ACTIONS = {"config_add": "新增", "config_change": "修改", "config_remove": "删除",
           "settings_change": "修改设置", "calendar_set": "设置日历", "config_import": "导入配置",
           "config_exported": "导出配置", "device_credentials": "重置设备密码",
           "screen_enrolled": "登记屏幕", "login": "登录", "login_failed": "登录失败", "logout": "退出",
           "password_changed": "修改本人密码", "password_change_failed": "修改密码失败",
           "user_added": "新增用户", "user_changed": "修改用户", "password_set": "重设密码",
           "token_added": "新增令牌", "token_revoked": "撤销令牌",
           "add_appointment": "新增预约", "cancel_appointment": "取消预约",
           "case_open": "受理办件", "case_step": "办件流转", "case_id_viewed": "查看身份证号",
           "notice_printed": "打印通知书", "case_called": "叫号取件", "followup_step": "差评跟进",
           "matters_set": "修改事项", "matter_remove": "删除事项", "matters_import": "导入事项清单"}


async def page_context(request: web.Request) -> dict[str, Any]:
    """What every admin page's template has: who is signed in, the language, the menu."""
    who = principal(request)
    english = request.cookies.get(LANG_COOKIE) == "en"
    session = request.get(SESSION)
    engine = request.app[ENGINE]
    return {
        "who": who, "en": english, "csrf": session.csrf if session is not None else "",
        "t": lambda zh, en: en if english else zh, "path": request.path,
        "hall_name": engine.config.hall.name,
        "nav": [n for n in NAV if who is not None and who.may(n[3])
                and (n[0] != "/admin/county" or engine.config.tier.lower)],
        "may": (lambda permission: who is not None and who.may(permission)),
        "actions": ACTIONS, "choice_names": CHOICE_NAMES,
        "local": lambda at: at.astimezone(engine.config.hall.tz),
    }



async def _last_changes(request: web.Request, target: str, limit: int = 5) -> list[dict[str, Any]]:
    """Who changed what last (from the audit log): when, who, what was done, and to which item
    (a new item's key from the request; a change's from its address)."""
    out = []
    for e in await request.app[AUDIT].entries(limit=limit, target=target):
        request_body = e.detail.get("request") or {}
        item = request_body.get("item") or {}
        name = next((str(item[k]) for k in ("code", "id") if k in item), None) \
            or request_body.get("id") or request_body.get("day") or e.target.rsplit("/", 1)[-1]
        out.append({"at": e.at, "actor": e.actor, "action": ACTIONS.get(e.action, e.action), "item": name})
    return out


# ---------------------------------------------------------------- the dashboard
#: The month's on-time rates, read again at most once a minute however many dashboards are open.
ON_TIME: web.AppKey[TtlCache[dict[str, Any]]] = web.AppKey("on_time", TtlCache)


async def _dashboard(request: web.Request) -> dict[str, Any]:
    engine = request.app[ENGINE]
    hall = await engine.settled()
    out = dash.dashboard(hall, request.app.get(BUS), engine.clock.now())
    cache = request.app[ON_TIME]
    rates = cache.get("month", None)
    if rates is None:
        today = hall.local(engine.clock.now()).date()
        rates = await case_figures.on_time(engine.db, hall.config.hall.id, today.replace(day=1), today)
        cache.put("month", rates)
    out["on_time"] = rates
    return out


async def dashboard_page(request: web.Request) -> web.Response:
    return render("dashboard.html", request, {"d": await _dashboard(request)})


async def dashboard_panel(request: web.Request) -> web.Response:
    """The dashboard's live part, fetched again (htmx) after each push of the hall."""
    return render("_dashboard.html", request, {"d": await _dashboard(request)})


async def stream(request: web.Request) -> web.StreamResponse:
    """The hall's pushes for the dashboard: it fetches its panel again on each."""
    return await request.app[FEED].handle(request, allowed=lambda: still_allowed(request, "hall.read"))


# ---------------------------------------------------------------- configuration
async def section_page(request: web.Request) -> web.Response:
    section = request.match_info["section"]
    if section not in SECTION_TITLES:
        raise web.HTTPNotFound()
    hall = await request.app[ENGINE].settled()
    items, key, model = live_data(hall.config)[section], SECTIONS[section], ITEMS[section]
    health = {d["id"]: d for d in dash.devices(request.app.get(BUS), hall)} if section == "devices" else {}
    return render("section.html", request, {
        "section": section, "title": SECTION_TITLES[section], "key": key,
        "service_names": {s.code: s.name for s in hall.config.services},
        "unserved": {s.code for s in hall.config.services} - {
            code for w in hall.config.windows if w.enabled for code in w.services},
        "window_names": {w.id: w.name for w in hall.config.windows},
        "new": fields(model, hall),
        "rows": [(item, fields(model, hall, item, fixed=(key,)), health.get(item[key])) for item in items],
        "last_changes": await _last_changes(request, f"/api/config/{section}"),
    })


async def settings_page(request: web.Request) -> web.Response:
    hall = await request.app[ENGINE].settled()
    own = live_data(hall.config)["hall"]
    return render("settings.html", request, {
        "form_fields": fields(Hall, hall, own, fixed=("id",)), "timezone": own["timezone"],
        "last_changes": await _last_changes(request, "/api/config/settings"),
    })


async def calendar_page(request: web.Request) -> web.Response:
    """The hall's own closures and extra working days, the coming weeks as the hall will
    keep them, and the years whose statutory holidays are not known yet."""
    hall = await request.app[ENGINE].settled()
    own = hall.config.hall
    days = sorted([(d, "holiday") for d in own.holidays] + [(d, "workday") for d in own.workdays])
    coming = [(hall.day + timedelta(days=i)) for i in range(42)]
    return render("calendar.html", request, {
        "national": own.national_calendar, "days": days, "today": hall.day,
        "coming": [(d, hall.calendar.is_working_day(d)) for d in coming],
        "warnings": dash.warnings(hall), "last_changes": await _last_changes(request, "/api/config/calendar"),
    })


async def appointments_page(request: web.Request) -> web.Response:
    hall = await request.app[ENGINE].settled()
    try:
        day = date.fromisoformat(request.query["day"]) if request.query.get("day") else None
    except ValueError:
        day = None
    found = sorted((a for a in hall.queue.appointments.values()
                    if (a.day == day if day else a.day >= hall.day)), key=lambda a: (a.day, a.code))
    return render("appointments.html", request, {
        "day": day, "today": hall.day, "appointments": found, "services": hall.config.services,
        "names": {s.code: s.name for s in hall.config.services},
    })


def _qr_svg(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    buf = io.BytesIO()
    image.save(buf)
    return buf.getvalue().decode().split("?>", 1)[-1]      # the <svg> element, for the page


async def provisioning_sheet(request: web.Request) -> web.Response:
    """A device's new MQTT password and its provisioning sheet (设备配置单): the settings a
    technician enters, and a QR code of them for a device that scans its own. The old
    password stops working at once; the sheet is shown this once (not stored)."""
    engine = request.app[ENGINE]
    hall = await engine.settled()
    device_id = request.match_info["id"]
    device = next((d for d in hall.config.devices if d.id == device_id), None)
    if device is None:
        raise Refused("unknown_config_item", f"没有设备 {device_id[:40]}", "no such device")
    password = await credentials.reset(engine.db, hall.config, device_id)
    own = request.app.get(BROKER)
    if own is not None:
        await own.refresh()
        broker = f"mqtt://{request.url.host}:{own.address.port}"
    else:
        broker = engine.config.bus.broker
    await audited(request, "device_credentials", device_id, {"sheet": True})
    settings = {"hall": hall.config.hall.id, "device": device.id, "kind": device.kind,
                "broker": broker, "username": device.id, "password": password}
    if device.window:
        settings["window"] = device.window
    return render("sheet.html", request, {
        "device": device, "settings": settings, "hall": hall.config.hall,
        "qr": _qr_svg(json.dumps(settings, ensure_ascii=False, separators=(",", ":"))),
        "printed_at": hall.local(engine.clock.now()),
    })


def add_routes(app: web.Application) -> None:
    app[ON_TIME] = TtlCache(60.0, size=4)
    r = app.router
    html = {"media": "text/html"}
    r.add_get("/admin", guarded("hall.read", dashboard_page, summary="值班看板 / the duty dashboard", **html))
    r.add_get("/admin/dashboard/panel", guarded(
        "hall.read", dashboard_panel, errors=READS, summary="看板实时部分 / the live part", **html))
    r.add_get("/admin/stream", guarded("hall.read", stream, errors=READS, media="text/event-stream",
                                       summary="看板推送 / the dashboard's pushes (SSE)"))
    r.add_get("/admin/config/{section}", guarded(
        "config.read", section_page, errors=(404,), summary="配置页 / a configuration section", **html))
    r.add_get("/admin/settings", guarded("config.read", settings_page, summary="大厅设置 / settings", **html))
    r.add_get("/admin/calendar", guarded("config.read", calendar_page, summary="日历 / the calendar", **html))
    r.add_get("/admin/appointments", guarded(
        "appointments.read", appointments_page, summary="预约 / appointments", **html))
    r.add_post("/admin/devices/{id}/sheet", guarded(
        "config.write", provisioning_sheet, errors=(404, 503),
        summary="设备配置单 / a device's new password and provisioning sheet", **html))
