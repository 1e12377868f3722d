"""好差评: one rating per service event, voluntary, never pre-selected.

A clerk asks for a rating (``Evaluate``); the window's evaluator shows a prompt for that
session; the citizen presses one of five levels (``Rate``) or the session times out and is
recorded as unrated (``ExpireEvaluation``, sent by the engine's scheduler), never as a default
good rating.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from controller.core import followups
from controller.core.commands import LEVELS, Command, Evaluate, ExpireEvaluation, Rate
from controller.core.errors import Refused
from controller.core.events import EventKind
from controller.core.windows import current

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.core.hall import HallState

BAD_LEVELS = frozenset(LEVELS[3:])   # 差评
DEFAULT_TIMEOUT_S = 60


@dataclass(slots=True)
class Evaluation:
    """One rating session at a window for one ticket."""

    id: str
    window: str
    clerk: str | None
    ticket: str
    number: str
    service: str
    opened_at: datetime
    timeout_s: int = DEFAULT_TIMEOUT_S
    closed_at: datetime | None = None
    level: str | None = None          # None once closed = unrated (未评价)
    reasons: tuple[str, ...] = ()
    case: str | None = None           # the case the service opened, if any (its number)

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def ref(self) -> tuple[str, str, str]:
        """The rated ticket: id, number, service."""
        return (self.ticket, self.number, self.service)

    @property
    def deadline(self) -> datetime:
        return self.opened_at + timedelta(seconds=self.timeout_s)

    def view(self) -> dict[str, Any]:
        return {"session": self.id, "window": self.window, "ticket": self.number, "case": self.case,
                "open": self.open, "level": self.level, "timeout_s": self.timeout_s,
                "opened_at": self.opened_at.isoformat()}


class Ratings:
    """The open rating sessions, by id (at most one per window)."""

    def __init__(self) -> None:
        self.open: dict[str, Evaluation] = {}

    def at(self, window: str) -> Evaluation | None:
        return next((ev for ev in self.open.values() if ev.window == window), None)


def masked_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧***: what an evaluator may show of a clerk."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def _close_unrated(hall: HallState, ev: Evaluation, now: datetime) -> None:
    del hall.ratings.open[ev.id]
    ev.closed_at = now
    hall.changes.touch(ev)
    hall.emit(EventKind.UNRATED, now, ref=ev.ref, window=ev.window, clerk=ev.clerk, session=ev.id)


def evaluate(hall: HallState, cmd: Evaluate, now: datetime) -> dict[str, Any]:
    """Ask the citizen at the window to rate the service of the current ticket. Asking again
    for the same ticket returns the open session; a session still open for an earlier citizen
    is closed as unrated first (one evaluator shows one prompt)."""
    ws = hall.desk.staffed(cmd.window)
    t = current(hall, ws)
    earlier = hall.ratings.at(cmd.window)
    if earlier is not None and earlier.ticket == t.id:
        return {"evaluation": earlier.view()}
    if earlier is not None:
        _close_unrated(hall, earlier, now)
    case = max((c for c in hall.cases.by_number.values() if c.ticket == t.id),
               key=lambda c: c.accepted_at, default=None)
    ev = Evaluation(id=f"{t.id}@{cmd.window}@{hall.stamp(now)}", window=cmd.window,
                    clerk=ws.clerk, ticket=t.id, number=t.number, service=t.service,
                    opened_at=now, timeout_s=hall.config.hall.evaluation_timeout_s,
                    case=case.number if case else None)
    hall.ratings.open[ev.id] = ev
    hall.changes.touch(ev)
    hall.emit(EventKind.EVALUATION_OPENED, now, t, window=cmd.window, clerk=ws.clerk, session=ev.id)
    return {"evaluation": ev.view()}


def rate(hall: HallState, cmd: Rate, now: datetime) -> dict[str, Any]:
    """The citizen's one rating for an open session (一次一评); reasons only for 差评."""
    ev = hall.ratings.open.get(cmd.session)
    if ev is None or ev.window != cmd.window:
        raise Refused("session_closed", "本次评价已结束", "no open rating session here")
    if cmd.reasons and cmd.level not in BAD_LEVELS:
        raise Refused("bad_reasons", "无效的原因", "reasons only for the two bad levels")
    ev.level, ev.reasons, ev.closed_at = cmd.level, tuple(dict.fromkeys(cmd.reasons)), now
    del hall.ratings.open[cmd.session]
    hall.changes.touch(ev)
    hall.emit(EventKind.RATED, now, ref=ev.ref, window=cmd.window, clerk=ev.clerk,
              session=ev.id, level=cmd.level, reasons=list(ev.reasons))
    if cmd.level in BAD_LEVELS:                  # 差评: its follow-up opens at once
        followups.open_followup(hall, ev, now)
    return {"evaluation": ev.view()}


def expire(hall: HallState, cmd: ExpireEvaluation, now: datetime) -> dict[str, Any]:
    """Close a session nobody rated as unrated (未评价), never as a default rating."""
    ev = hall.ratings.open.get(cmd.session)
    if ev is None:
        return {"evaluation": None}
    _close_unrated(hall, ev, now)
    return {"evaluation": ev.view()}


HANDLERS: dict[type[Command], Callable[[HallState, Any, datetime], dict[str, Any]]] = {
    Evaluate: evaluate, Rate: rate, ExpireEvaluation: expire,
}
