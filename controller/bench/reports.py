"""``yimen bench reports``: the statistics of a year of a county hall, on SQLite and PostgreSQL.

A year (2025) of a county hall is generated straight as rows — not through the engine, which
would take hours — into a fresh database: twelve services, 60 windows, 40 clerks, the working
days of the national calendar, 600,000 tickets with the event sequences the engine writes
(issued; called, first or again, recalled; serving; done or no-show; transfers, cancels and a
few tickets closed at the rollover; rating prompts rated or left unrated), the clerks' logins,
pauses and lunch breaks, 60,000 cases opened from the tickets served (``cases`` rows, their
``case_opened`` and ``case_step`` events up to the decision, warnings for the late ones),
400,000 ratings (``evaluations`` rows and ``rated`` events) and the follow-ups of the 差评,
a few of them appealed and upheld; about 4 million ``events`` rows in all, one rollover a
calendar day. The tickets are plausible rather than simulated: issue times across the opening
hours, waits and service times drawn per ticket, each served at a staffed window of its
service. The ``tickets`` table is not filled: statistics never read it.

Then, on each database, in the same run against the same data:

- the roll-up of every day of the year (``rollup.write_day``, the real code, each in its own
  transaction as at midnight), timed per day;
- a bare ``count(*)`` of the hall's events, and of the year's, as the baseline;
- the yearly report per window (``stats.period`` for 1 January – 31 December, the day after
  as today), the monthly one (November) and the monthly xlsx (``reports.monthly_xlsx``),
  each repeated and given as median and maximum.

Targets (the issue's): the yearly report under 1 s, the monthly one under 200 ms, one day's
roll-up under 1 s. ``--scale`` shrinks the tickets (and so the cases and ratings) for a quick
run; the days, windows and clerks stay.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller import stats
from controller.config import HallConfig, parse_config
from controller.core.calendar import WorkCalendar
from controller.reports import monthly_xlsx
from controller.storage import rollup, schema
from controller.storage.db import database_url, open_database, upgrade

YEAR = 2025
MONTH = date(YEAR, 11, 1)                # the monthly report's month
SEED = 2025
TICKETS = 600_000
CASES = 60_000
RATINGS = 400_000
YEARLY_TARGET_S = 1.0
MONTHLY_TARGET_S = 0.2
ROLLUP_TARGET_S = 1.0
PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
YEARLY = f"yearly report < {YEARLY_TARGET_S:g} s"
MONTHLY = f"monthly report < {MONTHLY_TARGET_S * 1000:.0f} ms"
ROLLUP = f"one day's roll-up < {ROLLUP_TARGET_S:g} s"

#: code → (name, department, mean service minutes, share of the arrivals)
SERVICES: dict[str, tuple[str, str, float, float]] = {
    "A": ("综合受理", "县政务服务中心", 9, 16), "B": ("不动产登记", "县自然资源局", 18, 12),
    "C": ("社会保险", "县人力资源和社会保障局", 6, 14), "D": ("医疗保障", "县医疗保障局", 6, 11),
    "E": ("住房公积金", "县住房公积金管理中心", 8, 6), "F": ("税务", "国家税务总局某县税务局", 12, 10),
    "G": ("市场主体登记", "县市场监督管理局", 15, 8), "H": ("户籍", "县公安局", 8, 7),
    "I": ("交通运输", "县交通运输局", 10, 3), "J": ("民政", "县民政局", 9, 4),
    "K": ("就业创业", "县人力资源和社会保障局", 7, 5), "L": ("出入境", "县公安局", 9, 4),
}
CODES = tuple(SERVICES)
WINDOWS = 60
CLERKS = 40                                         # clerk i's own window is i; 41–60 are spare
HOURS = ("08:30-12:00", "13:30-17:30")
LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
LEVEL_WEIGHTS = (80, 14, 4, 1.5, 0.5)
REASONS = ("attitude", "efficiency", "process", "environment", "other")
#: what becomes of a ticket, and how often
FATES = ("served", "no_show", "transferred", "cancelled", "closed")
FATE_SHARES = (0.895, 0.05, 0.03, 0.02, 0.005)
SERVED_SHARE = FATE_SHARES[0] + FATE_SHARES[2]


def hall_config() -> HallConfig:
    return parse_config({
        "hall": {"id": "county", "name": "某县政务服务中心", "region": "330100", "hours": list(HOURS),
                 "days": ["mon", "tue", "wed", "thu", "fri"]},
        "services": [{"code": c, "name": n, "avg_service_min": m, "daily_cap": 99999}
                     for c, (n, _, m, _) in SERVICES.items()],
        "windows": [{"id": str(w), "services": [_service_of(w)]} for w in range(1, WINDOWS + 1)],
        "clerks": [{"id": f"{8000 + i}", "name": f"员{i}", "windows": [str(i)]}
                   for i in range(1, CLERKS + 1)],
    }, "<bench reports>")


def _service_of(window: int) -> str:
    return CODES[(window - 1) % len(CODES)]


Row = dict[str, Any]


@dataclass
class Batch:
    """One day's rows, by table."""

    rows: dict[Table, list[Row]] = field(default_factory=dict)

    def add(self, table: Table, row: Row) -> None:
        self.rows.setdefault(table, []).append(row)


@dataclass
class Counts:
    tickets: int = 0
    events: int = 0
    cases: int = 0
    ratings: int = 0
    sessions: int = 0
    followups: int = 0
    working_days: int = 0


class Year:
    """The generated year, day by day, from a fixed seed: each ``Batch`` is a day's rows
    (events in time order), with the events a case or a follow-up leaves on later days."""

    def __init__(self, config: HallConfig, scale: float = 1.0, seed: int = SEED) -> None:
        self.config, self.hall, self.tz = config, config.hall.id, config.hall.tz
        self.rng = random.Random(seed)
        self.cal = WorkCalendar(config.hall)
        self.days = [date(YEAR, 1, 1) + timedelta(days=d) for d in range(365)]
        working = [d for d in self.days if self.cal.is_working_day(d)]
        self.tickets_on = self._share(working, round(TICKETS * scale))
        served = TICKETS * SERVED_SHARE
        self.p_rated = RATINGS / served
        self.p_case = CASES / served
        self.pending: dict[date, list[Row]] = {}    # events due on a later day
        self.counts = Counts(working_days=len(working))
        self.closed_before = 0
        self.stamp = 0

    def _share(self, days: list[date], total: int) -> dict[date, int]:
        """``total`` tickets over ``days``: Mondays busiest, Fridays quietest."""
        weight = {0: 1.25, 1: 1.05, 2: 1.0, 3: 0.95, 4: 0.85, 5: 0.9, 6: 0.9}
        w = [weight[d.weekday()] * self.rng.uniform(0.9, 1.1) for d in days]
        counts = [int(total * x / sum(w)) for x in w]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        return dict(zip(days, counts, strict=True))

    def __iter__(self) -> Iterator[tuple[date, Batch]]:
        for day in self.days:
            yield day, self.day(day)

    # ------------------------------------------------------------------ rows
    def at(self, day: date, seconds: float) -> datetime:
        return datetime.combine(day, clock(), self.tz) + timedelta(seconds=seconds)

    def event(self, day: date, at: datetime, kind: str, ticket: str | None = None,
              number: str | None = None, service: str | None = None, window: str | None = None,
              clerk: str | None = None, actor: str = "system", origin: str = "scheduler",
              payload: str = "{}") -> Row:
        return {"hall": self.hall, "v": 2, "day": day, "at": at, "kind": kind, "ticket": ticket,
                "number": number, "service": service, "window": window, "clerk": clerk,
                "actor": actor, "origin": origin, "payload": payload}

    def session_id(self, ticket: str, window: str, at: datetime) -> str:
        self.stamp = max(int(at.timestamp() * 1_000_000), self.stamp + 1)
        return f"{ticket}@{window}@{self.stamp}"

    def day(self, day: date) -> Batch:
        batch = Batch()
        rows: list[Row] = [self.event(day, self.at(day, 0), "rollover", payload=json.dumps(
            {"from_day": (day - timedelta(days=1)).isoformat(), "to_day": day.isoformat(),
             "closed": self.closed_before}))]
        self.closed_before = 0
        n = self.tickets_on.get(day, 0)
        if n:
            staff = self.staff(day, rows)
            self.tickets(day, n, staff, rows, batch)
        rows += self.pending.pop(day, [])
        rows.sort(key=lambda r: r["at"])            # ids in time order, as the engine writes
        batch.rows[schema.events] = rows
        self.counts.events += len(rows)
        return batch

    def staff(self, day: date, rows: list[Row]) -> dict[str, list[tuple[str, str]]]:
        """Who works where today (a few on leave, some at a spare window of their service),
        with their logins, pauses and lunch breaks; the staffed windows by service."""
        rng = self.rng
        by_service: dict[str, list[tuple[str, str]]] = {}
        for i in range(1, CLERKS + 1):
            if rng.random() < 0.07:
                continue
            clerk, service = f"{8000 + i}", _service_of(i)
            spare = [w for w in range(CLERKS + 1, WINDOWS + 1) if _service_of(w) == service]
            window = str(rng.choice(spare) if spare and rng.random() < 0.15 else i)
            by_service.setdefault(service, []).append((window, clerk))
            actor = f"staff:{clerk}"
            for start, end in ((8 * 60 + 30, 12 * 60), (13 * 60 + 30, 17 * 60 + 30)):
                login = self.at(day, (start - rng.uniform(-4, 12)) * 60)
                logout = self.at(day, (end + rng.uniform(-8, 6)) * 60)
                rows.append(self.event(day, login, "login", window=window, clerk=clerk, actor=actor,
                                       origin="mqtt", payload='{"role": "A"}'))
                pause = login + timedelta(minutes=rng.uniform(30, 150))
                if rng.random() < 0.8 and pause < logout - timedelta(minutes=20):
                    rows.append(self.event(day, pause, "paused", window=window, clerk=clerk, actor=actor,
                                           origin="mqtt"))
                    rows.append(self.event(day, pause + timedelta(minutes=rng.uniform(3, 15)), "resumed",
                                           window=window, clerk=clerk, actor=actor, origin="mqtt"))
                rows.append(self.event(day, logout, "logout", window=window, clerk=clerk, actor=actor,
                                       origin="mqtt"))
        return by_service

    def tickets(self, day: date, n: int, staff: dict[str, list[tuple[str, str]]], rows: list[Row],
                batch: Batch) -> None:
        rng, event = self.rng, self.event
        anyone = [p for people in staff.values() for p in people]
        shares = [s[3] for s in SERVICES.values()]
        seq = dict.fromkeys(CODES, 0)
        issue_times = sorted(rng.uniform(8.5 * 3600, 11.9 * 3600) if rng.random() < 0.55
                             else rng.uniform(13.5 * 3600, 17.3 * 3600) for _ in range(n))
        for seconds in issue_times:
            s = rng.choices(CODES, shares)[0]
            seq[s] += 1
            number = f"{s}{seq[s]:03d}"
            tid = f"{day:%Y%m%d}-{number}"
            issued = self.at(day, seconds)
            rows.append(event(day, issued, "issued", tid, number, s, actor=f"device:kiosk-{seq[s] % 4}",
                              origin="mqtt", payload='{"priority": "ordinary"}'))
            self.counts.tickets += 1
            fate = rng.choices(FATES, FATE_SHARES)[0]
            if fate == "cancelled":
                rows.append(event(day, issued + timedelta(minutes=rng.uniform(1, 30)), "cancelled", tid,
                                  number, s, actor="device:kiosk-1", origin="mqtt"))
                continue
            if fate == "closed":
                rows.append(event(day, self.at(day + timedelta(days=1), 0), "closed", tid, number, s,
                                  payload='{"reason": "rollover"}'))
                self.closed_before += 1
                continue
            window, clerk = rng.choice(staff.get(s) or anyone)
            caller = f"device:caller-w{window}"
            called = issued + timedelta(minutes=min(150.0, rng.gammavariate(2, 7)))
            first = json.dumps({"how": "next", "first": True, "first_called_at": called.isoformat()})
            rows.append(event(day, called, "called", tid, number, s, window, clerk, caller, "mqtt", first))
            if fate == "no_show":
                for k in (1, 2):
                    rows.append(event(day, called + timedelta(seconds=40 * k), "recalled", tid, number, s,
                                      window, clerk, caller, "mqtt", f'{{"recalls": {k}}}'))
                rows.append(event(day, called + timedelta(seconds=130), "no_show", tid, number, s, window,
                                  clerk, caller, "mqtt", '{"reason": "recall_limit"}'))
                continue
            if rng.random() < 0.3:
                called += timedelta(seconds=40)
                rows.append(event(day, called, "recalled", tid, number, s, window, clerk, caller, "mqtt",
                                  '{"recalls": 1}'))
            start = called + timedelta(seconds=rng.uniform(20, 90))
            rows.append(event(day, start, "serving", tid, number, s, window, clerk, caller, "mqtt"))
            if fate == "transferred":
                to = rng.choice([c for c in CODES if c != s])
                moved = start + timedelta(minutes=rng.uniform(1, 5))
                rows.append(event(day, moved, "transferred", tid, number, to, window, clerk, caller, "mqtt",
                                  json.dumps({"from_service": s, "to_service": to, "to_window": None})))
                s, (window, clerk) = to, rng.choice(staff.get(to) or anyone)
                caller = f"device:caller-w{window}"
                called = moved + timedelta(minutes=min(150.0, rng.gammavariate(2, 5)))
                rows.append(event(day, called, "called", tid, number, s, window, clerk, caller, "mqtt",
                                  json.dumps({"how": "next", "first": False,
                                              "first_called_at": called.isoformat()})))
                start = called + timedelta(seconds=rng.uniform(20, 90))
                rows.append(event(day, start, "serving", tid, number, s, window, clerk, caller, "mqtt"))
            done = start + timedelta(minutes=max(1.0, rng.gammavariate(2, SERVICES[s][2] / 2)))
            rows.append(event(day, done, "done", tid, number, s, window, clerk, caller, "mqtt"))
            case = self.case(day, done, tid, number, s, window, clerk, rows, batch) \
                if rng.random() < self.p_case else None
            self.rating(day, done, tid, number, s, window, clerk, case, rows, batch)

    def rating(self, day: date, done: datetime, tid: str, number: str, service: str, window: str,
               clerk: str, case: str | None, rows: list[Row], batch: Batch) -> None:
        """The prompt after a service: rated, or left to time out (未评价)."""
        rng = self.rng
        opened = done + timedelta(seconds=1)
        session = self.session_id(tid, window, opened)
        pad = f"device:evaluator-w{window}"
        rows.append(self.event(day, opened, "evaluation_opened", tid, number, service, window, clerk,
                               pad, "mqtt", json.dumps({"session": session})))
        level: str | None = None
        reasons: tuple[str, ...] = ()
        if rng.random() < self.p_rated:
            level = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
            if level in rollup.BAD:
                reasons = tuple(rng.sample(REASONS, rng.randint(1, 2)))
            closed = opened + timedelta(seconds=rng.uniform(3, 40))
            payload = json.dumps({"session": session, "level": level, "reasons": list(reasons)})
            rows.append(self.event(day, closed, "rated", tid, number, service, window, clerk, pad, "mqtt",
                                   payload))
            self.counts.ratings += 1
        else:
            closed = opened + timedelta(seconds=60)
            rows.append(self.event(day, closed, "unrated", tid, number, service, window, clerk,
                                   payload=json.dumps({"session": session})))
        self.counts.sessions += 1
        batch.add(schema.evaluations, {
            "hall": self.hall, "id": session, "window": window, "clerk": clerk, "ticket": tid,
            "number": number, "service": service, "opened_at": opened, "timeout_s": 60, "closed_at": closed,
            "level": level, "reasons": reasons, "case": case})
        if level in rollup.BAD:
            self.followup(day, closed, session, tid, number, service, window, clerk, case, level, reasons,
                          rows, batch)

    def followup(self, day: date, at: datetime, session: str, tid: str, number: str, service: str,
                 window: str, clerk: str, case: str | None, level: str, reasons: tuple[str, ...],
                 rows: list[Row], batch: Batch) -> None:
        """A 差评's follow-up: visited and closed, or appealed and upheld (申诉成立)."""
        rng, cal = self.rng, self.cal
        visit_due, rectify_due = cal.add_working_days(day, 1), cal.add_working_days(day, 10)
        common = {"ticket": tid, "number": number, "service": service, "window": window, "clerk": clerk}
        rows.append(self.event(day, at, "followup_opened", **common, payload=json.dumps(
            {"session": session, "visit_due": visit_due.isoformat(),
             "rectify_due": rectify_due.isoformat()})))
        upheld = rng.random() < 0.08
        steps = [("open", "appeal", "appealed"), ("appealed", "uphold", "excluded")] if upheld else [
            ("open", "visit", "visited"), ("visited", "rectify", "rectified"),
            ("rectified", "feed_back", "fed_back"), ("fed_back", "close", "closed")]
        state, closed_at, on = "open", None, day
        for before, action, after in steps:
            on = cal.add_working_days(on, rng.randint(1, 2))
            if on.year != YEAR:
                break
            when = self.at(on, rng.uniform(9, 17) * 3600)
            self.later(on, self.event(on, when, "followup_step", **common, actor="user:supervisor",
                                      origin="http", payload=json.dumps(
                                          {"session": session, "action": action, "before": before,
                                           "after": after})))
            state = after
            closed_at = when if after in ("closed", "excluded") else None
        self.counts.followups += 1
        batch.add(schema.followups, {
            **common, "hall": self.hall, "id": session, "case": case, "level": level, "reasons": reasons,
            "opened_at": at, "opened_on": day, "visit_due": visit_due, "rectify_due": rectify_due,
            "state": state, "back_to": None, "notes": "", "appealed_by": "user:chief" if upheld else None,
            "rerating": None, "colour": "none" if closed_at else "green", "closed_at": closed_at})

    def later(self, on: date, row: Row) -> None:
        """An event of a later day (or of today, before the day's rows are sorted)."""
        self.pending.setdefault(on, []).append(row)

    def case(self, day: date, done: datetime, tid: str, number: str, service: str, window: str,
             clerk: str, rows: list[Row], batch: Batch) -> str:
        """A case opened during the service: 即办件 decided on the spot, 承诺件 handed off,
        reviewed and decided on a later working day (a few late, warned yellow then red),
        联办件 through two departments' parts."""
        rng, cal = self.rng, self.cal
        self.counts.cases += 1
        serial = self.counts.cases
        case = f"{self.config.hall.region}-{self.hall}-{day:%Y%m%d}-{serial:05d}"
        form = rng.choices(("instant", "promised", "joint"), (40, 55, 5))[0]
        limit = 0 if form == "instant" else rng.choice((1, 3, 5, 7, 10, 15, 20))
        due = cal.add_working_days(day, limit)
        accepted = done - timedelta(minutes=2)
        desk = f"user:desk{clerk}"
        department = SERVICES[service][1]
        matter = f"{service}-{rng.randint(1, 60):03d}"
        opened = {"case": case, "matter": matter, "form": form,
                  "state": "accepted", "accepted_on": day.isoformat(), "due": due.isoformat(),
                  "tolerated": False, "missing": 0}
        rows.append(self.event(day, accepted, "case_opened", tid, actor=desk, origin="http",
                               payload=json.dumps(opened)))
        late = form != "instant" and rng.random() < 0.06
        steps: list[tuple[date, str, dict[str, Any]]] = []
        if form == "instant":
            decided_on = day
        else:
            decided_on = cal.add_working_days(due, rng.randint(1, 5)) if late \
                else cal.add_working_days(day, rng.randint(1, limit))
            partners = [department] if form == "promised" else [department, "县消防救援大队"]
            steps += [(day, "hand_off", {"before": "accepted", "after": "handed_off", "to": partners}),
                      (min(cal.add_working_days(day, 1), decided_on), "review",
                       {"before": "handed_off", "after": "in_review"})]
            if form == "joint":
                steps += [(decided_on, "complete_task", {"before": "in_review", "after": "in_review",
                                                         "task": f"{case}/{k}", "open_tasks": 1 - k})
                          for k in (0, 1)]
        steps.append((decided_on, "decide", {"before": steps[-1][2]["after"] if steps else "accepted",
                                             "after": "decided", "decision": "approved",
                                             "on_time": not late}))
        state, when, decided_at = "accepted", accepted, None
        for on, action, detail in steps:
            if on.year != YEAR:
                break
            when += timedelta(minutes=1)                # on the spot, or some time on a later day
            if on != day:
                when = max(when, self.at(on, rng.uniform(9, 16) * 3600))
            payload = json.dumps({"case": case, "action": action, **detail, "due": due.isoformat()})
            self.later(on, self.event(on, when, "case_step", tid, actor=desk, origin="http", payload=payload))
            state = detail["after"]
            decided_at = when if action == "decide" else None
        for on, before, colour in ((due, "green", "yellow"), (cal.add_working_days(due, 1), "yellow", "red")):
            if late and on.year == YEAR:
                self.later(on, self.event(on, self.at(on, 60), "case_warning", payload=json.dumps(
                    {"case": case, "before": before, "colour": colour, "due": due.isoformat()})))
        batch.add(schema.cases, {
            "hall": self.hall, "number": case, "serial": serial, "matter": matter,
            "matter_name": f"{SERVICES[service][0]}事项", "form": form, "department": department,
            "state": state, "accepted_on": day, "accepted_at": accepted, "limit_days": limit, "due": due,
            "token": f"{rng.getrandbits(64):016x}", "query_code": f"{rng.randrange(10**6):06d}",
            "applicant": "张**", "id_sealed": None, "id_masked": None, "phone": None, "ticket": tid,
            "ticket_number": number, "window": window, "handler": f"staff:{clerk}",
            "materials": ("申请书", "身份证件"), "missing": (), "tolerated": False, "late_entry": False,
            "notes": "", "pauses": (), "paused_from": None, "back_to": None,
            "decision": "approved" if decided_at else None, "reasons": "",
            "decided_on": decided_on if decided_at else None, "finished_at": decided_at,
            "colour": "none" if decided_at else "red" if late and due < date(YEAR, 12, 31) else "green"})
        return case


# ---------------------------------------------------------------------- databases
@dataclass
class Database:
    """A fresh database: its engine (for the statistics, as the server reads), and how the
    generated rows go in fast."""

    name: str
    db: AsyncEngine
    loader: Any                 # PostgreSQL: an asyncpg connection for COPY; SQLite: None
    path: Path | None = None
    write_s: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)

    async def write(self, batch: Batch) -> None:
        """A day's rows in one transaction: on SQLite one ``executemany`` per table, on
        PostgreSQL one ``COPY``; each value converted as its column's type binds it."""
        t0 = time.perf_counter()
        if self.loader is None:
            async with self.db.begin() as conn:
                for table, rows in batch.rows.items():
                    names, records = self._records(table, rows)
                    columns = ", ".join(f'"{n}"' for n in names)
                    await conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({columns}) VALUES '
                                               f'({", ".join("?" * len(names))})', records)
        else:
            async with self.loader.transaction():
                for table, rows in batch.rows.items():
                    names, records = self._records(table, rows)
                    await self.loader.copy_records_to_table(table.name, records=records, columns=names)
        self.write_s += time.perf_counter() - t0

    def _records(self, table: Table, rows: list[Row]) -> tuple[list[str], list[tuple[Any, ...]]]:
        dialect = self.db.dialect
        names = list(rows[0])
        get = itemgetter(*names)
        procs = [(i, p) for i, n in enumerate(names)
                 if (p := table.c[n].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
        if not procs:
            return names, [get(r) for r in rows]
        records = []
        for r in rows:
            values = list(get(r))
            for i, p in procs:
                values[i] = p(values[i])
            records.append(tuple(values))
        return names, records

    async def size(self) -> int:
        if self.path is not None:
            return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return int(await self.loader.fetchval("SELECT pg_database_size(current_database())"))


@asynccontextmanager
async def sqlite_database(folder: Path) -> AsyncIterator[Database]:
    url = database_url(None, folder)
    db = open_database(url)
    try:
        await upgrade(db)
        yield Database("SQLite", db, None, Path(db.url.database or ""))
    finally:
        await db.dispose()


@asynccontextmanager
async def pg_database(admin_url: str) -> AsyncIterator[Database]:
    """A throwaway database ``yimen_bench_…`` on the server of ``admin_url``, dropped after."""
    import asyncpg  # type: ignore[import-untyped]

    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    base, name = dsn.rsplit("/", 1)[0], f"yimen_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        db = open_database(database_url(f"{base}/{name}", "."))
        loader = None
        try:
            await upgrade(db)
            loader = await asyncpg.connect(f"{base}/{name}")
            yield Database("PostgreSQL", db, loader)
        finally:
            if loader is not None:
                await loader.close()
            await db.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def load(year: Year, targets: list[Database]) -> float:
    """The year written into every database, day by day; seconds spent building rows."""
    built, t0 = 0.0, time.perf_counter()
    days = iter(year)
    while True:
        s = time.perf_counter()
        item = next(days, None)
        built += time.perf_counter() - s
        if item is None:
            return built
        day, batch = item
        for target in targets:
            await target.write(batch)
        if day.month != (day + timedelta(days=1)).month:
            c = year.counts
            _say(f"  {day:%Y-%m}: {c.tickets:,} tickets, {c.events:,} events, {c.cases:,} cases, "
                 f"{c.ratings:,} ratings ({time.perf_counter() - t0:.0f} s)")


async def roll_up(target: Database, config: HallConfig, days: list[date]) -> dict[date, float]:
    """Every day's roll-up, each in its own transaction as at the rollover; seconds per day."""
    hall, tz, hours = config.hall.id, config.hall.tz, rollup.hall_hours(config)
    out: dict[date, float] = {}
    for day in days:
        t0 = time.perf_counter()
        async with target.db.begin() as conn:
            await conn.run_sync(rollup.write_day, hall, day, tz, hours)
        out[day] = time.perf_counter() - t0
        if day.month != (day + timedelta(days=1)).month:
            _say(f"  {target.name}: roll-ups up to {day:%Y-%m} ({sum(out.values()):.0f} s)")
    return out


async def measure(target: Database, config: HallConfig, repeats: int) -> dict[str, Any]:
    """The baseline counts and the reports, in rounds, each round every measure once."""
    hall, e = config.hall.id, schema.events.c
    first, last, today = date(YEAR, 1, 1), date(YEAR, 12, 31), date(YEAR + 1, 1, 1)
    month_end = (MONTH + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    count_all = select(func.count()).select_from(schema.events).where(e.hall == hall)
    count_year = count_all.where(e.day >= first, e.day <= last)
    times: dict[str, list[float]] = {k: [] for k in ("count_all", "count_year", "yearly", "monthly", "xlsx")}
    out: dict[str, Any] = {"times": times}
    monthly_xlsx(config.hall.name, MONTH, [])          # openpyxl imported before the clock runs
    for _ in range(repeats):
        for name, query in (("count_all", count_all), ("count_year", count_year)):
            t0 = time.perf_counter()
            async with target.db.connect() as conn:
                out[name] = (await conn.execute(query)).scalar_one()
            times[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out["yearly_rows"] = await stats.period(target.db, config, first, last, "window", today)
        times["yearly"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        monthly = await stats.period(target.db, config, MONTH, month_end, "window", today)
        times["monthly"].append(time.perf_counter() - t0)
        out["monthly_rows"] = len(monthly)
        t0 = time.perf_counter()
        out["xlsx_bytes"] = len(monthly_xlsx(config.hall.name, MONTH, monthly))
        times["xlsx"].append(time.perf_counter() - t0)
    return out


async def run(which: str = "both", scale: float = 1.0, pg_url: str = PG_ADMIN,
              repeats: int = 5) -> dict[str, Any]:
    config = hall_config()
    year = Year(config, scale)
    with tempfile.TemporaryDirectory(prefix="yimen-bench-reports-") as tmp:
        async with AsyncExitStack() as stack:
            targets = []
            if which in ("sqlite", "both"):
                targets.append(await stack.enter_async_context(sqlite_database(Path(tmp))))
            if which in ("postgres", "both"):
                targets.append(await stack.enter_async_context(pg_database(pg_url)))
            _say(f"generating a year of a county hall into {', '.join(t.name for t in targets)} …")
            t0 = time.perf_counter()
            built_s = await load(year, targets)
            generated_s = time.perf_counter() - t0
            working = sorted(year.tickets_on)
            for target in targets:
                r = target.results
                if target.loader is not None:        # a year-old table has been vacuumed and analysed
                    t1 = time.perf_counter()
                    await target.loader.execute("VACUUM ANALYZE")
                    r["vacuum_s"] = time.perf_counter() - t1
                _say(f"{target.name}: rolling up {len(year.days)} days …")
                rolled = await roll_up(target, config, year.days)
                if target.loader is not None:
                    await target.loader.execute("ANALYZE daily_stats")
                r["rollup"] = [rolled[d] for d in working]
                r["rollup_all_max"] = max(rolled.values())
                r["rollup_total_s"] = sum(rolled.values())
                _say(f"{target.name}: measuring, {repeats} rounds …")
                r.update(await measure(target, config, repeats))
                r["write_s"] = target.write_s
                r["size"] = await target.size()
            results = {t.name: t.results for t in targets}
    return {"counts": year.counts, "scale": scale, "generated_s": generated_s, "built_s": built_s,
            "repeats": repeats, "databases": results}


# ---------------------------------------------------------------------- report
def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:,.0f} / {max(values) * 1000:,.0f} ms"


def checks(out: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(database, target, met) for each target."""
    res = []
    for name, r in out["databases"].items():
        t = r["times"]
        res += [(name, YEARLY, max(t["yearly"]) < YEARLY_TARGET_S),
                (name, MONTHLY, max(t["monthly"]) < MONTHLY_TARGET_S),
                (name, ROLLUP, max(r["rollup"]) < ROLLUP_TARGET_S)]
    return res


def report(out: dict[str, Any]) -> str:
    c: Counts = out["counts"]
    dbs = out["databases"]
    names = list(dbs)
    ok = {(n, t): met for n, t, met in checks(out)}

    def line(label: str, cell: Any, target: str = "") -> str:
        cells = [cell(dbs[n], n) for n in names]
        return f"| {label} | " + " | ".join(cells) + f" | {target} |"

    def timed(key: str, target: str = "") -> Any:
        return lambda r, n: _ms(r["times"][key]) + (
            "" if not target else " ✓" if ok[(n, target)] else " ✗")

    first = dbs[names[0]]
    yearly = first["yearly_rows"]
    served = sum(row["served"] for row in yearly)
    rated = sum(row["ratings"]["rated"] for row in yearly)
    scaled = "" if out["scale"] == 1 else f" at scale {out['scale']:g}"
    lines = [
        f"a year ({YEAR}) of a county hall{scaled}: "
        f"{c.working_days} working days, {c.tickets:,} tickets, {c.events:,} events, {c.cases:,} cases, "
        f"{c.ratings:,} ratings ({c.sessions:,} rating prompts, {c.followups:,} 差评 follow-ups)",
        f"generated in {out['generated_s']:.0f} s (rows built {out['built_s']:.0f} s; written: "
        + ", ".join(f"{n} {dbs[n]['write_s']:.0f} s" for n in names) + ")"
        + "".join(f"; {n} VACUUM ANALYZE {dbs[n]['vacuum_s']:.0f} s" for n in names if "vacuum_s" in dbs[n]),
        f"yearly report per window: {len(yearly)} windows, {served:,} served, {rated:,} ratings",
        "",
        f"| measure (median / max of {out['repeats']}) | " + " | ".join(names) + " | target |",
        "|---|" + "---:|" * len(names) + "---|",
        line(f"`count(*)` of the hall's events ({first['count_all']:,})", timed("count_all"), "baseline"),
        line(f"`count(*)` of the year's events ({first['count_year']:,})", timed("count_year"), "baseline"),
        line(f"yearly report per window ({len(yearly)} rows)", timed("yearly", YEARLY), "< 1 s"),
        line(f"monthly report per window ({MONTH:%Y-%m}, {first['monthly_rows']} rows)",
             timed("monthly", MONTHLY), "< 200 ms"),
        line("monthly xlsx, the workbook alone", timed("xlsx")),
        line(f"one day's roll-up (median / max of {c.working_days} working days)",
             lambda r, n: _ms(r["rollup"]) + (" ✓" if ok[(n, ROLLUP)] else " ✗"), "< 1 s"),
        line("roll-ups of all 365 days (total; slowest)",
             lambda r, n: f"{r['rollup_total_s']:.0f} s; {r['rollup_all_max'] * 1000:,.0f} ms"),
        line("database size", lambda r, n: f"{r['size'] / 2**20:,.0f} MiB"),
    ]
    missed = [f"{n}: {t}" for n, t, met in checks(out) if not met]
    lines += ["", "targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed))]
    return "\n".join(lines)


def main(which: str = "both", scale: float = 1.0, pg_url: str = PG_ADMIN, repeats: int = 5) -> dict[str, Any]:
    return asyncio.run(run(which, scale, pg_url, repeats))
