"""Cases (办件): the matter catalogue, cases and the parts of joint cases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from controller.storage.schema import JSONDoc, JSONList, JSONPairs, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TIME = UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "matters",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("data", JSONDoc(), nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("number", sa.String(64), primary_key=True),
        sa.Column("serial", sa.Integer, nullable=False),
        sa.Column("matter", sa.String(40), nullable=False),
        sa.Column("matter_name", sa.String(100), nullable=False),
        sa.Column("form", sa.String(16), nullable=False),
        sa.Column("department", sa.String(60), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("accepted_on", sa.Date, nullable=False),
        sa.Column("accepted_at", _TIME, nullable=False),
        sa.Column("limit_days", sa.Integer, nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("query_code", sa.String(8), nullable=False),
        sa.Column("applicant", sa.String(60), nullable=False),
        sa.Column("id_sealed", sa.String(200)),
        sa.Column("id_masked", sa.String(18)),
        sa.Column("phone", sa.String(20)),
        sa.Column("ticket", sa.String(32)),
        sa.Column("ticket_number", sa.String(16)),
        sa.Column("window", sa.String(16)),
        sa.Column("handler", sa.String(96)),
        sa.Column("materials", JSONList(), nullable=False),
        sa.Column("missing", JSONList(), nullable=False),
        sa.Column("tolerated", sa.Boolean, nullable=False),
        sa.Column("late_entry", sa.Boolean, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("pauses", JSONPairs(), nullable=False),
        sa.Column("paused_from", sa.String(10)),
        sa.Column("back_to", sa.String(16)),
        sa.Column("decision", sa.String(16)),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("decided_on", sa.Date),
        sa.Column("finished_at", _TIME),
        sa.Column("colour", sa.String(8), nullable=False),
    )
    op.create_index("ix_cases_hall_state", "cases", ["hall", "state"])
    op.create_index("ix_cases_hall_token", "cases", ["hall", "token"])
    op.create_index("ix_cases_hall_accepted", "cases", ["hall", "accepted_on"])
    op.create_table(
        "case_tasks",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("case", sa.String(64), nullable=False),
        sa.Column("department", sa.String(60), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("result", sa.String(16)),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("done_at", _TIME),
    )
    op.create_index("ix_case_tasks_hall_case", "case_tasks", ["hall", "case"])


def downgrade() -> None:
    op.drop_table("case_tasks")
    op.drop_table("cases")
    op.drop_table("matters")
