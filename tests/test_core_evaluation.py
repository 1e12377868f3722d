"""好差评: one rating per session, voluntary, time-outs recorded as unrated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from controller.core.commands import (
    CallNext,
    Evaluate,
    ExpireEvaluation,
    Login,
    Origin,
    Rate,
    Source,
    Take,
    decode,
)
from controller.core.ratings import Evaluation, masked_name
from tests.helpers import MONDAY_9, check_invariants, new_hall
from tests.test_core_issue import bad_arguments, refused

T = MONDAY_9


def serving_hall():
    hall = new_hall()
    hall.apply(Take(service="A"), T)
    hall.apply(Login(window="1", staff="1001"), T)
    hall.apply(CallNext(window="1"), T)
    return hall


def evaluate(hall, window="1", now=T) -> dict:
    return hall.apply(Evaluate(window=window), now)["evaluation"]


def test_one_rating_per_session_stored_with_window_clerk_and_ticket():
    hall = serving_hall()
    session = evaluate(hall)["session"]
    assert evaluate(hall)["session"] == session   # asking again: same one
    assert hall.open_evaluation("1").id == session
    evaluator = Source("device:evaluator-1", Origin.MQTT)
    out = hall.apply(Rate(window="1", session=session, level="satisfied"),
                     T + timedelta(seconds=20), evaluator)
    assert out["evaluation"]["level"] == "satisfied" and not out["evaluation"]["open"]
    changes = hall.drain()
    (ev,) = changes.of(Evaluation)
    assert (ev.window, ev.clerk, ev.number, ev.level) == ("1", "1001", "A001", "satisfied")
    assert ev.view() == out["evaluation"]
    rated = changes.events[-1]
    assert (rated.kind, rated.actor, rated.origin) == ("rated", "device:evaluator-1", Origin.MQTT)
    assert (rated.ticket, rated.number, rated.service) == (ev.ticket, "A001", "A")
    assert (rated.window, rated.clerk) == ("1", "1001")
    assert rated.payload == {"session": session, "level": "satisfied", "reasons": []}
    assert hall.open_evaluation("1") is None
    assert refused(hall, Rate(window="1", session=session, level="very_satisfied")).code \
        == "session_closed"


def test_rating_refusals_change_nothing():
    hall = serving_hall()
    session = evaluate(hall)["session"]
    assert refused(hall, Rate(window="2", session=session, level="basic")).code == "session_closed"
    assert refused(hall, Rate(window="1", session=session, level="satisfied",
                              reasons=("attitude",))).code == "bad_reasons"
    # an unknown level or reason is no command at all: refused at the door
    for level, reasons in [("5", []), ("excellent", []), ("dissatisfied", ["rudeness"]),
                           ("dissatisfied", "attitude,efficiency")]:
        with pytest.raises(ValidationError):
            Rate(window="1", session=session, level=level, reasons=reasons)
        bad_arguments(hall, Rate, {"session": session, "level": level, "reasons": reasons},
                      window="1")
    assert hall.open_evaluation("1").id == session        # still open for a good rating
    hall.apply(Rate(window="1", session=session, level="dissatisfied",
                    reasons=("attitude", "efficiency", "attitude")), T)
    changes = hall.drain()
    (ev,) = changes.of(Evaluation)
    assert ev.reasons == ("attitude", "efficiency")
    rated = next(e for e in changes.events if e.kind == "rated")
    assert rated.payload["reasons"] == ["attitude", "efficiency"]
    assert changes.events[-1].kind == "followup_opened"           # a 差评 is followed up


def test_a_rating_from_a_door_is_decoded():
    hall = serving_hall()
    session = evaluate(hall)["session"]
    cmd = decode(Rate, {"session": session, "level": "very_dissatisfied", "reasons": ["process"]},
                 window="1")
    assert cmd == Rate(window="1", session=session, level="very_dissatisfied", reasons=("process",))
    assert hall.apply(cmd, T)["evaluation"]["level"] == "very_dissatisfied"


def test_time_out_is_unrated_never_a_default_good_rating():
    hall = serving_hall()
    session = evaluate(hall)["session"]
    (when, cmd), = [d for name, d in hall.deadlines().items() if name.startswith("rating:")]
    assert (when, cmd) == (T + timedelta(seconds=60), ExpireEvaluation(session=session))
    out = hall.apply(cmd, when)
    assert out["evaluation"]["level"] is None and not out["evaluation"]["open"]
    events = hall.drain().events
    assert events[-1].kind == "unrated" and events[-1].payload == {"session": session}
    assert (events[-1].number, events[-1].window) == ("A001", "1")
    assert refused(hall, Rate(window="1", session=session, level="satisfied")).code == "session_closed"
    assert hall.apply(ExpireEvaluation(session=session), T) == {"evaluation": None}
    assert not any(name.startswith("rating:") for name in hall.deadlines())


def test_evaluate_needs_a_clerk_and_a_ticket():
    hall = new_hall()
    assert refused(hall, Evaluate(window="1")).code == "not_logged_in"
    hall.apply(Login(window="1", staff="1001"), T)
    assert refused(hall, Evaluate(window="1")).code == "no_current_ticket"


def test_masked_clerk_names():
    assert (masked_name("张三"), masked_name("欧阳娜娜"), masked_name("李")) == ("张*", "欧***", "李*")


def test_asking_for_the_next_citizen_closes_an_unanswered_prompt_as_unrated():
    hall = serving_hall()
    first = evaluate(hall)["session"]
    hall.apply(Take(service="A"), T)
    hall.apply(CallNext(window="1"), T + timedelta(minutes=5))
    second = evaluate(hall, now=T + timedelta(minutes=9))
    assert second["session"] != first and second["ticket"] == "A002"
    closed = {ev.id: ev for ev in hall.drain().of(Evaluation)}[first]
    assert not closed.open and closed.level is None           # unrated, not a default rating
    assert refused(hall, Rate(window="1", session=first, level="satisfied")).code == "session_closed"
    assert list(hall.ratings.open) == [second["session"]]
    check_invariants(hall)


def test_a_new_session_never_takes_a_closed_sessions_id():
    hall = serving_hall()
    first = evaluate(hall)["session"]
    hall.apply(Rate(window="1", session=first, level="very_satisfied"), T)
    second = evaluate(hall)["session"]          # the clerk asks again, in the same millisecond
    records = [ev for ev in hall.drain().of(Evaluation) if ev.id == first]
    assert second != first and len(records) == 1
