"""Log lines that may repeat without end (a device sending garbage, a storage outage) are
rate-limited: a few per minute for each kind, then one line saying how many were left out. A
flood of bad input can then fill neither the disk nor the logger's time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

PER_WINDOW = 5
WINDOW_S = 60.0
#: At most this many kinds are tracked; past it the oldest are forgotten (memory stays bounded
#: even when every bad message brings a new kind).
MAX_KINDS = 1024


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, per_window: int = PER_WINDOW,
                 window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.per_window = per_window
        self.window_s = window_s
        self._clock = clock
        self._kinds: dict[str, list[float | int]] = {}   # kind → [window start, logged, left out]

    def allow(self, kind: str) -> bool:
        """Whether a line of ``kind`` may be logged now (and say what was left out before)."""
        now = self._clock()
        entry = self._kinds.get(kind)
        if entry is None or now - entry[0] >= self.window_s:
            if entry is not None and entry[2]:
                self.logger.warning("%d more %r messages were left out in the last %.0f s",
                                    entry[2], kind, now - entry[0])
            if entry is None and len(self._kinds) >= MAX_KINDS:
                del self._kinds[next(iter(self._kinds))]
            entry = self._kinds[kind] = [now, 0, 0]
        if entry[1] < self.per_window:
            entry[1] += 1
            return True
        entry[2] += 1
        return False

    def filter(self) -> logging.Filter:
        """The same limit as a logging filter, for another library's logger (by message)."""
        limit = self

        class _Limit(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                return limit.allow(str(record.msg))

        return _Limit()

    def warning(self, kind: str, msg: str, *args: object) -> None:
        if self.allow(kind):
            self.logger.warning(msg, *args)

    def error(self, kind: str, msg: str, *args: object) -> None:
        if self.allow(kind):
            self.logger.error(msg, *args)

    def exception(self, kind: str, msg: str, *args: object) -> None:
        if self.allow(kind):
            self.logger.exception(msg, *args)
