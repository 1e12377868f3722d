"""``yimen bench tiers``: the links between halls under load.

Two measures, each on hall servers started in this process (``create_app``), each with its own
data folder and SQLite database:

* **Drain.** A county hall with its own Mosquitto (in this process) and a town hall below it.
  With the county's broker stopped (the link cut), the town accepts and sends up ``--backlog``
  cases (上报件); then the broker starts again, the town's server runs as a process of its own
  (as on its own machine), and the time is taken until the county has received every one.
  Target: 500 cases a second or more once the town is connected.
* **Overview.** The county and ``--halls`` halls below it (no queue hardware, their link only).
  A ticket is taken at one of them at random, ``--changes`` times; each time, how long until
  the county's overview (what ``/admin/county`` shows) says so. Target: within 1 s.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from controller.bus import credentials
from controller.bus.hall_broker import BROKER
from controller.config import HallConfig, parse_config
from controller.core.commands import CaseStep, OpenCase, Origin, SetMatters, Source, Take
from controller.engine import Engine
from controller.server import create_app
from controller.tier_link import PASSWORD_FILE, TIERS
from controller.web.api import ENGINE
from protocol.topics import hall_user

DRAIN_TARGET = 500.0          # cases a second
OVERVIEW_TARGET_S = 1.0
DESK = Source("user:bench", Origin.HTTP)
MATTER = {"code": "U15", "name": "采矿许可", "department": "自然资源局", "promised_days": 15,
          "statutory_days": 20}


def hall_config(hall: str, level: str, upper: tuple[str, int] | None = None,
                lower: list[str] | None = None) -> HallConfig:
    return parse_config({
        "hall": {"id": hall, "name": f"{hall} 便民服务中心", "national_calendar": False},
        "services": [{"code": "A", "name": "综合", "avg_service_min": 6}],
        "windows": [{"id": "1", "services": ["A"]}],
        "storage": {"synchronous": "NORMAL"},
        "tier": {"level": level, "upper": upper[0] if upper else "",
                 "upper_broker": f"mqtt://127.0.0.1:{upper[1]}" if upper else "",
                 "lower": [{"id": h, "name": h} for h in lower or []]},
    }, f"<{hall}>")


@asynccontextmanager
async def serving(config: HallConfig, data: Path, bus: bool):  # noqa: ANN201
    runner = web.AppRunner(create_app(config, data, bus=bus, broker_listen="127.0.0.1:0"))
    await runner.setup()
    try:
        yield runner.app
    finally:
        await runner.cleanup()


async def admit(county: web.Application, lower: str, data: Path) -> None:
    engine: Engine = county[ENGINE]
    password = (await credentials.issue(engine.db, engine.config, [hall_user(lower)]))[hall_user(lower)]
    await county[BROKER].refresh()
    data.mkdir(parents=True, exist_ok=True)
    (data / PASSWORD_FILE).write_text(password)


async def until(check: Any, seconds: float, step: float = 0.01) -> float:
    """Seconds until ``check()`` held."""
    start = time.perf_counter()
    while not await check():
        if time.perf_counter() - start > seconds:
            raise TimeoutError("not within time")
        await asyncio.sleep(step)
    return time.perf_counter() - start


async def received(engine: Engine, peer: str) -> int:
    hall = await engine.settled()
    mark = hall.inbox.get((peer, "up"))
    return mark.applied if mark else 0


async def drain(folder: Path, backlog: int) -> dict[str, Any]:
    """The town builds its backlog in this process while the county's broker is stopped; then
    the broker starts and the town's server runs as a process of its own (``yimen serve``), as
    on its own machine, while the county here receives."""
    async with AsyncExitStack() as stack:
        county = await stack.enter_async_context(serving(hall_config("county", "county", lower=["town"]),
                                                         folder / "county", True))
        await admit(county, "town", folder / "town")
        broker = county[BROKER]
        await broker.mosquitto.stop()                                   # the link cut
        town_config = hall_config("town", "town", ("county", broker.address.port))
        made = time.perf_counter()
        async with serving(town_config, folder / "town", False) as town:
            engine: Engine = town[ENGINE]
            await engine.execute(SetMatters(matters=[{**MATTER, "form": "upper"}]), DESK)

            async def one(i: int) -> None:
                opened = await engine.execute(OpenCase(matter="U15", applicant=f"申请人{i}"), DESK)
                await engine.execute(CaseStep(number=opened["case"]["number"], action="escalate"), DESK)

            for start in range(0, backlog, 200):
                await asyncio.gather(*(one(i) for i in range(start, min(backlog, start + 200))))
        made = time.perf_counter() - made
        await broker.mosquitto.start()                                  # the link back
        path = folder / "town.toml"
        path.write_text(_toml(town_config), encoding="utf-8")
        proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "serve", "--config", str(path),
                                 "--data", str(folder / "town"), "--http", "127.0.0.1:0",
                                 "--mqtt", "127.0.0.1:0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            county_engine: Engine = county[ENGINE]
            first = await until(lambda: _at(county_engine, 1), 120)     # the town started and connected
            arrived = first + await until(lambda: _at(county_engine, backlog), 600)
        finally:
            proc.terminate()
            proc.wait(30)
        return {"backlog": backlog, "made_s": made, "first_s": first, "arrived_s": arrived,
                "rate": backlog / (arrived - first)}


def _toml(config: HallConfig) -> str:
    tier = config.tier
    return (f'[hall]\nid = "{config.hall.id}"\nname = "{config.hall.name}"\nnational_calendar = false\n\n'
            '[[services]]\ncode = "A"\nname = "综合"\navg_service_min = 6\n\n'
            '[[windows]]\nid = "1"\nservices = ["A"]\n\n[storage]\nsynchronous = "NORMAL"\n\n'
            f'[tier]\nlevel = "{tier.level}"\nupper = "{tier.upper}"\nupper_broker = "{tier.upper_broker}"\n')


async def _at(engine: Engine, n: int) -> bool:
    return await received(engine, "town") >= n


async def _delivered(engine: Engine) -> int:
    from controller.storage import outbox

    async with engine.db.connect() as conn:
        return (await conn.run_sync(outbox.position, engine.config.hall.id, outbox.UP))[1]


async def overview(folder: Path, halls: int, changes: int, seed: int) -> dict[str, Any]:
    names = [f"town{i:02d}" for i in range(halls)]
    rng = random.Random(seed)
    async with AsyncExitStack() as stack:
        county = await stack.enter_async_context(serving(hall_config("county", "county", lower=names),
                                                         folder / "ov-county", True))
        port = county[BROKER].address.port
        below: dict[str, Engine] = {}
        for name in names:
            await admit(county, name, folder / name)
            app = await stack.enter_async_context(serving(hall_config(name, "town", ("county", port)),
                                                          folder / name, False))
            below[name] = app[ENGINE]
        link = county[TIERS]

        async def all_heard() -> bool:
            return all(link.overview.get(n, {}).get("online") for n in names)

        await until(all_heard, 60)
        taken = dict.fromkeys(names, 0)
        seconds = []
        for _ in range(changes):
            name = rng.choice(names)
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            before = time.perf_counter()
            await below[name].execute(Take(service="A"), Source("device:kiosk", Origin.MQTT))
            taken[name] += 1
            want = taken[name]

            async def shown(name: str = name, want: int = want) -> bool:
                return link.overview.get(name, {}).get("waiting") == want

            await until(shown, 10, 0.002)
            seconds.append(time.perf_counter() - before)
        page = time.perf_counter()
        rows = await link.halls()
        page = time.perf_counter() - page
        return {"halls": halls, "changes": changes, "p50_s": statistics.median(seconds),
                "p95_s": sorted(seconds)[max(0, int(len(seconds) * 0.95) - 1)], "max_s": max(seconds),
                "rows": len(rows), "page_s": page}


async def run(backlog: int, halls: int, changes: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="yimen-bench-tiers-") as folder:
        return {"drain": await drain(Path(folder), backlog),
                "overview": await overview(Path(folder), halls, changes, seed)}


def report(out: dict[str, Any]) -> str:
    d, o = out["drain"], out["overview"]
    ok_d, ok_o = d["rate"] >= DRAIN_TARGET, o["max_s"] < OVERVIEW_TARGET_S
    return "\n".join([
        f"drain: {d['backlog']:,} cases sent up while the link was cut ({d['made_s']:.1f} s to make); "
        f"the broker back and the town's server started, the first arrived after {d['first_s']:.2f} s, "
        f"all after {d['arrived_s']:.2f} s: {d['rate']:,.0f} cases/s once connected "
        f"({'✓' if ok_d else '✗'} ≥ {DRAIN_TARGET:.0f}/s), {d['backlog'] / d['arrived_s']:,.0f}/s in all",
        f"overview: {o['halls']} halls below the county, {o['changes']} tickets taken at random halls: "
        f"shown at the county after p50 {o['p50_s'] * 1000:.0f} ms, p95 {o['p95_s'] * 1000:.0f} ms, "
        f"max {o['max_s'] * 1000:.0f} ms ({'✓' if ok_o else '✗'} < {OVERVIEW_TARGET_S:g} s); "
        f"the overview of {o['rows']} halls read in {o['page_s'] * 1000:.1f} ms",
    ])


def met(out: dict[str, Any]) -> bool:
    return out["drain"]["rate"] >= DRAIN_TARGET and out["overview"]["max_s"] < OVERVIEW_TARGET_S
