"""Tier links that survive a restore: outbox ids never reused, each channel's epoch, the
acknowledged positions kept to rewind to, and the epoch an inbox mark counts in.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":     # SQLite reuses the largest rowid once deleted
        with op.batch_alter_table("outbox", recreate="always",
                                  table_kwargs={"sqlite_autoincrement": True}):
            pass
        # ids go on after every one given so far, also those pruned since (acknowledged ones)
        op.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox'")
        op.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox', max("
                   "coalesce((SELECT max(id) FROM outbox), 0), "
                   "coalesce((SELECT max(acked) FROM deliveries), 0))")
    for table in ("deliveries", "inbox"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("epoch", sa.String(16), nullable=False, server_default=""))
    op.create_table(
        "delivery_marks",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("channel", sa.String(48), primary_key=True),
        sa.Column("delivered", sa.Integer, primary_key=True),
        sa.Column("acked", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("delivery_marks")
    for table in ("inbox", "deliveries"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("epoch")
