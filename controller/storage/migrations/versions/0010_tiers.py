"""Three tiers: a forwarded case's halls and numbers, and each tier link's inbox.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from controller.storage.schema import JSONList

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("origin_hall", sa.String(32)))
        batch.add_column(sa.Column("origin_number", sa.String(64)))
        batch.add_column(sa.Column("upper_number", sa.String(64)))
        batch.add_column(sa.Column("upper_state", sa.String(16)))
        batch.add_column(sa.Column("history", JSONList(), nullable=False, server_default="[]"))
    op.create_table(
        "inbox",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("peer", sa.String(32), primary_key=True),
        sa.Column("channel", sa.String(48), primary_key=True),
        sa.Column("applied", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inbox")
    with op.batch_alter_table("cases") as batch:
        for column in ("history", "upper_state", "upper_number", "origin_number", "origin_hall"):
            batch.drop_column(column)
