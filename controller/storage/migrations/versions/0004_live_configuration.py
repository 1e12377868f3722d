"""Live configuration: one document per hall in ``hall_config``; appointments can be cancelled.

A hall without a stored configuration takes its hall file's at its next start.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hall_config",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("appointments") as batch:
        batch.drop_column("cancelled")
    op.drop_table("hall_config")
