"""Working days (工作日): the country's statutory holidays and make-up days (调休), the hall's
own closures and extra days on top, weekdays alone past the published years; working-day
arithmetic for deadlines."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from controller.core.calendar import WorkCalendar
from tests.helpers import small_config


def calendar(**hall: object) -> WorkCalendar:
    return WorkCalendar(small_config(days=["mon", "tue", "wed", "thu", "fri"], **hall).hall)


def working_days_in(cal: WorkCalendar, year: int) -> int:
    return cal.working_days_between(date(year - 1, 12, 31), date(year, 12, 31))


def test_the_official_2025_calendar():
    cal = calendar()
    assert working_days_in(cal, 2025) == 248          # 261 weekdays − 18 holidays + 5 调休
    assert cal.is_working_day(date(2025, 1, 26))      # Sunday made a working day (春节调休)
    assert cal.is_working_day(date(2025, 2, 8))       # Saturday made a working day
    assert not any(cal.is_working_day(date(2025, 1, 28) + timedelta(d)) for d in range(8))  # 春节
    assert not cal.is_working_day(date(2025, 10, 8))  # 国庆中秋, a Wednesday
    assert cal.is_working_day(date(2025, 10, 11))     # Saturday made a working day
    assert not cal.is_working_day(date(2025, 10, 12))  # an ordinary Sunday


def test_the_official_2026_calendar():
    cal = calendar()
    assert working_days_in(cal, 2026) == 248
    assert cal.is_working_day(date(2026, 1, 4))        # Sunday after 元旦, made a working day
    assert cal.is_working_day(date(2026, 2, 14)) and cal.is_working_day(date(2026, 2, 28))
    assert not any(cal.is_working_day(date(2026, 2, 16) + timedelta(d)) for d in range(5))
    assert not any(cal.is_working_day(date(2026, 10, 1) + timedelta(d)) for d in range(7))
    assert cal.is_working_day(date(2026, 10, 10))      # Saturday made a working day


def test_the_halls_own_days_go_on_top():
    cal = calendar(holidays=[date(2026, 12, 31), date(2026, 10, 10)],
                   workdays=[date(2026, 12, 13), date(2026, 10, 2)])
    assert not cal.is_working_day(date(2026, 12, 31))   # its own closure, a Thursday
    assert cal.is_working_day(date(2026, 12, 13))       # its own extra Sunday
    assert not cal.is_working_day(date(2026, 10, 10))   # closed on a national make-up day
    assert cal.is_working_day(date(2026, 10, 2))        # open on a national holiday


def test_past_the_published_years_weekdays_count_and_the_hall_is_told():
    cal = calendar(holidays=[date(2027, 1, 1)])
    assert cal.unpublished([2026, 2027]) == [2027]
    assert not cal.is_working_day(date(2027, 1, 1))     # the hall's own entry still counts
    assert cal.is_working_day(date(2027, 2, 8))         # a Monday: no holidays known
    assert not cal.is_working_day(date(2027, 2, 6))     # a Saturday
    assert calendar(national_calendar=False).unpublished([2027]) == []


def test_without_the_national_calendar_a_hall_keeps_its_weekdays():
    cal = calendar(national_calendar=False)
    assert cal.is_working_day(date(2026, 10, 1)) and not cal.is_working_day(date(2026, 10, 10))


def test_deadlines_in_working_days():
    cal = calendar()
    # accepted on 30 September 2025: the next working day is 9 October, after the holiday
    assert cal.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert cal.add_working_days(date(2025, 9, 30), 3) == date(2025, 10, 11)   # the 调休 Saturday
    assert cal.add_working_days(date(2025, 9, 30), 0) == date(2025, 9, 30)
    assert cal.working_days_between(date(2025, 9, 26), date(2025, 10, 12)) == 6
    # a clock stopped for 补正 from 9 to 10 October does not count those two days
    assert cal.working_days_between(date(2025, 9, 26), date(2025, 10, 12),
                                    pauses=[(date(2025, 10, 9), date(2025, 10, 10))]) == 4


@given(start=st.dates(date(2024, 6, 1), date(2027, 6, 1)), n=st.integers(0, 40))
def test_adding_working_days_and_counting_them_agree(start, n):
    cal = calendar()
    due = cal.add_working_days(start, n)
    assert cal.working_days_between(start, due) == n
    assert n == 0 or cal.is_working_day(due)
    assert due == start or cal.working_days_between(start, due - timedelta(days=1)) == n - 1
