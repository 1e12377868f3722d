"""Opening the database: URLs, SQLite pragmas, Alembic migrations."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from controller.storage.private import private_folder, sqlite_files

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(url: str | None, data_dir: str | Path) -> str:
    """The SQLAlchemy async URL: ``url`` if given (PostgreSQL gets asyncpg), else the SQLite
    file ``yimen.db`` in the data folder, which is created (0700)."""
    if url:
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain):]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
        return url
    folder = private_folder(data_dir)
    return f"sqlite+aiosqlite:///{(folder / 'yimen.db').resolve()}"


def open_database(url: str, synchronous: str = "FULL") -> AsyncEngine:
    """An async engine. SQLite runs in WAL mode with ``synchronous=FULL`` by default, so a
    committed (and so acknowledged) ticket survives a power cut; its file is readable by its
    owner only (``private.sqlite_files``). No error nor log line of the engine carries a
    statement's parameters (phone digits, ID tokens): ``hide_parameters``."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError("synchronous must be FULL or NORMAL")
    if url.startswith("sqlite"):
        sqlite_files(make_url(url).database)
    engine = create_async_engine(url, pool_pre_ping=not url.startswith("sqlite"), hide_parameters=True,
                                 execution_options={"yimen_synchronous": synchronous})
    if engine.dialect.name == "sqlite":
        sqlite_pragmas(engine.sync_engine, synchronous)
    return engine


def sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    """Every new SQLite connection of ``engine``: WAL, ``synchronous``, a busy time-out."""
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()


def _alembic_config(connection) -> Config:  # noqa: ANN001
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (``yimen db upgrade``); safe to run every start."""
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(_alembic_config(sync_conn), revision))


def head_revision() -> str:
    """The newest migration's revision, from its file's name (``0004_….py``: they are
    numbered in order), without importing Alembic."""
    return max(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


async def stored_revision(engine: AsyncEngine) -> str | None:
    """The database's schema revision as Alembic recorded it, or None if it has none yet."""
    async with engine.connect() as conn:
        def read(sync_conn) -> str | None:  # noqa: ANN001
            if not sa_inspect(sync_conn).has_table("alembic_version"):
                return None
            return sync_conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return await conn.run_sync(read)


async def write_revision(message: str) -> Path:
    """A new migration (``yimen db revision``): what ``schema.py`` declares that the
    migrations do not yet build, compared on a scratch database brought up to the head."""
    from alembic.script import ScriptDirectory

    with tempfile.TemporaryDirectory(prefix="yimen-revision-") as tmp:
        engine = open_database(f"sqlite+aiosqlite:///{Path(tmp) / 'head.db'}")
        try:
            await upgrade(engine)
            async with engine.begin() as conn:
                def write(sync_conn) -> Path:  # noqa: ANN001
                    cfg = _alembic_config(sync_conn)
                    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
                    head = ScriptDirectory.from_config(cfg).get_current_head()
                    from alembic import command

                    script = command.revision(cfg, message=message, autogenerate=True,
                                              rev_id=f"{int(head or 0) + 1:04d}")
                    assert script is not None and not isinstance(script, list)
                    return Path(script.path)
                return await conn.run_sync(write)
        finally:
            await engine.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision())
