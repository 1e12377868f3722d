"""The town's server killed with SIGKILL in the middle of sending its backlog up to the county:
after it comes back, the county has every case exactly once — nothing lost, nothing repeated —
and the town knows that all were delivered."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest

from controller.cli_auth import open_hall_db
from controller.storage import outbox
from tests.bushelp import hall_server
from tests.helpers import start_yimen
from tests.test_tiers import DESK, U15, admit, cases_from, config, send_up, until

pytestmark = pytest.mark.slow
BACKLOG = 3000


def town_file(folder: Path, county_port: int) -> Path:
    path = folder / "town.toml"
    path.write_text(f'''[hall]
id = "town"
name = "town 便民服务中心"
national_calendar = false

[[services]]
code = "A"
name = "综合"
avg_service_min = 6

[[windows]]
id = "1"
services = ["A"]

[tier]
level = "town"
upper = "county"
upper_broker = "mqtt://127.0.0.1:{county_port}"
''', encoding="utf-8")
    return path


async def serve_town(path: Path, data: Path) -> subprocess.Popen:
    proc, _, _ = await start_yimen("serve", "--config", str(path), "--data", str(data),
                                   "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", timeout=30)
    return proc


async def test_the_town_killed_mid_sending_loses_nothing_and_repeats_nothing(tmp_path):
    from controller.core.commands import SetMatters

    data = tmp_path / "town"
    async with hall_server(config("county", "county", lower="town"), tmp_path / "county") as county:
        await county.engine.execute(SetMatters(matters=[U15]), DESK)
        await admit(county, "town", data)
        port = county.broker_own.address.port
        await county.broker_own.mosquitto.stop()            # the backlog builds up while it is away
        async with hall_server(config("town", "town", ("county", port)), data) as town:
            await town.engine.execute(SetMatters(matters=[{**U15, "form": "upper"}]), DESK)
            numbers = []
            for start in range(0, BACKLOG, 200):
                numbers += await asyncio.gather(*(send_up(town, f"申请人{i}")
                                                  for i in range(start, start + 200)))
        await county.broker_own.mosquitto.start()

        path = town_file(tmp_path, port)
        proc = await serve_town(path, data)
        try:
            await until(lambda: at_least(county, 1), 60)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            got = len(await cases_from(county, "town"))
            assert got < BACKLOG, "the kill must land in the middle of the backlog"
            proc = await serve_town(path, data)
            await until(lambda: at_least(county, BACKLOG), 60)
            await asyncio.sleep(1.0)                        # anything repeated would show now
        finally:
            proc.terminate()
            proc.wait()
        forwarded = await cases_from(county, "town")
        assert sorted(forwarded) == sorted(numbers)         # each once: none lost, none twice
        assert county.engine.hall.inbox[("town", "up")].applied == BACKLOG
        db = await open_hall_db(data, None)
        try:
            async with db.connect() as conn:
                acked, delivered = await conn.run_sync(outbox.position, "town", outbox.UP)
        finally:
            await db.dispose()
        assert delivered == BACKLOG                         # and the town knows it


async def at_least(county, n: int) -> bool:  # noqa: ANN001
    return len(await cases_from(county, "town")) >= n
