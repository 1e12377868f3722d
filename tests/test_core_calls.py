"""Calling (叫号): windows, clerks, recall, no-show, hold, transfer, pause, done."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.core.hall import HallState
from controller.core.model import TicketState
from tests.helpers import MONDAY_9, check_invariants, new_hall
from tests.test_core_issue import refused

T = MONDAY_9


def hall_with(*services: str, logins=(("1", "1001"),)) -> HallState:
    hall = new_hall()
    for s in services:
        hall.take(T, s)
    for window, staff in logins:
        hall.login(T, window, staff)
    return hall


def called(hall: HallState, window: str) -> str:
    return hall.call_next(T, window)["ticket"]["number"]


def state(hall: HallState, number: str) -> TicketState:
    return hall.ticket(number).state


# ---------------------------------------------------------------- clerks and windows
def test_call_at_unstaffed_window_is_refused():
    hall = hall_with("A", logins=())
    assert refused(hall, hall.call_next, T, "1").code == "not_logged_in"


def test_call_at_paused_window_is_refused_and_resume_works():
    hall = hall_with("A")
    hall.pause(T, "1")
    assert refused(hall, hall.call_next, T, "1").code == "window_paused"
    assert hall.window_view("1")["state"] == "paused"
    hall.resume(T, "1")
    assert called(hall, "1") == "A001"


def test_unknown_window_is_refused():
    hall = hall_with("A")
    assert refused(hall, hall.call_next, T, "99").code == "unknown_window"


def test_queue_empty_is_refused():
    hall = hall_with()
    assert refused(hall, hall.call_next, T, "1").code == "queue_empty"


def test_login_roles_and_refusals():
    hall = new_hall()
    assert hall.login(T, "1", "1001")["role"] == "A"
    assert refused(hall, hall.login, T, "2", "1001").code == "staff_elsewhere"
    assert refused(hall, hall.login, T, "1", "1002").code == "staff_not_allowed"
    assert refused(hall, hall.login, T, "1", "9999").code == "unknown_staff"
    hall.logout(T, "1")
    assert hall.login(T, "2", "1001")["role"] == "B"     # AB角: backup at a colleague's window
    assert refused(hall, hall.login, T, "2", "1002").code == "window_occupied"


def test_logout_with_a_ticket_at_the_window_is_refused():
    hall = hall_with("A")
    called(hall, "1")
    assert refused(hall, hall.logout, T, "1").code == "ticket_in_progress"
    hall.done(T, "1")
    hall.logout(T, "1")
    assert hall.window_view("1")["state"] == "closed"


def test_attendance_is_recorded_for_login_and_logout():
    hall = new_hall()
    hall.login(T, "1", "1001")
    hall.logout(T + timedelta(hours=4), "1")
    changes = hall.drain()
    (att,) = changes.attendance.values()
    assert (att.staff, att.window, att.role) == ("1001", "1", "A")
    assert att.logout_at - att.login_at == timedelta(hours=4)
    assert [e.kind for e in changes.events] == ["login", "logout"]


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
    assert refused(hall, hall.call_next, T, "1").code == "queue_empty"
    assert state(hall, "A001") is TicketState.CALLED


def test_start_and_done():
    hall = hall_with("A")
    called(hall, "1")
    hall.start(T, "1")
    assert state(hall, "A001") is TicketState.SERVING
    hall.done(T, "1")
    assert state(hall, "A001") is TicketState.DONE
    assert hall.window_view("1")["state"] == "idle"
    assert refused(hall, hall.done, T, "1").code == "no_current_ticket"


def test_two_windows_never_get_the_same_ticket():
    hall = hall_with("A", "A", logins=(("1", "1001"), ("3", "1003")))
    assert {called(hall, "1"), called(hall, "3")} == {"A001", "A002"}
    assert refused(hall, hall.call_next, T, "1").code == "queue_empty"
    check_invariants(hall)


# ---------------------------------------------------------------- window policies
def test_order_policy_serves_first_listed_service_first():
    hall = hall_with("B", "A", "B")            # window 1 lists A then B
    assert [called(hall, "1") for _ in range(3)] == ["A001", "B001", "B002"]


def test_weighted_policy_serves_by_weights():
    hall = new_hall()
    for _ in range(6):
        hall.take(T, "A")
        hall.take(T, "B")
    hall.login(T, "2", "1002")                 # window 2: B weight 2, A weight 1
    got = [called(hall, "2")[0] for _ in range(9)]
    assert got.count("B") == 6 and got.count("A") == 3
    assert got[:3].count("B") == 2


def test_fifo_policy_takes_the_earliest_across_services():
    hall = hall_with("B", "A", "B", logins=(("3", "1003"),))
    assert [called(hall, "3") for _ in range(3)] == ["B001", "A001", "B002"]


def test_green_first_window_takes_green_of_any_service_first():
    hall = hall_with("A", logins=(("3", "1003"),))
    hall.take(T, "B", priority="green")
    assert called(hall, "3") == "B001"


# ---------------------------------------------------------------- recall, no-show
def test_recall_then_automatic_no_show_after_max_recalls():
    hall = hall_with("A", "A")                 # max_recalls defaults to 2
    called(hall, "1")
    assert hall.recall(T, "1")["recalls"] == 1
    assert hall.recall(T, "1")["recalls"] == 2
    out = hall.recall(T, "1")
    assert out["no_show"] is True and state(hall, "A001") is TicketState.NO_SHOW
    assert hall.window_view("1")["ticket"] is None
    assert called(hall, "1") == "A002"


def test_recall_needs_a_called_ticket():
    hall = hall_with("A")
    assert refused(hall, hall.recall, T, "1").code == "no_current_ticket"
    called(hall, "1")
    hall.start(T, "1")
    assert refused(hall, hall.recall, T, "1").code == "ticket_serving"


def test_no_show_key():
    hall = hall_with("A")
    called(hall, "1")
    hall.no_show(T, "1")
    assert state(hall, "A001") is TicketState.NO_SHOW
    assert [e.data.get("reason") for e in hall.drain().events if e.kind == "no_show"] == ["key"]


# ---------------------------------------------------------------- hold and call by number
def test_hold_and_call_back_by_number():
    hall = hall_with("A", "A")
    called(hall, "1")
    hall.hold(T, "1")
    assert state(hall, "A001") is TicketState.HELD
    assert hall.window_view("1")["ticket"] is None
    assert called(hall, "1") == "A002"
    out = hall.call_number(T, "1", "a001")
    assert out["ticket"]["number"] == "A001" and state(hall, "A002") is TicketState.DONE
    check_invariants(hall)


def test_call_a_specific_waiting_ticket():
    hall = hall_with("A", "A", "A")
    assert hall.call_number(T, "1", "A003")["ticket"]["number"] == "A003"
    assert called(hall, "1") == "A001"


def test_call_by_number_refusals():
    hall = hall_with("A", "B", logins=(("1", "1001"), ("4", "1004")))
    assert refused(hall, hall.call_number, T, "4", "A001").code == "ticket_not_for_window"
    assert refused(hall, hall.call_number, T, "1", "A999").code == "unknown_ticket"
    hall.call_number(T, "1", "A001")
    assert refused(hall, hall.call_number, T, "1", "A001").code == "ticket_at_window"
    hall.done(T, "1")
    assert refused(hall, hall.call_number, T, "1", "A001").code == "ticket_not_callable"


# ---------------------------------------------------------------- transfer
def test_transfer_to_service_keeps_number_and_original_issue_time():
    hall = hall_with("A", logins=(("1", "1001"), ("4", "1004")))
    hall.take(T + timedelta(minutes=5), "B")   # B001 issued after A001
    called(hall, "1")
    hall.transfer(T, "1", to_service="B")
    t = hall.ticket("A001")
    assert (t.number, t.service, t.state, t.issued_at) == ("A001", "B", TicketState.WAITING, T)
    assert called(hall, "4") == "A001"         # it keeps its place: issued before B001
    assert called(hall, "4") == "B001"


def test_transfer_to_window_waits_for_that_window_only():
    hall = hall_with("A", "A", logins=(("1", "1001"), ("3", "1003")))
    called(hall, "1")
    hall.transfer(T, "1", to_window="3")
    assert called(hall, "1") == "A002"
    assert refused(hall, hall.call_next, T, "1").code == "queue_empty"
    assert called(hall, "3") == "A001"


def test_transfer_refusals():
    hall = hall_with("A")
    assert refused(hall, hall.transfer, T, "1", to_service="B").code == "no_current_ticket"
    called(hall, "1")
    assert refused(hall, hall.transfer, T, "1").code == "bad_transfer"
    assert refused(hall, hall.transfer, T, "1", to_service="A").code == "bad_transfer"
    assert refused(hall, hall.transfer, T, "1", to_service="Q").code == "unknown_service"
    assert refused(hall, hall.transfer, T, "1", to_window="1").code == "bad_transfer"
    assert refused(hall, hall.transfer, T, "1", to_window="77").code == "unknown_window"


def test_cancel_a_waiting_ticket():
    hall = hall_with("A", "A")
    hall.cancel(T, "A001")
    assert state(hall, "A001") is TicketState.CANCELLED
    assert called(hall, "1") == "A002"
    assert refused(hall, hall.cancel, T, "A002").code == "ticket_not_waiting"


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
    assert refused(hall, getattr(hall, op), T, "1").code == "not_logged_in"
