"""A waiting line kept in serving order: priority class first, then original issue order."""

from __future__ import annotations

from bisect import bisect_left, insort

Key = tuple[int, int, str]


class WaitingLine:
    """Sorted keys ``(priority rank, ordinal, ticket id)``; the head is served next."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: list[Key] = []

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def add(self, key: Key) -> None:
        insort(self._keys, key)

    def position(self, key: Key) -> int:
        """How many are ahead of ``key``."""
        return bisect_left(self._keys, key)

    def remove(self, key: Key) -> None:
        i = bisect_left(self._keys, key)
        if i == len(self._keys) or self._keys[i] != key:
            raise KeyError(key)
        del self._keys[i]

    def head(self) -> Key | None:
        return self._keys[0] if self._keys else None

    def clear(self) -> None:
        self._keys.clear()
