"""Three tiers (县、乡镇、村): cases forwarded up (上报件, 全程代办) and their results sent down.

A lower hall forwards a case it has sent up (``escalate``); the upper hall receives it as a
case of its own (``ReceiveCase``: its own number, the lower hall and number remembered, the
clock of the tier that decides: the matter's promised days in its own catalogue, else the
days the lower hall gave). Each step there goes back down (``RemoteStep``); the lower hall's
case keeps its number, gains the upper one, follows the upper state, and is decided, refused
or returned when the upper hall says so — then it is ready and handed over where the citizen
applied (「内转外不转」).

Messages between two halls are numbered per direction (``seq``, from 1) in the sender's epoch.
The receiving side's inbox keeps the last number it applied (``InboxMark``), stored in the same
transaction as the change: an earlier number is a repeat, answered ``duplicate`` and not applied
again; a later one than the next is out of order and refused (the sender sends again from what
was acknowledged). A new epoch is a sender restored from a backup: its numbers are taken afresh
from the first it sends, and a case it sends again that is here already is not taken twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controller.core.cases import DECIDED, HISTORY, colour, down_detail, new_case, on_time
from controller.core.commands import Command, ReceiveCase, RemoteStep, UpperRefused
from controller.core.errors import Refused
from controller.core.events import EventKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.core.hall import HallState

UP, DOWN = "up", "down"
#: the upper hall's states that settle the case below: its decision, or its end without one
SETTLED = {"decided": "decided", "ready": "decided", "handed_over": "decided",
           "rejected": "rejected", "returned": "returned"}


@dataclass(slots=True)
class InboxMark:
    """The last message applied from ``peer`` in ``channel`` (``up``: from a lower hall;
    ``down``: from the upper one)."""

    peer: str
    channel: str
    applied: int
    epoch: str = ""


def _admit(hall: HallState, peer: str, channel: str, seq: int, epoch: str,
           base: int | None) -> InboxMark | None:
    """The inbox mark to advance, or None for a repeat; refused when out of order. A new
    epoch is taken at its sender's first message (``seq`` right after ``base``, what the
    sender counts as delivered), never at a later one; a mark from before epochs takes the
    sender's epoch and goes on counting."""
    mark = hall.inbox.get((peer, channel))
    applied = mark.applied if mark else 0
    if mark is not None and mark.epoch and mark.epoch != epoch:
        if base is not None and seq != base + 1:
            raise Refused("new_epoch", f"消息 {seq} 不是新编号的第一条",
                          f"message {seq} does not start its epoch")
        applied = seq - 1                               # restored there: its numbers start afresh
    if seq <= applied:
        return None
    if seq != applied + 1:
        raise Refused("out_of_order", f"消息 {seq} 早于 {applied + 1} 到达",
                      f"message {seq} before {applied + 1}")
    if mark is None:
        mark = hall.inbox[(peer, channel)] = InboxMark(peer, channel, 0, epoch)
    mark.applied, mark.epoch = seq, epoch
    hall.changes.touch(mark)
    return mark


def receive(hall: HallState, cmd: ReceiveCase, now: datetime) -> dict[str, Any]:
    """A case from a lower hall, once."""
    if cmd.peer not in {h.id for h in hall.config.tier.lower}:
        raise Refused("unknown_hall", f"{cmd.peer} 不是本中心的下级大厅", f"{cmd.peer} is not a hall below")
    if _admit(hall, cmd.peer, UP, cmd.seq, cmd.epoch, cmd.base) is None or _received(hall, cmd):
        return {"duplicate": True, "applied": hall.inbox[(cmd.peer, UP)].applied}
    matter = hall.catalogue.matters.get(cmd.matter)
    day = hall.local(now).date()
    case = new_case(
        hall, day, now, matter=cmd.matter, matter_name=matter.name if matter else cmd.matter_name,
        form=matter.form if matter and matter.form != "instant" else "promised",
        department=matter.department if matter else cmd.department, state="accepted",
        limit_days=matter.promised_days if matter else cmd.limit_days, applicant=cmd.applicant,
        window=matter.windows[0] if matter and matter.windows else None, materials=cmd.materials,
        missing=cmd.missing, notes="\n".join(filter(None, [cmd.notes, *(
            f"{h.at:%Y-%m-%d %H:%M} {cmd.peer} {h.action} → {h.after}" for h in cmd.history)]))[-2000:],
        origin_hall=cmd.peer, origin_number=cmd.number)
    hall.emit(EventKind.CASE_OPENED, now, None, case=case.number, matter=case.matter, form=case.form,
              state=case.state, accepted_on=day.isoformat(), due=case.due.isoformat(), late_entry=False,
              tolerated=False, missing=len(case.missing), from_hall=cmd.peer, from_number=cmd.number)
    return {"case": case.number, "applied": cmd.seq}


def _received(hall: HallState, cmd: ReceiveCase) -> bool:
    """The case is here already: sent again by a hall restored from a backup. (Its number
    with another matter or applicant is a case the restore lost there, numbered again: new.)"""
    here = hall.cases.by_number.get(hall.cases.by_origin.get((cmd.peer, cmd.number), ""))
    return here is not None and here.matter == cmd.matter and here.applicant == cmd.applicant


def remote(hall: HallState, cmd: RemoteStep, now: datetime) -> dict[str, Any]:
    """A step of a forwarded case at the upper hall, once, mirrored here."""
    if cmd.peer != hall.config.tier.upper:
        raise Refused("unknown_hall", f"{cmd.peer} 不是本中心的上级", f"{cmd.peer} is not the hall above")
    if _admit(hall, cmd.peer, DOWN, cmd.seq, cmd.epoch, cmd.base) is None:   # a repeat, whatever became
        return {"duplicate": True, "applied": hall.inbox[(cmd.peer, DOWN)].applied}
    case = hall.cases.by_number.get(cmd.number)
    if case is None or case.upper_state is None and case.state != "escalated":
        return {"ignored": True, "applied": cmd.seq}   # handed over and gone, or never sent up
    today = hall.local(now).date()
    before = case.state
    case.upper_number, case.upper_state, case.due = cmd.upper_number, cmd.after, cmd.due
    settled = SETTLED.get(cmd.after)
    if before == "escalated" and settled:
        case.state = settled
        if settled == "decided":
            case.decision, case.decided_on = cmd.decision or "approved", today
        else:
            case.finished_at = now
        case.reasons = cmd.reasons or case.reasons
    case.history = (*case.history, ("remote", case.state, now.isoformat()))[-HISTORY:]
    case.colour = "none" if case.state in DECIDED else colour(hall.calendar, case, today,
                                                              hall.config.hall.case_warn_days)
    hall.changes.touch(case)
    detail: dict[str, Any] = {"decision": case.decision, "on_time": on_time(case)} \
        if case.state == "decided" and before != "decided" else {}
    detail.update(down_detail(case))             # a case from below: its result goes on down
    hall.emit(EventKind.CASE_STEP, now, hall.queue.all.get(case.ticket) if case.ticket else None,
              case=case.number, action="remote", before=before, after=case.state, due=case.due.isoformat(),
              upper_number=cmd.upper_number, upper_state=cmd.after, **detail)
    return {"case": case.number, "applied": cmd.seq}


def upper_refused(hall: HallState, cmd: UpperRefused, now: datetime) -> dict[str, Any]:
    """A case the upper hall refused for good, back to 已受理 (while still sent up and not
    taken there: a refusal heard again changes nothing)."""
    case = hall.cases.by_number.get(cmd.number)
    if case is None or case.state != "escalated" or case.upper_number:
        return {"ignored": True}
    today = hall.local(now).date()
    case.state = "accepted"
    note = f"{hall.local(now):%Y-%m-%d %H:%M} 上级大厅拒收（{cmd.reason or '未说明'}）"
    case.notes = f"{case.notes}\n{note}，请与上级联系或在本厅办理".strip()[-2000:]
    case.history = (*case.history, ("upper_refused", case.state, now.isoformat()))[-HISTORY:]
    case.colour = colour(hall.calendar, case, today, hall.config.hall.case_warn_days)
    hall.changes.touch(case)
    hall.emit(EventKind.CASE_STEP, now, hall.queue.all.get(case.ticket) if case.ticket else None,
              case=case.number, action="upper_refused", before="escalated", after=case.state,
              due=case.due.isoformat(), reason=cmd.reason)
    return {"case": case.number}


HANDLERS: dict[type[Command], Callable[[HallState, Any, datetime], dict[str, Any]]] = {
    ReceiveCase: receive, RemoteStep: remote, UpperRefused: upper_refused}
