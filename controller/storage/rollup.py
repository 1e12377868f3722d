"""Daily roll-ups (日报) from the event log: one finished day's figures per grouping.

A day's figures are computed from that day's raw ``events`` rows (and the ``cases`` table for
a case's department and window), grouped by ``hall`` (key ``""``), ``service``, ``window``,
``clerk`` and ``department``, and kept in ``daily_stats`` as one JSON document per group
(``Tally``). The engine writes the finished day's roll-up in the rollover's own transaction
(``Repository.write``); ``yimen stats rollup`` rebuilds past days (delete, then insert, per
day). The raw events stay. The definitions are in docs/statistics.md.

A tally is plain JSON: counts, and for waiting and service time the count, sum, sum of
squares, maximum (seconds) and a histogram by whole minutes (``{"minute": count}``), enough to
give the median and the 90th percentile within the minute.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Text, bindparam, delete, func, select, type_coerce
from sqlalchemy.engine import Connection

from controller.storage.schema import cases, daily_stats, events

#: The groupings of a roll-up.
DIMENSIONS = ("hall", "service", "window", "clerk", "department")
COUNTS = ("issued", "served", "no_show", "cancelled", "transferred", "closed", "rated", "unrated",
          "bad", "cases_opened", "cases_decided", "cases_on_time", "cases_overdue",
          "late_starts", "early_leaves")
LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
BAD = frozenset({"dissatisfied", "very_dissatisfied"})          # 差评
GOOD = frozenset({"very_satisfied", "satisfied"})               # 好评

Tally = dict[str, Any]


def new_tally() -> Tally:
    return {**dict.fromkeys(COUNTS, 0), "wait": new_times(), "service": new_times(),
            "arrivals": {}, "levels": {}, "attendance_s": 0.0}


def new_times() -> dict[str, Any]:
    return {"n": 0, "sum": 0.0, "sq": 0.0, "max": 0.0, "hist": {}}


def add_time(times: dict[str, Any], seconds: float) -> None:
    seconds = max(0.0, seconds)
    times["n"] += 1
    times["sum"] += seconds
    times["sq"] += seconds * seconds
    times["max"] = max(times["max"], seconds)
    minute = str(int(seconds // 60))
    times["hist"][minute] = times["hist"].get(minute, 0) + 1


def merge(into: Tally, other: Tally) -> Tally:
    """``other`` added to ``into`` (several days, or several keys)."""
    for k in COUNTS:
        into[k] += other.get(k, 0)
    into["attendance_s"] += other.get("attendance_s", 0.0)
    for name in ("wait", "service"):
        a, b = into[name], other[name]
        a["n"] += b["n"]
        a["sum"] += b["sum"]
        a["sq"] += b["sq"]
        a["max"] = max(a["max"], b["max"])
        for m, n in b["hist"].items():
            a["hist"][m] = a["hist"].get(m, 0) + n
    for name in ("arrivals", "levels"):
        for k, n in other[name].items():
            into[name][k] = into[name].get(k, 0) + n
    return into


class _Day:
    """One day's tallies, by (grouping, key)."""

    def __init__(self) -> None:
        self.tallies: dict[tuple[str, str], Tally] = {("hall", ""): new_tally()}

    def at(self, **keys: str | None) -> list[Tally]:
        """The tallies of the hall and of each grouping given a key."""
        out = [self.tallies[("hall", "")]]
        for by, key in keys.items():
            if key:
                t = self.tallies.get((by, key))
                if t is None:
                    t = self.tallies[(by, key)] = new_tally()
                out.append(t)
        return out

    def count(self, name: str, **keys: str | None) -> None:
        for t in self.at(**keys):
            t[name] += 1


def compute(rows: Iterable[Any], day: date, tz: ZoneInfo, hours: tuple[int, int],
            case_info: dict[str, tuple[str, str | None]],
            now: datetime | None = None) -> dict[tuple[str, str], Tally]:
    """One day's tallies from its events in the order written (``id``): rows with ``kind``,
    ``at``, ``ticket``, ``service``, ``window``, ``clerk`` and ``payload`` (JSON text).
    ``hours``: the hall's opening and closing minute (local), for late starts and early
    leaves; ``case_info``: each case's department and window; ``now``: for the current day,
    the moment a clerk still logged in counts up to (else the day's end)."""
    d = _Day()
    issued_at: dict[str, datetime] = {}
    started: dict[tuple[str, str | None], datetime] = {}     # (ticket, window) → start of service
    sessions: dict[tuple[str, str], datetime] = {}           # (clerk, window) → login
    first_login: dict[str, datetime] = {}
    last_logout: dict[str, tuple[datetime, str]] = {}
    day_start = datetime.combine(day, time(), tz)
    day_end = day_start + timedelta(days=1)
    if now is not None:
        day_end = max(day_start, min(day_end, now))
    attendance: list[tuple[str, str, float]] = []
    for r in rows:
        kind, at, ticket, service, window, clerk = r.kind, r.at, r.ticket, r.service, r.window, r.clerk
        if kind == "issued":
            issued_at[ticket] = at
            d.count("issued", service=service)
            hour = str(at.astimezone(tz).hour)
            for t in d.at(service=service):
                t["arrivals"][hour] = t["arrivals"].get(hour, 0) + 1
        elif kind == "called":
            payload = json.loads(r.payload)
            started[(ticket, window)] = at
            if payload.get("first") and ticket in issued_at:
                for t in d.at(service=service, window=window, clerk=clerk):
                    add_time(t["wait"], (at - issued_at[ticket]).total_seconds())
        elif kind == "serving":
            started[(ticket, window)] = at
        elif kind == "done":
            d.count("served", service=service, window=window, clerk=clerk)
            start = started.pop((ticket, window), None)
            if start is not None:
                for t in d.at(service=service, window=window, clerk=clerk):
                    add_time(t["service"], (at - start).total_seconds())
        elif kind == "no_show":
            d.count("no_show", service=service, window=window, clerk=clerk)
        elif kind == "cancelled":
            d.count("cancelled", service=service)
        elif kind == "transferred":
            payload = json.loads(r.payload)
            d.count("transferred", service=payload.get("from_service") or service, window=window, clerk=clerk)
        elif kind == "closed":
            d.count("closed", service=service, window=window)
        elif kind == "rated":
            level = json.loads(r.payload).get("level")
            for t in d.at(service=service, window=window, clerk=clerk):
                t["rated"] += 1
                t["levels"][level] = t["levels"].get(level, 0) + 1
                t["bad"] += level in BAD
        elif kind == "unrated":
            d.count("unrated", service=service, window=window, clerk=clerk)
        elif kind in ("case_opened", "case_step", "case_warning"):
            payload = json.loads(r.payload)
            department, case_window = case_info.get(payload.get("case", ""), (None, None))
            keys = {"department": department, "window": case_window}
            if kind == "case_opened":
                d.count("cases_opened", **keys)
            elif kind == "case_step" and payload.get("action") == "decide":
                d.count("cases_decided", **keys)
                if payload.get("on_time"):
                    d.count("cases_on_time", **keys)
            elif kind == "case_warning" and payload.get("colour") == "red":
                d.count("cases_overdue", **keys)
        elif kind == "login" and clerk and window:
            sessions[(clerk, window)] = at
            first_login.setdefault(clerk, at)
        elif kind == "logout" and clerk and window:
            since = sessions.pop((clerk, window), day_start)
            attendance.append((clerk, window, (at - since).total_seconds()))
            last_logout[clerk] = (at, window)
    for (clerk, window), since in sessions.items():          # still logged in at the day's end
        attendance.append((clerk, window, (day_end - since).total_seconds()))
        last_logout.pop(clerk, None)
    for clerk, window, seconds in attendance:
        for t in d.at(window=window, clerk=clerk):
            t["attendance_s"] += seconds
    opening = day_start + timedelta(minutes=hours[0])
    closing = day_start + timedelta(minutes=hours[1])
    for clerk, at in first_login.items():
        if at > opening:
            d.count("late_starts", clerk=clerk)
    for clerk, (at, _) in last_logout.items():
        if at < closing:
            d.count("early_leaves", clerk=clerk)
    return d.tallies


def hall_hours(config: Any) -> tuple[int, int]:
    """The hall's opening and closing minute (its first span's start, its last span's end)."""
    spans = config.hall.hours
    return (spans[0].start, spans[-1].end) if spans else (0, 24 * 60)


def day_tallies(conn: Connection, hall: str, day: date, tz: ZoneInfo,
                hours: tuple[int, int], now: datetime | None = None) -> dict[tuple[str, str], Tally]:
    """``day``'s tallies from its raw events (committed or written earlier in ``conn``'s
    transaction)."""
    e = events.c
    rows = conn.execute(select(e.kind, e.at, e.ticket, e.service, e.window, e.clerk, e.payload)
                        .where(e.hall == hall, e.day == day).order_by(e.id)).all()
    numbers = sorted({json.loads(r.payload).get("case") or "" for r in rows if r.kind.startswith("case_")})
    info: dict[str, tuple[str, str | None]] = {}
    c = cases.c
    for part in range(0, len(numbers), 500):
        for number, department, window in conn.execute(select(c.number, c.department, c.window).where(
                c.hall == hall, c.number.in_(numbers[part:part + 500]))):
            info[number] = (department, window)
    return compute(rows, day, tz, hours, info, now)


def write_day(conn: Connection, hall: str, day: date, tz: ZoneInfo, hours: tuple[int, int]) -> int:
    """(Re)write ``day``'s roll-up: delete, then insert; the hall's row is written even for
    an empty day, and marks the day as rolled up. How many rows."""
    tallies = day_tallies(conn, hall, day, tz, hours)
    s = daily_stats.c
    conn.execute(delete(daily_stats).where(s.hall == hall, s.day == day))
    conn.execute(daily_stats.insert(), [
        {"hall": hall, "day": day, "by": by, "key": key[:64], "data": t}
        for (by, key), t in tallies.items()])
    return len(tallies)


def read(conn: Connection, hall: str, since: date, until: date,
         by: str) -> tuple[set[date], list[tuple[date, str, Tally]]]:
    """The days in [since, until] with a roll-up, and the stored tallies of grouping ``by``
    with their day and key."""
    s = daily_stats.c
    days = set(conn.execute(select(s.day).where(s.hall == hall, s.day >= since, s.day <= until,
                                                 s.by == "hall")).scalars())
    rows = conn.execute(select(s.day, s.key, type_coerce(s.data, Text)).where(
        s.hall == hall, s.day >= since, s.day <= until, s.by == by)).all()
    # One decode for all the documents (a year per window: some 13,000, 10 MB), which lets the decoder
    # share their keys: about a tenth faster than decoding each as it comes.
    data = json.loads("[" + ",".join(text or "{}" for _, _, text in rows) + "]")
    return days, [(day, key, tally) for (day, key, _), tally in zip(rows, data, strict=True)]


#: A range of up to this many days is probed day by day (a period: the API allows 400).
PROBE_DAYS = 400


def days_with_events(conn: Connection, hall: str, since: date, until: date,
                     skip: Collection[date] = ()) -> list[date]:
    """The days in [since, until] that have events, less those in ``skip`` (a period's
    rolled-up days, whose events need not be looked at), in order. Each look-up reads a few
    entries of the (hall, day) index, however many events a day has: a period's days not
    skipped are probed one by one; a longer range (``yimen stats rollup`` from the beginning)
    is walked from each day with events to the next."""
    e = events.c
    if (until - since).days < PROBE_DAYS:
        probe = select(e.day).where(e.hall == hall, e.day == bindparam("day")).limit(1)
        days = (since + timedelta(days=i) for i in range((until - since).days + 1))
        return [day for day in days
                if day not in skip and conn.execute(probe, {"day": day}).first() is not None]
    following = select(func.min(e.day)).where(e.hall == hall, e.day >= bindparam("day"), e.day <= until)
    out: list[date] = []
    day = conn.execute(following, {"day": since}).scalar()
    while day is not None:
        if day not in skip:
            out.append(day)
        day = conn.execute(following, {"day": day + timedelta(days=1)}).scalar() if day < until else None
    return out


class RollupDay:
    """A statement of a batch for ``Repository.write``: the roll-up of the day a rollover
    finished, computed in the batch's own transaction after its events."""

    def __init__(self, hall: str, tz: ZoneInfo, hours: tuple[int, int]) -> None:
        self.hall, self.tz, self.hours = hall, tz, hours

    def run(self, conn: Connection, params: list[tuple[date]]) -> None:
        for (day,) in params:
            write_day(conn, self.hall, day, self.tz, self.hours)
