"""The hall's calls (叫号) as protocol v1 ``calls`` objects, made once per call or recall.

Every door that shows calls (the MQTT bus, the pages' pushes) listens here instead of to the
engine: it gets each committed batch of events with the calls made from it, so a call has one
``call_id`` everywhere, and ``recent`` is the one list of the last calls every ``board``
carries.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from controller.bus import views
from controller.core.events import EventKind
from controller.engine import Committed, Engine
from controller.logs import RateLimitedLog

log = logging.getLogger("yimen.calls")
noisy = RateLimitedLog(log)
CALL_EVENTS = frozenset({EventKind.CALLED, EventKind.RECALLED})
Listener = Callable[[Committed, list[dict[str, Any]]], None]


class CallLog:
    def __init__(self, engine: Engine, keep: int = 10) -> None:
        self.engine = engine
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self._listeners: list[Listener] = []
        engine.subscribe(self._on_events)

    def subscribe(self, listener: Listener) -> None:
        """``listener(committed, calls)`` after each commit, in the engine's listener turn;
        a failing listener hurts no other."""
        self._listeners.append(listener)

    def _on_events(self, committed: Committed) -> None:
        calls = [views.call_object(self.engine.config, ev)
                 for ev in committed.events if ev.kind in CALL_EVENTS]
        self.recent.extend(calls)
        for listener in self._listeners:
            try:
                listener(committed, calls)
            except Exception:  # noqa: BLE001
                noisy.exception(f"listener:{listener!r}", "listener %r failed", listener)
