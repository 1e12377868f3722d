"""``GET /api/stats``: a period's figures per grouping for those who may read reports, never
for a clerk; today's read from the raw events, finished days from the roll-up written at the
rollover (cases per department included); bad periods refused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from controller.core.commands import SYSTEM, CallNext, Done, Login, Origin, Rollover, Source, Take
from controller.storage import schema
from controller.web.api import ENGINE
from tests.test_cases_api import MATTER, _as, _catalogue
from tests.test_security_web import server  # noqa: F401 - the fixture

CLERK = Source("user:clerk-1001", Origin.HTTP)


async def test_figures_for_a_period_by_window_and_department(server, clock, tmp_path):  # noqa: F811
    engine = server.app[ENGINE]
    await _catalogue(server)
    await engine.execute(Login(window="1", staff="1001"), CLERK)
    for _ in range(3):
        await engine.execute(Take(service="A"), Source("device:kiosk-1", Origin.MQTT))
    clock.advance(minutes=4)
    await engine.execute(CallNext(window="1"), CLERK)
    clock.advance(minutes=6)
    await engine.execute(Done(window="1"), CLERK)
    desk = await _as(server, "zongtai", "desk", tmp_path=tmp_path)
    r = await server.post("/api/cases", json={"matter": "GT01", "applicant": "张三丰"}, headers=desk)
    assert r.status == 201, await r.text()
    today = engine.hall.day.isoformat()

    viewer = await _as(server, "chaxun", "viewer", tmp_path=tmp_path)
    r = await server.get(f"/api/stats?from={today}&to={today}&by=window", headers=viewer)
    assert r.status == 200, await r.text()
    rows = {row["key"]: row for row in (await r.json())["rows"]}
    assert rows["1"]["served"] == 1 and rows["1"]["wait"]["count"] == 1
    assert rows["1"]["wait"]["median_min"] == 4.5 and rows["1"]["service"]["max_min"] == 6

    clock.set(clock.now() + timedelta(days=1))
    await engine.execute(Rollover(), SYSTEM)
    async with engine.db.connect() as conn:
        rolled = (await conn.execute(select(schema.daily_stats.c.by, schema.daily_stats.c.key))).all()
    assert ("department", MATTER["department"]) in rolled and ("window", "1") in rolled
    viewer = await _as(server, "chaxun2", "viewer", tmp_path=tmp_path)     # a day later: sign in again
    r = await server.get(f"/api/stats?from={today}&to={today}&by=department", headers=viewer)
    (row,) = (await r.json())["rows"]
    assert row["key"] == MATTER["department"] and row["cases"]["opened"] == 1
    r = await server.get(f"/api/stats?from={today}&to={today}", headers=viewer)
    (hall,) = (await r.json())["rows"]
    assert hall["issued"] == 3 and hall["closed"] == 2 and hall["served"] == 1

    bad = await server.get(f"/api/stats?from={today}&to=2000-01-01", headers=viewer)
    assert bad.status == 400
    assert (await server.get(f"/api/stats?from={today}&to={today}&by=colour", headers=viewer)).status == 400
    await _as(server, "lina", "clerk", tmp_path=tmp_path, staff="1001")
    assert (await server.get(f"/api/stats?from={today}&to={today}")).status == 403


def test_the_command_line_rebuilds_finished_days_roll_ups(tmp_path, capsys):
    """``yimen stats rollup`` writes the roll-ups of finished days again, the same rows each
    time; the current day gets none."""
    import asyncio

    from controller.cli import main
    from controller.clock import FakeClock
    from controller.engine import Engine
    from controller.storage.db import database_url, open_database, upgrade
    from tests.helpers import MONDAY_9, demo_config

    url = database_url(None, str(tmp_path))

    async def month() -> list:
        db = open_database(url)
        await upgrade(db)
        clock = FakeClock(MONDAY_9)
        engine = Engine(demo_config(), db, clock)
        await engine.start()
        for _ in range(2):
            await engine.execute(Take(service="A"), Source("device:kiosk-1", Origin.MQTT))
            clock.advance(days=1)
            await engine.execute(Rollover(), SYSTEM)
        await engine.stop()
        async with db.begin() as conn:
            rows = (await conn.execute(select(schema.daily_stats).order_by(
                schema.daily_stats.c.day, schema.daily_stats.c.by, schema.daily_stats.c.key))).all()
            await conn.execute(schema.daily_stats.delete())
        await db.dispose()
        return rows

    async def stored() -> list:
        db = open_database(url)
        async with db.connect() as conn:
            rows = (await conn.execute(select(schema.daily_stats).order_by(
                schema.daily_stats.c.day, schema.daily_stats.c.by, schema.daily_stats.c.key))).all()
        await db.dispose()
        return rows

    written = asyncio.run(month())
    assert {r.day for r in written} == {MONDAY_9.date(), MONDAY_9.date() + timedelta(days=1)}
    for _ in range(2):
        assert main(["stats", "rollup", "--data", str(tmp_path)]) == 0
        assert "rolled up 2 days" in capsys.readouterr().out
        assert asyncio.run(stored()) == written
    assert main(["stats", "rollup", "--data", str(tmp_path), "--from", "2026-11-24"]) == 0
    assert "rolled up 1 days" in capsys.readouterr().out
