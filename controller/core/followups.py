"""The 差评 follow-up loop (差评整改闭环): every bad rating is followed up, on working days.

A 差评 (the two bottom levels) opens a follow-up for the supervisor:

    open ─ 回访 visit (≤ 1 working day) ─ visited ─ 整改 rectify (≤ ``rectify_days``) ─ rectified
      ─ 反馈 feed back to the citizen ─ fed_back ─ 追评 one follow-up rating, or closed without
    申诉 appeal (a mistaken or malicious rating): from open or visited, decided by a supervisor —
      upheld: the rating is excluded from the rates (excluded); rejected: back where it was.

Deadlines count working days from the day of the rating on the hall's calendar; a follow-up
past one turns red, re-read by the engine's scheduler on the day after it (``timers``). The
rater stays anonymous: a follow-up names the window, the clerk and the ticket, never a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from controller.core.commands import LEVEL_NAMES as RATING_LEVELS
from controller.core.commands import Command, FollowupClock, FollowupStep
from controller.core.errors import Refused
from controller.core.events import EventKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.core.hall import HallState
    from controller.core.ratings import Evaluation

STATES: dict[str, tuple[str, str]] = {
    "open": ("待回访", "to visit"), "visited": ("整改中", "rectifying"),
    "rectified": ("待反馈", "to feed back"),
    "fed_back": ("待追评", "awaiting follow-up rating"), "appealed": ("申诉中", "appealed"),
    "closed": ("已办结", "closed"), "excluded": ("申诉成立", "excluded"),
}
#: state → action → next state ("back": where it was before the appeal)
TRANSITIONS: dict[str, dict[str, str]] = {
    "open": {"visit": "visited", "appeal": "appealed"},
    "visited": {"rectify": "rectified", "appeal": "appealed"},
    "rectified": {"feed_back": "fed_back"},
    "fed_back": {"rerate": "closed", "close": "closed"},
    "appealed": {"uphold": "excluded", "reject": "back"},
}
ACTIONS: dict[str, tuple[str, str]] = {
    "visit": ("回访", "return visit"), "rectify": ("整改完成", "rectified"),
    "feed_back": ("反馈", "feed back"),
    "rerate": ("追评", "follow-up rating"), "close": ("结案", "close"), "appeal": ("申诉", "appeal"),
    "uphold": ("申诉成立", "uphold the appeal"), "reject": ("驳回申诉", "reject the appeal"),
}
assert {a for moves in TRANSITIONS.values() for a in moves} == set(ACTIONS)
#: Who may decide an appeal: not whoever lodged it.
SUPERVISOR_ACTIONS = frozenset({"uphold", "reject"})
OPEN = frozenset({"open", "visited", "rectified", "fed_back", "appealed"})
#: each level's name, as pages show it
LEVEL_NAMES = {level: name for level, (name, _) in RATING_LEVELS.items()}


@dataclass(slots=True)
class Followup:
    """One 差评's follow-up; ``id`` is its rating session's."""

    id: str
    window: str
    clerk: str | None
    ticket: str
    number: str
    service: str
    case: str | None
    level: str
    reasons: tuple[str, ...]
    opened_at: datetime
    opened_on: date
    visit_due: date
    rectify_due: date
    state: str = "open"
    back_to: str | None = None
    notes: str = ""
    appealed_by: str | None = None
    rerating: str | None = None
    colour: str = "green"
    closed_at: datetime | None = None


def colour(f: Followup, today: date) -> str:
    """red past its visit or rectification day, yellow on the day itself, else green; none
    once closed."""
    if f.state not in OPEN:
        return "none"
    due = f.visit_due if f.state == "open" else f.rectify_due if f.state in ("visited", "appealed") else None
    if due is None:
        return "green"
    return "red" if today > due else "yellow" if today == due else "green"


def open_followup(hall: HallState, ev: Evaluation, now: datetime) -> Followup:
    """A 差评 was given: its follow-up, due on working days from today."""
    today = hall.local(now).date()
    cal = hall.calendar
    f = Followup(id=ev.id, window=ev.window, clerk=ev.clerk, ticket=ev.ticket, number=ev.number,
                 service=ev.service, case=ev.case, level=ev.level or "", reasons=ev.reasons,
                 opened_at=now, opened_on=today, visit_due=cal.add_working_days(today, 1),
                 rectify_due=cal.add_working_days(today, hall.config.hall.rectify_days))
    f.colour = colour(f, today)
    hall.followups[f.id] = f
    hall.changes.touch(f)
    hall.emit(EventKind.FOLLOWUP_OPENED, now, ref=ev.ref, window=ev.window, clerk=ev.clerk, session=ev.id,
              visit_due=f.visit_due.isoformat(), rectify_due=f.rectify_due.isoformat())
    return f


def step(hall: HallState, cmd: FollowupStep, now: datetime) -> dict[str, Any]:
    f = hall.followups.get(cmd.session)
    if f is None:
        raise Refused("unknown_followup", "没有这条差评跟进", "no such follow-up")
    target = TRANSITIONS.get(f.state, {}).get(cmd.action)
    if target is None:
        raise Refused("bad_transition", f"差评跟进{STATES[f.state][0]}，不能{ACTIONS[cmd.action][0]}",
                      f"a follow-up {STATES[f.state][1]} cannot {ACTIONS[cmd.action][1]}")
    if cmd.action in ("appeal", "uphold", "reject") and not cmd.note:
        raise Refused("reasons_needed", "请写明理由", "give the reasons")
    if cmd.action in SUPERVISOR_ACTIONS and hall.actor == f.appealed_by:
        raise Refused("forbidden", "申诉须由另一位值班长决定", "an appeal is decided by someone else")
    if cmd.action == "rerate":
        if cmd.level is None:
            raise Refused("bad_arguments", "请选择追评等级", "a follow-up rating needs its level")
        f.rerating = cmd.level
    before = f.state
    if cmd.action == "appeal":
        f.back_to, f.appealed_by = f.state, hall.actor
    if target == "back":
        target, f.back_to = f.back_to or "open", None
    f.state = target
    if f.state not in OPEN:
        f.closed_at = now
    if cmd.note:
        f.notes = f"{f.notes}\n[{ACTIONS[cmd.action][0]}] {cmd.note}".strip()[-2000:]
    today = hall.local(now).date()
    f.colour = colour(f, today)
    hall.changes.touch(f)
    detail: dict[str, Any] = {"level": cmd.level} if cmd.action == "rerate" else {}
    hall.emit(EventKind.FOLLOWUP_STEP, now, ref=(f.ticket, f.number, f.service), window=f.window,
              clerk=f.clerk, session=f.id, action=cmd.action, before=before, after=f.state, **detail)
    return {"followup": view(f, today)}


def clock(hall: HallState, cmd: FollowupClock, now: datetime) -> dict[str, Any]:
    f = hall.followups.get(cmd.session)
    if f is None:
        return {"followup": None}
    new = colour(f, hall.local(now).date())
    if new != f.colour:
        before, f.colour = f.colour, new
        hall.changes.touch(f)
        hall.emit(EventKind.FOLLOWUP_WARNING, now, ref=(f.ticket, f.number, f.service), window=f.window,
                  clerk=f.clerk, session=f.id, before=before, colour=new)
    return {"followup": f.id, "colour": f.colour}


def timers(hall: HallState) -> dict[str, tuple[datetime, Command]]:
    """Each open follow-up's next colour change (its due day, and the day after), at the
    hall's local midnight; at once when today's colour is not yet the stored one."""
    out: dict[str, tuple[datetime, Command]] = {}
    for f in hall.followups.values():
        if f.state not in OPEN:
            continue
        due = f.visit_due if f.state == "open" else f.rectify_due
        day = due if hall.day < due else due + timedelta(days=1) if hall.day == due else None
        if colour(f, hall.day) != f.colour:      # changed already (the rollover came first): now
            day = hall.day
        if day is not None:
            out[f"followup:{f.id}"] = (datetime.combine(day, time(0), hall.tz), FollowupClock(session=f.id))
    return out


def view(f: Followup, today: date) -> dict[str, Any]:
    """What a supervisor sees: the window, clerk, ticket and rating — never who rated."""
    return {"session": f.id, "window": f.window, "clerk": f.clerk, "ticket": f.number,
            "service": f.service, "case": f.case, "level": f.level,
            "level_name": LEVEL_NAMES.get(f.level, f.level),
            "reasons": list(f.reasons), "opened_on": f.opened_on.isoformat(),
            "visit_due": f.visit_due.isoformat(),
            "rectify_due": f.rectify_due.isoformat(), "state": f.state, "state_name": STATES[f.state][0],
            "state_en": STATES[f.state][1], "colour": f.colour, "notes": f.notes, "rerating": f.rerating,
            "actions": list(TRANSITIONS.get(f.state, {})),
            "overdue_days": (today - (f.visit_due if f.state == "open" else f.rectify_due)).days
            if f.colour == "red" else 0}


HANDLERS: dict[type[Command], Callable[[HallState, Any, datetime], dict[str, Any]]] = {
    FollowupStep: step, FollowupClock: clock}
