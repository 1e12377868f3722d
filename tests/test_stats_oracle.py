"""The statistics oracle: a simulated month of a busy hall, driven through the engine at high
speed on a fake clock, and every figure ``controller.stats`` gives for it (per hall, service,
window and clerk) recomputed here straight from the raw ``events`` rows by plain loops, with
nothing shared with ``controller.stats`` or ``controller.storage.rollup``.

Counts, sums, means, maxima and hours must be equal; medians and 90th percentiles are read
from whole-minute histograms, so they must lie within half a minute of the exact
nearest-rank value."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from controller.clock import FakeClock
from controller.config import parse_config
from controller.core.commands import (
    SYSTEM,
    CallNext,
    Cancel,
    CaseStep,
    Done,
    Evaluate,
    ExpireEvaluation,
    Login,
    Logout,
    NoShow,
    OpenCase,
    Origin,
    Rate,
    Rollover,
    SetMatters,
    Source,
    Start,
    Take,
    Transfer,
)
from controller.core.errors import Refused
from controller.engine import Engine
from controller.stats import period, rebuild
from controller.storage import schema

TZ = ZoneInfo("Asia/Shanghai")
FIRST = date(2026, 11, 2)            # a Monday
DAYS = 28
OPEN, CLOSE = 9 * 60, 17 * 60
CLERK = Source("user:clerk", Origin.HTTP)
KIOSK = Source("device:kiosk-1", Origin.MQTT)
PAD = Source("device:evaluator", Origin.MQTT)
SERVES = {"1": ("A",), "2": ("A",), "3": ("B",), "4": ("A", "B")}
LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
#: the matters cases are opened for, and the (department, window) the test knows each belongs to
MATTERS = [{"code": "M2", "name": "个体工商户变更登记", "department": "市场监管局", "promised_days": 2,
            "statutory_days": 5, "windows": ["1"]},
           {"code": "M5", "name": "不动产抵押登记", "department": "不动产登记中心", "promised_days": 5,
            "statutory_days": 10, "windows": ["3"]},
           {"code": "I0", "name": "户籍证明", "department": "公安局", "form": "instant", "promised_days": 0,
            "windows": ["2"]}]
OWNER = {m["code"]: (m["department"], m["windows"][0]) for m in MATTERS}
OPENS = {"1": "M2", "3": "M5", "2": "I0"}              # the window a case is opened at → its matter


def config():  # noqa: ANN201
    return parse_config({
        "hall": {"id": "oracle", "name": "统计校验大厅", "national_calendar": False,
                 "hours": ["09:00-17:00"]},
        "services": [{"code": "A", "name": "综合", "avg_service_min": 6},
                     {"code": "B", "name": "不动产", "avg_service_min": 10}],
        "windows": [{"id": "1", "services": ["A"]}, {"id": "2", "services": ["A"]},
                    {"id": "3", "services": ["B"]}, {"id": "4", "services": ["B", "A"]}],
        "clerks": [{"id": "1001", "name": "甲", "windows": ["1"]},
                   {"id": "1002", "name": "乙", "windows": ["2"]},
                   {"id": "1003", "name": "丙", "windows": ["3"]},
                   {"id": "1004", "name": "丁", "windows": ["4"]},
                   {"id": "1005", "name": "戊", "windows": ["4"]}],
    }, "<oracle>")


async def run(engine: Engine, command: Any, source: Source = CLERK) -> dict[str, Any] | None:
    try:
        return await engine.execute(command, source)
    except Refused:
        return None


class Window:
    """One window's clerk and the ticket at it, moved on one step a minute."""

    def __init__(self, engine: Engine, rng: random.Random, wid: str,
                 cases: list[tuple[date, str]]) -> None:
        self.engine, self.rng, self.id, self.cases = engine, rng, wid, cases
        self.day = FIRST
        self.clerk: str | None = None
        self.ticket: str | None = None
        self.step = ""
        self.left = 0

    async def tick(self, minute: int, plan: dict[str, Any]) -> None:
        e, rng, w = self.engine, self.rng, self.id
        if self.clerk is None:
            if plan["login"] <= minute < plan["logout"] and not (plan["lunch"] and 720 <= minute < 750):
                if await run(e, Login(window=w, staff=plan["clerk"])) is not None:
                    self.clerk = plan["clerk"]
            return
        if self.ticket is None:
            if minute >= plan["logout"] or (plan["lunch"] and 720 <= minute < 750):
                if not (plan["overnight"] and minute >= plan["logout"]):
                    await run(e, Logout(window=w))
                    self.clerk = None
                return
            if not any(e.hall.waiting(s) for s in SERVES[w]):       # nothing to call: no command
                return
            reply = await run(e, CallNext(window=w))
            if reply and reply.get("ticket"):
                self.ticket, self.step, self.left = reply["ticket"]["number"], "called", rng.randint(0, 2)
            return
        if self.left > 0:
            self.left -= 1
            return
        if self.step == "called":
            roll = rng.random()
            if roll < 0.05:
                await run(e, NoShow(window=w))
                self.ticket = None
            elif roll < 0.09:
                other = "B" if (self.ticket or "").startswith("A") else "A"
                await run(e, Transfer(window=w, to_service=other))
                self.ticket = None
            else:
                await run(e, Start(window=w))
                self.step, self.left = "serving", rng.randint(1, 14)
        elif self.step == "serving":
            if w in OPENS and rng.random() < 0.15:                       # 受理 a case for it
                opened = await run(e, OpenCase(matter=OPENS[w], applicant="张三", ticket=self.ticket))
                if opened and OPENS[w] == "I0":
                    await run(e, CaseStep(number=opened["case"]["number"], action="decide"))
                elif opened:                                             # decided in 0–7 days
                    self.cases.append((self.day + timedelta(days=rng.randint(0, 7)),
                                       opened["case"]["number"]))
            reply = await run(e, Evaluate(window=w))
            session = reply["evaluation"]["session"] if reply else None
            roll = rng.random()
            if session and roll < 0.7:
                level = rng.choices(LEVELS, weights=(50, 30, 10, 6, 4))[0]
                reasons = ("attitude",) if level in LEVELS[3:] else ()
                await run(e, Rate(window=w, session=session, level=level, reasons=reasons), PAD)
            elif session and roll < 0.85:
                await run(e, ExpireEvaluation(session=session), SYSTEM)
            await run(e, Done(window=w))       # a session left open closes unrated at the next
            self.ticket = None


def day_plan(rng: random.Random, n: int) -> dict[str, dict[str, Any]]:
    plans = {}
    for w in ("1", "2", "3", "4"):
        clerk = "1005" if w == "4" and n % 3 == 0 else f"100{w}"
        late = rng.random() < 0.2
        early = rng.random() < 0.15
        plans[w] = {"clerk": clerk, "login": OPEN - 10 + (rng.randint(11, 25) if late else 0),
                    "logout": CLOSE - 30 if early else CLOSE + 5, "lunch": w == "2" and n % 2 == 0,
                    "overnight": w == "3" and n == 10}
    return plans


async def simulate(engine: Engine, clock: FakeClock, seed: int = 7) -> None:
    rng = random.Random(seed)
    cases: list[tuple[date, str]] = []
    windows = {w: Window(engine, rng, w, cases) for w in ("1", "2", "3", "4")}
    assert await run(engine, SetMatters(matters=MATTERS)) is not None
    for n in range(DAYS):
        day = FIRST + timedelta(days=n)
        midnight = datetime.combine(day, datetime.min.time(), TZ)
        clock.set(midnight + timedelta(minutes=1))
        await run(engine, Rollover(), SYSTEM)          # as the scheduler does at midnight
        clock.set(midnight + timedelta(minutes=OPEN - 30))
        for due, number in [c for c in cases if c[0] <= day]:         # the back office decides
            cases.remove((due, number))
            for action in ("hand_off", "review", "decide"):
                await run(engine, CaseStep(number=number, action=action))
        for w in windows.values():
            w.day = day
        plans = day_plan(rng, n)
        waiting: list[str] = []
        minute = OPEN - 10
        while minute < CLOSE + 10 or any(w.ticket for w in windows.values()):
            clock.set(midnight + timedelta(minutes=minute, seconds=rng.uniform(0, 59)))
            work = [windows[w].tick(minute, plans[w]) for w in windows]
            if OPEN <= minute < CLOSE - 20:
                for service, p in (("A", 0.22), ("B", 0.1)):
                    if rng.random() < p:
                        work.append(take(engine, service, waiting))
                if waiting and rng.random() < 0.03:
                    work.append(run(engine, Cancel(number=waiting.pop(rng.randrange(len(waiting)))), KIOSK))
            await asyncio.gather(*work)
            await engine.settled()
            minute += 1
    clock.set(datetime.combine(FIRST + timedelta(days=DAYS), datetime.min.time(), TZ) + timedelta(minutes=1))
    await run(engine, Rollover(), SYSTEM)


async def take(engine: Engine, service: str, waiting: list[str]) -> None:
    reply = await run(engine, Take(service=service), KIOSK)
    if reply:
        waiting.append(reply["ticket"]["number"])


# ---------------------------------------------------------------------- the oracle
def oracle(rows: list[Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every figure per grouping and key, by plain loops over the raw rows."""
    def blank() -> dict[str, Any]:
        return {"issued": 0, "served": 0, "no_show": 0, "cancelled": 0, "transferred": 0, "closed": 0,
                "wait": [], "service": [], "arrivals": [[0] * 24 for _ in range(7)],
                "levels": dict.fromkeys(LEVELS, 0), "unrated": 0, "seconds": 0.0, "late": 0, "early": 0,
                "opened": 0, "decided": 0, "on_time": 0, "overdue": 0}

    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(blank))

    def bump(row: Any, what: str, by: tuple[str, ...], service: str | None = None) -> None:
        for b in by:
            key = {"hall": "", "service": service or row.service, "window": row.window, "clerk": row.clerk}[b]
            if b == "hall" or key:
                out[b][key][what] += 1

    def case_bump(case: str, what: str) -> None:
        department, window = OWNER[matter_of[case]]
        for b, key in (("hall", ""), ("department", department), ("window", window)):
            out[b][key][what] += 1

    by_ticket: dict[str, list[Any]] = defaultdict(list)
    matter_of: dict[str, str] = {}
    due_of: dict[str, date] = {}
    for r in rows:
        if r.ticket:
            by_ticket[r.ticket].append(r)
        payload = json.loads(r.payload)
        if r.kind == "issued":
            bump(r, "issued", ("hall", "service"))
            local = r.at.astimezone(TZ)
            for key in (("hall", ""), ("service", r.service)):
                out[key[0]][key[1]]["arrivals"][r.day.weekday()][local.hour] += 1
        elif r.kind == "done":
            bump(r, "served", ("hall", "service", "window", "clerk"))
        elif r.kind == "no_show":
            bump(r, "no_show", ("hall", "service", "window", "clerk"))
        elif r.kind == "cancelled":
            bump(r, "cancelled", ("hall", "service"))
        elif r.kind == "transferred":
            bump(r, "transferred", ("hall", "service", "window", "clerk"), payload["from_service"])
        elif r.kind == "closed":
            bump(r, "closed", ("hall", "service", "window"))
        elif r.kind == "unrated":
            bump(r, "unrated", ("hall", "service", "window", "clerk"))
        elif r.kind == "rated":
            for b, key in (("hall", ""), ("service", r.service), ("window", r.window), ("clerk", r.clerk)):
                out[b][key]["levels"][payload["level"]] += 1
        elif r.kind == "case_opened":
            matter_of[payload["case"]] = payload["matter"]
            due_of[payload["case"]] = date.fromisoformat(payload["due"])
            case_bump(payload["case"], "opened")
        elif r.kind == "case_step" and payload["action"] == "decide":
            case_bump(payload["case"], "decided")
            if r.day <= due_of[payload["case"]]:                 # decided by its due day
                case_bump(payload["case"], "on_time")
        elif r.kind == "case_warning" and payload["colour"] == "red":
            case_bump(payload["case"], "overdue")
    # waiting and service times, ticket by ticket
    for events in by_ticket.values():       # each time counted when both its ends fall on one day
        issued = next(((e.at, e.day) for e in events if e.kind == "issued"), None)
        start: dict[str | None, tuple[datetime, date]] = {}
        for e in events:
            keys = (("hall", ""), ("service", e.service), ("window", e.window), ("clerk", e.clerk))
            if e.kind in ("called", "serving"):
                start[e.window] = (e.at, e.day)
            if e.kind == "called" and json.loads(e.payload).get("first") and issued and issued[1] == e.day:
                for b, key in keys:
                    out[b][key]["wait"].append((e.at - issued[0]).total_seconds())
            elif e.kind == "done" and e.window in start:
                began, day = start.pop(e.window)
                if day == e.day:
                    for b, key in keys:
                        out[b][key]["service"].append((e.at - began).total_seconds())
    # attendance, clerk by clerk and day
    sessions: dict[tuple[date, str], list[Any]] = defaultdict(list)
    for r in rows:
        if r.kind in ("login", "logout"):
            sessions[(r.day, r.clerk)].append(r)
    for (day, clerk), mine in sessions.items():
        begin = datetime.combine(day, datetime.min.time(), TZ)
        logins = [r for r in mine if r.kind == "login"]
        if logins and logins[0].at > begin + timedelta(minutes=OPEN):
            out["clerk"][clerk]["late"] += 1
            out["hall"][""]["late"] += 1
        if mine and mine[-1].kind == "logout" and mine[-1].at < begin + timedelta(minutes=CLOSE):
            out["clerk"][clerk]["early"] += 1
            out["hall"][""]["early"] += 1
        open_at: datetime | None = begin
        for r in mine:
            if r.kind == "login":
                open_at = r.at
            else:
                seconds = (r.at - (open_at or begin)).total_seconds()
                out["clerk"][clerk]["seconds"] += seconds
                out["window"][r.window]["seconds"] += seconds
                out["hall"][""]["seconds"] += seconds
                open_at = None
        if mine and mine[-1].kind == "login":
            seconds = (begin + timedelta(days=1) - mine[-1].at).total_seconds()
            out["clerk"][clerk]["seconds"] += seconds
            out["window"][mine[-1].window]["seconds"] += seconds
            out["hall"][""]["seconds"] += seconds
    return out


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1] / 60


def check(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    for k in ("issued", "served", "no_show", "cancelled", "transferred", "closed"):
        assert got[k] == want[k], (where, k)
    for name in ("wait", "service"):
        values, g = want[name], got[name]
        assert g["count"] == len(values), (where, name)
        if values:
            assert g["mean_min"] == pytest.approx(sum(values) / len(values) / 60, rel=1e-9), (where, name)
            assert g["max_min"] == pytest.approx(max(values) / 60, rel=1e-9), (where, name)
            for q, field in ((0.5, "median_min"), (0.9, "p90_min")):
                assert abs(g[field] - nearest_rank(values, q)) <= 0.5 + 1e-9, (where, name, field)
    assert got["arrivals"] == want["arrivals"], where
    ratings = got["ratings"]
    assert ratings["levels"] == want["levels"], where
    rated = sum(want["levels"].values())
    good = want["levels"]["very_satisfied"] + want["levels"]["satisfied"]
    assert ratings["rated"] == rated and ratings["unrated"] == want["unrated"], where
    assert ratings["bad"] == want["levels"]["dissatisfied"] + want["levels"]["very_dissatisfied"], where
    assert ratings["good_rate"] == (good / rated if rated else None), where
    assert ratings["active_good_rate"] == ratings["good_rate"], where
    served = want["served"]
    assert ratings["unrated_rate"] == (max(0, served - rated) / served if served else None), where
    assert got["attendance"]["hours"] == pytest.approx(want["seconds"] / 3600, rel=1e-9, abs=1e-9), where
    assert got["attendance"]["late_starts"] == want["late"], where
    assert got["attendance"]["early_leaves"] == want["early"], where
    cases = got["cases"]
    assert (cases["opened"], cases["decided"], cases["on_time"], cases["overdue"]) == (
        want["opened"], want["decided"], want["on_time"], want["overdue"]), where
    assert cases["on_time_rate"] == (want["on_time"] / want["decided"] if want["decided"] else None), where


async def test_a_months_figures_match_the_raw_event_log(db):
    start = datetime.combine(FIRST, datetime.min.time(), TZ)
    clock = FakeClock(start)
    engine = Engine(config(), db, clock)
    await engine.start()
    try:
        await simulate(engine, clock)
        hall = await engine.settled()
        cfg = hall.config
        last = FIRST + timedelta(days=DAYS - 1)
        async with db.connect() as conn:
            rows = (await conn.execute(select(schema.events).where(schema.events.c.hall == "oracle")
                                       .order_by(schema.events.c.id))).all()
            rolled = (await conn.execute(select(schema.daily_stats.c.day).distinct())).scalars().all()
        assert set(rolled) >= {FIRST + timedelta(days=n) for n in range(DAYS)}, "a roll-up each midnight"
        want = oracle([r for r in rows if FIRST <= r.day <= last])
        assert want["hall"][""]["issued"] > 3000 and want["hall"][""]["closed"] > 0
        assert want["hall"][""]["levels"]["very_dissatisfied"] > 0 and want["hall"][""]["unrated"] > 0
        assert want["clerk"]["1001"]["late"] > 0 and want["clerk"]["1002"]["early"] > 0
        whole = want["hall"][""]
        assert whole["opened"] > 100 and 0 < whole["on_time"] < whole["decided"] and whole["overdue"] > 0
        for today in (hall.day, last):                   # roll-ups only; the last day from raw events
            for by in ("hall", "service", "window", "clerk", "department"):
                got = {r["key"]: r for r in await period(db, cfg, FIRST, last, by, today)}
                assert set(got) == set(want[by]), (by, today)
                for key in got:
                    check(got[key], want[by][key], f"{by} {key} (today {today})")
        # rebuilt roll-ups are the ones written at each rollover
        async with db.connect() as conn:
            before = (await conn.execute(select(schema.daily_stats).order_by(
                schema.daily_stats.c.day, schema.daily_stats.c.by, schema.daily_stats.c.key))).all()
        async with db.begin() as conn:
            assert await conn.run_sync(lambda c: rebuild(c, cfg, FIRST, hall.day)) >= DAYS
        async with db.connect() as conn:
            after = (await conn.execute(select(schema.daily_stats).order_by(
                schema.daily_stats.c.day, schema.daily_stats.c.by, schema.daily_stats.c.key))).all()
        assert after == before
    finally:
        await engine.stop()
