"""好差评 sessions and ratings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from controller.storage.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("window", sa.String(16), nullable=False),
        sa.Column("clerk", sa.String(16)),
        sa.Column("ticket", sa.String(32), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("timeout_s", sa.Integer, nullable=False),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("level", sa.String(24)),
        sa.Column("reasons", sa.Text, nullable=False),
    )
    op.create_index("ix_evaluations_hall_opened", "evaluations", ["hall", "opened_at"])


def downgrade() -> None:
    op.drop_index("ix_evaluations_hall_opened", table_name="evaluations")
    op.drop_table("evaluations")
