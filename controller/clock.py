"""Injected time, so rollover, time-outs and deadlines are tested without sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemClock:
    """The real time, timezone-aware (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        # in steps of at most 10 minutes, so a wall clock that is set or jumps is noticed
        while (left := (when - self.now()).total_seconds()) > 0:
            await asyncio.sleep(min(left, 600.0))


class FakeClock:
    """A clock the tests set and advance; sleepers wake when it passes their time."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start
        self._sleepers: list[tuple[datetime, asyncio.Future]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((when, future))
        await future

    def set(self, when: datetime) -> None:
        self._now = when
        due = [s for s in self._sleepers if s[0] <= when]
        self._sleepers = [s for s in self._sleepers if s[0] > when]
        for _, future in due:
            if not future.done():
                future.set_result(None)

    def advance(self, **delta: float) -> datetime:
        self.set(self._now + timedelta(**delta))
        return self._now
