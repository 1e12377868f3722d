"""Daily rollover at the hall's local midnight (日切) and decoding commands at the doors."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from controller.core.commands import (
    COMMANDS,
    SYSTEM,
    WINDOW_KEYS,
    AddAppointment,
    CallNext,
    Done,
    Hold,
    Login,
    Origin,
    Rate,
    Rollover,
    Source,
    Take,
    WindowCommand,
    decode,
)
from controller.core.errors import Refused
from controller.core.model import Appointment, Ticket, TicketState
from tests.helpers import CST, check_invariants, new_hall, token
from tests.test_core_issue import bad_arguments

EVENING = datetime(2026, 11, 23, 23, 50, tzinfo=CST)


def test_numbering_restarts_and_leftovers_are_closed_as_not_served():
    hall = new_hall(now=EVENING)
    for _ in range(4):
        hall.apply(Take(service="A"), EVENING)
    hall.apply(Login(window="1", staff="1001"), EVENING)
    hall.apply(CallNext(window="1"), EVENING)     # A001 at the window
    hall.apply(CallNext(window="1"), EVENING)     # A001 done, A002 at the window
    hall.apply(Hold(window="1"), EVENING)         # A002 held
    hall.apply(CallNext(window="1"), EVENING)     # A003 at the window over midnight
    hall.drain()
    after = EVENING + timedelta(minutes=15)
    kiosk = Source("device:kiosk-1", Origin.MQTT)
    out = hall.apply(Take(service="A"), after, kiosk)["ticket"]
    assert out["number"] == "A001" and out["day"] == "2026-11-24"
    changes = hall.drain()
    assert changes.day == after.date()
    states = {(t.day.isoformat(), t.number): t.state for t in changes.of(Ticket)}
    assert states[("2026-11-23", "A002")] is TicketState.NOT_SERVED   # held: closed
    assert states[("2026-11-23", "A004")] is TicketState.NOT_SERVED   # waiting: closed
    assert states[("2026-11-24", "A001")] is TicketState.WAITING
    closed = [e for e in changes.events if e.kind == "closed"]
    assert sorted(e.number for e in closed) == ["A002", "A004"]
    assert all(e.payload == {"reason": "rollover"} and e.day == EVENING.date() for e in closed)
    rollover = next(e for e in changes.events if e.kind == "rollover")
    assert rollover.payload == {"from_day": "2026-11-23", "to_day": "2026-11-24", "closed": 2}
    assert rollover.day == after.date()
    # the kiosk's take noticed midnight, but the rollover is the system's; the take the kiosk's
    by = {e.kind: (e.actor, e.origin) for e in changes.events}
    assert by["rollover"] == by["closed"] == ("system", Origin.SCHEDULER)
    assert by["issued"] == ("device:kiosk-1", Origin.MQTT)
    # the ticket at the window stays there and is finished normally
    assert hall.window_view("1")["ticket"] == "A003"
    assert set(hall.queue.all) == {"20261123-A003", "20261124-A001"}
    hall.apply(Done(window="1"), after)
    check_invariants(hall)


def test_the_schedulers_rollover_command():
    hall = new_hall(now=EVENING)
    hall.apply(Take(service="A"), EVENING)
    hall.drain()
    (when, cmd) = hall.deadlines()["rollover"]
    assert (when, cmd) == (datetime(2026, 11, 24, 0, 0, tzinfo=CST), Rollover())
    assert hall.apply(cmd, when) == {"day": "2026-11-24"}
    events = hall.drain().events
    assert [e.kind for e in events] == ["closed", "rollover"]
    assert all((e.actor, e.origin) == ("system", Origin.SCHEDULER) for e in events)
    assert hall.apply(Rollover(), when) == {"day": "2026-11-24"}       # once only
    assert not hall.drain()
    assert hall.deadlines()["rollover"][0] == datetime(2026, 11, 25, 0, 0, tzinfo=CST)


def test_bookings_for_past_days_are_dropped_at_rollover():
    hall = new_hall(now=EVENING)
    for code, day in [("TODAY", date(2026, 11, 23)), ("TOMORROW", date(2026, 11, 24)),
                      ("LATER", date(2026, 11, 30))]:
        hall.apply(AddAppointment(code=code, service="A", day=day), EVENING)
    hall.apply(Take(service="A", appointment="TODAY"), EVENING)
    assert refused_code(hall, Take(service="A", appointment="TOMORROW"), EVENING) \
        == "appointment_invalid"
    hall.drain()
    hall.apply(Rollover(), EVENING + timedelta(minutes=10))
    assert set(hall.queue.appointments) == {"TOMORROW", "LATER"}
    out = hall.apply(Take(service="A", appointment="TOMORROW"), EVENING + timedelta(minutes=11))
    assert out["ticket"]["priority"] == "appointment"
    (booking,) = hall.drain().of(Appointment)
    assert booking.ticket == "20261124-A001"
    check_invariants(hall)


def refused_code(hall, command, now) -> str:
    with pytest.raises(Refused) as info:
        hall.apply(command, now)
    return info.value.code


def test_midnight_is_the_halls_local_midnight_not_utc():
    hall = new_hall(now=EVENING)
    hall.apply(Take(service="A"), EVENING)
    # 23:59 in Shanghai is 15:59 UTC; still the same hall day
    utc = (EVENING + timedelta(minutes=9)).astimezone(timezone.utc)
    assert hall.apply(Take(service="A"), utc)["ticket"]["number"] == "A002"
    hall.apply(Rollover(), EVENING + timedelta(minutes=10))
    assert hall.day.isoformat() == "2026-11-24"


def test_a_clock_stepping_back_does_not_roll_back_the_day():
    hall = new_hall(now=EVENING)
    hall.apply(Rollover(), EVENING + timedelta(hours=1))
    hall.apply(Take(service="A"), EVENING + timedelta(hours=1))
    hall.apply(Take(service="A"), EVENING)       # clock stepped back across midnight
    assert hall.day.isoformat() == "2026-11-24" and hall.queue.seq["A"] == 2


def test_every_command_has_one_wire_name_and_the_window_keys_are_window_commands():
    assert COMMANDS["take"] is Take and COMMANDS["rate"] is Rate
    assert len(COMMANDS) == len({c.name for c in COMMANDS.values()})
    assert all(issubclass(kind, WindowCommand) for kind in WINDOW_KEYS.values())
    assert {"next", "call", "start", "evaluate", "transfer"} <= set(WINDOW_KEYS)


@pytest.mark.parametrize("data", [{"servce": "A"}, {}, {"service": 7}, ["A"], "A", None,
                                  {"service": "A", "extra": 1}, {"service": ""},
                                  {"service": "A" * 9}, {"service": "A", "priority": 1}])
def test_bad_arguments_are_refused_at_the_door(data):
    hall = new_hall(now=EVENING)
    bad_arguments(hall, Take, data)


def test_missing_fields_are_told_from_bad_ones():
    hall = new_hall(now=EVENING)
    assert bad_arguments(hall, Take, {}).missing
    assert bad_arguments(hall, Rate, {"session": "s", "level": "basic"}).missing   # no window
    assert not bad_arguments(hall, Take, {"service": 7}).missing


@pytest.mark.parametrize("kind, data", [
    (Take, {"service": "A\ud800"}),                              # a lone surrogate
    (Take, {"service": "A", "phone_tail": "\ud800"}),
    (Take, {"service": "A", "appointment": "BK\ud800"}),
    (AddAppointment, {"code": "\ud800", "service": "A", "day": "2026-11-24"}),
    (Login, {"window": "1", "staff": "1001\ud800"}),
    (Take, {"service": "A", "phone_tail": "12345"}),             # a phone tail is four digits
    (Take, {"service": "A", "phone_tail": "123"}),
    (Take, {"service": "A", "phone_tail": "12a4"}),
    (Take, {"service": "A", "phone_tail": 1234}),
    (Take, {"service": "A", "id_token": "tok1"}),                # the reader's keyed hash only
    (Take, {"service": "A", "id_token": "A" * 32}),
    (Take, {"service": "A", "id_token": "a" * 31}),
    (Take, {"service": "A", "id_token": "a" * 64}),
    (Take, {"service": "A", "id_token": "110101199003077777"}),  # never a raw ID number
    (AddAppointment, {"code": "BK1", "service": "A", "day": "2026-02-30"}),   # no such day
    (AddAppointment, {"code": "BK1", "service": "A", "day": "2026-13-01"}),
    (AddAppointment, {"code": "BK1", "service": "A", "day": "tomorrow"}),
    (AddAppointment, {"code": "BK1", "service": "A", "day": 20261124}),
])
def test_malformed_fields_are_refused_as_bad_arguments(kind, data):
    hall = new_hall(now=EVENING)
    err = bad_arguments(hall, kind, data)
    assert not err.missing
    err.as_dict()["message_en"].encode("utf-8")          # the detail is always sendable


def test_well_formed_fields_pass_the_door():
    take = decode(Take, {"service": "A", "phone_tail": "0123", "id_token": token(7)})
    assert (take.phone_tail, take.id_token) == ("0123", token(7))
    booking = decode(AddAppointment, {"code": "BK-1_x", "service": "A", "day": "2026-02-28"})
    assert booking.day == date(2026, 2, 28)
    assert decode(Rollover, {}) == Rollover()


def test_a_decoded_command_runs_like_a_built_one():
    hall = new_hall(now=EVENING)
    out = hall.apply(decode(Take, {"service": "A"}), EVENING, SYSTEM)
    assert out["ticket"]["number"] == "A001"


def test_refusal_has_chinese_and_english_text():
    hall = new_hall(now=EVENING)
    with pytest.raises(Refused) as info:
        hall.apply(CallNext(window="1"), EVENING)
    body = info.value.as_dict()
    assert body["code"] == "not_logged_in" and body["message"] == "请先登录" and body["message_en"]
