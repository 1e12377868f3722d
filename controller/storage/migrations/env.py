"""Alembic environment: runs on the connection handed in by ``controller.storage.db``."""

from alembic import context
from sqlalchemy.types import TypeDecorator

from controller.storage.schema import UTCDateTime, metadata


def render_item(kind, obj, autogen_context):  # noqa: ANN001, ANN201
    """Written migrations name the project's column types by what the database stores: an
    enum or a JSON list is its text column; an aware time keeps its own type (it differs
    between SQLite and PostgreSQL)."""
    if kind != "type" or not isinstance(obj, TypeDecorator):
        return False
    if isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from controller.storage.schema import UTCDateTime")
        return "UTCDateTime()"
    return f"sa.{obj.impl!r}"


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `yimen db upgrade`, which supplies the connection")
context.configure(connection=connection, target_metadata=metadata, render_item=render_item,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
