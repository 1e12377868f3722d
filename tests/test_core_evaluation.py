"""好差评: one rating per session, voluntary, time-outs recorded as unrated."""

from __future__ import annotations

from datetime import timedelta

from controller.core.evaluation import masked_name
from tests.helpers import MONDAY_9, new_hall
from tests.test_core_issue import refused

T = MONDAY_9


def serving_hall():
    hall = new_hall()
    hall.take(T, "A")
    hall.login(T, "1", "1001")
    hall.call_next(T, "1")
    return hall


def test_one_rating_per_session_stored_with_window_clerk_and_ticket():
    hall = serving_hall()
    session = hall.evaluate(T, "1")["evaluation"]["session"]
    assert hall.evaluate(T, "1")["evaluation"]["session"] == session   # asking again: same one
    out = hall.rate(T + timedelta(seconds=20), "1", session, "satisfied")
    assert out["evaluation"]["level"] == "satisfied" and not out["evaluation"]["open"]
    (ev,) = [e for e in hall.drain().evaluations.values()]
    assert (ev.window, ev.clerk, ev.number, ev.level) == ("1", "1001", "A001", "satisfied")
    assert refused(hall, hall.rate, T, "1", session, "very_satisfied").code == "session_closed"


def test_rating_refusals_change_nothing():
    hall = serving_hall()
    session = hall.evaluate(T, "1")["evaluation"]["session"]
    assert refused(hall, hall.rate, T, "2", session, "basic").code == "session_closed"
    assert refused(hall, hall.rate, T, "1", session, "5").code == "bad_level"
    assert refused(hall, hall.rate, T, "1", session, "satisfied", "attitude").code == "bad_reasons"
    assert refused(hall, hall.rate, T, "1", session, "dissatisfied", "rudeness").code == "bad_reasons"
    hall.rate(T, "1", session, "dissatisfied", "attitude,efficiency")
    assert hall.drain().evaluations[session].reasons == ["attitude", "efficiency"]


def test_time_out_is_unrated_never_a_default_good_rating():
    hall = serving_hall()
    session = hall.evaluate(T, "1")["evaluation"]["session"]
    out = hall.expire_evaluation(T + timedelta(seconds=60), session)
    assert out["evaluation"]["level"] is None and not out["evaluation"]["open"]
    assert [e.kind for e in hall.drain().events][-1] == "unrated"
    assert refused(hall, hall.rate, T, "1", session, "satisfied").code == "session_closed"
    assert hall.expire_evaluation(T, session) == {"evaluation": None}


def test_evaluate_needs_a_clerk_and_a_ticket():
    hall = new_hall()
    assert refused(hall, hall.evaluate, T, "1").code == "not_logged_in"
    hall.login(T, "1", "1001")
    assert refused(hall, hall.evaluate, T, "1").code == "no_current_ticket"


def test_masked_clerk_names():
    assert (masked_name("张三"), masked_name("欧阳娜娜"), masked_name("李")) == ("张*", "欧***", "李*")


def test_asking_for_the_next_citizen_closes_an_unanswered_prompt_as_unrated():
    hall = serving_hall()
    first = hall.evaluate(T, "1")["evaluation"]["session"]
    hall.take(T, "A")
    hall.call_next(T + timedelta(minutes=5), "1")
    second = hall.evaluate(T + timedelta(minutes=9), "1")["evaluation"]
    assert second["session"] != first and second["ticket"] == "A002"
    closed = hall.drain().evaluations[first]
    assert not closed.open and closed.level is None           # unrated, not a default rating
    assert refused(hall, hall.rate, T, "1", first, "satisfied").code == "session_closed"
