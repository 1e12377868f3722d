"""差评 follow-ups, and the case a rating session was for.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from controller.storage.schema import JSONList, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TIME = UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("case", sa.String(64)))
    op.create_table(
        "followups",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("window", sa.String(16), nullable=False),
        sa.Column("clerk", sa.String(16)),
        sa.Column("ticket", sa.String(32), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("case", sa.String(64)),
        sa.Column("level", sa.String(24), nullable=False),
        sa.Column("reasons", JSONList(), nullable=False),
        sa.Column("opened_at", _TIME, nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("visit_due", sa.Date, nullable=False),
        sa.Column("rectify_due", sa.Date, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("back_to", sa.String(16)),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("appealed_by", sa.String(96)),
        sa.Column("rerating", sa.String(24)),
        sa.Column("colour", sa.String(8), nullable=False),
        sa.Column("closed_at", _TIME),
    )
    op.create_index("ix_followups_hall_state", "followups", ["hall", "state"])


def downgrade() -> None:
    op.drop_table("followups")
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("case")
