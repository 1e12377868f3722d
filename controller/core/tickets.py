"""Tickets and their waiting lines (号与队列): issuing, cancelling, bookings, the day's numbering.

``Tickets`` holds the state; the handlers below take the hall, a command and the time, check
first and only then change anything.
"""

from __future__ import annotations

from collections import deque
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from controller.core import calendar
from controller.core.commands import AddAppointment, Cancel, CancelAppointment, Command, Take
from controller.core.errors import Refused
from controller.core.events import EventKind
from controller.core.model import Appointment, Priority, Ticket, TicketState
from controller.core.queue import WaitingLine

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.core.hall import HallState


class Tickets:
    """The live tickets (today's, and earlier ones still at a window) and the lines. The
    lines follow the configuration (``configure``); the day's numbering and recent service
    times are counted from the tickets (``HallState.recount``)."""

    def __init__(self) -> None:
        self.all: dict[str, Ticket] = {}
        self.by_number: dict[str, str] = {}
        self.lines: dict[str, WaitingLine] = {}
        self.directed: dict[str, WaitingLine] = {}
        self.seq: dict[str, int] = {}
        self.ordinal = 0
        self.segment_counts: dict[tuple[str, int], int] = {}
        self.tokens: dict[str, set[str]] = {}
        self.appointments: dict[str, Appointment] = {}
        #: recent service times in minutes, for the estimated wait
        self.durations: dict[str, deque[float]] = {}

    def configure(self, services: list[str], windows: list[str]) -> None:
        """Lines for the services and windows there are now (a removed one's line is empty:
        the configuration's checks see to it)."""
        self.lines = {s: self.lines[s] if s in self.lines else WaitingLine() for s in services}
        self.directed = {w: self.directed[w] if w in self.directed else WaitingLine() for w in windows}

    def get(self, number: str) -> Ticket | None:
        tid = self.by_number.get(number.upper())
        return self.all.get(tid) if tid else None

    def by_number_or_refuse(self, number: str) -> Ticket:
        t = self.get(number)
        if t is None:
            raise Refused("unknown_ticket", f"今天没有{number}号", f"no ticket {number} today")
        return t

    def line_of(self, t: Ticket) -> WaitingLine:
        return self.directed[t.target_window] if t.target_window else self.lines[t.service]

    def enqueue(self, t: Ticket) -> None:
        self.line_of(t).add(t.order)

    def dequeue(self, t: Ticket) -> None:
        self.line_of(t).remove(t.order)

    def ahead_of(self, t: Ticket) -> int:
        return self.line_of(t).position(t.order) if t.state is TicketState.WAITING else 0

    def restore(self, t: Ticket, day: date) -> None:
        """Index a live ticket; also how storage rebuilds the state after a restart."""
        self.all[t.id] = t
        if t.day == day:
            self.by_number[t.number] = t.id
        if t.id_token and not t.state.terminal:
            self.tokens.setdefault(t.id_token, set()).add(t.id)
        if t.state is TicketState.WAITING:
            self.enqueue(t)

    def count_issued(self, t: Ticket, segment: int | None) -> None:
        """Rebuild today's numbering from a stored ticket."""
        origin = t.origin_service
        if origin in self.seq:
            self.seq[origin] = max(self.seq[origin], t.seq)
            if segment is not None:
                key = (origin, segment)
                self.segment_counts[key] = self.segment_counts.get(key, 0) + 1
        self.ordinal = max(self.ordinal, t.ordinal)

    def release_token(self, t: Ticket) -> None:
        live = self.tokens.get(t.id_token) if t.id_token else None
        if live is not None:
            live.discard(t.id)
            if not live:
                del self.tokens[t.id_token]  # type: ignore[arg-type]

    def new_day(self, new_day: date) -> list[Ticket]:
        """Start ``new_day``: numbering restarts; returns yesterday's waiting and held tickets
        (to be closed as not served). Tickets still at a window stay and finish normally."""
        left = [t for t in self.all.values() if t.state in (TicketState.WAITING, TicketState.HELD)]
        for line in (*self.lines.values(), *self.directed.values()):
            line.clear()
        self.by_number.clear()
        self.seq = dict.fromkeys(self.seq, 0)
        self.ordinal = 0
        self.segment_counts.clear()
        self.appointments = {c: a for c, a in self.appointments.items() if a.day >= new_day}
        return left

    def forget_finished(self) -> None:
        self.all = {k: t for k, t in self.all.items() if t.state.at_window}


# ---------------------------------------------------------------------- shared by the handlers
def finish(hall: HallState, t: Ticket, state: TicketState, now: datetime) -> None:
    """Move a ticket to a terminal state and free whatever held it."""
    desk = hall.desk.windows
    if t.state.at_window and t.window is not None and desk[t.window].current == t.id:
        desk[t.window].current = None
    if state is TicketState.DONE and t.called_at is not None:
        hall.queue.durations[t.service].append((now - t.called_at).total_seconds() / 60)
    t.state = state
    t.finished_at = now
    hall.queue.release_token(t)
    hall.changes.touch(t)


def unavailable(hall: HallState, service: str, now: datetime) -> Refused | None:
    """Why ``service`` issues no ticket at ``now`` (closed, today's or this segment's tickets
    gone), or None: the kiosk greys it out with this reason."""
    svc = hall.services[service]
    if not svc.enabled:
        return Refused("service_disabled", f"{svc.name}暂停办理", f"{svc.name_en or svc.code} is suspended")
    local = hall.local(now)
    if not calendar.is_open(hall.calendar, svc, local):
        hours = calendar.hours_text(hall.config.hall, svc)
        return Refused("service_closed", f"{svc.name}现在不办理（办理时间 {hours}）",
                       f"{svc.name_en or svc.code} is closed now (hours {hours})")
    if hall.queue.seq[service] >= svc.daily_cap:
        return Refused("quota_exhausted", f"{svc.name}今日号已取完", "today's tickets are gone")
    segment = calendar.quota_segment(svc, local)
    if segment is not None and hall.queue.segment_counts.get((service, segment[0]), 0) >= segment[1].cap:
        return Refused("quota_exhausted", f"{svc.name}本时段号已取完（{segment[1].span}）",
                       f"this time segment's tickets are gone ({segment[1].span})")
    return None


# ---------------------------------------------------------------------- handlers
def take(hall: HallState, cmd: Take, now: datetime) -> dict[str, Any]:
    """取号: prefix + daily sequence, within hours, caps and quotas."""
    q = hall.queue
    svc = hall.services.get(cmd.service)
    if svc is None:
        raise Refused("unknown_service", "没有这项业务", f"unknown service {cmd.service!r}")
    refusal = unavailable(hall, cmd.service, now)
    if refusal is not None:
        raise refusal
    cls = Priority.GREEN if cmd.priority == "green" else Priority.ORDINARY
    booking = None
    if cmd.appointment:
        booking = q.appointments.get(cmd.appointment)
        if (booking is None or booking.service != cmd.service or booking.day != hall.day
                or booking.ticket is not None or booking.cancelled):
            raise Refused("appointment_invalid", "预约码无效或已使用",
                          "the appointment code is not valid for this service today")
        if cls is Priority.ORDINARY:
            cls = Priority.APPOINTMENT
    if cmd.id_token:
        for tid in q.tokens.get(cmd.id_token, ()):
            if q.all[tid].service == cmd.service:
                raise Refused("already_waiting", f"您已取{q.all[tid].number}号，请勿重复取号",
                              "this ID already holds a ticket for this service")
    # every check passed: change state
    segment = calendar.quota_segment(svc, hall.local(now))
    q.seq[cmd.service] += 1
    q.ordinal += 1
    if segment is not None:
        key = (cmd.service, segment[0])
        q.segment_counts[key] = q.segment_counts.get(key, 0) + 1
    number = f"{svc.prefix}{q.seq[cmd.service]:03d}"
    t = Ticket(id=f"{hall.day:%Y%m%d}-{number}", day=hall.day, number=number,
               seq=q.seq[cmd.service], ordinal=q.ordinal, service=cmd.service,
               origin_service=cmd.service, priority=cls, state=TicketState.WAITING,
               issued_at=now, id_token=cmd.id_token, appointment=cmd.appointment,
               phone_tail=cmd.phone_tail)
    q.restore(t, hall.day)
    if booking is not None:
        booking.ticket = t.id
        hall.changes.touch(booking)
    hall.changes.touch(t)
    hall.emit(EventKind.ISSUED, now, t, priority=cls.value)
    return {"ticket": {**hall.public(t), **hall.status_link(t)}}


def add_appointment(hall: HallState, cmd: AddAppointment, now: datetime) -> dict[str, Any]:
    """预约: register a booking so its code can check in at a kiosk on its day."""
    if cmd.service not in hall.services:
        raise Refused("unknown_service", "没有这项业务", f"unknown service {cmd.service!r}")
    if cmd.code in hall.queue.appointments:
        raise Refused("appointment_exists", "预约码已存在", "this appointment code exists")
    if cmd.day < hall.day:
        raise Refused("appointment_past", "预约日期已过", "the booking's day has passed")
    booking = Appointment(code=cmd.code, service=cmd.service, day=cmd.day)
    hall.queue.appointments[cmd.code] = booking
    hall.changes.touch(booking)
    hall.emit(EventKind.APPOINTMENT_ADDED, now, service=cmd.service, day=cmd.day.isoformat())
    return {"appointment": cmd.code}


def cancel_appointment(hall: HallState, cmd: CancelAppointment, now: datetime) -> dict[str, Any]:
    """取消预约: a booking that has not checked in is withdrawn (kept, marked cancelled)."""
    booking = hall.queue.appointments.get(cmd.code)
    if booking is None or booking.cancelled:
        raise Refused("unknown_appointment", "没有这个预约", "no such appointment")
    if booking.ticket is not None:
        raise Refused("appointment_used", "该预约已取号，不能取消", "this booking has checked in already")
    booking.cancelled = True
    hall.changes.touch(booking)
    hall.emit(EventKind.APPOINTMENT_CANCELLED, now, service=booking.service, code=booking.code,
              day=booking.day.isoformat())
    return {"appointment": cmd.code, "cancelled": True}


def cancel(hall: HallState, cmd: Cancel, now: datetime) -> dict[str, Any]:
    """取消: a citizen gives up a waiting or held ticket."""
    t = hall.queue.by_number_or_refuse(cmd.number)
    if t.state not in (TicketState.WAITING, TicketState.HELD):
        raise Refused("ticket_not_waiting", f"{t.number}号不在等候中", "the ticket is not waiting")
    if t.state is TicketState.WAITING:
        hall.queue.dequeue(t)
    finish(hall, t, TicketState.CANCELLED, now)
    hall.emit(EventKind.CANCELLED, now, t)
    return {"ticket": hall.public(t)}


HANDLERS: dict[type[Command], Callable[[HallState, Any, datetime], dict[str, Any]]] = {
    Take: take, AddAppointment: add_appointment, CancelAppointment: cancel_appointment, Cancel: cancel,
}
