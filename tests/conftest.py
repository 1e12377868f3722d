"""Fixtures: SQLite and PostgreSQL databases, a fake clock."""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager

import pytest

from controller.clock import FakeClock
from tests.helpers import MONDAY_9

PG_URL = os.environ.get("YIMEN_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_REQUIRED = os.environ.get("YIMEN_REQUIRE_SERVICES", "") not in ("", "0")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_9)


async def _pg_admin():
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    try:
        return await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        if PG_REQUIRED:
            pytest.fail(f"PostgreSQL is required here (YIMEN_REQUIRE_SERVICES) but {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")


@asynccontextmanager
async def pg_database():
    """A fresh PostgreSQL database, dropped afterwards."""
    admin = await _pg_admin()
    name = f"yimen_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
async def db_url(request, tmp_path):
    """A fresh, empty database URL on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'yimen.db'}"
        return
    async with pg_database() as url:
        yield url


@pytest.fixture
async def db(db_url):
    """A fresh database on SQLite and on PostgreSQL, migrated to the head."""
    from controller.storage.db import open_database, upgrade

    engine = open_database(db_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pg_url():
    async with pg_database() as url:
        yield url


@pytest.fixture(params=["own", "mosquitto"])
def broker_kind(request) -> str:
    """Contract tests run on the hall's own Mosquitto (as the server supervises it, with its
    passwords and ACL) and on the machine's (anonymous, no ACL)."""
    return request.param
