"""Writing the core's changes in one transaction, and rebuilding a hall's state from rows.

Plain (synchronous) SQLAlchemy: the engine runs each batch as one call through
``controller.storage.runner``, in a thread of its own on SQLite. Records are mapped to rows
generically (``schema.RECORDS``: a record's fields are its table's columns)."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from controller.config import HallConfig
from controller.core import calendar
from controller.core.changes import Changes
from controller.core.events import SCHEMA_VERSION, Event
from controller.core.hall import HallState
from controller.core.model import Appointment, Attendance, Ticket, TicketState, WindowState
from controller.core.ratings import Evaluation
from controller.storage import schema

#: The fields of each record kind that its table keeps.
_COLUMNS: dict[type, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(kind) if f.name in table.c)
    for kind, table in schema.RECORDS.items()}


def _columns(kind: type) -> tuple[str, ...]:
    return _COLUMNS[kind]


@cache
def _upsert(dialect: str, table: Table):  # noqa: ANN202
    """INSERT … ON CONFLICT DO UPDATE for SQLite and PostgreSQL, built once per table; columns
    marked fixed keep their first value."""
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    keys = [c.name for c in table.primary_key.columns]
    return ins.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: ins.excluded[c.name] for c in table.columns
              if c.name not in keys and not c.info.get("fixed")})


def _row(hall: str, record: object) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _columns(type(record))}
    row["hall"] = hall
    return row


def _record(kind: type, row: Any) -> Any:
    return kind(**{name: row[name] for name in _columns(kind)})


def _event_row(hall: str, e: Event) -> dict[str, Any]:
    return {"hall": hall, "v": SCHEMA_VERSION, "day": e.day, "at": e.at, "kind": e.kind.value,
            "ticket": e.ticket, "number": e.number, "service": e.service, "window": e.window,
            "clerk": e.clerk, "actor": e.actor, "origin": e.origin.value,
            "payload": json.dumps(e.payload, ensure_ascii=False, separators=(",", ":"))}


#: One statement of a batch and its rows, built from the core's objects before the commit.
Rows = list[tuple[Any, list[dict[str, Any]]]]


class Repository:
    """One hall's rows. All writes of a batch go through ``write`` in one transaction."""

    def __init__(self, hall: str) -> None:
        self.hall = hall

    def rows(self, dialect: str, changes: Changes,
             replies: dict[str, tuple[datetime, str]]) -> Rows:
        """What a batch writes, copied out of the live objects now."""
        hall, out = self.hall, []
        by_kind: dict[type, list[dict[str, Any]]] = {}
        for record in changes.records:
            by_kind.setdefault(type(record), []).append(_row(hall, record))
        for kind, rows in by_kind.items():
            out.append((_upsert(dialect, schema.RECORDS[kind]), rows))
        if changes.events:
            out.append((schema.events.insert(), [_event_row(hall, e) for e in changes.events]))
        if changes.day is not None:
            out.append((_upsert(dialect, schema.hall_state), [{"hall": hall, "day": changes.day}]))
        if replies:
            out.append((schema.replies.insert(), [
                {"hall": hall, "key": k, "at": at, "reply": r} for k, (at, r) in replies.items()]))
        return out

    def write(self, conn: Connection, rows: Rows) -> None:
        for statement, params in rows:
            conn.execute(statement, params)

    def prune_replies(self, conn: Connection, before: datetime) -> None:
        conn.execute(delete(schema.replies).where(
            schema.replies.c.hall == self.hall, schema.replies.c.at < before))

    def load_replies(self, conn: Connection, since: datetime) -> dict[str, tuple[datetime, str]]:
        r = schema.replies
        rows = conn.execute(select(r.c.key, r.c.at, r.c.reply).where(
            r.c.hall == self.hall, r.c.at >= since))
        return {key: (at, reply) for key, at, reply in rows}

    def load(self, conn: Connection, config: HallConfig, today: date) -> HallState:
        """Rebuild the hall's live state: the stored day's tickets, every ticket still open,
        windows, open attendance, bookings and open rating sessions. The day is rolled over
        later, as a command."""
        day = conn.execute(select(schema.hall_state.c.day).where(
            schema.hall_state.c.hall == self.hall)).scalar_one_or_none()
        if day is None:
            day = today
            conn.execute(_upsert(conn.dialect.name, schema.hall_state), [{"hall": self.hall, "day": day}])
        state = HallState(config, day)
        self._load_tickets(conn, state)
        self._load_windows(conn, state)
        for booking in self._select(conn, Appointment, schema.appointments.c.day >= day):
            state.queue.appointments[booking.code] = booking
        for ev in self._select(conn, Evaluation, schema.evaluations.c.closed_at.is_(None)):
            state.ratings.open[ev.id] = ev
        latest = [conn.execute(select(func.max(column)).where(column.table.c.hall == self.hall)).scalar()
                  for column in (schema.evaluations.c.opened_at, schema.attendance.c.login_at)]
        state.last_stamp = max((int(t.timestamp() * 1_000_000) for t in latest if t), default=0)
        return state

    def _select(self, conn: Connection, kind: type, *where: Any) -> list[Any]:
        table = schema.RECORDS[kind]
        rows = conn.execute(select(table).where(table.c.hall == self.hall, *where))
        return [_record(kind, row) for row in rows.mappings()]

    def _load_tickets(self, conn: Connection, state: HallState) -> None:
        t = schema.tickets
        open_states = [s.value for s in TicketState if not s.terminal]
        rows = conn.execute(select(t).where(
            t.c.hall == self.hall, or_(t.c.day == state.day, t.c.state.in_(open_states))
        ).order_by(t.c.day, t.c.ordinal))
        q = state.queue
        done: list[tuple[datetime, str, float]] = []   # today's service times, in order
        for row in rows.mappings():
            ticket: Ticket = _record(Ticket, row)
            if ticket.service not in state.services or (
                    ticket.target_window and ticket.target_window not in state.window_cfg):
                continue  # a service or window since removed from the configuration
            if ticket.day == state.day:
                svc = state.services.get(ticket.origin_service)
                segment = svc and calendar.quota_segment(svc, state.local(ticket.issued_at))
                q.count_issued(ticket, segment[0] if segment else None)
                if ticket.state is TicketState.DONE and ticket.called_at and ticket.finished_at:
                    done.append((ticket.finished_at, ticket.service,
                                 (ticket.finished_at - ticket.called_at).total_seconds() / 60))
            q.restore(ticket, state.day)
        for _, service, minutes in sorted(done):
            q.durations[service].append(minutes)

    def _load_windows(self, conn: Connection, state: HallState) -> None:
        desk = state.desk
        for stored in self._select(conn, WindowState):
            ws = desk.windows.get(stored.id)
            if ws is not None:
                ws.clerk, ws.attendance_id = stored.clerk, stored.attendance_id
                ws.logged_in_at, ws.paused = stored.logged_in_at, bool(stored.paused)
        for ticket in state.queue.all.values():
            if ticket.state.at_window and ticket.window in desk.windows:
                desk.windows[ticket.window].current = ticket.id
        for att in self._select(conn, Attendance, schema.attendance.c.logout_at.is_(None)):
            desk.attendance[att.id] = att
