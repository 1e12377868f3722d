"""The hall engine's tables: tickets, windows, attendance, appointments, events, replies.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from controller.storage.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("origin_service", sa.String(8), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("window", sa.String(16)),
        sa.Column("target_window", sa.String(16)),
        sa.Column("clerk", sa.String(16)),
        sa.Column("called_at", UTCDateTime()),
        sa.Column("served_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("recalls", sa.Integer, nullable=False),
        sa.Column("id_token", sa.String(128)),
        sa.Column("appointment", sa.String(64)),
        sa.Column("phone_tail", sa.String(4)),
        sa.UniqueConstraint("hall", "day", "number", name="uq_tickets_day_number"),
    )
    op.create_index("ix_tickets_hall_day", "tickets", ["hall", "day"])
    op.create_table(
        "windows",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("clerk", sa.String(16)),
        sa.Column("attendance_id", sa.String(96)),
        sa.Column("logged_in_at", UTCDateTime()),
        sa.Column("paused", sa.Boolean, nullable=False),
    )
    op.create_table(
        "attendance",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("staff", sa.String(16), nullable=False),
        sa.Column("window", sa.String(16), nullable=False),
        sa.Column("role", sa.String(1), nullable=False),
        sa.Column("login_at", UTCDateTime(), nullable=False),
        sa.Column("logout_at", UTCDateTime()),
    )
    op.create_table(
        "appointments",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("ticket", sa.String(32)),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hall", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("window", sa.String(16)),
        sa.Column("clerk", sa.String(16)),
        sa.Column("ticket", sa.String(32)),
        sa.Column("number", sa.String(16)),
        sa.Column("service", sa.String(8)),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_events_hall_at", "events", ["hall", "at"])
    op.create_table(
        "hall_state",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
    )
    op.create_table(
        "replies",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
    )
    op.create_index("ix_replies_hall_at", "replies", ["hall", "at"])


def downgrade() -> None:
    for index, table in (("ix_replies_hall_at", "replies"), ("ix_events_hall_at", "events"),
                         ("ix_tickets_hall_day", "tickets")):
        op.drop_index(index, table_name=table)
    for table in ("replies", "hall_state", "events", "appointments", "attendance", "windows",
                  "tickets"):
        op.drop_table(table)
