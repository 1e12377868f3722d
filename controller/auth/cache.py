"""A small read cache with a time to live and a size bound (least recently used out first),
so what strangers send (made-up cookies, tokens, names) cannot grow the server's memory."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")
_MISSING = object()


class TtlCache(Generic[V]):
    def __init__(self, ttl_s: float, size: int = 4096) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str, default: object = _MISSING) -> V | object:
        """The value kept for ``key`` if it is fresh, else ``default``."""
        item = self._items.get(key)
        if item is None or time.monotonic() - item[0] >= self.ttl_s:
            return default
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: str, value: V) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()


MISSING = _MISSING
