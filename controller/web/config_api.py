"""The configuration API (配置接口): the live configuration as JSON, for the admin page and tools.

``/api/config/{section}`` for services, windows, clerks, devices and notices: ``GET`` the list,
``GET …/{id}`` one item, ``POST`` a new one with the hall file's keys, ``PATCH …/{id}`` some
keys (``{"enabled": false}`` disables it), ``DELETE …/{id}``. ``/api/config/settings`` (``GET``,
``PATCH``), ``/api/config/calendar`` (the hall's own days), ``/api/config/export`` and
``/api/config/import`` (``?dry_run=1`` shows the differences only). Every change is a command
through the engine, with who sent it.

Each route is declared with the permission it needs, one line each
(``controller.web.access.guarded``); the security layer checks it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller.core.commands import (
    AddItem,
    ChangeItem,
    ChangeSettings,
    ImportConfig,
    RemoveItem,
    SetDay,
    decode,
)
from controller.core.configuration import SECTIONS, live_data, planned
from controller.core.errors import Refused
from controller.web.access import guarded
from controller.web.api import ENGINE, body, json_response, run_command

#: A whole hall's configuration may be larger than a command.
IMPORT_LIMIT = 1024 * 1024
#: Keys never shown: a device's own MQTT password, if its file gave one.
SECRET_KEYS = {"password"}


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    return {k: ("******" if k in SECRET_KEYS and v else v) for k, v in item.items()}


def _section(request: web.Request) -> str:
    section = request.match_info["section"]
    if section not in SECTIONS:
        raise Refused("unknown_config_section", f"没有配置项 {section[:40]}",
                      f"no configuration section {section[:40]!r} (one of {', '.join(SECTIONS)})")
    return section


async def _live(request: web.Request) -> dict[str, Any]:
    hall = await request.app[ENGINE].settled()
    return {"revision": hall.stored_config.revision, **live_data(hall.config)}


async def list_items(request: web.Request) -> web.Response:
    section, data = _section(request), await _live(request)
    return json_response({"ok": True, "revision": data["revision"],
                          section: [_shown(i) for i in data[section]]})


async def get_item(request: web.Request) -> web.Response:
    section, data = _section(request), await _live(request)
    key, wanted = SECTIONS[section], request.match_info["id"]
    item = next((i for i in data[section] if i[key] == wanted), None)
    if item is None:
        raise Refused("unknown_config_item", f"没有 {wanted[:40]}", f"no {section} item {wanted[:40]!r}")
    return json_response({"ok": True, "revision": data["revision"], "item": _shown(item)})


async def add_item(request: web.Request) -> web.Response:
    return await run_command(request, decode(AddItem, {"section": _section(request),
                                                      "item": await body(request)}), 201)


async def change_item(request: web.Request) -> web.Response:
    return await run_command(request, decode(ChangeItem, {
        "section": _section(request), "id": request.match_info["id"], "changes": await body(request)}))


async def remove_item(request: web.Request) -> web.Response:
    return await run_command(request, decode(RemoveItem, {"section": _section(request),
                                                         "id": request.match_info["id"]}))


async def get_settings(request: web.Request) -> web.Response:
    data = await _live(request)
    return json_response({"ok": True, "revision": data["revision"], "settings": data["hall"]})


async def change_settings(request: web.Request) -> web.Response:
    return await run_command(request, decode(ChangeSettings, {"changes": await body(request)}))


async def get_calendar(request: web.Request) -> web.Response:
    """The hall's own closures and extra working days, whether the country's calendar is
    followed, and the years it does not know yet."""
    hall = await request.app[ENGINE].settled()
    own = hall.config.hall
    days = sorted([{"day": d.isoformat(), "kind": "holiday"} for d in own.holidays]
                  + [{"day": d.isoformat(), "kind": "workday"} for d in own.workdays],
                  key=lambda e: e["day"])
    return json_response({"ok": True, "national_calendar": own.national_calendar, "days": days,
                          "unpublished_years": hall.calendar.unpublished([hall.day.year, hall.day.year + 1])})


async def set_day(request: web.Request) -> web.Response:
    return await run_command(request, decode(SetDay, await body(request)))


async def change_day(request: web.Request) -> web.Response:
    return await run_command(request, decode(SetDay, {**await body(request),
                                                     "day": request.match_info["day"]}))


async def clear_day(request: web.Request) -> web.Response:
    return await run_command(request, decode(SetDay, {"day": request.match_info["day"], "kind": "default"}))


async def export_config(request: web.Request) -> web.Response:
    data = await _live(request)
    return json_response({"ok": True, **data})


async def import_config(request: web.Request) -> web.Response:
    """A whole configuration (the live sections of a hall file, as JSON): with ``?dry_run=1``
    only the differences; else applied at once, all or nothing."""
    data = await body(request, IMPORT_LIMIT)
    if request.query.get("dry_run") in ("1", "true", "yes"):
        hall = await request.app[ENGINE].settled()
        return json_response({"ok": True, "dry_run": True, "differences": planned(hall.config, data)[1]})
    return await run_command(request, decode(ImportConfig, {"data": data}))


def add_config_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/config/settings", guarded("config.read", get_settings))
    r.add_patch("/api/config/settings", guarded("config.write", change_settings))
    r.add_get("/api/config/calendar", guarded("config.read", get_calendar))
    r.add_post("/api/config/calendar", guarded("config.write", set_day))
    r.add_patch("/api/config/calendar/{day}", guarded("config.write", change_day))
    r.add_delete("/api/config/calendar/{day}", guarded("config.write", clear_day))
    r.add_get("/api/config/export", guarded("config.read", export_config))
    r.add_post("/api/config/import", guarded("config.write", import_config))
    r.add_get("/api/config/{section}", guarded("config.read", list_items))
    r.add_post("/api/config/{section}", guarded("config.write", add_item))
    r.add_get("/api/config/{section}/{id}", guarded("config.read", get_item))
    r.add_patch("/api/config/{section}/{id}", guarded("config.write", change_item))
    r.add_delete("/api/config/{section}/{id}", guarded("config.write", remove_item))
