"""Cases and the catalogue survive a restart, on SQLite and on PostgreSQL: an open case with
its 补正 periods and 联办 parts comes back as it was, a case finished on an earlier day is
read from its row, and the serials of each acceptance day go on where they stopped."""

from __future__ import annotations

import json

from controller.core.commands import CaseStep, OpenCase, Origin, SetMatters, Source
from controller.engine import Engine
from tests.helpers import demo_config

DESK = Source("user:desk", Origin.HTTP)
MATTERS = [
    {"code": "J10", "name": "餐饮服务许可", "department": "市场监管局", "form": "joint", "promised_days": 10,
     "statutory_days": 20, "partners": ["消防救援大队"], "materials": ["申请书", "平面图"]},
    {"code": "P5", "name": "个体工商户设立登记", "department": "市场监管局", "promised_days": 5,
     "statutory_days": 15},
]


async def test_cases_and_matters_are_rebuilt_after_a_restart(db, clock):
    config = demo_config()
    e = Engine(config, db, clock)
    await e.start()
    await e.execute(SetMatters(matters=MATTERS), DESK)
    joint = (await e.execute(OpenCase(matter="J10", applicant="张三丰", materials=("申请书",),
                                      missing=("平面图",)), DESK))["case"]["number"]
    plain = (await e.execute(OpenCase(matter="P5", applicant="李四"), DESK))["case"]["number"]
    await e.execute(CaseStep(number=joint, action="supplemented"), DESK)
    await e.execute(CaseStep(number=joint, action="hand_off"), DESK)
    await e.execute(CaseStep(number=joint, action="review"), DESK)
    await e.execute(CaseStep(number=joint, action="complete_task", task="消防救援大队"), DESK)
    before = e.hall.cases.by_number[joint]
    await e.stop()

    e2 = Engine(config, db, clock)
    await e2.start()
    try:
        hall = await e2.settled()
        assert set(hall.catalogue.matters) == {"J10", "P5"}
        assert [m.code for m in hall.catalogue.search("cyfwxk")] == ["J10"]      # pinyin initials
        after = hall.cases.by_number[joint]
        assert (after.state, after.due, after.pauses, after.materials, after.token, after.query_code) == \
            (before.state, before.due, before.pauses, before.materials, before.token, before.query_code)
        assert [(t.department, t.state) for t in hall.cases.tasks[joint]] == [("市场监管局", "open"),
                                                                              ("消防救援大队", "done")]
        assert "cases" in e2.scheduler.timers and plain in e2.hall.cases.change_days   # its warning
        third = (await e2.execute(OpenCase(matter="P5", applicant="王五"), DESK))["case"]["number"]
        assert third.endswith("-0003")                                          # serials go on
        await e2.execute(CaseStep(number=joint, action="complete_task", task="市场监管局"), DESK)
        assert e2.hall.cases.by_number[joint].state == "decided"
    finally:
        await e2.stop()


async def test_a_case_turns_yellow_then_red_at_midnight_though_the_rollover_comes_first(db, clock):
    """The day's rollover and a case's colour change fall at the same midnight; whichever the
    scheduler fires first, the warning is given (the demo hall is open every day)."""
    import asyncio
    from datetime import timedelta

    from sqlalchemy import select

    from controller.storage.schema import events

    e = Engine(demo_config(), db, clock)
    await e.start()
    try:
        await e.execute(SetMatters(matters=MATTERS), DESK)
        number = (await e.execute(OpenCase(matter="P5", applicant="李四"), DESK))["case"]["number"]
        assert e.hall.cases.by_number[number].colour == "green"                 # due in 5 days
        for _ in range(7):
            clock.set(clock.now().replace(hour=0, minute=0, second=1) + timedelta(days=1))
            for _ in range(100):
                await asyncio.sleep(0.01)
                if (await e.settled()).day == clock.now().date():
                    break
            await asyncio.sleep(0.05)                                          # its timers, if any
            await e.settled()
        async with db.connect() as conn:
            rows = (await conn.execute(select(events.c.day, events.c.payload).where(
                events.c.kind == "case_warning").order_by(events.c.id))).all()
        assert [json.loads(p)["colour"] for _, p in rows] == ["yellow", "red"]
        assert e.hall.cases.by_number[number].colour == "red"
    finally:
        await e.stop()
