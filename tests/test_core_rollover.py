"""Daily rollover at the hall's local midnight (日切) and the command dispatcher."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from controller.core.commands import Command, apply
from controller.core.errors import Refused
from controller.core.model import TicketState
from tests.helpers import CST, check_invariants, new_hall
from tests.test_core_issue import refused

EVENING = datetime(2026, 11, 23, 23, 50, tzinfo=CST)


def test_numbering_restarts_and_leftovers_are_closed_as_not_served():
    hall = new_hall(now=EVENING)
    for _ in range(4):
        hall.take(EVENING, "A")
    hall.login(EVENING, "1", "1001")
    hall.call_next(EVENING, "1")               # A001 at the window over midnight
    hall.call_next(EVENING, "1")               # A001 done, A002 at the window
    hall.hold(EVENING, "1")                    # A002 held
    hall.call_next(EVENING, "1")               # A003 at the window
    hall.drain()
    after = EVENING + timedelta(minutes=15)
    out = hall.take(after, "A")["ticket"]
    assert out["number"] == "A001" and out["day"] == "2026-11-24"
    changes = hall.drain()
    assert changes.day == after.date()
    states = {(t.day.isoformat(), t.number): t.state for t in changes.tickets.values()}
    assert states[("2026-11-23", "A002")] is TicketState.NOT_SERVED   # held: closed
    assert states[("2026-11-23", "A004")] is TicketState.NOT_SERVED   # waiting: closed
    rollover = next(e for e in changes.events if e.kind == "rollover")
    assert rollover.data == {"from_day": "2026-11-23", "to_day": "2026-11-24", "closed": 2}
    # the ticket at the window stays there and is finished normally
    assert hall.window_view("1")["ticket"] == "A003"
    hall.done(after, "1")
    check_invariants(hall)


def test_midnight_is_the_halls_local_midnight_not_utc():
    hall = new_hall(now=EVENING)
    hall.take(EVENING, "A")
    # 23:59 in Shanghai is 15:59 UTC; still the same hall day
    utc = (EVENING + timedelta(minutes=9)).astimezone(timezone.utc)
    assert hall.take(utc, "A")["ticket"]["number"] == "A002"
    hall.rollover(EVENING + timedelta(minutes=10))
    assert hall.day.isoformat() == "2026-11-24"


def test_a_clock_stepping_back_does_not_roll_back_the_day():
    hall = new_hall(now=EVENING)
    hall.rollover(EVENING + timedelta(hours=1))
    hall.take(EVENING + timedelta(hours=1), "A")
    hall.take(EVENING, "A")                    # clock stepped back across midnight
    assert hall.day.isoformat() == "2026-11-24" and hall.seq["A"] == 2


def test_dispatcher_rejects_unknown_commands_and_bad_arguments():
    hall = new_hall(now=EVENING)
    for cmd, code in [(Command("explode"), "unknown_command"),
                      (Command("take", {"servce": "A"}), "bad_arguments"),
                      (Command("take", {}), "bad_arguments"),
                      (Command("take", {"service": 7}), "bad_arguments"),
                      (Command("take", ["A"]), "bad_arguments")]:
        assert refused(hall, apply, hall, cmd, EVENING).code == code
    assert apply(hall, Command("take", {"service": "A"}), EVENING)["ticket"]["number"] == "A001"


def test_refusal_has_chinese_and_english_text():
    hall = new_hall(now=EVENING)
    with pytest.raises(Refused) as info:
        hall.call_next(EVENING, "1")
    body = info.value.as_dict()
    assert body["code"] == "not_logged_in" and body["message"] == "请先登录" and body["message_en"]
