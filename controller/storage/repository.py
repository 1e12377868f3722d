"""Writing the core's changes in one transaction, and rebuilding a hall's state from rows.

Plain (synchronous) SQLAlchemy: the engine runs each batch as one call through
``controller.storage.runner``, in a thread of its own on SQLite. Records are mapped to rows
generically (``schema.RECORDS``: a record's fields are its table's columns)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from functools import cache
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from controller.config import HallConfig
from controller.core.cases import TERMINAL, Case, CaseTask
from controller.core.changes import Changes
from controller.core.commands import SYSTEM
from controller.core.configuration import with_live
from controller.core.events import SCHEMA_VERSION, Event, EventKind
from controller.core.followups import OPEN as OPEN_FOLLOWUPS
from controller.core.followups import Followup
from controller.core.hall import HallState
from controller.core.matters import Matter, StoredMatter
from controller.core.model import Appointment, Attendance, Ticket, WindowState
from controller.core.ratings import Evaluation
from controller.core.tiers import InboxMark
from controller.storage import outbox, rollup, schema

log = logging.getLogger("yimen.storage")

#: The fields of each record kind that its table keeps.
_COLUMNS: dict[type, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(kind) if f.name in table.c)
    for kind, table in schema.RECORDS.items()}


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
    row = {name: getattr(record, name) for name in _COLUMNS[type(record)]}
    row["hall"] = hall
    return row


def record(kind: type, row: Any) -> Any:
    """A record of ``kind`` from its table's row."""
    return kind(**{name: row[name] for name in _COLUMNS[kind]})


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode   # built once


def _event_row(hall: str, e: Event) -> dict[str, Any]:
    return {"hall": hall, "v": SCHEMA_VERSION, "day": e.day, "at": e.at, "kind": e.kind.value,
            "ticket": e.ticket, "number": e.number, "service": e.service, "window": e.window,
            "clerk": e.clerk, "actor": e.actor, "origin": e.origin.value,
            "payload": _dumps(e.payload)}


@dataclass(frozen=True, slots=True)
class _Plain:
    """One table's statement for SQLite as SQL text with ``?`` parameters, compiled once by
    SQLAlchemy, and each column's bind processor: a batch's rows become plain tuples run with
    the driver's ``executemany``, without SQLAlchemy's work per row and statement (which was
    half of a batch's time in the writer thread)."""

    sql: str
    columns: tuple[str, ...]                                  # "hall" first
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, processor)

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return self._processed([row[c] for c in self.columns])

    def values_of(self, hall: str, record: object) -> tuple[Any, ...]:
        """A record's row, straight from its fields (its kind's fields are the columns)."""
        return self._processed([hall, *_GETTERS[type(record)](record)])

    def _processed(self, values: list[Any]) -> tuple[Any, ...]:
        for i, process in self.processors:
            if values[i] is not None:
                values[i] = process(values[i])
        return tuple(values)


@cache
def _plain(table: Table, upsert: bool) -> _Plain:
    dialect = sqlite.dialect(paramstyle="qmark")
    columns = ("hall", *(c.name for c in table.columns
                         if c.autoincrement is not True and c.name != "hall"))
    statement = _upsert("sqlite", table) if upsert else table.insert()
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    if tuple(compiled.positiontup or ()) != columns:
        raise RuntimeError(f"{table.name}: parameters {compiled.positiontup} are not {columns}")
    processors = ((i, table.c[c].type.bind_processor(dialect)) for i, c in enumerate(columns))
    return _Plain(compiled.string, columns, tuple((i, p) for i, p in processors if p is not None))


def sqlite_sql(table: Table, upsert: bool) -> str:
    """The SQL text the engine writes ``table``'s rows with on SQLite (``?`` parameters in the
    table's column order, ``hall`` first): for tools that write rows as the engine does."""
    return _plain(table, upsert).sql


def _getter(kind: type) -> Callable[[object], tuple[Any, ...]]:
    """A record kind's stored fields, in its table's column order, as one tuple."""
    names = _plain(schema.RECORDS[kind], True).columns[1:]
    assert set(names) == set(_COLUMNS[kind]), f"{kind.__name__}'s fields are not its columns"
    get = attrgetter(*names)
    return get if len(names) > 1 else (lambda record: (get(record),))


_GETTERS = {kind: _getter(kind) for kind in schema.RECORDS}


#: One statement of a batch and its rows, built from the core's objects before the commit:
#: a SQLAlchemy statement and dicts, or on SQLite SQL text and tuples.
Rows = list[tuple[Any, list[Any]]]


class Repository:
    """One hall's rows. All writes of a batch go through ``write`` in one transaction."""

    def __init__(self, hall: str) -> None:
        self.hall = hall

    def rows(self, dialect: str, changes: Changes, replies: dict[str, tuple[datetime, str]],
             config: HallConfig | None = None) -> Rows:
        """What a batch writes, copied out of the live objects now; after a rollover, last,
        the finished day's roll-up (``rollup.RollupDay``, with ``config``'s time zone and hours)."""
        hall = self.hall
        tables: list[tuple[Table, bool, list[dict[str, Any]]]] = []   # table, upsert, rows
        by_kind: dict[type, list[Any]] = {}
        for record in changes.records:
            by_kind.setdefault(type(record), []).append(record)
        out: Rows = []
        for kind, records in by_kind.items():
            table = schema.RECORDS[kind]
            if dialect == "sqlite":
                plain = _plain(table, True)
                out.append((plain.sql, [plain.values_of(hall, r) for r in records]))
            else:
                out.append((_upsert(dialect, table), [_row(hall, r) for r in records]))
        if changes.events:
            tables.append((schema.events, False, [_event_row(hall, e) for e in changes.events]))
            if owed := outbox.entries(hall, changes.events, config):
                tables.append((schema.outbox, False, owed))
        if changes.day is not None:
            tables.append((schema.hall_state, True, [{"hall": hall, "day": changes.day}]))
        if replies:
            tables.append((schema.replies, False, [
                {"hall": hall, "key": k, "at": at, "reply": r} for k, (at, r) in replies.items()]))
        if dialect == "sqlite":
            out += [(plain.sql, [plain.values(r) for r in rows])
                    for table, upsert, rows in tables if (plain := _plain(table, upsert))]
        else:
            out += [(_upsert(dialect, table) if upsert else table.insert(), rows)
                    for table, upsert, rows in tables]
        finished = [(date.fromisoformat(e.payload["from_day"]),) for e in changes.events
                    if e.kind is EventKind.ROLLOVER]
        if finished and config is not None:
            out.append((rollup.RollupDay(hall, ZoneInfo(config.hall.timezone), rollup.hall_hours(config)),
                        finished))
        return out

    def write(self, conn: Connection, rows: Rows) -> None:
        for statement, params in rows:
            if isinstance(statement, rollup.RollupDay):
                statement.run(conn, params)
            elif isinstance(statement, str):               # SQLite: SQL text and tuples
                driver = conn.connection.driver_connection
                assert driver is not None, "a connection in a transaction has its driver's"
                driver.executemany(statement, params)
            else:
                conn.execute(statement, params)

    def prune_replies(self, conn: Connection, before: datetime) -> None:
        conn.execute(delete(schema.replies).where(
            schema.replies.c.hall == self.hall, schema.replies.c.at < before))

    def load_replies(self, conn: Connection, since: datetime) -> dict[str, tuple[datetime, str]]:
        r = schema.replies
        rows = conn.execute(select(r.c.key, r.c.at, r.c.reply).where(
            r.c.hall == self.hall, r.c.at >= since))
        return {key: (at, reply) for key, at, reply in rows}

    def load(self, conn: Connection, config: HallConfig, today: date,
             now: datetime | None = None) -> HallState:
        """Rebuild the hall's live state: its stored configuration (the hall file's, stored
        now, if there is none yet), the stored day's tickets, every ticket still open,
        windows, open attendance, bookings and open rating sessions. The day is rolled over
        later, as a command."""
        day = conn.execute(select(schema.hall_state.c.day).where(
            schema.hall_state.c.hall == self.hall)).scalar_one_or_none()
        if day is None:
            day = today
            conn.execute(_upsert(conn.dialect.name, schema.hall_state), [{"hall": self.hall, "day": day}])
        h = schema.hall_config
        stored = conn.execute(select(h.c.revision, h.c.data).where(h.c.hall == self.hall)).first()
        if stored is None:
            state = HallState(config, day)
            self._seed(conn, state, now or datetime.now(UTC))
        else:
            live = with_live(config, stored.data, "数据库中的配置 / the stored configuration")
            state = HallState(live, day, stored.revision)
        self._load_tickets(conn, state)
        self._load_windows(conn, state)
        for booking in self._select(conn, Appointment, schema.appointments.c.day >= day):
            state.queue.appointments[booking.code] = booking
        for ev in self._select(conn, Evaluation, schema.evaluations.c.closed_at.is_(None)):
            state.ratings.open[ev.id] = ev
        self._load_cases(conn, state)
        for followup in self._select(conn, Followup, schema.followups.c.state.in_(OPEN_FOLLOWUPS)):
            state.followups[followup.id] = followup
        for mark in self._select(conn, InboxMark):
            state.inbox[(mark.peer, mark.channel)] = mark
        latest = [conn.execute(select(func.max(column)).where(column.table.c.hall == self.hall)).scalar()
                  for column in (schema.evaluations.c.opened_at, schema.attendance.c.login_at)]
        state.last_stamp = max((int(t.timestamp() * 1_000_000) for t in latest if t), default=0)
        return state

    def _seed(self, conn: Connection, state: HallState, now: datetime) -> None:
        """The first start on this database: the hall file's configuration becomes the
        stored one (afterwards the database's wins), recorded as the system's event."""
        state.stored_config.revision = 1
        changes = Changes()
        changes.touch(state.stored_config)
        changes.events.append(Event(
            kind=EventKind.CONFIG_CHANGED, at=now, day=state.day, actor=SYSTEM.actor, origin=SYSTEM.origin,
            payload={"section": "all", "id": None, "action": "seeded", "changes": {}, "before": {},
                     "revision": 1}))
        self.write(conn, self.rows(conn.dialect.name, changes, {}))

    def _select(self, conn: Connection, kind: type, *where: Any) -> list[Any]:
        table = schema.RECORDS[kind]
        rows = conn.execute(select(table).where(table.c.hall == self.hall, *where))
        return [record(kind, row) for row in rows.mappings()]

    def _load_tickets(self, conn: Connection, state: HallState) -> None:
        t = schema.tickets
        # earlier days' open tickets, then today's: each by an index of its own
        earlier = select(t).where(t.c.hall == self.hall, t.c.state.in_(schema.OPEN_STATES),
                                  t.c.day < state.day).order_by(t.c.day, t.c.ordinal)
        today = select(t).where(t.c.hall == self.hall, t.c.day == state.day).order_by(t.c.ordinal)
        for row in [*conn.execute(earlier).mappings(), *conn.execute(today).mappings()]:
            ticket: Ticket = record(Ticket, row)
            if not ticket.state.terminal and (ticket.service not in state.services or (
                    ticket.target_window and ticket.target_window not in state.window_cfg)):
                log.error("ticket %s: its service or window is no longer configured; left out",
                          ticket.number)   # the live configuration refuses such a change
                continue
            state.queue.restore(ticket, state.day)
        state.recount()

    def _load_cases(self, conn: Connection, state: HallState) -> None:
        """The matter catalogue, every open case and those finished on the stored day, the
        parts of joint cases, and each acceptance day's last serial."""
        for stored in self._select(conn, StoredMatter, schema.matters.c.removed.is_(False)):
            try:
                state.catalogue.put(Matter.model_validate(stored.data))
            except ValueError as exc:       # the catalogue's rules tightened since: left out, said
                log.error("matter %s no longer valid, left out: %s", stored.code, exc)
        c = schema.cases
        start = datetime.combine(state.day, datetime.min.time(), state.tz)
        for case in self._select(conn, Case, c.c.state.not_in(TERMINAL) | (c.c.finished_at >= start)):
            state.cases.add(case)
        numbers = set(state.cases.by_number)
        for task in self._select(conn, CaseTask):
            if task.case in numbers:
                state.cases.tasks.setdefault(task.case, []).append(task)
        for tasks in state.cases.tasks.values():
            tasks.sort(key=lambda t: t.id)
        rows = conn.execute(select(c.c.accepted_on, func.max(c.c.serial)).where(c.c.hall == self.hall)
                            .group_by(c.c.accepted_on))
        state.cases.serials = {day: serial for day, serial in rows}

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
