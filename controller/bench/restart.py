"""``yimen bench restart``: how soon a hall with a year of history answers again after a
restart.

A generated year of a busy county hall (by default 600,000 tickets and about 4 million events
over the working days of a year, as the hall's own rows would be) is written straight into a
fresh SQLite database in a temporary folder. Then, three times each: the engine alone is
started on it (the state rebuilt: today's tickets, open tickets, windows, bookings, rating
sessions, remembered replies) and commits a booking; and ``yimen serve`` is started as a process
on it, timed until ``/api/health`` answers. Only today's state is read, so neither should grow
with the history.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.bench.engine import BENCH
from controller.config import HallConfig, parse_config
from controller.core.calendar import WorkCalendar
from controller.core.commands import AddAppointment
from controller.engine import Engine
from controller.storage import schema
from controller.storage.db import database_url, open_database, upgrade
from controller.storage.repository import sqlite_sql

SERVICES = "ABCDE"
WINDOWS = 20
#: events a served ticket leaves: issued, called, serving, done, evaluation_opened, rated
SERVED_EVENTS = ("issued", "called", "serving", "done", "evaluation_opened", "rated")


def year_config(hall: str) -> dict[str, Any]:
    """A county hall: five services, twenty windows, working days and office hours."""
    return {
        "hall": {"id": hall, "name": "压测县政务服务中心", "hours": ["08:30-12:00", "13:30-17:30"],
                 "days": ["mon", "tue", "wed", "thu", "fri"]},
        "services": [{"code": s, "name": f"业务{s}", "daily_cap": 99999} for s in SERVICES],
        "windows": [{"id": str(w), "services": [SERVICES[(w - 1) % 5]]} for w in range(1, WINDOWS + 1)],
        "clerks": [{"id": f"{9000 + w}", "name": f"员{w}", "windows": [str(w)]}
                   for w in range(1, WINDOWS + 1)],
    }


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def generate(path: Path, config: HallConfig, tickets: int, until: date) -> dict[str, int]:
    """A year of history up to the day before ``until``, written as the engine writes it."""
    cal = WorkCalendar(config.hall)
    days = [until - timedelta(days=d) for d in range(365, 0, -1)]
    days = [d for d in days if cal.is_working_day(d)]
    per_day = tickets // len(days)
    tz, rng = config.hall.tz, random.Random(7)
    ticket_sql = sqlite_sql(schema.tickets, True)
    event_sql = sqlite_sql(schema.events, False)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")       # generating, not serving
    counts = {"tickets": 0, "events": 0}
    hall = config.hall.id
    for day in days:
        opened = datetime.combine(day, datetime.min.time(), tz) + timedelta(hours=8, minutes=30)
        trows, erows = [], []
        seq = dict.fromkeys(SERVICES, 0)
        for n in range(per_day):
            s = SERVICES[n % 5]
            seq[s] += 1
            number = f"{s}{seq[s]:03d}"
            tid = f"{day:%Y%m%d}-{number}"
            issued = opened + timedelta(seconds=n * 28000 / per_day)
            called = issued + timedelta(minutes=rng.randint(1, 40))
            done = called + timedelta(minutes=rng.randint(2, 15))
            window, clerk = str(1 + n % WINDOWS), str(9001 + n % WINDOWS)
            state = "done" if n % 20 else "no_show"
            trows.append((hall, tid, day.isoformat(), number, seq[s], n + 1, s, s, "ordinary", state,
                          _utc(issued), window, None, clerk, _utc(called), _utc(called),
                          _utc(called) if state == "done" else None, _utc(done), 0, None, None, None))
            kinds = SERVED_EVENTS if state == "done" else ("issued", "called", "recalled", "no_show")
            for k, kind in enumerate(kinds):
                at = issued if kind == "issued" else called + timedelta(seconds=k)
                erows.append((hall, 2, day.isoformat(), _utc(at), kind, tid, number, s,
                              None if kind == "issued" else window,
                              None if kind == "issued" else clerk,
                              "device:kiosk-1" if kind == "issued" else f"device:caller-w{window}",
                              "mqtt", "{}"))
        con.execute("BEGIN")
        con.executemany(ticket_sql, trows)
        con.executemany(event_sql, erows)
        con.execute("COMMIT")
        counts["tickets"] += len(trows)
        counts["events"] += len(erows)
    con.execute("INSERT INTO hall_state (hall, day) VALUES (?, ?)", (hall, days[-1].isoformat()))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return counts


async def _engine_start(config: HallConfig, url: str) -> float:
    """Seconds from nothing to a committed command (a booking: the hall may be closed now):
    the state rebuilt from a year of rows."""
    t0 = time.perf_counter()
    db = open_database(url)
    await upgrade(db)
    engine = Engine(config, db)
    await engine.start()
    today = engine.clock.now().astimezone(config.hall.tz).date()
    await engine.execute(AddAppointment(code=f"R{time.monotonic_ns()}", service="A", day=today), BENCH)
    seconds = time.perf_counter() - t0
    await engine.stop()
    await db.dispose()
    return seconds


def _serve_start(config_path: Path, data: Path) -> float:
    """Seconds from starting ``yimen serve`` to ``/api/health`` answering."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "serve", "--config", str(config_path),
         "--data", str(data), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "listening on http://" in line:
                url = line.split("listening on ", 1)[1].split(",", 1)[0].strip()
                break
        else:
            raise RuntimeError("yimen serve did not start")
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                    if json.load(r)["ok"]:
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(30)


async def run(tickets: int = 600_000, repeats: int = 3) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="yimen-bench-restart-", dir=".") as tmp:
        folder = Path(tmp)
        raw = year_config(f"bench-{random.randrange(16**6):06x}")
        config = parse_config(raw, "<bench>")
        url = database_url(None, folder)
        db = open_database(url)
        await upgrade(db)
        await db.dispose()
        today = datetime.now(config.hall.tz).date()
        t0 = time.perf_counter()
        counts = generate(folder / "yimen.db", config, tickets, today)
        generated_s = time.perf_counter() - t0
        toml = folder / "hall.toml"
        toml.write_text(_toml(raw), encoding="utf-8")
        engine = [await _engine_start(config, url) for _ in range(repeats)]
        serve = [await asyncio.to_thread(_serve_start, toml, folder) for _ in range(repeats)]
        size = (folder / "yimen.db").stat().st_size
    return {"counts": counts, "generated_s": generated_s, "db_mib": size / 2**20,
            "engine_s": engine, "serve_s": serve}


def _toml(raw: dict[str, Any]) -> str:
    """The generated hall as a TOML file for ``yimen serve``."""
    h = raw["hall"]
    lines = ["[hall]", f'id = "{h["id"]}"', f'name = "{h["name"]}"',
             f"hours = {json.dumps(h['hours'])}", f"days = {json.dumps(h['days'])}"]
    for s in raw["services"]:
        lines += ["", "[[services]]", f'code = "{s["code"]}"', f'name = "{s["name"]}"',
                  f"daily_cap = {s['daily_cap']}"]
    for w in raw["windows"]:
        lines += ["", "[[windows]]", f'id = "{w["id"]}"', f"services = {json.dumps(w['services'])}"]
    for c in raw["clerks"]:
        lines += ["", "[[clerks]]", f'id = "{c["id"]}"', f'name = "{c["name"]}"',
                  f"windows = {json.dumps(c['windows'])}"]
    return "\n".join(lines) + "\n"


def report(out: dict[str, Any], target_s: float = 2.0) -> str:
    c = out["counts"]
    worst = max(out["serve_s"])
    return "\n".join([
        f"history: {c['tickets']:,} tickets, {c['events']:,} events, {out['db_mib']:.0f} MiB "
        f"(generated in {out['generated_s']:.0f} s)",
        "",
        "| restart | " + " | ".join(f"run {i + 1}" for i in range(len(out["engine_s"]))) + " |",
        "|---|" + "---:|" * len(out["engine_s"]),
        "| engine: state rebuilt, first command committed | "
        + " | ".join(f"{s:.2f} s" for s in out["engine_s"]) + " |",
        "| `yimen serve` started → /api/health answers | "
        + " | ".join(f"{s:.2f} s" for s in out["serve_s"]) + " |",
        "",
        f"target: answering within {target_s:.0f} s of a restart: "
        f"{'met' if worst <= target_s else 'NOT met'} (worst {worst:.2f} s)",
    ])
