"""Live configuration (在线配置): the hall's services, windows, clerks, devices, notices, settings
and calendar, changed by commands through the engine like any queue command.

Each change builds the whole new configuration, validates it with the same declarations as the
hall file (``controller.config``), refuses what would strand state (a service with tickets
still open, a window with a clerk at it: disable instead), and only then swaps it in. The
stored form is one JSON document per hall (``StoredConfig``), written in the same transaction
as the event that records the change and who made it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controller.config import HallConfig, parse_config
from controller.core.commands import (
    AddItem,
    ChangeItem,
    ChangeSettings,
    Command,
    ImportConfig,
    RemoveItem,
    SetDay,
)
from controller.core.errors import ConfigError, Refused
from controller.core.events import EventKind
from controller.core.model import TicketState

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.core.hall import HallState

#: Each list section of the live configuration and the key that names its items.
SECTIONS = {"services": "code", "windows": "id", "clerks": "id", "devices": "id", "notices": "id"}
#: What lives in the database; the rest of the hall file (storage, server, bus, simulation)
#: is how this one server is deployed and stays in the file.
LIVE = ("hall", *SECTIONS)
#: Settings that name the hall itself and cannot change while it runs.
FIXED_SETTINGS = {"id": ("大厅编号", "the hall's id"), "timezone": ("时区", "the time zone")}


@dataclass(slots=True)
class StoredConfig:
    """The live configuration as stored: one row per hall, ``revision`` counting changes."""

    revision: int
    data: dict[str, Any]


def live_data(config: HallConfig) -> dict[str, Any]:
    """The live sections as plain JSON data, with the hall file's keys."""
    return config.model_dump(mode="json", include=set(LIVE))


def with_live(base: HallConfig, data: dict[str, Any], source: str = "配置") -> HallConfig:
    """``base``'s deployment sections with the live sections ``data``, validated as a hall
    file is (``ConfigError`` listing every problem). The simulation's mixes keep only
    services that still exist."""
    merged = base.model_dump(mode="json", exclude=set(LIVE))
    services = data.get("services")                  # untrusted: parse_config says what is wrong
    codes = {s["code"] for s in services if isinstance(s, dict) and isinstance(s.get("code"), str)} \
        if isinstance(services, (list, tuple)) else set()
    simulation = merged.get("simulation", {})
    for mix in ("service_mix", "service_min"):
        simulation[mix] = {k: v for k, v in simulation.get(mix, {}).items() if k in codes}
    return parse_config({**merged, **data}, source)


# ---------------------------------------------------------------------- handlers
def add_item(hall: HallState, cmd: AddItem, now: datetime) -> dict[str, Any]:
    """新增: a service, window, clerk, device or notice, with the hall file's keys."""
    data = live_data(hall.config)
    key = SECTIONS[cmd.section]
    item_id = cmd.item.get(key)
    if any(i[key] == item_id for i in data[cmd.section]):
        raise Refused("config_exists", f"{item_id} 已存在", f"{item_id!r} exists already")
    data[cmd.section].append(dict(cmd.item))
    return _change(hall, now, data, cmd.section, item_id, "added", dict(cmd.item), {})


def change_item(hall: HallState, cmd: ChangeItem, now: datetime) -> dict[str, Any]:
    """修改 (``{"enabled": false}``: 停用): the keys given, the others as they were."""
    data = live_data(hall.config)
    key = SECTIONS[cmd.section]
    index, old = _find(data, cmd.section, cmd.id)
    if key in cmd.changes and cmd.changes[key] != cmd.id:
        raise Refused("bad_arguments", f"{key} 不能修改（可新增一项后删除旧的）",
                      f"{key} cannot change (add a new one, then remove the old one)")
    data[cmd.section][index] = {**old, **cmd.changes}
    before = {k: old.get(k) for k in cmd.changes}
    return _change(hall, now, data, cmd.section, cmd.id, "changed", dict(cmd.changes), before)


def remove_item(hall: HallState, cmd: RemoveItem, now: datetime) -> dict[str, Any]:
    """删除: only what nothing depends on any more (else: disable it)."""
    data = live_data(hall.config)
    index, old = _find(data, cmd.section, cmd.id)
    del data[cmd.section][index]
    return _change(hall, now, data, cmd.section, cmd.id, "removed", {}, old)


def change_settings(hall: HallState, cmd: ChangeSettings, now: datetime) -> dict[str, Any]:
    """The hall's own settings: name, hours, days, recall limit, rating time-out, status URL,
    wait alert, calendar options."""
    data = live_data(hall.config)
    old = data["hall"]
    for key, (zh, en) in FIXED_SETTINGS.items():
        if key in cmd.changes and cmd.changes[key] != old[key]:
            raise Refused("bad_arguments", f"{zh}不能在运行中修改", f"{en} cannot change while the hall runs")
    data["hall"] = {**old, **cmd.changes}
    before = {k: old.get(k) for k in cmd.changes}
    return _change(hall, now, data, "settings", None, "changed", dict(cmd.changes), before)


def set_day(hall: HallState, cmd: SetDay, now: datetime) -> dict[str, Any]:
    """The hall's own calendar entry for a day: closed (``holiday``), open (``workday``) or
    as the country's calendar says (``default``)."""
    data = live_data(hall.config)
    day = cmd.day.isoformat()
    old = data["hall"]
    entries = {k: sorted(set(old[k]) - {day}) for k in ("holidays", "workdays")}
    if cmd.kind != "default":
        entries[f"{cmd.kind}s"] = sorted([*entries[f"{cmd.kind}s"], day])
    before = "holiday" if day in old["holidays"] else "workday" if day in old["workdays"] else "default"
    data["hall"] = {**old, **entries}
    return _change(hall, now, data, "calendar", day, "changed", {"kind": cmd.kind}, {"kind": before})


def import_config(hall: HallState, cmd: ImportConfig, now: datetime) -> dict[str, Any]:
    """导入: the live sections of a hall file become the configuration, checked as a whole
    (one refusal changes nothing); each difference is an event of its own."""
    config, differences = planned(hall.config, cmd.data)
    if differences:
        check_strands(hall, config)
        hall.reconfigure(config)
        for d in differences:
            hall.emit(EventKind.CONFIG_CHANGED, now, **d, revision=hall.stored_config.revision)
    return {"differences": differences, "revision": hall.stored_config.revision}


def planned(base: HallConfig, data: dict[str, Any]) -> tuple[HallConfig, list[dict[str, Any]]]:
    """The configuration importing ``data`` (its live sections) over ``base`` makes, and
    the differences — what a dry run shows — or ``Refused`` saying why it cannot be."""
    data = {k: v for k, v in data.items() if k in LIVE}
    old = live_data(base)
    hall_data = data.get("hall")
    if isinstance(hall_data, dict):
        for key, (zh, en) in FIXED_SETTINGS.items():
            if hall_data.get(key, old["hall"][key]) != old["hall"][key]:
                raise Refused("bad_arguments", f"{zh}与本厅不同，不能导入", f"{en} differs from this hall's")
    config = _validated(base, data, "all", None)
    return config, config_diff(old, live_data(config))


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """What changes from ``old`` to ``new`` (both ``live_data``), as the events that record
    it: settings, then each section's items added, changed, removed and a new order."""
    out: list[dict[str, Any]] = []
    changed = {k: v for k, v in new["hall"].items() if old["hall"].get(k) != v}
    if changed:
        out.append({"section": "settings", "id": None, "action": "changed", "changes": changed,
                    "before": {k: old["hall"].get(k) for k in changed}})
    for section, key in SECTIONS.items():
        before = {i[key]: i for i in old[section]}
        after = {i[key]: i for i in new[section]}
        for item_id, item in after.items():
            if item_id not in before:
                out.append({"section": section, "id": item_id, "action": "added", "changes": item,
                            "before": {}})
            elif item != before[item_id]:
                keys = [k for k in item if item[k] != before[item_id].get(k)]
                out.append({"section": section, "id": item_id, "action": "changed",
                            "changes": {k: item[k] for k in keys},
                            "before": {k: before[item_id].get(k) for k in keys}})
        out += [{"section": section, "id": item_id, "action": "removed", "changes": {}, "before": item}
                for item_id, item in before.items() if item_id not in after]
        kept_old = [i for i in before if i in after]
        kept_new = [i for i in after if i in before]
        if kept_old != kept_new:
            out.append({"section": section, "id": None, "action": "reordered",
                        "changes": {"order": list(after)}, "before": {"order": list(before)}})
    return out


def _find(data: dict[str, Any], section: str, item_id: str) -> tuple[int, dict[str, Any]]:
    key = SECTIONS[section]
    for i, item in enumerate(data[section]):
        if item[key] == item_id:
            return i, item
    raise Refused("unknown_config_item", f"没有 {item_id}", f"no {section} item {item_id!r}")


def _change(hall: HallState, now: datetime, data: dict[str, Any], section: str, item_id: str | None,
            action: str, changes: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(changes, ensure_ascii=False).encode()      # what storage will write
    except (TypeError, ValueError):
        raise Refused("bad_arguments", "内容含有无效字符", "values must be valid Unicode text") from None
    config = _validated(hall.config, data, section, item_id)
    check_strands(hall, config)
    hall.reconfigure(config)
    hall.emit(EventKind.CONFIG_CHANGED, now, section=section, id=item_id, action=action,
              changes=changes, before=before, revision=hall.stored_config.revision)
    return {"section": section, "id": item_id, "action": action, "changes": changes, "before": before,
            "revision": hall.stored_config.revision}


def _validated(base: HallConfig, data: dict[str, Any], section: str, item_id: str | None) -> HallConfig:
    """The new configuration, or ``invalid_config`` with each problem at its field: keys of
    the item changed are given relative to it (``daily_cap``, not ``services[5].daily_cap``)."""
    try:
        return with_live(base, data)
    except ConfigError as exc:
        problems = tuple((_relative(where, data, section, item_id), zh, en)
                         for where, zh, en in exc.problems)
        raise Refused("invalid_config", "配置有误：" + "；".join(f"{k}: {zh}" for k, zh, _ in problems),
                      "invalid configuration: " + "; ".join(f"{k}: {en}" for k, _, en in problems),
                      problems) from None


def _relative(where: str, data: dict[str, Any], section: str, item_id: str | None) -> str:
    if section in ("settings", "calendar"):
        return where.removeprefix("hall.")
    if section in SECTIONS:
        key = SECTIONS[section]
        index = next((i for i, item in enumerate(data[section]) if item.get(key) == item_id), None)
        prefix = f"{section}[{index}]"
        if index is not None and (where == prefix or where.startswith(prefix + ".")):
            return where[len(prefix) + 1:] or key
    return where


# ---------------------------------------------------------------------- what must not be stranded
def check_strands(hall: HallState, new: HallConfig) -> None:
    """Refuse a configuration that would leave tickets or people with nowhere to go."""
    services = {s.code: s for s in new.services}
    windows = {w.id: w for w in new.windows}
    clerks = {c.id: c for c in new.clerks}
    open_tickets = [t for t in hall.queue.all.values() if not t.state.terminal]
    for t in open_tickets:
        if t.service not in services:
            raise Refused("service_in_use",
                          f"业务 {t.service} 还有未办完的号（{t.number}），不能删除；请改为停用",
                          f"service {t.service} still has open tickets ({t.number}); disable it instead")
        for w in (t.target_window, t.window if t.state.at_window or t.state is TicketState.HELD else None):
            if w is not None and (w not in windows or not windows[w].enabled):
                raise Refused("window_in_use", f"{w}号窗口还有未办完的号（{t.number}）",
                              f"window {w} still has an open ticket ({t.number})")
    for code, line in hall.queue.lines.items():
        if len(line) and not any(w.enabled and code in w.services for w in new.windows):
            raise Refused("would_strand", f"业务 {code} 有 {len(line)} 人在等候，修改后没有窗口办理",
                          f"{len(line)} people wait for {code}; no open window would serve them")
    for ws in hall.desk.windows.values():
        if ws.clerk is None:
            continue
        if ws.id not in windows or not windows[ws.id].enabled:
            raise Refused("window_in_use", f"{ws.id}号窗口有人在岗，请先退出登录",
                          f"a clerk is logged in at window {ws.id}; log out first")
        if ws.clerk not in clerks or not clerks[ws.clerk].enabled:
            raise Refused("clerk_on_duty", f"工号{ws.clerk}正在{ws.id}号窗口上岗，请先退出登录",
                          f"clerk {ws.clerk} is logged in at window {ws.id}; log out first")
    _check_prefixes(hall, new)


def _check_prefixes(hall: HallState, new: HallConfig) -> None:
    """A number given out today stays that ticket's: no other service may take its prefix
    before the next day."""
    issued: dict[str, str] = {}                          # prefix → the service that used it
    for number, tid in hall.queue.by_number.items():
        prefix = re.sub(r"\d+$", "", number)
        issued.setdefault(prefix, hall.queue.all[tid].origin_service)
    for s in new.services:
        owner = issued.get(s.prefix)
        if owner is not None and owner != s.code:
            raise Refused("prefix_in_use",
                          f"今天已用 {s.prefix} 开头的号发给业务 {owner}，明天才能改给 {s.code}",
                          f"prefix {s.prefix} was issued today for {owner}; it can move to {s.code} tomorrow")


HANDLERS: dict[type[Command], Callable[[HallState, Any, datetime], dict[str, Any]]] = {
    AddItem: add_item, ChangeItem: change_item, RemoveItem: remove_item,
    ChangeSettings: change_settings, SetDay: set_day, ImportConfig: import_config,
}
