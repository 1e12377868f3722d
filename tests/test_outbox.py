"""The outbox's positions on SQLite and PostgreSQL: ids never given twice, a refused row that
takes no number, a rewind to a position still kept, and pruning that keeps what it points at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.storage import outbox
from controller.storage.schema import outbox as table

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


async def put(db, n: int, at: datetime = T0) -> list[int]:  # noqa: ANN001
    ids = []
    async with db.begin() as conn:
        for i in range(n):
            r = await conn.execute(table.insert().values(hall="h", channel="up", kind="case_forwarded",
                                                         key=f"k{i}", at=at, payload="{}"))
            ids.append(r.inserted_primary_key[0])
    return ids


async def run(db, fn, *args):  # noqa: ANN001, ANN002
    async with db.begin() as conn:
        return await conn.run_sync(fn, "h", "up", *args)


async def numbered(db) -> list[tuple[int, int]]:  # noqa: ANN001
    """(number, row id) of what would be sent now."""
    acked, delivered = await run(db, outbox.position)
    rows = await run(db, outbox.pending, 100)
    assert all(r.id > acked for r in rows)
    return [(delivered + 1 + i, r.id) for i, r in enumerate(rows)]


async def test_an_id_is_never_given_again_once_its_row_is_pruned(db):
    await run(db, outbox.epoch)
    first = await put(db, 3)
    await run(db, outbox.ack, first[-1], 3, T0)
    await run(db, outbox.prune, T0 + timedelta(days=1))
    assert await run(db, outbox.pending, 10) == []
    again = await put(db, 1, T0 + timedelta(days=2))
    assert again[0] > first[-1]                          # else it would count as acknowledged
    assert [r.id for r in await run(db, outbox.pending, 10)] == again


async def test_a_refused_row_takes_no_number_and_a_rewind_goes_back_to_a_kept_position(db):
    epoch = await run(db, outbox.epoch)
    assert await run(db, outbox.epoch) == epoch and len(epoch) == 16
    ids = await put(db, 6)
    await run(db, outbox.ack, ids[1], 2, T0)             # 1 and 2 applied
    await run(db, outbox.ack, ids[2], 0, T0)             # the third refused: the fourth is number 3
    assert (await numbered(db))[0] == (3, ids[3])
    await run(db, outbox.ack, ids[4], 2, T0)             # 3 and 4 applied
    assert await run(db, outbox.position) == (ids[4], 4)
    assert await run(db, outbox.rewind, 3) == 2          # the receiver has only 3: from 2 again
    assert await numbered(db) == [(3, ids[3]), (4, ids[4]), (5, ids[5])]
    assert await run(db, outbox.rewind, 0) == 0          # and from the start, while it is kept
    assert [n for n, _ in await numbered(db)] == [1, 2, 3, 4, 5, 6]


async def test_pruning_forgets_the_positions_that_pointed_before_it(db):
    await run(db, outbox.epoch)
    old = await put(db, 2, T0)
    await run(db, outbox.ack, old[-1], 2, T0)
    new = await put(db, 2, T0 + timedelta(days=100))
    await run(db, outbox.ack, new[0], 1, T0 + timedelta(days=100))
    await run(db, outbox.prune, T0 + timedelta(days=10))
    assert await run(db, outbox.rewind, 1) is None       # its rows are gone: cannot go back there
    assert await run(db, outbox.rewind, 2) == 2          # still there: the rows after it are kept
    assert await numbered(db) == [(3, new[0]), (4, new[1])]


async def test_a_restored_database_sends_in_a_new_epoch(db):
    before = await run(db, outbox.epoch)
    async with db.begin() as conn:
        await conn.run_sync(outbox.renew_epochs)
    after = await run(db, outbox.epoch)
    assert after != before and len(after) == 16


async def test_a_sender_stores_what_its_receiver_answers(db):
    """Applied, refused (the next one takes its number), from another epoch (ignored), and
    behind (sent again from the receiver's last)."""
    from collections import Counter
    from types import SimpleNamespace

    from controller.clock import FakeClock
    from controller.tier_link import Ack, Sender

    engine = SimpleNamespace(db=db, clock=FakeClock(T0), config=SimpleNamespace(hall=SimpleNamespace(id="h")))
    counts: Counter[str] = Counter()
    sender = Sender(engine, None, "up", "t", lambda conn, rows, first: [], counts)  # type: ignore[arg-type]
    sender.epoch = await run(db, outbox.epoch)
    ids = await put(db, 3)
    await sender.acked(Ack(0, sender.epoch, refused=1, reason="malformed", row=ids[1]))
    assert await numbered(db) == [(1, ids[0]), (2, ids[1]), (3, ids[2])]   # not the row it names
    await sender.acked(Ack(0, sender.epoch, refused=1, reason="malformed", row=ids[0]))
    assert await numbered(db) == [(1, ids[1]), (2, ids[2])]
    await sender.acked(Ack(0, sender.epoch, refused=1, reason="malformed", row=ids[0]))   # said again
    assert await numbered(db) == [(1, ids[1]), (2, ids[2])]                # the next one is not let go
    assert [r["key"] for r in sender.refusals] == ["k0"] and counts["refused_there"] == 1
    await sender.acked(Ack(2, sender.epoch))
    assert await run(db, outbox.position) == (ids[2], 2)
    await sender.acked(Ack(3, "0123456789abcdef"))                 # another epoch's: not stored
    assert counts["stale_acks"] == 1 and await run(db, outbox.position) == (ids[2], 2)
    await sender.acked(Ack(1, sender.epoch, behind=True))
    assert await numbered(db) == [(1, ids[1]), (2, ids[2])] and counts["rewound"] == 1


async def test_after_the_upgrade_an_id_pruned_before_it_is_not_given_again(tmp_path):
    """A hall whose outbox was pruned empty before the upgrade (the province channel): its next
    row's id comes after every id acknowledged, else it would count as delivered already."""
    from sqlalchemy import text

    from controller.storage.db import open_database, upgrade

    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade(db, "0010")
        async with db.begin() as conn:
            for _ in range(5):
                await conn.execute(text("INSERT INTO outbox (hall, channel, kind, key, at, payload) "
                                        "VALUES ('h', 'up', 'k', 'k', '2026-11-30 09:00:00', '{}')"))
            await conn.execute(text("INSERT INTO deliveries (hall, channel, acked, delivered, last_error) "
                                    "VALUES ('h', 'up', 5, 5, '')"))
            await conn.execute(text("DELETE FROM outbox"))                   # pruned
        await upgrade(db)
        again = await put(db, 1)
        assert again[0] > 5 and [r.id for r in await run(db, outbox.pending, 10)] == again
    finally:
        await db.dispose()
