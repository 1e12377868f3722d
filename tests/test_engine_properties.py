"""The engine under random interleavings: commands from several doors at once, in batches the
engine forms itself, with time passing (rating time-outs, midnight) between them. After every
round every queue invariant holds, and the state rebuilt from the database is the live state."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import fields
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.clock import FakeClock
from controller.core.commands import (
    AddAppointment,
    AddItem,
    CallNext,
    CallNumber,
    Cancel,
    ChangeItem,
    ChangeSettings,
    Command,
    Done,
    Evaluate,
    Hold,
    Login,
    Logout,
    NoShow,
    Origin,
    Pause,
    Rate,
    Recall,
    RemoveItem,
    Resume,
    Source,
    Start,
    Take,
    Transfer,
)
from controller.core.configuration import live_data
from controller.core.errors import Refused
from controller.core.hall import HallState
from controller.engine import Engine
from controller.storage.db import open_database, upgrade
from tests.helpers import MONDAY_9, check_invariants, small_config, snapshot, token

WINDOWS = ["1", "2", "3", "4"]
STAFF = {"1": "1001", "2": "1002", "3": "1003", "4": "1004"}
SOURCES = [Source("device:kiosk-1", Origin.MQTT), Source("device:caller-w1", Origin.GATEWAY),
           Source("user:alice", Origin.HTTP), Source("user:admin", Origin.ADMIN)]

windows = st.sampled_from(WINDOWS)
numbers = st.builds(lambda s, n: f"{s}{n:03d}", st.sampled_from("AB"), st.integers(1, 8))
commands = st.one_of(
    st.builds(Take, service=st.sampled_from("AAB"), priority=st.sampled_from([None, "green"]),
              id_token=st.sampled_from([None, None, token(1), token(2)])),
    st.builds(Take, service=st.sampled_from("AB"), appointment=st.sampled_from(["BK1", "BK2"])),
    st.builds(AddAppointment, code=st.sampled_from(["BK1", "BK2"]), service=st.sampled_from("AB"),
              day=st.just(MONDAY_9.date())),
    st.builds(Cancel, number=numbers),
    windows.map(lambda w: Login(window=w, staff=STAFF[w])),
    st.builds(CallNext, window=windows), st.builds(CallNext, window=windows),
    st.builds(CallNumber, window=windows, number=numbers),
    *[st.builds(kind, window=windows) for kind in
      (Logout, Pause, Resume, Recall, NoShow, Start, Done, Hold, Evaluate)],
    st.builds(Transfer, window=windows, to_service=st.sampled_from(["A", "B"])),
    st.builds(Transfer, window=windows, to_window=windows),
    # the live configuration changing in between: a service added, disabled and removed,
    # a window's services, a keypad rebound, a setting
    st.just(AddItem(section="services", item={"code": "F", "name": "公积金"})),
    st.builds(ChangeItem, section=st.just("services"), id=st.sampled_from("BF"),
              changes=st.sampled_from([{"enabled": False}, {"enabled": True}])),
    st.just(RemoveItem(section="services", id="F")),
    st.builds(ChangeItem, section=st.just("windows"), id=st.sampled_from(["1", "3", "4"]),
              changes=st.sampled_from([{"services": s} for s in (["A"], ["B"], ["A", "B"], ["B", "F"])])),
    st.just(AddItem(section="devices", item={"id": "caller-x", "kind": "caller", "window": "1"})),
    st.builds(ChangeItem, section=st.just("devices"), id=st.just("caller-x"),
              changes=windows.map(lambda w: {"window": w})),
    st.builds(ChangeSettings, changes=st.integers(0, 3).map(lambda n: {"max_recalls": n})),
)
#: A round: commands sent at once from several doors, then minutes passing (sometimes past a
#: rating's time-out, sometimes past midnight).
rounds = st.lists(st.tuples(st.lists(st.tuples(commands, st.sampled_from(SOURCES)), max_size=12),
                            st.sampled_from([0, 0, 0.5, 2, 30, 16 * 60])), min_size=1, max_size=6)


def comparable(hall: HallState) -> dict:
    """What a rebuild from storage must restore (the weighted round robin's credits and the
    batch in hand are not stored)."""
    out = snapshot(hall)
    for key in ("windows", "pending_events", "pending_records", "pending_day"):
        out.pop(key)
    q = hall.queue
    out["config"] = (hall.stored_config.revision, live_data(hall.config))
    for key, records in (("tickets", q.all), ("appointments", q.appointments),
                         ("attendance", hall.desk.attendance), ("ratings", hall.ratings.open)):
        out[key] = {k: _plain(r) for k, r in records.items()}
    out["windows"] = {w.id: (w.clerk, w.attendance_id, _utc(w.logged_in_at), w.paused, w.current)
                      for w in hall.desk.windows.values()}
    return out


def _utc(value: object) -> object:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _plain(record: object) -> tuple:
    """A record's fields, times in UTC (storage gives them back in UTC)."""
    return tuple(_utc(getattr(record, f.name)) for f in fields(record))  # type: ignore[arg-type]


async def play(folder: Path, plan: list) -> None:  # noqa: ANN001
    config = small_config()
    clock = FakeClock(MONDAY_9)
    db = open_database(f"sqlite+aiosqlite:///{folder / 'yimen.db'}", "NORMAL")
    await upgrade(db)
    engine = Engine(config, db, clock)
    await engine.start()
    try:
        for sent, minutes in plan:
            rates = await _ratings(engine)
            results = await asyncio.gather(*[engine.execute(c, s) for c, s in [*sent, *rates]],
                                           return_exceptions=True)
            assert all(isinstance(r, dict | Refused) for r in results), results
            clock.advance(minutes=minutes)
            await asyncio.sleep(0)                  # due timers go through the engine
            for _ in range(50):
                if not any(when <= clock.now() for when, _ in engine.scheduler.timers.values()):
                    break
                await asyncio.sleep(0.005)
            live = await engine.settled()
            check_invariants(live)
            today = clock.now().astimezone(live.tz).date()
            stored = await engine.store.run(partial(engine.repo.load, config=config, today=today))
            assert comparable(stored) == comparable(await engine.settled())
    finally:
        await engine.stop()
        await db.dispose()


async def _ratings(engine: Engine) -> list[tuple[Command, Source]]:
    """Evaluators answering the prompts they show (a rating races the round's commands)."""
    hall = await engine.settled()
    return [(Rate(window=ev.window, session=ev.id, level="dissatisfied", reasons=("efficiency",)),
             Source(f"device:evaluator-w{ev.window}", Origin.MQTT))
            for ev in list(hall.ratings.open.values())[:1]]


@pytest.mark.slow                               # 25 engines on SQLite, each rebuilt: 3-6 s
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=rounds)
def test_random_interleavings_keep_the_rules_and_rebuild_to_the_live_state(plan):
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(play(Path(folder), plan))
