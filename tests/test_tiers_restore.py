"""A hall brought back from a backup (``yimen restore``) on either side of a tier link: what the
restored side sends is not taken for repeats, what it lost is sent to it again, and nothing is
taken twice. A town restored numbers its new cases again from its backup's numbers: the county
takes them as the new cases they are, and their results come back to them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from controller.core.commands import SetMatters
from controller.storage import backup, outbox
from controller.storage.db import database_url
from controller.storage.schema import cases
from controller.tier_link import TIERS
from tests.bushelp import HallServer, free_port
from tests.test_tiers import DESK, U15, admit, config, send_up, until

pytestmark = pytest.mark.slow


async def forwarded(county: HallServer) -> list[tuple[str, str]]:
    """Every case the county holds from the town, as (its number at the town, applicant)."""
    c = cases.c
    async with county.engine.db.connect() as conn:
        rows = (await conn.execute(select(c.origin_number, c.applicant).where(
            c.hall == "county", c.origin_hall == "town").order_by(c.number))).all()
    return [(n, a) for n, a in rows]


async def delivered(hall: HallServer, channel: str) -> int:
    async with hall.engine.db.connect() as conn:
        return (await conn.run_sync(outbox.position, hall.engine.config.hall.id, channel))[1]


async def upper_numbers(town: HallServer, numbers: list[str]) -> dict[str, str | None]:
    state = await town.engine.settled()
    return {n: state.cases.by_number[n].upper_number for n in numbers}


def snapshot(hall: HallServer, dest: Path) -> None:
    backup.backup(database_url(None, hall.data), dest)


async def restart_restored(hall: HallServer, src: Path) -> None:
    await hall.stop()
    await backup.restore(src, database_url(None, hall.data), force=True)
    await hall.start()


@asynccontextmanager
async def linked(tmp_path: Path, listen: str = "127.0.0.1:0") -> AsyncIterator[tuple[HallServer, HallServer]]:
    """A county (its broker on ``listen``) and a town below it, both serving, each restartable
    (``restart_restored``); stopped at the end however far they got."""
    county = HallServer(config("county", "county", lower="town"), tmp_path / "county", None, None,
                        listen=listen)
    await county.start()
    town = HallServer(config("town", "town", ("county", county.broker_own.address.port)),
                      tmp_path / "town", None, None)
    try:
        await admit(county, "town", tmp_path / "town")
        await town.start()
        for hall in (county, town):
            await hall.engine.execute(SetMatters(matters=[{**U15, "form": "upper"}]), DESK)
        yield county, town
    finally:
        await town.stop()
        await county.stop()


async def test_a_town_restored_from_a_backup_is_heard_and_hears_again(tmp_path):
    async with linked(tmp_path) as (county, town):
        before = [await send_up(town, f"张三{c}") for c in "甲乙丙"]
        await until(lambda: _is(delivered(town, outbox.UP), 3))
        await until(lambda: _is(delivered(county, outbox.down("town")), 3))
        snapshot(town, tmp_path / "town.db")
        lost = [await send_up(town, f"李四{c}") for c in "甲乙"]            # gone with the restore
        await until(lambda: _count(forwarded(county), 5))

        await restart_restored(town, tmp_path / "town.db")
        again = [await send_up(town, f"王五{c}") for c in "甲乙"]
        assert again == lost                           # the backup's numbers, given again
        await until(lambda: _count(forwarded(county), 7))
        held = await forwarded(county)
        assert sorted(a for _, a in held) == sorted(
            ["张*甲", "张*乙", "张*丙", "李*甲", "李*乙", "王*甲", "王*乙"])
        here = {a: n for n, a in held}
        # the results of the new cases come back to them, not those of the lost ones
        county_numbers = await _numbers_by_applicant(county)
        await until(lambda: _none_missing(upper_numbers(town, again)))
        assert await upper_numbers(town, again) == {here["王*甲"]: county_numbers["王*甲"],
                                                     here["王*乙"]: county_numbers["王*乙"]}
        assert (await upper_numbers(town, before)).keys() == set(before)
        assert town.runner.app[TIERS].counts["rewound"] == 0
        assert county.runner.app[TIERS].counts["rewound"] == 1      # the town had only 3 of 5


async def test_a_county_restored_from_a_backup_is_sent_what_it_lost(tmp_path):
    async with linked(tmp_path, f"127.0.0.1:{free_port()}") as (county, town):   # found there again
        first = [await send_up(town, f"张三{c}") for c in "甲乙丙"]
        await until(lambda: _count(forwarded(county), 3))
        snapshot(county, tmp_path / "county.db")
        second = [await send_up(town, f"李四{c}") for c in "甲乙"]          # the county loses these
        await until(lambda: _count(forwarded(county), 5))
        await until(lambda: _is(delivered(town, outbox.UP), 5))

        await restart_restored(county, tmp_path / "county.db")
        assert len(await forwarded(county)) == 3
        third = [await send_up(town, "王五")]
        await until(lambda: _count(forwarded(county), 6))
        held = await forwarded(county)
        assert sorted(n for n, _ in held) == sorted([*first, *second, *third])   # each once
        assert town.runner.app[TIERS].counts["rewound"] == 1
        await until(lambda: _none_missing(upper_numbers(town, [*second, *third])))


async def _numbers_by_applicant(county: HallServer) -> dict[str, str]:
    state = await county.engine.settled()
    return {c.applicant: c.number for c in state.cases.by_number.values() if c.origin_hall == "town"}


async def _is(value, n: int) -> bool:  # noqa: ANN001
    return await value == n


async def _count(value, n: int) -> bool:  # noqa: ANN001
    return len(await value) == n


async def _none_missing(value) -> bool:  # noqa: ANN001
    return None not in (await value).values()
