"""Issuing tickets (取号): numbering, priority classes, caps, quotas, hours, one per ID."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from controller.config import load_config, parse_config
from controller.core.errors import Refused
from controller.core.hall import HallState
from tests.helpers import CST, EXAMPLE, MONDAY_9, check_invariants, new_hall, small_config, snapshot


def take(hall: HallState, service: str = "A", now: datetime = MONDAY_9, **kw) -> dict:
    return hall.take(now, service, **kw)["ticket"]


def refused(hall: HallState, fn, *args, **kw) -> Refused:
    """Run a command that must be refused and must change nothing."""
    before = snapshot(hall)
    with pytest.raises(Refused) as info:
        fn(*args, **kw)
    assert snapshot(hall) == before, "a refused command changed the hall"
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
    # 3 ahead × 6 min (configured service time) ÷ 1 (no window open counts as one)
    assert t["est_wait_min"] == 18
    hall.login(MONDAY_9, "1", "1001")
    hall.login(MONDAY_9, "3", "1003")
    assert hall.public(hall.ticket("A004"))["est_wait_min"] == 9  # two windows serve A


def test_estimate_follows_recent_service_times():
    hall = new_hall()
    for _ in range(3):
        take(hall, "A")
    hall.login(MONDAY_9, "1", "1001")
    hall.call_next(MONDAY_9, "1")
    hall.call_next(MONDAY_9 + timedelta(minutes=2), "1")   # A001 took 2 minutes
    assert hall.avg_service_min("A") == pytest.approx(2.0)
    assert hall.estimate_min("A", 5) == 10


def test_unknown_service_is_refused_without_change():
    hall = new_hall()
    err = refused(hall, hall.take, MONDAY_9, "Z")
    assert err.code == "unknown_service" and err.message


def test_daily_cap_refuses_with_quota_exhausted():
    cfg = parse_config({"hall": {"id": "t", "name": "t"},
                        "services": [{"code": "A", "name": "综合", "daily_cap": 2}],
                        "windows": [{"id": "1", "services": ["A"]}]})
    hall = new_hall(cfg)
    take(hall)
    take(hall)
    assert refused(hall, hall.take, MONDAY_9, "A").code == "quota_exhausted"


def test_green_channel_and_appointments_are_served_first_fifo_within_class():
    hall = new_hall()
    hall.add_appointment(MONDAY_9, "BK1", "A", MONDAY_9.date().isoformat())
    take(hall)                                     # A001 ordinary
    take(hall, priority="green")                   # A002 green
    take(hall, appointment="BK1")                  # A003 appointment
    take(hall, priority="green")                   # A004 green
    assert hall.public(hall.ticket("A004"))["ahead"] == 1
    hall.login(MONDAY_9, "1", "1001")
    order = [hall.call_next(MONDAY_9, "1")["ticket"]["number"] for _ in range(4)]
    assert order == ["A002", "A004", "A003", "A001"]


def test_appointment_codes_are_checked():
    hall = new_hall()
    hall.add_appointment(MONDAY_9, "BK1", "A", MONDAY_9.date().isoformat())
    hall.add_appointment(MONDAY_9, "BK2", "A", (MONDAY_9.date() + timedelta(days=1)).isoformat())
    assert refused(hall, hall.take, MONDAY_9, "B", appointment="BK1").code == "appointment_invalid"
    assert refused(hall, hall.take, MONDAY_9, "A", appointment="BK2").code == "appointment_invalid"
    assert refused(hall, hall.take, MONDAY_9, "A", appointment="NOPE").code == "appointment_invalid"
    assert take(hall, appointment="BK1")["priority"] == "appointment"
    assert refused(hall, hall.take, MONDAY_9, "A", appointment="BK1").code == "appointment_invalid"


def test_one_waiting_ticket_per_id_token_per_service():
    hall = new_hall()
    first = take(hall, "A", id_token="tok1")
    err = refused(hall, hall.take, MONDAY_9, "A", id_token="tok1")
    assert err.code == "already_waiting" and first["number"] in err.message
    assert take(hall, "B", id_token="tok1")["number"] == "B001"   # another service is fine
    assert take(hall, "A", id_token="tok2")["number"] == "A002"   # another person is fine
    hall.login(MONDAY_9, "1", "1001")
    hall.call_next(MONDAY_9, "1")
    hall.done(MONDAY_9, "1")
    assert take(hall, "A", id_token="tok1")["number"] == "A003"   # served: may queue again


def test_unknown_priority_is_refused():
    hall = new_hall()
    assert refused(hall, hall.take, MONDAY_9, "A", priority="vip").code == "bad_priority"


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
        (datetime(2026, 10, 11, 10, 0, tzinfo=CST), True),    # make-up working Sunday (调休)
    ])
    def test_service_hours(self, when, open_):
        hall = self.hall_at(when)
        if open_:
            assert hall.take(when, "A")["ticket"]["number"] == "A001"
        else:
            err = refused(hall, hall.take, when, "A")
            assert err.code == "service_closed" and "08:30-12:00" in err.message

    def test_service_with_its_own_hours(self):
        when = datetime(2026, 11, 23, 17, 10, tzinfo=CST)
        hall = self.hall_at(when)
        assert refused(hall, hall.take, when, "C").code == "service_closed"
        assert hall.take(when, "A")["ticket"]["number"] == "A001"

    def test_time_segment_quota(self):
        morning = datetime(2026, 11, 23, 9, 0, tzinfo=CST)
        hall = self.hall_at(morning)
        for _ in range(60):
            hall.take(morning, "B")
        err = refused(hall, hall.take, morning, "B")
        assert err.code == "quota_exhausted" and "08:30-12:00" in err.message
        afternoon = datetime(2026, 11, 23, 14, 0, tzinfo=CST)
        assert hall.take(afternoon, "B")["ticket"]["number"] == "B061"


def test_naive_times_are_rejected():
    hall = new_hall()
    with pytest.raises(ValueError):
        hall.take(datetime(2026, 11, 23, 9, 0), "A")


def test_events_carry_time_window_and_clerk():
    hall = new_hall(small_config())
    take(hall)
    hall.login(MONDAY_9, "1", "1001")
    later = MONDAY_9 + timedelta(minutes=1)
    hall.call_next(later, "1")
    events = hall.drain().events
    assert [e.kind for e in events] == ["issued", "login", "called"]
    called = events[-1]
    assert (called.at, called.window, called.clerk, called.number) == (later, "1", "1001", "A001")
