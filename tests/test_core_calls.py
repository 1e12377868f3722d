"""Calling (叫号): windows, clerks, recall, no-show, hold, transfer, pause, done."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.core.commands import (
    COMMANDS,
    CallNext,
    CallNumber,
    Cancel,
    Done,
    Hold,
    Login,
    Logout,
    NoShow,
    Pause,
    Recall,
    Resume,
    Start,
    Take,
    Transfer,
)
from controller.core.hall import HallState
from controller.core.model import Attendance, TicketState
from tests.helpers import MONDAY_9, check_invariants, new_hall
from tests.test_core_issue import refused

T = MONDAY_9


def hall_with(*services: str, logins=(("1", "1001"),)) -> HallState:
    hall = new_hall()
    for s in services:
        hall.apply(Take(service=s), T)
    for window, staff in logins:
        hall.apply(Login(window=window, staff=staff), T)
    return hall


def called(hall: HallState, window: str, now=T) -> str:
    return hall.apply(CallNext(window=window), now)["ticket"]["number"]


def state(hall: HallState, number: str) -> TicketState:
    return hall.ticket(number).state


# ---------------------------------------------------------------- clerks and windows
def test_call_at_unstaffed_window_is_refused():
    hall = hall_with("A", logins=())
    assert refused(hall, CallNext(window="1")).code == "not_logged_in"


def test_call_at_paused_window_is_refused_and_resume_works():
    hall = hall_with("A")
    hall.apply(Pause(window="1"), T)
    assert refused(hall, CallNext(window="1")).code == "window_paused"
    assert hall.window_view("1")["state"] == "paused"
    hall.apply(Resume(window="1"), T)
    assert called(hall, "1") == "A001"


def test_unknown_window_is_refused():
    hall = hall_with("A")
    assert refused(hall, CallNext(window="99")).code == "unknown_window"


def test_queue_empty_is_refused():
    hall = hall_with()
    assert refused(hall, CallNext(window="1")).code == "queue_empty"


def test_login_roles_and_refusals():
    hall = new_hall()
    assert hall.apply(Login(window="1", staff="1001"), T)["role"] == "A"
    assert refused(hall, Login(window="2", staff="1001")).code == "staff_elsewhere"
    assert refused(hall, Login(window="1", staff="1002")).code == "staff_not_allowed"
    assert refused(hall, Login(window="1", staff="9999")).code == "unknown_staff"
    hall.apply(Logout(window="1"), T)
    assert hall.apply(Login(window="2", staff="1001"), T)["role"] == "B"   # AB角: backup
    assert refused(hall, Login(window="2", staff="1002")).code == "window_occupied"


def test_logout_with_a_ticket_at_the_window_is_refused():
    hall = hall_with("A")
    called(hall, "1")
    assert refused(hall, Logout(window="1")).code == "ticket_in_progress"
    hall.apply(Done(window="1"), T)
    hall.apply(Logout(window="1"), T)
    assert hall.window_view("1")["state"] == "closed"


def test_attendance_is_recorded_for_login_and_logout():
    hall = new_hall()
    hall.apply(Login(window="1", staff="1001"), T)
    hall.apply(Logout(window="1"), T + timedelta(hours=4))
    changes = hall.drain()
    (att,) = changes.of(Attendance)
    assert (att.staff, att.window, att.role) == ("1001", "1", "A")
    assert att.logout_at - att.login_at == timedelta(hours=4)
    assert [e.kind for e in changes.events] == ["login", "logout"]
    assert hall.desk.attendance == {}


# ---------------------------------------------------------------- next, done, start
def test_next_finishes_the_current_ticket_and_calls_in_order():
    hall = hall_with("A", "A")
    assert called(hall, "1") == "A001"
    assert called(hall, "1") == "A002"
    assert state(hall, "A001") is TicketState.DONE
    assert state(hall, "A002") is TicketState.CALLED
    check_invariants(hall)


def test_next_with_empty_queue_keeps_the_current_ticket():
    hall = hall_with("A")
    called(hall, "1")
    assert refused(hall, CallNext(window="1")).code == "queue_empty"
    assert state(hall, "A001") is TicketState.CALLED


def test_start_and_done():
    hall = hall_with("A")
    called(hall, "1")
    hall.apply(Start(window="1"), T)
    assert state(hall, "A001") is TicketState.SERVING
    hall.apply(Done(window="1"), T)
    assert state(hall, "A001") is TicketState.DONE
    assert hall.window_view("1")["state"] == "idle"
    assert refused(hall, Done(window="1")).code == "no_current_ticket"


def test_two_windows_never_get_the_same_ticket():
    hall = hall_with("A", "A", logins=(("1", "1001"), ("3", "1003")))
    assert {called(hall, "1"), called(hall, "3")} == {"A001", "A002"}
    assert refused(hall, CallNext(window="1")).code == "queue_empty"
    check_invariants(hall)


# ---------------------------------------------------------------- window policies
def test_order_policy_serves_first_listed_service_first():
    hall = hall_with("B", "A", "B")            # window 1 lists A then B
    assert [called(hall, "1") for _ in range(3)] == ["A001", "B001", "B002"]


def test_weighted_policy_serves_by_weights():
    hall = new_hall()
    for _ in range(6):
        hall.apply(Take(service="A"), T)
        hall.apply(Take(service="B"), T)
    hall.apply(Login(window="2", staff="1002"), T)   # window 2: B weight 2, A weight 1
    got = [called(hall, "2")[0] for _ in range(9)]
    assert got.count("B") == 6 and got.count("A") == 3
    assert got[:3].count("B") == 2


def test_fifo_policy_takes_the_earliest_across_services():
    hall = hall_with("B", "A", "B", logins=(("3", "1003"),))
    assert [called(hall, "3") for _ in range(3)] == ["B001", "A001", "B002"]


def test_green_first_window_takes_green_of_any_service_first():
    hall = hall_with("A", logins=(("3", "1003"),))
    hall.apply(Take(service="B", priority="green"), T)
    assert called(hall, "3") == "B001"


# ---------------------------------------------------------------- recall, no-show
def test_recall_then_automatic_no_show_after_max_recalls():
    hall = hall_with("A", "A")                 # max_recalls defaults to 2
    called(hall, "1")
    assert hall.apply(Recall(window="1"), T)["recalls"] == 1
    assert hall.apply(Recall(window="1"), T)["recalls"] == 2
    out = hall.apply(Recall(window="1"), T)
    assert out["no_show"] is True and state(hall, "A001") is TicketState.NO_SHOW
    assert hall.window_view("1")["ticket"] is None
    assert called(hall, "1") == "A002"
    reasons = [e.payload for e in hall.drain().events if e.kind == "no_show"]
    assert reasons == [{"reason": "recall_limit"}]


def test_recall_needs_a_called_ticket():
    hall = hall_with("A")
    assert refused(hall, Recall(window="1")).code == "no_current_ticket"
    called(hall, "1")
    hall.apply(Start(window="1"), T)
    assert refused(hall, Recall(window="1")).code == "ticket_serving"


def test_no_show_key():
    hall = hall_with("A")
    called(hall, "1")
    hall.apply(NoShow(window="1"), T)
    assert state(hall, "A001") is TicketState.NO_SHOW
    assert [e.payload.get("reason") for e in hall.drain().events if e.kind == "no_show"] == ["key"]


# ---------------------------------------------------------------- hold and call by number
def test_hold_and_call_back_by_number():
    hall = hall_with("A", "A")
    called(hall, "1")
    hall.apply(Hold(window="1"), T)
    assert state(hall, "A001") is TicketState.HELD
    assert hall.window_view("1")["ticket"] is None
    assert called(hall, "1") == "A002"
    out = hall.apply(CallNumber(window="1", number="a001"), T)
    assert out["ticket"]["number"] == "A001" and state(hall, "A002") is TicketState.DONE
    check_invariants(hall)


def test_first_call_is_kept_through_recall_hold_and_call_back():
    hall = hall_with("A", "A")
    first, later, last = T + timedelta(minutes=1), T + timedelta(minutes=5), T + timedelta(minutes=9)
    called(hall, "1", first)
    hall.apply(Recall(window="1"), later)                  # a recall moves neither call time
    t = hall.ticket("A001")
    assert (t.first_called_at, t.called_at, t.recalls) == (first, first, 1)
    hall.apply(Hold(window="1"), later)
    called(hall, "1", later)                               # A002 meanwhile
    hall.apply(CallNumber(window="1", number="A001"), last)   # call back: the latest call moves
    assert (t.first_called_at, t.called_at, t.recalls) == (first, last, 0)
    calls = [e for e in hall.drain().events if e.kind == "called"]
    assert [(e.number, e.payload) for e in calls] == [
        ("A001", {"how": "next", "first": True, "first_called_at": first.isoformat()}),
        ("A002", {"how": "next", "first": True, "first_called_at": later.isoformat()}),
        ("A001", {"how": "held", "first": False, "first_called_at": first.isoformat()}),
    ]
    check_invariants(hall)


def test_first_call_is_kept_through_a_transfer():
    hall = hall_with("A", logins=(("1", "1001"), ("4", "1004")))
    called(hall, "1")
    hall.apply(Transfer(window="1", to_service="B"), T + timedelta(minutes=3))
    called(hall, "4", T + timedelta(minutes=8))
    t = hall.ticket("A001")
    assert (t.first_called_at, t.called_at) == (T, T + timedelta(minutes=8))


def test_call_a_specific_waiting_ticket():
    hall = hall_with("A", "A", "A")
    assert hall.apply(CallNumber(window="1", number="A003"), T)["ticket"]["number"] == "A003"
    assert called(hall, "1") == "A001"


def test_call_by_number_refusals():
    hall = hall_with("A", "B", logins=(("1", "1001"), ("4", "1004")))
    assert refused(hall, CallNumber(window="4", number="A001")).code == "ticket_not_for_window"
    assert refused(hall, CallNumber(window="1", number="A999")).code == "unknown_ticket"
    hall.apply(CallNumber(window="1", number="A001"), T)
    assert refused(hall, CallNumber(window="1", number="A001")).code == "ticket_at_window"
    hall.apply(Done(window="1"), T)
    assert refused(hall, CallNumber(window="1", number="A001")).code == "ticket_not_callable"


# ---------------------------------------------------------------- transfer
def test_transfer_to_service_keeps_number_and_original_issue_time():
    hall = hall_with("A", logins=(("1", "1001"), ("4", "1004")))
    hall.apply(Take(service="B"), T + timedelta(minutes=5))   # B001 issued after A001
    called(hall, "1")
    hall.apply(Transfer(window="1", to_service="B"), T)
    t = hall.ticket("A001")
    assert (t.number, t.service, t.state, t.issued_at) == ("A001", "B", TicketState.WAITING, T)
    assert called(hall, "4") == "A001"         # it keeps its place: issued before B001
    assert called(hall, "4") == "B001"


def test_transfer_to_window_waits_for_that_window_only():
    hall = hall_with("A", "A", logins=(("1", "1001"), ("3", "1003")))
    called(hall, "1")
    hall.apply(Transfer(window="1", to_window="3"), T)
    assert called(hall, "1") == "A002"
    assert refused(hall, CallNext(window="1")).code == "queue_empty"
    assert called(hall, "3") == "A001"


def test_transfer_refusals():
    hall = hall_with("A")
    assert refused(hall, Transfer(window="1", to_service="B")).code == "no_current_ticket"
    called(hall, "1")
    assert refused(hall, Transfer(window="1")).code == "bad_transfer"
    assert refused(hall, Transfer(window="1", to_service="B", to_window="3")).code == "bad_transfer"
    assert refused(hall, Transfer(window="1", to_service="A")).code == "bad_transfer"
    assert refused(hall, Transfer(window="1", to_service="Q")).code == "unknown_service"
    assert refused(hall, Transfer(window="1", to_window="1")).code == "bad_transfer"
    assert refused(hall, Transfer(window="1", to_window="77")).code == "unknown_window"


def test_cancel_a_waiting_ticket():
    hall = hall_with("A", "A")
    hall.apply(Cancel(number="A001"), T)
    assert state(hall, "A001") is TicketState.CANCELLED
    assert called(hall, "1") == "A002"
    assert refused(hall, Cancel(number="A002")).code == "ticket_not_waiting"


def test_board_views_count_waiting_and_windows():
    hall = hall_with("A", "A", "B")
    called(hall, "1")
    services = {s["service"]: s for s in hall.services_view()}
    assert (services["A"]["waiting"], services["B"]["waiting"]) == (1, 1)
    assert services["A"]["open_windows"] == 1
    view = hall.window_view("1")
    assert (view["state"], view["ticket"], view["waiting"]) == ("serving", "A001", 2)


@pytest.mark.parametrize("op", ["recall", "no_show", "hold", "done", "start"])
def test_keys_at_an_unstaffed_window_are_refused(op):
    hall = hall_with("A", logins=())
    assert refused(hall, COMMANDS[op](window="1")).code == "not_logged_in"


def test_a_new_login_never_takes_a_closed_attendance_id():
    hall = new_hall()
    hall.apply(Login(window="1", staff="1001"), T)
    hall.apply(Logout(window="1"), T)
    hall.apply(Login(window="1", staff="1001"), T)
    ids = [att.id for att in hall.drain().of(Attendance)]
    assert len(ids) == len(set(ids)) == 2
