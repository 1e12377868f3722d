"""Writing the core's changes in one transaction, and rebuilding a hall's state from rows.

Plain (synchronous) SQLAlchemy: the engine runs each batch as one call through
``controller.storage.runner``, in a thread of its own on SQLite."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from controller.config import HallConfig
from controller.core import calendar
from controller.core.evaluation import Evaluation
from controller.core.hall import Changes, HallState
from controller.core.model import (
    Appointment,
    Attendance,
    Priority,
    Ticket,
    TicketState,
    WindowState,
)
from controller.storage import schema

_KEYS = {
    schema.tickets: ("hall", "id"), schema.windows: ("hall", "id"),
    schema.attendance: ("hall", "id"), schema.appointments: ("hall", "code"),
    schema.hall_state: ("hall",), schema.evaluations: ("hall", "id"),
}
#: Columns fixed when a row is first written; an upsert leaves them (and their indexes) alone.
_FIXED = {
    schema.tickets: ("day", "number", "seq", "ordinal", "origin_service", "issued_at",
                     "id_token", "appointment", "phone_tail"),
    schema.attendance: ("staff", "window", "role", "login_at"),
}


@cache
def _upsert(dialect: str, table):  # noqa: ANN001, ANN202
    """INSERT … ON CONFLICT DO UPDATE for SQLite and PostgreSQL, built once per table."""
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    keys = _KEYS[table]
    fixed = (*keys, *_FIXED.get(table, ()))
    return ins.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: ins.excluded[c.name] for c in table.columns if c.name not in fixed})


_TICKET_FIELDS = tuple(f.name for f in fields(Ticket))


def _ticket_row(hall: str, t: Ticket) -> dict[str, Any]:
    row = {name: getattr(t, name) for name in _TICKET_FIELDS}
    row["hall"] = hall
    row["priority"] = t.priority.value
    row["state"] = t.state.value
    return row


def _window_row(hall: str, w: WindowState) -> dict[str, Any]:
    return {"hall": hall, "id": w.id, "clerk": w.clerk, "attendance_id": w.attendance_id,
            "logged_in_at": w.logged_in_at, "paused": w.paused}


#: One statement of a batch and its rows, built from the core's objects before the commit.
Rows = list[tuple[Any, list[dict[str, Any]]]]


class Repository:
    """One hall's rows. All writes of a batch go through ``write`` in one transaction."""

    def __init__(self, hall: str) -> None:
        self.hall = hall

    def rows(self, dialect: str, changes: Changes,
             replies: dict[str, tuple[datetime, str]]) -> Rows:
        """What a batch writes, copied out of the live objects now: the commit runs while the
        next batch is already changing them."""
        hall, out = self.hall, []
        if changes.tickets:
            out.append((_upsert(dialect, schema.tickets),
                        [_ticket_row(hall, t) for t in changes.tickets.values()]))
        if changes.windows:
            out.append((_upsert(dialect, schema.windows),
                        [_window_row(hall, w) for w in changes.windows.values()]))
        if changes.attendance:
            out.append((_upsert(dialect, schema.attendance),
                        [{"hall": hall, **asdict(a)} for a in changes.attendance.values()]))
        if changes.appointments:
            out.append((_upsert(dialect, schema.appointments),
                        [{"hall": hall, **asdict(a)} for a in changes.appointments.values()]))
        if changes.evaluations:
            out.append((_upsert(dialect, schema.evaluations), [
                {"hall": hall, **asdict(ev), "reasons": json.dumps(ev.reasons)}
                for ev in changes.evaluations.values()]))
        if changes.events:
            out.append((schema.events.insert(), [
                {"hall": hall, "at": e.at, "kind": e.kind, "window": e.window, "clerk": e.clerk,
                 "ticket": e.ticket, "number": e.number, "service": e.service,
                 "data": json.dumps(e.data, ensure_ascii=False, default=str)}
                for e in changes.events]))
        if changes.day is not None:
            out.append((_upsert(dialect, schema.hall_state), [{"hall": hall, "day": changes.day}]))
        if replies:
            out.append((schema.replies.insert(), [
                {"hall": hall, "key": k, "at": at, "reply": r} for k, (at, r) in replies.items()]))
        return out

    def write(self, conn: Connection, rows: Rows) -> None:
        for statement, params in rows:
            conn.execute(statement, params)

    def save_day(self, conn: Connection, day: date) -> None:
        conn.execute(_upsert(conn.dialect.name, schema.hall_state),
                     [{"hall": self.hall, "day": day}])

    def prune_replies(self, conn: Connection, before: datetime) -> None:
        conn.execute(delete(schema.replies).where(
            schema.replies.c.hall == self.hall, schema.replies.c.at < before))

    def load_replies(self, conn: Connection,
                           since: datetime) -> dict[str, tuple[datetime, str]]:
        r = schema.replies
        rows = conn.execute(select(r.c.key, r.c.at, r.c.reply).where(
            r.c.hall == self.hall, r.c.at >= since))
        return {key: (at, reply) for key, at, reply in rows}

    def load(self, conn: Connection, config: HallConfig, today: date) -> HallState:
        """Rebuild the hall's live state: the stored day's tickets, every ticket still open,
        windows, open attendance and bookings. The day is rolled over later, as a command."""
        t = schema.tickets
        day = (conn.execute(select(schema.hall_state.c.day).where(
            schema.hall_state.c.hall == self.hall))).scalar_one_or_none()
        if day is None:
            day = today
            self.save_day(conn, day)
        state = HallState(config, day)
        open_states = [s.value for s in TicketState if not s.terminal]
        rows = conn.execute(select(t).where(
            t.c.hall == self.hall, or_(t.c.day == day, t.c.state.in_(open_states))
        ).order_by(t.c.day, t.c.ordinal))
        done: list[Ticket] = []
        for row in rows.mappings():
            ticket = _ticket(row)
            if ticket.service not in state.services or (
                    ticket.target_window and ticket.target_window not in state.windows):
                continue  # a service or window since removed from the configuration
            if ticket.day == day:
                self._count_issued(state, ticket)
            state.restore(ticket)
            if ticket.state is TicketState.DONE and ticket.called_at and ticket.day == day:
                done.append(ticket)
        for ticket in sorted(done, key=lambda x: x.finished_at):
            state.durations[ticket.service].append(
                (ticket.finished_at - ticket.called_at).total_seconds() / 60)
        self._load_windows(conn, state)
        a = schema.appointments
        for row in (conn.execute(select(a).where(
                a.c.hall == self.hall, a.c.day >= day))).mappings():
            state.appointments[row["code"]] = Appointment(
                code=row["code"], service=row["service"], day=row["day"], ticket=row["ticket"])
        ev = schema.evaluations
        for row in (conn.execute(select(ev).where(
                ev.c.hall == self.hall, ev.c.closed_at.is_(None)))).mappings():
            fields_ = {k: row[k] for k in ("id", "window", "clerk", "ticket", "number",
                                           "service", "opened_at", "timeout_s")}
            state.evaluations[row["id"]] = Evaluation(**fields_)
        return state

    def _count_issued(self, state: HallState, ticket: Ticket) -> None:
        origin = ticket.origin_service
        if origin in state.seq:
            state.seq[origin] = max(state.seq[origin], ticket.seq)
            segment = calendar.quota_segment(state.services[origin], state.local(ticket.issued_at))
            if segment is not None:
                key = (origin, segment[0])
                state.segment_counts[key] = state.segment_counts.get(key, 0) + 1
        state.ordinal = max(state.ordinal, ticket.ordinal)

    def _load_windows(self, conn: Connection, state: HallState) -> None:
        w, att = schema.windows, schema.attendance
        for row in (conn.execute(select(w).where(w.c.hall == self.hall))).mappings():
            ws = state.windows.get(row["id"])
            if ws is None:
                continue
            ws.clerk, ws.attendance_id = row["clerk"], row["attendance_id"]
            ws.logged_in_at, ws.paused = row["logged_in_at"], bool(row["paused"])
        for ticket in state.tickets.values():
            if ticket.state.at_window and ticket.window in state.windows:
                state.windows[ticket.window].current = ticket.id
        for row in (conn.execute(select(att).where(
                att.c.hall == self.hall, att.c.logout_at.is_(None)))).mappings():
            state.attendance[row["id"]] = Attendance(
                id=row["id"], staff=row["staff"], window=row["window"], role=row["role"],
                login_at=row["login_at"])


def _ticket(row) -> Ticket:  # noqa: ANN001
    return Ticket(
        id=row["id"], day=row["day"], number=row["number"], seq=row["seq"],
        ordinal=row["ordinal"], service=row["service"], origin_service=row["origin_service"],
        priority=Priority(row["priority"]), state=TicketState(row["state"]),
        issued_at=row["issued_at"], window=row["window"], target_window=row["target_window"],
        clerk=row["clerk"], called_at=row["called_at"], served_at=row["served_at"],
        finished_at=row["finished_at"], recalls=row["recalls"], id_token=row["id_token"],
        appointment=row["appointment"], phone_tail=row["phone_tail"])
