"""A commit PostgreSQL refuses is logged by what went wrong, never with the statement's
parameters or the row PostgreSQL quotes back: the log holds no phone digits or ID tokens."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from controller.core.commands import SYSTEM, Take
from controller.core.errors import StorageUnavailable
from controller.engine import Engine
from controller.logs import describe_error
from controller.storage.db import open_database, upgrade
from tests.helpers import small_config, token

PHONE, ID_TOKEN = "9731", token(0x5EC12E7)


@pytest.mark.slow                               # PostgreSQL
async def test_a_refused_commit_logs_no_parameters_nor_row(pg_url, clock, caplog):
    db = open_database(pg_url)
    await upgrade(db)
    async with db.begin() as conn:              # storage refuses any ticket with a phone
        await conn.execute(text("ALTER TABLE tickets ADD CONSTRAINT no_phone CHECK (phone_tail IS NULL)"))
    engine = Engine(small_config(), db, clock)
    await engine.start()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")   # as with `yimen serve -v`
    try:
        with pytest.raises(StorageUnavailable):
            await engine.execute(Take(service="A", phone_tail=PHONE, id_token=ID_TOKEN), SYSTEM)
        async with db.connect() as conn:        # asyncpg refuses an argument, quoting it
            with pytest.raises(Exception) as raised:
                await conn.execute(text("SELECT CAST(:phone AS integer)"), {"phone": PHONE})
    finally:
        await engine.stop()
        await db.dispose()
    logged = caplog.text
    assert "commit of 1 commands failed" in logged and "CheckViolationError" in logged, logged
    assert "no_phone" in logged                                         # what went wrong
    for secret in (PHONE, ID_TOKEN, "Failing row"):
        assert secret not in logged, secret
    # SQLAlchemy leaves the parameters out of its errors; asyncpg's own message, which
    # hide_parameters cannot reach, is never what is logged
    assert "[SQL parameters hidden due to hide_parameters=True]" in str(raised.value)
    assert describe_error(raised.value) == "DataError, SQLSTATE 22000"


def test_errors_are_described_without_the_values_drivers_quote():
    import sqlite3

    class DataError(Exception):                 # as asyncpg says of a bad argument
        __module__ = "asyncpg.exceptions"

    assert describe_error(DataError(f"invalid input for query argument $3: {PHONE!r}")) == "DataError"
    assert describe_error(sqlite3.IntegrityError("UNIQUE constraint failed: tickets.id")) == \
        "IntegrityError: UNIQUE constraint failed: tickets.id"
    assert describe_error(OSError("disk full\nmore")) == "OSError: disk full"
