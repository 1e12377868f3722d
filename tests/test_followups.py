"""The 差评 follow-up loop on an injected clock: a 差评 on the Friday before Qingming is due for
its return visit on the next working day, turns yellow that day and red the day after, and
closes with the follow-up rating (追评); an appeal is decided by someone other than who lodged
it, and upheld it takes the rating out (``excluded``); a case's number rides on the rating
prompt; no follow-up names who rated."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import chinese_calendar
import pytest

from controller.core.commands import (
    CallNext,
    Evaluate,
    FollowupClock,
    FollowupStep,
    Login,
    OpenCase,
    Origin,
    Rate,
    SetMatters,
    Source,
    Take,
)
from controller.core.errors import Refused
from controller.core.hall import HallState
from tests.helpers import CST, small_config

SUPERVISOR_A = Source("user:zhang", Origin.HTTP)
SUPERVISOR_B = Source("user:wang", Origin.HTTP)
FRIDAY = date(2026, 4, 3)                 # Qingming (清明) follows: 4–6 April 2026


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CST)


def next_working_day(day: date) -> date:
    day += timedelta(days=1)
    while not chinese_calendar.is_workday(day):
        day += timedelta(days=1)
    return day


def bad_rating(hall: HallState, day: date, level: str = "dissatisfied") -> str:
    hall.apply(Take(service="A"), at(day))
    if hall.desk.windows["1"].clerk is None:
        hall.apply(Login(window="1", staff="1001"), at(day))
    hall.apply(CallNext(window="1"), at(day))
    session = hall.apply(Evaluate(window="1"), at(day))["evaluation"]["session"]
    hall.apply(Rate(window="1", session=session, level=level, reasons=("efficiency",)), at(day))
    return session


def hall_on(day: date) -> HallState:
    return HallState(small_config(national_calendar=True, days=["mon", "tue", "wed", "thu", "fri"]), day)


def test_a_bad_rating_before_a_holiday_is_visited_on_the_next_working_day_and_closes_with_a_rerating():
    hall = hall_on(FRIDAY)
    session = bad_rating(hall, FRIDAY)
    f = hall.followups[session]
    visit_day = next_working_day(FRIDAY)
    assert f.visit_due == visit_day == date(2026, 4, 7)        # after the weekend and Qingming
    assert f.rectify_due == hall.calendar.add_working_days(FRIDAY, 10) and f.colour == "green"
    assert "1001" == f.clerk and not hasattr(f, "rater")

    when, command = hall.deadlines()[f"followup:{session}"]
    assert when == datetime(2026, 4, 7, tzinfo=CST) and command == FollowupClock(session=session)
    hall.roll_to(when)
    hall.apply(command, when)
    assert f.colour == "yellow"                                # due today
    when, command = hall.deadlines()[f"followup:{session}"]
    assert when.date() == date(2026, 4, 8)
    hall.roll_to(when)
    hall.apply(command, when)
    assert f.colour == "red"                                   # missed: warned
    warnings = [e.payload["colour"] for e in hall.drain().events if e.kind == "followup_warning"]
    assert warnings == ["yellow", "red"]

    day = date(2026, 4, 8)
    for action in ("visit", "rectify", "feed_back"):
        hall.apply(FollowupStep(session=session, action=action, note=f"{action} 记录"), at(day), SUPERVISOR_A)
    assert f.state == "fed_back"
    hall.apply(FollowupStep(session=session, action="rerate", level="satisfied"), at(day), SUPERVISOR_A)
    assert (f.state, f.rerating, f.colour) == ("closed", "satisfied", "none")
    assert f"followup:{session}" not in hall.deadlines()


def test_an_appeal_is_decided_by_someone_else_and_upheld_excludes_the_rating():
    hall = hall_on(FRIDAY)
    session = bad_rating(hall, FRIDAY, "very_dissatisfied")
    with pytest.raises(Refused) as info:
        hall.apply(FollowupStep(session=session, action="appeal"), at(FRIDAY), SUPERVISOR_A)
    assert info.value.code == "reasons_needed"
    hall.apply(FollowupStep(session=session, action="appeal", note="评价人误按（监控可见）"), at(FRIDAY),
               SUPERVISOR_A)
    with pytest.raises(Refused) as info:
        hall.apply(FollowupStep(session=session, action="uphold", note="同意"), at(FRIDAY), SUPERVISOR_A)
    assert info.value.code == "forbidden"
    hall.apply(FollowupStep(session=session, action="uphold", note="核实为误评"), at(FRIDAY), SUPERVISOR_B)
    f = hall.followups[session]
    assert f.state == "excluded" and "核实为误评" in f.notes
    step = [e for e in hall.drain().events if e.kind == "followup_step"][-1]
    assert (step.payload["action"], step.payload["after"], step.actor) == ("uphold", "excluded", "user:wang")

    other = bad_rating(hall, FRIDAY)                            # rejected: back where it was
    hall.apply(FollowupStep(session=other, action="visit"), at(FRIDAY), SUPERVISOR_A)
    hall.apply(FollowupStep(session=other, action="appeal", note="恶意差评"), at(FRIDAY), SUPERVISOR_A)
    hall.apply(FollowupStep(session=other, action="reject", note="证据不足"), at(FRIDAY), SUPERVISOR_B)
    assert hall.followups[other].state == "visited"
    with pytest.raises(Refused):
        hall.apply(FollowupStep(session=other, action="rerate", level="satisfied"), at(FRIDAY), SUPERVISOR_A)


def test_a_good_rating_opens_no_follow_up_and_the_prompt_carries_the_case_number():
    hall = hall_on(FRIDAY)
    hall.apply(SetMatters(matters=[{"code": "M1", "name": "个体工商户设立登记", "department": "市场监管局"}]),
               at(FRIDAY))
    hall.apply(Take(service="A"), at(FRIDAY))
    hall.apply(Login(window="1", staff="1001"), at(FRIDAY))
    ticket = hall.apply(CallNext(window="1"), at(FRIDAY))["ticket"]["number"]
    number = hall.apply(OpenCase(matter="M1", applicant="张三", ticket=ticket), at(FRIDAY))["case"]["number"]
    prompt = hall.apply(Evaluate(window="1"), at(FRIDAY))["evaluation"]
    assert prompt["case"] == number
    hall.apply(Rate(window="1", session=prompt["session"], level="satisfied"), at(FRIDAY))
    assert hall.followups == {}
