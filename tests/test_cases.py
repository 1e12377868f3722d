"""Cases (办件) in the core: the working-day clock against the official calendars, 补正 stopping
it, warnings on the right day, and the state machine checked by random sequences of steps
against the one table of what may follow what."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core import cases
from controller.core.commands import CaseClock, CaseStep, OpenCase, SetMatters, Take
from controller.core.errors import Refused
from controller.core.hall import HallState
from controller.web.admin.dashboard import warnings
from tests.helpers import CST, small_config

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
MATTERS = [
    {"code": "P5", "name": "个体工商户设立登记", "department": "市场监管局", "promised_days": 5,
     "statutory_days": 15, "materials": ["身份证", "经营场所证明"], "windows": ["1"]},
    {"code": "P20", "name": "建设工程规划许可", "department": "自然资源局", "promised_days": 20,
     "statutory_days": 20},
    {"code": "I0", "name": "居民身份证挂失", "department": "公安局", "form": "instant", "promised_days": 0},
    {"code": "J10", "name": "餐饮服务许可", "department": "市场监管局", "form": "joint", "promised_days": 10,
     "statutory_days": 20, "partners": ["消防救援大队", "生态环境局"]},
    {"code": "U15", "name": "采矿许可", "department": "自然资源局", "form": "upper", "promised_days": 15,
     "statutory_days": 20},
]


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CST)


def hall_on(day: date) -> HallState:
    """A hall open Monday to Friday on the country's calendar, with the catalogue above."""
    config = small_config(national_calendar=True, days=WEEKDAYS, region="330102")
    hall = HallState(config, day)
    hall.apply(SetMatters(matters=MATTERS), at(day))
    return hall


def open_case(hall: HallState, day: date, matter: str = "P5", **kw: object) -> str:
    reply = hall.apply(OpenCase(matter=matter, applicant="张三丰", **kw), at(day))
    return reply["case"]["number"]


def working_days_after(start: date, n: int) -> date:
    """Independently of the hall's calendar: the n-th day after ``start`` that
    chinese_calendar says is a working day (weekends, holidays and make-up days included)."""
    day = start
    while n:
        day += timedelta(days=1)
        n -= chinese_calendar.is_workday(day)
    return day


def test_a_five_day_matter_accepted_before_national_day_is_due_on_13_october():
    hall = hall_on(date(2026, 9, 30))
    number = open_case(hall, date(2026, 9, 30))
    case = hall.cases.by_number[number]
    assert case.due == date(2026, 10, 13)        # 10 October is a make-up working day (调休)
    assert number == "330102-t-20260930-0001"


@pytest.mark.parametrize("accepted", [date(2026, 2, 11), date(2026, 2, 12), date(2026, 2, 13),
                                      date(2026, 2, 24), date(2026, 2, 27)])
@pytest.mark.parametrize("matter,limit", [("P5", 5), ("P20", 20)])
def test_cases_around_spring_festival_count_the_official_working_days(accepted, matter, limit):
    hall = hall_on(accepted)
    case = hall.cases.by_number[open_case(hall, accepted, matter)]
    assert case.due == working_days_after(accepted, limit)


def test_a_supplement_pause_moves_the_due_date_by_exactly_its_working_days():
    start = date(2026, 11, 2)                               # a Monday
    hall = hall_on(start)
    number = open_case(hall, start, "P20")
    case = hall.cases.by_number[number]
    first_due = case.due
    hall.apply(CaseStep(number=number, action="hand_off"), at(start))
    hall.apply(CaseStep(number=number, action="supplement", missing=("房产证",)), at(date(2026, 11, 4)))
    assert case.state == "supplement" and case.colour == "paused"
    # Wednesday to the next Tuesday: Thu, Fri, Mon, Tue = 4 working days paused
    hall.roll_to(at(date(2026, 11, 10)))
    hall.apply(CaseStep(number=number, action="supplemented"), at(date(2026, 11, 10)))
    assert case.state == "handed_off" and case.missing == () and "房产证" in case.materials
    assert case.due == working_days_after(first_due, 4)
    assert hall.calendar.working_days_between(first_due, case.due) == 4


def test_a_december_case_runs_into_2027_on_weekdays_alone_and_the_hall_is_told():
    start = date(2026, 12, 21)
    hall = hall_on(start)
    case = hall.cases.by_number[open_case(hall, start, "P20")]
    assert 2027 in hall.calendar.unpublished([2026, 2027])   # chinesecalendar knows up to 2026
    # weekdays only from 2027 on: 1 January (a holiday every year) counts as a working day
    n, day = 20, start
    while n:
        day += timedelta(days=1)
        working = chinese_calendar.is_workday(day) if day.year == 2026 else day.weekday() < 5
        n -= working
    assert case.due == day
    assert any("2027" in zh for zh, _ in warnings(hall))


def test_warnings_turn_yellow_and_red_on_the_right_working_day():
    start = date(2026, 11, 2)
    hall = hall_on(start)
    number = open_case(hall, start, "P5")                    # due Monday 9 November
    case = hall.cases.by_number[number]
    assert case.due == date(2026, 11, 9) and case.colour == "green"
    timers = hall.deadlines()
    when, command = timers[cases.SWEEP]
    # yellow from Thursday 5 November: two working days (Friday, Monday) left
    assert when.date() == date(2026, 11, 5) and when.hour == 0 and command == CaseClock()
    hall.roll_to(at(date(2026, 11, 5), 0))
    hall.apply(command, at(date(2026, 11, 5), 0))
    assert case.colour == "yellow"
    when, command = hall.deadlines()[cases.SWEEP]
    assert when.date() == date(2026, 11, 10)                 # the day after it is due
    hall.roll_to(at(date(2026, 11, 10), 0))
    hall.apply(command, at(date(2026, 11, 10), 0))
    assert case.colour == "red"
    events = [e.payload["colour"] for e in hall.drain().events if e.kind == "case_warning"]
    assert events == ["yellow", "red"]
    hall.apply(CaseStep(number=number, action="review"), at(date(2026, 11, 10)))
    hall.apply(CaseStep(number=number, action="decide"), at(date(2026, 11, 10)))
    assert case.colour == "none" and cases.on_time(case) is False


def test_a_case_from_the_ticket_being_served_remembers_it_and_one_ticket_opens_several():
    day = date(2026, 11, 23)
    hall = hall_on(day)
    ticket = hall.apply(Take(service="A"), at(day))["ticket"]["number"]
    first = open_case(hall, day, "P5", ticket=ticket)
    second = open_case(hall, day, "I0", ticket=ticket)
    assert {hall.cases.by_number[n].ticket_number for n in (first, second)} == {ticket}
    assert second.endswith("-0002")
    with pytest.raises(Refused) as info:
        open_case(hall, day, "NOPE")
    assert info.value.code == "unknown_matter"


def test_a_case_entered_after_the_fact_keeps_its_real_acceptance_date():
    today = date(2026, 11, 23)
    hall = hall_on(today)
    number = open_case(hall, today, "P5", accepted_on=date(2026, 11, 16))
    case = hall.cases.by_number[number]
    assert case.late_entry and case.accepted_on == date(2026, 11, 16)
    assert case.due == working_days_after(date(2026, 11, 16), 5) and number.endswith("20261116-0001")
    with pytest.raises(Refused):
        open_case(hall, today, "P5", accepted_on=date(2026, 11, 24))      # not in the future


def test_a_joint_case_is_decided_when_its_last_part_is():
    day = date(2026, 11, 23)
    hall = hall_on(day)
    number = open_case(hall, day, "J10")
    hall.apply(CaseStep(number=number, action="hand_off"), at(day))
    hall.apply(CaseStep(number=number, action="review"), at(day))
    assert [t.department for t in hall.cases.tasks[number]] == ["市场监管局", "消防救援大队", "生态环境局"]
    with pytest.raises(Refused):
        hall.apply(CaseStep(number=number, action="decide"), at(day))
    for dept in ("市场监管局", "消防救援大队"):
        hall.apply(CaseStep(number=number, action="complete_task", task=dept), at(day))
        assert hall.cases.by_number[number].state == "in_review"
    hall.apply(CaseStep(number=number, action="complete_task", task="生态环境局", decision="refused",
                        reasons="排污不达标"), at(day))
    case = hall.cases.by_number[number]
    assert case.state == "decided" and case.decision == "refused" and "排污不达标" in case.reasons


# ---------------------------------------------------------------------- the state machine
ACTION = st.sampled_from(sorted(cases.ACTIONS))


@settings(max_examples=150, deadline=None)
@given(matter=st.sampled_from([m["code"] for m in MATTERS]), missing=st.booleans(),
       steps=st.lists(st.tuples(ACTION, st.integers(0, 3), st.booleans()), max_size=25))
def test_random_steps_follow_the_table_and_the_clock_stops_during_supplement(matter, missing, steps):
    day = date(2026, 11, 2)
    hall = hall_on(day)
    number = open_case(hall, day, matter, missing=("材料",) if missing else ())
    case = hall.cases.by_number[number]
    for action, days_later, refuse in steps:
        if days_later:
            day += timedelta(days=days_later)
            hall.roll_to(at(day))
            case = hall.cases.by_number.get(number, case)
        before, due_before = case.state, case.due
        tasks = hall.cases.tasks.get(number, [])
        open_task = next((t.id for t in tasks if t.state == "open"), None)
        try:
            hall.apply(CaseStep(number=number, action=action, reasons="理由" if refuse else "",
                                decision="refused" if refuse else None, task=open_task), at(day))
        except Refused:
            assert case.state == before and case.due == due_before          # nothing changed
            continue
        allowed = cases.TRANSITIONS.get(before, {})
        assert action in allowed, (before, action)                          # never an illegal step
        if before == "supplement":
            assert case.paused_from is None
        if before != "supplement" and action != "supplemented":
            assert case.due == due_before or before == "supplement"        # the clock only moves after 补正
        if case.form == "joint" and case.state == "decided":
            assert all(t.state == "done" for t in hall.cases.tasks[number])
        if case.state == "supplement":
            assert cases.colour(hall.calendar, case, day, 2) == "paused"
    paused = cases.paused_days(hall.calendar, case, day)
    assert case.due == hall.calendar.add_working_days(case.accepted_on, case.limit_days + paused) \
        or case.state == "supplement"
