"""What a run of commands changed, for one transaction (一批变更)."""

from __future__ import annotations

from datetime import date
from typing import Any

from controller.core.events import Event


class Changes:
    """The records a batch touched (each once, in the order first touched), the events it
    produced and, after a rollover, the hall's new day. Records are the core's own objects;
    storage maps each kind to its table, so a new kind of record needs nothing here."""

    __slots__ = ("_records", "events", "day")

    def __init__(self) -> None:
        self._records: dict[int, Any] = {}
        self.events: list[Event] = []
        self.day: date | None = None

    def touch(self, record: Any) -> None:
        self._records[id(record)] = record

    @property
    def records(self) -> list[Any]:
        return list(self._records.values())

    def of(self, kind: type) -> list[Any]:
        return [r for r in self._records.values() if type(r) is kind]

    def __bool__(self) -> bool:
        return bool(self._records or self.events or self.day)
