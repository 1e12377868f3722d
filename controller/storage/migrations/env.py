"""Alembic environment: runs on the connection handed in by ``controller.storage.db``."""

from alembic import context

from controller.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `yimen db upgrade`, which supplies the connection")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
