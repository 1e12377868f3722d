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
from controller.core.model import TicketState

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.toml"
EXAMPLE = ROOT / "config" / "example-county.toml"
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


def snapshot(hall: HallState) -> dict:
    """Everything a refused command must leave as it was."""
    return {
        "tickets": {k: repr(v) for k, v in hall.tickets.items()},
        "windows": {k: (w.clerk, w.paused, w.current) for k, w in hall.windows.items()},
        "lines": {k: list(v) for k, v in hall.lines.items()},
        "directed": {k: list(v) for k, v in hall.directed.items()},
        "seq": dict(hall.seq), "ordinal": hall.ordinal, "day": hall.day,
        "tokens": {k: set(v) for k, v in hall.tokens.items()},
        "segments": dict(hall.segment_counts),
        "pending_events": len(hall.changes.events),
        "appointments": {k: repr(v) for k, v in hall.appointments.items()},
    }


def check_invariants(hall: HallState) -> None:
    """The rules that must hold after every command."""
    holders: Counter[str] = Counter()
    for w in hall.windows.values():
        if w.current is not None:
            holders[w.current] += 1
            t = hall.tickets[w.current]
            assert t.state.at_window, (w.id, t)
            assert t.window == w.id, (w.id, t)
            assert w.clerk is not None, w
    assert all(n == 1 for n in holders.values()), "a ticket is held by two windows"
    at_window = {t.id for t in hall.tickets.values() if t.state.at_window}
    assert at_window == set(holders), "a called ticket no window holds"
    queued = [k[2] for line in (*hall.lines.values(), *hall.directed.values()) for k in line]
    assert len(queued) == len(set(queued)), "a ticket is queued twice"
    waiting = {t.id for t in hall.tickets.values() if t.state is TicketState.WAITING}
    assert set(queued) == waiting, "queues and waiting tickets differ"
    for service, line in hall.lines.items():
        for key in line:
            t = hall.tickets[key[2]]
            assert t.service == service and t.target_window is None and t.key == key
    today = [t for t in hall.tickets.values() if t.day == hall.day]
    numbers = [t.number for t in today]
    assert len(numbers) == len(set(numbers)), "a number issued twice"
    per_service = Counter(t.origin_service for t in today)
    for service, n in hall.seq.items():
        assert per_service[service] == n, (service, per_service[service], n)
        seqs = sorted(t.seq for t in today if t.origin_service == service)
        assert seqs == list(range(1, n + 1)), "a gap or repeat in numbering"
    assert sum(per_service.values()) == hall.ordinal


async def start_yimen(*args: str, timeout: float = 60) -> tuple[subprocess.Popen, str, str]:
    """``yimen *args`` in a process of its own, until it says where it listens:
    (the process, its http:// address, that line)."""
    proc = subprocess.Popen([sys.executable, "-m", "controller.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    loop = asyncio.get_running_loop()
    line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), timeout)
    m = re.search(r"http://[\d.]+:\d+", line)
    if not m:
        proc.kill()
        raise AssertionError(f"yimen {args[0]} did not start: {line!r}")
    return proc, m.group(0), line
