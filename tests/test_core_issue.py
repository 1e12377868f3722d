"""Issuing tickets (取号): numbering, priority classes, caps, quotas, hours, one per ID."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from controller.config import load_config, parse_config
from controller.core.commands import (
    SYSTEM,
    AddAppointment,
    BadArguments,
    CallNext,
    Command,
    Done,
    Login,
    Origin,
    Source,
    Take,
    decode,
)
from controller.core.errors import Refused
from controller.core.estimate import estimate
from controller.core.hall import HallState
from tests.helpers import (
    CST,
    EXAMPLE,
    MONDAY_9,
    check_invariants,
    new_hall,
    small_config,
    snapshot,
    token,
)


def take(hall: HallState, service: str = "A", now: datetime = MONDAY_9, **kw) -> dict:
    return hall.apply(Take(service=service, **kw), now)["ticket"]


def refused(hall: HallState, command: Command, now: datetime = MONDAY_9) -> Refused:
    """Apply a command that must be refused and must change nothing."""
    before = snapshot(hall)
    with pytest.raises(Refused) as info:
        hall.apply(command, now)
    assert snapshot(hall) == before, "a refused command changed the hall"
    return info.value


def bad_arguments(hall: HallState, kind: type[Command], data: object, **fixed: object) -> BadArguments:
    """Decode untrusted arguments that must be refused at the door: no command, no change."""
    before = snapshot(hall)
    with pytest.raises(BadArguments) as info:
        decode(kind, data, **fixed)
    assert info.value.code == "bad_arguments" and info.value.message
    assert snapshot(hall) == before
    return info.value


def test_numbers_are_prefix_and_daily_sequence_per_service():
    hall = new_hall()
    assert [take(hall, "A")["number"] for _ in range(3)] == ["A001", "A002", "A003"]
    assert take(hall, "B")["number"] == "B001"
    assert take(hall, "A")["number"] == "A004"
    check_invariants(hall)


def test_people_ahead_and_estimated_wait_are_shown_on_the_ticket():
    hall = new_hall()
    for _ in range(3):
        take(hall, "A")
    t = take(hall, "A")
    assert t["ahead"] == 3
    # no window serves A: no range (the page says so); the one number is as if one window did
    one = estimate(3, [], 1, 6)                                     # 6 min: the configured time
    assert one is not None
    assert t["est_wait_range"] is None and t["est_wait_min"] == one.midpoint
    hall.apply(Login(window="1", staff="1001"), MONDAY_9)
    hall.apply(Login(window="3", staff="1003"), MONDAY_9)
    two = estimate(3, [], 2, 6, free=2)            # two windows serve A, both free to call
    assert two is not None
    shown = hall.public(hall.ticket("A004"))
    assert shown["est_wait_range"] == two.as_list() and shown["est_wait_min"] == two.midpoint
    assert two.high < one.high


def test_estimate_follows_recent_service_times():
    hall = new_hall()
    for _ in range(3):
        take(hall, "A")
    hall.apply(Login(window="1", staff="1001"), MONDAY_9)
    hall.apply(CallNext(window="1"), MONDAY_9)
    hall.apply(CallNext(window="1"), MONDAY_9 + timedelta(minutes=2))   # A001 took 2 minutes
    assert hall.avg_service_min("A") == pytest.approx(2.0)
    measured = estimate(5, [2.0], 1, 6)
    assert measured is not None
    assert hall.wait_range("A", 5) == measured
    assert hall.estimate_min("A", 5) == measured.midpoint


def test_unknown_service_is_refused_without_change():
    hall = new_hall()
    err = refused(hall, Take(service="Z"))
    assert err.code == "unknown_service" and err.message


def test_daily_cap_refuses_with_quota_exhausted():
    cfg = parse_config({"hall": {"id": "t", "name": "t"},
                        "services": [{"code": "A", "name": "综合", "daily_cap": 2}],
                        "windows": [{"id": "1", "services": ["A"]}]})
    hall = new_hall(cfg)
    take(hall)
    take(hall)
    assert refused(hall, Take(service="A")).code == "quota_exhausted"


def test_green_channel_and_appointments_are_served_first_fifo_within_class():
    hall = new_hall()
    hall.apply(AddAppointment(code="BK1", service="A", day=MONDAY_9.date()), MONDAY_9)
    take(hall)                                     # A001 ordinary
    take(hall, priority="green")                   # A002 green
    take(hall, appointment="BK1")                  # A003 appointment
    take(hall, priority="green")                   # A004 green
    assert hall.public(hall.ticket("A004"))["ahead"] == 1
    hall.apply(Login(window="1", staff="1001"), MONDAY_9)
    order = [hall.apply(CallNext(window="1"), MONDAY_9)["ticket"]["number"] for _ in range(4)]
    assert order == ["A002", "A004", "A003", "A001"]


def test_appointment_codes_are_checked():
    hall = new_hall()
    hall.apply(AddAppointment(code="BK1", service="A", day=MONDAY_9.date()), MONDAY_9)
    tomorrow = (MONDAY_9.date() + timedelta(days=1)).isoformat()     # from a door: an ISO date
    hall.apply(decode(AddAppointment, {"code": "BK2", "service": "A", "day": tomorrow}), MONDAY_9)
    assert refused(hall, AddAppointment(code="BK1", service="B", day=MONDAY_9.date())).code \
        == "appointment_exists"
    assert refused(hall, Take(service="B", appointment="BK1")).code == "appointment_invalid"
    assert refused(hall, Take(service="A", appointment="BK2")).code == "appointment_invalid"
    assert refused(hall, Take(service="A", appointment="NOPE")).code == "appointment_invalid"
    first = take(hall, appointment="BK1")
    assert first["priority"] == "appointment"
    assert hall.queue.appointments["BK1"].ticket == hall.ticket(first["number"]).id
    assert refused(hall, Take(service="A", appointment="BK1")).code == "appointment_invalid"
    check_invariants(hall)


def test_one_waiting_ticket_per_id_token_per_service():
    hall = new_hall()
    first = take(hall, "A", id_token=token(1))
    err = refused(hall, Take(service="A", id_token=token(1)))
    assert err.code == "already_waiting" and first["number"] in err.message
    assert take(hall, "B", id_token=token(1))["number"] == "B001"   # another service is fine
    assert take(hall, "A", id_token=token(2))["number"] == "A002"   # another person is fine
    hall.apply(Login(window="1", staff="1001"), MONDAY_9)
    hall.apply(CallNext(window="1"), MONDAY_9)
    hall.apply(Done(window="1"), MONDAY_9)
    assert take(hall, "A", id_token=token(1))["number"] == "A003"   # served: may queue again
    check_invariants(hall)


@pytest.mark.parametrize("tok", ["tok1", "A" * 32, "a" * 31, "a" * 33, "g" * 32, "a" * 31 + "\n"])
def test_an_id_token_must_be_the_readers_hash(tok):
    hall = new_hall()
    with pytest.raises(ValidationError):
        Take(service="A", id_token=tok)
    bad_arguments(hall, Take, {"service": "A", "id_token": tok})


def test_a_blank_optional_field_from_a_device_means_not_given():
    hall = new_hall()
    cmd = decode(Take, {"service": "A", "priority": "", "appointment": "", "id_token": "",
                        "phone_tail": ""})
    assert cmd == Take(service="A")
    assert take(hall, "A", phone_tail="0123")["priority"] == "ordinary"
    assert hall.ticket("A001").phone_tail == "0123"


def test_unknown_priority_is_refused():
    hall = new_hall()
    with pytest.raises(ValidationError):
        Take(service="A", priority="vip")
    bad_arguments(hall, Take, {"service": "A", "priority": "vip"})
    assert hall.queue.seq["A"] == 0


class TestHoursAndQuotas:
    """The example county: weekdays 08:30–12:00 and 13:30–17:30, National Day off, a make-up
    Sunday, and half-day quotas of 60 for real estate (B)."""

    cfg = load_config(EXAMPLE)

    def hall_at(self, when: datetime) -> HallState:
        return HallState(self.cfg, when.date())

    @pytest.mark.parametrize("when, open_", [
        (datetime(2026, 11, 23, 8, 29, tzinfo=CST), False),   # before opening
        (datetime(2026, 11, 23, 8, 30, tzinfo=CST), True),
        (datetime(2026, 11, 23, 12, 30, tzinfo=CST), False),  # lunch break
        (datetime(2026, 11, 23, 17, 30, tzinfo=CST), False),  # closed at 17:30
        (datetime(2026, 11, 22, 10, 0, tzinfo=CST), False),   # Sunday
        (datetime(2026, 10, 2, 10, 0, tzinfo=CST), False),    # National Day (a Friday)
        (datetime(2026, 10, 10, 10, 0, tzinfo=CST), True),    # make-up working Saturday (调休)
        (datetime(2026, 12, 31, 10, 0, tzinfo=CST), False),   # the hall's own closure
        (datetime(2026, 12, 13, 10, 0, tzinfo=CST), True),    # the hall's own extra Sunday
    ])
    def test_service_hours(self, when, open_):
        hall = self.hall_at(when)
        if open_:
            assert take(hall, "A", when)["number"] == "A001"
        else:
            err = refused(hall, Take(service="A"), when)
            assert err.code == "service_closed" and "08:30-12:00" in err.message

    def test_service_with_its_own_hours(self):
        when = datetime(2026, 11, 23, 17, 10, tzinfo=CST)
        hall = self.hall_at(when)
        assert refused(hall, Take(service="C"), when).code == "service_closed"
        assert take(hall, "A", when)["number"] == "A001"

    def test_time_segment_quota(self):
        morning = datetime(2026, 11, 23, 9, 0, tzinfo=CST)
        hall = self.hall_at(morning)
        for _ in range(60):
            take(hall, "B", morning)
        err = refused(hall, Take(service="B"), morning)
        assert err.code == "quota_exhausted" and "08:30-12:00" in err.message
        afternoon = datetime(2026, 11, 23, 14, 0, tzinfo=CST)
        assert take(hall, "B", afternoon)["number"] == "B061"


def test_naive_times_are_rejected():
    hall = new_hall()
    with pytest.raises(ValueError):
        hall.apply(Take(service="A"), datetime(2026, 11, 23, 9, 0))


def test_events_carry_time_window_and_clerk():
    hall = new_hall(small_config())
    kiosk = Source("device:kiosk-1", Origin.MQTT)
    caller = Source("device:caller-1", Origin.MQTT)
    hall.apply(Take(service="A"), MONDAY_9, kiosk)
    hall.apply(Login(window="1", staff="1001"), MONDAY_9, caller)
    later = MONDAY_9 + timedelta(minutes=1)
    hall.apply(CallNext(window="1"), later, caller)
    hall.apply(Take(service="B"), later)
    events = hall.drain().events
    assert [e.kind for e in events] == ["issued", "login", "called", "issued"]
    issued, login, called, system = events
    assert (issued.actor, issued.origin, issued.number, issued.payload) == (
        "device:kiosk-1", Origin.MQTT, "A001", {"priority": "ordinary"})
    assert (login.actor, login.window, login.clerk, login.payload) == (
        "device:caller-1", "1", "1001", {"role": "A"})
    assert (called.at, called.window, called.clerk, called.number) == (later, "1", "1001", "A001")
    assert called.payload == {"how": "next", "first": True, "first_called_at": later.isoformat()}
    assert (system.actor, system.origin) == (SYSTEM.actor, SYSTEM.origin)
    assert all(e.day == MONDAY_9.date() for e in events)
