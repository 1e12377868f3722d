"""The engine on real storage, SQLite and PostgreSQL: nothing acknowledged is ever lost."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from controller.core.commands import COMMANDS, Origin, Source
from controller.core.errors import Refused
from controller.engine import Engine, StorageUnavailable
from controller.storage import schema
from controller.storage.db import current_revision, open_database, upgrade
from tests.helpers import ROOT, demo_config
from tests.waiting import wait_for

SRC = Source("user:tester", Origin.CLI)
TOKEN = "a" * 32
#: the newest migration's revision (its file name's first four digits) and the one after it
HEAD = max(p.name[:4] for p in (ROOT / "controller/storage/migrations/versions").glob("[0-9]*.py"))
NEXT = f"{int(HEAD) + 1:04d}"


async def do(engine: Engine, op: str, key: str | None = None, **args) -> dict:
    """Run the command named ``op`` through the engine for the tester."""
    return await engine.execute(COMMANDS[op](**args), SRC, key=key)


async def started(db, clock, **kw) -> Engine:
    engine = Engine(demo_config(), db, clock, **kw)
    await engine.start()
    return engine


async def test_migrations_are_idempotent(db):
    await upgrade(db)
    assert await current_revision(db) == HEAD


async def test_state_is_rebuilt_after_a_restart(db, clock):
    e = await started(db, clock)
    for s in "AAAB":
        await do(e, "take", service=s)
    await do(e, "take", service="B", id_token=TOKEN)        # B002 stays waiting
    await do(e, "take", service="A", priority="green")
    await do(e, "login", window="1", staff="1001")
    await do(e, "login", window="4", staff="1004")
    await do(e, "call_next", window="1")            # A004 (green)
    await do(e, "call_next", window="1")            # A001, A004 done
    await do(e, "hold", window="1")                 # A001 held
    await do(e, "call_next", window="4")            # B001
    await do(e, "transfer", window="4", to_window="5")
    await do(e, "pause", window="4")
    clock.advance(minutes=3)
    before = (e.hall.services_view(), [e.hall.window_view(w) for w in e.hall.windows],
              {t.id: t for t in e.hall.queue.all.values()}, dict(e.hall.queue.seq))
    await e.stop()

    e2 = await started(db, clock)
    after = (e2.hall.services_view(), [e2.hall.window_view(w) for w in e2.hall.windows],
             {t.id: t for t in e2.hall.queue.all.values()}, dict(e2.hall.queue.seq))
    assert after == before
    # numbering continues, the ID token still holds its ticket, the held ticket comes back
    assert (await do(e2, "take", service="A"))["ticket"]["number"] == "A005"
    with pytest.raises(Refused) as info:
        await do(e2, "take", service="B", id_token=TOKEN)
    assert info.value.code == "already_waiting"
    with pytest.raises(Refused):
        await do(e2, "call_next", window="4")      # still paused
    out = await do(e2, "call_number", window="1", number="A001")
    assert out["ticket"]["state"] == "called"
    await e2.stop()


async def test_repeated_key_gets_the_first_reply_even_after_restart(db, clock):
    e = await started(db, clock)
    first = await do(e, "take", service="A", key="kiosk-1:b1:7")
    again = await do(e, "take", service="A", key="kiosk-1:b1:7")
    assert again == first and e.hall.queue.seq["A"] == 1
    with pytest.raises(Refused):                                # nobody logged in
        await do(e, "call_next", window="1", key="caller-w01:b1:1")
    await e.stop()
    e2 = await started(db, clock)
    assert await do(e2, "take", service="A", key="kiosk-1:b1:7") == first
    with pytest.raises(Refused) as info:
        await do(e2, "call_next", window="1", key="caller-w01:b1:1")
    assert info.value.code == "not_logged_in"
    assert e2.hall.queue.seq["A"] == 1 and e2.stats.replayed == 2
    await e2.stop()


async def test_concurrent_calls_from_every_window_never_share_a_ticket(db, clock):
    e = await started(db, clock)
    await asyncio.gather(*[do(e, "take", service=s) for s in "ABCDE" * 30])
    await asyncio.gather(*[do(e, "login", window=str(w), staff=f"10{w:02d}")
                           for w in range(1, 13)])
    results = await asyncio.gather(*[do(e, "call_next", window=str(1 + i % 12))
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
    await do(e, "take", service="A")
    await do(e, "login", window="2", staff="1002")
    await do(e, "call_next", window="2")
    await e.stop()
    async with db.connect() as conn:
        rows = (await conn.execute(select(schema.events).order_by(schema.events.c.id))).mappings().all()
    kinds = [r["kind"] for r in rows]
    assert kinds == ["config_changed", "issued", "login", "called"]   # the hall file seeded it
    assert (rows[0]["actor"], json.loads(rows[0]["payload"])["action"]) == ("system", "seeded")
    called = rows[-1]
    assert (called["window"], called["clerk"], called["number"]) == ("2", "1002", "A001")
    assert called["at"] == clock.now() and called["day"] == clock.now().date()
    assert (called["actor"], called["origin"], called["v"]) == ("user:tester", "cli", 2)
    assert json.loads(called["payload"]) == {
        "how": "next", "first": True, "first_called_at": clock.now().isoformat()}


async def test_a_day_that_passed_while_stopped_is_rolled_over_at_start(db, clock):
    e = await started(db, clock)
    for _ in range(3):
        await do(e, "take", service="A")
    await e.stop()
    clock.advance(days=1)
    e2 = await started(db, clock)
    assert e2.hall.day == clock.now().astimezone(e2.config.hall.tz).date()
    assert (await do(e2, "take", service="A"))["ticket"]["number"] == "A001"
    await e2.stop()
    async with db.connect() as conn:
        rows = (await conn.execute(select(schema.tickets.c.day, schema.tickets.c.number,
                                          schema.tickets.c.state))).all()
    old = [r for r in rows if r.day < clock.now().date()]
    assert len(old) == 3 and {r.state for r in old} == {"not_served"}   # history kept


async def test_a_failed_commit_acknowledges_nothing_and_changes_nothing(db, clock, monkeypatch):
    e = await started(db, clock)
    await do(e, "take", service="A")
    real_write = e.repo.write

    def broken(*args, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(e.repo, "write", broken)
    with pytest.raises(StorageUnavailable):
        await do(e, "take", service="A")
    monkeypatch.setattr(e.repo, "write", real_write)
    # the unacknowledged A002 never existed: the next ticket is A002, and A001 is intact
    assert (await do(e, "take", service="A"))["ticket"]["number"] == "A002"
    assert e.hall.queue.seq["A"] == 2
    await e.stop()


async def test_a_bug_in_one_command_does_not_sink_the_others(db, clock, monkeypatch):
    from controller.core import hall as hall_module
    from controller.core.commands import Pause

    e = await started(db, clock)
    real = hall_module.HANDLERS[Pause]

    def exploding(hall, command, now):
        if command.window == "3":
            raise ZeroDivisionError("bug")
        return real(hall, command, now)

    monkeypatch.setitem(hall_module.HANDLERS, Pause, exploding)
    await do(e, "login", window="3", staff="1003")
    results = await asyncio.gather(do(e, "take", service="A"),
                                   do(e, "pause", window="3"),
                                   do(e, "take", service="A"), return_exceptions=True)
    assert isinstance(results[1], StorageUnavailable)
    assert [r["ticket"]["number"] for r in (results[0], results[2])] == ["A001", "A002"]
    await e.stop()
    e2 = await started(db, clock)
    assert e2.hall.queue.seq["A"] == 2 and e2.hall.desk.windows["3"].clerk == "1003"
    await e2.stop()


async def test_commands_are_refused_once_stopped(db, clock):
    from controller.engine import EngineStopped

    e = await started(db, clock)
    await e.stop()
    with pytest.raises(EngineStopped):
        await do(e, "take", service="A")


async def test_durations_survive_restart_for_estimates(db, clock):
    e = await started(db, clock)
    for _ in range(3):
        await do(e, "take", service="C")
    await do(e, "login", window="6", staff="1006")
    await do(e, "call_next", window="6")
    clock.advance(minutes=4)
    await do(e, "call_next", window="6")
    assert e.hall.avg_service_min("C") == pytest.approx(4.0)
    before = e.hall.wait_fields("C", 2)
    await e.stop()
    e2 = await started(db, clock)
    assert e2.hall.avg_service_min("C") == pytest.approx(4.0)
    assert e2.hall.wait_fields("C", 2) == before
    await e2.stop()


def slow_write(engine: Engine, monkeypatch, fail: bool):
    """The first commit takes 50 ms (and fails if asked)."""
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


async def test_a_command_queued_during_a_failed_commit_applies_to_the_stored_state(db, clock, monkeypatch):
    e = await started(db, clock)
    slow_write(e, monkeypatch, fail=True)
    first = asyncio.create_task(do(e, "take", service="A"))
    await wait_for(lambda: not e._settled.is_set())     # the first batch is committing now
    second = asyncio.create_task(do(e, "take", service="A"))
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(results[0], StorageUnavailable)
    assert results[1]["ticket"]["number"] == "A001"     # A001 of the failed commit never was
    await e.stop()


async def test_a_repeat_during_the_first_commit_gets_the_same_reply(db, clock, monkeypatch):
    e = await started(db, clock)
    slow_write(e, monkeypatch, fail=False)
    first = asyncio.create_task(do(e, "take", service="A", key="kiosk-1:x:1"))
    await wait_for(lambda: not e._settled.is_set())
    second = asyncio.create_task(do(e, "take", service="A", key="kiosk-1:x:1"))
    assert await first == await second
    assert e.hall.queue.seq["A"] == 1
    await e.stop()





async def test_midnight_rolls_the_day_over_with_nobody_pressing(db, clock):
    from datetime import datetime

    from tests.helpers import CST

    clock.set(datetime(2026, 11, 23, 23, 58, tzinfo=CST))
    e = await started(db, clock)
    await do(e, "take", service="A")
    clock.advance(minutes=1)
    assert e.scheduler.timers["rollover"][0] == datetime(2026, 11, 24, tzinfo=e.config.hall.tz)
    assert e.hall.day.isoformat() == "2026-11-23"       # not yet
    clock.advance(minutes=2)                            # 00:01 in the hall
    async def rolled() -> bool:
        return (await e.settled()).day.isoformat() == "2026-11-24"

    await wait_for(rolled)
    await e.stop()
    async with db.connect() as conn:
        states = (await conn.execute(select(schema.tickets.c.state))).scalars().all()
        kinds = (await conn.execute(select(schema.events.c.kind))).scalars().all()
    assert states == ["not_served"] and kinds[-1] == "rollover"


async def test_listeners_hear_committed_events_and_a_failing_one_hurts_none(db, clock):
    e = await started(db, clock)
    heard: list[str] = []

    def broken(committed):
        raise RuntimeError("listener bug")

    e.subscribe(broken)
    e.subscribe(lambda committed: heard.extend(ev.kind for ev in committed.events))
    await do(e, "take", service="A")
    await do(e, "login", window="1", staff="1001")
    assert heard == ["issued", "login"]
    await e.stop()


async def test_remembered_replies_are_forgotten_after_a_day(db, clock):
    e = await started(db, clock)
    await do(e, "take", service="A", key="kiosk-1:old:1")
    clock.advance(hours=25)
    await do(e, "take", service="B")          # a later batch prunes old replies
    again = await do(e, "take", service="A", key="kiosk-1:old:1")
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
    assert (await do(e, "take", service="A"))["ticket"]["number"] == "A001"
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
            numbers.append((await do(e, "take", service="A"))["ticket"]["number"])
        except StorageUnavailable:
            failed += 1
    assert failed <= 1 and numbers == ["A002", "A003", "A004"][:3 - failed]
    await e.stop()
    await engine_db.dispose()


async def test_ratings_and_open_sessions_survive_restart(db, clock):
    e = await started(db, clock)
    await do(e, "take", service="A")
    await do(e, "login", window="1", staff="1001")
    await do(e, "call_next", window="1")
    session = (await do(e, "evaluate", window="1"))["evaluation"]["session"]
    await e.stop()
    e2 = await started(db, clock)
    assert e2.hall.open_evaluation("1").id == session
    await do(e2, "rate", window="1", session=session, level="very_satisfied")
    await e2.stop()
    async with db.connect() as conn:
        row = (await conn.execute(select(schema.evaluations))).mappings().one()
    assert (row["level"], row["clerk"], row["number"]) == ("very_satisfied", "1001", "A001")


async def test_the_migrations_build_exactly_the_tables_the_code_declares(db):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    async with db.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), schema.metadata))
    assert diff == []


async def test_events_written_before_the_event_log_v2_are_kept_and_filled_in(db_url):
    """An upgrade from revision 0002 keeps old events, gives them their day (China time),
    an actor and the origin ``legacy``, and finds each ticket's first call."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    db = open_database(db_url)
    try:
        await upgrade(db, "0002")
        late = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)        # 00:30 on the 24th in the hall
        first, again = datetime(2026, 11, 23, 1, 5, tzinfo=UTC), datetime(2026, 11, 23, 1, 9, tzinfo=UTC)
        ts = schema.UTCDateTime()
        dialect = db.dialect

        def at(value: datetime):  # noqa: ANN202
            return ts.process_bind_param(value, dialect)

        async with db.begin() as conn:
            await conn.execute(text(
                "INSERT INTO tickets (hall, id, day, number, seq, ordinal, service, origin_service, "
                "priority, state, issued_at, \"window\", clerk, called_at, recalls) VALUES "
                "('h', '20261123-A001', :day, 'A001', 1, 1, 'A', 'A', 'ordinary', 'done', :issued, "
                "'1', '1001', :called, 0)"),
                {"day": datetime(2026, 11, 23).date(), "issued": at(first), "called": at(again)})
            for when, kind, clerk, data in [(first, "called", "1001", '{"how": "next"}'),
                                            (again, "called", "1001", '{"how": "held"}'),
                                            (late, "rollover", None, '{"closed": 0}')]:
                await conn.execute(text(
                    "INSERT INTO events (hall, at, kind, \"window\", clerk, ticket, number, service, "
                    "data) VALUES ('h', :at, :kind, '1', :clerk, '20261123-A001', 'A001', 'A', :data)"),
                    {"at": at(when), "kind": kind, "clerk": clerk, "data": data})
        await upgrade(db)
        async with db.connect() as conn:
            rows = (await conn.execute(select(schema.events).order_by(schema.events.c.id))).mappings().all()
            ticket = (await conn.execute(select(schema.tickets))).mappings().one()
    finally:
        await db.dispose()
    assert [(r["v"], r["origin"], r["actor"]) for r in rows] == [
        (1, "legacy", "staff:1001"), (1, "legacy", "staff:1001"), (1, "legacy", "unknown")]
    assert [r["day"].isoformat() for r in rows] == ["2026-11-23", "2026-11-23", "2026-11-24"]
    assert json.loads(rows[1]["payload"]) == {"how": "held"}
    assert ticket["first_called_at"] == first and ticket["called_at"] == again


async def test_a_new_kind_of_record_gets_its_migration_written(tmp_path, monkeypatch):
    """A table declared in schema.py and ``yimen db revision`` give a migration that builds
    it: nothing written by hand."""
    import shutil

    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import Column, String, Table

    from controller.core.model import Priority
    from controller.storage import db as storage_db

    folder = tmp_path / "migrations"
    shutil.copytree(storage_db.MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(storage_db, "MIGRATIONS", folder)
    table = Table("notices", schema.metadata,
                  Column("hall", String(32), primary_key=True),
                  Column("id", String(32), primary_key=True),
                  Column("shown_from", schema.UTCDateTime(), nullable=False),
                  Column("level", schema.EnumText(Priority), nullable=False))
    try:
        path = await storage_db.write_revision("hall notices")
        text = path.read_text()
        assert path.name == f"{NEXT}_hall_notices.py" and "op.create_table('notices'" in text
        assert "UTCDateTime()" in text and "sa.String(length=16)" in text
        db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
        try:
            await upgrade(db)
            assert await current_revision(db) == NEXT
            async with db.connect() as conn:
                diff = await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), schema.metadata))
            assert diff == []
        finally:
            await db.dispose()
    finally:
        schema.metadata.remove(table)


async def test_a_stored_configuration_with_device_passwords_loads_after_the_upgrade(db_url):
    """Before per-device credentials a hall file could give a device its password, and 0004
    stored it with the configuration: 0005 takes it out, so the hall starts (and that device
    waits for a credential of its own)."""
    from sqlalchemy import text

    from controller.config import HallConfig
    from controller.core.configuration import live_data, with_live
    from tests.helpers import demo_config

    base = demo_config()
    data = live_data(base)
    data["devices"][0]["password"] = "plain-old-secret"
    db = open_database(db_url)
    try:
        await upgrade(db, "0004")
        async with db.begin() as conn:
            await conn.execute(text("INSERT INTO hall_config (hall, revision, data) VALUES ('demo', 3, :d)"),
                               {"d": json.dumps(data, ensure_ascii=False)})
        await upgrade(db)
        async with db.connect() as conn:
            stored = (await conn.execute(select(schema.hall_config))).mappings().one()
    finally:
        await db.dispose()
    assert "plain-old-secret" not in json.dumps(stored["data"])
    config: HallConfig = with_live(base, stored["data"])
    assert [d.id for d in config.devices] == [d.id for d in base.devices]


async def test_the_database_refuses_to_change_or_delete_an_audit_entry(db):
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    from controller.auth.audit import Audit, verify

    audit = Audit(db, "h")
    await audit.record("user:li", "10.0.0.5", "login")
    for statement in (update(schema.audit_log).values(actor="user:someone-else"),
                      delete(schema.audit_log)):
        with pytest.raises(DBAPIError, match="append only"):
            async with db.begin() as conn:
                await conn.execute(statement)
    async with db.connect() as conn:
        stored = (await conn.execute(select(schema.audit_log.c.hash))).scalar_one()
    assert await verify(db, "h") == (1, [], stored)              # and the entry is intact
