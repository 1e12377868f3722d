"""The engine's promises beyond storage: readers and listeners see committed state only, one
command storage refuses hurts no other, every event says who and by which door, and the
engine's own timers (rating time-outs, midnight) run with no device bus at all."""

from __future__ import annotations

import asyncio
import json
from typing import get_type_hints

import pytest
from sqlalchemy import select

from controller.config import HallConfig, LowerHall, Tier
from controller.core.commands import (
    COMMANDS,
    AddAppointment,
    AddItem,
    CallNext,
    CallNumber,
    Cancel,
    CancelAppointment,
    CaseClock,
    CaseStep,
    ChangeItem,
    ChangeSettings,
    Done,
    Evaluate,
    ExpireEvaluation,
    FollowupClock,
    FollowupStep,
    Hold,
    ImportConfig,
    Login,
    Logout,
    NoShow,
    OpenCase,
    Origin,
    Pause,
    Rate,
    Recall,
    ReceiveCase,
    RemoteStep,
    RemoveItem,
    RemoveMatter,
    Resume,
    Rollover,
    SetDay,
    SetMatters,
    Source,
    Start,
    Take,
    Transfer,
    UpperRefused,
)
from controller.core.configuration import live_data
from controller.core.errors import Refused, StorageUnavailable
from controller.core.events import PAYLOADS, EventKind
from controller.engine import Committed, Engine
from controller.storage import schema
from tests.helpers import ROOT, demo_config

KIOSK = Source("device:kiosk-1", Origin.MQTT)
CASE = "000000-demo-20261123-0001"                 # the demo hall's first case on MONDAY_9
CASE2 = "000000-demo-20261123-0002"
CLERK = Source("user:clerk-1001", Origin.HTTP)


def tiered() -> HallConfig:
    """The demo hall as a town centre: a county above it, a village below."""
    return demo_config().model_copy(update={"tier": Tier(
        level="town", upper="county", upper_broker="mqtt://127.0.0.1:1",
        lower=(LowerHall(id="village", name="村"),))})


@pytest.fixture
async def engine(db, clock):
    e = Engine(tiered(), db, clock)
    await e.start()
    yield e
    await e.stop()


def poison_commits(engine: Engine, monkeypatch, when) -> None:  # noqa: ANN001
    """Make storage refuse any batch with a row whose values match ``when`` (as a real
    database refuses a value it cannot store), the rest of the time write as usual."""
    real = engine.repo.write

    def write(conn, rows):  # noqa: ANN001
        if any(when(set(row.values() if isinstance(row, dict) else row))
               for _, params in rows for row in params):
            raise OSError("value refused by storage")
        real(conn, rows)

    monkeypatch.setattr(engine.repo, "write", write)


async def test_a_commit_that_fails_mid_burst_shows_nothing_uncommitted(db, engine, monkeypatch):
    """Readers of the settled state and listeners never see a ticket that was not committed;
    after the failed commit they are told to show the rebuilt state."""
    poison_commits(engine, monkeypatch, lambda values: bool(values & {"A030", "A031"}))
    seen: set[str] = set()
    rebuilt = 0

    def listener(committed: Committed) -> None:
        nonlocal rebuilt
        rebuilt += committed.rebuilt
        seen.update(e.number for e in committed.events if e.number)

    engine.subscribe(listener)
    stop = asyncio.Event()

    async def reader() -> None:          # a page or the bus, reading between commits
        while not stop.is_set():
            hall = await engine.settled()
            seen.update(t.number for t in hall.queue.all.values())
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    results = await asyncio.gather(*[engine.execute(Take(service="A"), KIOSK) for _ in range(80)],
                                   return_exceptions=True)
    stop.set()
    await asyncio.gather(*readers)
    issued = [r["ticket"]["number"] for r in results if isinstance(r, dict)]
    refused = [r for r in results if not isinstance(r, dict)]
    assert refused and all(isinstance(r, StorageUnavailable) for r in refused)
    assert rebuilt >= 1
    async with db.connect() as conn:
        stored = set((await conn.execute(select(schema.tickets.c.number))).scalars())
    assert stored == set(issued)
    assert seen <= stored, f"shown but never committed: {sorted(seen - stored)}"


async def test_one_command_storage_refuses_fails_alone_in_its_batch(db, engine, monkeypatch):
    poison_commits(engine, monkeypatch, lambda values: "0000" in values)
    takes = [engine.execute(Take(service="B", phone_tail="0000" if i == 50 else None), KIOSK)
             for i in range(100)]
    results = await asyncio.gather(*takes, return_exceptions=True)
    assert isinstance(results[50], StorageUnavailable)
    good = [r for i, r in enumerate(results) if i != 50]
    assert all(isinstance(r, dict) for r in good), [r for r in good if not isinstance(r, dict)]
    assert len({r["ticket"]["number"] for r in good}) == 99
    assert engine.stats.isolated >= 1


def every_command() -> list[tuple[object, Source]]:
    """One of each command, in an order the rules allow, from several doors."""
    admin = Source("user:admin", Origin.ADMIN)
    pad = Source("device:caller-w01", Origin.GATEWAY)
    return [
        (AddAppointment(code="YY0001", service="A", day="2026-11-23"), admin),
        (Take(service="A", appointment="YY0001"), KIOSK),
        (AddAppointment(code="YY0002", service="B", day="2026-11-24"), admin),
        (CancelAppointment(code="YY0002"), admin),
        (AddItem(section="notices", item={"id": "n1", "text": "今日下午停电检修"}), admin),
        (ChangeItem(section="notices", id="n1", changes={"enabled": False}), admin),
        (RemoveItem(section="notices", id="n1"), admin),
        (ChangeSettings(changes={"max_recalls": 3}), admin),
        (SetDay(day="2026-12-24", kind="holiday"), admin),
        (Take(service="A"), KIOSK),
        (Take(service="A"), KIOSK),
        (Cancel(number="A003"), Source("user:citizen", Origin.HTTP)),
        (Login(window="1", staff="1001"), pad),
        (Pause(window="1"), pad),
        (Resume(window="1"), pad),
        (CallNext(window="1"), pad),
        (Recall(window="1"), pad),
        (Start(window="1"), pad),
        (Evaluate(window="1"), pad),
        (Hold(window="1"), CLERK),
        (CallNumber(window="1", number="A001"), CLERK),
        (Transfer(window="1", to_service="B"), CLERK),
        (CallNext(window="1"), CLERK),
        (Done(window="1"), CLERK),
        (SetMatters(matters=[{"code": "M1", "name": "个体工商户登记", "department": "市场监管局"}]), admin),
        (OpenCase(matter="M1", applicant="张三丰", ticket="A001"), Source("user:desk", Origin.HTTP)),
        (CaseStep(number=CASE, action="hand_off"), Source("user:desk", Origin.HTTP)),
        (CaseClock(number=CASE), Source("system", Origin.SCHEDULER)),
        (SetMatters(matters=[{"code": "U1", "name": "采矿许可", "department": "自然资源局", "form": "upper",
                              "promised_days": 15, "statutory_days": 20}]), admin),
        (OpenCase(matter="U1", applicant="李四"), Source("user:desk", Origin.HTTP)),
        (CaseStep(number=CASE2, action="escalate"), Source("user:desk", Origin.HTTP)),
        (RemoteStep(peer="county", seq=1, number=CASE2, upper_number="330100-county-20261123-0001",
                    after="accepted", due="2026-12-14"), Source("hall:county", Origin.TIER)),
        (ReceiveCase(peer="village", seq=1, number="330100-village-20261123-0001", matter="U1",
                     matter_name="采矿许可", department="自然资源局", limit_days=15, applicant="王*",
                     accepted_on="2026-11-23"), Source("hall:village", Origin.TIER)),
        (UpperRefused(number=CASE2, reason="malformed"), Source("hall:county", Origin.TIER)),
        (RemoveMatter(code="M1"), admin),
        (Rollover(), Source("system", Origin.SCHEDULER)),
    ]


async def test_every_commands_events_carry_day_actor_and_origin(db, engine, clock):
    sent = every_command()
    for command, source in sent:
        await engine.execute(command, source)
    # the rating, a no-show and a logout, with the session the evaluator was shown
    await engine.execute(Take(service="A"), KIOSK)
    await engine.execute(CallNext(window="1"), CLERK)
    session = (await engine.execute(Evaluate(window="1"), CLERK))["evaluation"]["session"]
    rate = Rate(window="1", session=session, level="dissatisfied", reasons=("efficiency",))
    await engine.execute(rate, Source("device:evaluator-w01", Origin.MQTT))
    await engine.execute(FollowupStep(session=session, action="visit", note="已电话回访"),   # the 差评's
                         Source("user:supervisor", Origin.HTTP))
    await engine.execute(FollowupClock(session=session), Source("system", Origin.SCHEDULER))
    await engine.execute(Evaluate(window="1"), CLERK)
    opened = engine.hall.open_evaluation("1")
    await engine.execute(ExpireEvaluation(session=opened.id), Source("system", Origin.SCHEDULER))
    await engine.execute(NoShow(window="1"), CLERK)
    await engine.execute(Logout(window="1"), CLERK)
    await engine.execute(ImportConfig(data=live_data(engine.config)), Source("user:admin", Origin.ADMIN))
    used = {type(c) for c, _ in sent} | {Rate, ExpireEvaluation, NoShow, Logout, ImportConfig,
                                          FollowupStep, FollowupClock}
    assert used == set(COMMANDS.values()), "every command is tried"

    async with db.connect() as conn:
        rows = (await conn.execute(select(schema.events).order_by(schema.events.c.id))).mappings().all()
    doors = {(s.actor, s.origin.value) for _, s in sent} | {
        ("device:evaluator-w01", "mqtt"), ("user:clerk-1001", "http"), ("system", "scheduler"),
        ("user:supervisor", "http")}
    assert {r["kind"] for r in rows} >= {"appointment_added", "issued", "cancelled", "login",
                                        "paused", "resumed", "called", "recalled", "serving",
                                        "evaluation_opened", "held", "transferred", "done",
                                        "rated", "unrated", "no_show", "logout",
                                        "appointment_cancelled", "config_changed", "followup_opened",
                                        "followup_step"}
    for r in rows:
        assert r["day"] == clock.now().date() and r["v"] == 2
        assert (r["actor"], r["origin"]) in doors, dict(r)
    rated = next(r for r in rows if r["kind"] == "rated")
    assert (rated["number"], rated["actor"]) == ("A004", "device:evaluator-w01")
    assert json.loads(rated["payload"])["reasons"] == ["efficiency"]
    # a held ticket called back keeps its first call time
    called = [json.loads(r["payload"]) for r in rows if r["kind"] == "called" and r["number"] == "A001"]
    assert [c["first"] for c in called] == [True, False]
    assert called[0]["first_called_at"] == called[1]["first_called_at"]


async def test_a_rating_prompt_expires_with_no_bus_and_after_a_restart(db, clock):
    config = demo_config()
    e = Engine(config, db, clock)
    await e.start()
    await e.execute(Take(service="A"), KIOSK)
    await e.execute(Login(window="1", staff="1001"), CLERK)
    await e.execute(CallNext(window="1"), CLERK)
    session = (await e.execute(Evaluate(window="1"), CLERK))["evaluation"]["session"]
    assert f"rating:{session}" in e.scheduler.timers
    await e.stop()

    e2 = Engine(config, db, clock)                         # restarted: the timer is rebuilt
    await e2.start()
    assert f"rating:{session}" in e2.scheduler.timers
    clock.advance(seconds=config.hall.evaluation_timeout_s + 1)
    for _ in range(200):
        if (await e2.settled()).open_evaluation("1") is None:
            break
        await asyncio.sleep(0.01)
    assert e2.hall.open_evaluation("1") is None
    assert f"rating:{session}" not in e2.scheduler.timers
    await e2.stop()
    async with db.connect() as conn:
        row = (await conn.execute(select(schema.evaluations))).mappings().one()
        unrated = (await conn.execute(select(schema.events).where(
            schema.events.c.kind == "unrated"))).mappings().one()
    assert row["closed_at"] is not None and row["level"] is None      # 未评价, never a default
    assert (unrated["actor"], unrated["origin"]) == ("system", "scheduler")


async def test_a_refused_command_is_answered_and_leaves_no_event(db, engine):
    with pytest.raises(Refused) as info:
        await engine.execute(CallNext(window="1"), CLERK)
    assert info.value.code == "not_logged_in"
    async with db.connect() as conn:
        kinds = (await conn.execute(select(schema.events.c.kind))).scalars().all()
    assert "called" not in kinds


def test_the_event_log_contract_names_every_kind_and_payload_key():
    doc = (ROOT / "docs" / "events.md").read_text()
    assert set(PAYLOADS) == set(EventKind)
    for kind, payload in PAYLOADS.items():
        assert f"| `{kind.value}` |" in doc, kind
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{kind.value}` |"))
        for key in get_type_hints(payload):
            assert f"`{key}`" in row, (kind, key)
