"""The county overview (全县大厅总览): what each hall tells the hall above it about itself, and
the sums.

A hall's summary is small and plain: its lines (waiting, the estimated wait, an alert), windows
open, devices online and with problems, open cases by warning colour, today's tickets, and the
month's counts so far (tickets, served, ratings good and bad, cases decided and decided on
time), from which the rates are computed — per hall and summed over the halls, so the sums are
of counts, never averages of rates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from controller import stats
from controller.config import HallConfig
from controller.core.hall import HallState

#: the month's counts a summary carries
MONTH = ("issued", "served", "rated", "good", "bad", "decided", "on_time")


Count = Field(ge=0, le=10_000_000)


class _Told(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class LineTold(_Told):
    service: str = Field(max_length=40)
    name: str = Field(max_length=80)
    waiting: int = Count
    est_wait_min: int | float = Count
    alert: bool


class CasesTold(_Told):
    red: int = Count
    yellow: int = Count
    green: int = Count
    paused: int = Count


class TodayTold(_Told):
    issued: int = Count
    done: int = Count


class MonthTold(_Told):
    issued: int = Count
    served: int = Count
    rated: int = Count
    good: int = Count
    bad: int = Count
    decided: int = Count
    on_time: int = Count


class Told(_Told):
    """A summary as a hall below tells it (``summary``), checked before the overview keeps it:
    what the page shows has these types, and nothing else is kept (fields added later are
    dropped, not shown)."""

    hall: str = Field(max_length=40)
    name: str = Field(max_length=80)
    level: str = Field(max_length=20)
    at: str = Field(max_length=40)
    lines: list[LineTold] = Field(max_length=200)
    waiting: int = Count
    longest_wait_min: int | float = Count
    alerts: int = Count
    windows_open: int = Count
    windows: int = Count
    devices_enabled: int = Count
    devices_online: int = Count
    device_problems: int = Count
    cases: CasesTold
    today: TodayTold
    month: MonthTold


def summary(hall: HallState, bus: Any, now: datetime, month: dict[str, int]) -> dict[str, Any]:
    """The hall's summary now (``month``: its month's counts so far, read separately): the
    duty dashboard's figures, shortened."""
    from controller.web.admin.dashboard import dashboard  # the admin pages show this page too

    d = dashboard(hall, bus, now)
    lines = [{"service": line["service"], "name": line["name"], "waiting": line["waiting"],
              "est_wait_min": line["est_wait_min"], "alert": line["alert"]} for line in d["lines"]]
    return {"hall": hall.config.hall.id, "name": hall.config.hall.name, "level": hall.config.tier.level,
            "online": True, "at": now.isoformat(), "lines": lines,
            "waiting": sum(line["waiting"] for line in lines),
            "longest_wait_min": max((line["est_wait_min"] for line in lines if line["waiting"]), default=0),
            "alerts": sum(1 for line in lines if line["alert"]),
            "windows_open": sum(1 for w in d["windows"] if w["state"] not in ("closed", "paused")),
            "windows": len(d["windows"]), "devices_enabled": d["devices_enabled"],
            "devices_online": d["devices_online"], "device_problems": len(d["device_problems"]),
            "cases": d["cases"]["counts"], "today": {"issued": d["figures"]["issued"],
                                                     "done": d["figures"]["done"]},
            "month": month}


async def month_counts(db: AsyncEngine, config: HallConfig, today: date, now: datetime) -> dict[str, int]:
    rows = await stats.period(db, config, today.replace(day=1), today, "hall", today, now)
    if not rows:
        return dict.fromkeys(MONTH, 0)
    r = rows[0]
    levels = r["ratings"]["levels"]
    return {"issued": r["issued"], "served": r["served"], "rated": r["ratings"]["rated"],
            "good": levels.get("very_satisfied", 0) + levels.get("satisfied", 0), "bad": r["ratings"]["bad"],
            "decided": r["cases"]["decided"], "on_time": r["cases"]["on_time"]}


def rates(month: dict[str, int]) -> dict[str, float | None]:
    return {"good_rate": month["good"] / month["rated"] if month.get("rated") else None,
            "on_time_rate": month["on_time"] / month["decided"] if month.get("decided") else None}


def totals(halls: list[dict[str, Any]]) -> dict[str, Any]:
    """The sums over the halls that have told anything."""
    seen = [h for h in halls if "month" in h]
    month = {k: sum(h["month"].get(k, 0) for h in seen) for k in MONTH}
    cases = {k: sum(h.get("cases", {}).get(k, 0) for h in seen) for k in ("red", "yellow", "green", "paused")}
    return {"waiting": sum(h.get("waiting", 0) for h in seen),
            "windows_open": sum(h.get("windows_open", 0) for h in seen),
            "windows": sum(h.get("windows", 0) for h in seen),
            "device_problems": sum(h.get("device_problems", 0) for h in seen),
            "cases": cases, "month": month, **rates(month)}
