"""The configuration API (配置接口): the live configuration as JSON, for the admin page and tools.

``/api/config/{section}`` for services, windows, clerks, devices and notices: ``GET`` the list,
``GET …/{id}`` one item, ``POST`` a new one with the hall file's keys, ``PATCH …/{id}`` some
keys (``{"enabled": false}`` disables it), ``DELETE …/{id}``. ``/api/config/settings`` (``GET``,
``PATCH``), ``/api/config/calendar`` (the hall's own days), ``/api/config/export`` and
``/api/config/import`` (``?dry_run=1`` shows the differences only). Every change is a command
through the engine, with who sent it. ``POST /api/config/devices/{id}/credentials`` makes a
device's new MQTT password, shown this once.

Each route is declared with the permission it needs (``controller.web.access.guarded``); the
security layer checks it. Its declaration also names what its body is, for the API document: a
section's item is the hall file's own model (``ITEMS``, read from ``HallConfig``), which the
engine validates the whole new configuration with.
"""

from __future__ import annotations

from typing import Any, get_args

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from controller.bus import credentials
from controller.bus.hall_broker import BROKER
from controller.config import Hall, HallConfig
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
from controller.web.access import audited, declared, guarded
from controller.web.api import ENGINE, READS, REFUSALS, body, execute, json_response, query, run_command

#: A whole hall's configuration may be larger than a command.
IMPORT_LIMIT = 1024 * 1024
#: Each section's item model, as the hall file declares it (``services`` → ``Service``, …).
ITEMS: dict[str, type[BaseModel]] = {s: get_args(HallConfig.model_fields[s].annotation)[0] for s in SECTIONS}


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
                          section: data[section]})


async def get_item(request: web.Request) -> web.Response:
    section, data = _section(request), await _live(request)
    key, wanted = SECTIONS[section], request.match_info["id"]
    item = next((i for i in data[section] if i[key] == wanted), None)
    if item is None:
        raise Refused("unknown_config_item", f"没有 {wanted[:40]}", f"no {section} item {wanted[:40]!r}")
    return json_response({"ok": True, "revision": data["revision"], "item": item})


async def add_item(request: web.Request) -> web.Response:
    return await run_command(request, decode(AddItem, {"section": _section(request),
                                                      "item": await body(request)}))


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


async def clear_day(request: web.Request) -> web.Response:
    return await run_command(request, decode(SetDay, {"day": request.match_info["day"], "kind": "default"}))


async def export_config(request: web.Request) -> web.Response:
    """The whole configuration (clerks' names included): an export, so audited."""
    data = await _live(request)
    await audited(request, "config_exported", request.path, {"revision": data["revision"]})
    return json_response({"ok": True, **data})


class Import(BaseModel):
    """``POST /api/config/import?dry_run=true``: only show the differences."""

    model_config = ConfigDict(frozen=True)
    dry_run: bool = False


async def import_config(request: web.Request) -> web.Response:
    """A whole configuration (the live sections of a hall file, as JSON): with ``?dry_run=1``
    only the differences; else applied at once, all or nothing."""
    data = await body(request, IMPORT_LIMIT)
    if query(request).dry_run:
        hall = await request.app[ENGINE].settled()
        return json_response({"ok": True, "dry_run": True, "differences": planned(hall.config, data)[1]})
    return await run_command(request, decode(ImportConfig, {"data": data}))


async def device_credentials(request: web.Request) -> web.Response:
    """A device's new MQTT password (the old one stops working): shown in this answer only,
    kept hashed. The hall's own broker takes it at once."""
    engine = request.app[ENGINE]
    hall = await engine.settled()
    device = request.match_info["id"]
    password = await credentials.reset(engine.db, hall.config, device)
    own = request.app.get(BROKER)
    if own is not None:
        await own.refresh()
    await audited(request, "device_credentials", device)
    response = json_response({"ok": True, "hall": hall.config.hall.id, "device": device,
                              "username": device, "password": password}, declared(request).status)
    response.headers["Cache-Control"] = "no-store"
    return response


def add_config_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/config/settings", guarded(
        "config.read", get_settings, errors=READS, summary="大厅设置 / the hall's settings"))
    r.add_patch("/api/config/settings", guarded(
        "config.write", change_settings, body=Hall, partial=True, errors=REFUSALS,
        summary="修改大厅设置 / change the hall's settings"))
    r.add_get("/api/config/calendar", guarded(
        "config.read", get_calendar, errors=READS, summary="本厅日历 / the hall's own days"))
    r.add_post("/api/config/calendar", guarded(
        "config.write", execute, body=SetDay, errors=REFUSALS, summary="设置一天 / set a day"))
    r.add_patch("/api/config/calendar/{day}", guarded(
        "config.write", execute, body=SetDay, errors=REFUSALS, summary="修改一天 / change a day"))
    r.add_delete("/api/config/calendar/{day}", guarded(
        "config.write", clear_day, path=SetDay, errors=REFUSALS,
        summary="恢复国家日历 / a day as the country's calendar says"))
    r.add_get("/api/config/export", guarded(
        "config.read", export_config, errors=READS, summary="导出配置 / export the configuration"))
    r.add_post("/api/config/import", guarded(
        "config.write", import_config, body=HallConfig, query=Import, errors=REFUSALS,
        summary="导入配置 / import a configuration (its live sections)"))
    r.add_post("/api/config/devices/{id}/credentials", guarded(
        "config.write", device_credentials, status=201, errors=(404, 503),
        summary="设备新密码 / a device's new MQTT password"))
    r.add_get("/api/config/{section}", guarded(
        "config.read", list_items, by="section", path=RemoveItem, errors=(404, 503),
        summary="配置列表 / a section's items"))
    r.add_post("/api/config/{section}", guarded(
        "config.write", add_item, body=ITEMS, by="section", status=201, errors=REFUSALS,
        summary="新增配置 / add an item"))
    r.add_get("/api/config/{section}/{id}", guarded(
        "config.read", get_item, by="section", path=RemoveItem, errors=(404, 503),
        summary="配置项 / one item"))
    r.add_patch("/api/config/{section}/{id}", guarded(
        "config.write", change_item, body=ITEMS, by="section", partial=True, path=ChangeItem, errors=REFUSALS,
        summary="修改配置 / change an item (停用: enabled false)"))
    r.add_delete("/api/config/{section}/{id}", guarded(
        "config.write", remove_item, by="section", path=RemoveItem, errors=REFUSALS,
        summary="删除配置 / remove an item"))
