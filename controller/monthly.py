"""The monthly per-window report (月度窗口报表): made on demand, and made and kept by the hall's
report job on the first working day of each month for the month before.

``make`` computes a month's figures (``controller.stats``) and both files (``reports``'s xlsx
with its chart, ``report_pdf``'s PDF); the job stores them in the ``reports`` table, so the
report a hall was judged by stays as it was made, whatever is corrected later. The job sleeps
on the hall's clock until 00:30 of the next first working day (the hall's calendar: statutory
holidays and 调休 count), and on start makes the last month's report if its day has come and
it is not there yet — a server that was off that morning makes it when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller import stats
from controller.core.calendar import WorkCalendar
from controller.engine import Engine
from controller.report_pdf import monthly_pdf
from controller.reports import monthly_xlsx
from controller.storage.schema import events, reports

log = logging.getLogger("yimen.reports")
MONTHLY = "monthly"
#: the report is made at this local time of the first working day
AT = time(0, 30)
#: real seconds to wait for the hall's rollover when the job wakes first
ROLLOVER_WAIT_S = 0.5


def month_bounds(first: date) -> tuple[date, date]:
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first, last


def first_working_day(month: date, calendar: WorkCalendar) -> date:
    day = month.replace(day=1)
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    return day


async def make(engine: Engine, first: date, last: date) -> tuple[bytes, bytes]:
    """The month's report as (xlsx, pdf), with the figures as they stand now."""
    hall = await engine.settled()
    now = engine.clock.now()
    rows = await stats.period(engine.db, hall.config, first, last, "window", hall.day, now)
    whole = await stats.period(engine.db, hall.config, first, last, "hall", hall.day, now)
    name = hall.config.hall.name
    pdf = monthly_pdf(name, first, last, rows, whole[0] if whole else None, hall.local(now))
    return monthly_xlsx(name, first, rows), pdf


async def made(db: AsyncEngine, hall: str) -> list[dict[str, Any]]:
    """The reports the job has kept, newest first."""
    r = reports.c
    async with db.connect() as conn:
        rows = (await conn.execute(select(r.period, r.created_at).where(r.hall == hall, r.kind == MONTHLY)
                                   .order_by(r.period.desc()))).all()
    return [{"period": period, "created_at": at} for period, at in rows]


async def kept(db: AsyncEngine, hall: str, period: str, fmt: str) -> bytes | None:
    r = reports.c
    column = r.pdf if fmt == "pdf" else r.xlsx
    async with db.connect() as conn:
        return (await conn.execute(select(column).where(r.hall == hall, r.kind == MONTHLY,
                                                        r.period == period))).scalar()


class MonthlyReports:
    """The report job."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="yimen-monthly-reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        clock = self.engine.clock
        while True:
            try:
                hall = await self.engine.settled()
                today = hall.day
                if today < hall.local(clock.now()).date():     # the rollover is on its way
                    await asyncio.sleep(ROLLOVER_WAIT_S)
                    continue
                this_month = today.replace(day=1)
                due = first_working_day(this_month, hall.calendar)
                if today >= due:                             # this month's is made: next month's next
                    await self.keep((this_month - timedelta(days=1)).replace(day=1))
                    due = first_working_day((this_month + timedelta(days=32)).replace(day=1), hall.calendar)
                wake = datetime.combine(due, AT, hall.tz)
            except Exception:  # noqa: BLE001 - tried again in a minute
                log.exception("the monthly report could not be made; trying again in a minute")
                wake = clock.now() + timedelta(minutes=1)
            if wake <= clock.now():             # the day has come, the hall's day not yet
                wake = clock.now() + timedelta(minutes=1)
            await clock.sleep_until(wake)

    async def keep(self, first: date) -> bool:
        """Make and keep ``first``'s month's report unless it is kept already or the hall had
        no events that month."""
        db, hall = self.engine.db, self.engine.config.hall.id
        period = f"{first:%Y-%m}"
        if await kept(db, hall, period, "pdf") is not None:
            return False
        first, last = month_bounds(first)
        e = events.c
        async with db.connect() as conn:                  # a hall not yet open then: nothing
            if (await conn.execute(select(e.id).where(e.hall == hall, e.day >= first, e.day <= last)
                                   .limit(1))).first() is None:
                return False
        xlsx, pdf = await make(self.engine, first, last)
        async with db.begin() as conn:
            if (await conn.execute(select(reports.c.period).where(
                    reports.c.hall == hall, reports.c.kind == MONTHLY, reports.c.period == period))).first():
                return False
            await conn.execute(reports.insert().values(
                hall=hall, kind=MONTHLY, period=period, created_at=self.engine.clock.now(),
                xlsx=xlsx, pdf=pdf))
        log.info("monthly report %s made", period)
        return True
