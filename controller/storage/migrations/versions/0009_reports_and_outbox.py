"""Generated reports, the outbox and its deliveries.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from controller.storage.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TIME = UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("xlsx", sa.LargeBinary, nullable=False),
        sa.Column("pdf", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hall", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(48), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(96), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_outbox_hall_channel_id", "outbox", ["hall", "channel", "id"])
    op.create_table(
        "deliveries",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("channel", sa.String(48), primary_key=True),
        sa.Column("acked", sa.Integer, nullable=False),
        sa.Column("delivered", sa.Integer, nullable=False),
        sa.Column("last_ok_at", _TIME),
        sa.Column("failing_since", _TIME),
        sa.Column("last_error", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_index("ix_outbox_hall_channel_id", "outbox")
    op.drop_table("outbox")
    op.drop_table("reports")
