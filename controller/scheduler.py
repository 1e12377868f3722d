"""The engine's timers (定时器), on the injected clock.

The hall's state says which timers it needs (``HallState.deadlines``: the next midnight's
rollover, each open rating session's time-out; later case deadlines and reminders). After a
commit that may have changed them, and after every rebuild from storage, the engine hands the
whole set here; so after a restart the timers are whatever the stored state needs. A timer
that comes due sends its command through the engine like any other door.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from controller.clock import Clock
from controller.core.commands import Command

log = logging.getLogger("yimen.scheduler")

Deadlines = dict[str, tuple[datetime, Command]]
#: After a timer's command could not be committed, wait this long (real seconds) before the
#: next try, so a storage outage is not a busy loop.
RETRY_S = 1.0


class Scheduler:
    def __init__(self, clock: Clock, fire: Callable[[Command], Awaitable[bool]]) -> None:
        """``fire(command)`` runs a due timer's command; False: try again later."""
        self.clock = clock
        self._fire = fire
        self._timers: Deadlines = {}
        self._fired: set[tuple[str, datetime]] = set()   # done; the state may lag behind
        self._changed = asyncio.Event()

    def follow(self, deadlines: Deadlines) -> None:
        """Replace the timers with ``deadlines``."""
        if deadlines != self._timers:
            self._timers = dict(deadlines)
            self._fired &= {(name, when) for name, (when, _) in deadlines.items()}
            self._changed.set()

    @property
    def timers(self) -> Deadlines:
        return dict(self._timers)

    async def run(self) -> None:
        while True:
            self._changed.clear()
            pending = [(when, name, command) for name, (when, command) in self._timers.items()
                       if (name, when) not in self._fired]
            if not pending:
                await self._changed.wait()
                continue
            when, name, command = min(pending, key=lambda p: p[0])
            if not await self._until(when):
                continue                          # the timers changed first: the next may be sooner
            current = self._timers.get(name)      # still wanted, even if others changed meanwhile
            if current is None or current[0] != when or (name, when) in self._fired:
                continue
            if await self._fire(current[1]):
                self._fired.add((name, when))
            else:
                await asyncio.sleep(RETRY_S)

    async def _until(self, when: datetime) -> bool:
        """Sleep until ``when``; False if the timers changed before it came. (Once it has
        come the timer fires if it is still wanted, however busy the hall: a stream of
        commits changing other timers must not hold it back.)"""
        sleep = asyncio.ensure_future(self.clock.sleep_until(when))
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            done, _ = await asyncio.wait({sleep, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleep, changed):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return sleep in done
