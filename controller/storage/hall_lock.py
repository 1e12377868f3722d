"""One server per hall on a shared database (PostgreSQL): a session advisory lock on the
hall's key, held on a connection of its own for as long as the hall's engine runs. (On SQLite
the data folder's lock does this: see ``controller.startup``.) Migrations do not take it, so
``yimen db upgrade`` runs beside a serving hall."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def lock_key(hall: str) -> int:
    """The hall's advisory lock key: a signed 64-bit number from its id."""
    return int.from_bytes(hashlib.sha256(f"yimen-hall:{hall}".encode()).digest()[:8], "big", signed=True)


async def hold_hall(db: AsyncEngine, hall: str) -> AsyncConnection | None:
    """The connection holding ``hall``'s lock (``invalidate()`` it to let go: a connection
    returned to the pool would keep its session and the lock), None on SQLite; raises
    ``HallInUse`` when another server holds it."""
    if db.dialect.name != "postgresql":
        return None
    conn = await db.connect()
    try:
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(hall)})).scalar()
        await conn.commit()
    except BaseException:
        await conn.close()
        raise
    if not got:
        await conn.close()
        raise HallInUse(hall)
    return conn


class HallInUse(RuntimeError):
    def __init__(self, hall: str) -> None:
        super().__init__(f"hall {hall!r} is served by another server on this database")
        self.hall = hall
