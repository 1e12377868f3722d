"""Shared test helpers: a hall at a fixed time, snapshots, invariants."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from controller.config import HallConfig, load_config, parse_config
from controller.core.hall import HallState
from controller.core.model import Priority, TicketState

ROOT = Path(__file__).resolve().parents[1]
HALLS = ROOT / "controller" / "halls"              # the example halls, shipped in the package
DEMO = HALLS / "demo.toml"
EXAMPLE = HALLS / "example-county.toml"
CST = timezone(timedelta(hours=8))
# Monday 23 November 2026, 09:00 in the hall.
MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=CST)


def demo_config() -> HallConfig:
    return load_config(DEMO)


def small_config(**hall: object) -> HallConfig:
    """Two services, four windows with every policy, four clerks."""
    return parse_config({
        "hall": {"id": "t", "name": "测试大厅", **hall},
        "services": [
            {"code": "A", "name": "综合", "avg_service_min": 6},
            {"code": "B", "name": "不动产", "avg_service_min": 12},
        ],
        "windows": [
            {"id": "1", "services": ["A", "B"]},
            {"id": "2", "services": ["B", "A"], "policy": "weighted", "weights": [2, 1]},
            {"id": "3", "services": ["A", "B"], "policy": "fifo", "green_first": True},
            {"id": "4", "services": ["B"]},
        ],
        "clerks": [
            {"id": "1001", "name": "甲", "windows": ["1"], "backup_windows": ["2"]},
            {"id": "1002", "name": "乙", "windows": ["2"]},
            {"id": "1003", "name": "丙", "windows": ["3"]},
            {"id": "1004", "name": "丁", "windows": ["4"]},
        ],
    }, "small.toml")


def new_hall(config: HallConfig | None = None, now: datetime = MONDAY_9) -> HallState:
    cfg = config or small_config()
    return HallState(cfg, now.astimezone(cfg.hall.tz).date())


def token(n: int) -> str:
    """Person ``n``'s ID token: 32 lowercase hex characters, like the ID reader's keyed hash."""
    return f"{n:032x}"


def snapshot(hall: HallState) -> dict:
    """Everything a refused command must leave as it was."""
    q, desk = hall.queue, hall.desk
    return {
        "tickets": {k: repr(v) for k, v in q.all.items()},
        "by_number": dict(q.by_number),
        "windows": {k: repr(w) for k, w in desk.windows.items()},
        "attendance": {k: repr(v) for k, v in desk.attendance.items()},
        "lines": {k: list(v) for k, v in q.lines.items()},
        "directed": {k: list(v) for k, v in q.directed.items()},
        "seq": dict(q.seq), "ordinal": q.ordinal, "day": hall.day,
        "tokens": {k: set(v) for k, v in q.tokens.items()},
        "segments": dict(q.segment_counts),
        "durations": {k: list(v) for k, v in q.durations.items()},
        "appointments": {k: repr(v) for k, v in q.appointments.items()},
        "ratings": {k: repr(v) for k, v in hall.ratings.open.items()},
        "pending_events": len(hall.changes.events),
        "pending_records": len(hall.changes.records),
        "pending_day": hall.changes.day,
    }


def check_invariants(hall: HallState) -> None:
    """The rules that must hold after every command."""
    q, desk = hall.queue, hall.desk.windows
    holders: Counter[str] = Counter()
    for w in desk.values():
        if w.current is not None:
            holders[w.current] += 1
            t = q.all[w.current]
            assert t.state.at_window, (w.id, t)
            assert t.window == w.id, (w.id, t)
            assert w.clerk is not None, w
    assert all(n == 1 for n in holders.values()), "a ticket is held by two windows"
    at_window = {t.id for t in q.all.values() if t.state.at_window}
    assert at_window == set(holders), "a called ticket no window holds"
    queued = [k[2] for line in (*q.lines.values(), *q.directed.values()) for k in line]
    assert len(queued) == len(set(queued)), "a ticket is queued twice"
    waiting = {t.id for t in q.all.values() if t.state is TicketState.WAITING}
    assert set(queued) == waiting, "queues and waiting tickets differ"
    for service, line in q.lines.items():
        for key in line:
            t = q.all[key[2]]
            assert t.service == service and t.target_window is None and t.order == key
    for window, line in q.directed.items():
        for key in line:
            t = q.all[key[2]]
            assert t.target_window == window and t.order == key
    today = [t for t in q.all.values() if t.day == hall.day]
    numbers = [t.number for t in today]
    assert len(numbers) == len(set(numbers)), "a number issued twice"
    assert q.by_number == {t.number: t.id for t in today}, "the number index is stale"
    per_service = Counter(t.origin_service for t in today)
    for service, n in q.seq.items():
        assert per_service[service] == n, (service, per_service[service], n)
        seqs = sorted(t.seq for t in today if t.origin_service == service)
        assert seqs == list(range(1, n + 1)), "a gap or repeat in numbering"
    assert sum(per_service.values()) == q.ordinal
    assert sorted(t.ordinal for t in today) == list(range(1, q.ordinal + 1))
    # the ID token index lists exactly the live tickets of each token
    live = [t for t in q.all.values() if t.id_token and not t.state.terminal]
    assert {tok: set(ids) for tok, ids in q.tokens.items()} == {
        tok: {t.id for t in live if t.id_token == tok} for tok in {t.id_token for t in live}}
    # calls: a ticket called once keeps its first call, never after its latest one
    for t in q.all.values():
        if t.state.at_window or t.state is TicketState.HELD:
            assert t.called_at is not None and t.first_called_at is not None, t
        if t.first_called_at is not None:
            assert t.called_at is not None and t.first_called_at <= t.called_at, t
        else:
            assert t.called_at is None, t
    # bookings: a checked-in booking and its ticket point at each other
    for t in today:
        if t.appointment is not None:
            booking = q.appointments[t.appointment]
            assert booking.ticket == t.id and booking.service == t.origin_service, (t, booking)
            assert booking.day == t.day and t.priority is not Priority.ORDINARY, (t, booking)
    for code, booking in q.appointments.items():
        assert booking.code == code, booking
        if booking.ticket is not None and booking.ticket in q.all:
            assert q.all[booking.ticket].appointment == code, booking
    # 好差评: open sessions only, at most one per window
    sessions = hall.ratings.open
    per_window = Counter(ev.window for ev in sessions.values())
    assert all(n == 1 for n in per_window.values()), "two open rating sessions at one window"
    for sid, ev in sessions.items():
        assert ev.id == sid and ev.open and ev.level is None and ev.reasons == (), ev
        assert ev.window in desk and hall.open_evaluation(ev.window) is ev


async def start_yimen(*args: str, timeout: float = 60) -> tuple[subprocess.Popen, str, str]:
    """``yimen *args`` in a process of its own, until it says where it listens:
    (the process, its http:// address, that line)."""
    proc = subprocess.Popen([sys.executable, "-m", "controller.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    loop = asyncio.get_running_loop()
    said = []
    for _ in range(8):                  # the demo first says who its administrator is
        line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), timeout)
        said.append(line)
        if (m := re.search(r"listening on (http://[\d.]+:\d+)", line)) or not line:
            break
    if not m:
        proc.kill()
        raise AssertionError(f"yimen {args[0]} did not start: {''.join(said)!r}")
    return proc, m.group(1), line


async def api_token(config: HallConfig, data_dir: str | Path, *roles: str, db_url: str | None = None) -> str:
    """A program's API token with ``roles`` (default admin), made as ``yimen token add`` makes
    it: straight in the hall's database, before or while the server runs."""
    from controller.auth.accounts import Accounts
    from controller.cli_auth import open_hall_db

    db = await open_hall_db(data_dir, db_url)
    try:
        return (await Accounts(db, config.hall.id).add_token("tests", list(roles or ("admin",))))[1]
    finally:
        await db.dispose()


async def bearer(config: HallConfig, data_dir: str | Path, *roles: str,
                 db_url: str | None = None) -> dict[str, str]:
    """Request headers carrying a new API token with ``roles``."""
    return {"Authorization": f"Bearer {await api_token(config, data_dir, *roles, db_url=db_url)}"}
