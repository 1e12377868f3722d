"""Tables (SQLAlchemy Core). Every row carries its hall, so one database can hold a county.

The Alembic migrations in ``migrations/versions`` create exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

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
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage")
        value = value.astimezone(UTC)
        return value.isoformat(timespec="microseconds") if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | str | None, dialect) -> datetime | None:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


tickets = Table(
    "tickets", metadata,
    Column("hall", String(32), primary_key=True),
    Column("id", String(32), primary_key=True),
    Column("day", Date, nullable=False),
    Column("number", String(16), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("service", String(8), nullable=False),
    Column("origin_service", String(8), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("window", String(16)),
    Column("target_window", String(16)),
    Column("clerk", String(16)),
    Column("called_at", UTCDateTime()),
    Column("served_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("recalls", Integer, nullable=False, default=0),
    Column("id_token", String(128)),
    Column("appointment", String(64)),
    Column("phone_tail", String(4)),
    UniqueConstraint("hall", "day", "number", name="uq_tickets_day_number"),
)
Index("ix_tickets_hall_day", tickets.c.hall, tickets.c.day)

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
    Column("staff", String(16), nullable=False),
    Column("window", String(16), nullable=False),
    Column("role", String(1), nullable=False),
    Column("login_at", UTCDateTime(), nullable=False),
    Column("logout_at", UTCDateTime()),
)

appointments = Table(
    "appointments", metadata,
    Column("hall", String(32), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("service", String(8), nullable=False),
    Column("day", Date, nullable=False),
    Column("ticket", String(32)),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hall", String(32), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("window", String(16)),
    Column("clerk", String(16)),
    Column("ticket", String(32)),
    Column("number", String(16)),
    Column("service", String(8)),
    Column("data", Text, nullable=False),
)
Index("ix_events_hall_at", events.c.hall, events.c.at)

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
    Column("reasons", Text, nullable=False),
)
Index("ix_evaluations_hall_opened", evaluations.c.hall, evaluations.c.opened_at)
