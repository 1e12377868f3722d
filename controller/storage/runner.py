"""The engine's own connection: each batch is one transaction, run as one call.

On SQLite a thread of its own owns a plain ``sqlite3`` connection, so a batch costs one
hand-off between the event loop and that thread instead of several per statement (aiosqlite
hands every cursor, execute and close over separately, and each hand-off waits for a turn of a
busy loop). On PostgreSQL the same function runs over the asyncpg connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from controller.storage.checkpoint import Checkpointer
from controller.storage.db import sqlite_pragmas

T = TypeVar("T")
Work = Callable[[Connection], T]


class Runner(Protocol):
    async def run(self, work: Work[T]) -> T:
        """Run ``work(conn)`` in one transaction; an exception rolls it back, and the
        connection is replaced before the next call."""

    async def close(self) -> None: ...


class SqliteThreadRunner:
    def __init__(self, db: AsyncEngine) -> None:
        synchronous = db.sync_engine.get_execution_options().get("yimen_synchronous", "FULL")
        self._engine = create_engine(db.url.set(drivername="sqlite+pysqlite"), poolclass=NullPool,
                                     hide_parameters=True)
        sqlite_pragmas(self._engine, synchronous)
        path = self._engine.url.database
        self._file = path if path and path != ":memory:" and not path.startswith("file:") \
            else None
        if self._file:
            @event.listens_for(self._engine, "connect")
            def _no_autocheckpoint(dbapi_conn, _record) -> None:  # noqa: ANN001
                dbapi_conn.execute("PRAGMA wal_autocheckpoint=0").close()
        self._checkpointer: Checkpointer | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="yimen-sqlite")
        self._conn: Connection | None = None       # used by the thread only

    def _run(self, work: Work[T]) -> T:
        if self._conn is None:
            self._conn = self._engine.connect()
            if self._file and self._checkpointer is None:
                self._checkpointer = Checkpointer(self._file)
        try:
            with self._conn.begin():
                return work(self._conn)
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    async def run(self, work: Work[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, work)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._drop)
        self._thread.shutdown(wait=True)
        if self._checkpointer is not None:
            checkpointer, self._checkpointer = self._checkpointer, None
            await asyncio.get_running_loop().run_in_executor(None, checkpointer.close)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="yimen-sqlite")  # if reopened
        self._engine.dispose()


class AsyncRunner:
    def __init__(self, db: AsyncEngine) -> None:
        self._db = db
        self._conn: AsyncConnection | None = None

    async def run(self, work: Work[T]) -> T:
        if self._conn is None:
            self._conn = await self._db.connect()
        try:
            async with self._conn.begin():
                return await self._conn.run_sync(work)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass


def runner_for(db: AsyncEngine) -> Runner:
    return SqliteThreadRunner(db) if db.dialect.name == "sqlite" else AsyncRunner(db)
