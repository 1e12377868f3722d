"""Login throttling (登录限速), per account and per address.

An attempt counts as a failure from the moment it starts (``attempt``), so a thousand wrong
passwords sent at once do not all slip in while the first ones are being checked; a success
takes its count back (``succeeded``). After ``free`` failures, each further attempt must wait:
1 s, 2 s, 4 s … up to ``max_delay_s``. A throttled attempt is answered 429 before its password
is looked at. Kept in memory: a restart forgets it, and the table holds at most ``capacity``
keys, the oldest dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Count:
    failures: int
    until: float          # monotonic seconds before which no attempt is taken


class Throttle:
    def __init__(self, free: int, max_delay_s: float = 900.0, forget_s: float = 3600.0,
                 capacity: int = 10_000) -> None:
        self.free, self.max_delay_s, self.forget_s, self.capacity = free, max_delay_s, forget_s, capacity
        self._counts: OrderedDict[str, _Count] = OrderedDict()

    def wait_s(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        count = self._counts.get(key)
        if count is None:
            return 0.0
        if now - count.until > self.forget_s:
            del self._counts[key]
            return 0.0
        return max(0.0, count.until - now)

    def attempt(self, key: str, now: float) -> None:
        """An attempt begins: counted as failed until it ``succeeded``."""
        count = self._counts.pop(key, None) or _Count(0, now)
        count.failures += 1
        extra = count.failures - self.free
        count.until = now + (min(self.max_delay_s, 2.0 ** (extra - 1)) if extra > 0 else 0.0)
        self._counts[key] = count
        while len(self._counts) > self.capacity:
            self._counts.popitem(last=False)

    def succeeded(self, key: str, forget: bool) -> None:
        """The attempt was right: ``forget`` the key's failures (an account's), or only take
        this attempt back (an address's, which may hold several accounts)."""
        count = self._counts.get(key)
        if count is None:
            return
        count.failures -= 1
        if forget or count.failures <= 0:
            del self._counts[key]
