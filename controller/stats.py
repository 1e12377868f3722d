"""Statistics (统计) for a period, per hall, service, window, clerk or department.

Finished days are read from their roll-ups (``daily_stats``, ``controller.storage.rollup``);
the current day, and any earlier day with events but no roll-up yet, from the raw event log.
Each figure's definition is in docs/statistics.md; in short:

- ``issued`` 取号, ``served`` 办结 (``done``), ``no_show`` 过号, ``cancelled`` 取消,
  ``transferred`` 转移 (counted for the service and window it left), ``closed`` 日切未办理.
- waiting time (等候时长): a ticket's first call minus its issue; service time (办理时长): its
  ``done`` minus the start of its service at that window (its ``serving``, else its latest
  call there). Each as count, mean, median, 90th percentile and maximum, in minutes; the median
  and the percentile are read from a histogram of whole minutes (the nearest-rank value's
  minute, reported as its middle: within half a minute of the exact value).
- arrivals by weekday (0 = Monday) × hour of the hall's local time.
- ratings (好差评): counts by level; ``bad`` 差评 (不满意 + 非常不满意); ``unrated`` 未评价
  (sessions that timed out). Three rates, as the national standards name them:

  * ``good_rate`` 好评率 = (非常满意 + 满意) / all ratings. Yimen never makes a default rating
    (an unanswered prompt is 未评价, not a rating), so all ratings are active ones and this
    equals the next.
  * ``active_good_rate`` 主动评价好评率 = (非常满意 + 满意) among active ratings / active ratings.
  * ``unrated_rate`` 未评价率 = services without an active rating / services (办结), i.e.
    (served − rated) / served, at least 0.

  Each rate is None when its denominator is 0. A rating an upheld appeal took out (申诉成立)
  is in none of them: it is counted as ``excluded``.
- cases (办件): opened 受理, decided 办结 (``decide`` steps), ``on_time_rate`` 按时办结率 = decided on
  time / decided, ``overdue`` 超期 (cases that turned red, i.e. passed their due day, in the period).
- attendance (考勤): hours logged in, late starts (a clerk's first login of a day after the hall
  opens), early leaves (the last logout of a day before it closes, not logged in again).
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.config import HallConfig
from controller.core.followups import OPEN as OPEN_FOLLOWUPS
from controller.storage import rollup, schema
from controller.storage.rollup import GOOD, LEVELS, Tally


def collect(conn: Connection, config: HallConfig, since: date, until: date, by: str,
            today: date, now: datetime | None = None) -> dict[str, list[tuple[date, Tally]]]:
    """Each key's tallies per day in [since, until]: roll-ups for finished days, the raw
    events for today (counted up to ``now``) and for any day without a roll-up."""
    hall = config.hall.id
    tz = ZoneInfo(config.hall.timezone)
    hours = rollup.hall_hours(config)
    out: dict[str, list[tuple[date, Tally]]] = {}
    rolled, stored = rollup.read(conn, hall, since, until, by)
    for day, key, tally in stored:
        if day < today:
            out.setdefault(key, []).append((day, tally))
    finished = {day for day in rolled if day < today}
    for day in rollup.days_with_events(conn, hall, since, until, skip=finished):
        upto = now if day >= today else None
        for (b, key), tally in rollup.day_tallies(conn, hall, day, tz, hours, upto).items():
            if b == by:
                out.setdefault(key, []).append((day, tally))
    return out


def quantile(hist: dict[str, int], n: int, q: float) -> float | None:
    """The nearest-rank ``q`` quantile in minutes, as the middle of its whole minute."""
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for minute in sorted(hist, key=int):
        seen += hist[minute]
        if seen >= rank:
            return int(minute) + 0.5
    return None


def times(t: dict[str, Any]) -> dict[str, Any]:
    n = t["n"]
    return {"count": n, "mean_min": t["sum"] / n / 60 if n else None,
            "median_min": quantile(t["hist"], n, 0.5), "p90_min": quantile(t["hist"], n, 0.9),
            "max_min": t["max"] / 60 if n else None}


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def figures(days: list[tuple[date, Tally]]) -> dict[str, Any]:
    """One key's figures from its daily tallies."""
    total = rollup.new_tally()
    arrivals = [[0] * 24 for _ in range(7)]
    for day, tally in days:
        rollup.merge(total, tally)
        for hour, n in tally["arrivals"].items():
            arrivals[day.weekday()][int(hour)] += n
    levels = {level: total["levels"].get(level, 0) for level in LEVELS}
    good = sum(levels[level] for level in GOOD)
    rated, served = total["rated"], total["served"]
    return {
        **{k: total[k] for k in ("issued", "served", "no_show", "cancelled", "transferred", "closed")},
        "wait": times(total["wait"]), "service": times(total["service"]), "arrivals": arrivals,
        "ratings": {"levels": levels, "rated": rated, "unrated": total["unrated"], "bad": total["bad"],
                    "good_rate": _rate(good, rated), "active_good_rate": _rate(good, rated),
                    "unrated_rate": _rate(max(0, served - rated), served)},
        "cases": {"opened": total["cases_opened"], "decided": total["cases_decided"],
                  "on_time": total["cases_on_time"],
                  "on_time_rate": _rate(total["cases_on_time"], total["cases_decided"]),
                  "overdue": total["cases_overdue"]},
        "attendance": {"hours": total["attendance_s"] / 3600, "late_starts": total["late_starts"],
                       "early_leaves": total["early_leaves"]},
    }


def read(conn: Connection, config: HallConfig, since: date, until: date, by: str,
         today: date, now: datetime | None = None) -> list[dict[str, Any]]:
    """Figures per key of grouping ``by`` (``hall``: one row, key ``""``) for [since, until],
    without the ratings an upheld appeal took out (申诉成立; counted as ``excluded``), and with
    where the period's 差评 follow-ups stand (``ratings.followups``: by state, and ``overdue``,
    those still open past their working day)."""
    out = [{"key": key, **figures(days)}
           for key, days in sorted(collect(conn, config, since, until, by, today, now).items())]
    followed = _followups(conn, config, since, until, by)
    for row in out:
        row["ratings"]["excluded"] = 0
        states: dict[str, int] = {}
        overdue = 0
        for level, state, colour in followed.get(row["key"], []):
            states[state] = states.get(state, 0) + 1
            overdue += state in OPEN_FOLLOWUPS and colour == "red"
            if state == "excluded":
                _drop_rating(row, level)
        row["ratings"]["followups"] = {"states": states, "overdue": overdue}
    return out


def _followups(conn: Connection, config: HallConfig, since: date, until: date,
               by: str) -> dict[str, list[tuple[str, str, str]]]:
    """The (level, state, colour) of the follow-ups of the period's ratings, by the grouping's key."""
    e, f = schema.evaluations.c, schema.followups.c
    tz = ZoneInfo(config.hall.timezone)
    start = datetime.combine(since, time(0), tz)
    end = datetime.combine(until + timedelta(days=1), time(0), tz)
    column = {"service": e.service, "window": e.window, "clerk": e.clerk}.get(by)
    q = (select(column if column is not None else literal(""), e.level, f.state, f.colour)
         .select_from(schema.evaluations.join(schema.followups, (f.hall == e.hall) & (f.id == e.id)))
         .where(e.hall == config.hall.id, e.closed_at >= start, e.closed_at < end,
                # the same rows (a follow-up opens as its rating closes); the planner starts from them
                f.opened_at >= start, f.opened_at < end))
    out: dict[str, list[tuple[str, str, str]]] = {}
    for key, level, state, colour in conn.execute(q):
        out.setdefault(key or "", []).append((level, state, colour))
    return out


def _drop_rating(row: dict[str, Any], level: str) -> None:
    r = row["ratings"]
    if r["levels"].get(level):
        r["levels"][level] -= 1
        r["rated"] -= 1
        r["bad"] -= level not in GOOD and level in ("dissatisfied", "very_dissatisfied")
        good = sum(r["levels"][lv] for lv in GOOD)
        r["good_rate"] = r["active_good_rate"] = _rate(good, r["rated"])
        r["unrated_rate"] = _rate(max(0, row["served"] - r["rated"]), row["served"])
    r["excluded"] += 1


async def period(db: AsyncEngine, config: HallConfig, since: date, until: date, by: str,
                 today: date, now: datetime | None = None) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        return await conn.run_sync(lambda c: read(c, config, since, until, by, today, now))


def rebuild(conn: Connection, config: HallConfig, since: date, before: date) -> int:
    """Rewrite the roll-ups of the days in [since, before) that have events; how many days."""
    tz, hours = ZoneInfo(config.hall.timezone), rollup.hall_hours(config)
    days = rollup.days_with_events(conn, config.hall.id, since, before - timedelta(days=1))
    for day in days:
        rollup.write_day(conn, config.hall.id, day, tz, hours)
    return len(days)
