"""What the duty dashboard (值班看板) shows, read from the hall's state and the device registry.

Every window (who works it, its ticket, called / serving / paused, minutes with the ticket),
every service's line with its estimated wait and an alert when the wait passes the service's
threshold (or the hall's), naming the closed windows that could open for it (备用窗口 /
潮汐窗口); device health (online, offline since, paper, last error); the day's figures so far;
calendar warnings. Pure reads: nothing here changes the hall.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from controller.bus.service import HallBus
from controller.core.followups import OPEN as OPEN_FOLLOWUPS
from controller.core.hall import HallState
from controller.core.model import TicketState

#: A window's state as the dashboard says it: (zh-CN, English, CSS class).
WINDOW_STATES = {
    "closed": ("未登录", "closed", "off"), "idle": ("空闲", "idle", "idle"),
    "called": ("已呼叫", "called", "called"), "serving": ("办理中", "serving", "busy"),
    "held": ("挂起", "on hold", "called"), "paused": ("暂停", "paused", "paused"),
}
PAPER = {"ok": ("正常", "ok"), "low": ("纸将尽", "low"), "out": ("缺纸", "out")}


def _minutes(since: datetime | None, now: datetime) -> int | None:
    return None if since is None else max(0, int((now - since).total_seconds() // 60))


def windows(hall: HallState, now: datetime) -> list[dict[str, Any]]:
    out = []
    for w in hall.windows:
        view, ws = hall.window_view(w), hall.desk.windows[w]
        ticket = hall.queue.all.get(ws.current) if ws.current else None
        state = view["state"]
        if state == "serving" and ticket is not None and ticket.state is not TicketState.SERVING:
            state = "called" if ticket.state is TicketState.CALLED else "held"
        clerk = hall.clerks.get(ws.clerk or "")
        out.append({"window": w, "name": view["name"], "state": state, "label": WINDOW_STATES[state],
                    "staff": ws.clerk, "clerk": clerk.name if clerk else None,
                    "ticket": ticket.number if ticket else None,
                    "minutes": _minutes(ticket.served_at or ticket.called_at, now) if ticket else None,
                    "waiting": view["waiting"]})
    return out


def lines(hall: HallState, dash_windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each service's line; ``alert`` when its estimated wait passes its threshold, with the
    windows that serve it but are closed or paused now (they could open for it)."""
    by_id = {w["window"]: w for w in dash_windows}
    out = []
    for view in hall.services_view():
        service = hall.services[view["service"]]
        threshold = service.wait_alert_min or hall.config.hall.wait_alert_min
        could_open = [by_id[w]["name"] for w in hall.windows_for.get(service.code, ())
                      if w in by_id and by_id[w]["state"] in ("closed", "paused")]
        alert = bool(threshold) and view["waiting"] > 0 and (
            view["est_wait_min"] >= threshold or view["open_windows"] == 0)
        out.append({**view, "name_en": service.name_en or service.name, "threshold": threshold,
                    "alert": alert, "could_open": could_open})
    return out


def devices(bus: HallBus | None, hall: HallState) -> list[dict[str, Any]]:
    """Every configured device with what the registry knows of it (none without a bus)."""
    registry = bus.registry if bus is not None else {}
    out = []
    for d in hall.config.devices:
        r = registry.get(d.id)
        paper = (r.state or {}).get("paper") if r is not None else None
        out.append({"id": d.id, "kind": d.kind, "window": d.window, "enabled": d.enabled,
                    "online": bool(r and r.online), "seen": r.last_seen if r else None,
                    "paper": PAPER.get(paper) if isinstance(paper, str) else None,
                    "paper_bad": paper in ("low", "out"), "last_error": r.last_error if r else None,
                    "errors": r.errors if r else 0})
    return out


def figures(hall: HallState, now: datetime) -> dict[str, Any]:
    """The day's figures so far: tickets taken, served, no-shows, waiting, the mean wait, and
    the tickets taken in each hour of the hall's opening (for the chart)."""
    today = [t for t in hall.queue.all.values() if t.day == hall.day]
    states = Counter(t.state for t in today)
    waits = [(t.first_called_at - t.issued_at).total_seconds() / 60 for t in today if t.first_called_at]
    hours = Counter(hall.local(t.issued_at).hour for t in today)
    spans = hall.config.hall.hours
    first = min([s.start // 60 for s in spans] + list(hours)) if spans or hours else 0
    last = max([(s.end - 1) // 60 for s in spans] + list(hours)) if spans or hours else 23
    if first == 0 and last == 23 and hours:           # open all day: the hours with tickets
        first, last = min(hours), max(max(hours), hall.local(now).hour)
    return {"issued": len(today), "done": states[TicketState.DONE], "no_show": states[TicketState.NO_SHOW],
            "waiting": states[TicketState.WAITING],
            "mean_wait": round(sum(waits) / len(waits), 1) if waits else None,
            "by_hour": {"hours": [f"{h}:00" for h in range(first, last + 1)],
                        "tickets": [hours[h] for h in range(first, last + 1)]}}


def warnings(hall: HallState) -> list[tuple[str, str]]:
    """Calendar warnings (zh-CN, English): a year whose statutory holidays are not known."""
    return [(f"{year}年法定节假日尚未发布：该年暂按周末和本厅设置的休息日计算，请在日历中补充",
             f"no statutory holidays published for {year}: set the hall's own days in the calendar")
            for year in hall.calendar.unpublished([hall.day.year, hall.day.year + 1])]


def case_summary(hall: HallState) -> dict[str, Any]:
    """The open cases by warning colour (电子监察) and the most urgent ones."""
    colours = ("red", "yellow", "green", "paused")
    open_cases = [c for c in hall.cases.by_number.values() if c.open and c.colour in colours]
    urgent = sorted((c for c in open_cases if c.colour in ("red", "yellow")),
                    key=lambda c: (c.colour != "red", c.due, c.number))
    return {"counts": {k: sum(1 for c in open_cases if c.colour == k) for k in colours},
            "urgent": [{"number": c.number, "matter": c.matter_name, "due": c.due, "colour": c.colour,
                        "window": c.window, "department": c.department} for c in urgent[:10]]}


def followup_summary(hall: HallState) -> dict[str, int]:
    """The open 差评 follow-ups by warning colour."""
    open_ones = [f for f in hall.followups.values() if f.state in OPEN_FOLLOWUPS]
    return {c: sum(1 for f in open_ones if f.colour == c) for c in ("red", "yellow", "green")}


def dashboard(hall: HallState, bus: HallBus | None, now: datetime) -> dict[str, Any]:
    """Everything the dashboard shows; of the devices, those with a problem (offline, paper
    low or out, an error), the longest-offline first, and how many are well."""
    dash_windows = windows(hall, now)
    enabled = [d for d in devices(bus, hall) if d["enabled"]]
    problems = [d for d in enabled if not d["online"] or d["paper_bad"] or d["last_error"]] \
        if bus is not None else []                   # no bus: nothing is known of them
    problems.sort(key=lambda d: (d["online"], d["seen"] is not None, d["seen"] or now, d["id"]))
    return {"windows": dash_windows, "lines": lines(hall, dash_windows), "device_problems": problems,
            "devices_online": sum(1 for d in enabled if d["online"]), "devices_enabled": len(enabled),
            "devices_disabled": len(hall.config.devices) - len(enabled),
            "bus": bus is not None, "figures": figures(hall, now), "warnings": warnings(hall),
            "cases": case_summary(hall),
            "followups": followup_summary(hall),
            "at": hall.local(now)}
