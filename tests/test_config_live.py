"""Live configuration in the core: changes take effect at once, what would strand tickets or
clerks is refused with nothing changed, and every change is an event with its actor."""

from __future__ import annotations

from datetime import date

import pytest

from controller.core.commands import (
    AddItem,
    CallNext,
    ChangeItem,
    ChangeSettings,
    Done,
    ImportConfig,
    Login,
    Origin,
    RemoveItem,
    SetDay,
    Source,
    Take,
)
from controller.core.configuration import live_data
from controller.core.errors import Refused
from controller.core.events import EventKind
from tests.helpers import MONDAY_9, check_invariants, new_hall, snapshot

ADMIN = Source("user:admin", Origin.ADMIN)
NEW_SERVICE = {"code": "F", "name": "公积金", "category": "公积金", "avg_service_min": 5}


def refused(hall, command, code: str) -> Refused:  # noqa: ANN001
    """``command`` is refused with ``code`` and leaves the hall exactly as it was."""
    before, config = snapshot(hall), live_data(hall.config)
    with pytest.raises(Refused) as exc:
        hall.apply(command, MONDAY_9, ADMIN)
    assert exc.value.code == code, exc.value
    assert snapshot(hall) == before and live_data(hall.config) == config
    return exc.value


def test_a_new_service_is_offered_and_issues_its_first_number_at_once():
    hall = new_hall()
    hall.apply(AddItem(section="services", item=NEW_SERVICE), MONDAY_9, ADMIN)
    hall.apply(ChangeItem(section="windows", id="1", changes={"services": ["A", "B", "F"]}), MONDAY_9, ADMIN)
    assert "F" in [s["service"] for s in hall.services_view()]
    ticket = hall.apply(Take(service="F"), MONDAY_9)["ticket"]
    assert (ticket["number"], ticket["service_name"]) == ("F001", "公积金")
    hall.apply(Login(window="1", staff="1001"), MONDAY_9)
    hall.apply(Take(service="F"), MONDAY_9)
    check_invariants(hall)
    events = [e for e in hall.changes.events if e.kind is EventKind.CONFIG_CHANGED]
    assert [(e.payload["section"], e.payload["action"], e.actor) for e in events] == [
        ("services", "added", "user:admin"), ("windows", "changed", "user:admin")]
    assert events[1].payload["before"] == {"services": ["A", "B"]}
    assert hall.stored_config.revision == 2 and hall.stored_config.data["services"][-1]["code"] == "F"


def test_a_service_with_open_tickets_is_disabled_not_removed():
    hall = new_hall()
    hall.apply(Take(service="B"), MONDAY_9)
    err = refused(hall, RemoveItem(section="services", id="B"), "invalid_config")
    assert "windows[0].services" in {key for key, _, _ in err.problems}      # windows serve it
    # disabled: off the kiosks, no new tickets, and the waiting one is still called
    hall.apply(ChangeItem(section="services", id="B", changes={"enabled": False}), MONDAY_9, ADMIN)
    assert "B" not in [s["service"] for s in hall.services_view()]
    refused(hall, Take(service="B"), "service_disabled")
    hall.apply(Login(window="4", staff="1004"), MONDAY_9)
    assert hall.apply(CallNext(window="4"), MONDAY_9)["ticket"]["number"] == "B001"


A_ONLY = {"services": ["A"], "weights": [], "policy": "order"}


def test_changes_that_would_strand_tickets_or_clerks_are_refused_with_nothing_changed():
    hall = new_hall()
    hall.apply(Take(service="B"), MONDAY_9)
    for w in ("1", "2", "3"):                  # B001 waits: window 4 is the last to serve B
        hall.apply(ChangeItem(section="windows", id=w, changes=A_ONLY), MONDAY_9, ADMIN)
    err = refused(hall, ChangeItem(section="windows", id="4", changes={"enabled": False}), "would_strand")
    assert "B" in err.message and "1 人" in err.message
    refused(hall, ChangeItem(section="windows", id="4", changes=A_ONLY), "would_strand")
    # a window with a clerk at it, and the clerk, stay until the clerk logs out
    hall.apply(Login(window="1", staff="1001"), MONDAY_9)
    refused(hall, ChangeItem(section="windows", id="1", changes={"enabled": False}), "window_in_use")
    refused(hall, RemoveItem(section="clerks", id="1001"), "clerk_on_duty")
    refused(hall, ChangeItem(section="clerks", id="1001", changes={"enabled": False}), "clerk_on_duty")
    # a disabled clerk or window cannot log in
    hall.apply(ChangeItem(section="clerks", id="1003", changes={"enabled": False}), MONDAY_9, ADMIN)
    refused(hall, Login(window="3", staff="1003"), "staff_disabled")
    hall.apply(ChangeItem(section="windows", id="2", changes={"enabled": False}), MONDAY_9, ADMIN)
    refused(hall, Login(window="2", staff="1002"), "window_disabled")
    assert "2" not in hall.windows                              # off the board


def test_a_removed_service_with_its_tickets_done_and_its_prefix_today():
    hall = new_hall()
    hall.apply(AddItem(section="services", item=NEW_SERVICE), MONDAY_9, ADMIN)
    hall.apply(ChangeItem(section="windows", id="1", changes={"services": ["A", "B", "F"]}), MONDAY_9, ADMIN)
    hall.apply(Take(service="F"), MONDAY_9)
    refused(hall, ChangeItem(section="windows", id="1", changes={"services": ["A", "B"]}), "would_strand")
    hall.apply(Login(window="1", staff="1001"), MONDAY_9)
    hall.apply(CallNext(window="1"), MONDAY_9)          # A and B are empty: F001
    refused(hall, RemoveItem(section="services", id="F"), "invalid_config")
    # F001 is at the window: the service cannot go until it is done
    hall.apply(ChangeItem(section="windows", id="1", changes={"services": ["A", "B"]}), MONDAY_9, ADMIN)
    refused(hall, RemoveItem(section="services", id="F"), "service_in_use")
    # done, F can go; today's F numbers stay F's: no other service takes the prefix today
    hall.apply(Done(window="1"), MONDAY_9)
    hall.apply(RemoveItem(section="services", id="F"), MONDAY_9, ADMIN)
    assert "F" not in hall.services and "F" not in hall.queue.lines
    refused(hall, ChangeItem(section="services", id="B", changes={"prefix": "F"}), "prefix_in_use")
    # back again the same day, its numbering goes on
    hall.apply(AddItem(section="services", item=NEW_SERVICE), MONDAY_9, ADMIN)
    hall.apply(ChangeItem(section="windows", id="1", changes={"services": ["A", "B", "F"]}), MONDAY_9, ADMIN)
    assert hall.apply(Take(service="F"), MONDAY_9)["ticket"]["number"] == "F002"
    check_invariants(hall)


def test_a_bad_item_is_refused_with_each_problem_at_its_own_key():
    hall = new_hall()
    err = refused(hall, AddItem(section="services", item={**NEW_SERVICE, "daily_cap": -1, "colour": "red"}),
                  "invalid_config")
    keys = {key for key, _, _ in err.problems}
    assert keys == {"daily_cap", "colour"}, err.problems
    assert "应不小于 0" in err.message and "greater than or equal to 0" in err.message_en
    refused(hall, AddItem(section="services", item={**NEW_SERVICE, "code": "A"}), "config_exists")
    refused(hall, ChangeItem(section="windows", id="9", changes={"name": "x"}), "unknown_config_item")
    refused(hall, ChangeItem(section="windows", id="1", changes={"id": "7"}), "bad_arguments")
    refused(hall, ChangeItem(section="clerks", id="1001", changes={"windows": ["9"]}), "invalid_config")
    refused(hall, ChangeSettings(changes={"timezone": "Asia/Tokyo"}), "bad_arguments")
    refused(hall, AddItem(section="notices", item={"id": "n1", "text": "\ud800"}), "bad_arguments")


def test_settings_and_calendar_days_change_the_hall_at_once():
    hall = new_hall()
    hall.apply(ChangeSettings(changes={"max_recalls": 5, "name": "新名字"}), MONDAY_9, ADMIN)
    assert (hall.config.hall.max_recalls, hall.config.hall.name) == (5, "新名字")
    christmas_eve = date(2026, 12, 24)                        # a Thursday
    assert hall.calendar.is_working_day(christmas_eve)
    hall.apply(SetDay(day=christmas_eve, kind="holiday"), MONDAY_9, ADMIN)
    assert not hall.calendar.is_working_day(christmas_eve)
    hall.apply(SetDay(day=christmas_eve, kind="default"), MONDAY_9, ADMIN)
    assert hall.calendar.is_working_day(christmas_eve) and hall.config.hall.holidays == ()


def test_an_import_is_all_or_nothing_and_records_each_difference():
    hall = new_hall()
    hall.apply(Take(service="B"), MONDAY_9)
    data = live_data(hall.config)
    data["services"].append(NEW_SERVICE)
    data["windows"][0]["services"] = ["A", "B", "F"]
    data["notices"] = [{"id": "n1", "text": "周六上午办理不动产业务"}]
    reply = hall.apply(ImportConfig(data=data), MONDAY_9, ADMIN)
    assert [(d["section"], d["id"], d["action"]) for d in reply["differences"]] == [
        ("services", "F", "added"), ("windows", "1", "changed"), ("notices", "n1", "added")]
    assert len([e for e in hall.changes.events if e.kind is EventKind.CONFIG_CHANGED]) == 3
    assert [n["text"] for n in hall.notices()] == ["周六上午办理不动产业务"]
    # no window serving B while B001 waits: the whole import is refused, nothing changes
    bad = live_data(hall.config)
    bad["notices"] = []
    for w in bad["windows"]:
        w.update(A_ONLY)
    refused(hall, ImportConfig(data=bad), "would_strand")
    refused(hall, ImportConfig(data={**bad, "hall": {**bad["hall"], "id": "other"}}), "bad_arguments")
    assert hall.apply(ImportConfig(data=live_data(hall.config)), MONDAY_9, ADMIN)["differences"] == []
