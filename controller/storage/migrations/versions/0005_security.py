"""Security: users, sessions, API tokens, per-device MQTT credentials and the audit log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import json

import sqlalchemy as sa
from alembic import op

from controller.storage.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME = UTCDateTime()


def _without_device_passwords() -> None:
    """Device passwords are kept hashed in ``device_credentials`` from now on: a stored
    configuration's plain ones go (those devices get new credentials from an administrator)."""
    config = sa.table("hall_config", sa.column("hall", sa.String), sa.column("data", sa.Text))
    conn = op.get_bind()
    for hall, data in conn.execute(sa.select(config.c.hall, config.c.data)).all():
        doc = json.loads(data)
        devices = doc.get("devices") or []
        if any(isinstance(d, dict) and "password" in d for d in devices):
            doc["devices"] = [{k: v for k, v in d.items() if k != "password"} if isinstance(d, dict) else d
                              for d in devices]
            conn.execute(config.update().where(config.c.hall == hall)
                         .values(data=json.dumps(doc, ensure_ascii=False, sort_keys=True)))


def upgrade() -> None:
    _without_device_passwords()
    op.create_table(
        "users",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("staff", sa.String(16)),
        sa.Column("password_hash", sa.String(160), nullable=False),
        sa.Column("pin_hash", sa.String(160)),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("password_changed_at", _TIME, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("hall", sa.String(32), nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("seen_at", _TIME, nullable=False),
    )
    op.create_index("ix_sessions_hall_user", "sessions", ["hall", "user"])
    op.create_table(
        "api_tokens",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME),
    )
    op.create_table(
        "device_credentials",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("hall", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(96), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("target", sa.String(160), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_hall_at", "audit_log", ["hall", "at"])
    op.create_index("ix_audit_hall_actor", "audit_log", ["hall", "actor"])
    _append_only()


def _append_only() -> None:
    """The database itself refuses to change or delete an audit entry (someone who can drop
    the trigger can do more, which ``yimen audit verify`` then shows)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'the audit log is append only'; END $$")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
    else:
        for change in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{change.lower()} BEFORE {change} ON audit_log "
                       "BEGIN SELECT RAISE(ABORT, 'the audit log is append only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in ("audit_log", "device_credentials", "api_tokens", "sessions", "users"):
        op.drop_table(table)
