"""Log lines that may repeat without end (a device sending garbage, a storage outage, a
flood of connections) are rate-limited: a few per minute for each kind, then one line saying
how many were left out. A flood of bad input can then fill neither the disk nor the logger's
time. Errors are logged without the data they were about (``describe_error``).
"""

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
        """The same limit as a logging filter, for another library's logger (by message: its
        first line, so asyncio's reports that name a different task or socket each time are
        one kind)."""
        limit = self

        class _Limit(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                return limit.allow(str(record.msg).partition("\n")[0])

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


_limited: set[str] = set()


def limit_repeats(*names: str) -> None:
    """Rate-limit the loggers ``names`` (other libraries': asyncio's, aiohttp's), once per
    process however many servers it runs."""
    for name in names:
        if name not in _limited:
            _limited.add(name)
            logger = logging.getLogger(name)
            logger.addFilter(RateLimitedLog(logger).filter())


def describe_error(exc: BaseException) -> str:
    """``exc`` in one line that carries no personal data. A database error says its kind,
    SQLSTATE and the constraint, table and column it names; never the statement's parameters,
    nor the values PostgreSQL and asyncpg quote in their messages (``DETAIL: Failing row
    contains (…)``, ``invalid input for query argument $3: '1234'``). SQLite's messages name
    no values and are kept (their first line)."""
    orig = getattr(exc, "orig", None) or exc        # SQLAlchemy's DBAPIError wraps the driver's
    if "asyncpg" in type(orig).__module__:          # asyncpg's error, or SQLAlchemy's adapter of it
        cause = orig.__cause__
        driver = cause if cause is not None and "asyncpg" in type(cause).__module__ else orig
        sqlstate = getattr(driver, "sqlstate", None)
        names = [f"{what} {value}" for what in ("constraint", "table", "column")
                 if (value := getattr(driver, f"{what}_name", None))]
        return ", ".join([type(driver).__name__, *([f"SQLSTATE {sqlstate}"] if sqlstate else []), *names])
    first = str(orig).strip().partition("\n")[0]
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__
