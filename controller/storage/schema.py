"""Tables (SQLAlchemy Core). Every row carries its hall, so one database can hold a county.

The Alembic migrations in ``migrations/versions`` create exactly these tables (a test compares
them). ``RECORDS`` maps each kind of record the core keeps to its table: a record's fields are
its table's columns, by name, so adding a kind of record is its dataclass, its table here and
a migration (``yimen db revision "…"`` writes it from this file).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from controller.core.cases import Case, CaseTask
from controller.core.configuration import StoredConfig
from controller.core.followups import Followup
from controller.core.matters import StoredMatter
from controller.core.model import Appointment, Attendance, Priority, Ticket, TicketState, WindowState
from controller.core.ratings import Evaluation
from controller.core.tiers import InboxMark

metadata = MetaData()


class UTCDateTime(TypeDecorator):
    """An aware datetime kept in UTC. PostgreSQL stores ``timestamptz``; SQLite, which has no
    time type, stores fixed-width ISO 8601 text, which sorts in time order."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):  # noqa: ANN001, ANN201
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | str | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return utc_text(value)
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | str | None, dialect) -> datetime | None:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


@lru_cache(maxsize=8192)
def utc_text(value: datetime) -> str:
    """How SQLite keeps an aware datetime: fixed-width UTC ISO 8601 text. Remembered a while:
    a ticket's times are the same objects at each of its row's writes."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to storage")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


class EnumText(TypeDecorator):
    """A ``str`` enum kept as its value."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[Enum]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: Any, dialect) -> str | None:  # noqa: ANN001
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect) -> Any:  # noqa: ANN001
        return None if value is None else self.enum(value)


class JSONList(TypeDecorator):
    """A short tuple of strings kept as JSON text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> str:  # noqa: ANN001
        return json.dumps(list(value or ()), ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect) -> tuple[str, ...]:  # noqa: ANN001
        return tuple(json.loads(value)) if value else ()


class JSONDoc(TypeDecorator):
    """A JSON object kept as text (the live configuration)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> str:  # noqa: ANN001
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    def process_result_value(self, value: str | None, dialect) -> dict[str, Any]:  # noqa: ANN001
        return json.loads(value) if value else {}


class JSONPairs(TypeDecorator):
    """A short tuple of pairs of strings kept as JSON text (a case's 补正 periods)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> str:  # noqa: ANN001
        return json.dumps([list(p) for p in value or ()], ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect) -> tuple[tuple[str, ...], ...]:  # noqa: ANN001
        return tuple(tuple(p) for p in json.loads(value)) if value else ()


#: Columns fixed when a row is first written; an upsert leaves them (and their indexes) alone.
FIXED = {"fixed": True}

tickets = Table(
    "tickets", metadata,
    Column("hall", String(32), primary_key=True),
    Column("id", String(32), primary_key=True),
    Column("day", Date, nullable=False, info=FIXED),
    Column("number", String(16), nullable=False, info=FIXED),
    Column("seq", Integer, nullable=False, info=FIXED),
    Column("ordinal", Integer, nullable=False, info=FIXED),
    Column("service", String(8), nullable=False),
    Column("origin_service", String(8), nullable=False, info=FIXED),
    Column("priority", EnumText(Priority), nullable=False),
    Column("state", EnumText(TicketState), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False, info=FIXED),
    Column("window", String(16)),
    Column("target_window", String(16)),
    Column("clerk", String(16)),
    Column("called_at", UTCDateTime()),
    Column("first_called_at", UTCDateTime()),
    Column("served_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("recalls", Integer, nullable=False, default=0),
    Column("id_token", String(128), info=FIXED),
    Column("appointment", String(64), info=FIXED),
    Column("phone_tail", String(4), info=FIXED),
    UniqueConstraint("hall", "day", "number", name="uq_tickets_day_number"),   # also: by day
)
#: The tickets still open (a restart reads them, and today's, out of a year of rows).
OPEN_STATES = tuple(s.value for s in TicketState if not s.terminal)
Index("ix_tickets_open", tickets.c.hall, sqlite_where=tickets.c.state.in_(OPEN_STATES),
      postgresql_where=tickets.c.state.in_(OPEN_STATES))

windows = Table(
    "windows", metadata,
    Column("hall", String(32), primary_key=True),
    Column("id", String(16), primary_key=True),
    Column("clerk", String(16)),
    Column("attendance_id", String(96)),
    Column("logged_in_at", UTCDateTime()),
    Column("paused", Boolean, nullable=False, default=False),
)

attendance = Table(
    "attendance", metadata,
    Column("hall", String(32), primary_key=True),
    Column("id", String(96), primary_key=True),
    Column("staff", String(16), nullable=False, info=FIXED),
    Column("window", String(16), nullable=False, info=FIXED),
    Column("role", String(1), nullable=False, info=FIXED),
    Column("login_at", UTCDateTime(), nullable=False, info=FIXED),
    Column("logout_at", UTCDateTime()),
)

appointments = Table(
    "appointments", metadata,
    Column("hall", String(32), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("service", String(8), nullable=False),
    Column("day", Date, nullable=False),
    Column("ticket", String(32)),
    Column("cancelled", Boolean, nullable=False, default=False),
)

#: The event log (docs/events.md): append-only, one row per state change.
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hall", String(32), nullable=False),
    Column("v", Integer, nullable=False),
    Column("day", Date, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("ticket", String(32)),
    Column("number", String(16)),
    Column("service", String(8)),
    Column("window", String(16)),
    Column("clerk", String(16)),
    Column("actor", String(64), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("payload", Text, nullable=False),
)
Index("ix_events_hall_day", events.c.hall, events.c.day, events.c.kind)
Index("ix_events_hall_window_day", events.c.hall, events.c.window, events.c.day)
Index("ix_events_hall_clerk_day", events.c.hall, events.c.clerk, events.c.day)

hall_state = Table(
    "hall_state", metadata,
    Column("hall", String(32), primary_key=True),
    Column("day", Date, nullable=False),
)

#: Replies to idempotent commands (a device's ``event_id``), kept with the state they produced.
replies = Table(
    "replies", metadata,
    Column("hall", String(32), primary_key=True),
    Column("key", String(160), primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("reply", Text, nullable=False),
)
Index("ix_replies_hall_at", replies.c.hall, replies.c.at)

#: 好差评 sessions: ``level`` is NULL for an open session and for one that ended unrated.
evaluations = Table(
    "evaluations", metadata,
    Column("hall", String(32), primary_key=True),
    Column("id", String(96), primary_key=True),
    Column("window", String(16), nullable=False),
    Column("clerk", String(16)),
    Column("ticket", String(32), nullable=False),
    Column("number", String(16), nullable=False),
    Column("service", String(8), nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("timeout_s", Integer, nullable=False),
    Column("closed_at", UTCDateTime()),
    Column("level", String(24)),
    Column("reasons", JSONList(), nullable=False),
    Column("case", String(64)),
)
Index("ix_evaluations_hall_opened", evaluations.c.hall, evaluations.c.opened_at)
Index("ix_evaluations_open", evaluations.c.hall, sqlite_where=evaluations.c.closed_at.is_(None),
      postgresql_where=evaluations.c.closed_at.is_(None))

#: The live configuration (services, windows, clerks, devices, notices, settings), one
#: document per hall; every change is also an event.
hall_config = Table(
    "hall_config", metadata,
    Column("hall", String(32), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("data", JSONDoc(), nullable=False),
)

#: People who sign in (管理员, 值班长, 总台, 窗口, 查询): argon2id hashes, never passwords.
#: ``staff`` links a clerk's account to the hall's clerk (工号); ``pin_hash`` is the keypad PIN.
users = Table(
    "users", metadata,
    Column("hall", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("display_name", String(64), nullable=False),
    Column("roles", JSONList(), nullable=False),
    Column("staff", String(16)),
    Column("password_hash", String(160), nullable=False),
    Column("pin_hash", String(160)),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("password_changed_at", UTCDateTime(), nullable=False),
)

#: Signed-in browsers: the SHA-256 of the session cookie's value (the value is never stored).
sessions = Table(
    "sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("hall", String(32), nullable=False),
    Column("user", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False),
)
Index("ix_sessions_hall_user", sessions.c.hall, sessions.c.user)

#: API tokens for programs: ``yimen token add``; the secret part only as its SHA-256.
api_tokens = Table(
    "api_tokens", metadata,
    Column("hall", String(32), primary_key=True),
    Column("id", String(16), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("roles", JSONList(), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
)

#: Each device's own MQTT password, as Mosquitto's PBKDF2-SHA512 hash (``$7$``).
device_credentials = Table(
    "device_credentials", metadata,
    Column("hall", String(32), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("secret_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

#: The audit log (审计日志): append only, each row chained to the one before by a hash.
audit_log = Table(
    "audit_log", metadata,
    Column("hall", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(96), nullable=False),
    Column("address", String(64), nullable=False),
    Column("action", String(48), nullable=False),
    Column("target", String(160), nullable=False),
    Column("detail", JSONDoc(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_hall_at", audit_log.c.hall, audit_log.c.at)
Index("ix_audit_hall_actor", audit_log.c.hall, audit_log.c.actor)

#: The matter catalogue (事项清单): each matter as a document with the hall file's keys; a
#: removed one is kept marked so a later import can tell it was there.
matters = Table(
    "matters", metadata,
    Column("hall", String(32), primary_key=True),
    Column("code", String(40), primary_key=True),
    Column("data", JSONDoc(), nullable=False),
    Column("removed", Boolean, nullable=False, default=False),
)

#: Cases (办件): one row each, its history in the event log. ``id_sealed`` is the applicant's
#: ID number encrypted with the hall's key (never in clear).
cases = Table(
    "cases", metadata,
    Column("hall", String(32), primary_key=True),
    Column("number", String(64), primary_key=True),
    Column("serial", Integer, nullable=False, info=FIXED),
    Column("matter", String(40), nullable=False, info=FIXED),
    Column("matter_name", String(100), nullable=False),
    Column("form", String(16), nullable=False),
    Column("department", String(60), nullable=False),
    Column("state", String(16), nullable=False),
    Column("accepted_on", Date, nullable=False, info=FIXED),
    Column("accepted_at", UTCDateTime(), nullable=False, info=FIXED),
    Column("limit_days", Integer, nullable=False),
    Column("due", Date, nullable=False),
    Column("token", String(32), nullable=False, info=FIXED),
    Column("query_code", String(8), nullable=False, info=FIXED),
    Column("applicant", String(60), nullable=False),
    Column("id_sealed", String(200)),
    Column("id_masked", String(18)),
    Column("phone", String(20)),
    Column("ticket", String(32)),
    Column("ticket_number", String(16)),
    Column("window", String(16)),
    Column("handler", String(96)),
    Column("materials", JSONList(), nullable=False),
    Column("missing", JSONList(), nullable=False),
    Column("tolerated", Boolean, nullable=False),
    Column("late_entry", Boolean, nullable=False),
    Column("notes", Text, nullable=False),
    Column("pauses", JSONPairs(), nullable=False),
    Column("paused_from", String(10)),
    Column("back_to", String(16)),
    Column("decision", String(16)),
    Column("reasons", Text, nullable=False),
    Column("decided_on", Date),
    Column("finished_at", UTCDateTime()),
    Column("colour", String(8), nullable=False),
    Column("origin_hall", String(32)),
    Column("origin_number", String(64)),
    Column("upper_number", String(64)),
    Column("upper_state", String(16)),
    Column("history", JSONList(), nullable=False),
)
Index("ix_cases_hall_state", cases.c.hall, cases.c.state)
Index("ix_cases_hall_token", cases.c.hall, cases.c.token)
Index("ix_cases_hall_accepted", cases.c.hall, cases.c.accepted_on)

#: The parts of a 联办件, one per department (协办).
case_tasks = Table(
    "case_tasks", metadata,
    Column("hall", String(32), primary_key=True),
    Column("id", String(80), primary_key=True),
    Column("case", String(64), nullable=False),
    Column("department", String(60), nullable=False),
    Column("state", String(8), nullable=False),
    Column("result", String(16)),
    Column("note", Text, nullable=False),
    Column("done_at", UTCDateTime()),
)
Index("ix_case_tasks_hall_case", case_tasks.c.hall, case_tasks.c.case)

#: 差评 follow-ups (差评整改), one per bad rating (its session's id); the rater is not in it.
followups = Table(
    "followups", metadata,
    Column("hall", String(32), primary_key=True),
    Column("id", String(96), primary_key=True),
    Column("window", String(16), nullable=False),
    Column("clerk", String(16)),
    Column("ticket", String(32), nullable=False),
    Column("number", String(16), nullable=False),
    Column("service", String(8), nullable=False),
    Column("case", String(64)),
    Column("level", String(24), nullable=False),
    Column("reasons", JSONList(), nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False, info=FIXED),
    Column("opened_on", Date, nullable=False, info=FIXED),
    Column("visit_due", Date, nullable=False),
    Column("rectify_due", Date, nullable=False),
    Column("state", String(16), nullable=False),
    Column("back_to", String(16)),
    Column("notes", Text, nullable=False),
    Column("appealed_by", String(96)),
    Column("rerating", String(24)),
    Column("colour", String(8), nullable=False),
    Column("closed_at", UTCDateTime()),
)
Index("ix_followups_hall_state", followups.c.hall, followups.c.state)

#: Daily roll-ups (日报): one row per hall, finished day, grouping (``by``: hall, service,
#: window, clerk, department) and key, its figures as a JSON document
#: (``controller.storage.rollup``); written at the day's rollover, rebuilt by ``yimen stats rollup``.
daily_stats = Table(
    "daily_stats", metadata,
    Column("hall", String(32), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("by", String(16), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("data", JSONDoc(), nullable=False),
)

#: Reports generated by the hall's report job (月度报表), kept as their files were made.
reports = Table(
    "reports", metadata,
    Column("hall", String(32), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("xlsx", LargeBinary, nullable=False),
    Column("pdf", LargeBinary, nullable=False),
)

#: The outbox (发件箱): what a hall owes another system, written in the same transaction as the
#: change it reports, sent in ``id`` order per channel (``controller.storage.outbox``).
outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hall", String(32), nullable=False),
    Column("channel", String(48), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("key", String(96), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("payload", Text, nullable=False),
    sqlite_autoincrement=True,                # ids never reused once pruned: they order the channel
)
Index("ix_outbox_hall_channel_id", outbox.c.hall, outbox.c.channel, outbox.c.id)

#: Each channel's delivery: the last outbox row the receiver acknowledged, and how it goes.
deliveries = Table(
    "deliveries", metadata,
    Column("hall", String(32), primary_key=True),
    Column("channel", String(48), primary_key=True),
    Column("acked", Integer, nullable=False),
    Column("delivered", Integer, nullable=False),
    Column("last_ok_at", UTCDateTime()),
    Column("failing_since", UTCDateTime()),
    Column("last_error", Text, nullable=False),
    Column("epoch", String(16), nullable=False, server_default=""),
)

#: Each channel's acknowledged positions (how many delivered, up to which row), kept with the
#: rows they point at: a receiver restored from a backup is sent again from the last one it has.
delivery_marks = Table(
    "delivery_marks", metadata,
    Column("hall", String(32), primary_key=True),
    Column("channel", String(48), primary_key=True),
    Column("delivered", Integer, primary_key=True),
    Column("acked", Integer, nullable=False),
)

#: Each tier link's inbox: the last message applied from a hall above or below
#: (``controller.core.tiers``), written with the change it applied.
inbox = Table(
    "inbox", metadata,
    Column("hall", String(32), primary_key=True),
    Column("peer", String(32), primary_key=True),
    Column("channel", String(48), primary_key=True),
    Column("applied", Integer, nullable=False),
    Column("epoch", String(16), nullable=False, server_default=""),
)

#: Each kind of record the core keeps, and its table.
RECORDS: dict[type, Table] = {
    Ticket: tickets, WindowState: windows, Attendance: attendance, Appointment: appointments,
    Evaluation: evaluations, StoredConfig: hall_config, StoredMatter: matters, Case: cases,
    CaseTask: case_tasks, Followup: followups, InboxMark: inbox,
}
