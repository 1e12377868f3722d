"""Opening calendar (办理时间): working days, holidays with make-up days (调休), hours, quotas.

Working days (工作日) are the country's: the statutory holidays and make-up working days the
State Council publishes each year come from the ``chinesecalendar`` package, and a hall adds its
own closures (``holidays``) and extra working days (``workdays``) on top. The package knows only
the years published so far; past them a day is a working day by the hall's weekdays alone, and
``WorkCalendar.unpublished`` says which years those are, so the hall can be warned. Case
deadlines count working days with ``add_working_days`` and ``working_days_between``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import chinese_calendar

from controller.config import WEEKDAYS, Hall, Quota, Service

_NATIONAL_HOLIDAYS: frozenset[date] = frozenset(chinese_calendar.holidays)
_NATIONAL_WORKDAYS: frozenset[date] = frozenset(chinese_calendar.workdays)
_PUBLISHED: frozenset[int] = frozenset(d.year for d in chinese_calendar.holidays)


class WorkCalendar:
    """One hall's working days."""

    def __init__(self, hall: Hall) -> None:
        self.hall = hall
        self.national = hall.national_calendar

    def published(self, year: int) -> bool:
        """Whether the country's holidays of ``year`` are known (always, without them)."""
        return not self.national or year in _PUBLISHED

    def unpublished(self, years: Iterable[int]) -> list[int]:
        """Of ``years``, those counted by weekdays alone for want of the national calendar."""
        return [y for y in years if not self.published(y)]

    def is_working_day(self, day: date) -> bool:
        """The hall's own entries first; then national holidays close and make-up days open
        (in the years published); otherwise the hall's opening weekdays."""
        if day in self.hall.workdays:
            return True
        if day in self.hall.holidays:
            return False
        if self.national:
            if day in _NATIONAL_HOLIDAYS:
                return False
            if day in _NATIONAL_WORKDAYS:
                return True
        return WEEKDAYS[day.weekday()] in self.hall.days

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself not counted): a case
        accepted on ``start`` with a limit of ``n`` working days is due that day."""
        if n < 0:
            raise ValueError("n must not be negative")
        day = start
        while n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day

    def working_days_between(self, start: date, end: date,
                             pauses: Iterable[tuple[date, date]] = ()) -> int:
        """Working days after ``start`` up to and including ``end``, less those inside any
        pause (first and last paused day, inclusive: a clock stopped for 补正)."""
        stopped = [(a, b) for a, b in pauses]
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            if self.is_working_day(day) and not any(a <= day <= b for a, b in stopped):
                count += 1
        return count


def minute_of(local: datetime) -> int:
    return local.hour * 60 + local.minute


def is_open(cal: WorkCalendar, service: Service, local: datetime) -> bool:
    """Whether ``service`` issues tickets at the hall-local time ``local``."""
    if not cal.is_working_day(local.date()):
        return False
    minute = minute_of(local)
    return any(span.contains(minute) for span in service.hours or cal.hall.hours)


def hours_text(hall: Hall, service: Service) -> str:
    return "、".join(str(s) for s in service.hours or hall.hours)


def quota_segment(service: Service, local: datetime) -> tuple[int, Quota] | None:
    """The time-segment quota (分时段限号) that applies at ``local``, with its index."""
    minute = minute_of(local)
    for i, quota in enumerate(service.quotas):
        if quota.span.contains(minute):
            return i, quota
    return None
