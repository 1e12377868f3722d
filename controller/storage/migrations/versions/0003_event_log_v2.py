"""The event log, version 2: day, actor, origin, a schema version and a typed payload on every
event, with per-day, per-window and per-clerk indexes; a ticket's first call time.

Existing events become version 1 rows: their day is the China Standard Time date of their time
(every hall is on Asia/Shanghai), their actor the clerk who was at the window (``staff:…``) or
``unknown``, their origin ``legacy``. A ticket's first call time is the time of its first
``called`` event.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from controller.storage.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # new columns are added in place (no copy of a year of events), filled, and then made
    # NOT NULL together with the rename: on SQLite that is the one copy of the table
    for name, kind in (("v", sa.Integer()), ("day", sa.Date()), ("actor", sa.String(64)),
                       ("origin", sa.String(16))):
        op.add_column("events", sa.Column(name, kind))
    day = ("date(substr(at, 1, 19), '+8 hours')" if sqlite
           else "(at AT TIME ZONE 'Asia/Shanghai')::date")
    op.execute(f"UPDATE events SET v = 1, day = {day}, origin = 'legacy', "
               "actor = CASE WHEN clerk IS NULL THEN 'unknown' ELSE 'staff:' || clerk END")
    with op.batch_alter_table("events") as b:
        b.alter_column("data", new_column_name="payload", existing_type=sa.Text, existing_nullable=False)
        for name, kind in (("v", sa.Integer()), ("day", sa.Date()), ("actor", sa.String(64)),
                           ("origin", sa.String(16))):
            b.alter_column(name, existing_type=kind, nullable=False)
    op.drop_index("ix_events_hall_at", table_name="events")      # the day's index serves
    op.drop_index("ix_tickets_hall_day", table_name="tickets")   # as uq_tickets_day_number does
    op.create_index("ix_events_hall_day", "events", ["hall", "day", "kind"])
    open_tickets = sa.text("state IN ('waiting', 'called', 'serving', 'held')")
    op.create_index("ix_tickets_open", "tickets", ["hall"], sqlite_where=open_tickets,
                    postgresql_where=open_tickets)
    open_sessions = sa.text("closed_at IS NULL")
    op.create_index("ix_evaluations_open", "evaluations", ["hall"], sqlite_where=open_sessions,
                    postgresql_where=open_sessions)
    op.create_index("ix_events_hall_window_day", "events", ["hall", "window", "day"])
    op.create_index("ix_events_hall_clerk_day", "events", ["hall", "clerk", "day"])

    op.add_column("tickets", sa.Column("first_called_at", UTCDateTime()))
    # a year of events is millions of rows: look each ticket's calls up by an index of its own
    op.create_index("ix_events_tmp_ticket", "events", ["ticket", "kind"])
    op.execute("UPDATE tickets SET first_called_at = (SELECT MIN(e.at) FROM events e "
               "WHERE e.hall = tickets.hall AND e.ticket = tickets.id AND e.kind = 'called') "
               "WHERE called_at IS NOT NULL")
    op.drop_index("ix_events_tmp_ticket", table_name="events")


def downgrade() -> None:
    with op.batch_alter_table("tickets") as b:
        b.drop_column("first_called_at")
    op.drop_index("ix_evaluations_open", table_name="evaluations")
    op.drop_index("ix_tickets_open", table_name="tickets")
    for name in ("ix_events_hall_clerk_day", "ix_events_hall_window_day", "ix_events_hall_day"):
        op.drop_index(name, table_name="events")
    op.create_index("ix_tickets_hall_day", "tickets", ["hall", "day"])
    op.create_index("ix_events_hall_at", "events", ["hall", "at"])
    with op.batch_alter_table("events") as b:
        b.alter_column("payload", new_column_name="data", existing_type=sa.Text, existing_nullable=False)
        for name in ("origin", "actor", "day", "v"):
            b.drop_column(name)
