"""The engine on real storage, SQLite and PostgreSQL: nothing acknowledged is ever lost."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from controller.core.commands import Command
from controller.core.errors import Refused
from controller.engine import Engine, StorageUnavailable
from controller.storage import schema
from controller.storage.db import current_revision, open_database, upgrade
from tests.helpers import demo_config


@pytest.fixture
async def db(db_url):
    engine = open_database(db_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


def cmd(op: str, **args) -> Command:
    return Command(op, args)


async def started(db, clock, **kw) -> Engine:
    engine = Engine(demo_config(), db, clock, **kw)
    await engine.start()
    return engine


async def test_migrations_are_idempotent(db):
    await upgrade(db)
    assert await current_revision(db) == "0002"


async def test_state_is_rebuilt_after_a_restart(db, clock):
    e = await started(db, clock)
    for s in "AAAB":
        await e.execute(cmd("take", service=s))
    await e.execute(cmd("take", service="B", id_token="tok"))        # B002 stays waiting
    await e.execute(cmd("take", service="A", priority="green"))
    await e.execute(cmd("login", window="1", staff="1001"))
    await e.execute(cmd("login", window="4", staff="1004"))
    await e.execute(cmd("call_next", window="1"))            # A004 (green)
    await e.execute(cmd("call_next", window="1"))            # A001, A004 done
    await e.execute(cmd("hold", window="1"))                 # A001 held
    await e.execute(cmd("call_next", window="4"))            # B001
    await e.execute(cmd("transfer", window="4", to_window="5"))
    await e.execute(cmd("pause", window="4"))
    clock.advance(minutes=3)
    before = (e.hall.services_view(), [e.hall.window_view(w) for w in e.hall.windows],
              {t.id: t for t in e.hall.tickets.values()}, dict(e.hall.seq))
    await e.stop()

    e2 = await started(db, clock)
    after = (e2.hall.services_view(), [e2.hall.window_view(w) for w in e2.hall.windows],
             {t.id: t for t in e2.hall.tickets.values()}, dict(e2.hall.seq))
    assert after == before
    # numbering continues, the ID token still holds its ticket, the held ticket comes back
    assert (await e2.execute(cmd("take", service="A")))["ticket"]["number"] == "A005"
    with pytest.raises(Refused) as info:
        await e2.execute(cmd("take", service="B", id_token="tok"))
    assert info.value.code == "already_waiting"
    with pytest.raises(Refused):
        await e2.execute(cmd("call_next", window="4"))      # still paused
    out = await e2.execute(cmd("call_number", window="1", number="A001"))
    assert out["ticket"]["state"] == "called"
    await e2.stop()


async def test_repeated_key_gets_the_first_reply_even_after_restart(db, clock):
    e = await started(db, clock)
    first = await e.execute(cmd("take", service="A"), key="kiosk-1:b1:7")
    again = await e.execute(cmd("take", service="A"), key="kiosk-1:b1:7")
    assert again == first and e.hall.seq["A"] == 1
    with pytest.raises(Refused):                                # nobody logged in
        await e.execute(cmd("call_next", window="1"), key="caller-w01:b1:1")
    await e.stop()
    e2 = await started(db, clock)
    assert await e2.execute(cmd("take", service="A"), key="kiosk-1:b1:7") == first
    with pytest.raises(Refused) as info:
        await e2.execute(cmd("call_next", window="1"), key="caller-w01:b1:1")
    assert info.value.code == "not_logged_in"
    assert e2.hall.seq["A"] == 1 and e2.stats.replayed == 2
    await e2.stop()


async def test_concurrent_calls_from_every_window_never_share_a_ticket(db, clock):
    e = await started(db, clock)
    await asyncio.gather(*[e.execute(cmd("take", service=s)) for s in "ABCDE" * 30])
    await asyncio.gather(*[e.execute(cmd("login", window=str(w), staff=f"10{w:02d}"))
                           for w in range(1, 13)])
    results = await asyncio.gather(*[e.execute(cmd("call_next", window=str(1 + i % 12)))
                                     for i in range(120)], return_exceptions=True)
    numbers = [r["ticket"]["number"] for r in results if isinstance(r, dict)]
    assert len(numbers) == len(set(numbers)) == 120 - sum(isinstance(r, Refused) for r in results)
    await e.stop()
    async with db.connect() as conn:
        rows = (await conn.execute(select(schema.tickets.c.number, schema.tickets.c.state))).all()
    assert len(rows) == 150
    assert sum(1 for _, s in rows if s in ("called", "done")) == len(numbers)


async def test_events_are_stored_with_time_window_and_clerk(db, clock):
    e = await started(db, clock)
    await e.execute(cmd("take", service="A"))
    await e.execute(cmd("login", window="2", staff="1002"))
    await e.execute(cmd("call_next", window="2"))
    await e.stop()
    async with db.connect() as conn:
        rows = (await conn.execute(select(schema.events).order_by(schema.events.c.id))).mappings().all()
    kinds = [r["kind"] for r in rows]
    assert kinds == ["issued", "login", "called"]
    called = rows[-1]
    assert (called["window"], called["clerk"], called["number"]) == ("2", "1002", "A001")
    assert called["at"] == clock.now()
    assert json.loads(called["data"]) == {"how": "next"}


async def test_a_day_that_passed_while_stopped_is_rolled_over_at_start(db, clock):
    e = await started(db, clock)
    for _ in range(3):
        await e.execute(cmd("take", service="A"))
    await e.stop()
    clock.advance(days=1)
    e2 = await started(db, clock)
    assert e2.hall.day == clock.now().astimezone(e2.config.hall.tz).date()
    assert (await e2.execute(cmd("take", service="A")))["ticket"]["number"] == "A001"
    await e2.stop()
    async with db.connect() as conn:
        rows = (await conn.execute(select(schema.tickets.c.day, schema.tickets.c.number,
                                          schema.tickets.c.state))).all()
    old = [r for r in rows if r.day < clock.now().date()]
    assert len(old) == 3 and {r.state for r in old} == {"not_served"}   # history kept


async def test_a_failed_commit_acknowledges_nothing_and_changes_nothing(db, clock, monkeypatch):
    e = await started(db, clock)
    await e.execute(cmd("take", service="A"))
    real_write = e.repo.write

    def broken(*args, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(e.repo, "write", broken)
    with pytest.raises(StorageUnavailable):
        await e.execute(cmd("take", service="A"))
    monkeypatch.setattr(e.repo, "write", real_write)
    # the unacknowledged A002 never existed: the next ticket is A002, and A001 is intact
    assert (await e.execute(cmd("take", service="A")))["ticket"]["number"] == "A002"
    assert e.hall.seq["A"] == 2
    await e.stop()


async def test_a_bug_in_one_command_does_not_sink_the_others(db, clock, monkeypatch):
    e = await started(db, clock)
    real = type(e.hall).pause

    def exploding(self, now, window):
        if window == "3":
            raise ZeroDivisionError("bug")
        return real(self, now, window)

    monkeypatch.setattr(type(e.hall), "pause", exploding)
    await e.execute(cmd("login", window="3", staff="1003"))
    results = await asyncio.gather(e.execute(cmd("take", service="A")),
                                   e.execute(cmd("pause", window="3")),
                                   e.execute(cmd("take", service="A")), return_exceptions=True)
    assert isinstance(results[1], StorageUnavailable)
    assert [r["ticket"]["number"] for r in (results[0], results[2])] == ["A001", "A002"]
    await e.stop()
    e2 = await started(db, clock)
    assert e2.hall.seq["A"] == 2 and e2.hall.windows["3"].clerk == "1003"
    await e2.stop()


async def test_commands_are_refused_once_stopped(db, clock):
    from controller.engine import EngineStopped

    e = await started(db, clock)
    await e.stop()
    with pytest.raises(EngineStopped):
        await e.execute(cmd("take", service="A"))


async def test_durations_survive_restart_for_estimates(db, clock):
    e = await started(db, clock)
    for _ in range(3):
        await e.execute(cmd("take", service="C"))
    await e.execute(cmd("login", window="6", staff="1006"))
    await e.execute(cmd("call_next", window="6"))
    clock.advance(minutes=4)
    await e.execute(cmd("call_next", window="6"))
    assert e.hall.avg_service_min("C") == pytest.approx(4.0)
    await e.stop()
    e2 = await started(db, clock)
    assert e2.hall.avg_service_min("C") == pytest.approx(4.0)
    assert e2.hall.estimate_min("C", 2) == 8
    await e2.stop()


def slow_write(engine: Engine, monkeypatch, fail: bool):
    """The first commit takes 50 ms (and fails if asked); the next batch is applied meanwhile."""
    real = engine.store.run
    calls = []

    async def run(work):
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(0.05)
            if fail:
                raise OSError("disk full")
        return await real(work)

    monkeypatch.setattr(engine.store, "run", run)


async def test_a_failed_commit_also_fails_the_batch_applied_on_top_of_it(db, clock, monkeypatch):
    e = await started(db, clock)
    slow_write(e, monkeypatch, fail=True)
    first = asyncio.create_task(e.execute(cmd("take", service="A")))
    await asyncio.sleep(0.01)                       # the first batch is committing now
    second = asyncio.create_task(e.execute(cmd("take", service="A")))
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(r, StorageUnavailable) for r in results), results
    assert (await e.execute(cmd("take", service="A")))["ticket"]["number"] == "A001"
    await e.stop()


async def test_a_repeat_during_the_first_commit_gets_the_same_reply(db, clock, monkeypatch):
    e = await started(db, clock)
    slow_write(e, monkeypatch, fail=False)
    first = asyncio.create_task(e.execute(cmd("take", service="A"), key="kiosk-1:x:1"))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(e.execute(cmd("take", service="A"), key="kiosk-1:x:1"))
    assert await first == await second
    assert e.hall.seq["A"] == 1
    await e.stop()


async def wait_for(predicate, seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_midnight_rolls_the_day_over_with_nobody_pressing(db, clock):
    from datetime import datetime

    from tests.helpers import CST

    clock.set(datetime(2026, 11, 23, 23, 58, tzinfo=CST))
    e = await started(db, clock)
    await e.execute(cmd("take", service="A"))
    clock.advance(minutes=1)
    await asyncio.sleep(0.05)
    assert e.hall.day.isoformat() == "2026-11-23"       # not yet
    clock.advance(minutes=2)                            # 00:01 in the hall
    await wait_for(lambda: e.hall.day.isoformat() == "2026-11-24")
    await e.stop()
    async with db.connect() as conn:
        states = (await conn.execute(select(schema.tickets.c.state))).scalars().all()
        kinds = (await conn.execute(select(schema.events.c.kind))).scalars().all()
    assert states == ["not_served"] and kinds[-1] == "rollover"


async def test_listeners_hear_committed_events_and_a_failing_one_hurts_none(db, clock):
    e = await started(db, clock)
    heard: list[str] = []

    def broken(events):
        raise RuntimeError("listener bug")

    e.subscribe(broken)
    e.subscribe(lambda events: heard.extend(ev.kind for ev in events))
    await e.execute(cmd("take", service="A"))
    await e.execute(cmd("login", window="1", staff="1001"))
    assert heard == ["issued", "login"]
    await e.stop()


async def test_remembered_replies_are_forgotten_after_a_day(db, clock):
    e = await started(db, clock)
    await e.execute(cmd("take", service="A"), key="kiosk-1:old:1")
    clock.advance(hours=25)
    await e.execute(cmd("take", service="B"))          # a later batch prunes old replies
    again = await e.execute(cmd("take", service="A"), key="kiosk-1:old:1")
    assert again["ticket"]["day"] == clock.now().astimezone(e.config.hall.tz).date().isoformat()
    await e.stop()
    async with db.connect() as conn:
        keys = (await conn.execute(select(schema.replies.c.key))).scalars().all()
    assert keys == ["kiosk-1:old:1"]                   # only the new one is kept


async def test_a_dropped_database_connection_is_survived(pg_url, clock):
    """PostgreSQL restarts or drops the writer's connection: the command in flight is not
    acknowledged, the next one reconnects, and numbering has no gap."""
    import asyncpg

    from tests.conftest import PG_URL

    engine_db = open_database(pg_url)
    await upgrade(engine_db)
    e = await started(engine_db, clock)
    assert (await e.execute(cmd("take", service="A")))["ticket"]["number"] == "A001"
    admin = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        name = pg_url.rsplit("/", 1)[1]
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1", name)
    finally:
        await admin.close()
    numbers, failed = [], 0
    for _ in range(3):
        try:
            numbers.append((await e.execute(cmd("take", service="A")))["ticket"]["number"])
        except StorageUnavailable:
            failed += 1
    assert failed <= 1 and numbers == ["A002", "A003", "A004"][:3 - failed]
    await e.stop()
    await engine_db.dispose()


async def test_ratings_and_open_sessions_survive_restart(db, clock):
    e = await started(db, clock)
    await e.execute(cmd("take", service="A"))
    await e.execute(cmd("login", window="1", staff="1001"))
    await e.execute(cmd("call_next", window="1"))
    session = (await e.execute(cmd("evaluate", window="1")))["evaluation"]["session"]
    await e.stop()
    e2 = await started(db, clock)
    assert e2.hall.open_evaluation("1").id == session
    await e2.execute(cmd("rate", window="1", session=session, level="very_satisfied"))
    await e2.stop()
    async with db.connect() as conn:
        row = (await conn.execute(select(schema.evaluations))).mappings().one()
    assert (row["level"], row["clerk"], row["number"]) == ("very_satisfied", "1001", "A001")
