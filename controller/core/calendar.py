"""Opening calendar (办理时间): working days, holidays with make-up days (调休), hours, quotas."""

from __future__ import annotations

from datetime import date, datetime

from controller.config import WEEKDAYS, Hall, Quota, Service


def is_working_day(hall: Hall, day: date) -> bool:
    """Make-up working days open even at weekends; holidays close even on weekdays."""
    if day in hall.workdays:
        return True
    if day in hall.holidays:
        return False
    return WEEKDAYS[day.weekday()] in hall.days


def minute_of(local: datetime) -> int:
    return local.hour * 60 + local.minute


def is_open(hall: Hall, service: Service, local: datetime) -> bool:
    """Whether ``service`` issues tickets at the hall-local time ``local``."""
    if not is_working_day(hall, local.date()):
        return False
    minute = minute_of(local)
    return any(span.contains(minute) for span in service.hours or hall.hours)


def hours_text(hall: Hall, service: Service) -> str:
    return "、".join(str(s) for s in service.hours or hall.hours)


def quota_segment(service: Service, local: datetime) -> tuple[int, Quota] | None:
    """The time-segment quota (分时段限号) that applies at ``local``, with its index."""
    minute = minute_of(local)
    for i, quota in enumerate(service.quotas):
        if quota.span.contains(minute):
            return i, quota
    return None
